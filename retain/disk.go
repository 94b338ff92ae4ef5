package retain

import (
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/wal"
)

// pending is the overlay entry of a topic with changes not yet completed.
type pending struct {
	msg     *message.Message // the latest Set's message, with the index's reference; nil: cleared
	size    int64            // msg.Size() when msg != nil
	seq     uint64           // of the latest Set, which commit funcs compare with theirs
	pending int              // changes not yet completed
	failed  bool             // one of them completed with an error
}

func (p *pending) usage() usage { return usage{p.msg != nil, p.size} }

// entryOverhead approximates what a cache entry costs beyond its bytes: the
// wal.Message, the slack of its buffer, ristretto's map entry and policy
// bookkeeping. Ristretto adds its own itemSize (56 bytes) on top, for about
// 240 in all; measured, the heap grows by about 230 bytes per entry beyond
// its body.
const entryOverhead = 180

// avgEntry is the body size the cache expects on average, to size its
// admission counters (ten per expected entry, as ristretto advises).
const avgEntry = 1 << 10

func newCache(maxCost int64) *ristretto.Cache[string, *wal.Message] {
	c, err := ristretto.NewCache(&ristretto.Config[string, *wal.Message]{
		NumCounters: max(10*maxCost/avgEntry, 1000),
		MaxCost:     maxCost,
		BufferItems: 64,
	})
	if err != nil {
		panic("BUG: retain: ristretto config: " + err.Error())
	}
	return c
}

func entryCost(m *wal.Message) int64 { return int64(m.Size()) + entryOverhead }

func restore(m *wal.Message) *message.Message {
	return message.Restore(m.Topic, m.Payload, m.Props, m.QoS, m.Retain, m.Origin, m.Created, m.ExpireAt)
}

func (x *Index) setDisk(m *message.Message, b *wal.Batch) (func(error), error) {
	if b == nil {
		return nil, errNoBatch
	}
	topic := string(m.Topic)
	sh := x.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock() // GetRetained does not panic, but keep the lock balanced if it did
	if x.closed.Load() {
		return nil, ErrClosed
	}
	old, err := x.oldLocked(sh, topic)
	if err != nil {
		return nil, err
	}
	var nu usage
	if len(m.Payload) > 0 {
		nu = usage{true, int64(m.Size())}
	} else if !old.exists {
		return noCommit, nil // nothing to clear
	}
	dc, db := delta(old, nu)
	if !x.account(dc, db, true) {
		return nil, ErrFull
	}
	if nu.exists {
		b.RetainedPut(&wal.Message{Topic: m.Topic, Payload: m.Payload, Props: m.Props, QoS: m.QoS,
			Retain: m.Retain, Created: m.Created, ExpireAt: m.ExpireAt, Origin: m.Origin})
	} else {
		b.RetainedDelete(m.Topic)
	}
	p := sh.overlay[topic]
	if p == nil {
		p = &pending{}
		sh.overlay[topic] = p
	}
	prev := p.msg
	p.msg, p.size = nil, nu.size
	if nu.exists {
		p.msg = m.Ref()
	}
	p.seq++
	p.pending++
	seq := p.seq
	if prev != nil {
		prev.Release() // readers took their own references under the lock
	}
	var called atomic.Bool
	return func(err error) {
		if called.Swap(true) {
			panic("BUG: retain: commit called twice")
		}
		x.commit(sh, topic, p, seq, err)
	}, nil
}

// oldLocked returns what topic adds to the counters now: from the overlay,
// from the store for an unsure topic (correcting the counters), from the
// cache, or from the store. The caller holds sh.mu.
func (x *Index) oldLocked(sh *shard, topic string) (usage, error) {
	if p := sh.overlay[topic]; p != nil {
		return p.usage(), nil
	}
	if assumed, ok := sh.unsure[topic]; ok {
		actual, err := x.storedUsage(topic)
		if err != nil {
			return usage{}, err
		}
		dc, db := delta(assumed, actual)
		x.account(dc, db, false)
		delete(sh.unsure, topic)
		return actual, nil
	}
	if m, ok := x.cache.Get(topic); ok && string(m.Topic) == topic {
		return usage{true, int64(m.Size())}, nil
	}
	return x.storedUsage(topic)
}

func (x *Index) storedUsage(topic string) (usage, error) {
	m, ok, err := x.st.GetRetained([]byte(topic))
	if err != nil || !ok {
		return usage{}, err
	}
	return usage{true, int64(m.Size())}, nil
}

// commit completes the change seq of topic's overlay entry p. When it is the
// last outstanding change of the topic, the overlay entry goes: the store
// now holds the change of the last batch it applied, which is the latest
// Set's unless the batches were submitted out of order or one failed; then
// the topic is unsure until its next Set.
func (x *Index) commit(sh *shard, topic string, p *pending, seq uint64, err error) {
	if err != nil {
		x.logFailed(topic, err)
	}
	sh.mu.Lock()
	p.pending--
	if err != nil {
		p.failed = true
	}
	if p.pending > 0 {
		sh.mu.Unlock()
		return
	}
	m := p.msg
	p.msg = nil
	if sh.overlay[topic] == p { // not emptied by Close
		delete(sh.overlay, topic)
		if p.failed || seq != p.seq {
			sh.unsure[topic] = usage{m != nil, p.size}
		}
		// The cache may hold the body from before the change, and a fill
		// that read the store before the commit may be on its way.
		sh.gen++
		x.cache.Del(topic)
	}
	sh.mu.Unlock()
	if m != nil {
		m.Release()
	}
}

func (x *Index) getDisk(topic string) (*message.Message, bool, error) {
	sh := x.shard(topic)
	sh.mu.RLock()
	if x.closed.Load() {
		sh.mu.RUnlock()
		return nil, false, ErrClosed
	}
	if p := sh.overlay[topic]; p != nil {
		var m *message.Message
		if p.msg != nil {
			m = p.msg.Ref()
		}
		sh.mu.RUnlock()
		return m, m != nil, nil
	}
	if c, ok := x.cache.Get(topic); ok && string(c.Topic) == topic {
		sh.mu.RUnlock()
		return restore(c), true, nil
	}
	gen := sh.gen
	sh.mu.RUnlock()

	// Read without the lock: a Set of another topic of the shard need not
	// wait for this read.
	c, ok, err := x.st.GetRetained([]byte(topic))
	if err != nil || !ok {
		return nil, false, err
	}
	if x.testAfterRead != nil {
		x.testAfterRead()
	}
	sh.mu.RLock()
	// Writers of gen and of the cache's entry for topic hold the writer
	// lock: under the reader lock, an unchanged gen means that what was read
	// is still the topic's body, and no invalidation can come between the
	// check and the fill. Ristretto admits a new entry later, on its own
	// goroutine, while its Del removes at once: a fill still queued when a
	// commit's Del runs would land after it and serve the old body. Waiting
	// for the admission under the reader lock keeps every fill ahead of the
	// next Del of its shard. Only reads that went to the store wait.
	if sh.gen == gen && !x.closed.Load() && x.cache.Set(topic, &c, entryCost(&c)) {
		x.cache.Wait()
	}
	sh.mu.RUnlock()
	return restore(&c), true, nil
}

func (x *Index) matchDisk(filter string, fn func(*message.Message) bool) error {
	if x.closed.Load() {
		return ErrClosed
	}
	s := planScan(filter)
	if s.exact {
		_, err := x.matchTopic(filter, fn)
		return err
	}

	// The overlay entries matching filter, nil for a clear. A topic in it
	// is taken from it, not from the store: its change may not be there
	// yet. An entry that completes during the scan is in the store too, with
	// the same body, and is still taken once, from here.
	over := make(map[string]*message.Message)
	defer func() {
		for _, m := range over {
			if m != nil {
				m.Release()
			}
		}
	}()
	for i := range x.shards {
		sh := &x.shards[i]
		sh.mu.RLock()
		for topic, p := range sh.overlay {
			if codec.MatchTopic(filter, topic) {
				var m *message.Message
				if p.msg != nil {
					m = p.msg.Ref()
				}
				over[topic] = m
			}
		}
		sh.mu.RUnlock()
	}

	if s.parent != "" {
		if _, ok := over[s.parent]; !ok {
			more, err := x.matchTopic(s.parent, fn)
			if err != nil || !more {
				return err
			}
		}
	}

	more := true
	var panicked any
	err := x.st.RangeRetained([]byte(s.prefix), func(topic []byte, wm *wal.Message) bool {
		if !codec.MatchTopic(filter, topic) {
			return true
		}
		if _, ok := over[string(topic)]; ok {
			return true
		}
		more, panicked = callFn(fn, restore(wm))
		return more && panicked == nil
	})
	if panicked != nil {
		panic(panicked) // now that the store's iterator is closed
	}
	if err != nil || !more {
		return err
	}
	for _, m := range over {
		if m != nil && !fn(m) {
			break
		}
	}
	return nil
}

// callFn calls fn(m), releases m, and returns a panic of fn instead of
// panicking: RangeRetained does not close its iterator when its fn panics,
// and the store could not close after that.
func callFn(fn func(*message.Message) bool, m *message.Message) (more bool, panicked any) {
	defer func() {
		m.Release()
		if p := recover(); p != nil {
			more, panicked = false, p
		}
	}()
	return fn(m), nil
}

// matchTopic is Match of one topic: fn gets it if retained.
func (x *Index) matchTopic(topic string, fn func(*message.Message) bool) (more bool, err error) {
	m, ok, err := x.getDisk(topic)
	if err != nil || !ok {
		return err == nil, err
	}
	defer m.Release()
	return fn(m), nil
}

// closeDisk empties the overlays and the cache and returns the messages to
// release; the caller holds every shard lock.
func (x *Index) closeDisk() []*message.Message {
	var held []*message.Message
	for i := range x.shards {
		sh := &x.shards[i]
		for _, p := range sh.overlay {
			if p.msg != nil {
				held = append(held, p.msg)
				p.msg = nil
			}
		}
		clear(sh.overlay)
		clear(sh.unsure)
	}
	// Under every shard lock, no cache call is running: every one is made
	// under a shard lock, and ristretto's Close must not race with them.
	x.cache.Close()
	x.cache = nil
	return held
}
