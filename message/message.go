// Package message owns the in-memory form of an application message: one
// copy of its topic, payload and forwarded 5.0 properties in a pooled buffer,
// shared by every subscriber it is delivered to and released by the last.
package message

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// Message is an application message on its way through the broker. Its byte
// slices are views into one pooled buffer that lives until the last reference
// is released: holders call Ref before keeping a message past the call that
// handed it to them, and Release when done. After the final Release the
// message must not be touched.
type Message struct {
	refs atomic.Int32
	bufp *[]byte // the pooled buffer, kept as a pointer so that returning it allocates nothing

	Topic    []byte
	Payload  []byte
	Props    []byte // encoded forwarded properties (codec.Properties.AppendForwarded)
	QoS      byte
	Retain   bool
	ExpireAt int64  // unix nanoseconds after which the message is not delivered; 0 never
	Origin   uint64 // id of the publishing session, for No Local; 0 for the broker's own
	Created  int64  // unix nanoseconds, for the remaining expiry interval

	// StoreID is the id of the message's body in the write-ahead log, 0
	// while it has none. Set before the message is shared.
	StoreID uint64

	// held is set while the change that stores the message is not yet
	// durable: sessions queue a held message and send it only once released,
	// so no subscriber sees a message the broker could still lose (and then
	// accept again from the publisher: a QoS 2 duplicate).
	held atomic.Bool
}

// Hold marks the message as not yet durable; call it before sharing it.
func (m *Message) Hold() { m.held.Store(true) }

// Unhold marks the message durable; sessions may send it from now on.
func (m *Message) Unhold() { m.held.Store(false) }

// Held reports whether the message waits for its store change.
func (m *Message) Held() bool { return m.held.Load() }

var messagePool = sync.Pool{New: func() any { return new(Message) }}

// Buffer size classes: a message takes the smallest class that fits, so a
// pooled buffer is never more than twice the size it holds.
var classes = [...]int{128, 256, 512, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}

var bufPools [len(classes)]sync.Pool

func getBuf(n int) *[]byte {
	for i, c := range classes {
		if n <= c {
			if b, ok := bufPools[i].Get().(*[]byte); ok {
				*b = (*b)[:0]
				return b
			}
			b := make([]byte, 0, c)
			return &b
		}
	}
	b := make([]byte, 0, n) // larger than the largest class: not pooled
	return &b
}

func putBuf(b *[]byte) {
	for i, c := range classes {
		if cap(*b) == c {
			bufPools[i].Put(b)
			return
		}
	}
}

// New copies topic, payload and the forwarded properties of props (may be
// nil) into one pooled buffer and returns a message holding one reference.
// expiry is the Message Expiry Interval in seconds when hasExpiry is set. The
// arguments are not retained.
func New(topic, payload []byte, props *codec.Properties, qos byte, retain bool, origin uint64, now time.Time) *Message {
	m := messagePool.Get().(*Message)
	n := len(topic) + len(payload)
	if props != nil {
		n += 64 // forwarded properties are small; append grows the buffer if not
	}
	bufp := getBuf(n)
	buf := append(*bufp, topic...)
	buf = append(buf, payload...)
	propsStart := len(buf)
	if props != nil {
		buf = props.AppendForwarded(buf)
	}
	*bufp = buf // a grown buffer then goes to the pool of its new size, if any
	m.bufp = bufp
	m.Topic = buf[:len(topic):len(topic)]
	m.Payload = buf[len(topic):propsStart:propsStart]
	m.Props = buf[propsStart:]
	m.QoS, m.Retain, m.Origin = qos, retain, origin
	m.Created = now.UnixNano()
	m.ExpireAt = 0
	if props != nil && props.Has(codec.PropMessageExpiry) {
		m.ExpireAt = m.Created + int64(props.MessageExpiry)*int64(time.Second)
	}
	m.refs.Store(1)
	liveAdd(1)
	return m
}

// Ref adds a reference and returns m.
func (m *Message) Ref() *Message {
	if m.refs.Add(1) <= 1 {
		panic("BUG: message: Ref of a released message")
	}
	return m
}

// Release drops a reference; the last one returns the buffer to its pool.
func (m *Message) Release() {
	switch n := m.refs.Add(-1); {
	case n > 0:
		return
	case n < 0:
		panic("BUG: message: released more often than referenced")
	}
	liveAdd(-1)
	putBuf(m.bufp)
	*m = Message{}
	messagePool.Put(m)
}

// Expired reports whether the message's expiry interval has passed at now.
// A Message Expiry Interval of 0 is therefore still deliverable at the instant
// of its publication, to the subscribers it is routed to then.
func (m *Message) Expired(now int64) bool { return m.ExpireAt != 0 && now > m.ExpireAt }

// RemainingExpiry returns the Message Expiry Interval to forward at now, in
// whole seconds rounded up, and whether the message has one (MQTT-3.3.2-6).
func (m *Message) RemainingExpiry(now int64) (uint32, bool) {
	if m.ExpireAt == 0 {
		return 0, false
	}
	left := m.ExpireAt - now
	if left <= 0 {
		return 0, true
	}
	return uint32((left + int64(time.Second) - 1) / int64(time.Second)), true
}

// Size is the memory the message accounts for in queue byte limits.
func (m *Message) Size() int { return len(m.Topic) + len(m.Payload) + len(m.Props) }

// Restore copies a stored message back into a pooled buffer: topic, payload
// and props (already in their forwarded wire encoding) as they were stored,
// with the original creation and expiry times, so that time spent in the
// store counts against the Message Expiry Interval. It returns a message
// holding one reference.
func Restore(topic, payload, props []byte, qos byte, retain bool, origin uint64, created, expireAt int64) *Message {
	m := messagePool.Get().(*Message)
	bufp := getBuf(len(topic) + len(payload) + len(props))
	buf := append(*bufp, topic...)
	buf = append(buf, payload...)
	propsStart := len(buf)
	buf = append(buf, props...)
	*bufp = buf
	m.bufp = bufp
	m.Topic = buf[:len(topic):len(topic)]
	m.Payload = buf[len(topic):propsStart:propsStart]
	m.Props = buf[propsStart:]
	m.QoS, m.Retain, m.Origin = qos, retain, origin
	m.Created, m.ExpireAt = created, expireAt
	m.refs.Store(1)
	liveAdd(1)
	return m
}
