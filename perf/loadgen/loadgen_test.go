package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestRunCountsAddUp drives an in-process Tern with a bounded load and checks
// that every message sent reached every subscriber and was counted once.
func TestRunCountsAddUp(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	f := func(name string, o Options) {
		t.Helper()
		o.Addr = s.Addr().String()
		o.Duration = time.Second
		o.MaxMessages = 150
		o.SourceAddrs = 3
		o.ClientIDPrefix = name
		res, err := Run(context.Background(), o)
		testutil.Require(t, err, name)
		want := int64(o.Publishers) * o.MaxMessages
		testutil.Equal(t, res.Sent, want, name+": sent")
		per := int64(o.Subscribers)
		if o.Pairs || o.Filter != "" { // every filter given here is shared
			per = 1
		}
		testutil.Equal(t, res.Expected, want*per, name+": expected")
		testutil.Equal(t, res.Received, res.Expected, name+": received")
		testutil.Equal(t, res.Duplicates, int64(0), name+": duplicates")
		testutil.Equal(t, res.Misrouted, int64(0), name+": misrouted")
		testutil.Equal(t, res.Lost, int64(0), name+": lost")
		testutil.Equal(t, res.ConnErrors, int64(0), name+": connection errors")
		if o.QoS > 0 {
			testutil.Equal(t, res.Acked, want, name+": acked")
		}
		// Without a warm-up the interval starts before the first PUBLISH.
		if res.SentMeasured <= 0 || res.SentMeasured > res.Sent || res.Throughput <= 0 {
			t.Fatalf("%s: measured %d of %d sent at %.0f/s", name, res.SentMeasured, res.Sent, res.Throughput)
		}
	}
	f("fanin-qos0", Options{Publishers: 3, Subscribers: 1, QoS: 0, Batch: 16})
	f("fanin-qos1", Options{Publishers: 3, Subscribers: 1, QoS: 1, Window: 8})
	f("fanout-qos1", Options{Publishers: 1, Subscribers: 4, QoS: 1})
	f("fanin-qos1-persistent", Options{Publishers: 3, Subscribers: 1, QoS: 1, Window: 8,
		PersistentSubscribers: true, PersistentPublishers: true})
	f("fanin-qos2", Options{Publishers: 3, Subscribers: 1, QoS: 2, Window: 8})
	f("fanout-qos2", Options{Publishers: 1, Subscribers: 3, QoS: 2})
	f("p2p-qos1", Options{Publishers: 4, Subscribers: 4, QoS: 1, Pairs: true, TopicPrefix: "bench/p2p/"})
	f("shared-qos1", Options{Publishers: 3, Subscribers: 4, QoS: 1, Filter: "$share/g/bench/+"})
	f("shared-qos2", Options{Publishers: 3, Subscribers: 2, QoS: 2, Filter: "$share/g/bench/+"})
	f("shared-qos0", Options{Publishers: 2, Subscribers: 2, QoS: 0, Filter: "$share/g/bench/+", Batch: 16})
}

// TestRunQoS2DrainCompletes bounds a QoS 2 run by time only, so that it
// stops with messages in flight: their PUBRELs, held back by the stop, must
// still go out, or a broker that forwards on PUBREL would leave them lost.
func TestRunQoS2DrainCompletes(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	res, err := Run(context.Background(), Options{Addr: s.Addr().String(), Publishers: 2, QoS: 2,
		Duration: 300 * time.Millisecond, ClientIDPrefix: "qos2-drain"})
	testutil.Require(t, err, "run")
	if res.Sent == 0 || res.Lost != 0 || res.Duplicates != 0 || res.DrainEnd != "complete" {
		t.Fatalf("sent %d, acked %d, received %d, duplicates %d, lost %d, drain %s",
			res.Sent, res.Acked, res.Received, res.Duplicates, res.Lost, res.DrainEnd)
	}
	testutil.Equal(t, res.Acked, res.Sent, "acked (PUBCOMP) once the drain completed")
}

// TestSubscriberAccounting feeds one subscriber crafted PUBLISHes over a
// pipe, as a broker that duplicates and misroutes would, and checks what it
// counts and how it acknowledges them.
func TestSubscriberAccounting(t *testing.T) {
	r := &run{o: Options{Publishers: 2, QoS: 2}}
	broker, client := net.Pipe()
	var ct counters
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.subscribe(client, &ct, newSeen(2), []byte("bench/p2p/0"), 4096)
	}()
	want := []byte{0x50, 2, 0, 1, 0x50, 2, 0, 2, 0x50, 2, 0, 3, 0x50, 2, 0, 4, 0x50, 2, 0, 5, 0x50, 2, 0, 6, 0x70, 2, 0, 1}
	acks := make([]byte, len(want))
	read := make(chan error)
	go func() { _, err := io.ReadFull(broker, acks); read <- err }()

	pub := func(topic string, qos byte, id uint16, pubIdx int, seq uint64) {
		t.Helper()
		payload := make([]byte, 64)
		putTag(payload, pubIdx, seq)
		p := codec.Publish{QoS: qos, PacketID: id, Topic: []byte(topic), Payload: payload}
		b, err := p.Append(nil, codec.Version311)
		testutil.Require(t, err, "encode")
		_, err = broker.Write(b)
		testutil.Require(t, err, "write")
	}
	pub("bench/p2p/0", 2, 1, 0, 0)
	pub("bench/p2p/0", 2, 2, 0, 1)
	pub("bench/p2p/0", 2, 3, 0, 0)                // duplicate of the first
	pub("bench/p2p/0", 2, 4, 1, 0)                // another publisher's seq 0: not a duplicate
	pub("bench/p2p/1", 2, 5, 1, 1)                // another subscriber's topic
	pub("bench/p2p/0", 2, 6, 7, 0)                // no such publisher
	_, err := broker.Write([]byte{0x62, 2, 0, 1}) // PUBREL 1
	testutil.Require(t, err, "write PUBREL")
	testutil.Require(t, <-read, "read acknowledgements")
	_ = client.Close()
	<-done
	_ = broker.Close()

	testutil.Equal(t, ct.received.Load(), int64(6), "received")
	testutil.Equal(t, ct.dups.Load(), int64(1), "duplicates")
	testutil.Equal(t, ct.misrouted.Load(), int64(2), "misrouted")
	if !bytes.Equal(acks, want) {
		t.Fatalf("acks % x, want % x (PUBREC 1..6, PUBCOMP 1)", acks, want)
	}
}

func TestSeen(t *testing.T) {
	f := func(tags []tag, wantDups int64) {
		t.Helper()
		testutil.Equal(t, newSeen(3).add(tags), wantDups, "duplicates")
	}
	f(nil, 0)
	f([]tag{{0, 0}, {1, 0}, {2, 0}, {0, 1}}, 0)
	f([]tag{{0, 5}, {0, 5}, {0, 5}}, 2)
	f([]tag{{2, 64}, {2, 63}, {2, 1 << 20}, {2, 64}}, 1)
	s := newSeen(2) // across calls, as a shared group's subscribers make them
	testutil.Equal(t, s.add([]tag{{1, 9}}), int64(0), "first call")
	testutil.Equal(t, s.add([]tag{{1, 9}, {1, 10}}), int64(1), "second call")
}

func TestParseStat(t *testing.T) {
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := parseStat([]byte(in))
		testutil.Require(t, err, in)
		testutil.Equal(t, got, want, in)
	}
	f("1234 (tern) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 6 0 100 0 0", 3*time.Second)
	f("99 (a b) c)) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0", 100*time.Millisecond)
}
