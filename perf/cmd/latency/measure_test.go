package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestMeasure runs a short, slow measurement against an in-process Tern and
// checks that every measured message arrived once with a plausible latency.
func TestMeasure(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	f := func(qos byte) {
		t.Helper()
		o := options{Addr: s.Addr().String(), BrokerPID: os.Getpid(), QoS: qos, Rate: 2000, Tick: time.Millisecond,
			Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond, Payload: 64, ClientID: "test-" + string('0'+qos)}
		res, err := measure(context.Background(), o)
		testutil.Require(t, err, "measure")
		// 2000/s for 300 ms, give or take the ticks around the edges.
		if res.Sent < 500 || res.Sent > 700 {
			t.Fatalf("QoS %d: sent %d in the measured interval, want about 600", qos, res.Sent)
		}
		testutil.Equal(t, res.Received, res.Sent, "received")
		testutil.Equal(t, res.Lost, int64(0), "lost")
		testutil.Equal(t, res.Dups, int64(0), "duplicates")
		testutil.Equal(t, res.DrainEnd, "complete", "drain end")
		if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.P999 || res.P999 > res.Max || res.Max > 1e6 {
			t.Fatalf("QoS %d: implausible latencies %+v", qos, res)
		}
	}
	f(0)
	f(1)
}

func TestQuantile(t *testing.T) {
	v := []int64{1000, 2000, 3000, 4000}
	f := func(q, want float64) {
		t.Helper()
		testutil.Equal(t, quantile(v, q), want, "quantile")
	}
	f(0.5, 2)
	f(0.75, 3)
	f(0.99, 4)
	f(1, 4)
	testutil.Equal(t, quantile(nil, 0.5), 0, "empty")
}
