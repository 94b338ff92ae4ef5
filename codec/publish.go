package codec

// Publish is a PUBLISH packet (3.3). Topic, Payload and the byte slices of
// Props are views into the decoded buffer. Topic may be empty only in a 5.0
// packet that carries a Topic Alias; resolving the alias is the receiver's
// job.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    []byte
	PacketID uint16 // 0 for QoS 0
	Props    Properties
	Payload  []byte
}

const (
	publishDup    = 0x08
	publishRetain = 0x01
)

func (p *Publish) decode(flags byte, body []byte, version byte) error {
	p.Dup = flags&publishDup != 0
	p.QoS = (flags >> 1) & 0x03
	p.Retain = flags&publishRetain != 0
	if p.QoS == 3 {
		return ErrPublishQoS
	}
	if p.Dup && p.QoS == 0 && version != Version31 { // 3.1 does not forbid it
		return ErrPublishDupQoS0
	}
	r := reader{b: body}
	var err error
	if p.Topic, err = r.binary(); err != nil {
		return err
	}
	if err := ValidateTopicName(p.Topic); err != nil {
		return err
	}
	p.PacketID = 0
	if p.QoS > 0 {
		if p.PacketID, err = r.packetID(); err != nil {
			return err
		}
	}
	p.Props.Reset()
	if version >= Version5 {
		if err := p.Props.decode(&r, tPublish); err != nil {
			return err
		}
		if len(p.Topic) == 0 && !p.Props.Has(PropTopicAlias) { // 3.3.2.1
			return ErrTopicEmpty
		}
	} else if len(p.Topic) == 0 {
		return ErrTopicNameEmpty
	}
	p.Payload = r.rest()
	return nil
}

// headerSize returns the remaining length minus the payload.
func (p *Publish) headerSize(version byte) int {
	n := 2 + len(p.Topic)
	if p.QoS > 0 {
		n += 2
	}
	if version >= Version5 {
		n += p.Props.encodedSize()
	}
	return n
}

// Size returns the length of the encoded packet at protocol level version,
// for checking it against a peer's Maximum Packet Size before encoding.
func (p *Publish) Size(version byte) int {
	rem := p.headerSize(version) + len(p.Payload)
	return 1 + varintSize(rem) + rem
}

// AppendHeader appends everything of the packet but its payload: the fixed
// header (whose remaining length counts the payload), topic, packet id and
// properties. A broker writes this per subscriber, followed by one payload
// buffer shared by all of them.
func (p *Publish) AppendHeader(dst []byte, version byte) ([]byte, error) {
	if len(p.Topic) > 65535 {
		return dst, errStringTooLong
	}
	if version >= Version5 {
		if err := p.Props.check(); err != nil {
			return dst, err
		}
	}
	first := byte(PUBLISH)<<4 | (p.QoS&0x03)<<1
	if p.Dup {
		first |= publishDup
	}
	if p.Retain {
		first |= publishRetain
	}
	propsSize := 0
	n := 2 + len(p.Topic) + len(p.Payload)
	if p.QoS > 0 {
		n += 2
	}
	if version >= Version5 {
		propsSize = p.Props.size()
		n += varintSize(propsSize) + propsSize
	}
	dst, err := appendFixedHeader(dst, first, n)
	if err != nil {
		return dst, err
	}
	dst = appendBinary(dst, p.Topic)
	if p.QoS > 0 {
		dst = appendUint16(dst, p.PacketID)
	}
	if version >= Version5 {
		dst = p.Props.append(dst, propsSize)
	}
	return dst, nil
}

// Append encodes the PUBLISH at protocol level version and appends it to dst.
func (p *Publish) Append(dst []byte, version byte) ([]byte, error) {
	dst, err := p.AppendHeader(dst, version)
	if err != nil {
		return dst, err
	}
	return append(dst, p.Payload...), nil
}

// Ack is one of the four packets that acknowledge a PUBLISH: PUBACK (3.4),
// PUBREC (3.5), PUBREL (3.6) and PUBCOMP (3.7). Before 5.0 they carry only the
// packet id; ReasonCode and Props are then Success and empty.
type Ack struct {
	Type       PacketType
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

func (a *Ack) decode(t PacketType, body []byte, version byte) error {
	a.Type = t
	r := reader{b: body}
	var err error
	if a.PacketID, err = r.packetID(); err != nil {
		return err
	}
	a.ReasonCode = Success
	a.Props.Reset()
	if version >= Version5 && r.left() > 0 { // 3.4.2.1: reason code and properties may be omitted
		c, _ := r.byte()
		a.ReasonCode = ReasonCode(c)
		if !a.ReasonCode.ValidFor(t) {
			return ErrReasonCode
		}
		if r.left() > 0 {
			if err := a.Props.decode(&r, int(t)); err != nil {
				return err
			}
		}
	}
	if r.left() != 0 {
		return ErrTrailingBytes
	}
	return nil
}

// Append encodes the acknowledgement of type a.Type at protocol level version,
// in its shortest form: 5.0 omits a Success reason code and empty properties.
func (a *Ack) Append(dst []byte, version byte) ([]byte, error) {
	first := byte(a.Type) << 4
	if a.Type == PUBREL {
		first |= 0x02 // MQTT-3.6.1-1
	}
	if version < Version5 || (a.ReasonCode == Success && a.Props.Empty()) {
		return append(dst, first, 2, byte(a.PacketID>>8), byte(a.PacketID)), nil
	}
	if a.Props.Empty() {
		return append(dst, first, 3, byte(a.PacketID>>8), byte(a.PacketID), byte(a.ReasonCode)), nil
	}
	if err := a.Props.check(); err != nil {
		return dst, err
	}
	size := a.Props.size()
	dst, err := appendFixedHeader(dst, first, 3+varintSize(size)+size)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, a.PacketID)
	dst = append(dst, byte(a.ReasonCode))
	return a.Props.append(dst, size), nil
}

// PublishHeader is the per-delivery part of an outgoing PUBLISH whose
// forwarded properties were encoded once for all subscribers (RawProps). A
// broker appends one header per subscriber and writes the shared payload
// after it.
type PublishHeader struct {
	Dup           bool
	QoS           byte
	Retain        bool
	Topic         []byte // empty when TopicAlias names an alias already set
	PacketID      uint16
	HasExpiry     bool
	MessageExpiry uint32   // remaining lifetime in seconds, when HasExpiry
	TopicAlias    uint16   // 0 = none
	SubIDs        []uint32 // subscription identifiers of the matching subscriptions
	RawProps      []byte   // encoded properties forwarded unchanged (MQTT-3.3.2-17 and friends)
	PayloadLen    int
}

func (h *PublishHeader) propsSize() int {
	n := len(h.RawProps)
	if h.HasExpiry {
		n += 5
	}
	if h.TopicAlias != 0 {
		n += 3
	}
	for _, id := range h.SubIDs {
		n += 1 + varintSize(int(id))
	}
	return n
}

// Size returns the length of the whole packet, payload included, at
// protocol level version: compare it with the receiver's Maximum Packet Size.
func (h *PublishHeader) Size(version byte) int {
	rem := 2 + len(h.Topic) + h.PayloadLen
	if h.QoS > 0 {
		rem += 2
	}
	if version >= Version5 {
		ps := h.propsSize()
		rem += varintSize(ps) + ps
	}
	return 1 + varintSize(rem) + rem
}

// Append appends the fixed header, topic, packet id and properties at
// protocol level version. Before 5.0 no property is written.
func (h *PublishHeader) Append(dst []byte, version byte) ([]byte, error) {
	first := byte(PUBLISH)<<4 | (h.QoS&0x03)<<1
	if h.Dup {
		first |= publishDup
	}
	if h.Retain {
		first |= publishRetain
	}
	rem := 2 + len(h.Topic) + h.PayloadLen
	if h.QoS > 0 {
		rem += 2
	}
	ps := 0
	if version >= Version5 {
		ps = h.propsSize()
		rem += varintSize(ps) + ps
	}
	dst, err := appendFixedHeader(dst, first, rem)
	if err != nil {
		return dst, err
	}
	dst = appendBinary(dst, h.Topic)
	if h.QoS > 0 {
		dst = appendUint16(dst, h.PacketID)
	}
	if version < Version5 {
		return dst, nil
	}
	dst = appendVarint(dst, ps)
	if h.HasExpiry {
		dst = appendUint32(append(dst, byte(PropMessageExpiry)), h.MessageExpiry)
	}
	if h.TopicAlias != 0 {
		dst = appendUint16(append(dst, byte(PropTopicAlias)), h.TopicAlias)
	}
	for _, id := range h.SubIDs {
		dst = appendVarint(append(dst, byte(PropSubscriptionID)), int(id))
	}
	return append(dst, h.RawProps...), nil
}

// AppendForwarded appends, without a length prefix, the properties of an
// incoming PUBLISH that a broker forwards unchanged to subscribers: Payload
// Format Indicator, Content Type, Response Topic, Correlation Data and the
// User Properties in order (MQTT-3.3.2-4, -17, -18, -19, -20). Message Expiry
// Interval, Topic Alias and Subscription Identifier are per delivery and left
// out (see PublishHeader).
func (p *Properties) AppendForwarded(dst []byte) []byte {
	fw := Properties{present: p.present & forwardedMask}
	if fw.present == 0 {
		return dst
	}
	fw.PayloadFormat, fw.ContentType, fw.ResponseTopic = p.PayloadFormat, p.ContentType, p.ResponseTopic
	fw.CorrelationData, fw.User = p.CorrelationData, p.User
	return fw.appendBody(dst)
}

const forwardedMask = 1<<PropPayloadFormat | 1<<PropContentType | 1<<PropResponseTopic |
	1<<PropCorrelationData | 1<<PropUser
