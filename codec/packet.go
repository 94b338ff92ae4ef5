// Package codec is the MQTT wire format for protocol levels 3 (3.1, "MQIsdp"),
// 4 (3.1.1) and 5 (5.0): the 15 control packets, 5.0 properties and reason
// codes, incremental decoding from a byte stream, allocation-free encoding, and
// the validation rules of the specification, each failure mapped to the 5.0
// reason code a broker answers it with.
//
// Decoding is zero-copy: every []byte field of a decoded packet (topic,
// payload, client id, strings and binary data of properties, user properties,
// topic filters, reason code lists) is a view into the buffer passed to
// Decode. Such views are valid only while that buffer is unchanged; a caller
// that keeps any of them past that point must copy it. Decoded packets reuse
// their slices' capacity when decoded into again, so decoding into the same
// Packet allocates nothing in steady state.
//
// The package knows nothing about sockets, sessions or goroutines. A Decoder
// and a Packet belong to one goroutine at a time.
package codec

import "encoding/binary"

// PacketType is the control packet type in the high nibble of the first byte.
type PacketType byte

// Control packet types (section 2.1.2).
const (
	CONNECT     PacketType = 1
	CONNACK     PacketType = 2
	PUBLISH     PacketType = 3
	PUBACK      PacketType = 4
	PUBREC      PacketType = 5
	PUBREL      PacketType = 6
	PUBCOMP     PacketType = 7
	SUBSCRIBE   PacketType = 8
	SUBACK      PacketType = 9
	UNSUBSCRIBE PacketType = 10
	UNSUBACK    PacketType = 11
	PINGREQ     PacketType = 12
	PINGRESP    PacketType = 13
	DISCONNECT  PacketType = 14
	AUTH        PacketType = 15
)

var typeNames = [16]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC",
	"PUBREL", "PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
	"PINGRESP", "DISCONNECT", "AUTH"}

func (t PacketType) String() string {
	if t < 16 {
		return typeNames[t]
	}
	return "INVALID"
}

// Protocol levels (the Protocol Version byte of CONNECT).
const (
	Version31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	Version311 byte = 4 // MQTT 3.1.1
	Version5   byte = 5 // MQTT 5.0
)

// MaxPacketSize is the largest packet the wire format can carry: a 1 byte
// fixed header, a 4 byte remaining length and MaxVarint bytes of body.
const MaxPacketSize = 1 + 4 + MaxVarint

// Packet holds one decoded packet of any type. Type says which field is
// meaningful; the others keep stale contents from earlier decodes so that their
// capacity is reused. A Packet is large: keep one per decoding goroutine rather
// than one per packet.
type Packet struct {
	Type        PacketType
	Connect     Connect
	Connack     Connack
	Publish     Publish
	Ack         Ack // PUBACK, PUBREC, PUBREL, PUBCOMP
	Subscribe   Subscribe
	Suback      Suback
	Unsubscribe Unsubscribe
	Unsuback    Unsuback
	Disconnect  Disconnect
	Auth        Auth
	// PINGREQ and PINGRESP have no fields.
}

// Decoder splits a byte stream into packets. The zero value decodes only
// CONNECT; set Version, or let a decoded CONNECT set it, before other packets.
type Decoder struct {
	// Version is the protocol level of the connection. Decoding a valid
	// CONNECT sets it.
	Version byte
	// MaxPacketSize rejects a packet whose total size (fixed header
	// included) exceeds it as soon as the fixed header is read, before its
	// body is buffered. 0 means the wire format's limit.
	MaxPacketSize int
}

// Decode decodes the packet at the start of buf into p and returns how many
// bytes it took. When buf ends before the packet does it returns 0 and
// ErrNeedMore. A packet larger than MaxPacketSize returns 0 and
// ErrPacketTooLarge as soon as its fixed header is complete. Any other error is
// a *Error carrying the reason code to answer with; n is then the packet's
// length when it was complete, else 0, and the connection should be closed.
//
// The fields of p are views into buf (see the package documentation). When
// decoding a CONNECT fails, p.Connect.ProtocolVersion holds the level it
// announced if it got that far, so the caller can answer in that version.
func (d *Decoder) Decode(buf []byte, p *Packet) (n int, err error) {
	if len(buf) < 2 {
		return 0, ErrNeedMore
	}
	remaining, vlen, err := readVarint(buf[1:])
	if err != nil {
		return 0, err
	}
	if vlen == 0 {
		return 0, ErrNeedMore
	}
	total := 1 + vlen + remaining
	if d.MaxPacketSize > 0 && total > d.MaxPacketSize {
		return 0, ErrPacketTooLarge
	}
	if len(buf) < total {
		return 0, ErrNeedMore
	}
	return total, d.decodeBody(buf[0], buf[1+vlen:total], p)
}

func (d *Decoder) decodeBody(first byte, body []byte, p *Packet) error {
	t, flags := PacketType(first>>4), first&0x0f
	p.Type = t
	if t == CONNECT {
		if d.Version != 0 { // MQTT-3.1.0-2; also keeps the level from changing mid-connection
			return ErrSecondConnect
		}
		if flags != 0 {
			return ErrFixedHeaderFlags
		}
		if err := p.Connect.decode(body); err != nil {
			return err
		}
		d.Version = p.Connect.ProtocolVersion
		return nil
	}
	if d.Version == 0 {
		if t == 0 {
			return ErrReservedType
		}
		return ErrNoVersion
	}
	v := d.Version
	if v == Version31 && t != PUBLISH {
		// 3.1 gives acknowledgements a DUP flag and QoS 1 on PUBREL,
		// SUBSCRIBE and UNSUBSCRIBE retries, and leaves the other flags
		// unused: only that QoS is checked (3.1.1 made the flags exact).
		if (t == PUBREL || t == SUBSCRIBE || t == UNSUBSCRIBE) && flags&0x06 != 0x02 {
			return ErrFixedHeaderFlags
		}
		flags = fixedFlags(t)
	}
	switch t {
	case PUBLISH:
		return p.Publish.decode(flags, body, v)
	case PUBREL:
		if flags != 0x02 { // MQTT-3.6.1-1
			return ErrFixedHeaderFlags
		}
		return p.Ack.decode(t, body, v)
	case SUBSCRIBE:
		if flags != 0x02 { // MQTT-3.8.1-1
			return ErrFixedHeaderFlags
		}
		return p.Subscribe.decode(body, v)
	case UNSUBSCRIBE:
		if flags != 0x02 { // MQTT-3.10.1-1
			return ErrFixedHeaderFlags
		}
		return p.Unsubscribe.decode(body, v)
	}
	if flags != 0 { // MQTT-2.1.3-1: the other types have reserved flags 0
		return ErrFixedHeaderFlags
	}
	switch t {
	case CONNACK:
		return p.Connack.decode(body, v)
	case PUBACK, PUBREC, PUBCOMP:
		return p.Ack.decode(t, body, v)
	case SUBACK:
		return p.Suback.decode(body, v)
	case UNSUBACK:
		return p.Unsuback.decode(body, v)
	case PINGREQ, PINGRESP:
		if len(body) != 0 {
			return ErrTrailingBytes
		}
		return nil
	case DISCONNECT:
		return p.Disconnect.decode(body, v)
	case AUTH:
		if v < Version5 {
			return ErrVersionPacket
		}
		return p.Auth.decode(body)
	}
	return ErrReservedType
}

// fixedFlags returns the only flags 3.1.1 and 5.0 allow for a packet type
// other than PUBLISH (MQTT-2.1.3-1).
func fixedFlags(t PacketType) byte {
	if t == PUBREL || t == SUBSCRIBE || t == UNSUBSCRIBE {
		return 0x02
	}
	return 0
}

// Append encodes p, of type p.Type, at protocol level version and appends it
// to dst. CONNECT is encoded at p.Connect.ProtocolVersion whatever version
// says.
func (p *Packet) Append(dst []byte, version byte) ([]byte, error) {
	switch p.Type {
	case CONNECT:
		return p.Connect.Append(dst)
	case CONNACK:
		return p.Connack.Append(dst, version)
	case PUBLISH:
		return p.Publish.Append(dst, version)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		a := p.Ack
		a.Type = p.Type
		return a.Append(dst, version)
	case SUBSCRIBE:
		return p.Subscribe.Append(dst, version)
	case SUBACK:
		return p.Suback.Append(dst, version)
	case UNSUBSCRIBE:
		return p.Unsubscribe.Append(dst, version)
	case UNSUBACK:
		return p.Unsuback.Append(dst, version)
	case PINGREQ, PINGRESP:
		return append(dst, byte(p.Type)<<4, 0), nil
	case DISCONNECT:
		return p.Disconnect.Append(dst, version)
	case AUTH:
		return p.Auth.Append(dst, version)
	}
	return dst, ErrReservedType
}

// AppendPingreq and AppendPingresp append the two-byte keep-alive packets.
func AppendPingreq(dst []byte) []byte  { return append(dst, byte(PINGREQ)<<4, 0) }
func AppendPingresp(dst []byte) []byte { return append(dst, byte(PINGRESP)<<4, 0) }

// reader walks the body of one packet. Every read checks bounds and returns an
// error rather than panicking on short input.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) left() int { return len(r.b) - r.pos }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, ErrShortPacket
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) uint16() (uint16, error) {
	if r.left() < 2 {
		return 0, ErrShortPacket
	}
	v := binary.BigEndian.Uint16(r.b[r.pos:])
	r.pos += 2
	return v, nil
}

func (r *reader) uint32() (uint32, error) {
	if r.left() < 4 {
		return 0, ErrShortPacket
	}
	v := binary.BigEndian.Uint32(r.b[r.pos:])
	r.pos += 4
	return v, nil
}

// packetID reads a Packet Identifier, which is never 0 (MQTT-2.2.1-3).
func (r *reader) packetID() (uint16, error) {
	id, err := r.uint16()
	if err == nil && id == 0 {
		err = ErrPacketIDZero
	}
	return id, err
}

func (r *reader) varint() (int, error) {
	v, n, err := readVarint(r.b[r.pos:])
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, ErrShortPacket
	}
	r.pos += n
	return v, nil
}

// binary reads two-byte-length-prefixed binary data (1.5.6).
func (r *reader) binary() ([]byte, error) {
	n, err := r.uint16()
	if err != nil {
		return nil, err
	}
	if r.left() < int(n) {
		return nil, ErrShortPacket
	}
	b := r.b[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

// string reads a UTF-8 encoded string (1.5.4) and checks it is well formed.
func (r *reader) string() ([]byte, error) {
	b, err := r.binary()
	if err != nil {
		return nil, err
	}
	return b, ValidUTF8(b)
}

func (r *reader) rest() []byte {
	b := r.b[r.pos:len(r.b):len(r.b)]
	r.pos = len(r.b)
	return b
}

func appendUint16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendBinary(dst, b []byte) []byte {
	dst = appendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// errStringTooLong is returned by encoders for a string or binary field over
// 65535 bytes, which the wire format cannot carry.
var errStringTooLong = ErrStringTooLong

// checkLen reports whether every field fits a two-byte length prefix.
func checkLen(fields ...[]byte) error {
	for _, f := range fields {
		if len(f) > 65535 {
			return errStringTooLong
		}
	}
	return nil
}

// appendFixedHeader appends the first byte and the remaining length, or fails
// when the body is larger than the wire format allows.
func appendFixedHeader(dst []byte, first byte, remaining int) ([]byte, error) {
	if remaining > MaxVarint {
		return dst, ErrPacketTooLarge
	}
	return appendVarint(append(dst, first), remaining), nil
}
