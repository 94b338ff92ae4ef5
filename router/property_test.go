package router

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/tern-mqtt/tern/codec"
)

// A small alphabet makes random filters and topics collide often: empty
// levels, '$' first levels, shared prefixes.
var propLevels = []string{"a", "b", "$c", ""}

// randTopic returns a valid topic name: not empty (MQTT-4.7.3-1).
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

// randFilter returns a valid filter, shared one time in four.
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
	f := strings.Join(levels, "/")
	if f == "" {
		return randFilter(rng) // MQTT-4.7.3-1
	}
	if rng.Intn(4) == 0 {
		f = fmt.Sprintf("$share/g%d/%s", rng.Intn(2), f)
	}
	if err := codec.ValidateFilter([]byte(f), codec.Version5); err != nil {
		panic(fmt.Sprintf("BUG: invalid random filter %q: %v", f, err))
	}
	return f
}

// refRouter is the reference model of a Router: a map of subscriptions.
type refRouter map[string]map[int]Sub[int]

// match returns what Match must: the non-shared subscriptions as subSet
// strings, and each matching group as "name filter key,key,...".
func (m refRouter) match(topic string) (subs []Sub[int], groups []string) {
	members := map[string][]string{}
	for filter, byKey := range m {
		group, f, shared := splitShared(filter)
		if !refMatch(f, topic) {
			continue
		}
		for _, s := range byKey {
			if shared {
				id := group + " " + f
				members[id] = append(members[id], fmt.Sprint(s.Key, "q", s.QoS))
			} else {
				subs = append(subs, s)
			}
		}
	}
	for id, keys := range members {
		slices.Sort(keys)
		groups = append(groups, id+" "+strings.Join(keys, ","))
	}
	slices.Sort(groups)
	return subs, groups
}

func groupSet(groups []*Group[int]) []string {
	var out []string
	for _, g := range groups {
		var keys []string
		for _, s := range g.Members() {
			keys = append(keys, fmt.Sprint(s.Key, "q", s.QoS))
		}
		slices.Sort(keys)
		out = append(out, g.Name()+" "+g.Filter()+" "+strings.Join(keys, ","))
	}
	slices.Sort(out)
	return out
}

func TestMatchProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	steps := 2000
	if testing.Short() {
		steps = 300
	}
	for _, o := range []Options{{}, {Shards: 1, CacheSize: 2}, {Shards: 3, CacheSize: -1}} {
		r := New[int](o)
		model := refRouter{}
		count := 0
		for step := range steps {
			filter, key := randFilter(rng), rng.Intn(5)
			if rng.Intn(3) == 0 {
				_, want := model[filter][key]
				if got := r.Unsubscribe(filter, key); got != want {
					t.Fatalf("step %d: Unsubscribe(%q, %d) = %v, want %v", step, filter, key, got, want)
				}
				if want {
					delete(model[filter], key)
					if len(model[filter]) == 0 {
						delete(model, filter)
					}
					count--
				}
			} else {
				s := Sub[int]{Key: key, Filter: filter, QoS: byte(rng.Intn(3))}
				_, want := model[filter][key]
				if got := r.Subscribe(s); got != want {
					t.Fatalf("step %d: Subscribe(%+v) = %v, want %v", step, s, got, want)
				}
				if model[filter] == nil {
					model[filter] = map[int]Sub[int]{}
				}
				model[filter][key] = s
				if !want {
					count++
				}
			}
			if r.Count() != count {
				t.Fatalf("step %d: Count %d, want %d", step, r.Count(), count)
			}
			for range 2 {
				topic := randTopic(rng)
				res := r.Match([]byte(topic))
				wantSubs, wantGroups := model.match(topic)
				if got, want := subSet(res.Subs), subSet(wantSubs); !slices.Equal(got, want) {
					t.Fatalf("step %d %+v: Match(%q) subs\n %q\nwant\n %q", step, o, topic, got, want)
				}
				requireGrouped(t, res.Subs)
				if got := groupSet(res.Shared); !slices.Equal(got, wantGroups) {
					t.Fatalf("step %d %+v: Match(%q) groups\n %q\nwant\n %q", step, o, topic, got, wantGroups)
				}
			}
		}
		// Emptying the router prunes every node.
		for filter, byKey := range model {
			for key := range byKey {
				r.Unsubscribe(filter, key)
			}
		}
		requireEmpty(t, r)
	}
}

func TestRetainedMatchProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	r := NewRetained[int]()
	model := map[string]int{}
	for step := range 4000 {
		topic := randTopic(rng)
		if rng.Intn(3) == 0 {
			old, ok := r.Delete(topic)
			if want, wantOK := model[topic]; old != want || ok != wantOK {
				t.Fatalf("step %d: Delete(%q) = %d, %v; want %d, %v", step, topic, old, ok, want, wantOK)
			}
			delete(model, topic)
		} else {
			old, replaced := r.Set(topic, step)
			if want, wantOK := model[topic]; old != want || replaced != wantOK {
				t.Fatalf("step %d: Set(%q) = %d, %v; want %d, %v", step, topic, old, replaced, want, wantOK)
			}
			model[topic] = step
		}
		if r.Len() != len(model) {
			t.Fatalf("step %d: Len %d, want %d", step, r.Len(), len(model))
		}
		_, filter, _ := splitShared(randFilter(rng))
		var got, want []string
		r.Match(filter, func(topic string, v int) bool {
			got = append(got, fmt.Sprint(topic, "=", v))
			return true
		})
		for topic, v := range model {
			if refMatch(filter, topic) {
				want = append(want, fmt.Sprint(topic, "=", v))
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: Match(%q)\n %q\nwant\n %q", step, filter, got, want)
		}
	}
	for topic := range model {
		r.Delete(topic)
	}
	for i := range r.shards {
		if n := &r.shards[i].root; len(n.children) != 0 {
			t.Fatalf("shard %d not pruned: %v", i, n.children)
		}
	}
}
