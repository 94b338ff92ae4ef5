package router

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Sub is one subscription of one subscriber. K identifies the subscriber (the
// engine uses its *Session pointer). A subscription is identified by
// (Filter, Key): subscribing again to the same filter replaces it.
type Sub[K comparable] struct {
	Key               K
	Filter            string // the filter as subscribed, including any "$share/{group}/" prefix
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	SubID             uint32 // 5.0 subscription identifier, 0 = none
}

// Defaults of Options.
const (
	DefaultShards    = 64
	DefaultCacheSize = 4096
)

// Options configures a Router. The zero value is ready to use.
type Options struct {
	// Shards is the number of subscription index shards a filter is hashed
	// into by its first level; filters starting with a wildcard live in one
	// extra shard on top of these. The match cache has as many shards, chosen
	// by a hash of the whole topic. Default DefaultShards (64).
	Shards int
	// CacheSize is the maximum number of cached topics per cache shard (so
	// Shards*CacheSize in all); when a shard is full, caching a new topic
	// evicts a random one. Default DefaultCacheSize (4096); zero means the
	// default, a negative value disables the cache.
	CacheSize int
}

// EnsureDefaults fills the zero fields of o with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Shards <= 0 {
		o.Shards = DefaultShards
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
}

// Result is the set of subscriptions matching one topic. A Result may be
// cached and shared between goroutines: it is read-only, and stays valid (as
// a snapshot) for as long as the caller keeps it.
type Result[K comparable] struct {
	// Subs are the matching non-shared subscriptions, with all entries of the
	// same Key adjacent, in no particular order otherwise. A subscriber with
	// several overlapping filters appears once per filter: the engine delivers
	// once with the highest QoS and all subscription identifiers (3.3.4).
	Subs []Sub[K]
	// Shared holds one entry per matching shared subscription, identified by
	// share name and filter; Group.Pick chooses the member that gets the
	// message. Members can change after Match returned: Pick sees the current
	// ones.
	Shared []*Group[K]
}

// Router is the subscription index. It is safe for concurrent use.
type Router[K comparable] struct {
	shards []*shard[K] // filters with a literal first level, by hash of it
	wild   *shard[K]   // filters whose first level is '+' or '#'
	// caches hold Match results by topic, chosen by a hash of the whole
	// topic rather than of its first level: deployments often put every
	// topic under one first level ("devices/..."), which would crowd one
	// shard's cache. nil when disabled.
	caches []*cache[K]
	seed   maphash.Seed
	empty  *Result[K] // returned for every topic without subscribers
	count  atomic.Int64
}

// shard is one trie of the subscription index.
type shard[K comparable] struct {
	mu   sync.RWMutex // guards root and every node below it
	root node[K]
	// gen is bumped, with mu held, by every change that alters a Match result
	// computed from this shard. Readers load it with mu read-locked (so it is
	// consistent with the trie they read) or without it (to validate a
	// cache entry).
	gen atomic.Uint64
}

// New returns an empty Router configured by o.
func New[K comparable](o Options) *Router[K] {
	o.EnsureDefaults()
	r := &Router[K]{
		shards: make([]*shard[K], o.Shards),
		wild:   &shard[K]{},
		seed:   maphash.MakeSeed(),
		empty:  &Result[K]{},
	}
	for i := range r.shards {
		r.shards[i] = &shard[K]{}
	}
	if o.CacheSize > 0 {
		r.caches = make([]*cache[K], o.Shards)
		for i := range r.caches {
			r.caches[i] = newCache[K](o.CacheSize)
		}
	}
	return r
}

// Count returns the number of subscriptions, shared group members included.
func (r *Router[K]) Count() int { return int(r.count.Load()) }

// Subscribe adds the subscription s, or replaces key's existing subscription
// on the same filter; existed reports a replacement (the engine needs it for
// 5.0 Retain Handling 1, 3.8.3.1). s.Filter must be valid
// (codec.ValidateFilter). A filter "$share/{group}/{f}" makes s a member of
// the shared subscription of group to f; the router cannot tell protocol
// versions apart, so the engine passes such filters only for 5.0 clients.
func (r *Router[K]) Subscribe(s Sub[K]) (existed bool) {
	group, f, shared := splitShared(s.Filter)
	sh := r.filterShard(f)
	var changed bool
	sh.mu.Lock()
	n := sh.root.insert(f)
	if shared {
		existed, changed = n.addMember(group, f, s)
	} else {
		existed, changed = n.addSub(s)
	}
	if changed {
		sh.gen.Add(1)
	}
	sh.mu.Unlock()
	if !existed {
		r.count.Add(1)
	}
	return existed
}

// Unsubscribe removes key's subscription on filter (as subscribed, including
// any "$share/{group}/" prefix); existed is false when there was none. Trie
// nodes and shared groups left empty are removed.
func (r *Router[K]) Unsubscribe(filter string, key K) (existed bool) {
	group, f, shared := splitShared(filter)
	sh := r.filterShard(f)
	sh.mu.Lock()
	if n := sh.root.find(f); n != nil {
		var changed bool
		if shared {
			existed, changed = n.removeMember(group, key)
		} else {
			existed = n.removeSub(key)
			changed = existed
		}
		if changed {
			sh.gen.Add(1)
		}
		if existed {
			n.prune()
		}
	}
	sh.mu.Unlock()
	if existed {
		r.count.Add(-1)
	}
	return existed
}

// Match returns every subscription whose filter matches topic, a valid topic
// name (codec.ValidateTopicName). topic is only read during the call. The
// result may be cached and shared: callers must not modify it, and may keep
// it. It is never nil.
func (r *Router[K]) Match(topic []byte) *Result[K] {
	if len(topic) == 0 {
		return r.empty
	}
	sh := r.shards[hashLevel(topic[:levelEnd(topic, 0)])%uint32(len(r.shards))]
	// Filters starting with a wildcard do not match topics starting with '$'
	// (MQTT-4.7.2-1), and those are all in the wildcard shard.
	dollar := topic[0] == '$'
	var c *cache[K]
	if r.caches != nil {
		c = r.caches[maphash.Bytes(r.seed, topic)%uint64(len(r.caches))]
		if e, ok := c.get(topic); ok && e.gen == sh.gen.Load() && (dollar || e.wgen == r.wild.gen.Load()) {
			return e.res
		}
	}
	var m matcher[K]
	gen := sh.match(topic, &m)
	var wgen uint64
	if !dollar {
		wgen = r.wild.match(topic, &m)
	}
	res := m.result(r.empty)
	if c != nil {
		c.put(topic, cacheEntry[K]{gen: gen, wgen: wgen, res: res})
	}
	return res
}

// match adds the matches of topic in sh to m and returns the generation they
// are from.
func (sh *shard[K]) match(topic []byte, m *matcher[K]) (gen uint64) {
	sh.mu.RLock()
	gen = sh.gen.Load()
	sh.root.match(topic, 0, m)
	sh.mu.RUnlock()
	return gen
}

// filterShard returns the shard of topic filter f (without "$share/").
func (r *Router[K]) filterShard(f string) *shard[K] {
	first := f[:levelEnd(f, 0)]
	if first == "+" || first == "#" {
		return r.wild
	}
	return r.shards[hashLevel(first)%uint32(len(r.shards))]
}

// hashLevel is FNV-1a, inlined so that topics ([]byte) and filters (string)
// hash alike without conversion.
func hashLevel[T string | []byte](level T) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(level); i++ {
		h ^= uint32(level[i])
		h *= 16777619
	}
	return h
}

// levelEnd returns the index of the '/' ending the level that starts at
// start, or len(s) for the last level.
func levelEnd[T string | []byte](s T, start int) int {
	for i := start; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}
