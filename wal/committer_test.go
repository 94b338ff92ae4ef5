package wal

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func TestGroupCommitBatches(t *testing.T) {
	// The first commit blocks in the hook while many changes queue up: they
	// must go out in few commits, not one each.
	gate := newCommitGate()
	var commits, changes atomic.Int64
	o := Options{}
	o.hooks.afterCommit = func(n int) {
		commits.Add(1)
		changes.Add(int64(n))
		gate.hook(n)
	}
	s := openTest(t, nil, o)
	defer s.Close()

	var w waiter
	b, _, _ := publishBatch(s, "pub", "t", "x", "sub")
	gate.hold(t, s, &w, b)
	const n = 2000
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 8 {
				b, _, _ := publishBatch(s, fmt.Sprint("pub", g), "t", fmt.Sprint(i), "sub")
				w.submit(t, s, b)
			}
		}()
	}
	wg.Wait()
	gate.open()
	w.wait(t)
	if changes.Load() != n+1 {
		t.Fatalf("committed %d changes, want %d", changes.Load(), n+1)
	}
	if c := commits.Load(); c > 10 {
		t.Fatalf("%d changes took %d commits; group commit should need a handful", n+1, c)
	}
	st := s.Stats()
	if st.Changes != n+1 || st.Commits != uint64(commits.Load()) || st.Syncs != st.Commits {
		t.Fatalf("stats %+v", st)
	}
}

func TestCompletionOrder(t *testing.T) {
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		t.Run(d.String(), func(t *testing.T) {
			s := openTest(t, nil, Options{Durability: d, SyncInterval: time.Millisecond})
			defer s.Close()
			var mu sync.Mutex
			var got []int
			var w waiter
			for i := range 3000 {
				b := NewBatch(KindSubscribe, []byte("c"))
				b.SubPut([]byte("c"), []byte(fmt.Sprint("f/", i)), &Subscription{QoS: 1})
				w.wg.Add(1)
				if err := s.Submit(b, func(err error) {
					mu.Lock()
					got = append(got, i)
					mu.Unlock()
					w.wg.Done()
				}); err != nil {
					t.Fatal(err)
				}
			}
			w.wait(t)
			for i, v := range got {
				if v != i {
					t.Fatalf("completion %d was change %d: out of submission order", i, v)
				}
			}
		})
	}
}

func TestDurabilityModes(t *testing.T) {
	t.Run("sync", func(t *testing.T) {
		s := openTest(t, nil, Options{})
		defer s.Close()
		for range 3 {
			mustSubmit(t, s, NewBatch(KindConnect, []byte("c")))
		}
		if st := s.Stats(); st.Commits != 3 || st.Syncs != 3 {
			t.Fatalf("one change at a time: want 3 commits and 3 syncs, got %+v", st)
		}
	})
	t.Run("batch", func(t *testing.T) {
		const interval = 200 * time.Millisecond
		s := openTest(t, nil, Options{Durability: DurabilityBatch, SyncInterval: interval})
		defer s.Close()
		// The first change finds no recent sync and syncs at once.
		start := time.Now()
		mustSubmit(t, s, NewBatch(KindConnect, []byte("c")))
		if time.Since(start) > interval/2 {
			t.Fatalf("first change waited %v", time.Since(start))
		}
		// The next one is committed without sync and completes only after the
		// sync, one interval after the first.
		mustSubmit(t, s, NewBatch(KindConnect, []byte("c")))
		if el := time.Since(start); el < interval*3/4 {
			t.Fatalf("second change completed after %v, before the sync interval %v", el, interval)
		}
		if st := s.Stats(); st.Commits != 2 || st.Syncs != 2 {
			t.Fatalf("want 2 commits and 2 syncs, got %+v", st)
		}
		// Many changes within one interval share one sync.
		var w waiter
		for range 100 {
			w.submit(t, s, NewBatch(KindConnect, []byte("c")))
		}
		w.wait(t)
		if st := s.Stats(); st.Syncs > 4 {
			t.Fatalf("100 changes in one interval took %d syncs", st.Syncs-2)
		}
	})
	t.Run("none", func(t *testing.T) {
		s := openTest(t, nil, Options{Durability: DurabilityNone})
		defer s.Close()
		for range 3 {
			mustSubmit(t, s, NewBatch(KindConnect, []byte("c")))
		}
		if st := s.Stats(); st.Commits != 3 || st.Syncs != 0 {
			t.Fatalf("want 3 commits and no sync, got %+v", st)
		}
	})
}

// failingWAL returns an injector that, while on, fails every write and sync
// of Pebble's WAL files.
func failingWAL() *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFileWrite, errorfs.OpFileWriteAt:
			return errorfs.ErrInjected
		}
		return nil
	})}
}

func TestWALFailureFailsGroupThenRecovers(t *testing.T) {
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		t.Run(d.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			inj := failingWAL()
			s := openTest(t, errorfs.Wrap(mem, inj), Options{Durability: d, RetryInterval: 10 * time.Millisecond})
			defer s.Close()
			if _, err := s.Load(); err != nil {
				t.Fatal(err)
			}
			b, before, _ := publishBatch(s, "p", "t", "before", "sub")
			mustSubmit(t, s, b)

			inj.On()
			// Under sync and batch the first change fails; under none, changes
			// complete until Pebble writes its WAL buffer out and fails.
			var err error
			for i := 0; err == nil && i < 10000; i++ {
				b, _, _ := publishBatch(s, "p", "t", strings.Repeat("x", 1000), "sub")
				err = submitWait(t, s, b)
				if i > 0 && d != DurabilityNone {
					t.Fatalf("change %d succeeded with a failing WAL", i)
				}
				// Give Pebble's WAL flusher a turn to meet the error (with one
				// CPU it may not run while the committer keeps committing).
				// Otherwise the error first shows when Pebble rotates its WAL,
				// and Pebble panics there with its mutexes in a state that ends
				// the process: see the package doc.
				time.Sleep(time.Millisecond)
			}
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("change during the fault: got %v, want ErrUnavailable wrapping the injected error", err)
			}
			// Refused at once while failed, without a completion.
			b, _, _ = publishBatch(s, "p", "t", "refused", "sub")
			if err := s.Submit(b, func(error) { t.Error("completion of a refused change") }); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Submit while failed: %v", err)
			}
			if s.Err() == nil {
				t.Fatal("Err() nil while failed")
			}

			inj.Off()
			deadline := time.Now().Add(5 * time.Second)
			for s.Err() != nil {
				if time.Now().After(deadline) {
					t.Fatalf("store did not recover: %v", s.Err())
				}
				time.Sleep(5 * time.Millisecond)
			}
			b, after, _ := publishBatch(s, "p", "t", "after", "sub")
			mustSubmit(t, s, b)
			if s.Stats().Recovery != 1 {
				t.Fatalf("stats %+v", s.Stats())
			}
			// What was synced before the fault survives the reopen; under none
			// nothing was, and the failed write took the buffered changes along.
			if d != DurabilityNone && !hasKey(t, s, messageKey(nil, before)) {
				t.Fatal("a change synced before the fault is missing")
			}
			if !hasKey(t, s, messageKey(nil, after)) {
				t.Fatal("a change committed after the recovery is missing")
			}
		})
	}
}

func TestLowDiskSpaceRefusesNewDataOnly(t *testing.T) {
	mem := vfs.NewMem()
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30})
	s := openTest(t, mem, Options{MinFreeBytes: 100 << 20, RetryInterval: 10 * time.Millisecond})
	defer s.Close()
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	b, id, seqs := publishBatch(s, "p", "t", "x", "sub")
	mustSubmit(t, s, b)

	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 10 << 20, TotalBytes: 2 << 30})
	time.Sleep(2 * spaceCheckEvery)
	b, _, _ = publishBatch(s, "p", "t", "y", "sub")
	if err := submitWait(t, s, b); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("new message on a full disk: %v, want ErrDiskFull", err)
	}
	b, _, _ = publishBatch(s, "p", "t", "z", "sub")
	if err := s.Submit(b, nil); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Submit of new data on a full disk: %v, want ErrDiskFull", err)
	}
	// Acknowledgements still go through: they free space.
	ack := NewBatch(KindPuback, []byte("sub"))
	ack.QueueDelete([]byte("sub"), seqs[0], id)
	mustSubmit(t, s, ack)
	if hasKey(t, s, messageKey(nil, id)) {
		t.Fatal("body of an acknowledged message kept")
	}

	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30})
	deadline := time.Now().Add(5 * time.Second)
	for s.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store did not take data again: %v", s.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	b, _, _ = publishBatch(s, "p", "t", "back", "sub")
	mustSubmit(t, s, b)
}

func TestSubmitNeverBlocks(t *testing.T) {
	gate := newCommitGate()
	o := Options{MaxPending: 4}
	o.hooks.afterCommit = gate.hook
	s := openTest(t, nil, o)
	defer s.Close()
	var w waiter
	gate.hold(t, s, &w, NewBatch(KindConnect, []byte("c")))
	for range 4 {
		w.submit(t, s, NewBatch(KindConnect, []byte("c")))
	}
	if err := s.Submit(NewBatch(KindConnect, []byte("c")), nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit on a full queue: %v, want ErrQueueFull", err)
	}
	gate.open()
	w.wait(t)
}

func TestCloseCompletesPendingAndRefusesNew(t *testing.T) {
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		t.Run(d.String(), func(t *testing.T) {
			s := openTest(t, nil, Options{Durability: d, SyncInterval: time.Hour})
			var done atomic.Int32
			for range 100 {
				if err := s.Submit(NewBatch(KindConnect, []byte("c")), func(err error) {
					if err != nil {
						t.Error(err)
					}
					done.Add(1)
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if done.Load() != 100 {
				t.Fatalf("%d of 100 completions called by Close", done.Load())
			}
			if err := s.Submit(NewBatch(KindConnect, []byte("c")), nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Submit after Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestMessageBodiesFollowTheirQueueEntries(t *testing.T) {
	gate := newCommitGate()
	o := Options{}
	o.hooks.afterCommit = gate.hook
	s := openTest(t, nil, o)
	defer s.Close()
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	cid := func(s string) []byte { return []byte(s) }
	b, id, seqs := publishBatch(s, "p", "t", "x", "a", "b", "c")
	mustSubmit(t, s, b)
	if n := countFamily(t, s, famMessage); n != 1 {
		t.Fatalf("a message queued for 3 sessions stored %d times", n)
	}

	ack := NewBatch(KindPuback, cid("a"))
	ack.QueueDelete(cid("a"), seqs[0], id)
	mustSubmit(t, s, ack)
	if !hasKey(t, s, messageKey(nil, id)) {
		t.Fatal("body deleted while two entries refer to it")
	}
	// A range deletion releases b's reference; the session deletion c's.
	rng := NewBatch(KindDrop, cid("b"))
	rng.QueueDeleteRange(cid("b"), 0, seqs[1]+1)
	mustSubmit(t, s, rng)
	if !hasKey(t, s, messageKey(nil, id)) {
		t.Fatal("body deleted while one entry refers to it")
	}
	end := NewBatch(KindSessionEnd, cid("c"))
	end.SessionDelete(cid("c"))
	mustSubmit(t, s, end)
	if hasKey(t, s, messageKey(nil, id)) {
		t.Fatal("body kept after its last entry was deleted")
	}
	if n := countFamily(t, s, famQueue); n != 0 {
		t.Fatalf("%d queue entries left", n)
	}

	// Put and range-delete in one group: the range sees the entry put just
	// before it.
	var w waiter
	gate.hold(t, s, &w, NewBatch(KindConnect, cid("x")))
	b, id, _ = publishBatch(s, "p", "t", "y", "d")
	w.submit(t, s, b)
	end = NewBatch(KindSessionEnd, cid("d"))
	end.SessionDelete(cid("d"))
	w.submit(t, s, end)
	gate.open()
	w.wait(t)
	if hasKey(t, s, messageKey(nil, id)) {
		t.Fatal("body kept after its session was deleted in the same group")
	}
}

func TestSessionDeleteLeavesOtherSessions(t *testing.T) {
	s := openTest(t, nil, Options{})
	defer s.Close()
	ids := []string{"a", "a\x00", "ab", "", "a\x01"}
	for _, id := range ids {
		b := NewBatch(KindConnect, []byte(id))
		b.SessionPut([]byte(id), &Session{Expiry: 60})
		b.SubPut([]byte(id), []byte("f"), &Subscription{QoS: 1})
		b.InboundQoS2Put([]byte(id), 7, 1)
		b.WillPut([]byte(id), &Will{Msg: Message{Topic: []byte("w")}})
		mustSubmit(t, s, b)
		pb, _, _ := publishBatch(s, "p", "t", "m", id)
		mustSubmit(t, s, pb)
	}
	end := NewBatch(KindSessionEnd, []byte("a"))
	end.SessionDelete([]byte("a"))
	mustSubmit(t, s, end)
	for _, fam := range sessionFamilies {
		if n, want := countFamily(t, s, fam), len(ids)-1; n != want {
			t.Errorf("%s: %d keys after deleting one of %d sessions, want %d", familyName(fam), n, len(ids), want)
		}
	}
}

func TestChangeLogIsTrimmed(t *testing.T) {
	s := openTest(t, nil, Options{LogRetain: 32})
	defer s.Close()
	for range 200 {
		mustSubmit(t, s, NewBatch(KindConnect, []byte("c")))
	}
	n := countFamily(t, s, famLog)
	if n < 32 || n > 32+2 {
		t.Fatalf("log holds %d records, want 32 (+ one trim step)", n)
	}
	s.dbMu.RLock()
	first, last, err := logBounds(s.db)
	s.dbMu.RUnlock()
	if err != nil || last != 200 || last-first+1 != uint64(n) {
		t.Fatalf("log bounds [%d, %d] (%v) for %d records", first, last, err, n)
	}
}

// A queue entry put and deleted in one commit is not written, nor is a body
// only such entries referred to; a body another entry still refers to is
// kept, and so is everything put in an earlier commit.
func TestElisionWithinACommit(t *testing.T) {
	fs := vfs.NewMem()
	s := openTest(t, fs, Options{Durability: DurabilityBatch, SyncInterval: time.Hour})
	if _, err := s.Load(); err != nil {
		t.Fatal(err)
	}
	sub := NewBatch(KindConnect, []byte("a"))
	sub.SessionPut([]byte("a"), &Session{Expiry: 60})
	sub2 := NewBatch(KindConnect, []byte("b"))
	sub2.SessionPut([]byte("b"), &Session{Expiry: 60})
	// Gathered until Close syncs them: one commit.
	gone, goneID, goneSeqs := publishBatch(s, "p", "t", "acked by all", "a", "b")
	kept, keptID, keptSeqs := publishBatch(s, "p", "t", "acked by one", "a", "b")
	var batches []*Batch
	batches = append(batches, sub, sub2, gone, kept)
	del := NewBatch(KindPuback, []byte("a"))
	del.QueueDelete([]byte("a"), goneSeqs[0], goneID)
	del.QueueDelete([]byte("a"), keptSeqs[0], keptID)
	del2 := NewBatch(KindPuback, []byte("b"))
	del2.QueueDelete([]byte("b"), goneSeqs[1], goneID)
	batches = append(batches, del, del2)
	for _, b := range batches {
		if err := s.Submit(b, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, fs, Options{})
	defer s.Close()
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 1 || st.Orphans != 0 || st.Dangling != 0 {
		t.Fatalf("bodies %d orphans %d dangling %d, want 1 0 0", st.Messages, st.Orphans, st.Dangling)
	}
	for _, ss := range st.Sessions {
		want := 0
		if ss.ClientID == "b" {
			want = 1
		}
		if len(ss.Queue) != want || want == 1 && string(ss.Queue[0].Msg.Payload) != "acked by one" {
			t.Fatalf("session %s queue %+v", ss.ClientID, ss.Queue)
		}
	}
}
