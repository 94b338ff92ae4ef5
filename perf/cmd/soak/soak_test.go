package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestShortSoak soaks a real Tern for 8 s with every load scaled down and
// checks that nothing was lost, every kind of load ran, and the broker was
// sampled. The trend verdict is logged, not asserted: 6 samples of a broker
// still warming up are not a soak.
func TestShortSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and soaks the broker for 8 s")
	}
	cfg := config{
		Broker: "tern", Duration: 8 * time.Second, Sample: time.Second, Warmup: 2 * time.Second,
		Drain: 10 * time.Second, SourceAddrs: 4,
		ChurnWorkers: 4, ChurnRate: 40, ChurnIDs: 40,
		Topics: 1000, TopicPubs: 1, TopicSubs: 4, TopicRate: 200,
		FanoutSubs: 40, FanoutQoS1: 8, FanoutRate: 10,
		Streams: 12, StreamRate: 20, StreamWindow: 16, Change: 500 * time.Millisecond,
		TrendPct: 10, Seed: 1,
		Progress: testWriter{t},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	start := time.Now()
	sum, err := run(ctx, cfg)
	testutil.Require(t, err, "run")
	var report strings.Builder
	sum.print(&report)
	t.Logf("%v:\n%s", time.Since(start).Round(time.Millisecond), report.String())

	testutil.Equal(t, sum.BrokerDied, false, "broker died")
	if len(sum.Samples) < 9 { // t=0 and one a second
		t.Fatalf("%d samples, want 9", len(sum.Samples))
	}
	for _, s := range sum.Samples {
		if s.RSS <= 0 || s.FDs <= 0 || s.Goroutines <= 0 {
			t.Fatalf("sample at %.1f s: RSS %d, fds %d, goroutines %d", s.T, s.RSS, s.FDs, s.Goroutines)
		}
	}
	testutil.Equal(t, sum.Drain.Complete, true, "drain complete")
	tr := sum.Tracked
	testutil.Equal(t, tr.QoS1.Lost+tr.QoS2.Lost+sum.Fanout.QoS1.Lost, int64(0), "acknowledged messages lost")
	testutil.Equal(t, tr.QoS2.Duplicates+sum.Churn.QoS2Duplicates, int64(0), "QoS 2 duplicates")
	testutil.Equal(t, tr.QoS1.Unexpected+tr.QoS2.Unexpected, int64(0), "unexpected deliveries")
	testutil.Equal(t, tr.NotClosed, int64(0), "takeovers that left the old connection open")
	testutil.Equal(t, tr.SessionLost, int64(0), "sessions lost")
	testutil.Equal(t, sumErrors(sum.Errors), int64(0), "client errors")
	if tr.QoS1.Acked == 0 || tr.QoS2.Acked == 0 || tr.Takeovers == 0 || tr.Reconnects == 0 ||
		sum.Churn.Cycles == 0 || sum.Fanout.QoS1.Acked == 0 || sum.Topics.Received == 0 {
		t.Fatalf("some load did not run: %+v, churn %+v, fan-out %+v, topics %+v", tr, sum.Churn, sum.Fanout, sum.Topics)
	}
	for _, tr := range sum.Trends {
		testutil.Equal(t, tr.Judged, true, tr.Series+" judged")
	}
}

// testWriter sends the progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
