// Package retain owns the broker's retained messages: one per topic, found by
// topic (Get) or by topic filter (Match), bounded in number and bytes.
//
// An Index works in one of two modes. Without a data directory (NewMemory)
// every retained message stays in RAM, in a router.Retained trie. With one
// (NewDisk) the bodies live in the wal package's retained family, written by
// the broker through the same wal.Batch as the PUBLISH that set them, and
// only a bounded cache of bodies (ristretto, Options.CacheBytes) stays in
// RAM, so a broker can retain millions of topics.
//
// # Disk mode
//
// Set writes the change into the caller's batch and keeps the new message
// (or a tombstone, for a clear) in an in-memory overlay until the batch
// completes: the broker routes a retained message before it is durable, and
// a subscriber arriving meanwhile must see it. Get and Match read the
// overlay first, then the cache, then the store. Completions arrive in
// submission order (wal.Store.Submit), so the overlay entry of a topic is
// dropped when its last outstanding change completes. If that last
// completion is not the one of the latest Set (the engine submitted the
// batches of one topic out of Set order) or one of them failed, what is on
// disk is not what the index counted: the topic is marked unsure, and its
// next Set reads the store again and corrects Len and Bytes.
//
// The cache holds copies of bodies read from the store, never the broker's
// reference-counted messages: an entry can be evicted at any moment by the
// cache's own goroutine, and a copy needs no reference to survive that; Get
// copies a hit into a new message. Only exact lookups fill it (Get, Match of
// a filter without wildcards, and of the parent topic "a" of a filter
// "a/#"), so a '#' subscription over millions of topics streams from the
// store without evicting what exact lookups use. Set consults it for the
// old size but does not fill it, and a completed change removes its topic.
//
// Match of a filter with wildcards reads the store from the filter's literal
// prefix, the levels before its first wildcard: "site/3/#" reads the topics
// under "site/3/" only, but "+/temp" reads every topic and "site/+/t/#"
// every topic under "site/". Its cost follows the topics under the prefix,
// not the matches.
//
// # Locks
//
// Topics are hashed into shards, each with a sync.RWMutex guarding its
// overlay, its unsure topics, its generation (bumped whenever a topic's
// stored body changes, so that a cache fill that read the store before the
// change is not admitted after it) and every cache call for its topics. Set
// holds its shard's lock while it reads the old body from the store: the
// retained path is not the hot path, and holding it keeps the count and byte
// accounting of one topic exact under concurrent Sets. Counters have their
// own mutex, taken inside a shard lock. No goroutine holds two shard locks,
// except Close, which takes them all in order. Match calls its fn with no
// index lock held.
package retain

import (
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/router"
	"github.com/tern-mqtt/tern/wal"
)

var (
	// ErrFull is returned by Set for a new topic or a bigger body that would
	// exceed Options.MaxMessages or Options.MaxBytes. The engine answers
	// 0x97 Quota exceeded.
	ErrFull = errors.New("retain: retained store full")
	// ErrClosed is returned by Set, Get and Match after Close.
	ErrClosed = errors.New("retain: index closed")
	// errNoBatch is returned by Set in disk mode without a batch: a bug of
	// the caller, refused rather than retained in memory only.
	errNoBatch = errors.New("retain: disk mode Set needs a batch")
)

// DefaultCacheBytes is the default of Options.CacheBytes.
const DefaultCacheBytes = 64 << 20

// Options configure an Index. EnsureDefaults fills the zero fields.
type Options struct {
	// MaxMessages bounds the number of retained topics; 0 or negative: no
	// limit.
	MaxMessages int
	// MaxBytes bounds the bytes of topic, payload and forwarded properties
	// of all retained messages (as wal.State.RetainedBytes counts them); 0
	// or negative: no limit.
	MaxBytes int64
	// CacheBytes bounds the body cache in disk mode: each entry costs the
	// bytes of its topic, payload and properties plus about 240 bytes of
	// bookkeeping, close to what it takes on the heap. The cache also takes
	// about 1 MiB plus 3% of CacheBytes whatever it holds (admission
	// counters, buffers). Default DefaultCacheBytes (64 MiB); negative
	// disables the cache. Unused in memory mode.
	CacheBytes int64
	// Logger receives failed commits. Default slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills the zero fields of o with their defaults.
func (o *Options) EnsureDefaults() {
	if o.CacheBytes == 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// shardCount is the number of lock shards topics are hashed into.
const shardCount = 64

// Index is the retained-message index. Its methods are safe for concurrent
// use.
type Index struct {
	o    Options
	seed maphash.Seed
	// closed is set by Close before it takes the shard locks; a method that
	// sees it under a shard lock refuses.
	closed atomic.Bool
	shards [shardCount]shard

	acctMu sync.Mutex   // serializes the limit check with the update
	count  atomic.Int64 // retained topics
	bytes  atomic.Int64 // their Size()

	// Memory mode: the messages, each holding a reference the index owns.
	// Mutated only under the shard lock of the topic, so that reading the
	// old value and replacing it is atomic for the accounting.
	mem *router.Retained[*message.Message]
	// dollar counts the retained topics per first level starting with '$',
	// which no wildcard filter reaches (MQTT-4.7.2-1): Close finds them
	// through it.
	dollarMu sync.Mutex
	dollar   map[string]int

	// Disk mode.
	st    *wal.Store
	cache *ristretto.Cache[string, *wal.Message] // nil when disabled; set to nil by Close under every shard lock

	// testAfterRead, when set, runs in Get between the store read and the
	// cache fill.
	testAfterRead func()

	// Failed commits are logged at most once a second.
	logMu      sync.Mutex
	lastLog    time.Time
	suppressed int
}

type shard struct {
	mu sync.RWMutex
	// Disk mode only.
	overlay map[string]*pending
	unsure  map[string]usage
	gen     uint64
}

// usage is what one topic adds to the counters.
type usage struct {
	exists bool
	size   int64
}

// NewMemory returns an index that keeps every retained message in RAM, for a
// broker without a data directory.
func NewMemory(o Options) *Index {
	o.EnsureDefaults()
	return &Index{
		o:      o,
		seed:   maphash.MakeSeed(),
		mem:    router.NewRetained[*message.Message](),
		dollar: make(map[string]int),
	}
}

// NewDisk returns an index over the retained family of st, which must have
// been loaded (wal.Store.Load). count and bytes are what Load reported
// (State.Retained, State.RetainedBytes). The index does not close st.
func NewDisk(st *wal.Store, count int, bytes int64, o Options) *Index {
	o.EnsureDefaults()
	x := &Index{o: o, seed: maphash.MakeSeed(), st: st}
	x.count.Store(int64(count))
	x.bytes.Store(bytes)
	for i := range x.shards {
		x.shards[i].overlay = make(map[string]*pending)
		x.shards[i].unsure = make(map[string]usage)
	}
	if o.CacheBytes > 0 {
		x.cache = newCache(o.CacheBytes)
	}
	return x
}

func (x *Index) shard(topic string) *shard {
	return &x.shards[maphash.String(x.seed, topic)%shardCount]
}

// noCommit is the commit func of changes that need no completion.
func noCommit(error) {}

// Set makes m the retained message of string(m.Topic), or clears the topic
// when len(m.Payload) == 0 (MQTT-3.3.1-6, -7). The index takes its own
// reference when it keeps m; the caller keeps its own.
//
// Replacing or clearing is always allowed; a new topic, or a bigger body,
// that would exceed Options.MaxMessages or Options.MaxBytes returns ErrFull
// and changes nothing (b included).
//
// In disk mode b must not be nil: Set adds b.RetainedPut or b.RetainedDelete
// and returns a commit func that the caller must call exactly once when b
// completes, with the error of the completion (or of Submit, if it refused
// b): until then Get and Match see the change from memory. Set may read the
// store (the old body's size) and then returns the store's error. Clearing a
// topic that has no retained message adds nothing to b. In memory mode b is
// ignored (it may be nil). commit is never nil when err is nil.
func (x *Index) Set(m *message.Message, b *wal.Batch) (commit func(error), err error) {
	if x.st != nil {
		return x.setDisk(m, b)
	}
	return noCommit, x.setMemory(m)
}

// Get returns the retained message of topic with a reference the caller
// releases; in disk mode it reads the overlay, the cache, then the store,
// and caches what it read.
func (x *Index) Get(topic string) (*message.Message, bool, error) {
	if x.st != nil {
		return x.getDisk(topic)
	}
	return x.getMemory(topic)
}

// Match calls fn for each retained message whose topic matches filter (a
// valid filter without "$share/{group}/"), by the rules of MQTT 5.0 4.7: '+'
// and '#' wildcards, and no wildcard in the first level matches a topic
// starting with '$' (MQTT-4.7.2-1). It stops when fn returns false. Messages
// come in no particular order, and may have expired: the caller filters.
//
// fn gets a message it must Ref if it keeps it past the call. fn runs with no
// lock of the index held, so it may deliver to sessions. In disk mode it runs
// inside the store's scan of the retained family (wal.Store.RangeRetained,
// which holds the store's read lock against a reopen or Close): fn must not
// call the Index or the store's readers, and must not wait for a completion
// of the store. wal.Store.Submit is fine: it never waits.
//
// In disk mode a filter with wildcards reads the store from its literal
// prefix on and leaves the cache alone; a filter without wildcards is a Get.
func (x *Index) Match(filter string, fn func(m *message.Message) bool) error {
	if x.st != nil {
		return x.matchDisk(filter, fn)
	}
	return x.matchMemory(filter, fn)
}

// Len returns the number of retained messages.
func (x *Index) Len() int { return int(x.count.Load()) }

// Bytes returns the bytes of topic, payload and properties of the retained
// messages.
func (x *Index) Bytes() int64 { return x.bytes.Load() }

// Close releases every message and cache entry the index holds. Set, Get
// and Match return ErrClosed afterwards. Commit funcs of changes made before
// Close may still be called. Close does not close the store.
func (x *Index) Close() {
	if x.closed.Swap(true) {
		return
	}
	for i := range x.shards {
		x.shards[i].mu.Lock()
	}
	var held []*message.Message
	if x.st != nil {
		held = x.closeDisk()
	} else {
		held = x.closeMemory()
	}
	for i := range x.shards {
		x.shards[i].mu.Unlock()
	}
	for _, m := range held {
		m.Release()
	}
}

// account applies a change of dc topics and db bytes. With check, a change
// that adds topics or bytes is refused (false) when it would exceed a limit.
func (x *Index) account(dc, db int64, check bool) bool {
	x.acctMu.Lock()
	defer x.acctMu.Unlock()
	if check {
		if max := int64(x.o.MaxMessages); max > 0 && dc > 0 && x.count.Load()+dc > max {
			return false
		}
		if max := x.o.MaxBytes; max > 0 && db > 0 && x.bytes.Load()+db > max {
			return false
		}
	}
	x.count.Add(dc)
	x.bytes.Add(db)
	return true
}

// delta returns the counter changes from old to new.
func delta(old, new usage) (dc, db int64) {
	if old.exists {
		dc--
		db -= old.size
	}
	if new.exists {
		dc++
		db += new.size
	}
	return dc, db
}

// logFailed logs a failed commit, at most once a second with the number of
// failures it did not log: a failed store completes every change of its
// group with the error.
func (x *Index) logFailed(topic string, err error) {
	x.logMu.Lock()
	now := time.Now()
	if now.Sub(x.lastLog) < time.Second {
		x.suppressed++
		x.logMu.Unlock()
		return
	}
	n := x.suppressed
	x.lastLog, x.suppressed = now, 0
	x.logMu.Unlock()
	x.o.Logger.Warn("retained message change not committed: its topic is read back from the store",
		"topic", topic, "err", err, "more_failures", n)
}
