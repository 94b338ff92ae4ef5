package router

import (
	"strings"
	"sync/atomic"

	"github.com/tern-mqtt/tern/codec"
)

// Group is one shared subscription (4.8.2): the members that subscribed to
// the same filter with the same share name. Each message matching the filter
// goes to one member, chosen by Pick. Its methods are safe for concurrent use,
// also with Subscribe and Unsubscribe changing the members.
type Group[K comparable] struct {
	name   string
	filter string
	// members is copy-on-write: Subscribe and Unsubscribe (holding the
	// shard's mu) store a new slice, Pick loads the current one without a
	// lock. Never nil.
	members atomic.Pointer[[]Sub[K]]
	// next is the round-robin position: Pick starts looking at
	// members[next % len] and moves it past the member it chose.
	next atomic.Uint64
}

func newGroup[K comparable](name, filter string) *Group[K] {
	g := &Group[K]{name: strings.Clone(name), filter: strings.Clone(filter)}
	g.members.Store(new([]Sub[K]))
	return g
}

// Name returns the share name.
func (g *Group[K]) Name() string { return g.name }

// Filter returns the topic filter, without the "$share/{name}/" prefix.
func (g *Group[K]) Filter() string { return g.filter }

// Members returns the current members. The slice is read-only.
func (g *Group[K]) Members() []Sub[K] { return *g.members.Load() }

// Pick chooses the member that gets the next message: round robin over the
// members for which online(key) is true; if none is, round robin over all
// members (the engine then queues the message for that offline persistent
// member). A nil online counts every member as online. ok is false when the
// group has no members, which a Result kept after the last member left can
// see. online may be called more than once per member and must be cheap.
func (g *Group[K]) Pick(online func(K) bool) (s Sub[K], ok bool) {
	for {
		members := *g.members.Load()
		n := uint64(len(members))
		if n == 0 {
			return s, false
		}
		start := g.next.Load()
		skip := uint64(0)
		if online != nil {
			for skip < n && !online(members[(start+skip)%n].Key) {
				skip++
			}
			if skip == n {
				skip = 0 // nobody online: the next in turn
			}
		}
		// Moving next just past the chosen member keeps the rotation fair
		// when some members are offline: the member after an offline one does
		// not get its turns too. A lost race means another Pick took this
		// turn; look again.
		if g.next.CompareAndSwap(start, start+skip+1) {
			return members[(start+skip)%n], true
		}
	}
}

// add adds s to g or replaces the member of s.Key. The caller holds the
// shard's mu.
func (g *Group[K]) add(s Sub[K]) (existed bool) {
	old := *g.members.Load()
	members := make([]Sub[K], len(old), len(old)+1)
	copy(members, old)
	for i := range members {
		if members[i].Key == s.Key {
			members[i] = s
			g.members.Store(&members)
			return true
		}
	}
	members = append(members, s)
	g.members.Store(&members)
	return false
}

// remove removes key's membership. The caller holds the shard's mu.
func (g *Group[K]) remove(key K) (existed bool) {
	old := *g.members.Load()
	for i := range old {
		if old[i].Key == key {
			members := make([]Sub[K], 0, len(old)-1)
			members = append(append(members, old[:i]...), old[i+1:]...)
			g.members.Store(&members)
			return true
		}
	}
	return false
}

// addMember adds s to the group named name on n (of filter f), creating the
// group if needed. changed reports a new group: a member joining an existing
// group does not change Match results, which hold the *Group.
func (n *node[K]) addMember(name, f string, s Sub[K]) (existed, changed bool) {
	if g := n.group(name); g != nil {
		return g.add(s), false
	}
	g := newGroup[K](name, f)
	g.add(s)
	groups := make([]*Group[K], 0, len(n.groups)+1)
	n.groups = append(append(groups, n.groups...), g)
	return false, true
}

// removeMember removes key from the group named name on n, and the group from
// n when it is left empty; changed reports that removal.
func (n *node[K]) removeMember(name string, key K) (existed, changed bool) {
	g := n.group(name)
	if g == nil || !g.remove(key) {
		return false, false
	}
	if len(g.Members()) > 0 {
		return true, false
	}
	if len(n.groups) == 1 {
		n.groups = nil
		return true, true
	}
	groups := make([]*Group[K], 0, len(n.groups)-1)
	for _, o := range n.groups {
		if o != g {
			groups = append(groups, o)
		}
	}
	n.groups = groups
	return true, true
}

func (n *node[K]) group(name string) *Group[K] {
	for _, g := range n.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// splitShared splits "$share/{group}/{f}" into its share name and filter. A
// filter that is not shared, or lacks the '/' after the share name (which
// codec.ValidateFilter rejects at 5.0), is returned whole as f.
func splitShared(filter string) (group, f string, shared bool) {
	rest, ok := strings.CutPrefix(filter, codec.SharePrefix)
	if !ok {
		return "", filter, false
	}
	group, f, ok = strings.Cut(rest, "/")
	if !ok {
		return "", filter, false
	}
	return group, f, true
}
