package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/wal"
)

// TestPopulate writes a small layout and reads it back through wal.Load: the
// sessions, subscriptions and queues the checks expect, in order, with
// shared bodies, and the retained messages.
func TestPopulate(t *testing.T) {
	l := layout{sessions: 2*sessionsPerBatch + 7, subs: 2, queued: 3, retained: retainedPerBatch + 11}
	dir := t.TempDir()
	pop, err := populate(dir, l, nil)
	testutil.Require(t, err, "populate")
	testutil.Equal(t, pop.Bodies, 3*bodiesPerBatch, "bodies")
	if pop.Bytes <= 0 {
		t.Fatalf("data directory of %d bytes", pop.Bytes)
	}

	s, err := wal.Open(wal.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	testutil.Require(t, err, "open")
	defer s.Close()
	st, err := s.Load()
	testutil.Require(t, err, "load")
	testutil.Equal(t, len(st.Sessions), l.sessions, "sessions")
	testutil.Equal(t, st.Retained, l.retained, "retained")
	testutil.Equal(t, st.Messages, pop.Bodies, "message bodies")
	testutil.Equal(t, st.Orphans+st.Dangling, 0, "orphans and dangling records")
	for _, ss := range st.Sessions {
		var i int
		if _, err := fmt.Sscanf(ss.ClientID, "recover-%d", &i); err != nil {
			t.Fatalf("client id %q: %v", ss.ClientID, err)
		}
		testutil.Equal(t, ss.Session.Version, byte(4), ss.ClientID+": version")
		testutil.Equal(t, len(ss.Subs), l.subs, ss.ClientID+": subscriptions")
		for k := range l.subs {
			if !hasFilter(ss.Subs, l.filter(i, k)) {
				t.Fatalf("%s: no subscription to %s in %v", ss.ClientID, l.filter(i, k), ss.Subs)
			}
		}
		testutil.Equal(t, len(ss.Queue), l.queued, ss.ClientID+": queued")
		for k, q := range ss.Queue {
			b := l.body(i, k)
			if string(q.Msg.Topic) != bodyTopic(b) || !bytes.Equal(q.Msg.Payload, bodyPayload(b)) || q.Entry.QoS != 1 {
				t.Fatalf("%s: queue entry %d is %q %q QoS %d, want body %d", ss.ClientID, k, q.Msg.Topic, q.Msg.Payload, q.Entry.QoS, b)
			}
		}
	}
	for _, i := range []int{0, l.retained / 2, l.retained - 1} {
		m, ok, err := s.GetRetained([]byte(retainedTopic(i)))
		testutil.Require(t, err, "get retained")
		if !ok || !bytes.Equal(m.Payload, retainedPayload(i)) || len(m.Payload) != payloadSize {
			t.Fatalf("retained %s: %v %q", retainedTopic(i), ok, m.Payload)
		}
	}
}

func hasFilter(subs []wal.SubState, f string) bool {
	for _, s := range subs {
		if s.Filter == f && s.Sub.QoS == 1 {
			return true
		}
	}
	return false
}
