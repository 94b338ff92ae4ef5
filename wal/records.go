package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Every value starts with a version byte so that a later tern can change an
// encoding and still read what an older one wrote; decoders reject versions
// they do not know instead of guessing. Integers are uvarints (varints for
// signed times), byte strings a uvarint length and the bytes. Decoders are
// strict: truncated input, trailing bytes, out-of-range fields and unknown
// versions are errors wrapping ErrCorrupt, never panics.

const recordVersion byte = 1

// ErrCorrupt is wrapped by every error about a key or value that cannot be
// decoded.
var ErrCorrupt = errors.New("wal: corrupt record")

// Session is the durable state of a persistent session.
type Session struct {
	Expiry         uint32 // Session Expiry Interval in seconds; 0xFFFFFFFF never
	Version        byte   // protocol level of the last connection
	ConnectedAt    int64  // unix nanoseconds of the last CONNECT
	DisconnectedAt int64  // unix nanoseconds the session went offline; 0 while connected
}

// Subscription holds the options a client subscribed to a filter with (the
// fields of sessions.SubOptions).
type Subscription struct {
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	SubID             uint32
}

// Message is an application message as stored: the fields of
// message.Message. Topic and Payload are raw bytes, Props the forwarded
// properties in their MQTT wire encoding.
type Message struct {
	Topic    []byte
	Payload  []byte
	Props    []byte
	QoS      byte
	Retain   bool
	Created  int64  // unix nanoseconds
	ExpireAt int64  // unix nanoseconds; 0 never
	Origin   uint64 // publishing session's Seq, for No Local
}

// Size is the number of bytes of topic, payload and properties.
func (m *Message) Size() int { return len(m.Topic) + len(m.Payload) + len(m.Props) }

// QueueState is where a queued delivery is in its QoS flow.
type QueueState byte

const (
	Queued         QueueState = iota // waiting to be sent
	InFlight                         // sent with a packet id, unacknowledged: resent with DUP
	PubrecReceived                   // QoS 2: PUBREC received, PUBREL sent: PUBREL is resent
)

func (q QueueState) String() string {
	switch q {
	case Queued:
		return "queued"
	case InFlight:
		return "in-flight"
	case PubrecReceived:
		return "pubrec-received"
	}
	return fmt.Sprintf("state(%d)", byte(q))
}

// QueueEntry is one delivery of a stored message to one session.
type QueueEntry struct {
	MsgID    uint64 // key of the Message body
	QoS      byte   // delivered QoS, after downgrade to the subscription's
	Retain   bool   // RETAIN flag as sent
	State    QueueState
	PacketID uint16 // 0 while Queued
	SubIDs   []uint32
}

// Will is a pending will message and its delay.
type Will struct {
	Delay uint32 // Will Delay Interval in seconds
	Msg   Message
}

// LogRecord is one entry of the change log that `tern wal tail` prints.
type LogRecord struct {
	Seq      uint64 // from the key, in commit order
	Time     int64  // unix nanoseconds of the commit
	Kind     Kind
	QoS      byte
	Size     uint32
	ClientID []byte
	Topic    []byte
}

// counters are the allocator high-water marks written with every commit, so
// that ids handed out before a crash are never handed out again.
type counters struct {
	NextMsgID uint64
	NextSeq   uint64
	LogSeq    uint64 // last change-log sequence committed
	Time      int64  // unix nanoseconds of the commit
}

// Appenders: each appends the encoding of its record to dst and returns the
// extended slice.

func appendSession(dst []byte, s *Session) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(s.Expiry))
	dst = append(dst, s.Version)
	dst = binary.AppendVarint(dst, s.ConnectedAt)
	return binary.AppendVarint(dst, s.DisconnectedAt)
}

// subscription options pack like the MQTT 5.0 options byte (3.8.3.1).
func appendSubscription(dst []byte, s *Subscription) []byte {
	o := s.QoS & 3
	if s.NoLocal {
		o |= 1 << 2
	}
	if s.RetainAsPublished {
		o |= 1 << 3
	}
	o |= (s.RetainHandling & 3) << 4
	dst = append(dst, recordVersion, o)
	return binary.AppendUvarint(dst, uint64(s.SubID))
}

const (
	msgRetain   = 1 << 2 // flag bits after the 2 QoS bits
	msgHasTopic = 1 << 3
)

// appendMessage encodes m; retained messages leave the topic out (it is
// their key). The payload is last, without a length: it runs to the end.
func appendMessage(dst []byte, m *Message, withTopic bool) []byte {
	flags := m.QoS & 3
	if m.Retain {
		flags |= msgRetain
	}
	if withTopic {
		flags |= msgHasTopic
	}
	dst = append(dst, recordVersion, flags)
	dst = binary.AppendVarint(dst, m.Created)
	dst = binary.AppendVarint(dst, m.ExpireAt)
	dst = binary.AppendUvarint(dst, m.Origin)
	if withTopic {
		dst = appendBytes(dst, m.Topic)
	}
	dst = appendBytes(dst, m.Props)
	return append(dst, m.Payload...)
}

func appendQueueEntry(dst []byte, e *QueueEntry) []byte {
	flags := e.QoS & 3
	if e.Retain {
		flags |= 1 << 2
	}
	flags |= byte(e.State&3) << 3
	dst = append(dst, recordVersion, flags)
	dst = binary.AppendUvarint(dst, e.MsgID)
	dst = binary.AppendUvarint(dst, uint64(e.PacketID))
	dst = binary.AppendUvarint(dst, uint64(len(e.SubIDs)))
	for _, id := range e.SubIDs {
		dst = binary.AppendUvarint(dst, uint64(id))
	}
	return dst
}

// appendInbound encodes an inbound QoS 2 packet id's value: when it arrived.
func appendInbound(dst []byte, at int64) []byte {
	return binary.AppendVarint(append(dst, recordVersion), at)
}

func appendWill(dst []byte, w *Will) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(w.Delay))
	return appendMessage(dst, &w.Msg, true)
}

func appendLogRecord(dst []byte, r *LogRecord) []byte {
	dst = append(dst, recordVersion, byte(r.Kind), r.QoS)
	dst = binary.AppendVarint(dst, r.Time)
	dst = binary.AppendUvarint(dst, uint64(r.Size))
	dst = appendBytes(dst, r.ClientID)
	return appendBytes(dst, r.Topic)
}

func appendCounters(dst []byte, c *counters) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, c.NextMsgID)
	dst = binary.AppendUvarint(dst, c.NextSeq)
	dst = binary.AppendUvarint(dst, c.LogSeq)
	return binary.AppendVarint(dst, c.Time)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// decoder reads one value. The first error sticks and every later read
// returns zero values, so decode functions read all fields and check once.
// Byte slices it returns point into the value being decoded.
type decoder struct {
	b    []byte
	what string
	err  error
}

func newDecoder(b []byte, what string) *decoder {
	d := &decoder{b: b, what: what}
	if v := d.byte(); d.err == nil && v != recordVersion {
		d.fail(fmt.Sprintf("unsupported version %d (written by a newer tern?)", v))
	}
	return d
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrCorrupt, d.what, why)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// uint reads a uvarint that must fit in max.
func (d *decoder) uint(max uint64, field string) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail(fmt.Sprintf("%s %d out of range", field, v))
		return 0
	}
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated byte string")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// rest takes what is left of the value.
func (d *decoder) rest() []byte {
	if d.err != nil {
		return nil
	}
	v := d.b
	d.b = nil
	return v
}

// end reports the decoder's error, or one about bytes left over.
func (d *decoder) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	return d.err
}

func decodeSession(b []byte) (Session, error) {
	d := newDecoder(b, "session")
	s := Session{
		Expiry:         uint32(d.uint(1<<32-1, "expiry")),
		Version:        d.byte(),
		ConnectedAt:    d.varint(),
		DisconnectedAt: d.varint(),
	}
	return s, d.end()
}

func decodeSubscription(b []byte) (Subscription, error) {
	d := newDecoder(b, "subscription")
	o := d.byte()
	id := d.uint(1<<32-1, "subscription id")
	if d.err == nil && (o&3 == 3 || (o>>4)&3 == 3 || o>>6 != 0) {
		d.fail(fmt.Sprintf("bad options byte 0x%02x", o))
	}
	s := Subscription{QoS: o & 3, NoLocal: o&(1<<2) != 0, RetainAsPublished: o&(1<<3) != 0,
		RetainHandling: (o >> 4) & 3, SubID: uint32(id)}
	return s, d.end()
}

// decodeMessage decodes a message body (withTopic) or a retained message
// (the topic is its key, set by the caller). The returned slices point into b.
func decodeMessage(b []byte, withTopic bool) (Message, error) {
	d := newDecoder(b, "message")
	m, err := d.message(withTopic)
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

func (d *decoder) message(withTopic bool) (Message, error) {
	flags := d.byte()
	if d.err == nil {
		switch {
		case flags&3 == 3 || flags>>4 != 0:
			d.fail(fmt.Sprintf("bad flags 0x%02x", flags))
		case withTopic != (flags&msgHasTopic != 0):
			d.fail("topic presence does not match the record kind")
		}
	}
	m := Message{QoS: flags & 3, Retain: flags&msgRetain != 0}
	m.Created = d.varint()
	m.ExpireAt = d.varint()
	m.Origin = d.uvarint()
	if withTopic {
		m.Topic = d.bytes()
	}
	m.Props = d.bytes()
	m.Payload = d.rest()
	return m, d.err
}

func decodeQueueEntry(b []byte) (QueueEntry, error) {
	d := newDecoder(b, "queue entry")
	flags := d.byte()
	if d.err == nil && (flags&3 == 3 || (flags>>3)&3 == 3 || flags>>5 != 0) {
		d.fail(fmt.Sprintf("bad flags 0x%02x", flags))
	}
	e := QueueEntry{QoS: flags & 3, Retain: flags&(1<<2) != 0, State: QueueState((flags >> 3) & 3)}
	e.MsgID = d.uvarint()
	e.PacketID = uint16(d.uint(1<<16-1, "packet id"))
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) { // each id takes at least a byte
		d.fail(fmt.Sprintf("%d subscription ids in %d bytes", n, len(d.b)))
	}
	if d.err == nil && n > 0 {
		e.SubIDs = make([]uint32, n)
		for i := range e.SubIDs {
			e.SubIDs[i] = uint32(d.uint(1<<32-1, "subscription id"))
		}
	}
	if err := d.end(); err != nil {
		return QueueEntry{}, err
	}
	return e, nil
}

func decodeInbound(b []byte) (at int64, err error) {
	d := newDecoder(b, "inbound qos2")
	at = d.varint()
	return at, d.end()
}

func decodeWill(b []byte) (Will, error) {
	d := newDecoder(b, "will")
	w := Will{Delay: uint32(d.uint(1<<32-1, "delay"))}
	if d.byte() != recordVersion && d.err == nil {
		d.fail("bad message version")
	}
	var err error
	if w.Msg, err = d.message(true); err != nil {
		return Will{}, err
	}
	return w, nil
}

func decodeLogRecord(b []byte) (LogRecord, error) {
	d := newDecoder(b, "log record")
	r := LogRecord{Kind: Kind(d.byte()), QoS: d.byte()}
	r.Time = d.varint()
	r.Size = uint32(d.uint(1<<32-1, "size"))
	r.ClientID = d.bytes()
	r.Topic = d.bytes()
	if d.err == nil && r.QoS > 2 {
		d.fail(fmt.Sprintf("qos %d", r.QoS))
	}
	return r, d.end()
}

func decodeCounters(b []byte) (counters, error) {
	d := newDecoder(b, "counters")
	c := counters{NextMsgID: d.uvarint(), NextSeq: d.uvarint(), LogSeq: d.uvarint(), Time: d.varint()}
	return c, d.end()
}
