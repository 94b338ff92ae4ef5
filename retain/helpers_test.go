package retain

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/wal"
)

// testLogger discards unless the test runs with -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// checkLive fails the test when it ends with more or fewer live messages
// than it started with, in builds that count them (-race, invariants).
// Call it first: cleanups run last in first out, so it runs after the
// harness's.
func checkLive(t testing.TB) {
	t.Helper()
	before, on := message.Live()
	if !on {
		return
	}
	t.Cleanup(func() {
		if after, _ := message.Live(); after != before {
			t.Errorf("%d messages live after the test, %d before: a reference leaked or was released twice", after, before)
		}
	})
}

// openStore opens and loads the store in dir.
func openStore(t testing.TB, dir string) (*wal.Store, *wal.State) {
	t.Helper()
	st, err := wal.Open(wal.Options{Dir: dir, Durability: wal.DurabilityNone, MinFreeBytes: -1, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	state, err := st.Load()
	if err != nil {
		t.Fatalf("load store: %v", err)
	}
	return st, state
}

// newMsg returns a retained QoS 1 message with a content type, holding one
// reference the caller releases.
func newMsg(topic, payload string) *message.Message {
	var props codec.Properties
	props.SetContentType([]byte("text/plain"))
	return message.New([]byte(topic), []byte(payload), &props, 1, true, 7, time.Now())
}

// submit hands b to st and waits for its completion, which it passes to
// commit as the engine does.
func submit(t testing.TB, st *wal.Store, b *wal.Batch, commit func(error)) {
	t.Helper()
	ch := make(chan error, 1)
	if err := st.Submit(b, func(err error) { commit(err); ch <- err }); err != nil {
		commit(err)
		t.Fatalf("submit: %v", err)
	}
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("completion: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("completion not called within 10s")
	}
}

// harness drives an Index in either mode the same way.
type harness struct {
	t   testing.TB
	x   *Index
	o   Options
	st  *wal.Store // nil in memory mode
	dir string
}

func newMemoryHarness(t testing.TB, o Options) *harness {
	o.Logger = testLogger(t)
	h := &harness{t: t, o: o, x: NewMemory(o)}
	t.Cleanup(h.close)
	return h
}

func newDiskHarness(t testing.TB, o Options) *harness {
	o.Logger = testLogger(t)
	h := &harness{t: t, o: o, dir: t.TempDir()}
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	st, state := openStore(h.t, h.dir)
	h.st = st
	h.x = NewDisk(st, state.Retained, state.RetainedBytes, h.o)
}

func (h *harness) close() {
	if h.x != nil {
		h.x.Close()
		h.x = nil
	}
	if h.st != nil {
		if err := h.st.Close(); err != nil {
			h.t.Errorf("close store: %v", err)
		}
		h.st = nil
	}
}

// reopen closes the index and the store and opens them again, as a restart.
func (h *harness) reopen() {
	h.t.Helper()
	h.close()
	h.open()
}

// forModes runs test against a memory and a disk index.
func forModes(t *testing.T, o Options, test func(t *testing.T, h *harness)) {
	t.Run("memory", func(t *testing.T) {
		checkLive(t)
		test(t, newMemoryHarness(t, o))
	})
	t.Run("disk", func(t *testing.T) {
		checkLive(t)
		test(t, newDiskHarness(t, o))
	})
}

// begin makes the change of Set(topic, payload) and returns its batch (nil
// in memory mode) and commit func, without submitting.
func (h *harness) begin(topic, payload string) (*wal.Batch, func(error), error) {
	m := newMsg(topic, payload)
	defer m.Release()
	var b *wal.Batch
	if h.st != nil {
		b = wal.NewBatch(wal.KindRetain, nil)
	}
	commit, err := h.x.Set(m, b)
	return b, commit, err
}

// set is Set(topic, payload) and, in disk mode, its commit.
func (h *harness) set(topic, payload string) error {
	h.t.Helper()
	b, commit, err := h.begin(topic, payload)
	if err != nil {
		return err
	}
	if b == nil || b.Len() == 0 {
		commit(nil)
		return nil
	}
	submit(h.t, h.st, b, commit)
	return nil
}

func (h *harness) mustSet(topic, payload string) {
	h.t.Helper()
	if err := h.set(topic, payload); err != nil {
		h.t.Fatalf("Set(%q, %q): %v", topic, payload, err)
	}
}

// get returns the payload retained at topic.
func (h *harness) get(topic string) (string, bool) {
	h.t.Helper()
	m, ok, err := h.x.Get(topic)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", topic, err)
	}
	if !ok {
		return "", false
	}
	defer m.Release()
	if string(m.Topic) != topic {
		h.t.Fatalf("Get(%q) returned topic %q", topic, m.Topic)
	}
	return string(m.Payload), true
}

// match returns "topic=payload" for each match of filter, sorted.
func (h *harness) match(filter string) []string {
	h.t.Helper()
	var got []string
	err := h.x.Match(filter, func(m *message.Message) bool {
		got = append(got, fmt.Sprintf("%s=%s", m.Topic, m.Payload))
		return true
	})
	if err != nil {
		h.t.Fatalf("Match(%q): %v", filter, err)
	}
	slices.Sort(got)
	return got
}

// wantCounts checks Len and Bytes.
func (h *harness) wantCounts(n int, bytes int64) {
	h.t.Helper()
	if h.x.Len() != n || h.x.Bytes() != bytes {
		h.t.Fatalf("Len %d, Bytes %d; want %d, %d", h.x.Len(), h.x.Bytes(), n, bytes)
	}
}

// size is what Bytes counts for a message of newMsg.
func size(topic, payload string) int64 {
	m := newMsg(topic, payload)
	defer m.Release()
	return int64(m.Size())
}

// overlayLen returns the number of overlay entries of a disk index.
func (x *Index) overlayLen() int {
	n := 0
	for i := range x.shards {
		x.shards[i].mu.RLock()
		n += len(x.shards[i].overlay)
		x.shards[i].mu.RUnlock()
	}
	return n
}

// unsureLen returns the number of unsure topics of a disk index.
func (x *Index) unsureLen() int {
	n := 0
	for i := range x.shards {
		x.shards[i].mu.RLock()
		n += len(x.shards[i].unsure)
		x.shards[i].mu.RUnlock()
	}
	return n
}
