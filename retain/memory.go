package retain

import (
	"github.com/tern-mqtt/tern/message"
)

// setMemory is Set without a store. The shard lock of the topic makes
// reading the old message, checking the limits and replacing it one step
// for the accounting; mem's own locks keep Match readers safe.
func (x *Index) setMemory(m *message.Message) error {
	topic := string(m.Topic)
	sh := x.shard(topic)
	sh.mu.Lock()
	if x.closed.Load() {
		sh.mu.Unlock()
		return ErrClosed
	}
	old, had := x.mem.Get(topic)
	var ou usage
	if had {
		ou = usage{true, int64(old.Size())}
	}
	if len(m.Payload) == 0 {
		if had {
			x.mem.Delete(topic)
			dc, db := delta(ou, usage{})
			x.account(dc, db, false)
			x.countDollar(topic, -1)
		}
		sh.mu.Unlock()
		if had {
			old.Release()
		}
		return nil
	}
	dc, db := delta(ou, usage{true, int64(m.Size())})
	if !x.account(dc, db, true) {
		sh.mu.Unlock()
		return ErrFull
	}
	x.mem.Set(topic, m.Ref())
	if !had {
		x.countDollar(topic, 1)
	}
	sh.mu.Unlock()
	if had {
		old.Release()
	}
	return nil
}

// countDollar keeps count of the topics under each '$' first level.
func (x *Index) countDollar(topic string, n int) {
	if len(topic) == 0 || topic[0] != '$' {
		return
	}
	first := topic[:levelEnd(topic, 0)]
	x.dollarMu.Lock()
	if x.dollar[first] += n; x.dollar[first] == 0 {
		delete(x.dollar, first)
	}
	x.dollarMu.Unlock()
}

func (x *Index) getMemory(topic string) (*message.Message, bool, error) {
	sh := x.shard(topic)
	// A reader lock suffices: the message can only be released by a Set of
	// the same topic, which holds the writer lock.
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if x.closed.Load() {
		return nil, false, ErrClosed
	}
	m, ok := x.mem.Get(topic)
	if !ok {
		return nil, false, nil
	}
	return m.Ref(), true, nil
}

// matchMemory collects references under mem's locks and calls fn after.
func (x *Index) matchMemory(filter string, fn func(*message.Message) bool) error {
	if x.closed.Load() {
		return ErrClosed
	}
	var found []*message.Message
	x.mem.Match(filter, func(_ string, m *message.Message) bool {
		found = append(found, m.Ref())
		return true
	})
	defer func() { // also when fn panics
		for _, m := range found {
			m.Release()
		}
	}()
	for _, m := range found {
		if !fn(m) {
			break
		}
	}
	return nil
}

// closeMemory empties mem and returns the messages to release; the caller
// holds every shard lock.
func (x *Index) closeMemory() []*message.Message {
	var topics []string
	collect := func(topic string, _ *message.Message) bool {
		topics = append(topics, topic)
		return true
	}
	x.mem.Match("#", collect)
	x.dollarMu.Lock()
	for first := range x.dollar {
		x.mem.Match(first+"/#", collect)
	}
	clear(x.dollar)
	x.dollarMu.Unlock()
	held := make([]*message.Message, 0, len(topics))
	for _, t := range topics {
		if m, ok := x.mem.Delete(t); ok {
			held = append(held, m)
		}
	}
	x.count.Store(0)
	x.bytes.Store(0)
	return held
}
