package retain

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/wal"
)

const benchTopics = 100_000

var benchSink int

// benchTopic spreads topics over 10 sites of 100 buildings.
func benchTopic(i int) string {
	return fmt.Sprintf("site/%d/building/%d/dev/%d/temp", i%10, i%1000, i)
}

// fillBench retains benchTopics messages of 64 bytes, 1,000 to a batch.
func fillBench(b *testing.B, x *Index, st *wal.Store) {
	b.Helper()
	payload := make([]byte, 64)
	for i := 0; i < benchTopics; i += 1000 {
		var batch *wal.Batch
		if st != nil {
			batch = wal.NewBatch(wal.KindRetain, nil)
		}
		var commits []func(error)
		for j := i; j < i+1000; j++ {
			m := message.New([]byte(benchTopic(j)), payload, nil, 1, true, 0, time.Now())
			c, err := x.Set(m, batch)
			m.Release()
			if err != nil {
				b.Fatal(err)
			}
			commits = append(commits, c)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		done := func(err error) {
			for _, c := range commits {
				c(err)
			}
			wg.Done()
		}
		if st == nil {
			done(nil)
		} else if err := st.Submit(batch, done); err != nil {
			b.Fatal(err)
		}
		wg.Wait()
	}
}

// benchIndex runs the read benchmarks against x.
func benchIndex(b *testing.B, x *Index) {
	count := func(filter string, want int) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				err := x.Match(filter, func(m *message.Message) bool {
					n += len(m.Payload)
					return true
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if n != want*64*b.N {
				b.Fatalf("matched %d bytes, want %d", n, want*64*b.N)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*want), "ns/msg")
			benchSink += n
		}
	}
	b.Run("match=#", count("#", benchTopics))
	b.Run("match=site/3/#", count("site/3/#", benchTopics/10))
	b.Run("match=site/+/building/7/#", count("site/+/building/7/#", benchTopics/1000))
	get := func(topic func(i int) string, want bool) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m, ok, err := x.Get(topic(i))
				if err != nil || ok != want {
					b.Fatalf("Get: %v %v", ok, err)
				}
				if ok {
					benchSink += len(m.Payload)
					m.Release()
				}
				i++
			}
		}
	}
	// 1,000 hot topics: after the first round they are in the cache.
	hot := make([]string, 1000)
	for i := range hot {
		hot[i] = benchTopic(i * 97)
	}
	b.Run("get=hit", get(func(i int) string { return hot[i%len(hot)] }, true))
	b.Run("get=hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m, ok, err := x.Get(hot[i%len(hot)])
				if err != nil || !ok {
					b.Fatalf("Get: %v %v", ok, err)
				}
				m.Release()
				i++
			}
		})
	})
	b.Run("get=miss", get(func(i int) string { return "site/1/none" }, false))
}

// BenchmarkMatchDisk reads 100,000 retained messages of 64 bytes from a
// store on a temp dir: whole scans with '#' (from the store, never cached),
// narrower scans, and exact Gets of cached topics and of an absent one.
// get=cold reads every topic once, with the cache disabled.
func BenchmarkMatchDisk(b *testing.B) {
	st, state := openStore(b, b.TempDir())
	defer st.Close()
	x := NewDisk(st, state.Retained, state.RetainedBytes, Options{Logger: testLogger(b)})
	defer x.Close()
	fillBench(b, x, st)
	benchIndex(b, x)

	cold := NewDisk(st, x.Len(), x.Bytes(), Options{CacheBytes: -1, Logger: testLogger(b)})
	defer cold.Close()
	b.Run("get=cold", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			m, ok, err := cold.Get(benchTopic(i % benchTopics))
			if err != nil || !ok {
				b.Fatalf("Get: %v %v", ok, err)
			}
			m.Release()
			i++
		}
	})
}

// BenchmarkMatchMemory is BenchmarkMatchDisk without a store, to compare.
func BenchmarkMatchMemory(b *testing.B) {
	x := NewMemory(Options{})
	defer x.Close()
	fillBench(b, x, nil)
	benchIndex(b, x)
}
