package wal

import (
	"fmt"
	"sync"
)

// Kind is the kind of a logical change, as the change log records it.
type Kind byte

const (
	KindNone        Kind = iota
	KindConnect          // a persistent session was created or resumed
	KindDisconnect       // a persistent session went offline
	KindSessionEnd       // a session was deleted: expiry, clean start, takeover by a clean session
	KindSubscribe        // subscriptions added or replaced
	KindUnsubscribe      // subscriptions removed
	KindPublish          // a message was stored and queued for persistent sessions
	KindSend             // queued deliveries were sent and are in flight
	KindPuback           // an outbound QoS 1 delivery completed
	KindPubrec           // an outbound QoS 2 delivery got its PUBREC
	KindPubcomp          // an outbound QoS 2 delivery completed
	KindPubrel           // an inbound QoS 2 packet id was released
	KindRetain           // a retained message was set
	KindRetainClear      // a retained message was cleared
	KindWill             // a will was stored
	KindWillClear        // a will was removed (graceful disconnect, reconnect)
	KindWillPublish      // a will was published
	KindDrop             // queued deliveries were dropped (expired, over a bound)
	kindCount
)

var kindNames = [kindCount]string{"none", "connect", "disconnect", "session-end", "subscribe", "unsubscribe",
	"publish", "send", "puback", "pubrec", "pubcomp", "pubrel", "retain", "retain-clear", "will",
	"will-clear", "will-publish", "drop"}

func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

type opKind byte

const (
	opSet         opKind = iota // key, val
	opDelete                    // key
	opDeleteRange               // key, end
	opQueuePut                  // key, val; one more reference to msgID
	opQueueDelete               // key; one reference less to msgID
	opQueueRange                // key, end: queue entries whose references the committer looks up
	opBodyPut                   // key, val: the body of message msgID
)

// op is one operation of a batch; key, val and end are offsets into the
// batch's buf, so a batch with many operations holds one allocation.
type op struct {
	kind     opKind
	key, val span
	end      span
	msgID    uint64
	// elided is set by the committer for a queue entry put and deleted in
	// the same commit, and a body only such entries referred to: neither is
	// written.
	elided bool
}

type span struct{ off, n int32 }

// Batch collects the writes of one logical change (one PUBLISH, one
// SUBSCRIBE, one acknowledgement) and its change-log record; the committer
// applies it atomically together with the batches of other changes. Build a
// batch with NewBatch and the methods below, then hand it to Store.Submit,
// which takes it over: it must not be touched after Submit. A Batch is not
// safe for concurrent use. The methods copy their arguments; none is kept.
type Batch struct {
	buf []byte
	ops []op

	// The change-log record: Seq and Time are set by the committer, client
	// id and topic are spans of buf.
	kind     Kind
	qos      byte
	size     uint32
	logCID   span
	logTopic span

	grows bool // adds data: refused while disk space is low
	done  func(error)
	err   error // set by the committer when the change is refused or fails
}

var batchPool = sync.Pool{New: func() any { return new(Batch) }}

// NewBatch returns an empty batch whose change-log record has the given
// kind and client id; SetTopic adds the topic, QoS and size.
func NewBatch(kind Kind, clientID []byte) *Batch {
	b := batchPool.Get().(*Batch)
	b.kind = kind
	start := len(b.buf)
	b.buf = append(b.buf, clientID...)
	b.logCID = b.span(start)
	return b
}

// Discard returns a batch that will not be submitted to the pool; b must not
// be used afterwards.
func (b *Batch) Discard() { b.release() }

// release returns b to the pool.
func (b *Batch) release() {
	if cap(b.buf) > 64<<10 || cap(b.ops) > 1024 {
		return // a rare large batch: let it go rather than pin its memory
	}
	*b = Batch{buf: b.buf[:0], ops: b.ops[:0]}
	batchPool.Put(b)
}

// SetTopic sets the topic, QoS and size of the batch's change-log record.
func (b *Batch) SetTopic(topic []byte, qos byte, size int) {
	start := len(b.buf)
	b.buf = append(b.buf, topic...)
	b.logTopic = b.span(start)
	b.qos = qos
	b.size = uint32(min(max(size, 0), 1<<32-1))
}

// logRecord returns the batch's change-log record; its slices point into
// the batch.
func (b *Batch) logRecord() LogRecord {
	return LogRecord{Kind: b.kind, QoS: b.qos, Size: b.size, ClientID: b.bytes(b.logCID), Topic: b.bytes(b.logTopic)}
}

// Len returns the number of operations in the batch.
func (b *Batch) Len() int { return len(b.ops) }

func (b *Batch) span(start int) span { return span{int32(start), int32(len(b.buf) - start)} }

func (b *Batch) bytes(s span) []byte { return b.buf[s.off : s.off+s.n : s.off+s.n] }

// put records an operation whose key was appended at keyStart and whose
// value follows it from valStart to the end of buf.
func (b *Batch) put(kind opKind, keyStart, valStart int, msgID uint64) {
	b.ops = append(b.ops, op{kind: kind, key: span{int32(keyStart), int32(valStart - keyStart)},
		val: b.span(valStart), msgID: msgID})
}

func (b *Batch) setValue(keyStart, valStart int) { b.put(opSet, keyStart, valStart, 0) }

func (b *Batch) del(keyStart int) {
	b.ops = append(b.ops, op{kind: opDelete, key: b.span(keyStart)})
}

// delPrefix deletes every key that starts with the bytes at prefixStart.
func (b *Batch) delPrefix(kind opKind, prefixStart int) {
	p := b.span(prefixStart)
	end := prefixEnd(b.bytes(p))
	endStart := len(b.buf)
	b.buf = append(b.buf, end...)
	b.ops = append(b.ops, op{kind: kind, key: p, end: b.span(endStart)})
}

// SessionPut writes the record of the session of clientID.
func (b *Batch) SessionPut(clientID []byte, s *Session) {
	k := len(b.buf)
	b.buf = sessionKey(b.buf, clientID)
	v := len(b.buf)
	b.buf = appendSession(b.buf, s)
	b.setValue(k, v)
	// Not counted as growth: a session record is small and bounded by the
	// clients, and refusing it while space is low would lose a disconnect's
	// time (expiry counts from it) along with its batch.
}

// SessionDelete deletes everything of the session of clientID: its record,
// subscriptions, queue entries (releasing their message bodies), inbound
// QoS 2 packet ids and will, one DeleteRange per family.
func (b *Batch) SessionDelete(clientID []byte) {
	for _, fam := range sessionFamilies {
		k := len(b.buf)
		b.buf = clientPrefix(b.buf, fam, clientID)
		kind := opDeleteRange
		if fam == famQueue {
			kind = opQueueRange
		}
		b.delPrefix(kind, k)
	}
}

// SubPut adds or replaces the subscription of clientID to filter.
func (b *Batch) SubPut(clientID, filter []byte, s *Subscription) {
	k := len(b.buf)
	b.buf = subKey(b.buf, clientID, filter)
	v := len(b.buf)
	b.buf = appendSubscription(b.buf, s)
	b.setValue(k, v)
	b.grows = true
}

// SubDelete removes the subscription of clientID to filter.
func (b *Batch) SubDelete(clientID, filter []byte) {
	k := len(b.buf)
	b.buf = subKey(b.buf, clientID, filter)
	b.del(k)
}

// RetainedPut sets m as the retained message of m.Topic.
func (b *Batch) RetainedPut(m *Message) {
	k := len(b.buf)
	b.buf = retainedKey(b.buf, m.Topic)
	v := len(b.buf)
	b.buf = appendMessage(b.buf, m, false)
	b.setValue(k, v)
	b.grows = true
}

// RetainedDelete clears the retained message of topic.
func (b *Batch) RetainedDelete(topic []byte) {
	k := len(b.buf)
	b.buf = retainedKey(b.buf, topic)
	b.del(k)
}

// MessagePut stores the body of message id (from Store.NewMessageID), once
// for all the sessions it is queued for. It belongs in the same batch as the
// QueuePut calls that refer to it: a body that no queue entry refers to is
// deleted by the committer's reference counting or by the next Load. Putting
// the same id again is harmless.
func (b *Batch) MessagePut(id uint64, m *Message) {
	k := len(b.buf)
	b.buf = messageKey(b.buf, id)
	v := len(b.buf)
	b.buf = appendMessage(b.buf, m, true)
	b.put(opBodyPut, k, v, id)
	b.grows = true
}

// QueuePut adds a new queue entry of clientID at seq (from
// Store.NewQueueSeq), referring to the message body e.MsgID. Use
// QueueUpdate to change an entry that exists.
func (b *Batch) QueuePut(clientID []byte, seq uint64, e *QueueEntry) {
	k := len(b.buf)
	b.buf = queueKey(b.buf, clientID, seq)
	v := len(b.buf)
	b.buf = appendQueueEntry(b.buf, e)
	b.put(opQueuePut, k, v, e.MsgID)
	b.grows = true
}

// QueueUpdate rewrites an existing queue entry, typically its State and
// PacketID; e.MsgID must be the one it was put with. The entry must exist:
// an update submitted after the entry's deletion brings it back.
func (b *Batch) QueueUpdate(clientID []byte, seq uint64, e *QueueEntry) {
	k := len(b.buf)
	b.buf = queueKey(b.buf, clientID, seq)
	v := len(b.buf)
	b.buf = appendQueueEntry(b.buf, e)
	b.setValue(k, v)
}

// QueueDelete deletes the queue entry of clientID at seq, which refers to
// message msgID; the body is deleted with the last entry that refers to it.
func (b *Batch) QueueDelete(clientID []byte, seq, msgID uint64) {
	k := len(b.buf)
	b.buf = queueKey(b.buf, clientID, seq)
	b.ops = append(b.ops, op{kind: opQueueDelete, key: b.span(k), msgID: msgID})
}

// QueueDeleteRange deletes the queue entries of clientID with sequence
// numbers in [from, to) with one DeleteRange; the committer looks up the
// message bodies they referred to.
func (b *Batch) QueueDeleteRange(clientID []byte, from, to uint64) {
	if from >= to {
		return
	}
	k := len(b.buf)
	b.buf = queueKey(b.buf, clientID, from)
	key := b.span(k)
	e := len(b.buf)
	b.buf = queueKey(b.buf, clientID, to)
	b.ops = append(b.ops, op{kind: opQueueRange, key: key, end: b.span(e)})
}

// InboundQoS2Put records that inbound QoS 2 packet id of clientID awaits
// PUBREL; at is the arrival time in unix nanoseconds.
func (b *Batch) InboundQoS2Put(clientID []byte, packetID uint16, at int64) {
	k := len(b.buf)
	b.buf = inboundKey(b.buf, clientID, packetID)
	v := len(b.buf)
	b.buf = appendInbound(b.buf, at)
	b.setValue(k, v)
	b.grows = true
}

// InboundQoS2Delete forgets inbound QoS 2 packet id of clientID (PUBREL).
func (b *Batch) InboundQoS2Delete(clientID []byte, packetID uint16) {
	k := len(b.buf)
	b.buf = inboundKey(b.buf, clientID, packetID)
	b.del(k)
}

// WillPut stores the pending will of clientID.
func (b *Batch) WillPut(clientID []byte, w *Will) {
	k := len(b.buf)
	b.buf = willKey(b.buf, clientID)
	v := len(b.buf)
	b.buf = appendWill(b.buf, w)
	b.setValue(k, v)
	b.grows = true
}

// WillDelete removes the pending will of clientID.
func (b *Batch) WillDelete(clientID []byte) {
	k := len(b.buf)
	b.buf = willKey(b.buf, clientID)
	b.del(k)
}
