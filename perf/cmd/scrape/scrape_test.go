package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestOpenSessions opens persistent sessions on an in-process Tern and
// checks the broker holds them.
func TestOpenSessions(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	cs, err := openSessions(context.Background(), s.Addr().String(), 40, 3, 300, io.Discard)
	defer cs.close()
	testutil.Require(t, err, "openSessions")
	snap := s.Snapshot()
	testutil.Equal(t, snap.Sessions, 40, "sessions")
	testutil.Equal(t, snap.Subscriptions, 40, "subscriptions")
	testutil.Require(t, cs.dropped(), "dropped")
	infos, _ := s.Sessions(engine.SessionQuery{Prefix: "dev-1"})
	testutil.Equal(t, len(infos), 11, "sessions dev-1*") // dev-1, dev-10 .. dev-19
	subs, _ := s.Subscriptions(engine.SubscriptionQuery{Topic: "dev/5/cmd"})
	testutil.Equal(t, len(subs), 1, "subscriptions matching dev/5/cmd")
}

// TestBatch measures a fake admin endpoint; the "broker" is this process.
func TestBatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "0123456789")
	}))
	defer srv.Close()
	m := &measurer{admin: srv.URL, pid: os.Getpid(), requests: 9, progress: io.Discard}
	defer m.close()
	testutil.Require(t, m.waitReady(context.Background()), "waitReady")
	r, err := m.batch(context.Background(), "/v1/stats", 7)
	testutil.Require(t, err, "batch")
	testutil.Equal(t, r.Bytes, 10, "bytes")
	testutil.Equal(t, r.Conns, 7, "conns")
	if r.MedianMs <= 0 || r.P90Ms < r.MedianMs || r.MaxMs < r.P90Ms || r.CPUMsPerReq < 0 {
		t.Fatalf("bad summary: %+v", r)
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 50; i++ {
		s = append(s, time.Duration(i))
	}
	testutil.Equal(t, percentile(s, 0.9), time.Duration(45), "p90 of 1..50")
	testutil.Equal(t, median(s), time.Duration(25), "median of 1..50") // (25+26)/2 in integer ns
	testutil.Equal(t, percentile(s[:3], 0.9), time.Duration(3), "p90 of 3")
	testutil.Equal(t, median(s[:3]), time.Duration(2), "median of 3")
}
