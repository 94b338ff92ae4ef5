// Package sessions owns MQTT session state: the session table sharded by
// client id, and per session its subscriptions, the outbound in-flight window
// and offline queue, the inbound QoS 2 packet ids awaiting PUBREL, and the
// will. It knows nothing about sockets or event loops: the engine attaches a
// connection to a session as an opaque owner and drives the state through
// these methods under the session's lock.
package sessions

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
)

// Options sets the bounds of every session. Zero fields take the defaults
// documented on each; EnsureDefaults fills them.
type Options struct {
	Shards            int // session table shards; default 256
	MaxQueuedMessages int // per session offline/overflow queue length; default 1000; negative: no limit (the byte bound still applies)
	MaxQueuedBytes    int // per session queue bytes (topic+payload+properties); default 64 MiB

	// evicted counts queued QoS 0 deliveries dropped to make room for a
	// newer one; set by NewTable to its counter.
	evicted *atomic.Int64
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Shards <= 0 {
		o.Shards = 256
	}
	switch {
	case o.MaxQueuedMessages == 0:
		o.MaxQueuedMessages = 1000
	case o.MaxQueuedMessages < 0:
		o.MaxQueuedMessages = math.MaxInt
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 64 << 20
	}
}

// Table maps client ids to sessions. It is safe for concurrent use; each
// shard has its own lock, so connects on different client ids rarely contend.
type Table struct {
	opts   Options
	seed   maphash.Seed
	shards []tableShard
	count  atomic.Int64
	// evicted: see Options.evicted.
	evicted atomic.Int64
	nextID  atomic.Uint64
}

type tableShard struct {
	mu sync.Mutex
	m  map[string]*Session
}

// NewTable returns an empty table.
func NewTable(o Options) *Table {
	o.EnsureDefaults()
	t := &Table{seed: maphash.MakeSeed(), shards: make([]tableShard, o.Shards)}
	o.evicted = &t.evicted
	t.opts = o
	for i := range t.shards {
		t.shards[i].m = make(map[string]*Session)
	}
	return t
}

func (t *Table) shard(id string) *tableShard {
	return &t.shards[maphash.String(t.seed, id)%uint64(len(t.shards))]
}

// Get returns the session of client id, or nil.
func (t *Table) Get(id string) *Session {
	sh := t.shard(id)
	sh.mu.Lock()
	s := sh.m[id]
	sh.mu.Unlock()
	return s
}

// Acquire returns the session of client id, creating it when there is none or
// when fresh is set (Clean Start); resumed reports that an existing session
// is continued. A session replaced because of fresh is returned as old so
// that the caller can end it (drop its subscriptions, publish its will).
func (t *Table) Acquire(id string, fresh bool) (s *Session, resumed bool, old *Session) {
	sh := t.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur := sh.m[id]
	if cur != nil {
		cur.mu.Lock()
		ended := cur.ended // being ended by its last connection or its expiry: as good as gone
		if !fresh && !ended {
			cur.mu.Unlock()
			return cur, true, nil
		}
		cur.ended = true
		cur.mu.Unlock()
		if !ended {
			old = cur
		}
	} else {
		t.count.Add(1)
	}
	s = newSession(id, t.nextID.Add(1), &t.opts)
	sh.m[id] = s
	return s, false, old
}

// Remove deletes s from the table if it is still the session of its client
// id, marks it ended and reports whether it did.
func (t *Table) Remove(s *Session) bool {
	sh := t.shard(s.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[s.ID] != s {
		return false
	}
	delete(sh.m, s.ID)
	t.count.Add(-1)
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	return true
}

// EvictedQoS0 returns how many queued QoS 0 deliveries were dropped to make
// room in a full queue for newer ones: a loss like any other, to be counted.
func (t *Table) EvictedQoS0() int64 { return t.evicted.Load() }

// Len returns the number of sessions.
func (t *Table) Len() int { return int(t.count.Load()) }

// Range calls fn for every session until fn returns false. Sessions added or
// removed meanwhile may or may not be seen.
func (t *Table) Range(fn func(*Session) bool) {
	var batch []*Session
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		batch = batch[:0]
		for _, s := range sh.m {
			batch = append(batch, s)
		}
		sh.mu.Unlock()
		for _, s := range batch {
			if !fn(s) {
				return
			}
		}
	}
}
