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
	// bufs recycles the slices Match collects matches in (*[]retainedKV[V]),
	// so that a "#" over many topics does not allocate them anew each time.
	bufs sync.Pool
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

// retainedKV is one match collected for Match.
type retainedKV[V any] struct {
	topic string
	v     V
}

// Match calls fn for every retained topic matching filter (a valid filter
// without "$share/": the engine strips it), in no particular order, by the
// rules of Router.Match, the '$' rule included; fn returns false to stop. fn
// is called with no lock held, so it may call into r; a change made
// concurrently with Match may or may not be seen.
func (r *Retained[V]) Match(filter string, fn func(topic string, v V) bool) {
	buf, _ := r.bufs.Get().(*[]retainedKV[V])
	if buf == nil {
		buf = new([]retainedKV[V])
	}
	first := filter[:levelEnd(filter, 0)]
	if first != "+" && first != "#" {
		r.shard(filter).match(filter, buf, fn)
	} else {
		for i := range r.shards {
			if !r.shards[i].match(filter, buf, fn) {
				break
			}
		}
	}
	r.bufs.Put(buf)
}

// match calls fn for the matches of filter in sh and reports whether fn
// wants more. The matches are collected in buf under the read lock and
// handed to fn after it is released, so that fn may block or call into the
// index without holding up writers or deadlocking. buf is left empty.
func (sh *rshard[V]) match(filter string, buf *[]retainedKV[V], fn func(topic string, v V) bool) bool {
	sh.mu.RLock()
	sh.root.match(filter, 0, buf)
	sh.mu.RUnlock()
	out := *buf
	defer func() {
		clear(out) // drop the references to values before the buffer is reused
		*buf = out[:0]
	}()
	for _, kv := range out {
		if !fn(kv.topic, kv.v) {
			return false
		}
	}
	return true
}

// match appends to out the values below n whose topic matches the levels of
// filter from start on (start > len(filter): all levels consumed).
func (n *rnode[V]) match(filter string, start int, out *[]retainedKV[V]) {
	if start > len(filter) {
		if n.has {
			*out = append(*out, retainedKV[V]{n.topic, n.v})
		}
		return
	}
	end := levelEnd(filter, start)
	switch level := filter[start:end]; level {
	case "#":
		// The parent level and every level below it (MQTT-4.7.1-2).
		n.all(out)
	case "+":
		for _, c := range n.kids {
			if n.parent == nil && isDollar(c.level) {
				continue // MQTT-4.7.2-1
			}
			c.match(filter, end+1, out)
		}
	default:
		if c := n.children[level]; c != nil {
			c.match(filter, end+1, out)
		}
	}
}

// all appends n's value and every value below it, except topics starting
// with '$' when n is a root: only '#' alone gets there (MQTT-4.7.2-1).
func (n *rnode[V]) all(out *[]retainedKV[V]) {
	if n.has {
		*out = append(*out, retainedKV[V]{n.topic, n.v})
	}
	for _, c := range n.kids {
		if n.parent == nil && isDollar(c.level) {
			continue
		}
		c.all(out)
	}
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
