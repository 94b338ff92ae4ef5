package codec

// Subscription is one topic filter of a SUBSCRIBE with its options (3.8.3.1).
// Filter is a view into the decoded buffer. Before 5.0 only QoS is meaningful.
type Subscription struct {
	Filter            []byte
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send retained on subscribe, 1 only if new, 2 never
}

const (
	subNoLocal           = 0x04
	subRetainAsPublished = 0x08
)

// Subscribe is a SUBSCRIBE packet (3.8). Decoding checks the structure and
// the UTF-8 of each filter; the filter syntax is the broker's to check with
// ValidateFilter, because 5.0 answers a bad filter in the SUBACK (0x8F)
// rather than by closing the connection.
type Subscribe struct {
	PacketID      uint16
	Props         Properties
	Subscriptions []Subscription
}

func (s *Subscribe) decode(body []byte, version byte) error {
	r := reader{b: body}
	var err error
	if s.PacketID, err = r.packetID(); err != nil {
		return err
	}
	s.Props.Reset()
	if version >= Version5 {
		if err := s.Props.decode(&r, tSubscribe); err != nil {
			return err
		}
	}
	s.Subscriptions = s.Subscriptions[:0]
	for r.left() > 0 {
		var sub Subscription
		if sub.Filter, err = r.string(); err != nil {
			return err
		}
		opts, err := r.byte()
		if err != nil {
			return err
		}
		if version == Version31 {
			opts &= 0x03 // 3.1 leaves the upper bits unused
		}
		sub.QoS = opts & 0x03
		if version < Version5 {
			if opts&^0x03 != 0 || sub.QoS == 3 {
				return ErrSubscribeOptions311
			}
		} else {
			if opts&0xC0 != 0 { // MQTT-3.8.3-5
				return ErrSubscribeOptions
			}
			sub.NoLocal = opts&subNoLocal != 0
			sub.RetainAsPublished = opts&subRetainAsPublished != 0
			sub.RetainHandling = (opts >> 4) & 0x03
			if sub.RetainHandling == 3 {
				return ErrRetainHandling
			}
			if sub.QoS == 3 {
				return ErrSubscribeQoS
			}
			if _, _, shared := SplitShared(sub.Filter); shared && sub.NoLocal {
				return ErrSharedNoLocal
			}
		}
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	if len(s.Subscriptions) == 0 { // MQTT-3.8.3-2 (3.1.1: MQTT-3.8.3-3)
		return ErrNoSubscriptions
	}
	return nil
}

func (s *Subscription) options(version byte) byte {
	o := s.QoS & 0x03
	if version >= Version5 {
		if s.NoLocal {
			o |= subNoLocal
		}
		if s.RetainAsPublished {
			o |= subRetainAsPublished
		}
		o |= (s.RetainHandling & 0x03) << 4
	}
	return o
}

// Append encodes the SUBSCRIBE at protocol level version and appends it to dst.
func (s *Subscribe) Append(dst []byte, version byte) ([]byte, error) {
	n := 2
	for i := range s.Subscriptions {
		if len(s.Subscriptions[i].Filter) > 65535 {
			return dst, errStringTooLong
		}
		n += 3 + len(s.Subscriptions[i].Filter)
	}
	propsSize := 0
	if version >= Version5 {
		if err := s.Props.check(); err != nil {
			return dst, err
		}
		propsSize = s.Props.size()
		n += varintSize(propsSize) + propsSize
	}
	dst, err := appendFixedHeader(dst, byte(SUBSCRIBE)<<4|0x02, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, s.PacketID)
	if version >= Version5 {
		dst = s.Props.append(dst, propsSize)
	}
	for i := range s.Subscriptions {
		dst = appendBinary(dst, s.Subscriptions[i].Filter)
		dst = append(dst, s.Subscriptions[i].options(version))
	}
	return dst, nil
}

// Suback is a SUBACK packet (3.9). ReasonCodes holds one code per filter of
// the SUBSCRIBE, in order, as raw bytes: 5.0 reason codes, or before 5.0 the
// return codes 0, 1, 2 and 0x80 (see SubackReturnCode). When decoded it is a
// view into the buffer.
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []byte
}

func (s *Suback) decode(body []byte, version byte) error {
	r := reader{b: body}
	var err error
	if s.PacketID, err = r.packetID(); err != nil {
		return err
	}
	s.Props.Reset()
	if version >= Version5 {
		if err := s.Props.decode(&r, tSuback); err != nil {
			return err
		}
	}
	s.ReasonCodes = r.rest()
	if len(s.ReasonCodes) == 0 {
		return ErrShortPacket
	}
	for _, c := range s.ReasonCodes {
		if version >= Version5 && !ReasonCode(c).ValidFor(SUBACK) || version < Version5 && !suback311Codes.has(c) {
			return ErrSubackCode
		}
	}
	return nil
}

// Append encodes the SUBACK at protocol level version and appends it to dst.
func (s *Suback) Append(dst []byte, version byte) ([]byte, error) {
	return appendAckList(dst, SUBACK, s.PacketID, &s.Props, s.ReasonCodes, version, true)
}

// Unsubscribe is an UNSUBSCRIBE packet (3.10). Filters are views into the
// decoded buffer, checked for UTF-8 only (see Subscribe).
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  [][]byte
}

func (u *Unsubscribe) decode(body []byte, version byte) error {
	r := reader{b: body}
	var err error
	if u.PacketID, err = r.packetID(); err != nil {
		return err
	}
	u.Props.Reset()
	if version >= Version5 {
		if err := u.Props.decode(&r, tUnsubscribe); err != nil {
			return err
		}
	}
	u.Filters = u.Filters[:0]
	for r.left() > 0 {
		f, err := r.string()
		if err != nil {
			return err
		}
		u.Filters = append(u.Filters, f)
	}
	if len(u.Filters) == 0 { // MQTT-3.10.3-2
		return ErrNoUnsubscriptions
	}
	return nil
}

// Append encodes the UNSUBSCRIBE at protocol level version and appends it to dst.
func (u *Unsubscribe) Append(dst []byte, version byte) ([]byte, error) {
	n := 2
	for _, f := range u.Filters {
		if len(f) > 65535 {
			return dst, errStringTooLong
		}
		n += 2 + len(f)
	}
	propsSize := 0
	if version >= Version5 {
		if err := u.Props.check(); err != nil {
			return dst, err
		}
		propsSize = u.Props.size()
		n += varintSize(propsSize) + propsSize
	}
	dst, err := appendFixedHeader(dst, byte(UNSUBSCRIBE)<<4|0x02, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, u.PacketID)
	if version >= Version5 {
		dst = u.Props.append(dst, propsSize)
	}
	for _, f := range u.Filters {
		dst = appendBinary(dst, f)
	}
	return dst, nil
}

// Unsuback is an UNSUBACK packet (3.11). Before 5.0 it holds only the packet
// id; from 5.0 one reason code per filter of the UNSUBSCRIBE.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []byte
}

func (u *Unsuback) decode(body []byte, version byte) error {
	r := reader{b: body}
	var err error
	if u.PacketID, err = r.packetID(); err != nil {
		return err
	}
	u.Props.Reset()
	u.ReasonCodes = nil
	if version < Version5 {
		if r.left() != 0 {
			return ErrTrailingBytes
		}
		return nil
	}
	if err := u.Props.decode(&r, tUnsuback); err != nil {
		return err
	}
	u.ReasonCodes = r.rest()
	if len(u.ReasonCodes) == 0 {
		return ErrShortPacket
	}
	for _, c := range u.ReasonCodes {
		if !ReasonCode(c).ValidFor(UNSUBACK) {
			return ErrReasonCode
		}
	}
	return nil
}

// Append encodes the UNSUBACK at protocol level version and appends it to dst.
func (u *Unsuback) Append(dst []byte, version byte) ([]byte, error) {
	return appendAckList(dst, UNSUBACK, u.PacketID, &u.Props, u.ReasonCodes, version, false)
}

// appendAckList encodes a SUBACK or UNSUBACK. Before 5.0 an UNSUBACK has no
// payload and a SUBACK has no properties.
func appendAckList(dst []byte, t PacketType, id uint16, props *Properties, codes []byte, version byte, codesBefore5 bool) ([]byte, error) {
	n := 2
	propsSize := 0
	if version >= Version5 {
		if err := props.check(); err != nil {
			return dst, err
		}
		propsSize = props.size()
		n += varintSize(propsSize) + propsSize + len(codes)
	} else if codesBefore5 {
		n += len(codes)
	}
	dst, err := appendFixedHeader(dst, byte(t)<<4, n)
	if err != nil {
		return dst, err
	}
	dst = appendUint16(dst, id)
	if version >= Version5 {
		dst = props.append(dst, propsSize)
		return append(dst, codes...), nil
	}
	if codesBefore5 {
		dst = append(dst, codes...)
	}
	return dst, nil
}
