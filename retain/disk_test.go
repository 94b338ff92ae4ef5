package retain

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/wal"
)

// stored returns the payload of topic in the store itself.
func (h *harness) stored(topic string) (string, bool) {
	h.t.Helper()
	m, ok, err := h.st.GetRetained([]byte(topic))
	if err != nil {
		h.t.Fatalf("GetRetained(%q): %v", topic, err)
	}
	return string(m.Payload), ok
}

// The broker routes a retained message before its batch completes: a
// subscriber arriving meanwhile gets it from the overlay, and a clear hides
// the stored message at once.
func TestOverlayBeforeCommit(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	h.mustSet("a/b", "old")
	b, commit, err := h.begin("a/b", "new")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := h.stored("a/b"); p != "old" {
		t.Fatalf("store has %q before the commit", p)
	}
	if p, _ := h.get("a/b"); p != "new" {
		t.Fatalf("Get before commit = %q, want the overlay's new", p)
	}
	for _, filter := range []string{"a/b", "a/+", "#"} {
		if got := h.match(filter); !slices.Equal(got, []string{"a/b=new"}) {
			t.Fatalf("Match(%q) before commit = %q", filter, got)
		}
	}
	h.wantCounts(1, size("a/b", "new"))
	submit(t, h.st, b, commit)
	if n := h.x.overlayLen(); n != 0 {
		t.Fatalf("%d overlay entries after the commit", n)
	}
	if p, _ := h.get("a/b"); p != "new" {
		t.Fatalf("Get after commit = %q", p)
	}

	b, commit, err = h.begin("a/b", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.get("a/b"); ok {
		t.Fatal("a cleared topic is visible before the commit")
	}
	if got := h.match("#"); len(got) != 0 {
		t.Fatalf("Match(#) sees a cleared topic: %q", got)
	}
	if _, ok := h.stored("a/b"); !ok {
		t.Fatal("cleared in the store before the commit")
	}
	h.wantCounts(0, 0)
	submit(t, h.st, b, commit)
	if _, ok := h.stored("a/b"); ok || h.x.overlayLen() != 0 {
		t.Fatal("clear not committed")
	}
}

// The commit of an older change of a topic must not drop the overlay entry
// of a newer one that is not in the store yet.
func TestNewerSetSurvivesOlderCommit(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	b1, c1, err := h.begin("t", "v1")
	if err != nil {
		t.Fatal(err)
	}
	b2, c2, err := h.begin("t", "v2")
	if err != nil {
		t.Fatal(err)
	}
	submit(t, h.st, b1, c1)
	if p, _ := h.stored("t"); p != "v1" {
		t.Fatalf("store has %q", p)
	}
	if p, _ := h.get("t"); p != "v2" {
		t.Fatalf("Get after the older commit = %q, want v2", p)
	}
	submit(t, h.st, b2, c2)
	if p, _ := h.get("t"); p != "v2" || h.x.overlayLen() != 0 || h.x.unsureLen() != 0 {
		t.Fatalf("Get after both commits = %q; overlay %d, unsure %d", p, h.x.overlayLen(), h.x.unsureLen())
	}
	h.wantCounts(1, size("t", "v2"))
}

// Batches of one topic submitted out of Set order leave the older body in
// the store: the index serves what the store has and corrects its counters
// on the topic's next Set.
func TestCommitsOutOfOrder(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	b1, c1, err := h.begin("t", "short")
	if err != nil {
		t.Fatal(err)
	}
	b2, c2, err := h.begin("t", "a longer body")
	if err != nil {
		t.Fatal(err)
	}
	submit(t, h.st, b2, c2)
	submit(t, h.st, b1, c1)
	if p, _ := h.get("t"); p != "short" {
		t.Fatalf("Get = %q, want what the store has", p)
	}
	if h.x.unsureLen() != 1 {
		t.Fatal("topic not marked unsure")
	}
	h.wantCounts(1, size("t", "a longer body")) // as assumed, until the next Set
	h.mustSet("t", "x")
	h.wantCounts(1, size("t", "x"))
	if h.x.unsureLen() != 0 {
		t.Fatal("still unsure after a Set")
	}
}

// A failed commit (or a Submit that refused the batch) may or may not have
// reached the store; the index reads the store again.
func TestCommitFailed(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{MaxMessages: 1})
	_, commit, err := h.begin("t", "lost")
	if err != nil {
		t.Fatal(err)
	}
	commit(errors.New("disk on fire")) // the batch never reached the store
	if _, ok := h.get("t"); ok {
		t.Fatal("a change that is not in the store is still served")
	}
	h.wantCounts(1, size("t", "lost")) // as assumed, until the next Set
	// The next Set finds the topic absent: it corrects the count, so the
	// limit of one does not refuse it.
	h.mustSet("t", "again")
	h.wantCounts(1, size("t", "again"))

	_, commit, err = h.begin("t", "")
	if err != nil {
		t.Fatal(err)
	}
	commit(errors.New("refused"))
	if p, _ := h.get("t"); p != "again" {
		t.Fatalf("Get after a failed clear = %q", p)
	}
	h.mustSet("t", "")
	h.wantCounts(0, 0)
	if _, ok := h.stored("t"); ok {
		t.Fatal("clear after the failure not stored")
	}
}

func TestCommitTwicePanics(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	b, commit, err := h.begin("t", "v")
	if err != nil {
		t.Fatal(err)
	}
	submit(t, h.st, b, commit)
	defer func() {
		if recover() == nil {
			t.Fatal("second commit did not panic")
		}
	}()
	commit(nil)
}

func TestSetWithoutBatch(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	m := newMsg("t", "v")
	defer m.Release()
	if _, err := h.x.Set(m, nil); err == nil {
		t.Fatal("disk mode Set without a batch succeeded")
	}
	h.wantCounts(0, 0)
}

// A restart finds every retained message in the store, with the counters
// Load reports.
func TestRestart(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{CacheBytes: 8 << 10})
	want := map[string]string{}
	for i := range 1000 {
		topic := fmt.Sprintf("site/%d/dev/%d", i%7, i)
		if i%10 == 0 {
			topic = fmt.Sprintf("$SYS/%d", i)
		}
		want[topic] = fmt.Sprint("v", i)
		h.mustSet(topic, want[topic])
	}
	for i := 0; i < 1000; i += 3 {
		topic := fmt.Sprintf("site/%d/dev/%d", i%7, i)
		if _, ok := want[topic]; ok {
			h.mustSet(topic, "")
			delete(want, topic)
		}
	}
	n, bytes := h.x.Len(), h.x.Bytes()
	h.reopen()
	h.wantCounts(n, bytes)
	if n != len(want) {
		t.Fatalf("Len %d, want %d", n, len(want))
	}
	var all []string
	for topic, p := range want {
		if got, ok := h.get(topic); !ok || got != p {
			t.Fatalf("Get(%q) after restart = %q, %v; want %q", topic, got, ok, p)
		}
		all = append(all, topic+"="+p)
	}
	slices.Sort(all)
	got := append(h.match("#"), h.match("$SYS/#")...)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Fatalf("Match after restart: %d messages, want %d", len(got), len(all))
	}
}

// The cache stays within CacheBytes whatever is read, a wildcard scan does
// not fill it, and an exact read does.
func TestCacheBounded(t *testing.T) {
	checkLive(t)
	const cacheBytes = 64 << 10
	h := newDiskHarness(t, Options{CacheBytes: cacheBytes})
	payload := string(make([]byte, 1000))
	const topics = 2000 // 2 MB of bodies: 30 times the cache
	for i := range topics {
		h.mustSet(fmt.Sprintf("t/%d", i), payload)
	}
	c := h.x.cache
	used := func() int64 { c.Wait(); return c.MaxCost() - c.RemainingCost() }
	if u := used(); u != 0 {
		t.Fatalf("cache holds %d after Sets: commits must not fill it", u)
	}
	if got := len(h.match("t/#")); got != topics {
		t.Fatalf("Match(t/#) found %d", got)
	}
	if u := used(); u != 0 {
		t.Fatalf("cache holds %d after a wildcard scan", u)
	}
	for range 3 {
		for i := range topics {
			if _, ok := h.get(fmt.Sprintf("t/%d", i)); !ok {
				t.Fatalf("t/%d missing", i)
			}
		}
		if u := used(); u <= 0 || u > cacheBytes {
			t.Fatalf("cache cost %d, bound %d", u, cacheBytes)
		}
	}
	// A hot topic read again and again is served from the cache.
	// (Ristretto counts accesses in batches and admits asynchronously.)
	cached := false
	for i := 0; i < 200 && !cached; i++ {
		h.get("t/1")
		c.Wait()
		v, ok := c.Get("t/1")
		cached = ok && string(v.Payload) == payload
	}
	if !cached {
		t.Fatal("hot topic not cached")
	}
	// A change of a cached topic replaces what Get returns.
	h.mustSet("t/1", "changed")
	if p, _ := h.get("t/1"); p != "changed" {
		t.Fatalf("Get after changing a cached topic = %q", p)
	}
	h.mustSet("t/1", "")
	if _, ok := h.get("t/1"); ok {
		t.Fatal("cleared topic served from the cache")
	}
}

// A cache fill that read the store before a change must not be admitted
// after it: Get reads "old", then a Set and its commit happen before Get
// fills the cache.
func TestStaleFillRefused(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	h.mustSet("t", "old")
	h.x.testAfterRead = func() {
		h.x.testAfterRead = nil
		h.mustSet("t", "new")
	}
	if p, _ := h.get("t"); p != "old" {
		t.Fatalf("first Get = %q", p)
	}
	h.x.cache.Wait()
	if p, _ := h.get("t"); p != "new" {
		t.Fatalf("Get after the change = %q: a stale fill was cached", p)
	}
}

// Close releases the messages of changes still in flight; their commits may
// come later.
func TestCloseWithOverlay(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	var bs []*wal.Batch
	var commits []func(error)
	for i := range 10 {
		b, c, err := h.begin(fmt.Sprint("t/", i), "v")
		if err != nil {
			t.Fatal(err)
		}
		bs, commits = append(bs, b), append(commits, c)
	}
	h.x.Close()
	for i := range bs {
		submit(t, h.st, bs[i], commits[i])
	}
}

func TestMatchDiskReleasesOnPanic(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{})
	h.mustSet("a/b", "v")
	_, c, err := h.begin("a/c", "overlay") // keep one in the overlay
	if err != nil {
		t.Fatal(err)
	}
	defer c(errors.New("never submitted"))
	func() {
		defer func() { _ = recover() }()
		_ = h.x.Match("a/+", func(*message.Message) bool { panic("subscriber gone") })
	}()
}

// With a negative CacheBytes every read goes to the store.
func TestNoCache(t *testing.T) {
	checkLive(t)
	h := newDiskHarness(t, Options{CacheBytes: -1})
	if h.x.cache != nil {
		t.Fatal("cache made although disabled")
	}
	h.mustSet("a/b", "1")
	h.mustSet("a/b", "2")
	for range 2 {
		if p, _ := h.get("a/b"); p != "2" {
			t.Fatalf("Get = %q", p)
		}
	}
	if got := h.match("a/+"); !slices.Equal(got, []string{"a/b=2"}) {
		t.Fatalf("Match = %q", got)
	}
	h.mustSet("a/b", "")
	h.wantCounts(0, 0)
}
