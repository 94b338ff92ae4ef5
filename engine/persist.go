package engine

import (
	"cmp"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
)

// Persistence. With Options.Store set, every change to durable state goes to
// the write-ahead log as one wal.Batch per logical change, submitted from the
// loop that made the change; the store's committer completes it once it is
// durable, and only then does the client hear the acknowledgement (gated
// acknowledgements, gate.go). No loop waits on disk (DESIGN invariants 3, 4).
//
// What is durable: sessions with a Session Expiry Interval above 0 ("durable
// sessions"), their subscriptions, their QoS 1/2 deliveries (queued and in
// flight), their inbound QoS 2 packet ids and their pending wills; and every
// retained message. QoS 0 deliveries and clean sessions live in memory only,
// as in every broker.
//
// These orderings keep a crash from losing or duplicating what was
// acknowledged:
//   - A message whose publish writes a batch is held (message.Hold): sessions
//     queue it and send it only once released. A QoS 2 message (and a will)
//     is released when the batch is durable, so no subscriber receives one
//     the broker could still forget and accept again from the publisher
//     after a restart; a QoS 1 message once the batch is submitted, so no
//     subscriber can acknowledge (and so delete) a queue entry before its
//     creation was submitted. A failed batch withdraws its held message.
//   - Every acknowledgement a new connection repeats (a PUBREC for a resent
//     QoS 2 PUBLISH, a PUBCOMP, the resends after CONNACK) waits behind a
//     barrier for the changes submitted before it.
//   - A durable session's QoS 2 delivery is sent only after the store knows
//     its packet id (it is resent with the same id after a restart, which the
//     receiver recognises), and PUBREL only after the store knows the PUBREC
//     came; a PUBCOMP to a publisher only after its packet id is forgotten.
//   - Every batch of one connection is submitted from its loop, and the
//     committer completes batches in submission order, so acknowledgements
//     leave in the order the packets came (MQTT-4.6.0-2..4).

// storeTx collects the batch of one logical change while the loop makes it.
type storeTx struct {
	s      *Server
	b      *wal.Batch
	held   *message.Message    // the message held until the batch is durable; one reference
	wake   []*sessions.Session // sessions that queued the held message
	puts   []uint64            // message bodies already put in this batch
	stored []storedEntry       // queue entries put, for lockStored
	after  []func(error)       // completions of the retained index's changes
	force  bool                // submit even when empty: a barrier
	// holdDurable: held is released when the batch is durable, not when it
	// is submitted.
	holdDurable bool
}

var txPool = sync.Pool{New: func() any { return new(storeTx) }}

// newTx starts a batch for a change of kind by clientID; nil without a store.
func (s *Server) newTx(kind wal.Kind, clientID string) *storeTx {
	if s.store == nil {
		return nil
	}
	tx := txPool.Get().(*storeTx)
	tx.s = s
	tx.b = wal.NewBatch(kind, []byte(clientID))
	return tx
}

func (tx *storeTx) recycle() {
	clear(tx.wake)
	clear(tx.after)
	clear(tx.stored)
	*tx = storeTx{wake: tx.wake[:0], puts: tx.puts[:0], after: tx.after[:0], stored: tx.stored[:0]}
	txPool.Put(tx)
}

// hold holds m until the batch is durable (untilDurable) or only until it
// is submitted; the tx keeps a reference. A QoS 2 message (and a will) waits
// for durability: a subscriber must never get one that a crash could make
// the broker accept again. A QoS 1 message needs only its batch submitted
// before any subscriber can acknowledge it (a deletion must not overtake the
// entry it deletes); a crash before the batch is durable makes the publisher
// send it again, which QoS 1 allows. Released at submission, a QoS 1
// delivery is often acknowledged before its entry is committed, and the
// store then writes neither (wal's elision).
func (tx *storeTx) hold(m *message.Message, untilDurable bool) {
	m.Hold()
	tx.held = m.Ref()
	tx.holdDurable = untilDurable
}

// queuePut adds a durable session's new delivery to the batch: the message
// body once per batch, and the queue entry referring to it. The session must
// be locked; d was accepted by Offer (sent at once when inFlight).
func (tx *storeTx) queuePut(sess *sessions.Session, d *sessions.Delivery, inFlight bool) {
	m := d.Msg
	putBody := true
	for _, id := range tx.puts {
		if id == m.StoreID {
			putBody = false
			break
		}
	}
	if putBody {
		wm := walMessage(m)
		tx.b.MessagePut(m.StoreID, &wm)
		tx.puts = append(tx.puts, m.StoreID)
	}
	e := queueEntry(d, wal.Queued)
	if inFlight {
		e.State = wal.InFlight
	}
	tx.b.QueuePut([]byte(sess.ID), d.StoreSeq, &e)
	tx.stored = append(tx.stored, storedEntry{sess, d.StoreSeq, m.StoreID})
}

// storedEntry is a queue entry a tx puts, checked again at submission.
type storedEntry struct {
	sess     *sessions.Session
	seq, msg uint64
}

// lockStored locks the sessions tx puts queue entries for (in one order, so
// that two txs cannot deadlock; nothing else holds two session locks) and
// deletes again, in the same batch, the entries of sessions that ended since:
// their SessionDelete may already be submitted, and an entry put after it
// would outlive the session under its client id. Holding the locks until
// Submit returns keeps an ending from slipping in between.
func (tx *storeTx) lockStored() []*sessions.Session {
	if len(tx.stored) == 0 {
		return nil
	}
	locked := make([]*sessions.Session, 0, len(tx.stored))
	for _, e := range tx.stored {
		locked = append(locked, e.sess)
	}
	slices.SortFunc(locked, func(a, b *sessions.Session) int { return cmp.Compare(a.Seq, b.Seq) })
	locked = slices.Compact(locked)
	for _, sess := range locked {
		sess.Lock()
	}
	for _, e := range tx.stored {
		if e.sess.Ended() {
			tx.b.QueueDelete([]byte(e.sess.ID), e.seq, e.msg)
		}
	}
	return locked
}

// submit hands the batch to the store. done runs once it is durable (or
// failed), on the committer goroutine; it is called with the submit error
// right away when the store refuses the batch. An empty batch completes at
// once. The tx is recycled after done.
func (tx *storeTx) submit(done func(error)) {
	finish := func(err error) {
		// The acknowledgement first: a SUBACK is then ready before anything
		// the release below lets the loop send.
		for _, commit := range tx.after {
			commit(err)
		}
		if done != nil {
			done(err)
		}
		if tx.held != nil {
			if err != nil {
				// Not stored, and the publisher hears so: nobody may get it,
				// or a retry would arrive twice.
				tx.s.withdraw(tx.held, tx.wake)
			}
			tx.held.Unhold()
			tx.s.wakeSessions(tx.wake)
			tx.held.Release()
		}
		tx.recycle()
	}
	s := tx.s
	// A message held only until its batch is submitted is released here,
	// on the loop; finish (which may run on the committer before Submit
	// returns, and recycles tx) must not see it.
	var held *message.Message
	var wake []*sessions.Session
	if tx.held != nil && !tx.holdDurable {
		held, wake = tx.held, tx.wake
		tx.held, tx.wake = nil, nil
	}
	var err error
	if tx.b.Len() == 0 && !tx.force {
		tx.b.Discard()
		finish(nil)
	} else {
		locked := tx.lockStored()
		err = s.store.Submit(tx.b, finish)
		for _, sess := range locked {
			sess.Unlock()
		}
		if err != nil { // finish takes session locks: called once they are free
			s.stats.storeRefused.Add(1)
			s.log.Warn("store refused a change", "err", err.Error())
			finish(err)
		}
	}
	if held != nil {
		if err != nil {
			s.withdraw(held, wake)
		}
		held.Unhold()
		s.wakeSessions(wake)
		held.Release()
	}
}

// barrier submits the batch even when it is empty: done runs once every
// change submitted before it is durable (completions come in order).
func (tx *storeTx) barrier(done func(error)) {
	tx.force = true
	tx.submit(done)
}

// abort drops a batch that will not be submitted (nothing was held).
func (tx *storeTx) abort() {
	tx.b.Discard()
	tx.recycle()
}

// withdraw takes the held message m out of the queues of sessions.
func (s *Server) withdraw(m *message.Message, list []*sessions.Session) {
	for _, sess := range list {
		sess.Lock()
		sess.Withdraw(m)
		sess.Unlock()
	}
}

// wakeSessions asks the connections of sessions that queued a message that
// was held to send it now.
func (s *Server) wakeSessions(list []*sessions.Session) {
	var last *conn
	for _, sess := range list {
		sess.Lock()
		c, _ := sess.Owner().(*conn)
		sess.Unlock()
		if c != nil && c != last {
			c.wakeDrain()
			last = c
		}
	}
}

// storeReason is the reason code refusing work the store cannot take.
func storeReason(err error) codec.ReasonCode {
	if errors.Is(err, wal.ErrDiskFull) || errors.Is(err, wal.ErrQueueFull) {
		return codec.QuotaExceeded
	}
	return codec.UnspecifiedError
}

func walMessage(m *message.Message) wal.Message {
	return wal.Message{Topic: m.Topic, Payload: m.Payload, Props: m.Props, QoS: m.QoS, Retain: m.Retain,
		Created: m.Created, ExpireAt: m.ExpireAt, Origin: m.Origin}
}

func queueEntry(d *sessions.Delivery, state wal.QueueState) wal.QueueEntry {
	e := wal.QueueEntry{MsgID: d.StoreMsg, QoS: d.QoS, Retain: d.Retain, State: state, SubIDs: d.SubIDs}
	if state != wal.Queued {
		e.PacketID = d.PacketID
	}
	return e
}

// sessionRecord is the durable record of a session. Locked.
func sessionRecord(sess *sessions.Session, connectedAt, disconnectedAt int64) wal.Session {
	return wal.Session{Expiry: sess.Expiry, Version: sess.Version, ConnectedAt: connectedAt, DisconnectedAt: disconnectedAt}
}

// willRecord is the durable form of a will.
func willRecord(w *sessions.Will) *wal.Will {
	return &wal.Will{Delay: w.Delay, Msg: walMessage(w.Msg)}
}

// storeSession writes a durable session's record, its will (or its absence)
// and, when it just became durable, everything it holds. Locked.
func (tx *storeTx) storeSession(sess *sessions.Session, connectedAt, disconnectedAt int64, willChanged bool) {
	id := []byte(sess.ID)
	rec := sessionRecord(sess, connectedAt, disconnectedAt)
	tx.b.SessionPut(id, &rec)
	if willChanged {
		if sess.Will != nil {
			tx.b.WillPut(id, willRecord(sess.Will))
		} else {
			tx.b.WillDelete(id)
		}
	}
}

// storeAll writes everything a session that just became durable holds:
// subscriptions, QoS 1/2 deliveries (queued and in flight) and inbound QoS 2
// packet ids. Locked.
func (tx *storeTx) storeAll(sess *sessions.Session) {
	id := []byte(sess.ID)
	for f, o := range sess.Subs() {
		tx.b.SubPut(id, []byte(f), subRecord(o))
	}
	stash := func(d *sessions.Delivery, state wal.QueueState) {
		if d.Msg == nil || d.QoS == 0 || d.Msg.StoreID == 0 {
			return // QoS 0, or a released QoS 2 delivery whose body is gone: memory only
		}
		tx.s.nextStoreSeq(d)
		e := queueEntry(d, state)
		tx.queuePutEntry(id, d, &e)
	}
	for _, in := range sess.InflightInOrder() {
		stash(&in.Delivery, wal.InFlight)
	}
	sess.EachQueued(func(d *sessions.Delivery) { stash(d, wal.Queued) })
	for _, pid := range sess.InboundQoS2IDs() {
		tx.b.InboundQoS2Put(id, pid, unixNano())
	}
}

func (tx *storeTx) queuePutEntry(clientID []byte, d *sessions.Delivery, e *wal.QueueEntry) {
	wm := walMessage(d.Msg)
	tx.b.MessagePut(d.Msg.StoreID, &wm)
	tx.b.QueuePut(clientID, d.StoreSeq, e)
}

// storeAckDelete deletes the queue entry of a completed durable delivery.
func (tx *storeTx) queueDelete(sess *sessions.Session, seq, msgID uint64) {
	tx.b.QueueDelete([]byte(sess.ID), seq, msgID)
}

// deleteExpired deletes the stored entries of deliveries that expired in a
// durable session's queue. Locked.
func (s *Server) deleteExpired(sess *sessions.Session) {
	refs := sess.TakeExpiredStored()
	if len(refs) == 0 || !sess.Durable() {
		return
	}
	tx := s.newTx(wal.KindDrop, sess.ID)
	for _, r := range refs {
		tx.queueDelete(sess, r.Seq, r.Msg)
	}
	tx.submit(nil)
}

// storeErr reports, for a change that adds data, why the store would refuse
// it now; nil without a store.
func (s *Server) storeErr() error {
	if s.store == nil {
		return nil
	}
	return s.store.Err()
}

// nextStoreSeq gives a durable session's QoS 1/2 delivery its place in the
// store. Locked.
func (s *Server) nextStoreSeq(d *sessions.Delivery) {
	d.StoreSeq = s.store.NewQueueSeq()
	d.StoreMsg = d.Msg.StoreID
}

// messageID gives a new message its store id when it may be stored.
func (s *Server) messageID(m *message.Message) {
	if s.store != nil && m.StoreID == 0 {
		m.StoreID = s.store.NewMessageID()
	}
}

// unixNano is time.Now in unix nanoseconds, for records.
func unixNano() int64 { return time.Now().UnixNano() }
