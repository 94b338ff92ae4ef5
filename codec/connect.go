package codec

// Connect is a CONNECT packet (3.1). Byte slices are views into the decoded
// buffer. Username and Password are meaningful only when their flags are set:
// an empty user name that is present differs from an absent one.
type Connect struct {
	ProtocolName    []byte // "MQTT", or "MQIsdp" at level 3; nil encodes the right one
	ProtocolVersion byte   // 3, 4 or 5
	CleanStart      bool   // Clean Session before 5.0
	KeepAlive       uint16 // seconds
	Props           Properties
	ClientID        []byte

	Will        bool
	WillQoS     byte
	WillRetain  bool
	WillProps   Properties
	WillTopic   []byte
	WillPayload []byte

	UsernameFlag bool
	Username     []byte
	PasswordFlag bool
	Password     []byte
}

const (
	connectReserved   = 0x01
	connectCleanStart = 0x02
	connectWill       = 0x04
	connectWillRetain = 0x20
	connectPassword   = 0x40
	connectUsername   = 0x80
)

func (c *Connect) decode(body []byte) error {
	r := reader{b: body}
	c.ProtocolVersion = 0
	name, err := r.binary()
	if err != nil {
		return err
	}
	c.ProtocolName = name
	level, err := r.byte()
	if err != nil {
		return err
	}
	c.ProtocolVersion = level
	switch string(name) {
	case "MQTT":
		if level != Version311 && level != Version5 {
			return ErrProtocolVersion // MQTT-3.1.2-2
		}
	case "MQIsdp":
		if level != Version31 {
			return ErrProtocolVersion
		}
	default:
		return ErrProtocolName // MQTT-3.1.2-1
	}
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags&connectReserved != 0 && level != Version31 { // 3.1 leaves the bit unused
		return ErrConnectReserved
	}
	c.CleanStart = flags&connectCleanStart != 0
	c.Will = flags&connectWill != 0
	c.WillQoS = (flags >> 3) & 0x03
	c.WillRetain = flags&connectWillRetain != 0
	c.UsernameFlag = flags&connectUsername != 0
	c.PasswordFlag = flags&connectPassword != 0
	if c.WillQoS == 3 {
		return ErrWillQoS
	}
	if !c.Will && c.WillQoS != 0 {
		return ErrWillFlags
	}
	if !c.Will && c.WillRetain {
		return ErrWillRetain
	}
	if level < Version5 && c.PasswordFlag && !c.UsernameFlag {
		return ErrPasswordNoUsername
	}
	if c.KeepAlive, err = r.uint16(); err != nil {
		return err
	}
	c.Props.Reset()
	if level == Version5 {
		if err := c.Props.decode(&r, tConnect); err != nil {
			return err
		}
		if c.Props.Has(PropAuthData) && !c.Props.Has(PropAuthMethod) { // 3.1.2.11.10
			return ErrAuthDataWithoutMethod
		}
	}
	if c.ClientID, err = r.string(); err != nil {
		return err
	}
	c.WillProps.Reset()
	c.WillTopic, c.WillPayload = nil, nil
	if c.Will {
		if level == Version5 {
			if err := c.WillProps.decode(&r, propWill); err != nil {
				return err
			}
		}
		if c.WillTopic, err = r.string(); err != nil {
			return err
		}
		if len(c.WillTopic) == 0 {
			return ErrTopicNameEmpty
		}
		if err := ValidateTopicName(c.WillTopic); err != nil {
			return err
		}
		if c.WillPayload, err = r.binary(); err != nil {
			return err
		}
	}
	c.Username, c.Password = nil, nil
	if c.UsernameFlag {
		if c.Username, err = r.string(); err != nil {
			return err
		}
	}
	if c.PasswordFlag {
		if c.Password, err = r.binary(); err != nil {
			return err
		}
	}
	if r.left() != 0 {
		return ErrTrailingBytes
	}
	return nil
}

func (c *Connect) protocolName() []byte {
	if c.ProtocolName != nil {
		return c.ProtocolName
	}
	if c.ProtocolVersion == Version31 {
		return []byte("MQIsdp")
	}
	return []byte("MQTT")
}

// Append encodes the CONNECT at c.ProtocolVersion and appends it to dst.
func (c *Connect) Append(dst []byte) ([]byte, error) {
	name := c.protocolName()
	v5 := c.ProtocolVersion >= Version5
	if err := checkLen(name, c.ClientID, c.WillTopic, c.WillPayload, c.Username, c.Password); err != nil {
		return dst, err
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(c.ClientID)
	var propsSize, willPropsSize int
	if v5 {
		if err := c.Props.check(); err != nil {
			return dst, err
		}
		propsSize = c.Props.size()
		n += varintSize(propsSize) + propsSize
	}
	var flags byte
	if c.CleanStart {
		flags |= connectCleanStart
	}
	if c.Will {
		flags |= connectWill | c.WillQoS<<3
		if c.WillRetain {
			flags |= connectWillRetain
		}
		n += 2 + len(c.WillTopic) + 2 + len(c.WillPayload)
		if v5 {
			if err := c.WillProps.check(); err != nil {
				return dst, err
			}
			willPropsSize = c.WillProps.size()
			n += varintSize(willPropsSize) + willPropsSize
		}
	}
	if c.UsernameFlag {
		flags |= connectUsername
		n += 2 + len(c.Username)
	}
	if c.PasswordFlag {
		flags |= connectPassword
		n += 2 + len(c.Password)
	}
	dst, err := appendFixedHeader(dst, byte(CONNECT)<<4, n)
	if err != nil {
		return dst, err
	}
	dst = appendBinary(dst, name)
	dst = append(dst, c.ProtocolVersion, flags)
	dst = appendUint16(dst, c.KeepAlive)
	if v5 {
		dst = c.Props.append(dst, propsSize)
	}
	dst = appendBinary(dst, c.ClientID)
	if c.Will {
		if v5 {
			dst = c.WillProps.append(dst, willPropsSize)
		}
		dst = appendBinary(dst, c.WillTopic)
		dst = appendBinary(dst, c.WillPayload)
	}
	if c.UsernameFlag {
		dst = appendBinary(dst, c.Username)
	}
	if c.PasswordFlag {
		dst = appendBinary(dst, c.Password)
	}
	return dst, nil
}

// Connack is a CONNACK packet (3.2). ReasonCode is a 5.0 reason code at every
// level: 3.1 and 3.1.1 return codes are converted on the wire (see
// ConnackReturnCode), so a refusal that 3.1.1 cannot express is sent as
// "server unavailable".
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Props          Properties
}

func (c *Connack) decode(body []byte, version byte) error {
	r := reader{b: body}
	flags, err := r.byte()
	if err != nil {
		return err
	}
	code, err := r.byte()
	if err != nil {
		return err
	}
	if flags&^1 != 0 || (version == Version31 && flags != 0) { // MQTT-3.2.2-1; 3.1 reserves the whole byte
		return ErrConnackFlags
	}
	c.SessionPresent = flags == 1
	c.Props.Reset()
	if version >= Version5 {
		c.ReasonCode = ReasonCode(code)
		if !c.ReasonCode.ValidFor(CONNACK) {
			return ErrReasonCode
		}
		if err := c.Props.decode(&r, tConnack); err != nil {
			return err
		}
	} else {
		rc, ok := connackReasonFromReturnCode(code)
		if !ok {
			return ErrReturnCode
		}
		c.ReasonCode = rc
	}
	if c.SessionPresent && c.ReasonCode != Success { // MQTT-3.2.2-6 (3.1.1: MQTT-3.2.2-4)
		return ErrConnackSessionPresent
	}
	if r.left() != 0 {
		return ErrTrailingBytes
	}
	return nil
}

// Append encodes the CONNACK at protocol level version and appends it to dst.
func (c *Connack) Append(dst []byte, version byte) ([]byte, error) {
	var flags byte
	if c.SessionPresent && version != Version31 {
		flags = 1
	}
	if version < Version5 {
		return append(dst, byte(CONNACK)<<4, 2, flags, ConnackReturnCode(c.ReasonCode)), nil
	}
	if err := c.Props.check(); err != nil {
		return dst, err
	}
	size := c.Props.size()
	dst, err := appendFixedHeader(dst, byte(CONNACK)<<4, 2+varintSize(size)+size)
	if err != nil {
		return dst, err
	}
	dst = append(dst, flags, byte(c.ReasonCode))
	return c.Props.append(dst, size), nil
}
