package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// A publisher faster than an online subscriber is held back, not dropped:
// with the subscriber's queue full, its PUBACKs wait until the queue drains,
// so a 3.1.1 publisher (whose PUBACK cannot refuse) loses nothing it was
// acknowledged for, and every message arrives in order.
func TestPublisherHeldBackByFullQueue(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxQueuedMessages: 10, MaxInflight: 5})
	addr := srv.Addr().String()
	sub, _ := connectWire(t, addr, codec.Version311, "slow", nil)
	sub.subscribe(1, 0, subscription("bp/#", 1))
	pub, _ := connectWire(t, addr, codec.Version311, "fast", nil)

	const n, window = 300, 40
	got := make(chan []string, 1)
	go func() {
		var payloads []string
		for len(payloads) < n {
			p, err := sub.next(10 * time.Second)
			if err != nil {
				break
			}
			if p.Type == codec.PUBLISH {
				payloads = append(payloads, string(p.Publish.Payload))
				time.Sleep(200 * time.Microsecond) // slower than the publisher
				b, _ := (&codec.Ack{Type: codec.PUBACK, PacketID: p.Publish.PacketID}).Append(nil, codec.Version311)
				_ = sub.tryWrite(b)
			}
		}
		got <- payloads
	}()
	acked, sent := 0, 0
	for acked < n {
		for sent < n && sent-acked < window {
			sent++
			pub.publish("bp/t", 1, uint16(sent), false, fmt.Sprint(sent))
		}
		pub.expectAck(codec.PUBACK, uint16(acked+1))
		acked++
	}
	payloads := <-got
	if len(payloads) != n {
		t.Fatalf("subscriber got %d of %d acknowledged messages", len(payloads), n)
	}
	for i, p := range payloads {
		if p != fmt.Sprint(i+1) {
			t.Fatalf("message %d is %q: out of order", i+1, p)
		}
	}
	if s := srv.Snapshot(); s.HeldBack == 0 || s.Refused != 0 {
		t.Fatalf("held back %d times, refused %d: the queue bound never held the publisher back", s.HeldBack, s.Refused)
	}
}

// A subscriber that stopped reading does not slow its publishers down for
// long (MQTT lets the broker drop for it; DESIGN invariant 5): once it has
// acknowledged nothing for a while, its full queue refuses instead of
// holding the publisher back, and the publisher's PUBACKs come promptly.
func TestStalledSubscriberDoesNotHoldPublishersBack(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxQueuedMessages: 10, MaxInflight: 5})
	addr := srv.Addr().String()
	stalled, _ := connectWire(t, addr, codec.Version5, "stalled", nil)
	stalled.subscribe(1, 0, subscription("st/#", 1))
	time.Sleep(1100 * time.Millisecond) // it has acknowledged nothing since it connected
	pub, _ := connectWire(t, addr, codec.Version5, "pub", nil)
	began := time.Now()
	for i := 1; i <= 200; i++ {
		pub.publish("st/t", 1, uint16(i), false, "m")
		pub.expectAck(codec.PUBACK, uint16(i))
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("200 PUBACKs took %v: a stalled subscriber held the publisher back", took)
	}
	if s := srv.Snapshot(); s.Refused == 0 {
		t.Fatal("nothing refused for the stalled subscriber's full queue")
	}
}
