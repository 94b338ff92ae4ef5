package router

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

var (
	sinkResult *Result[int]
	sinkInt    int
)

// benchFilter returns the i-th filter of a device fleet: mostly exact
// per-device filters, some '+' fan-in, a few '#' and wildcard-first filters.
func benchFilter(i int) string {
	switch i % 20 {
	case 0:
		return fmt.Sprintf("site/%d/#", i%100)
	case 1:
		return fmt.Sprintf("+/%d/alarm", i%500)
	case 2, 3, 4, 5:
		return fmt.Sprintf("dev/%d/+/status", i%1000)
	default:
		return fmt.Sprintf("dev/%d/cmd", i)
	}
}

// benchTopics returns n topics for a router of subs benchFilter
// subscriptions: seven in eight are instances of a subscribed filter ('+' and
// '#' replaced by levels), one in eight has no subscriber.
func benchTopics(n, subs int) [][]byte {
	topics := make([][]byte, n)
	for i := range topics {
		if i%8 == 7 {
			topics[i] = fmt.Appendf(nil, "nobody/%d/x", i)
			continue
		}
		f := benchFilter(i * 7919 % subs)
		f = strings.ReplaceAll(f, "+", "x")
		f = strings.ReplaceAll(f, "#", "a/b")
		topics[i] = []byte(f)
	}
	return topics
}

func benchRouter(subs int, o Options) *Router[int] {
	r := New[int](o)
	for i := range subs {
		r.Subscribe(Sub[int]{Key: i, Filter: benchFilter(i), QoS: 1})
	}
	return r
}

// BenchmarkMatch measures Match over 1,024 distinct topics: "hit" with the
// cache warm, "miss" with the cache disabled (a full trie walk every time).
func BenchmarkMatch(b *testing.B) {
	for _, subs := range []int{10_000, 100_000} {
		topics := benchTopics(1024, subs)
		for _, mode := range []string{"hit", "miss"} {
			o := Options{}
			if mode == "miss" {
				o.CacheSize = -1
			}
			r := benchRouter(subs, o)
			for _, t := range topics {
				r.Match(t)
			}
			b.Run(fmt.Sprintf("subs=%d/%s", subs, mode), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					sinkResult = r.Match(topics[i%len(topics)])
					i++
				}
			})
			b.Run(fmt.Sprintf("subs=%d/%s/parallel", subs, mode), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					var res *Result[int]
					for i := 0; pb.Next(); i++ {
						res = r.Match(topics[i%len(topics)])
					}
					sinkResult = res
				})
			})
		}
	}
}

// BenchmarkMatchWhileSubscribing measures Match in parallel with a goroutine
// subscribing and unsubscribing in shards other than the topics': the
// topics' cached entries stay valid and their shards unlocked.
func BenchmarkMatchWhileSubscribing(b *testing.B) {
	r := benchRouter(100_000, Options{})
	topics := benchTopics(1024, 100_000)
	busy := map[uint32]bool{}
	for _, l := range []string{"dev", "site", "nobody"} {
		busy[hashLevel(l)%uint32(len(r.shards))] = true
	}
	var others []string
	for i := 0; len(others) < 16; i++ {
		if l := "other" + strconv.Itoa(i); !busy[hashLevel(l)%uint32(len(r.shards))] {
			others = append(others, l+"/x")
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := others[i%len(others)]
			r.Subscribe(Sub[int]{Key: i, Filter: f})
			r.Unsubscribe(f, i)
		}
	}()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var res *Result[int]
		for i := 0; pb.Next(); i++ {
			res = r.Match(topics[i%len(topics)])
		}
		sinkResult = res
	})
	b.StopTimer()
	close(stop)
	<-done
}

func BenchmarkSubscribe(b *testing.B) {
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		r := New[int](Options{})
		filters := make([]string, 1<<16)
		for i := range filters {
			filters[i] = benchFilter(i)
		}
		i := 0
		for b.Loop() {
			r.Subscribe(Sub[int]{Key: i, Filter: filters[i%len(filters)]})
			i++
		}
		sinkInt = r.Count()
	})
	b.Run("subscribe-unsubscribe", func(b *testing.B) {
		b.ReportAllocs()
		r := benchRouter(100_000, Options{})
		i := 0
		for b.Loop() {
			f := benchFilter(i % 100_000)
			r.Subscribe(Sub[int]{Key: -1, Filter: f})
			r.Unsubscribe(f, -1)
			i++
		}
		sinkInt = r.Count()
	})
}

// benchRetained holds 100k topics "sensors/{0..9999}/m{0..9}".
func benchRetained() *Retained[int] {
	r := NewRetained[int]()
	for i := range 100_000 {
		r.Set(fmt.Sprintf("sensors/%d/m%d", i/10, i%10), i)
	}
	return r
}

func BenchmarkRetainedMatch(b *testing.B) {
	r := benchRetained()
	for _, c := range []struct{ filter string }{
		{"#"},               // every topic
		{"sensors/+/m3"},    // 10k of 100k
		{"sensors/4242/+"},  // 10
		{"sensors/4242/m3"}, // 1
	} {
		b.Run(c.filter, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				r.Match(c.filter, func(string, int) bool { n++; return true })
				sinkInt = n
			}
		})
	}
}

func BenchmarkRetainedSet(b *testing.B) {
	r := benchRetained()
	topics := make([]string, 1<<14)
	for i := range topics {
		topics[i] = fmt.Sprintf("sensors/%d/m%d", i*7%10_000, i%10)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Set(topics[i%len(topics)], i) // a replacement: the topics exist
		i++
	}
}
