package sessions

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tern-mqtt/tern/message"
)

// SubOptions are the options a client subscribed to a filter with.
type SubOptions struct {
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	SubID             uint32
}

// Delivery is one message bound for one session: the message (one reference
// held by the Delivery), the QoS it is delivered at after downgrade to the
// subscription's maximum, the retain flag as sent, and the subscription
// identifiers of the subscriptions it matched.
type Delivery struct {
	Msg      *message.Message
	QoS      byte
	Retain   bool
	SubIDs   []uint32
	PacketID uint16 // assigned when the delivery enters the in-flight window
	Dup      bool

	// StoreSeq is the sequence number of the delivery's queue entry in the
	// write-ahead log, 0 when it is not stored; StoreMsg the id of the
	// message body it refers to (kept here because an in-flight QoS 2
	// delivery lets its message go at PUBREC).
	StoreSeq uint64
	StoreMsg uint64
}

// Inflight is an outbound QoS 1 or 2 delivery sent and not yet completed.
type Inflight struct {
	Delivery
	Released bool   // QoS 2: PUBREC received, PUBREL sent; Msg is nil, awaiting PUBCOMP
	Pending  bool   // to be resent on this connection once its Receive Maximum allows
	seq      uint64 // send order, for redelivery in order (MQTT-4.6.0-1)
}

// Drop says why a delivery was not accepted; each is counted by the engine.
type Drop int

const (
	Accepted         Drop = iota
	DroppedQueueQoS0      // a QoS 0 message was dropped because the queue is full
	RefusedQueueFull      // a QoS 1/2 message was refused because the queue is full
	DroppedExpired        // the message expired before it could be sent
)

// Session is the state of one client id, kept across connections while the
// session lasts. Every method whose name does not say otherwise must be
// called with the session locked (Lock/Unlock); the engine locks once per
// operation, never across I/O.
type Session struct {
	ID  string
	Seq uint64 // unique per session, the Origin of the messages it publishes

	mu      sync.Mutex
	opts    *Options
	ended   bool
	owner   any         // the connection attached now, nil while offline
	durable atomic.Bool // its state goes to the write-ahead log

	// Expiry is the Session Expiry Interval in seconds (0xFFFFFFFF: never).
	Expiry uint32
	// Version is the protocol level of the last connection.
	Version byte

	subs map[string]SubOptions

	inflight  map[uint16]*Inflight
	pending   int // in-flight entries not yet resent on the current connection
	sendSeq   uint64
	lastID    uint16
	sendQuota int // the client's Receive Maximum

	queue      []Delivery // FIFO; head at queueHead
	queueHead  int
	queueBytes int
	queueQoS0  int // queued QoS 0 deliveries, so that a queue of QoS 1/2 is not scanned for one

	inboundQoS2 map[uint16]struct{}

	// lists is nil while the rarely used lists below are empty: most
	// sessions never need them, and a million sessions would each carry
	// their headers.
	lists *sessionLists

	// Progress is when (unix nanoseconds) the session's client last showed
	// it takes deliveries: attached, or acknowledged one. The engine holds
	// publishers back only for a session that makes progress.
	Progress int64

	overflow bool // set by OfferOverflow for its enqueue

	// Will is the will message of the attached connection, nil when none.
	Will *Will
	// Timer is the engine's pending timer for this session (will delay or
	// expiry), stopped when a connection attaches.
	Timer    interface{ Stop() bool }
	timerGen uint64
}

// Will is a will message and its delay (5.0 Will Delay Interval).
type Will struct {
	Msg   *message.Message
	Delay uint32 // seconds
}

func newSession(id string, seq uint64, o *Options) *Session {
	// The maps are made on first write: most of a million idle
	// connections never use one of them, and an empty map still costs
	// about 50 bytes.
	return &Session{ID: id, Seq: seq, opts: o, sendQuota: 65535}
}

// Lock and Unlock guard the session's state.
func (s *Session) Lock()   { s.mu.Lock() }
func (s *Session) Unlock() { s.mu.Unlock() }

// Ended reports whether the session was removed from its table, replaced,
// or is being ended; deliveries to it are dropped and no connection may
// attach to it.
func (s *Session) Ended() bool { return s.ended }

// End marks the session ended, in the same critical section as the decision
// to end it, so that no connection attaches to it in between. The caller then
// removes it from its table.
func (s *Session) End() { s.ended = true }

// NextTimer returns a new timer generation. A timer callback captures it and
// acts only while it is still current (TimerCurrent), so a timer that fired
// just as a client reconnected cannot act on the new connection's state.
func (s *Session) NextTimer() uint64 {
	s.timerGen++
	return s.timerGen
}

// TimerCurrent reports whether gen is the newest timer generation.
func (s *Session) TimerCurrent(gen uint64) bool { return s.timerGen == gen }

// Durable reports whether the engine keeps this session in the write-ahead
// log. It may be read without the lock (the router's subscribers are checked
// before a publish is routed).
func (s *Session) Durable() bool { return s.durable.Load() }

// SetDurable records whether the session is kept in the write-ahead log.
// Turning it off forgets the store positions of its deliveries: their entries
// went with the session's record, and must not be deleted a second time.
func (s *Session) SetDurable(on bool) {
	s.durable.Store(on)
	if on {
		return
	}
	for i := s.queueHead; i < len(s.queue); i++ {
		s.queue[i].StoreSeq, s.queue[i].StoreMsg = 0, 0
	}
	for _, in := range s.inflight {
		in.StoreSeq, in.StoreMsg = 0, 0
	}
}

// Owner returns the attached connection, or nil.
func (s *Session) Owner() any { return s.owner }

// Attach attaches a connection whose Receive Maximum is sendQuota, and
// returns the previous owner (to be disconnected: session takeover).
func (s *Session) Attach(owner any, sendQuota int) (previous any) {
	previous = s.owner
	s.owner = owner
	if sendQuota <= 0 {
		sendQuota = 65535
	}
	s.sendQuota = sendQuota
	return previous
}

// Detach detaches owner if it is still the attached connection.
func (s *Session) Detach(owner any) bool {
	if s.owner != owner {
		return false
	}
	s.owner = nil
	return true
}

// SetSub adds or replaces the subscription to filter and reports whether one
// existed.
func (s *Session) SetSub(filter string, o SubOptions) (existed bool) {
	_, existed = s.subs[filter]
	if s.subs == nil {
		s.subs = make(map[string]SubOptions)
	}
	s.subs[filter] = o
	return existed
}

// DeleteSub removes the subscription to filter and reports whether it existed.
func (s *Session) DeleteSub(filter string) bool {
	if _, ok := s.subs[filter]; !ok {
		return false
	}
	delete(s.subs, filter)
	return true
}

// Subs returns the subscriptions; the map must not be modified or kept past
// the lock.
func (s *Session) Subs() map[string]SubOptions { return s.subs }

// Offer hands the session a delivery. When the session is online, its
// connection has room (the caller's outbound bound), its queue empty, and (for QoS 1/2) the in-flight window has room, the delivery gets a
// packet id, enters the window and Offer returns send=true: the caller writes
// it to the connection. Otherwise it is queued, within the bounds of Options:
// when the queue is full the oldest queued QoS 0 message is dropped to make
// room, and failing that a new QoS 0 message is dropped and a new QoS 1/2 one
// refused. Ownership of d.Msg's reference passes to the session unless the
// result is a drop, in which case Offer releases it.
func (s *Session) Offer(d Delivery, now int64, room bool) (out Delivery, send bool, drop Drop) {
	if s.ended {
		d.Msg.Release()
		return d, false, DroppedQueueQoS0
	}
	if d.Msg.Expired(now) {
		d.Msg.Release()
		return d, false, DroppedExpired
	}
	if s.owner != nil && room && s.queueLen() == 0 && !d.Msg.Held() && (d.QoS == 0 || len(s.inflight) < s.sendQuota) {
		if d.QoS > 0 {
			s.track(&d)
		}
		return d, true, Accepted
	}
	return d, false, s.enqueue(d)
}

// OfferOverflow is Offer for a QoS 1/2 delivery whose publisher can be held
// back: an online session whose queue is full queues it anyway (up to twice
// the byte bound) rather than refusing it, and over reports that the queue is
// over its bounds, so that the caller slows the publisher (WhenDrained).
// An offline session's queue refuses as Offer does: nobody drains it soon.
func (s *Session) OfferOverflow(d Delivery, now int64, room bool) (out Delivery, send bool, drop Drop, over bool) {
	s.overflow = true
	out, send, drop = s.Offer(d, now, room)
	s.overflow = false
	return out, send, drop, drop == Accepted && !send && s.overBounds()
}

// QueueHalfFree reports whether the queue holds under half the messages and
// bytes its bounds allow: room to take a burst the engine paces (retained
// messages for a new subscription) without nearing the point where Offer
// drops or refuses.
func (s *Session) QueueHalfFree() bool {
	return s.queueLen() < s.opts.MaxQueuedMessages/2 && s.queueBytes < s.opts.MaxQueuedBytes/2
}

// overBounds reports whether the queue holds as many messages or bytes as
// its bounds allow, or more.
func (s *Session) overBounds() bool {
	return s.queueLen() >= s.opts.MaxQueuedMessages || s.queueBytes >= s.opts.MaxQueuedBytes
}

// WhenDrained registers fn to be called once the queue is within its bounds
// again, the session goes offline or ends (TakeDrained returns it then). It
// returns false, registering nothing, when that is already so: the caller
// calls fn itself.
func (s *Session) WhenDrained(fn func()) bool {
	if s.ended || s.owner == nil || !s.overBounds() {
		return false
	}
	l := s.listsForAppend()
	l.drainWaiters = append(l.drainWaiters, fn)
	return true
}

// TakeDrained returns the functions registered with WhenDrained when the
// queue is within its bounds (or all is true: the session went offline or
// ended); the caller calls them without the lock.
func (s *Session) TakeDrained(all bool) []func() {
	if s.lists == nil || len(s.lists.drainWaiters) == 0 || !all && s.overBounds() {
		return nil
	}
	w := s.lists.drainWaiters
	s.lists.drainWaiters = nil
	s.dropEmptyLists()
	return w
}

// Next takes the next queued delivery that may be sent now: expired messages
// are dropped on the way (counted in expired), QoS 1/2 ones need room in the
// in-flight window. ok is false when nothing can be sent.
func (s *Session) Next(now int64) (d Delivery, ok bool, expired int) {
	for s.queueLen() > 0 {
		head := &s.queue[s.queueHead]
		if head.Msg.Expired(now) {
			d := s.popHead()
			if d.StoreSeq != 0 {
				l := s.listsForAppend()
				l.expiredStored = append(l.expiredStored, StoreRef{d.StoreSeq, d.StoreMsg})
			}
			d.Msg.Release()
			expired++
			continue
		}
		if head.Msg.Held() || head.QoS > 0 && len(s.inflight) >= s.sendQuota {
			return Delivery{}, false, expired
		}
		d = s.popHead()
		if d.QoS > 0 {
			s.track(&d)
		}
		return d, true, expired
	}
	return Delivery{}, false, expired
}

func (s *Session) inflightMap() map[uint16]*Inflight {
	if s.inflight == nil {
		s.inflight = make(map[uint16]*Inflight)
	}
	return s.inflight
}

func (s *Session) track(d *Delivery) {
	d.PacketID = s.nextPacketID()
	s.sendSeq++
	s.inflightMap()[d.PacketID] = &Inflight{Delivery: *d, seq: s.sendSeq}
}

// nextPacketID returns a packet id not in use by an outbound delivery. The
// window is at most 65535, so one is always free when track is called.
func (s *Session) nextPacketID() uint16 {
	for {
		s.lastID++
		if s.lastID == 0 {
			s.lastID = 1
		}
		if _, used := s.inflight[s.lastID]; !used {
			return s.lastID
		}
	}
}

func (s *Session) queueLen() int { return len(s.queue) - s.queueHead }

func (s *Session) popHead() Delivery {
	d := s.queue[s.queueHead]
	s.queue[s.queueHead] = Delivery{}
	s.queueHead++
	s.queueBytes -= d.Msg.Size()
	if d.QoS == 0 {
		s.queueQoS0--
	}
	if s.queueHead == len(s.queue) {
		s.queue, s.queueHead = s.queue[:0], 0
	} else if s.queueHead > 1024 && s.queueHead > len(s.queue)/2 {
		n := copy(s.queue, s.queue[s.queueHead:])
		clear(s.queue[n:])
		s.queue, s.queueHead = s.queue[:n], 0
	}
	return d
}

func (s *Session) enqueue(d Delivery) Drop {
	size := d.Msg.Size()
	for s.queueLen() >= s.opts.MaxQueuedMessages || s.queueBytes+size > s.opts.MaxQueuedBytes {
		if s.overflow && d.QoS > 0 && s.owner != nil && s.queueBytes+size <= 2*s.opts.MaxQueuedBytes {
			break // OfferOverflow: over the bounds, the publisher is held back instead
		}
		if !s.dropOldestQoS0() {
			d.Msg.Release()
			if d.QoS == 0 {
				return DroppedQueueQoS0
			}
			return RefusedQueueFull
		}
	}
	d.PacketID, d.Dup = 0, false
	s.queue = append(s.queue, d)
	s.queueBytes += size
	if d.QoS == 0 {
		s.queueQoS0++
	}
	return Accepted
}

// dropOldestQoS0 removes the oldest queued QoS 0 delivery.
func (s *Session) dropOldestQoS0() bool {
	if s.queueQoS0 == 0 {
		return false
	}
	for i := s.queueHead; i < len(s.queue); i++ {
		if s.queue[i].QoS == 0 {
			d := s.queue[i]
			copy(s.queue[i:], s.queue[i+1:])
			s.queue[len(s.queue)-1] = Delivery{}
			s.queue = s.queue[:len(s.queue)-1]
			s.queueBytes -= d.Msg.Size()
			s.queueQoS0--
			d.Msg.Release()
			if s.opts.evicted != nil {
				s.opts.evicted.Add(1)
			}
			return true
		}
	}
	return false
}

type sessionLists struct {
	expiredStored []StoreRef // stored deliveries Next dropped as expired, for the engine to delete
	drainWaiters  []func()   // called by the engine once the queue is back within its bounds
}

func (s *Session) listsForAppend() *sessionLists {
	if s.lists == nil {
		s.lists = new(sessionLists)
	}
	return s.lists
}

// dropEmptyLists lets the lists go once both are empty.
func (s *Session) dropEmptyLists() {
	if l := s.lists; l != nil && len(l.expiredStored) == 0 && len(l.drainWaiters) == 0 {
		s.lists = nil
	}
}

// StoreRef is the store position of a delivery: its queue entry and message
// body.
type StoreRef struct{ Seq, Msg uint64 }

// TakeExpiredStored returns the stored deliveries that expired in the queue
// since the last call, so that their entries can be deleted.
func (s *Session) TakeExpiredStored() []StoreRef {
	if s.lists == nil {
		return nil
	}
	out := s.lists.expiredStored
	s.lists.expiredStored = nil
	s.dropEmptyLists()
	return out
}

// InflightOf returns the in-flight delivery with packet id id, or nil. The
// entry stays owned by the session.
func (s *Session) InflightOf(id uint16) *Inflight { return s.inflight[id] }

// RestoreQueued appends a delivery read back from the store to the queue,
// whatever the bounds: it was accepted before the restart.
func (s *Session) RestoreQueued(d Delivery) {
	d.Dup = false
	s.queue = append(s.queue, d)
	s.queueBytes += d.Msg.Size()
	if d.QoS == 0 {
		s.queueQoS0++
	}
}

// RestoreInflight puts a delivery read back from the store into the
// in-flight window with its packet id; released is a QoS 2 delivery whose
// PUBREC came (d.Msg is then nil). Deliveries are restored in send order.
func (s *Session) RestoreInflight(d Delivery, released bool) {
	s.sendSeq++
	s.inflightMap()[d.PacketID] = &Inflight{Delivery: d, Released: released, seq: s.sendSeq}
	s.lastID = max(s.lastID, d.PacketID)
}

// Withdraw removes every queued delivery of message m (one that could not be
// stored and must not be sent) and returns how many there were.
func (s *Session) Withdraw(m *message.Message) int {
	n := 0
	kept := s.queue[:s.queueHead]
	for i := s.queueHead; i < len(s.queue); i++ {
		d := s.queue[i]
		if d.Msg == m {
			s.queueBytes -= d.Msg.Size()
			if d.QoS == 0 {
				s.queueQoS0--
			}
			d.Msg.Release()
			n++
			continue
		}
		kept = append(kept, d)
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	return n
}

// EachQueued calls fn for every queued delivery in order; fn may change the
// delivery's store fields.
func (s *Session) EachQueued(fn func(d *Delivery)) {
	for i := s.queueHead; i < len(s.queue); i++ {
		fn(&s.queue[i])
	}
}

// InboundQoS2IDs returns the inbound QoS 2 packet ids awaiting PUBREL.
func (s *Session) InboundQoS2IDs() []uint16 {
	ids := make([]uint16, 0, len(s.inboundQoS2))
	for id := range s.inboundQoS2 {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Queued returns the number and bytes of queued deliveries.
func (s *Session) Queued() (n, bytes int) { return s.queueLen(), s.queueBytes }

// InflightLen returns the number of outbound deliveries awaiting acknowledgement.
func (s *Session) InflightLen() int { return len(s.inflight) }

// Ack completes or advances the outbound delivery with packet id id on
// receipt of a PUBACK, PUBREC or PUBCOMP (kind 'a', 'r', 'c'). It reports
// whether the packet id was in flight in the state the acknowledgement fits.
func (s *Session) Ack(id uint16, kind byte) bool {
	in := s.inflight[id]
	if in == nil {
		return false
	}
	switch kind {
	case 'a':
		if in.QoS != 1 {
			return false
		}
	case 'r':
		if in.QoS != 2 || in.Released {
			return in.QoS == 2 // a repeated PUBREC is answered with PUBREL again
		}
		in.Released = true
		in.Msg.Release()
		in.Msg = nil
		return true
	case 'c':
		if in.QoS != 2 || !in.Released {
			return false
		}
	default:
		return false
	}
	if in.Msg != nil {
		in.Msg.Release()
	}
	if in.Pending {
		s.pending--
	}
	delete(s.inflight, id)
	return true
}

// Resend returns, on a new connection, the in-flight deliveries to send
// again now, in the order they were first sent: PUBLISH with DUP for those
// not released, PUBREL for released QoS 2 ones, with their original packet
// ids (MQTT-4.4.0-1). At most the connection's Receive Maximum are returned
// (MQTT-3.3.4-9); the rest are marked pending and come from ResendPending as
// acknowledgements free the window. Returned entries stay owned by the
// session.
func (s *Session) Resend() []*Inflight {
	all := s.InflightInOrder()
	s.pending = 0
	for i, in := range all {
		in.Pending = i >= s.sendQuota
		if in.Pending {
			s.pending++
		}
	}
	return all[:min(len(all), s.sendQuota)]
}

// ResendPending returns the next pending in-flight delivery that the window
// has room for, and marks it sent.
func (s *Session) ResendPending() (*Inflight, bool) {
	if s.pending == 0 || len(s.inflight)-s.pending >= s.sendQuota {
		return nil, false
	}
	var next *Inflight
	for _, in := range s.inflight {
		if in.Pending && (next == nil || in.seq < next.seq) {
			next = in
		}
	}
	next.Pending = false
	s.pending--
	return next, true
}

// InflightInOrder returns the in-flight deliveries in the order they were
// first sent. Each unreleased entry's Msg stays owned by the session.
func (s *Session) InflightInOrder() []*Inflight {
	out := make([]*Inflight, 0, len(s.inflight))
	for _, in := range s.inflight {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b *Inflight) int { return cmp.Compare(a.seq, b.seq) })
	return out
}

// ReceiveQoS2 records an inbound QoS 2 packet id awaiting PUBREL and reports
// whether it was new: a PUBLISH with a known id is a redelivery and must not
// be forwarded again (MQTT-4.3.3-10 exactly once).
func (s *Session) ReceiveQoS2(id uint16) (isNew bool) {
	if _, ok := s.inboundQoS2[id]; ok {
		return false
	}
	if s.inboundQoS2 == nil {
		s.inboundQoS2 = make(map[uint16]struct{})
	}
	s.inboundQoS2[id] = struct{}{}
	return true
}

// ReleaseQoS2 forgets an inbound QoS 2 packet id on PUBREL and reports
// whether it was known.
func (s *Session) ReleaseQoS2(id uint16) bool {
	if _, ok := s.inboundQoS2[id]; !ok {
		return false
	}
	delete(s.inboundQoS2, id)
	return true
}

// InboundQoS2Len returns the number of inbound QoS 2 messages awaiting PUBREL.
func (s *Session) InboundQoS2Len() int { return len(s.inboundQoS2) }

// Clear releases every message the session holds: queue, in-flight window
// and will. The session is unusable afterwards.
func (s *Session) Clear() {
	for s.queueLen() > 0 {
		s.popHead().Msg.Release()
	}
	for id, in := range s.inflight {
		if in.Msg != nil {
			in.Msg.Release()
		}
		delete(s.inflight, id)
	}
	if s.Will != nil {
		s.Will.Msg.Release()
		s.Will = nil
	}
	clear(s.inboundQoS2)
	clear(s.subs)
	s.ended = true
}

// HasQoS2 reports whether inbound QoS 2 packet id id awaits PUBREL.
func (s *Session) HasQoS2(id uint16) bool {
	_, ok := s.inboundQoS2[id]
	return ok
}
