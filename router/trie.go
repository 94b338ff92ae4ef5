package router

import (
	"strings"
	"sync/atomic"
)

// indexMin is the number of subscriptions on one filter from which a node
// indexes them by key; below it a linear scan is faster than a map.
const indexMin = 16

// node is one level of a topic filter in a shard's trie. All fields are
// guarded by the shard's mu, except snap, which readers holding mu for
// reading may fill in.
type node[K comparable] struct {
	parent   *node[K] // nil for a shard's root
	level    string   // the filter level leading here from parent
	children map[string]*node[K]
	plus     *node[K] // the '+' child
	hash     *node[K] // the '#' child
	// subs are the non-shared subscriptions whose filter ends here, one per
	// key, modified in place. index maps a key to its position in subs once
	// there are indexMin of them.
	subs  []Sub[K]
	index map[K]int
	// snap is a read-only copy of subs that Match results share, built by the
	// first Match after a change and dropped by every change. It saves
	// copying a large fan-out on every miss and lets the cached results of
	// many topics share one slice.
	snap atomic.Pointer[[]Sub[K]]
	// groups are the shared subscriptions on this filter. The slice is
	// copy-on-write because Match results share it.
	groups []*Group[K]
}

// insert returns the node of filter f below n, creating the missing ones.
func (n *node[K]) insert(f string) *node[K] {
	for start := 0; ; {
		end := levelEnd(f, start)
		n = n.child(f[start:end], true)
		if end == len(f) {
			return n
		}
		start = end + 1
	}
}

// find returns the node of filter f below n, or nil.
func (n *node[K]) find(f string) *node[K] {
	for start := 0; n != nil; {
		end := levelEnd(f, start)
		n = n.child(f[start:end], false)
		if end == len(f) {
			return n
		}
		start = end + 1
	}
	return nil
}

// child returns the child of n for level, creating it if create is set.
func (n *node[K]) child(level string, create bool) *node[K] {
	var p **node[K]
	switch level {
	case "+":
		p = &n.plus
	case "#":
		p = &n.hash
	default:
		c := n.children[level]
		if c == nil && create {
			if n.children == nil {
				n.children = make(map[string]*node[K])
			}
			// A copy, so that the node does not pin a long filter string
			// after that subscription is gone.
			level = strings.Clone(level)
			c = &node[K]{parent: n, level: level}
			n.children[level] = c
		}
		return c
	}
	if *p == nil && create {
		*p = &node[K]{parent: n, level: level}
	}
	return *p
}

func (n *node[K]) isEmpty() bool {
	return len(n.subs) == 0 && len(n.groups) == 0 && len(n.children) == 0 && n.plus == nil && n.hash == nil
}

// prune removes n and then each ancestor that is left empty, stopping at the
// root, so that the trie does not keep the levels of filters nobody
// subscribes to any more.
func (n *node[K]) prune() {
	for n.parent != nil && n.isEmpty() {
		p := n.parent
		switch n {
		case p.plus:
			p.plus = nil
		case p.hash:
			p.hash = nil
		default:
			delete(p.children, n.level)
			if len(p.children) == 0 {
				p.children = nil // maps do not shrink
			}
		}
		n.parent = nil
		n = p
	}
}

// addSub adds s to n or replaces the subscription of s.Key. changed is false
// when s replaced an identical subscription, so cached results stay valid.
func (n *node[K]) addSub(s Sub[K]) (existed, changed bool) {
	if i := n.indexOf(s.Key); i >= 0 {
		if n.subs[i] == s {
			return true, false
		}
		n.subs[i] = s
		n.snap.Store(nil)
		return true, true
	}
	n.subs = append(n.subs, s)
	if n.index != nil {
		n.index[s.Key] = len(n.subs) - 1
	} else if len(n.subs) >= indexMin {
		n.index = make(map[K]int, len(n.subs))
		for i, s := range n.subs {
			n.index[s.Key] = i
		}
	}
	n.snap.Store(nil)
	return false, true
}

// removeSub removes key's subscription from n.
func (n *node[K]) removeSub(key K) (existed bool) {
	i := n.indexOf(key)
	if i < 0 {
		return false
	}
	last := len(n.subs) - 1
	if i != last {
		n.subs[i] = n.subs[last]
		if n.index != nil {
			n.index[n.subs[i].Key] = i
		}
	}
	n.subs[last] = Sub[K]{} // drop the references of the removed entry
	n.subs = n.subs[:last]
	if n.index != nil {
		delete(n.index, key)
	}
	if len(n.subs) == 0 {
		n.subs, n.index = nil, nil
	}
	n.snap.Store(nil)
	return true
}

func (n *node[K]) indexOf(key K) int {
	if n.index != nil {
		if i, ok := n.index[key]; ok {
			return i
		}
		return -1
	}
	for i := range n.subs {
		if n.subs[i].Key == key {
			return i
		}
	}
	return -1
}

// snapshot returns a read-only copy of n.subs. The caller holds the shard's
// mu for reading; concurrent callers may each build one, which is harmless.
func (n *node[K]) snapshot() []Sub[K] {
	if p := n.snap.Load(); p != nil {
		return *p
	}
	s := make([]Sub[K], len(n.subs))
	copy(s, n.subs)
	n.snap.Store(&s)
	return s
}

// match adds to m the subscriptions below n whose filter matches the levels
// of topic from start on; start > len(topic) means all levels are consumed
// and n's own filter is matched. The caller holds the shard's mu for reading.
func (n *node[K]) match(topic []byte, start int, m *matcher[K]) {
	// '#' matches the parent level and any number of child levels, so
	// "sport/#" also matches "sport" (MQTT-4.7.1-2).
	if n.hash != nil {
		m.add(n.hash)
	}
	if start > len(topic) {
		m.add(n)
		return
	}
	end := levelEnd(topic, start)
	if c := n.children[string(topic[start:end])]; c != nil {
		c.match(topic, end+1, m)
	}
	// '+' matches exactly one level, which may be empty.
	if n.plus != nil {
		n.plus.match(topic, end+1, m)
	}
}

// matcher collects the matches of one topic. As long as one node contributed
// subscriptions (or groups), the result shares that node's read-only slice.
type matcher[K comparable] struct {
	subs        []Sub[K]
	groups      []*Group[K]
	subsNodes   int
	groupsNodes int
}

func (m *matcher[K]) add(n *node[K]) {
	if len(n.subs) > 0 {
		s := n.snapshot()
		switch m.subsNodes {
		case 0:
			m.subs = s
		case 1:
			m.subs = append(append(make([]Sub[K], 0, len(m.subs)+len(s)), m.subs...), s...)
		default:
			m.subs = append(m.subs, s...)
		}
		m.subsNodes++
	}
	if len(n.groups) > 0 {
		switch m.groupsNodes {
		case 0:
			m.groups = n.groups
		case 1:
			m.groups = append(append(make([]*Group[K], 0, len(m.groups)+len(n.groups)), m.groups...), n.groups...)
		default:
			m.groups = append(m.groups, n.groups...)
		}
		m.groupsNodes++
	}
}

// result returns the collected matches, or empty when there are none.
func (m *matcher[K]) result(empty *Result[K]) *Result[K] {
	if m.subsNodes == 0 && m.groupsNodes == 0 {
		return empty
	}
	subs := m.subs
	if m.subsNodes > 1 {
		// Keys are unique within a node, so only a merge can separate them.
		subs = groupByKey(subs)
	}
	return &Result[K]{Subs: subs, Shared: m.groups}
}

// groupByKeyLinear is the length up to which groupByKey compares all pairs
// instead of building a map.
const groupByKeyLinear = 32

// groupByKey reorders s, which the caller owns, so that entries with the same
// Key are adjacent, and returns it (or a reordered copy).
func groupByKey[K comparable](s []Sub[K]) []Sub[K] {
	if len(s) <= groupByKeyLinear {
		for i := 0; i < len(s); {
			end := i + 1
			for j := end; j < len(s); j++ {
				if s[j].Key == s[i].Key {
					s[j], s[end] = s[end], s[j]
					end++
				}
			}
			i = end
		}
		return s
	}
	// A counting sort by the order in which keys first appear.
	group := make(map[K]int, len(s))
	for i := range s {
		if _, ok := group[s[i].Key]; !ok {
			group[s[i].Key] = len(group)
		}
	}
	if len(group) == len(s) {
		return s // no key twice
	}
	pos := make([]int, len(group)+1)
	for i := range s {
		pos[group[s[i].Key]+1]++
	}
	for g := 1; g < len(pos); g++ {
		pos[g] += pos[g-1]
	}
	out := make([]Sub[K], len(s))
	for i := range s {
		g := group[s[i].Key]
		out[pos[g]] = s[i]
		pos[g]++
	}
	return out
}
