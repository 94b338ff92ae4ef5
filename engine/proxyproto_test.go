package engine_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// --proxy-protocol: the client address comes from the load balancer's
// header, for the Authenticate hook and the per-address limits; a
// connection without a header is closed.
func TestProxyProtocol(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	srv := testutil.StartBroker(t, engine.Options{ProxyProtocol: true, MaxConnectionsPerIP: 1,
		Authenticate: func(c *engine.ConnectInfo) codec.ReasonCode {
			mu.Lock()
			seen[c.ClientID] = c.Remote.String()
			mu.Unlock()
			return codec.Success
		}})
	addr := srv.Addr().String()
	connectVia := func(header, id string, split bool) *wireClient {
		t.Helper()
		c := dialWire(t, addr, codec.Version311)
		p := &codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version311, CleanStart: true, KeepAlive: 30, ClientID: []byte(id)}}
		b, _ := p.Append([]byte(header), codec.Version311)
		if split { // the header arrives in pieces
			c.write(b[:10])
			time.Sleep(20 * time.Millisecond)
			c.write(b[10:])
		} else {
			c.write(b)
		}
		return c
	}
	a := connectVia("PROXY TCP4 203.0.113.7 10.0.0.1 51000 1883\r\n", "via-v1", false)
	if ack := a.expect(codec.CONNACK).Connack; ack.ReasonCode != codec.Success {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")
	v2 = append(v2, 198, 51, 100, 9, 10, 0, 0, 1, 0x1F, 0x90, 0x07, 0x5B)
	b := connectVia(string(v2), "via-v2", true)
	if ack := b.expect(codec.CONNACK).Connack; ack.ReasonCode != codec.Success {
		t.Fatalf("CONNACK %v", ack.ReasonCode)
	}
	mu.Lock()
	testutil.Equal(t, seen["via-v1"], "203.0.113.7:51000", "address from a v1 header")
	testutil.Equal(t, seen["via-v2"], "198.51.100.9:8080", "address from a v2 header")
	mu.Unlock()
	// Both came over 127.0.0.1 but count as two addresses; a second
	// connection from 203.0.113.7 is over MaxConnectionsPerIP.
	c := connectVia("PROXY TCP4 203.0.113.7 10.0.0.1 51001 1883\r\n", "via-v1-again", false)
	if ack := c.expect(codec.CONNACK).Connack; ack.ReasonCode != codec.ServerUnavailable {
		t.Fatalf("CONNACK %v, want return code 3 (per-address limit)", ack.ReasonCode)
	}
	// No header: closed.
	nc, err := net.Dial("tcp", addr)
	testutil.Require(t, err, "dial")
	defer nc.Close()
	p := &codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version311, CleanStart: true, KeepAlive: 30, ClientID: []byte("direct")}}
	raw, _ := p.Append(nil, codec.Version311)
	_, _ = nc.Write(raw)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 16)); err == nil {
		t.Fatalf("a connection without a PROXY header got %d bytes", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a connection without a PROXY header stayed open")
	}
}
