package router

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
)

// topicFor returns a topic that filter (without "$share/") matches.
func topicFor(filter string) string {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "+" || l == "#" {
			levels[i] = "x"
		}
	}
	return strings.Join(levels, "/")
}

// sees reports whether res holds key's subscription s.
func sees(res *Result[int], s Sub[int]) bool {
	group, f, shared := splitShared(s.Filter)
	if !shared {
		return slices.Contains(res.Subs, s)
	}
	for _, g := range res.Shared {
		if g.Name() == group && g.Filter() == f && slices.Contains(g.Members(), s) {
			return true
		}
	}
	return false
}

// TestConcurrent runs subscribers, matchers and pickers at once (run it with
// -race). Each writer owns a key and checks that its own changes are visible
// to its next Match: a stale cache entry would break that.
func TestConcurrent(t *testing.T) {
	const (
		writers = 4
		readers = 4
		ops     = 1500
	)
	r := New[int](Options{Shards: 4, CacheSize: 8})
	ret := NewRetained[int]()
	models := make([]map[string]Sub[int], writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := range writers {
		models[w] = map[string]Sub[int]{}
		wg.Go(func() {
			rng := rand.New(rand.NewSource(int64(w)))
			model := models[w]
			for i := range ops {
				filter := randFilter(rng)
				_, f, _ := splitShared(filter)
				topic := []byte(topicFor(f))
				if _, ok := model[filter]; ok && rng.Intn(2) == 0 {
					s := model[filter]
					r.Unsubscribe(filter, w)
					delete(model, filter)
					if sees(r.Match(topic), s) {
						errs <- fmt.Errorf("writer %d op %d: %q still matched after Unsubscribe", w, i, filter)
						return
					}
				} else {
					s := Sub[int]{Key: w, Filter: filter, QoS: byte(rng.Intn(3)), SubID: uint32(i)}
					r.Subscribe(s)
					model[filter] = s
					if !sees(r.Match(topic), s) {
						errs <- fmt.Errorf("writer %d op %d: %+v not matched after Subscribe", w, i, s)
						return
					}
				}
				if rng.Intn(2) == 0 {
					ret.Set(randTopic(rng), i)
				} else {
					ret.Delete(randTopic(rng))
				}
			}
		})
	}
	for i := range readers {
		wg.Go(func() {
			rng := rand.New(rand.NewSource(int64(100 + i)))
			for range ops {
				res := r.Match([]byte(randTopic(rng)))
				requireGroupedErr(res.Subs, errs)
				for _, g := range res.Shared {
					g.Pick(func(k int) bool { return k%2 == 0 })
				}
				_, f, _ := splitShared(randFilter(rng))
				ret.Match(f, func(string, int) bool { return true })
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Quiescent: the index, and every cached result, equals the union of
	// the writers' models.
	model := refRouter{}
	count := 0
	for _, m := range models {
		for filter, s := range m {
			if model[filter] == nil {
				model[filter] = map[int]Sub[int]{}
			}
			model[filter][s.Key] = s
			count++
		}
	}
	if r.Count() != count {
		t.Fatalf("Count %d, want %d", r.Count(), count)
	}
	rng := rand.New(rand.NewSource(7))
	for range 500 {
		topic := randTopic(rng)
		res := r.Match([]byte(topic))
		want, wantGroups := model.match(topic)
		if got, want := subSet(res.Subs), subSet(want); !slices.Equal(got, want) {
			t.Fatalf("Match(%q) subs\n %q\nwant\n %q", topic, got, want)
		}
		if got := groupSet(res.Shared); !slices.Equal(got, wantGroups) {
			t.Fatalf("Match(%q) groups\n %q\nwant\n %q", topic, got, wantGroups)
		}
	}
}

func requireGroupedErr(subs []Sub[int], errs chan<- error) {
	seen := map[int]bool{}
	for i, s := range subs {
		if i > 0 && subs[i-1].Key == s.Key {
			continue
		}
		if seen[s.Key] {
			select {
			case errs <- fmt.Errorf("key %d not adjacent in %+v", s.Key, subs):
			default:
			}
			return
		}
		seen[s.Key] = true
	}
}

// TestConcurrentPick checks that concurrent Picks take distinct turns: n
// picks over m members give each member n/m.
func TestConcurrentPick(t *testing.T) {
	r := New[int](Options{})
	const members, pickers, picks = 4, 8, 1000
	for k := range members {
		r.Subscribe(Sub[int]{Key: k, Filter: "$share/g/q"})
	}
	g := r.Match([]byte("q")).Shared[0]
	var mu sync.Mutex
	counts := make([]int, members)
	var wg sync.WaitGroup
	for range pickers {
		wg.Go(func() {
			local := make([]int, members)
			for range picks {
				s, _ := g.Pick(nil)
				local[s.Key]++
			}
			mu.Lock()
			for k, n := range local {
				counts[k] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for k, n := range counts {
		if n != pickers*picks/members {
			t.Fatalf("member %d picked %d times, want %d (all: %v)", k, n, pickers*picks/members, counts)
		}
	}
}
