package engine_test

import (
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestRetainedStormArrivesWhole: a subscription to "#" over many more
// retained messages than the subscriber's outbound and queue bounds hold
// receives every one of them, once, with RETAIN set (MQTT-3.3.1-9 sends the
// retained messages matching a new subscription; the bounds that drop QoS 0
// and refuse QoS 1 must not eat them), at QoS 0 and QoS 1, and while the
// subscriber reads slowly.
func TestRetainedStormArrivesWhole(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name string
		qos  byte
		slow bool
	}{{"qos0", 0, false}, {"qos1", 1, false}, {"qos0-slow-reader", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			// Bounds far below the storm: 16 KiB unsent, 50 queued.
			srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 16 << 10, MaxQueuedMessages: 50})
			addr := srv.Addr().String()
			pub, _ := connectWire(t, addr, codec.Version311, "storm-pub", nil)
			for i := range n {
				pub.publish(fmt.Sprintf("storm/%d/%d", i/100, i%100), 0, 0, true, fmt.Sprintf("payload-%06d-%s", i, string(make([]byte, 40))))
			}
			pub.ping() // every retained PUBLISH before it was handled

			sub, _ := connectWire(t, addr, codec.Version311, "storm-sub", nil)
			sub.subscribe(1, 0, subscription("#", tc.qos))
			seen := make(map[string]bool, n)
			deadline := time.Now().Add(30 * time.Second)
			for len(seen) < n {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d retained messages after 30 s", len(seen), n)
				}
				p, err := sub.next(5 * time.Second)
				if err != nil {
					t.Fatalf("after %d of %d retained messages: %v", len(seen), n, err)
				}
				if p.Type != codec.PUBLISH {
					t.Fatalf("got %v, want PUBLISH", p.Type)
				}
				if !p.Publish.Retain {
					t.Fatalf("%s without RETAIN (MQTT-3.3.1-8)", p.Publish.Topic)
				}
				topic := string(p.Publish.Topic)
				if seen[topic] {
					t.Fatalf("%s twice", topic)
				}
				seen[topic] = true
				if p.Publish.QoS == 1 {
					sub.ack(codec.PUBACK, p.Publish.PacketID)
				}
				if tc.slow && len(seen)%200 == 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			sub.expectNone(200 * time.Millisecond)
		})
	}
}

// TestRetainedStormNotStale: retained messages that wait for the
// subscriber's room are sent as their topic's retained message at the time
// they go out, so a subscriber never ends a topic on a value older than one
// published while it was not reading (its live copy may have been dropped at
// the full outbound bound). A value published during the send of an older
// one may arrive live before it; the newer one then follows again. Only the
// first messages, sent with the SUBACK before any v2 existed, may end on v1
// when their live v2 was dropped as QoS 0 is: the outbound bound is made
// tiny so that they are a handful.
func TestRetainedStormNotStale(t *testing.T) {
	const n = 2000
	const firstChunk = 32 // at most 512/2 bytes of ~16-byte messages, and some slack
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 512, MaxQueuedMessages: 50})
	addr := srv.Addr().String()
	pub, _ := connectWire(t, addr, codec.Version311, "stale-pub", nil)
	topic := func(i int) string { return fmt.Sprintf("stale/%d/%d", i/100, i%100) }
	for i := range n {
		pub.publish(topic(i), 0, 0, true, "v1")
	}
	pub.ping()

	sub, _ := connectWire(t, addr, codec.Version311, "stale-sub", nil)
	sub.subscribe(1, 0, subscription("#", 0))
	// The subscriber reads nothing while every topic gets v2: the paced
	// retained messages wait, and most live copies are dropped.
	for i := range n {
		pub.publish(topic(i), 0, 0, true, "v2")
	}
	pub.ping()
	last := make(map[string]string, n)
	for len(last) < n || countV1(last) > firstChunk {
		p, err := sub.next(3 * time.Second)
		if err != nil {
			t.Fatalf("%d topics seen, %d of them last at v1: %v", len(last), countV1(last), err)
		}
		if p.Type != codec.PUBLISH {
			t.Fatalf("got %v, want PUBLISH", p.Type)
		}
		last[string(p.Publish.Topic)] = string(p.Publish.Payload)
	}
	// Whatever still comes must not leave a topic on v1.
	for {
		p, err := sub.next(300 * time.Millisecond)
		if err != nil {
			break
		}
		last[string(p.Publish.Topic)] = string(p.Publish.Payload)
	}
	if k := countV1(last); k > firstChunk {
		t.Fatalf("%d topics end on v1 after v2 was published; at most the %d sent with the SUBACK may", k, firstChunk)
	}
	t.Logf("%d topics end on v1 (sent with the SUBACK, their live v2 dropped)", countV1(last))
}

func countV1(last map[string]string) int {
	n := 0
	for _, v := range last {
		if v == "v1" {
			n++
		}
	}
	return n
}

// TestRetainedStormTwoSubscriptions: two SUBSCRIBEs in a row, each over more
// retained messages than the subscriber's bounds hold, both arrive whole
// (the second waits for the first's pacing).
func TestRetainedStormTwoSubscriptions(t *testing.T) {
	const n = 1500
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 16 << 10, MaxQueuedMessages: 50})
	addr := srv.Addr().String()
	pub, _ := connectWire(t, addr, codec.Version311, "two-pub", nil)
	for _, root := range []string{"a", "b"} {
		for i := range n {
			pub.publish(fmt.Sprintf("%s/%d/%d", root, i/100, i%100), 0, 0, true, "payload")
		}
	}
	pub.ping()
	sub, _ := connectWire(t, addr, codec.Version311, "two-sub", nil)
	sub.send(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{subscription("a/#", 0)}}})
	sub.send(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 2, Subscriptions: []codec.Subscription{subscription("b/#", 0)}}})
	seen, subacks := make(map[string]bool, 2*n), 0
	for len(seen) < 2*n || subacks < 2 {
		p, err := sub.next(5 * time.Second)
		if err != nil {
			t.Fatalf("%d of %d retained messages, %d SUBACKs: %v", len(seen), 2*n, subacks, err)
		}
		switch p.Type {
		case codec.SUBACK:
			subacks++
		case codec.PUBLISH:
			if seen[string(p.Publish.Topic)] {
				t.Fatalf("%s twice", p.Publish.Topic)
			}
			seen[string(p.Publish.Topic)] = true
		default:
			t.Fatalf("unexpected %v", p.Type)
		}
	}
}

// TestRetainedStormPaho: the storm through paho.mqtt.golang, a real 3.1.1
// client, at QoS 1: every retained message arrives once with RETAIN set,
// though the session queue holds 50 and the outbound bound 16 KiB.
func TestRetainedStormPaho(t *testing.T) {
	const n = 2000
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 16 << 10, MaxQueuedMessages: 50})
	addr := srv.Addr().String()
	pub, _ := connect311(t, addr, "paho-storm-pub", true, nil)
	for i := range n {
		waitToken(t, pub.Publish(fmt.Sprintf("paho/%d/%d", i/100, i%100), 1, true, "v"), "publish")
	}
	got := make(chan mqtt.Message, n)
	sub, _ := connect311(t, addr, "paho-storm-sub", true, got)
	waitToken(t, sub.Subscribe("paho/#", 1, nil), "subscribe")
	seen := make(map[string]bool, n)
	for len(seen) < n {
		select {
		case m := <-got:
			if !m.Retained() {
				t.Fatalf("%s without RETAIN (MQTT-3.3.1-8)", m.Topic())
			}
			if seen[m.Topic()] {
				t.Fatalf("%s twice", m.Topic())
			}
			seen[m.Topic()] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d retained messages", len(seen), n)
		}
	}
}
