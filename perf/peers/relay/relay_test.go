package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/perf/loadgen"
)

// start runs a relay in the test's process on a loopback port.
func start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Require(t, err, "listen")
	t.Cleanup(func() { _ = ln.Close() })
	go new(relay).serve(ln)
	return ln.Addr().String()
}

// TestLoadgen drives the relay with bounded loads of the shapes the suite
// runs and checks that every message reached every subscriber.
func TestLoadgen(t *testing.T) {
	addr := start(t)
	f := func(name string, o loadgen.Options) {
		t.Helper()
		o.Addr, o.Duration, o.MaxMessages, o.SourceAddrs, o.ClientIDPrefix = addr, time.Second, 500, 2, name
		res, err := loadgen.Run(context.Background(), o)
		testutil.Require(t, err, name)
		want := int64(o.Publishers) * o.MaxMessages
		testutil.Equal(t, res.Sent, want, name+": sent")
		testutil.Equal(t, res.Received, want*int64(o.Subscribers), name+": received")
		testutil.Equal(t, res.ConnErrors, int64(0), name+": connection errors")
		if o.QoS == 1 {
			testutil.Equal(t, res.Acked, want, name+": acked")
		}
	}
	f("fanin-qos0", loadgen.Options{Publishers: 4, Subscribers: 1, QoS: 0, Batch: 16})
	f("fanin-qos1", loadgen.Options{Publishers: 4, Subscribers: 1, QoS: 1, Window: 8})
	f("fanout-qos1", loadgen.Options{Publishers: 1, Subscribers: 3, QoS: 1})
}

// TestPackets checks the relay's answers byte for byte.
func TestPackets(t *testing.T) {
	addr := start(t)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		testutil.Require(t, err, "dial")
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// exchange writes in and expects exactly want back.
	exchange := func(c net.Conn, in, want []byte, what string) {
		t.Helper()
		_, err := c.Write(in)
		testutil.Require(t, err, what+": write")
		got := make([]byte, len(want))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(c, got)
		testutil.Require(t, err, what+": read")
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: got % x, want % x", what, got, want)
		}
	}
	connect := []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 0}
	sub, pub := dial(), dial()
	exchange(sub, connect, []byte{0x20, 2, 0, 0}, "sub CONNACK")
	// Two filters at QoS 1 and 2, granted as asked; 3 is refused.
	exchange(sub, []byte{0x82, 14, 0, 7, 0, 1, 'a', 1, 0, 1, 'b', 2, 0, 1, 'c', 3},
		[]byte{0x90, 5, 0, 7, 1, 2, 0x80}, "SUBACK")
	exchange(pub, connect, []byte{0x20, 2, 0, 0}, "pub CONNACK")
	exchange(pub, []byte{0xC0, 0}, []byte{0xD0, 0}, "PINGRESP")

	qos0 := []byte{0x30, 4, 0, 1, 'x', 'p'}
	qos1 := []byte{0x32, 6, 0, 1, 'x', 0x12, 0x34, 'p'}
	qos2 := []byte{0x34, 6, 0, 1, 'x', 0x56, 0x78, 'p'}
	exchange(pub, append(append(qos0, qos1...), qos2...), []byte{0x40, 2, 0x12, 0x34, 0x50, 2, 0x56, 0x78}, "PUBACK, PUBREC")
	exchange(pub, []byte{0x62, 2, 0x56, 0x78}, []byte{0x70, 2, 0x56, 0x78}, "PUBCOMP")
	// Forwarded verbatim, in order; the subscriber's acks are dropped, and
	// its PUBREC gets PUBREL.
	exchange(sub, []byte{0x40, 2, 0x12, 0x34}, append(append(qos0, qos1...), qos2...), "forwarded")
	exchange(sub, []byte{0x50, 2, 0x56, 0x78}, []byte{0x62, 2, 0x56, 0x78}, "PUBREL")
	// The publisher, not a subscriber, gets nothing of its own back: the
	// next thing it reads is the PINGRESP.
	exchange(pub, []byte{0xC0, 0}, []byte{0xD0, 0}, "no echo")
}
