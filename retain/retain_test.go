package retain

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/router"
	"github.com/tern-mqtt/tern/wal"
)

// MQTT-3.3.1-5: a retained message replaces the one of its topic;
// MQTT-3.3.1-6, -7: an empty payload clears the topic and is not retained.
func TestSetReplaceClear(t *testing.T) {
	forModes(t, Options{}, func(t *testing.T, h *harness) {
		h.mustSet("a/b", "1")
		if p, ok := h.get("a/b"); !ok || p != "1" {
			t.Fatalf("Get a/b = %q, %v", p, ok)
		}
		h.wantCounts(1, size("a/b", "1"))
		h.mustSet("a/b", "22")
		if p, _ := h.get("a/b"); p != "22" {
			t.Fatalf("Get a/b after replace = %q", p)
		}
		h.wantCounts(1, size("a/b", "22"))
		h.mustSet("c", "3")
		h.wantCounts(2, size("a/b", "22")+size("c", "3"))
		h.mustSet("a/b", "")
		if _, ok := h.get("a/b"); ok {
			t.Fatal("a/b still retained after an empty payload")
		}
		h.wantCounts(1, size("c", "3"))
		h.mustSet("never", "") // clearing nothing is no error
		h.wantCounts(1, size("c", "3"))
		if _, ok := h.get("a"); ok {
			t.Fatal("Get of a topic never set")
		}
	})
}

// A message comes back with everything the broker forwards: QoS, RETAIN,
// forwarded properties, origin, and its times for the expiry interval.
func TestFieldsKept(t *testing.T) {
	forModes(t, Options{}, func(t *testing.T, h *harness) {
		var props codec.Properties
		props.SetContentType([]byte("application/json"))
		props.SetMessageExpiry(60)
		in := message.New([]byte("x/y"), []byte("body"), &props, 2, true, 42, time.Unix(1000, 0))
		defer in.Release()
		var b *wal.Batch
		if h.st != nil {
			b = wal.NewBatch(wal.KindRetain, nil)
		}
		commit, err := h.x.Set(in, b)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil {
			submit(t, h.st, b, commit)
			h.reopen() // from the store, not the overlay
		}
		m, ok, err := h.x.Get("x/y")
		if err != nil || !ok {
			t.Fatalf("Get: %v %v", ok, err)
		}
		defer m.Release()
		if string(m.Payload) != "body" || !bytes.Equal(m.Props, in.Props) || m.QoS != 2 || !m.Retain ||
			m.Origin != 42 || m.Created != in.Created || m.ExpireAt != in.ExpireAt {
			t.Fatalf("got %+v\nwant %+v", m, in)
		}
	})
}

func TestLimitMessages(t *testing.T) {
	forModes(t, Options{MaxMessages: 2}, func(t *testing.T, h *harness) {
		h.mustSet("a", "1")
		h.mustSet("b", "1")
		b, _, err := h.begin("c", "1")
		if !errors.Is(err, ErrFull) {
			t.Fatalf("third topic: %v, want ErrFull", err)
		}
		if b != nil && b.Len() != 0 {
			t.Fatal("a refused Set wrote to the batch")
		}
		if _, ok := h.get("c"); ok {
			t.Fatal("refused topic retained")
		}
		h.wantCounts(2, size("a", "1")+size("b", "1"))
		h.mustSet("a", "a bigger body") // replacing is allowed when full
		h.mustSet("a", "")              // and clearing
		h.mustSet("c", "1")             // which makes room
		if err := h.set("d", "1"); !errors.Is(err, ErrFull) {
			t.Fatalf("full again: %v", err)
		}
		h.wantCounts(2, size("b", "1")+size("c", "1"))
	})
}

func TestLimitBytes(t *testing.T) {
	big, bigger := strings.Repeat("x", 100), strings.Repeat("x", 101)
	limit := size("a", big) + size("b", big)
	forModes(t, Options{MaxBytes: limit}, func(t *testing.T, h *harness) {
		h.mustSet("a", big)
		h.mustSet("b", "1")
		if err := h.set("c", ""); err != nil { // clearing nothing
			t.Fatal(err)
		}
		if err := h.set("b", bigger); !errors.Is(err, ErrFull) {
			t.Fatalf("a bigger body over the limit: %v, want ErrFull", err)
		}
		if p, _ := h.get("b"); p != "1" {
			t.Fatalf("refused replace changed b to %q", p)
		}
		h.mustSet("b", big) // a bigger body within the limit
		h.wantCounts(2, limit)
		if err := h.set("c", "1"); !errors.Is(err, ErrFull) {
			t.Fatalf("new topic over the limit: %v, want ErrFull", err)
		}
		h.mustSet("b", "1") // smaller is always fine
		h.mustSet("c", "1")
		h.wantCounts(3, size("a", big)+size("b", "1")+size("c", "1"))
	})
}

var wildcardTopics = []string{"a", "a/b", "a/b/c", "a/", "/x", "/", "ab", "b/b", "$SYS/x", "$SYS", "$other/b"}

func TestMatchWildcards(t *testing.T) {
	forModes(t, Options{}, func(t *testing.T, h *harness) {
		for _, topic := range wildcardTopics {
			h.mustSet(topic, "v")
		}
		f := func(filter string, want ...string) {
			t.Helper()
			for i := range want {
				want[i] += "=v"
			}
			slices.Sort(want)
			if got := h.match(filter); !slices.Equal(got, want) {
				t.Errorf("Match(%q) = %q, want %q", filter, got, want)
			}
		}
		f("#", "a", "a/b", "a/b/c", "a/", "/x", "/", "ab", "b/b") // MQTT-4.7.2-1: no '$' topics
		f("+", "a", "ab")
		f("+/+", "a/b", "a/", "/x", "/", "b/b")
		f("+/b", "a/b", "b/b")
		f("+/#", "a", "a/b", "a/b/c", "a/", "/x", "/", "ab", "b/b")
		f("a/#", "a", "a/b", "a/b/c", "a/") // MQTT-4.7.1-2: the parent level too
		f("a/+", "a/b", "a/")
		f("a/+/c", "a/b/c")
		f("a/b/#", "a/b", "a/b/c")
		f("a/b", "a/b")
		f("a/x")
		f("/#", "/x", "/")
		f("/+", "/x", "/")
		f("$SYS/#", "$SYS/x", "$SYS")
		f("$SYS/+", "$SYS/x")
		f("+/x", "/x") // not $SYS/x
		f("$other/b", "$other/b")
		f("$+/b") // '$' is an ordinary character in a filter level
	})
}

func TestMatchStops(t *testing.T) {
	forModes(t, Options{}, func(t *testing.T, h *harness) {
		for i := range 10 {
			h.mustSet(fmt.Sprintf("s/%d", i), "v")
		}
		for _, filter := range []string{"#", "s/#", "s/+", "s/3"} {
			n := 0
			err := h.x.Match(filter, func(*message.Message) bool { n++; return false })
			if err != nil || n != 1 {
				t.Fatalf("Match(%q) called fn %d times after it returned false (err %v)", filter, n, err)
			}
		}
	})
}

func TestClosed(t *testing.T) {
	forModes(t, Options{}, func(t *testing.T, h *harness) {
		h.mustSet("a", "1")
		b, commit, err := h.begin("b", "1") // a change still in flight
		if err != nil {
			t.Fatal(err)
		}
		h.x.Close()
		h.x.Close() // twice is fine
		if _, _, err := h.begin("a", "2"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Set after Close: %v", err)
		}
		if _, _, err := h.x.Get("a"); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get after Close: %v", err)
		}
		if err := h.x.Match("#", func(*message.Message) bool { return true }); !errors.Is(err, ErrClosed) {
			t.Fatalf("Match after Close: %v", err)
		}
		// The commit of a change made before Close may come after it.
		if b != nil {
			submit(t, h.st, b, commit)
		} else {
			commit(nil)
		}
	})
}

// The property test drives an index with random changes and filters and
// compares with a model whose matches router.Retained computes. In disk mode
// changes complete at random times, in order, so Get and Match read a mix
// of the overlay and the store.
func TestMatchProperty(t *testing.T) {
	forModes(t, Options{CacheBytes: 4 << 10}, func(t *testing.T, h *harness) {
		rng := rand.New(rand.NewSource(1))
		model := map[string]string{}
		type change struct {
			b      *wal.Batch
			commit func(error)
		}
		var inflight []change
		var bytes int64
		oracle := router.NewRetained[string]() // model's matches
		// flush submits the batches in Set order and waits for them.
		flush := func() {
			var wg sync.WaitGroup
			for _, c := range inflight {
				if c.b.Len() == 0 {
					c.commit(nil)
					continue
				}
				wg.Add(1)
				if err := h.st.Submit(c.b, func(err error) { c.commit(err); wg.Done() }); err != nil {
					t.Fatal(err)
				}
			}
			wg.Wait()
			inflight = inflight[:0]
		}
		for step := range 2000 {
			topic := randTopic(rng)
			payload := fmt.Sprint(step)
			if rng.Intn(4) == 0 {
				payload = ""
			}
			b, commit, err := h.begin(topic, payload)
			if err != nil {
				t.Fatal(err)
			}
			if b != nil {
				inflight = append(inflight, change{b, commit})
			}
			if old, ok := model[topic]; ok {
				bytes -= size(topic, old)
			}
			if payload == "" {
				delete(model, topic)
				oracle.Delete(topic)
			} else {
				model[topic] = payload
				oracle.Set(topic, payload)
				bytes += size(topic, payload)
			}
			if rng.Intn(8) == 0 {
				flush()
			}
			h.wantCounts(len(model), bytes)

			filter := randFilter(rng)
			var want []string
			oracle.Match(filter, func(tp, p string) bool {
				want = append(want, tp+"="+p)
				return true
			})
			slices.Sort(want)
			if got := h.match(filter); !slices.Equal(got, want) {
				t.Fatalf("step %d: Match(%q)\n %q\nwant\n %q", step, filter, got, want)
			}
			probe := randTopic(rng)
			if p, ok := h.get(probe); p != model[probe] || ok != (model[probe] != "") {
				t.Fatalf("step %d: Get(%q) = %q, %v; want %q", step, probe, p, ok, model[probe])
			}
		}
		flush()
		if h.st != nil && h.x.overlayLen() != 0 {
			t.Fatalf("%d overlay entries after every change completed", h.x.overlayLen())
		}
	})
}

// A small alphabet makes topics and filters collide often: empty levels,
// '$' first levels, shared prefixes.
var propLevels = []string{"a", "b", "$c", ""}

func randTopic(rng *rand.Rand) string {
	levels := make([]string, 1+rng.Intn(4))
	for i := range levels {
		levels[i] = propLevels[rng.Intn(len(propLevels))]
	}
	if t := strings.Join(levels, "/"); t != "" {
		return t
	}
	return randTopic(rng)
}

func randFilter(rng *rand.Rand) string {
	n := 1 + rng.Intn(3)
	levels := make([]string, n)
	for i := range levels {
		switch x := rng.Intn(10); {
		case x < 3:
			levels[i] = "+"
		case x < 4 && i == n-1:
			levels[i] = "#"
		default:
			levels[i] = propLevels[rng.Intn(len(propLevels))]
		}
	}
	if f := strings.Join(levels, "/"); f != "" {
		return f
	}
	return randFilter(rng)
}

// In memory mode a batch is ignored: nothing goes to a store.
func TestMemoryIgnoresBatch(t *testing.T) {
	checkLive(t)
	h := newMemoryHarness(t, Options{})
	m := newMsg("a", "1")
	defer m.Release()
	b := wal.NewBatch(wal.KindRetain, nil)
	commit, err := h.x.Set(m, b)
	if err != nil || commit == nil || b.Len() != 0 {
		t.Fatalf("Set: %v, commit %v, batch of %d", err, commit != nil, b.Len())
	}
	commit(nil)
	if p, _ := h.get("a"); p != "1" {
		t.Fatalf("Get = %q", p)
	}
}
