package engine_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// The hostile inputs of hostile_test.go over the TLS and WebSocket
// listeners, whose connections run on the stream transport: each is closed,
// nothing is buffered without bound, and a bystander on the plain listener
// keeps being served.
func TestHostileOverStreamTransports(t *testing.T) {
	ca := testutil.NewCA(t, "hostile CA")
	srv := testutil.StartBroker(t, engine.Options{ConnectTimeout: 500 * time.Millisecond,
		TLSListen: "127.0.0.1:0", WSListen: "127.0.0.1:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "broker", true)}}})
	by := newBystander(t, srv.Addr().String())
	dialers := map[string]func() net.Conn{
		"tls": func() net.Conn {
			c, err := tls.Dial("tcp", srv.TLSAddr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
			testutil.Require(t, err, "TLS dial")
			return c
		},
		"websocket": func() net.Conn {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			wc, _, err := websocket.Dial(ctx, "ws://"+srv.WSAddr().String()+engine.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{"mqtt"}})
			testutil.Require(t, err, "WebSocket dial")
			return websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
		},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for name, dial := range dialers {
		over := func(v byte) *wireClient {
			nc := dial()
			t.Cleanup(func() { _ = nc.Close() })
			c := &wireClient{t: t, nc: nc, version: v, tmp: make([]byte, 64<<10)}
			c.dec.Version = v
			return c
		}
		// Random bytes before CONNECT.
		c := over(codec.Version5)
		b := make([]byte, 1+rng.IntN(4096))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		_ = c.tryWrite(b)
		c.expectClosed(4 * time.Second)
		// A packet before CONNECT (MQTT-3.1.0-1).
		c = over(codec.Version5)
		_ = c.tryWrite([]byte{0xC0, 0x00})
		c.expectClosed(4 * time.Second)
		// 256 MB declared after CONNECT: DISCONNECT 0x95, the body not buffered.
		c = over(codec.Version5)
		c.connect("huge-"+name, nil)
		_ = c.tryWrite(append(bytes.Clone(hugeHeader), make([]byte, 1<<20)...))
		if r, ok := disconnectReason(c.expectClosed(wireTimeout)); !ok || r != codec.PacketTooLarge {
			t.Errorf("%s: DISCONNECT %v (%v), want packet too large", name, r, ok)
		}
		// A second CONNECT (MQTT-3.1.0-2).
		c = over(codec.Version5)
		c.connect("twice-"+name, nil)
		c.send(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, ClientID: []byte("twice-" + name)}})
		if r, ok := disconnectReason(c.expectClosed(wireTimeout)); !ok || r != codec.ProtocolError {
			t.Errorf("%s: second CONNECT: DISCONNECT %v (%v), want protocol error", name, r, ok)
		}
		// Silence after the handshake: closed at the CONNECT timeout.
		c = over(codec.Version5)
		c.expectClosed(4 * time.Second)
		by.check()
	}
}
