package loadgen

import (
	"context"
	"testing"
	"time"

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
		testutil.Equal(t, res.Expected, want*int64(o.Subscribers), name+": expected")
		testutil.Equal(t, res.Received, res.Expected, name+": received")
		testutil.Equal(t, res.Lost, int64(0), name+": lost")
		testutil.Equal(t, res.ConnErrors, int64(0), name+": connection errors")
		if o.QoS == 1 {
			testutil.Equal(t, res.Acked, want, name+": acked")
		}
		// Publishers start before the interval does, so it may miss a few.
		if res.SentMeasured <= 0 || res.SentMeasured > res.Sent || res.Throughput <= 0 {
			t.Fatalf("%s: measured %d of %d sent at %.0f/s", name, res.SentMeasured, res.Sent, res.Throughput)
		}
	}
	f("fanin-qos0", Options{Publishers: 3, Subscribers: 1, QoS: 0, Batch: 16})
	f("fanin-qos1", Options{Publishers: 3, Subscribers: 1, QoS: 1, Window: 8})
	f("fanout-qos1", Options{Publishers: 1, Subscribers: 4, QoS: 1})
	f("fanin-qos1-persistent", Options{Publishers: 3, Subscribers: 1, QoS: 1, Window: 8,
		PersistentSubscribers: true, PersistentPublishers: true})
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
