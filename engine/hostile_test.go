package engine_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// bystander is a well-behaved 5.0 client connected before a hostile act; its
// check proves the broker still serves other clients afterwards: a QoS 1
// round trip through its own subscription.
type bystander struct {
	c  *wireClient
	id uint16
}

func newBystander(t *testing.T, addr string) *bystander {
	t.Helper()
	c, _ := connectWire(t, addr, codec.Version5, "bystander", nil)
	c.subscribe(1, 0, subscription("bystander/echo", 1))
	return &bystander{c: c}
}

func (b *bystander) check() {
	b.c.t.Helper()
	b.id++
	payload := fmt.Sprint("echo ", b.id)
	b.c.publish("bystander/echo", 1, b.id, false, payload)
	acked, echoed := false, false
	for !acked || !echoed {
		p, err := b.c.next(wireTimeout)
		if err != nil {
			b.c.t.Fatalf("bystander no longer served: %v", err)
		}
		switch {
		case p.Type == codec.PUBACK && p.Ack.PacketID == b.id:
			acked = true
		case p.Type == codec.PUBLISH && string(p.Publish.Payload) == payload:
			b.c.ack(codec.PUBACK, p.Publish.PacketID)
			echoed = true
		default:
			b.c.t.Fatalf("bystander got %v%s", p.Type, describe(p))
		}
	}
}

// heapInUse returns the bytes of in-use heap spans after a collection. The
// broker runs in the test process, so this bounds what it holds.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// hugeHeader is the fixed header of a PUBLISH declaring the largest remaining
// length the wire format allows, 268,435,455 bytes (256 MB).
var hugeHeader = []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}

// TestHostileRandomBytes: connections that send random bytes, before or
// after CONNECT, are closed (MQTT-4.13.1-1; by the connect timeout or keep
// alive where the bytes announce a packet that never completes), and the
// broker keeps serving others.
func TestHostileRandomBytes(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{ConnectTimeout: 500 * time.Millisecond})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, connected := range []bool{false, true} {
		var cs []*wireClient
		for i := range 16 {
			c := dialWire(t, addr, codec.Version5)
			if connected {
				c.connect(fmt.Sprintf("random-%d", i), func(p *codec.Connect) { p.KeepAlive = 1 })
			}
			b := make([]byte, 1+rng.IntN(4096))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			_ = c.tryWrite(b) // the broker may close before reading it all
			cs = append(cs, c)
		}
		for _, c := range cs {
			c.expectClosed(4 * time.Second)
		}
		by.check()
	}
}

// TestHostileHugeRemainingLength: a packet declaring 256 MB is refused from
// its fixed header, above the broker's Maximum Packet Size: the connection is
// closed (5.0: DISCONNECT 0x95 Packet too large, 3.2.2.3.6, MQTT-3.2.2-15)
// without buffering the body, and the broker keeps serving others.
func TestHostileHugeRemainingLength(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	before := heapInUse()

	// Before CONNECT, followed by a stream of body bytes.
	c := dialWire(t, addr, codec.Version5)
	_ = c.tryWrite(append(bytes.Clone(hugeHeader), make([]byte, 4<<20)...))
	c.expectClosed(wireTimeout)

	// After a 5.0 CONNECT: DISCONNECT 0x95.
	c5, _ := connectWire(t, addr, codec.Version5, "huge-5", nil)
	c5.write(hugeHeader)
	r, ok := disconnectReason(c5.expectClosed(wireTimeout))
	if !ok || r != codec.PacketTooLarge {
		t.Errorf("5.0: DISCONNECT %#02x (sent: %v), want 0x95", byte(r), ok)
	}

	// After a 3.1.1 CONNECT: closed, nothing sent.
	c4, _ := connectWire(t, addr, codec.Version311, "huge-4", nil)
	_ = c4.tryWrite(append(bytes.Clone(hugeHeader), make([]byte, 4<<20)...))
	if pkts := c4.expectClosed(wireTimeout); len(pkts) > 0 {
		t.Errorf("3.1.1: got %v before the close, want nothing", pkts[0].Type)
	}

	if after := heapInUse(); after > before+32<<20 {
		t.Errorf("heap in use grew from %d to %d bytes", before, after)
	}
	by.check()
}

// TestHostilePacketsBeforeConnect: the first packet must be CONNECT
// (MQTT-3.1.0-1); a connection starting with anything else is closed
// without an answer, and the broker keeps serving others.
func TestHostilePacketsBeforeConnect(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	encode := func(p *codec.Packet) []byte {
		b, err := p.Append(nil, codec.Version5)
		testutil.Require(t, err, "encode")
		return b
	}
	f := func(name string, b []byte) {
		t.Helper()
		c := dialWire(t, addr, codec.Version5)
		_ = c.tryWrite(b)
		if pkts := c.expectClosed(wireTimeout); len(pkts) > 0 {
			t.Errorf("%s before CONNECT: answered with %v%s, want a close without an answer", name, pkts[0].Type, describe(pkts[0]))
		}
		by.check()
	}
	f("PINGREQ", codec.AppendPingreq(nil))
	f("PUBLISH", encode(publishPacket("a/b", 0, 0, false, "x")))
	f("PUBLISH QoS 1", encode(publishPacket("a/b", 1, 1, false, "x")))
	f("SUBSCRIBE", encode(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1,
		Subscriptions: []codec.Subscription{subscription("#", 0)}}}))
	f("DISCONNECT", []byte{0xE0, 0x00})
	f("CONNACK", []byte{0x20, 0x02, 0x00, 0x00})
	f("reserved type 0", []byte{0x00, 0x00})
	f("PUBLISH declaring 256 MB", hugeHeader)
	// The same right after another client's CONNECT was decoded: the
	// answer must not depend on what the broker decoded for someone else.
	for i := range 5 {
		connectWire(t, addr, codec.Version5, fmt.Sprintf("before-huge-%d", i), nil)
		f(fmt.Sprintf("PUBLISH declaring 256 MB after a CONNECT (%d)", i), hugeHeader)
	}
}

// TestHostileSlowlorisConnect: a CONNECT trickled one byte every 50 ms is
// still a CONNECT, answered once complete (MQTT-3.1.4-5); meanwhile the
// broker serves others.
func TestHostileSlowlorisConnect(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	c := dialWire(t, addr, codec.Version311)
	p := &codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version311,
		CleanStart: true, KeepAlive: 30, ClientID: []byte("slow")}}
	b, err := p.Append(nil, codec.Version311)
	testutil.Require(t, err, "encode CONNECT")
	for i := range b {
		c.write(b[i : i+1])
		time.Sleep(50 * time.Millisecond)
		if i == len(b)/2 {
			by.check()
		}
	}
	ack := c.expect(codec.CONNACK).Connack
	testutil.Equal(t, ack.ReasonCode, codec.Success, "CONNACK reason")
	c.ping()
	by.check()
}

// TestHostileConnectTimeout: sockets that never complete a CONNECT (silent,
// a partial CONNECT, or one trickled too slowly to finish) are closed once
// ConnectTimeout passes (3.1.4: the Server SHOULD close a connection that
// sends no CONNECT in a reasonable time), not before; the broker keeps
// serving others.
func TestHostileConnectTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv := testutil.StartBroker(t, engine.Options{ConnectTimeout: timeout})
	addr := srv.Addr().String()
	by := newBystander(t, addr)

	p := &codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5,
		CleanStart: true, ClientID: bytes.Repeat([]byte("x"), 2000)}}
	connect, err := p.Append(nil, codec.Version5)
	testutil.Require(t, err, "encode CONNECT")

	start := time.Now()
	silent := dialWire(t, addr, codec.Version5)
	partial := dialWire(t, addr, codec.Version5)
	partial.write(connect[:12])
	trickle := dialWire(t, addr, codec.Version5)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // one byte every 50 ms: 2000 bytes would take 100 s
		defer wg.Done()
		for i := range connect {
			if trickle.tryWrite(connect[i:i+1]) != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	silent.expectClosed(3 * time.Second)
	if d := time.Since(start); d < timeout*8/10 {
		t.Errorf("silent socket closed after %v, before the connect timeout of %v", d, timeout)
	}
	partial.expectClosed(3 * time.Second)
	trickle.expectClosed(3 * time.Second)
	by.check()
}

// TestHostileWildcardTopic: a PUBLISH whose topic holds a wildcard
// (MQTT-3.3.2-2) closes the connection (MQTT-4.13.1-1), at 5.0 after a
// DISCONNECT 0x90 Topic Name invalid; nothing is delivered and the broker
// keeps serving others.
func TestHostileWildcardTopic(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	all, _ := connectWire(t, addr, codec.Version5, "wild-all", nil)
	all.subscribe(1, 0, subscription("#", 0))
	f := func(version byte, topic string, qos byte) {
		t.Helper()
		c, _ := connectWire(t, addr, version, "wild-pub", nil)
		c.publish(topic, qos, uint16(qos), false, "x")
		pkts := c.expectClosed(wireTimeout)
		if version >= codec.Version5 {
			r, ok := disconnectReason(pkts)
			if !ok || r != codec.TopicNameInvalid {
				t.Errorf("PUBLISH to %q: DISCONNECT %#02x (sent: %v), want 0x90", topic, byte(r), ok)
			}
		} else if len(pkts) > 0 {
			t.Errorf("3.1.1 PUBLISH to %q: got %v before the close", topic, pkts[0].Type)
		}
	}
	f(codec.Version5, "a/+", 0)
	f(codec.Version5, "a/#", 1)
	f(codec.Version5, "+", 2)
	f(codec.Version311, "a/#", 0)
	all.expectNone(100 * time.Millisecond)
	by.check()
}

// TestHostileInvalidUTF8Topic: a topic that is not well-formed UTF-8
// (MQTT-1.5.4-1) or holds U+0000 (MQTT-1.5.4-2) makes the packet malformed:
// the connection is closed (MQTT-4.13.1-1), at 5.0 after a DISCONNECT 0x81
// if any; nothing is delivered and the broker keeps serving others.
func TestHostileInvalidUTF8Topic(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	all, _ := connectWire(t, addr, codec.Version5, "utf8-all", nil)
	all.subscribe(1, 0, subscription("#", 0))
	f := func(version byte, topic string) {
		t.Helper()
		c, _ := connectWire(t, addr, version, "utf8-pub", nil)
		c.publish(topic, 0, 0, false, "x")
		pkts := c.expectClosed(wireTimeout)
		if r, ok := disconnectReason(pkts); ok && r != codec.MalformedPacket {
			t.Errorf("PUBLISH to %q: DISCONNECT %#02x, want 0x81", topic, byte(r))
		}
	}
	for _, topic := range []string{"a/\xc3\x28", "\xed\xa0\x80", "a\x00b", "\xc0\xaf", "a/\xff"} {
		f(codec.Version5, topic)
		f(codec.Version311, topic)
	}
	all.expectNone(100 * time.Millisecond)
	by.check()
}

// TestHostileNonReadingSubscriber: a subscriber that never reads while 4 KiB
// QoS 0 messages pour in must not stall the broker: over MaxOutboundBytes its
// QoS 0 messages are dropped, while the publisher and a subscriber that reads
// keep being served, QoS 1 included.
func TestHostileNonReadingSubscriber(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 64 << 10})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	slow, _ := connectWire(t, addr, codec.Version5, "never-reads", nil)
	slow.subscribe(1, 0, subscription("flood/t", 0))
	normal, _ := connectWire(t, addr, codec.Version5, "reads", nil)
	normal.subscribe(1, 0, subscription("flood/t", 1))

	// The reading subscriber runs in its own goroutine: it must never stop
	// reading, and a test goroutine cannot both publish and read.
	type progress struct{ floods, marker, after int }
	done := make(chan struct{})
	var got progress
	var readErr error
	marker, after := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for got.after == 0 {
			p, err := normal.next(10 * time.Second)
			if err != nil {
				readErr = err
				return
			}
			if p.Type != codec.PUBLISH {
				readErr = fmt.Errorf("unexpected %v%s", p.Type, describe(p))
				return
			}
			if p.Publish.QoS == 1 {
				b, _ := (&codec.Ack{Type: codec.PUBACK, PacketID: p.Publish.PacketID}).Append(nil, codec.Version5)
				_ = normal.tryWrite(b)
			}
			switch string(p.Publish.Payload) {
			case "marker":
				got.marker++
				close(marker)
			case "after":
				got.after++
				close(after)
			default:
				got.floods++
			}
		}
	}()

	pub, _ := connectWire(t, addr, codec.Version5, "flooder", nil)
	msg, err := publishPacket("flood/t", 0, 0, false, string(bytes.Repeat([]byte("f"), 4<<10))).Append(nil, codec.Version5)
	testutil.Require(t, err, "encode")
	batch := bytes.Repeat(msg, 16)
	const batches = 100 // 1600 messages, 6.4 MiB: more than loopback socket buffers hold
	for range batches {
		pub.write(batch)
	}
	pub.publish("flood/t", 1, 1, false, "marker")
	pub.expectAck(codec.PUBACK, 1)
	pub.ping()
	by.check()

	wait := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-done:
			select {
			case <-ch: // it stopped because it got this (both were ready)
				return
			default:
			}
			t.Fatalf("reading subscriber stopped before %s: %v", what, readErr)
		case <-time.After(5 * time.Second):
			t.Fatalf("reading subscriber did not get %s within 5 s", what)
		}
	}
	wait(marker, "the QoS 1 marker")
	// Once it caught up, QoS 0 reaches it again.
	pub.publish("flood/t", 0, 0, false, "after")
	wait(after, "a QoS 0 message published after the flood")
	<-done
	if readErr != nil {
		t.Fatal(readErr)
	}
	t.Logf("reading subscriber got %d of %d flood messages", got.floods, batches*16)
	if got.floods == 0 {
		t.Error("reading subscriber got none of the flood")
	}
	by.check()
}

// TestHostilePausedSubscriberResumes: a subscriber that stops reading until
// the broker drops its QoS 0 messages (over MaxOutboundBytes), then resumes
// reading without sending anything, must get the QoS 1 message queued for it
// meanwhile, and QoS 0 ones again: the session keeps the message for
// delivery (MQTT-4.5.0-1) and nothing but the broker's own bookkeeping holds
// it back once the socket drained.
func TestHostilePausedSubscriberResumes(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 64 << 10})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	paused, _ := connectWire(t, addr, codec.Version5, "paused", nil)
	paused.subscribe(1, 0, subscription("pause/t", 1))
	pub, _ := connectWire(t, addr, codec.Version5, "pause-flooder", nil)
	msg, err := publishPacket("pause/t", 0, 0, false, string(bytes.Repeat([]byte("f"), 4<<10))).Append(nil, codec.Version5)
	testutil.Require(t, err, "encode")
	batch := bytes.Repeat(msg, 16)
	// 16 MiB: more than the loopback socket buffers of both ends hold (the
	// receiver's does not grow while it does not read), so the broker's own
	// outbound buffer fills up to its bound and QoS 0 messages are dropped.
	for range 256 {
		pub.write(batch)
	}
	pub.ping()
	if srv.Snapshot().DroppedQoS0 == 0 {
		t.Fatal("16 MiB of QoS 0 messages to a subscriber that does not read, and none was dropped")
	}
	pub.publish("pause/t", 1, 1, false, "marker")
	pub.expectAck(codec.PUBACK, 1)
	by.check()

	// Resume reading; send nothing.
	deadline := time.Now().Add(5 * time.Second)
	floods := 0
	for {
		p, err := paused.next(time.Until(deadline))
		if err != nil {
			t.Fatalf("resumed subscriber, after reading %d flood messages: no QoS 1 marker: %v", floods, err)
		}
		if p.Type != codec.PUBLISH {
			t.Fatalf("unexpected %v%s", p.Type, describe(p))
		}
		if string(p.Publish.Payload) == "marker" {
			paused.ack(codec.PUBACK, p.Publish.PacketID)
			break
		}
		floods++
	}
	pub.publish("pause/t", 0, 0, false, "after")
	testutil.Equal(t, string(paused.expectPublish().Payload), "after", "QoS 0 message once caught up")
	by.check()
}

// TestHostilePingFlood: 10,000 PINGREQs in one write are each answered with
// a PINGRESP (MQTT-3.12.4-1), and the broker keeps serving others.
func TestHostilePingFlood(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	c, _ := connectWire(t, addr, codec.Version5, "pinger", nil)
	const n = 10_000
	c.write(bytes.Repeat(codec.AppendPingreq(nil), n))
	for i := range n {
		p, err := c.next(wireTimeout)
		if err != nil {
			t.Fatalf("after %d PINGRESPs: %v", i, err)
		}
		if p.Type != codec.PINGRESP {
			t.Fatalf("after %d PINGRESPs: got %v", i, p.Type)
		}
	}
	c.expectNone(100 * time.Millisecond)
	by.check()
}

// TestHostileSubscriptionFlood: a SUBSCRIBE with 1,000 filters is answered by
// one SUBACK with a reason code per filter, in order (MQTT-3.8.4-5,
// MQTT-3.8.4-6, MQTT-3.9.3-1), every subscription works, and the broker
// keeps serving others.
func TestHostileSubscriptionFlood(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	c, _ := connectWire(t, addr, codec.Version5, "subflood", nil)
	const n = 1000
	subs := make([]codec.Subscription, n)
	for i := range subs {
		subs[i] = subscription(fmt.Sprintf("subflood/%d", i), byte(i%3))
	}
	codes := c.subscribe(1, 0, subs...)
	testutil.Equal(t, len(codes), n, "SUBACK reason codes")
	for i, code := range codes {
		if code != byte(i%3) {
			t.Fatalf("reason code %d: %#02x, want %#02x", i, code, i%3)
		}
	}
	pub, _ := connectWire(t, addr, codec.Version5, "subflood-pub", nil)
	for _, i := range []int{0, 499, 999} {
		pub.publish(fmt.Sprintf("subflood/%d", i), 0, 0, false, fmt.Sprint(i))
		m := c.expectPublish()
		testutil.Equal(t, string(m.Payload), fmt.Sprint(i), "payload")
	}
	by.check()
}
