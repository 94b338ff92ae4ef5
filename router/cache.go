package router

import "sync"

// cacheEntry is a cached Match result and the generations of the shards it
// was computed from: the topic's shard and the wildcard shard. It is valid
// while both generations are current (wgen is not checked for topics
// starting with '$', whose results never come from the wildcard shard).
type cacheEntry[K comparable] struct {
	gen, wgen uint64
	res       *Result[K]
}

// cache maps topics to Match results, bounded to max entries. Stale entries
// are not removed when a generation moves: they are recomputed on their next
// use or evicted.
type cache[K comparable] struct {
	mu  sync.RWMutex // guards m; never held with a shard's mu
	m   map[string]cacheEntry[K]
	max int
}

func newCache[K comparable](max int) *cache[K] {
	return &cache[K]{m: make(map[string]cacheEntry[K]), max: max}
}

// get looks topic up without allocating. topic is only read during the call.
func (c *cache[K]) get(topic []byte) (cacheEntry[K], bool) {
	c.mu.RLock()
	e, ok := c.m[string(topic)] // the compiler does not copy topic here
	c.mu.RUnlock()
	return e, ok
}

// put stores e for topic, copying topic. When the cache is full it evicts a
// random entry: map iteration starts at a random position. Random eviction
// keeps put O(1) and needs no bookkeeping on the hit path, which LRU would.
func (c *cache[K]) put(topic []byte, e cacheEntry[K]) {
	c.mu.Lock()
	if _, ok := c.m[string(topic)]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[string(topic)] = e
	c.mu.Unlock()
}

// len returns the number of cached topics.
func (c *cache[K]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
