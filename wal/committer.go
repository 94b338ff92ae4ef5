package wal

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Bounds of one group commit. A group larger than this waits for the next
// commit: one sync per few thousand changes already makes the sync cheap per
// change, and Pebble turns batches above half a memtable into a flushable
// batch of their own, which we avoid.
const (
	maxGroupChanges = 4096
	maxGroupBytes   = 4 << 20
)

// spaceCheckEvery bounds how often the committer asks the file system for
// free space.
const spaceCheckEvery = 100 * time.Millisecond

// Submit hands b, one logical change, to the committer and returns at once;
// it never waits on disk or on the committer. done (may be nil) is called
// once the change is durable as Options.Durability says, with nil, or with
// the error that kept it from being committed; calls come in submission
// order, on the committer goroutine, so done must be quick and must not
// block (queue the acknowledgement to the connection's loop and wake it).
//
// When Submit returns an error, done is never called and the change was not
// made: ErrQueueFull when MaxPending changes wait, ErrDiskFull for a change
// that adds data while disk space is low, an error wrapping ErrUnavailable
// while the store is failed, ErrClosed after Close. The caller refuses the
// work it stood for (QoS 1/2 PUBLISH: 0x97 for ErrDiskFull and ErrQueueFull,
// 0x80 otherwise).
//
// Submit takes b over in every case: b must not be used after the call.
func (s *Store) Submit(b *Batch, done func(error)) error {
	s.subMu.RLock()
	err := s.admit(b)
	if err == nil {
		b.done = done
		select {
		case s.in <- b:
		default:
			err = ErrQueueFull
		}
	}
	s.subMu.RUnlock()
	if err != nil {
		s.st.refused.Add(1)
		b.release()
	}
	return err
}

// admit says whether the store takes b now. Called with subMu held.
func (s *Store) admit(b *Batch) error {
	if s.closed {
		return ErrClosed
	}
	switch s.state.Load() {
	case stateOK:
		return nil
	case stateLowSpace:
		if !b.grows {
			return nil
		}
	}
	return s.failure()
}

// failure returns why the store is not taking work.
func (s *Store) failure() error {
	if p := s.cause.Load(); p != nil {
		return *p
	}
	return ErrUnavailable
}

// Err returns nil while the store takes all work, otherwise why it does not
// (wrapping ErrDiskFull or ErrUnavailable).
func (s *Store) Err() error {
	if s.state.Load() == stateOK {
		return nil
	}
	return s.failure()
}

// committer is the state of the committer goroutine.
type committer struct {
	s             *Store
	group         []*Batch
	bytes         int      // bytes of the batches in group, to size the Pebble batch
	unsynced      []*Batch // DurabilityBatch: gathered, committed and completed at the next sync
	unsyncedBytes int
	puts          map[string]*op // elide: queue entries put in the group, by key
	live          map[uint64]int // elide: entries put in the group per body, not elided
	lastSync      time.Time
	timer         *time.Timer // DurabilityBatch: the next sync is due
	armed         bool
	retry         *time.Ticker // while the store is not stateOK
	lastFree      time.Time    // last free-space check
	key           []byte       // scratch for keys built by the committer
	val           []byte
	failLog       time.Time // last recovery failure logged
}

func (s *Store) run() {
	defer close(s.stopped)
	c := &committer{s: s, timer: time.NewTimer(time.Hour)}
	c.timer.Stop()
	defer c.timer.Stop()
	for {
		var timerC, retryC <-chan time.Time
		if c.armed {
			timerC = c.timer.C
		}
		if c.retry != nil {
			retryC = c.retry.C
		}
		select {
		case b := <-s.in:
			c.gather(b)
			c.process()
		case <-timerC:
			c.armed = false
			c.sync()
		case <-retryC:
			c.recover()
		case <-s.quit:
			for {
				select {
				case b := <-s.in:
					c.gather(b)
					c.process()
					continue
				default:
				}
				break
			}
			c.sync()
			if c.retry != nil {
				c.retry.Stop()
			}
			return
		}
	}
}

// gather starts a group with b and adds what else is queued, within the
// group bounds, without waiting.
func (c *committer) gather(b *Batch) {
	c.group = append(c.group[:0], b)
	n := len(b.buf)
	for len(c.group) < maxGroupChanges && n < maxGroupBytes {
		select {
		case b := <-c.s.in:
			c.group = append(c.group, b)
			n += len(b.buf)
		default:
			c.bytes = n
			return
		}
	}
	c.bytes = n
}

// process commits the gathered group and completes it, or hands it to the
// next sync under DurabilityBatch.
func (c *committer) process() {
	s := c.s
	group := c.group
	defer clear(c.group) // completed batches are back in their pool: drop the pointers
	c.checkSpace(time.Now())
	switch s.state.Load() {
	case stateBroken, stateDead:
		err := s.failure()
		for _, b := range group {
			b.err = err
		}
		c.complete(group)
		return
	case stateLowSpace:
		err := s.failure()
		for _, b := range group {
			if b.grows {
				b.err = err
			}
		}
	}
	switch s.opts.Durability {
	case DurabilityBatch:
		// Applied at the next sync, as one commit: the completions wait for
		// the sync anyway, and a queue entry acknowledged meanwhile is then
		// never written at all (elide).
		c.unsynced = append(c.unsynced, group...)
		c.unsyncedBytes += c.bytes
		if wait := s.opts.SyncInterval - time.Since(c.lastSync); wait <= 0 || c.unsyncedBytes >= maxGroupBytes {
			c.sync()
		} else if !c.armed {
			c.timer.Reset(wait)
			c.armed = true
		}
		return
	case DurabilitySync:
		if err := c.commit(group, c.bytes, pebble.Sync); err != nil {
			c.fail(err, group)
			return
		}
	default:
		if err := c.commit(group, c.bytes, pebble.NoSync); err != nil {
			c.fail(err, group)
			return
		}
	}
	c.complete(group)
}

// elide marks the queue entries of group that are put and deleted within it
// (a delivery acknowledged before its entry was committed: the usual case
// for an online subscriber), and the message bodies that only such entries
// referred to, so that the commit writes none of them: the reference counts
// end where they would have ended. Range deletions end the pairing, as they
// reach entries the group cannot see.
func (c *committer) elide(group []*Batch) {
	refs := c.s.refs
	if refs == nil {
		return // counts unknown before Load: apply everything
	}
	if c.puts == nil {
		c.puts = make(map[string]*op)
		c.live = make(map[uint64]int)
	}
	var bodies []*op
	for _, b := range group {
		if b.err != nil {
			continue
		}
		for i := range b.ops {
			o := &b.ops[i]
			switch o.kind {
			case opBodyPut:
				bodies = append(bodies, o)
			case opQueuePut:
				c.puts[string(b.bytes(o.key))] = o
				c.live[o.msgID]++
			case opQueueDelete:
				k := b.bytes(o.key)
				if p := c.puts[string(k)]; p != nil && p.msgID == o.msgID {
					p.elided, o.elided = true, true
					delete(c.puts, string(k))
					c.live[o.msgID]--
				}
			case opQueueRange, opDeleteRange:
				clear(c.puts)
			}
		}
	}
	for _, o := range bodies {
		if c.live[o.msgID] == 0 && refs[o.msgID] == 0 {
			o.elided = true
		}
	}
	clear(c.puts)
	clear(c.live)
}

// commit applies the changes of group that were not refused to one Pebble
// batch, with their change-log records and the allocator counters, and
// commits it: synced under DurabilitySync.
func (c *committer) commit(group []*Batch, size int, wo *pebble.WriteOptions) error {
	s := c.s
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	db := s.db
	// Room for the group, its log records and the counters, so that the
	// batch does not grow by copying.
	c.elide(group)
	pb := db.NewBatchWithSize(size + len(group)*48 + 64)
	defer func() { _ = pb.Close() }()
	now := time.Now().UnixNano()
	n := 0
	for _, b := range group {
		if b.err != nil {
			continue
		}
		var err error
		if pb, err = c.apply(db, pb, b); err != nil {
			return err
		}
		if b.kind != KindNone {
			s.logSeq++
			r := b.logRecord()
			r.Time = now
			c.key = logKey(c.key[:0], s.logSeq)
			c.val = appendLogRecord(c.val[:0], &r)
			_ = pb.Set(c.key, c.val, nil)
		}
		n++
	}
	if n == 0 {
		return nil
	}
	c.trimLog(pb)
	cs := counters{NextMsgID: s.nextMsgID.Load(), NextSeq: s.nextSeq.Load(), LogSeq: s.logSeq, Time: now}
	c.val = appendCounters(c.val[:0], &cs)
	_ = pb.Set(metaKey(c.key[:0], metaCounters), c.val, nil)
	start := time.Now()
	if err := c.commitBatch(pb, wo); err != nil {
		return err
	}
	s.metrics.commitSeconds.UpdateDuration(start)
	s.st.commits.Add(1)
	if wo == pebble.Sync {
		s.st.syncs.Add(1)
		c.lastSync = time.Now()
	}
	if h := s.opts.hooks.afterCommit; h != nil {
		h(n)
	}
	s.tail.wake()
	return nil
}

// commitBatch commits pb, turning what Pebble reports through a panic or its
// fatal logger into an error.
func (c *committer) commitBatch(pb *pebble.Batch, wo *pebble.WriteOptions) (err error) {
	// A WAL error seen by watchFS makes Pebble's next commit panic: stop here.
	if err := c.s.fatal.get(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: pebble panicked in commit: %v", errPanicked, r)
		}
	}()
	if err := pb.Commit(wo); err != nil {
		return err
	}
	return c.s.fatal.get()
}

// errPanicked marks a failure after which Pebble's commit pipeline may be
// left locked.
var errPanicked = errors.New("wal: pebble panicked")

// apply adds the operations of b to pb, keeping the message reference
// counts. A queue range deletion needs to know which bodies the entries in
// the range refer to, including entries put earlier in this group, so it
// commits pb first (without sync: the group's sync covers it) and continues
// with a new batch, which it returns.
func (c *committer) apply(db *pebble.DB, pb *pebble.Batch, b *Batch) (*pebble.Batch, error) {
	refs := c.s.refs
	for i := range b.ops {
		o := &b.ops[i]
		key := b.bytes(o.key)
		if o.elided {
			continue
		}
		switch o.kind {
		case opSet, opBodyPut:
			_ = pb.Set(key, b.bytes(o.val), nil)
		case opDelete:
			_ = pb.Delete(key, nil)
		case opDeleteRange:
			_ = pb.DeleteRange(key, b.bytes(o.end), nil)
		case opQueuePut:
			_ = pb.Set(key, b.bytes(o.val), nil)
			if refs != nil {
				refs[o.msgID]++
			}
		case opQueueDelete:
			_ = pb.Delete(key, nil)
			c.unref(pb, o.msgID)
		case opQueueRange:
			end := b.bytes(o.end)
			if refs != nil {
				if !pb.Empty() {
					if err := c.commitBatch(pb, pebble.NoSync); err != nil {
						return pb, err
					}
					_ = pb.Close()
					pb = db.NewBatch()
				}
				if err := c.unrefRange(db, pb, key, end); err != nil {
					return pb, err
				}
			}
			_ = pb.DeleteRange(key, end, nil)
		}
	}
	return pb, nil
}

// unref drops one reference to message id and deletes its body with the
// last one. Ids the counts do not know (no Load yet, or a body put without
// an entry) are left alone: Load cleans those up.
func (c *committer) unref(pb *pebble.Batch, id uint64) {
	refs := c.s.refs
	if refs == nil {
		return
	}
	switch n := refs[id]; {
	case n > 1:
		refs[id] = n - 1
	case n == 1:
		delete(refs, id)
		c.key = messageKey(c.key[:0], id)
		_ = pb.Delete(c.key, nil)
	}
}

// unrefRange drops the references of the queue entries in [lo, hi).
func (c *committer) unrefRange(db *pebble.DB, pb *pebble.Batch, lo, hi []byte) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			break
		}
		e, err := decodeQueueEntry(v)
		if err != nil {
			c.s.log.Warn("deleting an undecodable queue entry", "key", fmt.Sprintf("%x", it.Key()), "err", err)
			continue
		}
		c.unref(pb, e.MsgID)
	}
	return errors.Join(it.Error(), it.Close())
}

// trimLog keeps the last LogRetain change-log records, deleting older ones
// in steps of a sixteenth so that trimming costs one DeleteRange per many
// commits rather than one per commit.
func (c *committer) trimLog(pb *pebble.Batch) {
	s := c.s
	keep := uint64(s.opts.LogRetain)
	step := max(keep/16, 1)
	if s.logSeq < s.logFirst || s.logSeq-s.logFirst+1 < keep+step {
		return
	}
	first := s.logSeq - keep + 1
	_ = pb.DeleteRange(logKey(nil, s.logFirst), logKey(nil, first), nil)
	s.logFirst = first
}

// sync makes the changes committed without sync durable and completes them
// (DurabilityBatch).
func (c *committer) sync() {
	if len(c.unsynced) == 0 {
		return
	}
	if c.armed {
		c.timer.Stop()
		c.armed = false
	}
	s := c.s
	size := c.unsyncedBytes
	c.unsyncedBytes = 0
	err := error(nil)
	if st := s.state.Load(); st == stateBroken || st == stateDead {
		err = s.failure()
	} else {
		err = c.commit(c.unsynced, size, pebble.Sync)
	}
	if err != nil {
		batches := c.unsynced
		c.unsynced = nil
		c.fail(err, batches)
		return
	}
	c.lastSync = time.Now()
	c.complete(c.unsynced)
	clear(c.unsynced)
	c.unsynced = c.unsynced[:0]
}

// complete calls the completions of batches in order and recycles them.
func (c *committer) complete(batches []*Batch) {
	s := c.s
	for _, b := range batches {
		if b.err != nil {
			s.st.failed.Add(1)
		} else {
			s.st.changes.Add(1)
		}
		if b.done != nil {
			b.done(b.err)
		}
		b.release()
	}
}

// fail puts the store into the failed state after a commit or sync error and
// completes batches, and anything still waiting for a sync, with the error.
func (c *committer) fail(err error, batches []*Batch) {
	s := c.s
	cause := fmt.Errorf("%w: %w", ErrUnavailable, err)
	if isNoSpace(err) {
		cause = fmt.Errorf("%w: %w: %w", ErrUnavailable, ErrDiskFull, err)
	}
	s.cause.Store(&cause)
	s.state.Store(stateBroken)
	s.log.Error("commit failed: refusing new work until the store recovers", "dir", s.dir, "err", err)
	for _, b := range batches {
		b.err = cause
	}
	pending := c.unsynced
	c.unsynced = nil
	for _, b := range pending {
		b.err = cause
	}
	c.complete(pending)
	c.complete(batches)
	c.startRetry()
}

func (c *committer) startRetry() {
	if c.retry == nil {
		c.retry = time.NewTicker(c.s.opts.RetryInterval)
	}
}

// checkSpace moves the store between stateOK and stateLowSpace by the free
// space of the data directory, at most every spaceCheckEvery.
func (c *committer) checkSpace(now time.Time) {
	s := c.s
	if s.opts.MinFreeBytes < 0 || now.Sub(c.lastFree) < spaceCheckEvery {
		return
	}
	c.lastFree = now
	st := s.state.Load()
	if st != stateOK && st != stateLowSpace {
		return
	}
	u, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return // not supported by this file system (MemFS): nothing to guard
	}
	min := uint64(s.opts.MinFreeBytes)
	switch {
	case st == stateOK && u.AvailBytes < min:
		cause := fmt.Errorf("%w: %d bytes free in %q, below the minimum of %d", ErrDiskFull, u.AvailBytes, s.dir, min)
		s.cause.Store(&cause)
		s.state.Store(stateLowSpace)
		s.log.Warn("disk space low: refusing new data until space returns", "dir", s.dir,
			"free_bytes", u.AvailBytes, "min_free_bytes", min)
		c.startRetry()
	case st == stateLowSpace && u.AvailBytes >= min+min/8: // a margin, so as not to flap
		s.state.Store(stateOK)
		s.cause.Store(nil)
		s.log.Info("disk space back: accepting new data", "dir", s.dir, "free_bytes", u.AvailBytes)
		c.stopRetry()
	}
}

func (c *committer) stopRetry() {
	if c.retry != nil {
		c.retry.Stop()
		c.retry = nil
	}
}

// recover runs every RetryInterval while the store is not stateOK.
func (c *committer) recover() {
	s := c.s
	switch s.state.Load() {
	case stateOK:
		c.stopRetry()
	case stateLowSpace:
		c.checkSpace(time.Now())
	case stateBroken:
		if err := c.reopen(); err != nil {
			if time.Since(c.failLog) > 30*time.Second {
				c.failLog = time.Now()
				s.log.Warn("store still failed", "dir", s.dir, "err", err)
			}
			return
		}
		s.state.Store(stateOK)
		s.cause.Store(nil)
		s.st.recovery.Add(1)
		c.failLog = time.Time{}
		c.stopRetry()
		s.log.Info("store recovered: accepting work again", "dir", s.dir)
	case stateDead:
		c.stopRetry()
	}
}

// reopen closes the failed Pebble instance, opens the store again (Pebble
// replays its WAL) and proves with a synced write that the disk takes data.
func (c *committer) reopen() error {
	s := c.s
	if s.db != nil {
		closed, err := closeWithin(s.db, closeTimeout)
		if !closed {
			cause := fmt.Errorf("%w: pebble did not close after a failure; restart the broker", ErrUnavailable)
			s.cause.Store(&cause)
			s.state.Store(stateDead)
			s.log.Error("pebble did not close after a failure: restart the broker", "dir", s.dir)
			return cause
		}
		if err != nil {
			s.log.Debug("closing failed pebble", "err", err)
		}
		s.dbMu.Lock()
		s.db = nil
		s.dbMu.Unlock()
	}
	if _, err := s.openDB(false); err != nil {
		return err
	}
	if err := c.probe(); err != nil {
		return err
	}
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	if s.refs != nil {
		refs, err := countRefs(s.db)
		if err != nil {
			return err
		}
		s.refs = refs
	}
	return nil
}

// probe writes the counters with a sync.
func (c *committer) probe() (err error) {
	s := c.s
	if err := s.fatal.get(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: pebble panicked in probe: %v", errPanicked, r)
		}
	}()
	cs := counters{NextMsgID: s.nextMsgID.Load(), NextSeq: s.nextSeq.Load(), LogSeq: s.logSeq, Time: time.Now().UnixNano()}
	if err := s.db.Set(metaKey(nil, metaCounters), appendCounters(nil, &cs), pebble.Sync); err != nil {
		return err
	}
	if err := s.fatal.get(); err != nil {
		// The probe failed: close this instance on the next attempt.
		return err
	}
	return nil
}
