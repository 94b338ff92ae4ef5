package wal

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func benchStore(b *testing.B, d Durability, dir string) *Store {
	b.Helper()
	s, err := Open(Options{Dir: dir, Durability: d, FS: vfs.Default, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Load(); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSubmit measures Submit plus group commit of QoS 1 PUBLISH
// changes (a 64-byte message stored once and queued for one persistent
// subscriber, with its change-log record) on a temp dir, with up to 4096
// changes awaiting their completion, as many connections would.
func BenchmarkSubmit(b *testing.B) {
	payload := make([]byte, 64)
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		b.Run(d.String(), func(b *testing.B) {
			s := benchStore(b, d, b.TempDir())
			defer s.Close()
			sem := make(chan struct{}, 4096)
			var wg sync.WaitGroup
			done := func(err error) {
				if err != nil {
					b.Error(err)
				}
				<-sem
				wg.Done()
			}
			publisher, subscriber, topic := []byte("publisher-1"), []byte("subscriber-1"), []byte("sensors/room-1/temp")
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sem <- struct{}{}
					wg.Add(1)
					m := Message{Topic: topic, Payload: payload, QoS: 1, Created: 1}
					id := s.NewMessageID()
					bt := NewBatch(KindPublish, publisher)
					bt.SetTopic(topic, 1, len(payload))
					bt.MessagePut(id, &m)
					bt.QueuePut(subscriber, s.NewQueueSeq(), &QueueEntry{MsgID: id, QoS: 1})
					for s.Submit(bt, done) == ErrQueueFull {
						time.Sleep(10 * time.Microsecond) // cannot happen: the semaphore is below MaxPending
					}
				}
			})
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(st.Changes)/el.Seconds(), "changes/s")
			b.ReportMetric(float64(st.Changes)/float64(max(st.Commits, 1)), "changes/commit")
			b.ReportMetric(float64(st.Syncs), "syncs")
		})
	}
}

// BenchmarkLoad measures Load and a full RangeRetained of a store with
// sessions (one subscription and two queued messages each) and retained
// messages. TERN_WAL_BIG=1 runs the size: 100k sessions, 1M retained.
func BenchmarkLoad(b *testing.B) {
	sessions, retained := 10_000, 100_000
	if os.Getenv("TERN_WAL_BIG") != "" {
		sessions, retained = 100_000, 1_000_000
	}
	dir := b.TempDir()
	s := benchStore(b, DurabilityNone, dir)
	var wg sync.WaitGroup
	// submit retries a full queue with a new batch: Submit takes the batch
	// over even when it refuses it.
	submit := func(build func() *Batch) {
		wg.Add(1)
		for {
			err := s.Submit(build(), func(err error) {
				if err != nil {
					b.Error(err)
				}
				wg.Done()
			})
			if err == nil {
				return
			}
			if err != ErrQueueFull {
				b.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	payload := make([]byte, 100)
	for i := range sessions {
		submit(func() *Batch {
			cid := []byte("client-" + strconv.Itoa(i))
			bt := NewBatch(KindConnect, cid)
			bt.SessionPut(cid, &Session{Expiry: 3600, Version: 5})
			bt.SubPut(cid, []byte("devices/"+strconv.Itoa(i)+"/#"), &Subscription{QoS: 1})
			for range 2 {
				id := s.NewMessageID()
				bt.MessagePut(id, &Message{Topic: []byte("devices/x"), Payload: payload, QoS: 1})
				bt.QueuePut(cid, s.NewQueueSeq(), &QueueEntry{MsgID: id, QoS: 1})
			}
			return bt
		})
	}
	for i := range retained {
		submit(func() *Batch {
			bt := NewBatch(KindRetain, nil)
			bt.RetainedPut(&Message{Topic: []byte(fmt.Sprintf("devices/%d/state", i)), Payload: payload, QoS: 1, Retain: true})
			return bt
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		s := benchStore(b, DurabilitySync, dir)
		st, err := s.Load()
		if err != nil {
			b.Fatal(err)
		}
		loaded := time.Since(start)
		n := 0
		if err := s.RangeRetained(nil, func([]byte, *Message) bool { n++; return true }); err != nil {
			b.Fatal(err)
		}
		if len(st.Sessions) != sessions || n != retained {
			b.Fatalf("loaded %d sessions and %d retained", len(st.Sessions), n)
		}
		b.ReportMetric(loaded.Seconds(), "open+load-s")
		b.ReportMetric(time.Since(start).Seconds(), "with-retained-s")
		s.Close()
	}
}

// BenchmarkSubmitOneAtATime submits a QoS 1 PUBLISH change and waits for its
// completion before the next: the latency of one commit (and sync) with no
// group to share it.
func BenchmarkSubmitOneAtATime(b *testing.B) {
	payload := make([]byte, 64)
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		b.Run(d.String(), func(b *testing.B) {
			s := benchStore(b, d, b.TempDir())
			defer s.Close()
			ch := make(chan error, 1)
			done := func(err error) { ch <- err }
			topic := []byte("sensors/room-1/temp")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				id := s.NewMessageID()
				bt := NewBatch(KindPublish, []byte("publisher-1"))
				bt.SetTopic(topic, 1, len(payload))
				bt.MessagePut(id, &Message{Topic: topic, Payload: payload, QoS: 1})
				bt.QueuePut([]byte("subscriber-1"), s.NewQueueSeq(), &QueueEntry{MsgID: id, QoS: 1})
				if err := s.Submit(bt, done); err != nil {
					b.Fatal(err)
				}
				if err := <-ch; err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
