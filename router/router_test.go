package router

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// matchCases calls f with every filter/topic case of the matching rules; the
// router and the retained index are both checked against it.
func matchCases(f func(filter, topic string, want bool)) {
	// MQTT 5.0 4.7.1.2: '#' matches the parent level and any number of child
	// levels (MQTT-4.7.1-2).
	f("sport/tennis/player1/#", "sport/tennis/player1", true)
	f("sport/tennis/player1/#", "sport/tennis/player1/ranking", true)
	f("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true)
	f("sport/tennis/player1/#", "sport/tennis/player2", false)
	f("sport/tennis/player1/#", "sport/tennis", false)
	f("sport/#", "sport", true)
	f("sport/#", "sport/", true)
	f("sport/#", "sport/tennis/x", true)
	f("sport/#", "sports", false)
	f("#", "sport", true)
	f("#", "/", true)
	f("#", "a/b/c/d/e/f", true)

	// 4.7.1.3: '+' matches exactly one level, which may be empty
	// (MQTT-4.7.1-1 for where the wildcards may stand).
	f("sport/tennis/+", "sport/tennis/player1", true)
	f("sport/tennis/+", "sport/tennis/player2", true)
	f("sport/tennis/+", "sport/tennis/player1/ranking", false)
	f("sport/+", "sport", false)
	f("sport/+", "sport/", true)
	f("+/+", "/finance", true)
	f("/+", "/finance", true)
	f("+", "/finance", false)
	f("+", "finance", true)
	f("+/tennis/#", "sport/tennis", true)
	f("+/tennis/#", "sport/tennis/player1/ranking", true)
	f("+/tennis/#", "sport/golf", false)
	f("sport/+/player1", "sport/tennis/player1", true)
	f("sport/+/player1", "sport//player1", true)
	f("sport/+/player1", "sport/tennis/player2", false)
	f("sport/+/player1", "sport/tennis/x/player1", false)
	f("+/+/+", "a//", true)
	f("+/+/+", "a/b", false)
	f("a/+/#", "a/b", true)
	f("a/+/#", "a", false)

	// 4.7.2: filters starting with a wildcard do not match topics starting
	// with '$' (MQTT-4.7.2-1).
	f("#", "$SYS/monitor/Clients", false)
	f("#", "$SYS", false)
	f("+/monitor/Clients", "$SYS/monitor/Clients", false)
	f("+", "$SYS", false)
	f("+/#", "$SYS/x", false)
	f("$SYS/#", "$SYS/monitor/Clients", true)
	f("$SYS/#", "$SYS", true)
	f("$SYS/monitor/+", "$SYS/monitor/Clients", true)
	f("$SYS/+/Clients", "$SYS/monitor/Clients", true)
	f("a/$b", "a/$b", true)
	f("a/+", "a/$b", true) // the rule is about the first character only
	f("#", "a/$b", true)

	// 4.7.3: case sensitive, spaces allowed, a leading '/' makes an empty
	// first level.
	f("ACCOUNTS", "Accounts", false)
	f("Accounts", "Accounts", true)
	f("Accounts payable", "Accounts payable", true)
	f("/finance", "finance", false)
	f("finance", "/finance", false)
	f("/finance", "/finance", true)
	f("sport/tennis", "sport/tennis/", false)
	f("sport/tennis/", "sport/tennis/", true)
	f("a/b", "a/b/c", false)
	f("a/b/c", "a/b", false)
	f("é/+", "é/ü", true)
}

// refMatch is the reference matcher: MQTT 4.7 written as plainly as
// possible, one level at a time, for the property tests.
func refMatch(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (filter[0] == '+' || filter[0] == '#') {
		return false // MQTT-4.7.2-1
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return true
		}
		t, trest, tmore := strings.Cut(topic, "/")
		switch {
		case f != "+" && f != t:
			return false
		case !fmore:
			return !tmore
		case !tmore:
			return frest == "#" // "sport/#" matches "sport"
		}
		filter, topic = frest, trest
	}
}

func TestMatchRules(t *testing.T) {
	f := func(filter, topic string, want bool) {
		t.Helper()
		if got := refMatch(filter, topic); got != want {
			t.Errorf("refMatch(%q, %q) = %v, want %v", filter, topic, got, want)
		}
		r := New[int](Options{})
		r.Subscribe(Sub[int]{Key: 1, Filter: filter})
		for range 2 { // a miss, then a cache hit
			res := r.Match([]byte(topic))
			if got := len(res.Subs) == 1; got != want {
				t.Errorf("filter %q, topic %q: matched %v, want %v", filter, topic, got, want)
			}
		}
		// As a shared subscription: "$share/g/{filter}" matches what filter
		// matches (4.8.2).
		r.Subscribe(Sub[int]{Key: 1, Filter: "$share/g/" + filter})
		res := r.Match([]byte(topic))
		if got := len(res.Shared) == 1; got != want {
			t.Errorf("filter $share/g/%q, topic %q: matched %v, want %v", filter, topic, got, want)
		}
	}
	matchCases(f)
}

func TestMatchSharedPrefix(t *testing.T) {
	r := New[int](Options{})
	r.Subscribe(Sub[int]{Key: 1, Filter: "$share/g/a/+"})
	f := func(topic string, want bool) {
		t.Helper()
		res := r.Match([]byte(topic))
		if got := len(res.Shared) == 1; got != want {
			t.Errorf("topic %q: matched %v, want %v", topic, got, want)
		}
		if len(res.Subs) != 0 {
			t.Errorf("topic %q: shared subscription in Subs: %+v", topic, res.Subs)
		}
	}
	f("a/b", true)
	f("a/", true)
	f("$share/g/a/b", false) // the prefix is not part of the filter
	f("a", false)
	f("a/b/c", false)
	if g := r.Match([]byte("a/b")).Shared[0]; g.Name() != "g" || g.Filter() != "a/+" {
		t.Errorf("group %q on %q, want g on a/+", g.Name(), g.Filter())
	}
}

// subSet renders subscriptions as sorted "key filter qos id" strings.
func subSet(subs []Sub[int]) []string {
	var s []string
	for _, x := range subs {
		s = append(s, fmt.Sprintf("%d %s q%d id%d", x.Key, x.Filter, x.QoS, x.SubID))
	}
	slices.Sort(s)
	return s
}

// requireGrouped fails unless entries of the same key are adjacent.
func requireGrouped(t *testing.T, subs []Sub[int]) {
	t.Helper()
	seen := map[int]bool{}
	for i, s := range subs {
		if i > 0 && subs[i-1].Key == s.Key {
			continue
		}
		if seen[s.Key] {
			t.Fatalf("key %d not adjacent in %+v", s.Key, subs)
		}
		seen[s.Key] = true
	}
}

func requireSubs(t *testing.T, got []Sub[int], want ...string) {
	t.Helper()
	slices.Sort(want)
	if g := subSet(got); !slices.Equal(g, want) {
		t.Fatalf("subs\n %q\nwant\n %q", g, want)
	}
}

func TestOverlapGrouping(t *testing.T) {
	r := New[int](Options{})
	// Overlapping filters of one subscriber, in both shards, interleaved with
	// other subscribers' (3.3.4: delivered once, highest QoS, all ids).
	r.Subscribe(Sub[int]{Key: 1, Filter: "a/+", QoS: 1, SubID: 1})
	r.Subscribe(Sub[int]{Key: 2, Filter: "a/+", QoS: 0})
	r.Subscribe(Sub[int]{Key: 1, Filter: "a/b", QoS: 2, SubID: 2})
	r.Subscribe(Sub[int]{Key: 3, Filter: "a/b"})
	r.Subscribe(Sub[int]{Key: 1, Filter: "#", SubID: 3})
	r.Subscribe(Sub[int]{Key: 2, Filter: "+/b", QoS: 1})
	r.Subscribe(Sub[int]{Key: 3, Filter: "a/#"})
	res := r.Match([]byte("a/b"))
	requireSubs(t, res.Subs,
		"1 a/+ q1 id1", "2 a/+ q0 id0", "1 a/b q2 id2", "3 a/b q0 id0",
		"1 # q0 id3", "2 +/b q1 id0", "3 a/# q0 id0")
	requireGrouped(t, res.Subs)
	requireSubs(t, r.Match([]byte("a/c")).Subs, "1 a/+ q1 id1", "2 a/+ q0 id0", "1 # q0 id3", "3 a/# q0 id0")
	requireSubs(t, r.Match([]byte("x")).Subs, "1 # q0 id3")
	if res := r.Match([]byte("$x/b")); len(res.Subs) != 0 || len(res.Shared) != 0 {
		t.Fatalf("$x/b matched %+v", res)
	}
}

func TestGroupByKey(t *testing.T) {
	f := func(n, keys int) {
		t.Helper()
		var s []Sub[int]
		for i := range n {
			s = append(s, Sub[int]{Key: i % keys, Filter: fmt.Sprint(i)})
		}
		want := subSet(s)
		got := groupByKey(slices.Clone(s))
		if g := subSet(got); !slices.Equal(g, want) {
			t.Fatalf("n=%d keys=%d: entries changed: %v", n, keys, g)
		}
		requireGrouped(t, got)
	}
	f(0, 1)
	f(1, 1)
	f(5, 2)
	f(32, 7)
	f(33, 33) // map path, no key twice
	f(100, 9) // map path
	f(1000, 1000)
	f(1000, 3)
}

func TestSubscribeReplace(t *testing.T) {
	r := New[int](Options{})
	f := func(s Sub[int], wantExisted bool, wantCount int) {
		t.Helper()
		if existed := r.Subscribe(s); existed != wantExisted {
			t.Fatalf("Subscribe(%+v) existed = %v, want %v", s, existed, wantExisted)
		}
		if r.Count() != wantCount {
			t.Fatalf("Count = %d, want %d", r.Count(), wantCount)
		}
	}
	f(Sub[int]{Key: 1, Filter: "a/b", QoS: 0}, false, 1)
	f(Sub[int]{Key: 1, Filter: "a/b", QoS: 2, SubID: 7}, true, 1)
	f(Sub[int]{Key: 1, Filter: "a/b", QoS: 2, SubID: 7}, true, 1) // identical
	f(Sub[int]{Key: 2, Filter: "a/b"}, false, 2)
	f(Sub[int]{Key: 1, Filter: "a/+"}, false, 3)
	f(Sub[int]{Key: 1, Filter: "$share/g/a/b"}, false, 4) // shared is a different subscription
	f(Sub[int]{Key: 1, Filter: "$share/g/a/b", QoS: 1}, true, 4)
	f(Sub[int]{Key: 1, Filter: "$share/h/a/b"}, false, 5)
	requireSubs(t, r.Match([]byte("a/b")).Subs, "1 a/b q2 id7", "2 a/b q0 id0", "1 a/+ q0 id0")
	shared := r.Match([]byte("a/b")).Shared
	if len(shared) != 2 {
		t.Fatalf("shared groups %d, want 2", len(shared))
	}
	for _, g := range shared {
		if g.Name() == "g" && g.Members()[0].QoS != 1 {
			t.Errorf("group g member not replaced: %+v", g.Members())
		}
	}
}

func TestSubscribeIndexedNode(t *testing.T) {
	// Enough subscribers on one filter for the node to index them by key.
	r := New[int](Options{})
	const n = 3 * indexMin
	for i := range n {
		r.Subscribe(Sub[int]{Key: i, Filter: "fan/out"})
	}
	if !r.Subscribe(Sub[int]{Key: 5, Filter: "fan/out", QoS: 1}) {
		t.Fatal("replacement in an indexed node not reported")
	}
	for i := 0; i < n; i += 2 {
		if !r.Unsubscribe("fan/out", i) {
			t.Fatalf("Unsubscribe(%d) found nothing", i)
		}
	}
	if r.Unsubscribe("fan/out", 0) {
		t.Fatal("second Unsubscribe found something")
	}
	res := r.Match([]byte("fan/out"))
	if len(res.Subs) != n/2 {
		t.Fatalf("%d subs, want %d", len(res.Subs), n/2)
	}
	for _, s := range res.Subs {
		if s.Key%2 == 0 || (s.Key == 5) != (s.QoS == 1) {
			t.Fatalf("unexpected %+v", s)
		}
	}
	for i := 1; i < n; i += 2 {
		r.Unsubscribe("fan/out", i)
	}
	if r.Count() != 0 || len(r.Match([]byte("fan/out")).Subs) != 0 {
		t.Fatalf("Count %d after unsubscribing all", r.Count())
	}
}

// requireEmpty fails unless every shard's trie is pruned to its root.
func requireEmpty(t *testing.T, r *Router[int]) {
	t.Helper()
	for i, sh := range append(slices.Clone(r.shards), r.wild) {
		if !sh.root.isEmpty() {
			t.Fatalf("shard %d not pruned: children %v plus %v hash %v", i, sh.root.children, sh.root.plus, sh.root.hash)
		}
	}
}

func TestUnsubscribePrune(t *testing.T) {
	r := New[int](Options{Shards: 4})
	filters := []string{"a", "a/b", "a/b/c", "a/+/c", "a/#", "#", "+", "+/+/#", "/", "//x", "$SYS/#",
		"$share/g/a/b", "$share/g/+/b", "$share/h/a/b", "$share/g/#"}
	for _, f := range filters {
		for k := range 3 {
			r.Subscribe(Sub[int]{Key: k, Filter: f})
		}
	}
	if r.Count() != 3*len(filters) {
		t.Fatalf("Count %d, want %d", r.Count(), 3*len(filters))
	}
	f := func(filter string, key int, want bool) {
		t.Helper()
		if got := r.Unsubscribe(filter, key); got != want {
			t.Fatalf("Unsubscribe(%q, %d) = %v, want %v", filter, key, got, want)
		}
	}
	f("a/b/c/d", 0, false) // no such node
	f("a/b/x", 0, false)
	f("a/b", 9, false) // no such key
	f("$share/x/a/b", 0, false)
	f("$share/g/a/b", 9, false)
	// Removing the deeper filters first leaves nodes that still hold
	// subscriptions; removing all must leave nothing.
	for _, filter := range slices.Backward(filters) {
		for k := range 3 {
			f(filter, k, true)
			f(filter, k, false)
		}
	}
	for _, filter := range filters {
		for k := range 3 {
			r.Subscribe(Sub[int]{Key: k, Filter: filter})
		}
	}
	for _, filter := range filters {
		for k := range 3 {
			f(filter, k, true)
		}
	}
	if r.Count() != 0 {
		t.Fatalf("Count %d after unsubscribing all", r.Count())
	}
	requireEmpty(t, r)
	if res := r.Match([]byte("a/b")); len(res.Subs)+len(res.Shared) != 0 {
		t.Fatalf("matched after unsubscribing all: %+v", res)
	}
}

func TestSharedPick(t *testing.T) {
	r := New[int](Options{})
	for k := range 3 {
		r.Subscribe(Sub[int]{Key: k, Filter: "$share/g/jobs/+"})
	}
	res := r.Match([]byte("jobs/1"))
	if len(res.Shared) != 1 {
		t.Fatalf("%d groups, want 1", len(res.Shared))
	}
	g := res.Shared[0]
	pick := func(online func(int) bool) int {
		t.Helper()
		s, ok := g.Pick(online)
		if !ok {
			t.Fatal("Pick found no member")
		}
		return s.Key
	}
	f := func(online func(int) bool, want ...int) {
		t.Helper()
		var got []int
		for range want {
			got = append(got, pick(online))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("picked %v, want %v", got, want)
		}
	}
	all := func(int) bool { return true }
	f(nil, 0, 1, 2, 0, 1, 2)
	f(all, 0, 1, 2, 0)
	// Round robin over online members only, and fairly: 2 does not get the
	// turns of offline 0.
	f(func(k int) bool { return k != 0 }, 1, 2, 1, 2, 1)
	// Nobody online: round robin over all (the engine queues for an offline
	// persistent member).
	f(func(int) bool { return false }, 2, 0, 1, 2)
	f(func(k int) bool { return k == 1 }, 1, 1, 1)

	// Membership changes are seen by a Result kept from before.
	r.Unsubscribe("$share/g/jobs/+", 1)
	f(nil, 2, 0, 2, 0)
	r.Subscribe(Sub[int]{Key: 7, Filter: "$share/g/jobs/+"})
	if got := len(g.Members()); got != 3 {
		t.Fatalf("%d members, want 3", got)
	}
	r.Unsubscribe("$share/g/jobs/+", 0)
	r.Unsubscribe("$share/g/jobs/+", 2)
	r.Unsubscribe("$share/g/jobs/+", 7)
	if _, ok := g.Pick(nil); ok {
		t.Fatal("Pick on an emptied group found a member")
	}
	if res := r.Match([]byte("jobs/1")); len(res.Shared) != 0 {
		t.Fatalf("emptied group still matched: %+v", res.Shared)
	}
	requireEmpty(t, r)
}

func TestSharedGroups(t *testing.T) {
	r := New[int](Options{})
	// A group is identified by share name and filter (4.8.2): each matching
	// group gets its own copy of a message.
	r.Subscribe(Sub[int]{Key: 1, Filter: "$share/g/a/+"})
	r.Subscribe(Sub[int]{Key: 2, Filter: "$share/g/a/+"})
	r.Subscribe(Sub[int]{Key: 1, Filter: "$share/h/a/+"})
	r.Subscribe(Sub[int]{Key: 1, Filter: "$share/g/a/#"})
	r.Subscribe(Sub[int]{Key: 1, Filter: "$share/g/a/b"})
	r.Subscribe(Sub[int]{Key: 3, Filter: "a/b"})
	res := r.Match([]byte("a/b"))
	var got []string
	for _, g := range res.Shared {
		got = append(got, fmt.Sprintf("%s %s %d", g.Name(), g.Filter(), len(g.Members())))
	}
	slices.Sort(got)
	want := []string{"g a/# 1", "g a/+ 2", "g a/b 1", "h a/+ 1"}
	if !slices.Equal(got, want) {
		t.Fatalf("groups %q, want %q", got, want)
	}
	requireSubs(t, res.Subs, "3 a/b q0 id0")
	// Removing a group in the middle of a node's list keeps the others.
	r.Unsubscribe("$share/g/a/+", 1)
	r.Unsubscribe("$share/g/a/+", 2)
	if n := len(r.Match([]byte("a/b")).Shared); n != 3 {
		t.Fatalf("%d groups, want 3", n)
	}
}

func TestCacheInvalidation(t *testing.T) {
	r := New[int](Options{Shards: 2})
	topic := []byte("a/b")
	f := func(want ...string) *Result[int] {
		t.Helper()
		res := r.Match(topic)
		requireSubs(t, res.Subs, want...)
		if again := r.Match(topic); again != res {
			t.Fatal("second Match was not a cache hit")
		}
		return res
	}
	f()
	r.Subscribe(Sub[int]{Key: 1, Filter: "a/b"}) // the topic's shard
	f("1 a/b q0 id0")
	r.Subscribe(Sub[int]{Key: 2, Filter: "+/b"}) // the wildcard shard
	res := f("1 a/b q0 id0", "2 +/b q0 id0")
	r.Subscribe(Sub[int]{Key: 1, Filter: "a/b", QoS: 1}) // replacement
	f("1 a/b q1 id0", "2 +/b q0 id0")
	r.Unsubscribe("+/b", 2)
	f("1 a/b q1 id0")
	r.Unsubscribe("a/b", 1)
	f()
	// A kept Result is a snapshot: later changes do not alter it.
	requireSubs(t, res.Subs, "1 a/b q0 id0", "2 +/b q0 id0")

	// A change in another shard, a no-op replacement, or a member joining an
	// existing group keep the cached entry.
	r.Subscribe(Sub[int]{Key: 1, Filter: "a/b"})
	r.Subscribe(Sub[int]{Key: 1, Filter: "$share/g/a/b"})
	res = f("1 a/b q0 id0")
	r.Subscribe(Sub[int]{Key: 1, Filter: "a/b"})
	r.Subscribe(Sub[int]{Key: 2, Filter: "$share/g/a/b"})
	other := "b"
	for hashLevel(other)%2 == hashLevel("a")%2 {
		other += "b"
	}
	r.Subscribe(Sub[int]{Key: 1, Filter: other + "/b"})
	if r.Match(topic) != res {
		t.Fatal("cached entry recomputed after changes that do not alter it")
	}
	if g := res.Shared[0]; len(g.Members()) != 2 {
		t.Fatalf("group has %d members, want 2", len(g.Members()))
	}
	r.Unsubscribe("$share/g/a/b", 1) // the group stays
	if r.Match(topic) != res {
		t.Fatal("cached entry recomputed after a member left")
	}
	r.Unsubscribe("$share/g/a/b", 2) // the group goes
	if res := r.Match(topic); len(res.Shared) != 0 {
		t.Fatalf("removed group still matched: %+v", res.Shared)
	}

	// A '$' topic does not depend on the wildcard shard.
	r.Subscribe(Sub[int]{Key: 1, Filter: "$SYS/x"})
	sys := r.Match([]byte("$SYS/x"))
	r.Subscribe(Sub[int]{Key: 1, Filter: "#"})
	if r.Match([]byte("$SYS/x")) != sys {
		t.Fatal("'$' topic recomputed after a wildcard shard change")
	}
}

func TestCacheBound(t *testing.T) {
	r := New[int](Options{Shards: 1, CacheSize: 3})
	r.Subscribe(Sub[int]{Key: 1, Filter: "t/+"})
	for i := range 100 {
		topic := []byte(fmt.Sprintf("t/%d", i))
		if res := r.Match(topic); len(res.Subs) != 1 {
			t.Fatalf("%s: %d subs", topic, len(res.Subs))
		}
	}
	if n := r.caches[0].len(); n != 3 {
		t.Fatalf("cache holds %d topics, want 3", n)
	}
	// Re-storing a cached topic does not evict.
	r.Subscribe(Sub[int]{Key: 2, Filter: "t/+"})
	for range 3 {
		r.Match([]byte("t/99"))
	}
	if n := r.caches[0].len(); n != 3 {
		t.Fatalf("cache holds %d topics, want 3", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	r := New[int](Options{CacheSize: -1})
	r.Subscribe(Sub[int]{Key: 1, Filter: "a/#"})
	for i := range 3 {
		requireSubs(t, r.Match([]byte("a/b")).Subs, "1 a/# q0 id0")
		if i == 1 {
			r.Unsubscribe("a/#", 1)
			r.Subscribe(Sub[int]{Key: 1, Filter: "a/#"})
		}
	}
	if r.caches != nil {
		t.Fatal("cache allocated although disabled")
	}
}

func TestMatchCacheHitAllocs(t *testing.T) {
	r := New[int](Options{})
	for i := range 100 {
		r.Subscribe(Sub[int]{Key: i, Filter: fmt.Sprintf("dev/%d/+", i%10)})
		r.Subscribe(Sub[int]{Key: i, Filter: "+/5/#"})
	}
	for _, topic := range [][]byte{[]byte("dev/5/temp"), []byte("nobody/here"), []byte("$SYS/x")} {
		r.Match(topic)
		if n := testing.AllocsPerRun(100, func() { r.Match(topic) }); n != 0 {
			t.Errorf("Match(%q) on a cache hit: %v allocations, want 0", topic, n)
		}
	}
}

func TestMatchEmptyTopic(t *testing.T) {
	r := New[int](Options{})
	r.Subscribe(Sub[int]{Key: 1, Filter: "#"})
	if res := r.Match(nil); len(res.Subs) != 0 {
		t.Fatalf("empty topic matched %+v", res.Subs)
	}
}

func TestOptionsEnsureDefaults(t *testing.T) {
	f := func(in, want Options) {
		t.Helper()
		in.EnsureDefaults()
		if in != want {
			t.Errorf("got %+v, want %+v", in, want)
		}
	}
	f(Options{}, Options{Shards: DefaultShards, CacheSize: DefaultCacheSize})
	f(Options{Shards: -1, CacheSize: -1}, Options{Shards: DefaultShards, CacheSize: -1})
	f(Options{Shards: 3, CacheSize: 10}, Options{Shards: 3, CacheSize: 10})
}

func TestSplitShared(t *testing.T) {
	f := func(filter, group, f string, shared bool) {
		t.Helper()
		g, ff, ok := splitShared(filter)
		if g != group || ff != f || ok != shared {
			t.Errorf("splitShared(%q) = %q, %q, %v; want %q, %q, %v", filter, g, ff, ok, group, f, shared)
		}
	}
	f("a/b", "", "a/b", false)
	f("$share/g/a/b", "g", "a/b", true)
	f("$share/g/#", "g", "#", true)
	f("$share/g", "", "$share/g", false) // invalid at 5.0; taken literally
	f("$sharex/g/a", "", "$sharex/g/a", false)
}
