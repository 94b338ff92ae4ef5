package wal

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// State is what Load reads back: every persistent session with its
// subscriptions, queue, inbound QoS 2 packet ids and will. It is a copy the
// caller owns; message bodies are shared between the queue entries that
// refer to the same message, so the engine can make one in-memory message
// per body.
type State struct {
	Sessions []*SessionState // in key order
	// LastCommit is when the store last committed before this start, in
	// unix nanoseconds (0 for a new store): the broker was up until then, so
	// sessions that were connected went offline about then, and session
	// expiry counts from it.
	LastCommit int64
	// Messages is the number of distinct message bodies loaded.
	Messages int
	// Retained and RetainedBytes count the retained messages (read them with
	// RangeRetained).
	Retained      int
	RetainedBytes int64
	// Orphans is the number of message bodies deleted because no queue
	// entry referred to them.
	Orphans int
	// Dangling counts records skipped because what they belong to is
	// missing: queue entries without their message body, subscriptions,
	// queue entries, packet ids and wills without a session record. `tern wal
	// check` lists them.
	Dangling int
}

// SessionState is one persistent session as stored.
type SessionState struct {
	ClientID    string
	Session     Session
	Subs        []SubState      // in filter byte order
	Queue       []QueuedMessage // in sequence order: the order to deliver in
	InboundQoS2 []uint16        // packet ids awaiting PUBREL, ascending
	Will        *Will
}

// SubState is one subscription of a session.
type SubState struct {
	Filter string
	Sub    Subscription
}

// QueuedMessage is one queue entry with its message body.
type QueuedMessage struct {
	Seq   uint64
	Entry QueueEntry
	Msg   *Message // shared by every entry of the same Entry.MsgID
}

// Load reads the whole state back and enables the deletion of message
// bodies with their last queue entry. Call it once after Open and before the
// first Submit (the committer waits while it runs). It deletes message
// bodies that no queue entry refers to, and logs progress every second. An
// undecodable record is an error naming the store and what to do.
func (s *Store) Load() (*State, error) {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	l := loader{s: s, db: s.db, start: time.Now(), bySession: make(map[string]*SessionState),
		refs: make(map[uint64]int32), st: &State{LastCommit: s.prevCommit}}
	l.lastLog = l.start
	if err := l.sessions(); err != nil {
		return nil, damaged(s.dir, err)
	}
	bodies, orphans, err := l.messages()
	if err != nil {
		return nil, damaged(s.dir, err)
	}
	if err := l.retained(); err != nil {
		return nil, damaged(s.dir, err)
	}
	l.link(bodies)
	if len(orphans) > 0 {
		if err := deleteMessages(s.db, orphans); err != nil {
			return nil, fmt.Errorf("wal: deleting %d unreferenced message bodies in %q: %w", len(orphans), s.dir, err)
		}
	}
	l.st.Orphans = len(orphans)
	s.refs = l.refs
	s.raise(&s.nextSeq, l.maxSeq+1)
	if l.maxMsg > 0 {
		s.raise(&s.nextMsgID, l.maxMsg+1)
	}
	st := l.st
	s.log.Info("state loaded", "dir", s.dir, "sessions", len(st.Sessions), "queued", l.queued,
		"messages", st.Messages, "retained", st.Retained, "orphans_deleted", st.Orphans,
		"dangling", st.Dangling, "elapsed", time.Since(l.start).Round(time.Millisecond))
	return st, nil
}

type loader struct {
	s         *Store
	db        *pebble.DB
	st        *State
	bySession map[string]*SessionState
	refs      map[uint64]int32
	maxSeq    uint64
	maxMsg    uint64
	keys      int
	queued    int
	start     time.Time
	lastLog   time.Time
}

// progress logs every second while loading; it looks at the clock every
// 4096 keys.
func (l *loader) progress(phase string) {
	l.keys++
	if l.keys&4095 != 0 {
		return
	}
	if now := time.Now(); now.Sub(l.lastLog) >= time.Second {
		l.lastLog = now
		l.s.log.Info("loading state", "phase", phase, "keys", l.keys, "sessions", len(l.st.Sessions),
			"queued", l.queued, "retained", l.st.Retained, "elapsed", now.Sub(l.start).Round(time.Millisecond))
	}
}

func (l *loader) warn(msg string, args ...any) {
	if l.st.Dangling <= 10 {
		l.s.log.Warn(msg, args...)
	}
}

// sessions reads the session families: they come in key order, session
// records first, so the other records find their session in the map.
func (l *loader) sessions() error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famSession}, UpperBound: []byte{famWill + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return errors.Join(err, it.Close())
		}
		if err := l.sessionRecord(k, v); err != nil {
			return errors.Join(fmt.Errorf("key %x: %w", k, err), it.Close())
		}
		l.progress("sessions")
	}
	return errors.Join(it.Error(), it.Close())
}

func (l *loader) sessionRecord(k, v []byte) error {
	ck, err := parseClientKey(k)
	if err != nil {
		return err
	}
	if ck.fam == famSession {
		rec, err := decodeSession(v)
		if err != nil {
			return err
		}
		ss := &SessionState{ClientID: string(ck.cid), Session: rec}
		l.bySession[ss.ClientID] = ss
		l.st.Sessions = append(l.st.Sessions, ss)
		return nil
	}
	ss := l.bySession[string(ck.cid)]
	switch ck.fam {
	case famSub:
		sub, err := decodeSubscription(v)
		if err != nil {
			return err
		}
		if ss != nil {
			ss.Subs = append(ss.Subs, SubState{Filter: string(ck.rest), Sub: sub})
		}
	case famQueue:
		e, err := decodeQueueEntry(v)
		if err != nil {
			return err
		}
		// Counted even without a session, so that its body is kept for
		// check to report rather than deleted as an orphan.
		l.refs[e.MsgID]++
		seq := ck.seq()
		l.maxSeq = max(l.maxSeq, seq)
		if ss != nil {
			ss.Queue = append(ss.Queue, QueuedMessage{Seq: seq, Entry: e})
			l.queued++
		}
	case famInbound:
		if _, err := decodeInbound(v); err != nil {
			return err
		}
		if ss != nil {
			ss.InboundQoS2 = append(ss.InboundQoS2, ck.packetID())
		}
	case famWill:
		w, err := decodeWill(v)
		if err != nil {
			return err
		}
		if ss != nil {
			w.Msg = copyMessage(&w.Msg)
			ss.Will = &w
		}
	}
	if ss == nil {
		l.st.Dangling++
		l.warn("record without a session record skipped", "family", ck.family(), "client_id", string(ck.cid))
	}
	return nil
}

// messages reads the bodies that queue entries refer to and collects the
// ids of those nothing refers to.
func (l *loader) messages() (bodies map[uint64]*Message, orphans []uint64, err error) {
	lo, hi := familyBounds(famMessage)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, err
	}
	bodies = make(map[uint64]*Message, len(l.refs))
	for it.First(); it.Valid(); it.Next() {
		id, err := parseIDKey(it.Key(), famMessage)
		if err != nil {
			return nil, nil, errors.Join(err, it.Close())
		}
		l.maxMsg = max(l.maxMsg, id)
		l.progress("messages")
		if l.refs[id] == 0 {
			orphans = append(orphans, id)
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, errors.Join(err, it.Close())
		}
		m, err := decodeMessage(v, true)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("message %d: %w", id, err), it.Close())
		}
		m = copyMessage(&m)
		bodies[id] = &m
	}
	l.st.Messages = len(bodies)
	return bodies, orphans, errors.Join(it.Error(), it.Close())
}

// retained counts the retained messages, decoding each to find damage now
// rather than when a subscriber asks.
func (l *loader) retained() error {
	lo, hi := familyBounds(famRetained)
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return errors.Join(err, it.Close())
		}
		m, err := decodeMessage(v, false)
		if err != nil {
			return errors.Join(fmt.Errorf("retained %q: %w", it.Key()[1:], err), it.Close())
		}
		l.st.Retained++
		l.st.RetainedBytes += int64(len(it.Key()) - 1 + m.Size())
		l.progress("retained")
	}
	return errors.Join(it.Error(), it.Close())
}

// link points queue entries at their bodies, dropping those without one.
func (l *loader) link(bodies map[uint64]*Message) {
	for _, ss := range l.st.Sessions {
		q := ss.Queue[:0]
		for _, qm := range ss.Queue {
			if qm.Msg = bodies[qm.Entry.MsgID]; qm.Msg == nil {
				l.st.Dangling++
				l.warn("queue entry without its message body skipped", "client_id", ss.ClientID,
					"seq", qm.Seq, "message_id", qm.Entry.MsgID)
				continue
			}
			q = append(q, qm)
		}
		ss.Queue = q
	}
}

// copyMessage returns m with its byte slices copied into one allocation.
func copyMessage(m *Message) Message {
	buf := make([]byte, 0, m.Size())
	buf = append(buf, m.Topic...)
	buf = append(buf, m.Props...)
	buf = append(buf, m.Payload...)
	c := *m
	t, p := len(m.Topic), len(m.Topic)+len(m.Props)
	c.Topic, c.Props, c.Payload = buf[:t:t], buf[t:p:p], buf[p:]
	return c
}

func deleteMessages(db *pebble.DB, ids []uint64) error {
	b := db.NewBatch()
	defer b.Close()
	var k []byte
	for _, id := range ids {
		k = messageKey(k[:0], id)
		_ = b.Delete(k, nil)
	}
	return b.Commit(pebble.Sync)
}

// countRefs counts the queue entries that refer to each message body.
func countRefs(db *pebble.DB) (map[uint64]int32, error) {
	lo, hi := familyBounds(famQueue)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	refs := make(map[uint64]int32)
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, errors.Join(err, it.Close())
		}
		e, err := decodeQueueEntry(v)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("key %x: %w", it.Key(), err), it.Close())
		}
		refs[e.MsgID]++
	}
	return refs, errors.Join(it.Error(), it.Close())
}

// RangeRetained calls fn for each retained message whose topic starts with
// prefix (nil: all), in topic byte order, until fn returns false. topic and
// m's slices are valid only during the call: copy what you keep. It reads
// from disk and may be called at any time; for a whole-store scan it logs
// progress every second.
func (s *Store) RangeRetained(prefix []byte, fn func(topic []byte, m *Message) bool) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	lo := retainedKey(nil, prefix)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return damaged(s.dir, err)
	}
	start, last, n := time.Now(), time.Now(), 0
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return damaged(s.dir, errors.Join(err, it.Close()))
		}
		m, err := decodeMessage(v, false)
		if err != nil {
			return damaged(s.dir, errors.Join(fmt.Errorf("retained %q: %w", it.Key()[1:], err), it.Close()))
		}
		m.Topic = it.Key()[1:]
		if !fn(m.Topic, &m) {
			break
		}
		if n++; n&4095 == 0 && time.Since(last) >= time.Second {
			last = time.Now()
			s.log.Info("reading retained messages", "read", n, "elapsed", last.Sub(start).Round(time.Millisecond))
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return damaged(s.dir, err)
	}
	return nil
}

// GetRetained returns a copy of the retained message of topic.
func (s *Store) GetRetained(topic []byte) (Message, bool, error) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return Message{}, false, ErrClosed
	}
	v, closer, err := s.db.Get(retainedKey(nil, topic))
	if errors.Is(err, pebble.ErrNotFound) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, damaged(s.dir, err)
	}
	defer closer.Close()
	m, err := decodeMessage(v, false)
	if err != nil {
		return Message{}, false, damaged(s.dir, fmt.Errorf("retained %q: %w", topic, err))
	}
	m.Topic = topic
	return copyMessage(&m), true, nil
}
