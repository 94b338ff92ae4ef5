package engine_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// The TLS listener: served on goroutines with the standard library, by the
// same protocol code as the plain listener.

func startTLSBroker(t *testing.T, o engine.Options, clientAuth tls.ClientAuthType) (*engine.Server, *testutil.CA) {
	t.Helper()
	ca := testutil.NewCA(t, "tern test CA")
	o.TLSListen = "127.0.0.1:0"
	o.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "broker", true)}, ClientAuth: clientAuth, ClientCAs: ca.Pool}
	return testutil.StartBroker(t, o), ca
}

func dialTLS(t *testing.T, srv *engine.Server, ca *testutil.CA, certs ...tls.Certificate) (net.Conn, error) {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{RootCAs: ca.Pool, Certificates: certs, ServerName: "127.0.0.1"}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", srv.TLSAddr().String())
	if err == nil {
		// TLS 1.3 reports a refused client certificate on the first read.
		tc := c.(*tls.Conn)
		err = tc.HandshakeContext(ctx)
	}
	return c, err
}

func connectV5TLS(t *testing.T, srv *engine.Server, ca *testutil.CA, cp *paho.Connect, certs ...tls.Certificate) *testutil.V5 {
	t.Helper()
	nc, err := dialTLS(t, srv, ca, certs...)
	testutil.Require(t, err, "TLS dial")
	v := &testutil.V5{Msgs: make(chan *paho.Publish, 1000), Disconnects: make(chan *paho.Disconnect, 4)}
	v.Client = paho.NewClient(paho.ClientConfig{Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			v.Msgs <- pr.Packet
			return true, nil
		}}})
	ack, err := v.Connect(testutil.Ctx(t), cp)
	testutil.Require(t, err, "connect over TLS")
	v.Connack = ack
	t.Cleanup(func() { _ = v.Disconnect(&paho.Disconnect{}) })
	return v
}

// Messages cross between the TLS and the plain listener, at 5.0 (paho.golang
// over crypto/tls) and 3.1.1 (paho.mqtt.golang's ssl://), QoS 0, 1 and 2, and
// a payload larger than a TLS record arrives whole.
func TestTLSListenerCarriesEverything(t *testing.T) {
	srv, ca := startTLSBroker(t, engine.Options{}, tls.NoClientCert)
	sub := connectV5TLS(t, srv, ca, &paho.Connect{ClientID: "tls-sub", CleanStart: true})
	subscribe(t, sub, paho.SubscribeOptions{Topic: "x/#", QoS: 2})
	plain := testutil.ConnectV5(t, srv.Addr().String(), &paho.Connect{ClientID: "plain-sub", CleanStart: true})
	subscribe(t, plain, paho.SubscribeOptions{Topic: "x/#", QoS: 2})

	o := mqtt.NewClientOptions().AddBroker("ssl://" + srv.TLSAddr().String()).SetClientID("tls-311").SetProtocolVersion(4).
		SetTLSConfig(&tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	pub := mqtt.NewClient(o)
	waitToken(t, pub.Connect(), "connect 3.1.1 over TLS")
	t.Cleanup(func() { pub.Disconnect(0) })
	crossQoSAndBig(t, pub, "x", 128<<10, sub, plain) // 128 KiB: eight TLS records
	// And from a plain publisher to the TLS subscriber.
	publish(t, plain, "x/back", "from plain", 1)
	recvPayload(t, sub, "from plain")
}

// crossQoSAndBig publishes from pub a message at QoS 0, 1 and 2 on
// prefix/q and one of big bytes on prefix/big, and checks every subscriber
// (subscribed to prefix/#) gets them all, the big one intact.
func crossQoSAndBig(t *testing.T, pub mqtt.Client, prefix string, big int, subs ...*testutil.V5) {
	t.Helper()
	payload := bytes.Repeat([]byte("0123456789abcdef"), big/16)
	for qos := byte(0); qos <= 2; qos++ {
		waitToken(t, pub.Publish(prefix+"/q", qos, false, []byte{'0' + qos}), "publish")
	}
	waitToken(t, pub.Publish(prefix+"/big", 1, false, payload), "publish big")
	for _, c := range subs {
		for qos := byte(0); qos <= 2; qos++ {
			recvPayload(t, c, string([]byte{'0' + qos}))
		}
		if m := c.Recv(t); !bytes.Equal(m.Payload, payload) {
			t.Fatalf("big payload: %d bytes, want %d intact", len(m.Payload), len(payload))
		}
	}
}

// With --tls-client-auth require, a client without a certificate from the
// CA does not get past the handshake (and is counted), while one with a
// certificate connects and its common name reaches the Authenticate hook.
func TestTLSClientCertificateRequired(t *testing.T) {
	var seen atomic.Value
	srv, ca := startTLSBroker(t, engine.Options{Authenticate: func(c *engine.ConnectInfo) codec.ReasonCode {
		seen.Store([2]any{c.CertName, c.ListenerSecure})
		return codec.Success
	}}, tls.RequireAndVerifyClientCert)
	if c, err := dialTLS(t, srv, ca); err == nil {
		// The refusal can also surface on the first read.
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client without a certificate got through the handshake")
		}
		c.Close()
	}
	other := testutil.NewCA(t, "some other CA")
	if c, err := dialTLS(t, srv, ca, other.Issue(t, "impostor", false)); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a certificate from another CA got through the handshake")
		}
		c.Close()
	}
	connectV5TLS(t, srv, ca, &paho.Connect{ClientID: "device-1", CleanStart: true}, ca.Issue(t, "device-1.example", false))
	if got := seen.Load().([2]any); got[0] != "device-1.example" || got[1] != true {
		t.Fatalf("Authenticate saw certificate name %q, secure %v", got[0], got[1])
	}
	deadline := time.Now().Add(2 * time.Second)
	for srv.Snapshot().TLSHandshakeFailures < 2 || srv.Snapshot().Connections != 1 { // failed handshakes give their slots back
		if time.Now().After(deadline) {
			t.Fatalf("%d handshake failures counted (want 2), %d connections (want 1)", srv.Snapshot().TLSHandshakeFailures, srv.Snapshot().Connections)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TLS 1.2 is the least the listener speaks.
func TestTLSMinimumVersion(t *testing.T) {
	srv, ca := startTLSBroker(t, engine.Options{}, tls.NoClientCert)
	d := tls.Dialer{Config: &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}
	if c, err := d.Dial("tcp", srv.TLSAddr().String()); err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
}

// A client that opens a TCP connection to the TLS port and sends nothing is
// closed after the CONNECT timeout, and others are served meanwhile.
func TestTLSSilentClientClosed(t *testing.T) {
	srv, ca := startTLSBroker(t, engine.Options{ConnectTimeout: 300 * time.Millisecond}, tls.NoClientCert)
	var silent []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", srv.TLSAddr().String())
		testutil.Require(t, err, "dial")
		silent = append(silent, c)
	}
	c := connectV5TLS(t, srv, ca, &paho.Connect{ClientID: "busy", CleanStart: true})
	subscribe(t, c, paho.SubscribeOptions{Topic: "s", QoS: 1})
	publish(t, c, "s", "served", 1)
	recvPayload(t, c, "served")
	for _, s := range silent {
		_ = s.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := s.Read(make([]byte, 1)); err == nil {
			t.Fatal("a silent client got bytes")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a silent client was not closed after the CONNECT timeout")
		}
		s.Close()
	}
}
