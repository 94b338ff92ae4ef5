package retain

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/wal"
)

// Many goroutines set and clear a few topics, as event loops do, while
// others read them. In disk mode each writer submits its batch right after
// its Set, so batches of one topic reach the store out of Set order now and
// then, and one in twenty is refused. Afterwards the index must agree with the store (nothing stale in the
// cache or the overlay) and, once each topic was set again, count exactly
// what the store holds.
func TestConcurrent(t *testing.T) {
	const maxMessages = 30
	forModes(t, Options{MaxMessages: maxMessages, CacheBytes: 16 << 10}, func(t *testing.T, h *harness) {
		const writers, readers, ops, topics = 8, 4, 400, 40
		topic := func(i int) string { return fmt.Sprintf("t/%d", i) }
		var wg sync.WaitGroup   // goroutines
		var done sync.WaitGroup // completions
		stop := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewSource(int64(w)))
				for i := range ops {
					tp := topic(rng.Intn(topics))
					payload := ""
					if rng.Intn(5) != 0 {
						// The payload names its topic, for the readers to check.
						payload = tp + "|" + strings.Repeat("x", rng.Intn(200)) + fmt.Sprint(w, i)
					}
					b, commit, err := h.begin(tp, payload)
					switch {
					case errors.Is(err, ErrFull):
						continue
					case err != nil:
						t.Error(err)
						return
					case b == nil || b.Len() == 0:
						commit(nil)
						continue
					}
					switch rng.Intn(20) {
					case 0: // as if Submit refused the batch
						commit(errRefused)
						continue
					case 1, 2, 3, 4: // let another writer of the topic overtake
						time.Sleep(time.Duration(rng.Intn(100)) * time.Microsecond)
					}
					done.Add(1)
					if err := h.st.Submit(b, func(err error) { commit(err); done.Done() }); err != nil {
						commit(err)
						done.Done()
						t.Error(err)
						return
					}
				}
			}()
		}
		check := func(m *message.Message) bool {
			if tp, _, _ := strings.Cut(string(m.Payload), "|"); tp != string(m.Topic) {
				t.Errorf("message of topic %q has the payload %q", m.Topic, m.Payload)
			}
			return true
		}
		var rwg sync.WaitGroup
		for r := range readers {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				rng := rand.New(rand.NewSource(int64(100 + r)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					switch rng.Intn(3) {
					case 0:
						m, ok, err := h.x.Get(topic(rng.Intn(topics)))
						if err != nil {
							t.Error(err)
							return
						}
						if ok {
							check(m)
							m.Release()
						}
					case 1:
						if err := h.x.Match("t/+", check); err != nil {
							t.Error(err)
							return
						}
					case 2:
						if err := h.x.Match(topic(rng.Intn(topics)), check); err != nil {
							t.Error(err)
							return
						}
					}
					if h.st == nil && h.x.Len() > maxMessages {
						t.Errorf("Len %d over the limit %d", h.x.Len(), maxMessages)
					}
				}
			}()
		}
		wg.Wait()
		done.Wait()
		close(stop)
		rwg.Wait()
		if t.Failed() {
			return
		}

		if h.st != nil {
			if n := h.x.overlayLen(); n != 0 {
				t.Fatalf("%d overlay entries after every change completed", n)
			}
			for i := range topics {
				got, gok := h.get(topic(i))
				want, wok := h.stored(topic(i))
				if got != want || gok != wok {
					t.Fatalf("Get(%q) = %.20q, %v; the store has %.20q, %v", topic(i), got, gok, want, wok)
				}
			}
			t.Logf("unsure topics: %d", h.x.unsureLen())
			// Setting each topic again to what it holds corrects the
			// counters of topics whose batches came out of order.
			for i := range topics {
				p, _ := h.stored(topic(i))
				h.mustSet(topic(i), p)
			}
		}
		n, bytes := recount(t, h)
		h.wantCounts(n, bytes)
		for i := range topics {
			h.mustSet(topic(i), "")
		}
		h.wantCounts(0, 0)
	})
}

var errRefused = errors.New("refused")

// recount counts the retained messages from the store in disk mode, from
// Match in memory mode.
func recount(t *testing.T, h *harness) (n int, bytes int64) {
	t.Helper()
	if h.st != nil {
		err := h.st.RangeRetained(nil, func(_ []byte, m *wal.Message) bool {
			n++
			bytes += int64(m.Size())
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, bytes
	}
	err := h.x.Match("#", func(m *message.Message) bool {
		n++
		bytes += int64(m.Size())
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, bytes
}
