package router

import (
	"strings"
	"sync"
	"sync/atomic"
)

// retainedShards is the number of tries of a Retained, chosen by a hash of a
// topic's first level.
const retainedShards = 32

// Retained is the retained-message index: at most one value per topic, found
// by topic or by topic filter. It is safe for concurrent use.
type Retained[V any] struct {
	shards [retainedShards]rshard[V]
	n      atomic.Int64
}

type rshard[V any] struct {
	mu   sync.RWMutex // guards root and every node below it
	root rnode[V]
}

// rnode is one topic level of a retained trie.
type rnode[V any] struct {
	parent *rnode[V] // nil for a shard's root
	level  string
	// children finds a child by level; kids holds the same children for
	// walks, which iterate a slice several times faster than a map. pos is
	// n's index in parent.kids.
	children map[string]*rnode[V]
	kids     []*rnode[V]
	pos      int
	has      bool   // a value is retained at this topic
	topic    string // the full topic, when has
	v        V
}

// NewRetained returns an empty retained index.
func NewRetained[V any]() *Retained[V] { return &Retained[V]{} }

func (r *Retained[V]) shard(topic string) *rshard[V] {
	return &r.shards[hashLevel(topic[:levelEnd(topic, 0)])%retainedShards]
}

// Set retains v at topic (a valid topic name), returning the value it
// replaces, if any.
func (r *Retained[V]) Set(topic string, v V) (old V, replaced bool) {
	sh := r.shard(topic)
	sh.mu.Lock()
	n := &sh.root
	for start := 0; ; {
		end := levelEnd(topic, start)
		n = n.child(topic[start:end])
		if end == len(topic) {
			break
		}
		start = end + 1
	}
	old, replaced = n.v, n.has
	n.v, n.has, n.topic = v, true, topic
	sh.mu.Unlock()
	if !replaced {
		r.n.Add(1)
	}
	return old, replaced
}

// Delete removes the value retained at topic, returning it.
func (r *Retained[V]) Delete(topic string) (old V, ok bool) {
	sh := r.shard(topic)
	sh.mu.Lock()
	n := sh.root.find(topic)
	if n != nil && n.has {
		old, ok = n.v, true
		var zero V
		n.v, n.has, n.topic = zero, false, ""
		n.prune()
	}
	sh.mu.Unlock()
	if ok {
		r.n.Add(-1)
	}
	return old, ok
}

// Get returns the value retained at topic.
func (r *Retained[V]) Get(topic string) (v V, ok bool) {
	sh := r.shard(topic)
	sh.mu.RLock()
	if n := sh.root.find(topic); n != nil && n.has {
		v, ok = n.v, true
	}
	sh.mu.RUnlock()
	return v, ok
}

// Len returns the number of retained topics.
func (r *Retained[V]) Len() int { return int(r.n.Load()) }

// Match calls fn for every retained topic matching filter (a valid filter
// without "$share/": the engine strips it), in no particular order, by the
// rules of Router.Match, the '$' rule included; fn returns false to stop.
//
// fn runs with a shard of the index read-locked, so v cannot be replaced or
// deleted (and, if reference counted, released by the caller of Set or
// Delete) while fn holds it: fn takes its own reference. For the same reason
// fn must be quick and must not call methods of r or wait for anything that
// may be waiting for r: collect what to deliver and deliver after Match
// returns.
func (r *Retained[V]) Match(filter string, fn func(topic string, v V) bool) {
	first := filter[:levelEnd(filter, 0)]
	if first != "+" && first != "#" {
		r.shard(filter).match(filter, fn)
		return
	}
	for i := range r.shards {
		if !r.shards[i].match(filter, fn) {
			return
		}
	}
}

// match calls fn for the matches of filter in sh and reports whether fn
// wants more.
func (sh *rshard[V]) match(filter string, fn func(topic string, v V) bool) bool {
	sh.mu.RLock()
	defer sh.mu.RUnlock() // fn may panic
	return sh.root.match(filter, 0, fn)
}

// match calls fn for the values below n whose topic matches the levels of
// filter from start on (start > len(filter): all levels consumed), and
// reports whether fn wants more.
func (n *rnode[V]) match(filter string, start int, fn func(string, V) bool) bool {
	if start > len(filter) {
		return !n.has || fn(n.topic, n.v)
	}
	end := levelEnd(filter, start)
	switch level := filter[start:end]; level {
	case "#":
		// The parent level and every level below it (MQTT-4.7.1-2).
		return n.all(fn)
	case "+":
		for _, c := range n.kids {
			if n.parent == nil && isDollar(c.level) {
				continue // MQTT-4.7.2-1
			}
			if !c.match(filter, end+1, fn) {
				return false
			}
		}
	default:
		if c := n.children[level]; c != nil {
			return c.match(filter, end+1, fn)
		}
	}
	return true
}

// all calls fn for n's value and every value below it, except topics starting
// with '$' when n is a root: only '#' alone gets there (MQTT-4.7.2-1).
func (n *rnode[V]) all(fn func(string, V) bool) bool {
	if n.has && !fn(n.topic, n.v) {
		return false
	}
	for _, c := range n.kids {
		if n.parent == nil && isDollar(c.level) {
			continue
		}
		if !c.all(fn) {
			return false
		}
	}
	return true
}

func isDollar(level string) bool { return len(level) > 0 && level[0] == '$' }

func (n *rnode[V]) child(level string) *rnode[V] {
	c := n.children[level]
	if c == nil {
		if n.children == nil {
			n.children = make(map[string]*rnode[V])
		}
		level = strings.Clone(level) // do not pin the topic after it is deleted
		c = &rnode[V]{parent: n, level: level, pos: len(n.kids)}
		n.children[level] = c
		n.kids = append(n.kids, c)
	}
	return c
}

func (n *rnode[V]) find(topic string) *rnode[V] {
	for start := 0; n != nil; {
		end := levelEnd(topic, start)
		n = n.children[topic[start:end]]
		if end == len(topic) {
			return n
		}
		start = end + 1
	}
	return nil
}

// prune removes n and then each ancestor left empty, stopping at the root.
func (n *rnode[V]) prune() {
	for n.parent != nil && !n.has && len(n.kids) == 0 {
		p := n.parent
		delete(p.children, n.level)
		last := len(p.kids) - 1
		p.kids[n.pos] = p.kids[last]
		p.kids[n.pos].pos = n.pos
		p.kids[last] = nil
		p.kids = p.kids[:last]
		if last == 0 {
			p.children, p.kids = nil, nil // maps do not shrink
		}
		n.parent = nil
		n = p
	}
}
