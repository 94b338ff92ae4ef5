package retain

import (
	"math/rand"
	"testing"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/router"
)

func TestMatches(t *testing.T) {
	f := func(filter, topic string, want bool) {
		t.Helper()
		if got := codec.MatchTopic(filter, topic); got != want {
			t.Errorf("MatchTopic(%q, %q) = %v, want %v", filter, topic, got, want)
		}
		if got := codec.MatchTopic(filter, []byte(topic)); got != want {
			t.Errorf("MatchTopic(%q, []byte %q) = %v, want %v", filter, topic, got, want)
		}
	}
	f("a", "a", true)
	f("a", "b", false)
	f("a", "a/b", false)
	f("a/b", "a", false)
	f("#", "a/b/c", true)
	f("#", "/", true)
	f("a/#", "a", true) // MQTT-4.7.1-2
	f("a/#", "a/", true)
	f("a/#", "ab", false)
	f("a/b/#", "a", false)
	f("+", "a", true)
	f("+", "/", false)
	f("+", "", true) // not a valid topic, but the rule holds
	f("+/+", "/", true)
	f("/+", "/", true)
	f("a/+", "a", false)
	f("a/+", "a/", true)
	f("a/+/c", "a/b/c", true)
	f("a/+/c", "a/b/d", false)
	f("+/#", "a", true)
	f("#", "$SYS/a", false) // MQTT-4.7.2-1
	f("+/a", "$SYS/a", false)
	f("+", "$SYS", false)
	f("$SYS/#", "$SYS/a", true)
	f("$SYS/+", "$SYS/a", true)
	f("a/$b", "a/$b", true)
	f("a/+", "a/$b", true) // the '$' rule is for the first level only
	f("A", "a", false)     // case sensitive (4.7.3)
}

// matches agrees with router.Retained, which the engine used so far.
func TestMatchesAgreesWithRouter(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for range 20000 {
		topic, filter := randTopic(rng), randFilter(rng)
		r := router.NewRetained[int]()
		r.Set(topic, 1)
		want := false
		r.Match(filter, func(string, int) bool { want = true; return true })
		if got := codec.MatchTopic(filter, []byte(topic)); got != want {
			t.Fatalf("MatchTopic(%q, %q) = %v, router says %v", filter, topic, got, want)
		}
	}
}

func TestMatchesAllocs(t *testing.T) {
	topic := []byte("sensors/building-1/floor-2/temp")
	if a := testing.AllocsPerRun(100, func() { codec.MatchTopic("sensors/+/+/temp", topic) }); a != 0 {
		t.Fatalf("matches allocates %.1f times", a)
	}
}

func TestPlanScan(t *testing.T) {
	f := func(filter string, want scan) {
		t.Helper()
		if got := planScan(filter); got != want {
			t.Errorf("planScan(%q) = %+v, want %+v", filter, got, want)
		}
	}
	f("a/b", scan{exact: true})
	f("/", scan{exact: true})
	f("#", scan{})
	f("+", scan{})
	f("+/a/#", scan{})
	f("a/#", scan{prefix: "a/", parent: "a"})
	f("a/b/#", scan{prefix: "a/b/", parent: "a/b"})
	f("a/+/#", scan{prefix: "a/"})
	f("a/+", scan{prefix: "a/"})
	f("a//+", scan{prefix: "a//"})
	f("a//#", scan{prefix: "a//", parent: "a/"})
	f("/#", scan{prefix: "/"})
	f("/+", scan{prefix: "/"})
	f("$SYS/#", scan{prefix: "$SYS/", parent: "$SYS"})
}
