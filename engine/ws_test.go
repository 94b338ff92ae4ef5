package engine_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// MQTT over WebSocket (MQTT 5.0 section 6, 3.1.1 section 6).

func startWSBroker(t *testing.T) (*engine.Server, *testutil.CA) {
	t.Helper()
	ca := testutil.NewCA(t, "ws CA")
	return testutil.StartBroker(t, engine.Options{WSListen: "127.0.0.1:0", WSSListen: "127.0.0.1:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "broker", true)}}}), ca
}

// dialWS opens a WebSocket to the broker offering subprotocols.
func dialWS(t *testing.T, url string, hc *http.Client, subprotocols ...string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: subprotocols, HTTPClient: hc})
	testutil.Require(t, err, "WebSocket dial "+url)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func pahoOverWS(t *testing.T, url string, hc *http.Client, id string) *testutil.V5 {
	t.Helper()
	nc := websocket.NetConn(context.Background(), dialWS(t, url, hc, "mqtt"), websocket.MessageBinary)
	v := &testutil.V5{Msgs: make(chan *paho.Publish, 1000), Disconnects: make(chan *paho.Disconnect, 4)}
	v.Client = paho.NewClient(paho.ClientConfig{Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			v.Msgs <- pr.Packet
			return true, nil
		}}})
	// Keep-alive 0: paho.golang writes a packet in several Writes, which on
	// a WebSocket net.Conn are separate messages, and its pinger's PINGREQ
	// can land between them (the broker then rightly closes on a malformed
	// packet). Over TCP one writev keeps a packet whole.
	ack, err := v.Connect(testutil.Ctx(t), &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 0})
	testutil.Require(t, err, "connect over WebSocket")
	v.Connack = ack
	t.Cleanup(func() { _ = v.Disconnect(&paho.Disconnect{}) })
	return v
}

// 3.1.1 (paho.mqtt.golang's ws://) and 5.0 (paho.golang over a WebSocket
// net.Conn) clients, plain and WSS, exchange QoS 0-2 messages with each
// other and with a TCP client; a payload far larger than a frame arrives
// whole.
func TestWebSocketCarriesEverything(t *testing.T) {
	srv, ca := startWSBroker(t)
	ws := "ws://" + srv.WSAddr().String() + engine.WebSocketPath
	wss := "wss://" + srv.WSSAddr().String() + engine.WebSocketPath
	sub := pahoOverWS(t, ws, nil, "ws-sub")
	subscribe(t, sub, paho.SubscribeOptions{Topic: "w/#", QoS: 2})
	secure := pahoOverWS(t, wss, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}, "wss-sub")
	subscribe(t, secure, paho.SubscribeOptions{Topic: "w/#", QoS: 2})
	plain := testutil.ConnectV5(t, srv.Addr().String(), &paho.Connect{ClientID: "tcp-sub", CleanStart: true})
	subscribe(t, plain, paho.SubscribeOptions{Topic: "w/#", QoS: 2})

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(ws).SetClientID("ws-311").SetProtocolVersion(4).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
	waitToken(t, pub.Connect(), "connect 3.1.1 over WebSocket")
	t.Cleanup(func() { pub.Disconnect(0) })
	crossQoSAndBig(t, pub, "w", 300<<10, sub, secure, plain) // 300 KiB: many frames
	publish(t, plain, "w/back", "from tcp", 1)
	recvPayload(t, sub, "from tcp")
}

// A packet may span frames and messages, and a message may hold several
// packets: the WebSocket carries a byte stream (MQTT-6.0.0-2).
func TestWebSocketFramesAreAByteStream(t *testing.T) {
	srv, _ := startWSBroker(t)
	wc := dialWS(t, "ws://"+srv.WSAddr().String()+engine.WebSocketPath, nil, "mqtt")
	ctx := testutil.Ctx(t)
	enc := func(p *codec.Packet) []byte {
		b, err := p.Append(nil, codec.Version5)
		testutil.Require(t, err, "encode")
		return b
	}
	connect := enc(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, KeepAlive: 30, ClientID: []byte("frames")}})
	// CONNECT in one message of two frames (a fragmented message)...
	w, err := wc.Writer(ctx, websocket.MessageBinary)
	testutil.Require(t, err, "writer")
	_, _ = w.Write(connect[:5])
	_, _ = w.Write(connect[5:])
	testutil.Require(t, w.Close(), "close message")
	// ...then SUBSCRIBE and PINGREQ in one message, the PINGREQ's second
	// byte in the message after.
	sub := enc(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: []byte("f/#")}}}})
	testutil.Require(t, wc.Write(ctx, websocket.MessageBinary, append(sub, 0xC0)), "write")
	testutil.Require(t, wc.Write(ctx, websocket.MessageBinary, []byte{0x00}), "write")
	var got []codec.PacketType
	var in []byte
	dec := codec.Decoder{Version: codec.Version5}
	for len(got) < 3 {
		_, b, err := wc.Read(ctx)
		testutil.Require(t, err, "read")
		in = append(in, b...)
		for {
			var p codec.Packet
			n, err := dec.Decode(in, &p)
			if err != nil || n == 0 {
				break
			}
			got = append(got, p.Type)
			in = in[n:]
		}
	}
	want := []codec.PacketType{codec.CONNACK, codec.SUBACK, codec.PINGRESP}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// MQTT travels in binary messages only: a text message closes the
// connection (MQTT-6.0.0-1).
func TestWebSocketTextMessageCloses(t *testing.T) {
	srv, _ := startWSBroker(t)
	wc := dialWS(t, "ws://"+srv.WSAddr().String()+engine.WebSocketPath, nil, "mqtt")
	ctx := testutil.Ctx(t)
	testutil.Require(t, wc.Write(ctx, websocket.MessageText, []byte{0x10, 0x00}), "write text")
	if _, _, err := wc.Read(ctx); err == nil {
		t.Fatal("the connection stayed open after a text message")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("no close after a text message")
	}
}

// A client must offer the "mqtt" subprotocol (MQTT-6.0.0-3); the server
// answers with it (MQTT-6.0.0-4).
func TestWebSocketSubprotocol(t *testing.T) {
	srv, _ := startWSBroker(t)
	url := "ws://" + srv.WSAddr().String() + engine.WebSocketPath
	if c := dialWS(t, url, nil, "mqtt"); c.Subprotocol() != "mqtt" {
		t.Fatalf("subprotocol %q, want mqtt", c.Subprotocol())
	}
	c := dialWS(t, url, nil) // none offered
	if _, _, err := c.Read(testutil.Ctx(t)); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("without the subprotocol: %v, want a close with policy violation", err)
	}
}
