package engine_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// Per-client and per-address limits: each answers with the 5.0 reason code
// that says what happened, and other clients keep being served.

func TestLimitSubscriptions(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxSubscriptions: 2})
	c5, _ := connectWire(t, srv.Addr().String(), codec.Version5, "subs5", nil)
	got := c5.subscribe(1, 0, subscription("a", 0), subscription("b", 0), subscription("c", 0), subscription("a", 1))
	if want := []byte{0, 0, byte(codec.QuotaExceeded), 1}; string(got) != string(want) { // re-subscribing "a" is no new subscription
		t.Fatalf("SUBACK % x, want % x", got, want)
	}
	c3, _ := connectWire(t, srv.Addr().String(), codec.Version311, "subs3", nil)
	if got := c3.subscribe(1, 0, subscription("a", 0), subscription("b", 0), subscription("c", 0)); got[2] != 0x80 {
		t.Fatalf("3.1.1 SUBACK % x, want 0x80 last", got)
	}
	if srv.Snapshot().Limited != 2 {
		t.Fatalf("Limited %d, want 2", srv.Snapshot().Limited)
	}
}

func TestLimitTopicLengthAndLevels(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxTopicLength: 20, MaxTopicLevels: 3})
	c, _ := connectWire(t, srv.Addr().String(), codec.Version5, "topics", nil)
	got := c.subscribe(1, 0, subscription("a/b/c", 0), subscription("a/b/c/d", 0), subscription(strings.Repeat("x", 21), 0), subscription("$share/g/a/b/c", 0))
	if want := []byte{0, byte(codec.TopicFilterInvalid), byte(codec.TopicFilterInvalid), 0}; string(got) != string(want) {
		t.Fatalf("SUBACK % x, want % x", got, want)
	}
	c.publish("a/b/c/d", 1, 1, false, "too deep")
	if a := c.expectAck(codec.PUBACK, 1); a.ReasonCode != codec.TopicNameInvalid {
		t.Fatalf("PUBACK %v, want topic name invalid (0x90)", a.ReasonCode)
	}
	c.publish("a/b/c", 1, 2, false, "fine")
	if a := c.expectAck(codec.PUBACK, 2); a.ReasonCode.IsError() {
		t.Fatalf("PUBACK %v for an accepted topic", a.ReasonCode)
	}
	if p := c.expectPublish(); string(p.Payload) != "fine" {
		t.Fatalf("got %q", p.Payload)
	}
}

// A client publishing faster than its rate is disconnected with 0x96; a
// client within it, on the same broker, is not.
func TestLimitPublishRate(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{PublishRate: 50})
	addr := srv.Addr().String()
	calm, _ := connectWire(t, addr, codec.Version5, "calm", nil)
	fast, _ := connectWire(t, addr, codec.Version5, "fast", nil)
	for range 200 { // four seconds' worth at once
		if err := fast.tryWrite(mustAppend5(publishPacket("r", 0, 0, false, "x"))); err != nil {
			break
		}
	}
	pkts := fast.expectClosed(5 * time.Second)
	if r, ok := disconnectReason(pkts); !ok || r != codec.MessageRateTooHigh {
		t.Fatalf("DISCONNECT %v (%v), want message rate too high (0x96)", r, ok)
	}
	for i := range 5 {
		calm.publish("r", 1, uint16(i+1), false, "ok")
		calm.expectAck(codec.PUBACK, uint16(i+1))
		time.Sleep(25 * time.Millisecond)
	}
}

// Per address: beyond MaxConnectionsPerIP open connections CONNACK says
// 0x97; beyond ConnectRatePerIP a second, 0x9F; 3.1.1 hears return code 3.
// Closing a connection frees its place.
func TestLimitConnectionsPerAddress(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxConnectionsPerIP: 2})
	addr := srv.Addr().String()
	a, _ := connectWire(t, addr, codec.Version5, "ip-a", nil)
	connectWire(t, addr, codec.Version5, "ip-b", nil)
	refusedWith := func(v byte, want codec.ReasonCode) {
		t.Helper()
		c := dialWire(t, addr, v)
		c.send(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: v, CleanStart: true, KeepAlive: 30, ClientID: []byte("ip-x")}})
		if ack := c.expect(codec.CONNACK).Connack; ack.ReasonCode != want {
			t.Fatalf("level %d: CONNACK %v, want %v", v, ack.ReasonCode, want)
		}
	}
	refusedWith(codec.Version5, codec.QuotaExceeded)
	refusedWith(codec.Version311, codec.ServerUnavailable)
	a.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Snapshot().Connections > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	connectWire(t, addr, codec.Version5, "ip-c", nil) // a's place
}

func TestLimitConnectRatePerAddress(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{ConnectRatePerIP: 3})
	addr := srv.Addr().String()
	for i := range 3 {
		connectWire(t, addr, codec.Version5, "rate-"+string(rune('a'+i)), nil)
	}
	c := dialWire(t, addr, codec.Version5)
	c.send(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, KeepAlive: 30, ClientID: []byte("rate-x")}})
	if ack := c.expect(codec.CONNACK).Connack; ack.ReasonCode != codec.ConnectionRateExceeded {
		t.Fatalf("CONNACK %v, want connection rate exceeded (0x9F)", ack.ReasonCode)
	}
	time.Sleep(1100 * time.Millisecond) // the next second
	connectWire(t, addr, codec.Version5, "rate-y", nil)
}

func mustAppend5(p *codec.Packet) []byte {
	b, err := p.Append(nil, codec.Version5)
	if err != nil {
		panic(err)
	}
	return b
}

// ListenerMaxConnections bounds each listener on its own: a full TCP
// listener closes a new socket at once, while TLS still takes its own two.
func TestLimitPerListener(t *testing.T) {
	srv, ca := startTLSBroker(t, engine.Options{ListenerMaxConnections: 2}, tls.NoClientCert)
	addr := srv.Addr().String()
	connectWire(t, addr, codec.Version5, "l1", nil)
	connectWire(t, addr, codec.Version5, "l2", nil)
	third := dialWire(t, addr, codec.Version5)
	third.expectClosed(wireTimeout)
	for i := range 2 {
		connectV5TLS(t, srv, ca, &paho.Connect{ClientID: "tls-" + string(rune('a'+i)), CleanStart: true})
	}
	if s := srv.Snapshot(); s.RefusedConns != 1 || s.Connections != 4 {
		t.Fatalf("refused %d, connections %d; want 1 and 4", s.RefusedConns, s.Connections)
	}
}
