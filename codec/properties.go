package codec

import "math/bits"

// PropertyID is a 5.0 property identifier (section 2.2.2.2).
type PropertyID byte

// Property identifiers.
const (
	PropPayloadFormat        PropertyID = 0x01
	PropMessageExpiry        PropertyID = 0x02
	PropContentType          PropertyID = 0x03
	PropResponseTopic        PropertyID = 0x08
	PropCorrelationData      PropertyID = 0x09
	PropSubscriptionID       PropertyID = 0x0B
	PropSessionExpiry        PropertyID = 0x11
	PropAssignedClientID     PropertyID = 0x12
	PropServerKeepAlive      PropertyID = 0x13
	PropAuthMethod           PropertyID = 0x15
	PropAuthData             PropertyID = 0x16
	PropRequestProblemInfo   PropertyID = 0x17
	PropWillDelay            PropertyID = 0x18
	PropRequestResponseInfo  PropertyID = 0x19
	PropResponseInfo         PropertyID = 0x1A
	PropServerReference      PropertyID = 0x1C
	PropReasonString         PropertyID = 0x1F
	PropReceiveMaximum       PropertyID = 0x21
	PropTopicAliasMaximum    PropertyID = 0x22
	PropTopicAlias           PropertyID = 0x23
	PropMaximumQoS           PropertyID = 0x24
	PropRetainAvailable      PropertyID = 0x25
	PropUser                 PropertyID = 0x26
	PropMaximumPacketSize    PropertyID = 0x27
	PropWildcardSubAvailable PropertyID = 0x28
	PropSubIDAvailable       PropertyID = 0x29
	PropSharedSubAvailable   PropertyID = 0x2A
)

// propWill is the context bit of the will properties in a CONNECT payload;
// packet types take bits 1..15.
const propWill = 16

type propKind byte

const (
	kindByte propKind = iota + 1
	kindUint16
	kindUint32
	kindVarint
	kindString
	kindBinary
	kindPair
)

type propSpec struct {
	kind    propKind
	allowed uint32 // bit t set when the property may appear in packet type t
}

func in(ts ...int) uint32 {
	var m uint32
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

const (
	tConnect, tConnack, tPublish, tPuback, tPubrec, tPubrel, tPubcomp = 1, 2, 3, 4, 5, 6, 7
	tSubscribe, tSuback, tUnsubscribe, tUnsuback, tDisconnect, tAuth  = 8, 9, 10, 11, 14, 15
)

// propSpecs is the table of section 2.2.2.2: each property's wire type and the
// packets it may appear in. An identifier outside this table, or in a packet it
// is not listed for, makes the packet malformed.
var propSpecs = [0x2B]propSpec{
	PropPayloadFormat:        {kindByte, in(tPublish, propWill)},
	PropMessageExpiry:        {kindUint32, in(tPublish, propWill)},
	PropContentType:          {kindString, in(tPublish, propWill)},
	PropResponseTopic:        {kindString, in(tPublish, propWill)},
	PropCorrelationData:      {kindBinary, in(tPublish, propWill)},
	PropSubscriptionID:       {kindVarint, in(tPublish, tSubscribe)},
	PropSessionExpiry:        {kindUint32, in(tConnect, tConnack, tDisconnect)},
	PropAssignedClientID:     {kindString, in(tConnack)},
	PropServerKeepAlive:      {kindUint16, in(tConnack)},
	PropAuthMethod:           {kindString, in(tConnect, tConnack, tAuth)},
	PropAuthData:             {kindBinary, in(tConnect, tConnack, tAuth)},
	PropRequestProblemInfo:   {kindByte, in(tConnect)},
	PropWillDelay:            {kindUint32, in(propWill)},
	PropRequestResponseInfo:  {kindByte, in(tConnect)},
	PropResponseInfo:         {kindString, in(tConnack)},
	PropServerReference:      {kindString, in(tConnack, tDisconnect)},
	PropReasonString:         {kindString, in(tConnack, tPuback, tPubrec, tPubrel, tPubcomp, tSuback, tUnsuback, tDisconnect, tAuth)},
	PropReceiveMaximum:       {kindUint16, in(tConnect, tConnack)},
	PropTopicAliasMaximum:    {kindUint16, in(tConnect, tConnack)},
	PropTopicAlias:           {kindUint16, in(tPublish)},
	PropMaximumQoS:           {kindByte, in(tConnack)},
	PropRetainAvailable:      {kindByte, in(tConnack)},
	PropUser:                 {kindPair, in(tConnect, tConnack, tPublish, propWill, tPuback, tPubrec, tPubrel, tPubcomp, tSubscribe, tSuback, tUnsubscribe, tUnsuback, tDisconnect, tAuth)},
	PropMaximumPacketSize:    {kindUint32, in(tConnect, tConnack)},
	PropWildcardSubAvailable: {kindByte, in(tConnack)},
	PropSubIDAvailable:       {kindByte, in(tConnack)},
	PropSharedSubAvailable:   {kindByte, in(tConnack)},
}

// StringPair is a User Property: a name and a value, both UTF-8 strings, both
// views into the decoded buffer.
type StringPair struct {
	Key, Value []byte
}

// Properties holds the 5.0 properties of one packet (or of a will). Which
// properties are present is tracked separately from their values, because
// for many of them an explicit 0 differs from absence (Maximum QoS 0, Retain
// Available 0, Server Keep Alive 0, ...). Decoding sets presence; to encode a
// property call its Set method, or set the field and Mark it.
//
// Byte slices are views into the decoded buffer. User holds the User
// Properties in the order they appeared, repeats included (MQTT-3.3.2-17).
// SubscriptionIDs holds every Subscription Identifier of a PUBLISH sent to a
// client (one per matching subscription, MQTT-3.3.4-3); a SUBSCRIBE carries at
// most one.
type Properties struct {
	present uint64 // bit id set when property id is present

	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          []byte
	ResponseTopic        []byte
	CorrelationData      []byte
	SubscriptionIDs      []uint32
	SessionExpiry        uint32
	AssignedClientID     []byte
	ServerKeepAlive      uint16
	AuthMethod           []byte
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         []byte
	ServerReference      []byte
	ReasonString         []byte
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	User                 []StringPair
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
}

// Has reports whether property id is present.
func (p *Properties) Has(id PropertyID) bool { return p.present&(1<<id) != 0 }

// Mark records property id as present, for a field set directly. Identifiers
// the specification does not define are ignored.
func (p *Properties) Mark(id PropertyID) {
	if int(id) < len(propSpecs) && propSpecs[id].kind != 0 {
		p.present |= 1 << id
	}
}

// Unmark removes property id, so that it is not encoded.
func (p *Properties) Unmark(id PropertyID) { p.present &^= 1 << id }

// Empty reports whether no property is present.
func (p *Properties) Empty() bool { return p.present == 0 }

// Reset clears every property and keeps the capacity of User and
// SubscriptionIDs.
func (p *Properties) Reset() {
	if p.present == 0 && len(p.User) == 0 && len(p.SubscriptionIDs) == 0 {
		return
	}
	*p = Properties{User: p.User[:0], SubscriptionIDs: p.SubscriptionIDs[:0]}
}

// AddUser appends a User Property.
func (p *Properties) AddUser(key, value []byte) {
	p.User = append(p.User, StringPair{key, value})
	p.Mark(PropUser)
}

// AddSubscriptionID appends a Subscription Identifier.
func (p *Properties) AddSubscriptionID(id uint32) {
	p.SubscriptionIDs = append(p.SubscriptionIDs, id)
	p.Mark(PropSubscriptionID)
}

// Setters mark the property present and set its value.
func (p *Properties) SetPayloadFormat(v byte)     { p.PayloadFormat = v; p.Mark(PropPayloadFormat) }
func (p *Properties) SetMessageExpiry(v uint32)   { p.MessageExpiry = v; p.Mark(PropMessageExpiry) }
func (p *Properties) SetContentType(v []byte)     { p.ContentType = v; p.Mark(PropContentType) }
func (p *Properties) SetResponseTopic(v []byte)   { p.ResponseTopic = v; p.Mark(PropResponseTopic) }
func (p *Properties) SetCorrelationData(v []byte) { p.CorrelationData = v; p.Mark(PropCorrelationData) }
func (p *Properties) SetSessionExpiry(v uint32)   { p.SessionExpiry = v; p.Mark(PropSessionExpiry) }
func (p *Properties) SetAssignedClientID(v []byte) {
	p.AssignedClientID = v
	p.Mark(PropAssignedClientID)
}
func (p *Properties) SetServerKeepAlive(v uint16) { p.ServerKeepAlive = v; p.Mark(PropServerKeepAlive) }
func (p *Properties) SetAuthMethod(v []byte)      { p.AuthMethod = v; p.Mark(PropAuthMethod) }
func (p *Properties) SetAuthData(v []byte)        { p.AuthData = v; p.Mark(PropAuthData) }
func (p *Properties) SetRequestProblemInfo(v byte) {
	p.RequestProblemInfo = v
	p.Mark(PropRequestProblemInfo)
}
func (p *Properties) SetWillDelay(v uint32) { p.WillDelay = v; p.Mark(PropWillDelay) }
func (p *Properties) SetRequestResponseInfo(v byte) {
	p.RequestResponseInfo = v
	p.Mark(PropRequestResponseInfo)
}
func (p *Properties) SetResponseInfo(v []byte)    { p.ResponseInfo = v; p.Mark(PropResponseInfo) }
func (p *Properties) SetServerReference(v []byte) { p.ServerReference = v; p.Mark(PropServerReference) }
func (p *Properties) SetReasonString(v []byte)    { p.ReasonString = v; p.Mark(PropReasonString) }
func (p *Properties) SetReceiveMaximum(v uint16)  { p.ReceiveMaximum = v; p.Mark(PropReceiveMaximum) }
func (p *Properties) SetTopicAliasMaximum(v uint16) {
	p.TopicAliasMaximum = v
	p.Mark(PropTopicAliasMaximum)
}
func (p *Properties) SetTopicAlias(v uint16)    { p.TopicAlias = v; p.Mark(PropTopicAlias) }
func (p *Properties) SetMaximumQoS(v byte)      { p.MaximumQoS = v; p.Mark(PropMaximumQoS) }
func (p *Properties) SetRetainAvailable(v byte) { p.RetainAvailable = v; p.Mark(PropRetainAvailable) }
func (p *Properties) SetMaximumPacketSize(v uint32) {
	p.MaximumPacketSize = v
	p.Mark(PropMaximumPacketSize)
}
func (p *Properties) SetWildcardSubAvailable(v byte) {
	p.WildcardSubAvailable = v
	p.Mark(PropWildcardSubAvailable)
}
func (p *Properties) SetSubIDAvailable(v byte) { p.SubIDAvailable = v; p.Mark(PropSubIDAvailable) }
func (p *Properties) SetSharedSubAvailable(v byte) {
	p.SharedSubAvailable = v
	p.Mark(PropSharedSubAvailable)
}

// decode reads a property length and the properties that follow it, for a
// packet of type ctx (or propWill), checking placement, the at-most-once rule
// and value ranges.
func (p *Properties) decode(r *reader, ctx int) error {
	p.Reset()
	n, err := r.varint()
	if err != nil {
		return err
	}
	if n > r.left() {
		return ErrPropertyLength
	}
	pr := reader{b: r.b[r.pos : r.pos+n]}
	r.pos += n
	for pr.left() > 0 {
		idv, err := pr.varint()
		if err != nil {
			return err
		}
		if idv >= len(propSpecs) || propSpecs[idv].allowed&(1<<ctx) == 0 {
			return ErrPropertyUnknown
		}
		id := PropertyID(idv)
		repeatable := id == PropUser || (id == PropSubscriptionID && ctx == tPublish)
		if p.Has(id) && !repeatable {
			return ErrPropertyDuplicate
		}
		p.Mark(id)
		if err := p.decodeValue(&pr, id); err != nil {
			return err
		}
	}
	return nil
}

func (p *Properties) decodeValue(r *reader, id PropertyID) error {
	var err error
	switch propSpecs[id].kind {
	case kindByte:
		var v byte
		if v, err = r.byte(); err != nil {
			return err
		}
		if v > 1 { // each is defined only for 0 and 1; other values are Protocol Errors (3.1.2.11, 3.2.2.3), Payload Format too by analogy
			return ErrPropertyValue
		}
		switch id {
		case PropPayloadFormat:
			p.PayloadFormat = v
		case PropRequestProblemInfo:
			p.RequestProblemInfo = v
		case PropRequestResponseInfo:
			p.RequestResponseInfo = v
		case PropMaximumQoS:
			p.MaximumQoS = v
		case PropRetainAvailable:
			p.RetainAvailable = v
		case PropWildcardSubAvailable:
			p.WildcardSubAvailable = v
		case PropSubIDAvailable:
			p.SubIDAvailable = v
		case PropSharedSubAvailable:
			p.SharedSubAvailable = v
		}
	case kindUint16:
		var v uint16
		if v, err = r.uint16(); err != nil {
			return err
		}
		switch id {
		case PropServerKeepAlive:
			p.ServerKeepAlive = v
		case PropReceiveMaximum:
			if v == 0 { // 3.1.2.11.3, 3.2.2.3.3: a Receive Maximum of 0 is a Protocol Error
				return ErrPropertyValue
			}
			p.ReceiveMaximum = v
		case PropTopicAliasMaximum:
			p.TopicAliasMaximum = v
		case PropTopicAlias:
			if v == 0 {
				return ErrTopicAliasZero
			}
			p.TopicAlias = v
		}
	case kindUint32:
		var v uint32
		if v, err = r.uint32(); err != nil {
			return err
		}
		switch id {
		case PropMessageExpiry:
			p.MessageExpiry = v
		case PropSessionExpiry:
			p.SessionExpiry = v
		case PropWillDelay:
			p.WillDelay = v
		case PropMaximumPacketSize:
			if v == 0 {
				return ErrPropertyValue
			}
			p.MaximumPacketSize = v
		}
	case kindVarint: // only Subscription Identifier
		var v int
		if v, err = r.varint(); err != nil {
			return err
		}
		if v == 0 {
			return ErrSubscriptionIDZero
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, uint32(v))
	case kindString:
		var v []byte
		if v, err = r.string(); err != nil {
			return err
		}
		switch id {
		case PropContentType:
			p.ContentType = v
		case PropResponseTopic:
			if len(v) == 0 { // a Response Topic is a topic name (MQTT-4.7.3-1)
				return ErrTopicNameEmpty
			}
			if err := ValidateTopicName(v); err != nil { // MQTT-3.3.2-13, MQTT-3.3.2-14
				return err
			}
			p.ResponseTopic = v
		case PropAssignedClientID:
			p.AssignedClientID = v
		case PropAuthMethod:
			p.AuthMethod = v
		case PropResponseInfo:
			p.ResponseInfo = v
		case PropServerReference:
			p.ServerReference = v
		case PropReasonString:
			p.ReasonString = v
		}
	case kindBinary:
		var v []byte
		if v, err = r.binary(); err != nil {
			return err
		}
		if id == PropCorrelationData {
			p.CorrelationData = v
		} else {
			p.AuthData = v
		}
	case kindPair:
		k, err := r.string()
		if err != nil {
			return err
		}
		v, err := r.string()
		if err != nil {
			return err
		}
		p.User = append(p.User, StringPair{k, v})
	}
	return nil
}

// size returns the encoded length of the properties, without the property
// length prefix.
func (p *Properties) size() int {
	if p.present == 0 {
		return 0
	}
	n := 0
	for m := p.present; m != 0; m &= m - 1 {
		id := PropertyID(bits.TrailingZeros64(m))
		switch propSpecs[id].kind {
		case kindByte:
			n += 2
		case kindUint16:
			n += 3
		case kindUint32:
			n += 5
		case kindVarint:
			for _, v := range p.SubscriptionIDs {
				n += 1 + varintSize(int(v))
			}
		case kindString, kindBinary:
			n += 3 + len(p.bytesOf(id))
		case kindPair:
			for _, u := range p.User {
				n += 5 + len(u.Key) + len(u.Value)
			}
		}
	}
	return n
}

// encodedSize returns the length of the property length prefix plus the
// properties.
func (p *Properties) encodedSize() int {
	n := p.size()
	return varintSize(n) + n
}

func (p *Properties) bytesOf(id PropertyID) []byte {
	switch id {
	case PropContentType:
		return p.ContentType
	case PropResponseTopic:
		return p.ResponseTopic
	case PropCorrelationData:
		return p.CorrelationData
	case PropAssignedClientID:
		return p.AssignedClientID
	case PropAuthMethod:
		return p.AuthMethod
	case PropAuthData:
		return p.AuthData
	case PropResponseInfo:
		return p.ResponseInfo
	case PropServerReference:
		return p.ServerReference
	case PropReasonString:
		return p.ReasonString
	}
	return nil
}

func (p *Properties) byteOf(id PropertyID) byte {
	switch id {
	case PropPayloadFormat:
		return p.PayloadFormat
	case PropRequestProblemInfo:
		return p.RequestProblemInfo
	case PropRequestResponseInfo:
		return p.RequestResponseInfo
	case PropMaximumQoS:
		return p.MaximumQoS
	case PropRetainAvailable:
		return p.RetainAvailable
	case PropWildcardSubAvailable:
		return p.WildcardSubAvailable
	case PropSubIDAvailable:
		return p.SubIDAvailable
	}
	return p.SharedSubAvailable
}

func (p *Properties) uint16Of(id PropertyID) uint16 {
	switch id {
	case PropServerKeepAlive:
		return p.ServerKeepAlive
	case PropReceiveMaximum:
		return p.ReceiveMaximum
	case PropTopicAliasMaximum:
		return p.TopicAliasMaximum
	}
	return p.TopicAlias
}

func (p *Properties) uint32Of(id PropertyID) uint32 {
	switch id {
	case PropMessageExpiry:
		return p.MessageExpiry
	case PropSessionExpiry:
		return p.SessionExpiry
	case PropWillDelay:
		return p.WillDelay
	}
	return p.MaximumPacketSize
}

// check verifies that every present string and binary value fits the wire
// format, so that append cannot write a corrupt length.
func (p *Properties) check() error {
	if p.present == 0 {
		return nil
	}
	for m := p.present; m != 0; m &= m - 1 {
		id := PropertyID(bits.TrailingZeros64(m))
		switch propSpecs[id].kind {
		case kindString, kindBinary:
			if len(p.bytesOf(id)) > 65535 {
				return errStringTooLong
			}
		case kindPair:
			for _, u := range p.User {
				if len(u.Key) > 65535 || len(u.Value) > 65535 {
					return errStringTooLong
				}
			}
		case kindVarint:
			for _, v := range p.SubscriptionIDs {
				if v > MaxVarint {
					return ErrVarintTooLarge
				}
			}
		}
	}
	return nil
}

// append writes the property length and the properties, in identifier order,
// given size == p.size().
func (p *Properties) append(dst []byte, size int) []byte {
	return p.appendBody(appendVarint(dst, size))
}

// appendBody writes the properties without their length prefix.
func (p *Properties) appendBody(dst []byte) []byte {
	if p.present == 0 {
		return dst
	}
	for m := p.present; m != 0; m &= m - 1 {
		id := PropertyID(bits.TrailingZeros64(m))
		switch propSpecs[id].kind {
		case kindByte:
			dst = append(dst, byte(id), p.byteOf(id))
		case kindUint16:
			dst = appendUint16(append(dst, byte(id)), p.uint16Of(id))
		case kindUint32:
			dst = appendUint32(append(dst, byte(id)), p.uint32Of(id))
		case kindVarint:
			for _, v := range p.SubscriptionIDs {
				dst = appendVarint(append(dst, byte(id)), int(v))
			}
		case kindString, kindBinary:
			dst = appendBinary(append(dst, byte(id)), p.bytesOf(id))
		case kindPair:
			for _, u := range p.User {
				dst = appendBinary(append(dst, byte(id)), u.Key)
				dst = appendBinary(dst, u.Value)
			}
		}
	}
	return dst
}
