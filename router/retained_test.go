package router

import (
	"fmt"
	"slices"
	"testing"
)

// retainedMatch returns the sorted topics Match(filter) reports.
func retainedMatch(r *Retained[int], filter string) []string {
	var got []string
	r.Match(filter, func(topic string, v int) bool {
		got = append(got, topic)
		return true
	})
	slices.Sort(got)
	return got
}

func TestRetainedMatchRules(t *testing.T) {
	f := func(filter, topic string, want bool) {
		t.Helper()
		r := NewRetained[int]()
		r.Set(topic, 1)
		// Neighbours that must not disturb the result.
		r.Set(topic+"/child", 2)
		r.Set("other/"+topic, 3)
		got := slices.Contains(retainedMatch(r, filter), topic)
		if got != want {
			t.Errorf("filter %q, topic %q: matched %v, want %v", filter, topic, got, want)
		}
	}
	matchCases(f)
}

func TestRetainedSetGetDelete(t *testing.T) {
	r := NewRetained[string]()
	set := func(topic, v, wantOld string, wantReplaced bool) {
		t.Helper()
		old, replaced := r.Set(topic, v)
		if old != wantOld || replaced != wantReplaced {
			t.Fatalf("Set(%q) = %q, %v; want %q, %v", topic, old, replaced, wantOld, wantReplaced)
		}
	}
	get := func(topic, want string, wantOK bool) {
		t.Helper()
		v, ok := r.Get(topic)
		if v != want || ok != wantOK {
			t.Fatalf("Get(%q) = %q, %v; want %q, %v", topic, v, ok, want, wantOK)
		}
	}
	del := func(topic, want string, wantOK bool) {
		t.Helper()
		v, ok := r.Delete(topic)
		if v != want || ok != wantOK {
			t.Fatalf("Delete(%q) = %q, %v; want %q, %v", topic, v, ok, want, wantOK)
		}
	}
	set("a/b", "1", "", false)
	set("a/b", "2", "1", true)
	set("a", "3", "", false)
	set("a/b/c", "4", "", false)
	set("/", "5", "", false)
	if r.Len() != 4 {
		t.Fatalf("Len %d, want 4", r.Len())
	}
	get("a/b", "2", true)
	get("a", "3", true)
	get("a/b/c/d", "", false)
	get("a/x", "", false)
	get("b", "", false)
	del("a/b", "2", true) // an inner node: a and a/b/c stay
	del("a/b", "", false)
	del("a/b/c/d", "", false)
	get("a/b", "", false)
	get("a/b/c", "4", true)
	if got := retainedMatch(toInt(r), "a/#"); !slices.Equal(got, []string{"a", "a/b/c"}) {
		t.Fatalf("a/# matched %q", got)
	}
	del("a/b/c", "4", true)
	del("a", "3", true)
	del("/", "5", true)
	if r.Len() != 0 {
		t.Fatalf("Len %d, want 0", r.Len())
	}
	for i := range r.shards {
		if n := &r.shards[i].root; len(n.children) != 0 {
			t.Fatalf("shard %d not pruned: %v", i, n.children)
		}
	}
}

// toInt re-indexes r's topics with int values, for retainedMatch.
func toInt(r *Retained[string]) *Retained[int] {
	out := NewRetained[int]()
	r.Match("#", func(topic string, _ string) bool {
		out.Set(topic, 0)
		return true
	})
	return out
}

func TestRetainedMatch(t *testing.T) {
	r := NewRetained[int]()
	topics := []string{"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
		"sport/golf", "/finance", "finance", "$SYS/broker/uptime", "$SYS", "a/$b", "sensors/1/temp",
		"sensors/2/temp", "sensors/2/hum", "sensors/3/x/temp"}
	for i, topic := range topics {
		r.Set(topic, i)
	}
	f := func(filter string, want ...string) {
		t.Helper()
		slices.Sort(want)
		if got := retainedMatch(r, filter); !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %q, want %q", filter, got, want)
		}
	}
	f("#", "sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
		"sport/golf", "/finance", "finance", "a/$b", "sensors/1/temp", "sensors/2/temp",
		"sensors/2/hum", "sensors/3/x/temp")
	f("sport/#", "sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/golf")
	f("sport/+", "sport/tennis", "sport/golf")
	f("+", "sport", "finance")
	f("+/+", "sport/tennis", "sport/golf", "/finance", "a/$b")
	f("sensors/+/temp", "sensors/1/temp", "sensors/2/temp")
	f("+/+/temp", "sensors/1/temp", "sensors/2/temp")
	f("$SYS/#", "$SYS/broker/uptime", "$SYS")
	f("$SYS/+/uptime", "$SYS/broker/uptime")
	f("+/broker/uptime")
	f("nothing/#")
	f("sport/tennis/player1", "sport/tennis/player1")

	// fn returning false stops the walk, in one shard and across shards.
	for _, filter := range []string{"#", "sport/#", "+/+", "sport/+"} {
		calls := 0
		r.Match(filter, func(string, int) bool { calls++; return false })
		if calls != 1 {
			t.Errorf("Match(%q) called fn %d times after it returned false", filter, calls)
		}
	}
	// The documented way to act on matches: collect, then act.
	for _, topic := range retainedMatch(r, "sensors/#") {
		r.Delete(topic)
	}
	f("sensors/#")
	f("+/+/temp")
}

func TestRetainedManyTopics(t *testing.T) {
	r := NewRetained[int]()
	const n = 5000
	for i := range n {
		r.Set(fmt.Sprintf("dev/%d/temp", i), i)
		r.Set(fmt.Sprintf("dev/%d/hum", i), i)
	}
	if got := len(retainedMatch(r, "dev/+/temp")); got != n {
		t.Fatalf("dev/+/temp matched %d, want %d", got, n)
	}
	if got := len(retainedMatch(r, "#")); got != 2*n {
		t.Fatalf("# matched %d, want %d", got, 2*n)
	}
	if got := retainedMatch(r, "dev/42/+"); !slices.Equal(got, []string{"dev/42/hum", "dev/42/temp"}) {
		t.Fatalf("dev/42/+ matched %q", got)
	}
}
