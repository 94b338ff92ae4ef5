package wal

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// testLogger discards unless the test runs with -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// openTest opens a store on fs (a new MemFS when nil) in dir "/data".
func openTest(t testing.TB, fs vfs.FS, o Options) *Store {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	if o.Dir == "" {
		o.Dir = "/data"
	}
	o.FS = fs
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// submitWait submits b and waits for its completion.
func submitWait(t testing.TB, s *Store, b *Batch) error {
	t.Helper()
	ch := make(chan error, 1)
	if err := s.Submit(b, func(err error) { ch <- err }); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("completion not called within 10s")
		return nil
	}
}

func mustSubmit(t testing.TB, s *Store, b *Batch) {
	t.Helper()
	if err := submitWait(t, s, b); err != nil {
		t.Fatalf("submit: %v", err)
	}
}

// waiter counts completions.
type waiter struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (w *waiter) submit(t testing.TB, s *Store, b *Batch) {
	t.Helper()
	w.wg.Add(1)
	if err := s.Submit(b, func(err error) {
		if err != nil {
			w.mu.Lock()
			w.errs = append(w.errs, err)
			w.mu.Unlock()
		}
		w.wg.Done()
	}); err != nil {
		w.wg.Done()
		t.Fatalf("submit: %v", err)
	}
}

func (w *waiter) wait(t testing.TB) {
	t.Helper()
	w.wg.Wait()
	if err := errors.Join(w.errs...); err != nil {
		t.Fatalf("completions: %v", err)
	}
}

// publishBatch is the batch of a QoS 1 PUBLISH queued for the given
// sessions: one body, one queue entry per session.
func publishBatch(s *Store, publisher, topic, payload string, to ...string) (*Batch, uint64, []uint64) {
	id := s.NewMessageID()
	m := Message{Topic: []byte(topic), Payload: []byte(payload), QoS: 1, Created: 1}
	b := NewBatch(KindPublish, []byte(publisher))
	b.SetTopic(m.Topic, 1, len(payload))
	b.MessagePut(id, &m)
	seqs := make([]uint64, len(to))
	for i, cid := range to {
		seqs[i] = s.NewQueueSeq()
		b.QueuePut([]byte(cid), seqs[i], &QueueEntry{MsgID: id, QoS: 1})
	}
	return b, id, seqs
}

// hasKey reports whether the store has key k.
func hasKey(t testing.TB, s *Store, k []byte) bool {
	t.Helper()
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	_, closer, err := s.db.Get(k)
	if err != nil {
		return false
	}
	closer.Close()
	return true
}

// countFamily counts the keys of a family.
func countFamily(t testing.TB, s *Store, fam byte) int {
	t.Helper()
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	lo, hi := familyBounds(fam)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// commitGate holds the committer after its next commit while armed, so that
// a test can queue changes behind it.
type commitGate struct {
	armed   atomic.Bool
	blocked chan struct{}
	release chan struct{}
}

func newCommitGate() *commitGate {
	return &commitGate{blocked: make(chan struct{}), release: make(chan struct{})}
}

func (g *commitGate) hook(int) {
	if g.armed.CompareAndSwap(true, false) {
		g.blocked <- struct{}{}
		<-g.release
	}
}

// hold arms the gate, submits b and returns once the committer is held
// after committing it.
func (g *commitGate) hold(t testing.TB, s *Store, w *waiter, b *Batch) {
	t.Helper()
	g.armed.Store(true)
	w.submit(t, s, b)
	<-g.blocked
}

func (g *commitGate) open() { g.release <- struct{}{} }
