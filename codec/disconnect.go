package codec

// Disconnect is a DISCONNECT packet (3.14). Before 5.0 it is empty and only
// a client sends it; from 5.0 either side may, with a reason code.
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

func (d *Disconnect) decode(body []byte, version byte) error {
	d.ReasonCode = NormalDisconnection
	d.Props.Reset()
	if version < Version5 {
		if len(body) != 0 {
			return ErrTrailingBytes
		}
		return nil
	}
	return decodeReasonAndProps(body, DISCONNECT, &d.ReasonCode, &d.Props)
}

// Append encodes the DISCONNECT at protocol level version, in its shortest
// form, and appends it to dst.
func (d *Disconnect) Append(dst []byte, version byte) ([]byte, error) {
	if version < Version5 {
		return append(dst, byte(DISCONNECT)<<4, 0), nil
	}
	return appendReasonAndProps(dst, DISCONNECT, d.ReasonCode, &d.Props, false)
}

// Auth is a 5.0 AUTH packet (3.15), a step of enhanced authentication.
type Auth struct {
	ReasonCode ReasonCode
	Props      Properties
}

func (a *Auth) decode(body []byte) error {
	a.ReasonCode = Success
	a.Props.Reset()
	if err := decodeReasonAndProps(body, AUTH, &a.ReasonCode, &a.Props); err != nil {
		return err
	}
	if len(body) > 0 && !a.Props.Has(PropAuthMethod) { // 3.15.2.2.2, MQTT-4.12.0-2
		return ErrAuthMethodMissing
	}
	return nil
}

// Append encodes the AUTH and appends it to dst. AUTH exists only in 5.0.
func (a *Auth) Append(dst []byte, version byte) ([]byte, error) {
	if version < Version5 {
		return dst, ErrVersionPacket
	}
	return appendReasonAndProps(dst, AUTH, a.ReasonCode, &a.Props, true)
}

// decodeReasonAndProps decodes the body shared by DISCONNECT and AUTH: empty
// for Success, else a reason code and optional properties (3.14.2.1, 3.15.2.1).
func decodeReasonAndProps(body []byte, t PacketType, code *ReasonCode, props *Properties) error {
	if len(body) == 0 {
		return nil
	}
	r := reader{b: body}
	c, _ := r.byte()
	*code = ReasonCode(c)
	if !code.ValidFor(t) {
		return ErrReasonCode
	}
	if r.left() > 0 {
		if err := props.decode(&r, int(t)); err != nil {
			return err
		}
	}
	if r.left() != 0 {
		return ErrTrailingBytes
	}
	return nil
}

// appendReasonAndProps encodes a DISCONNECT or AUTH body. withPropsLen keeps
// the property length byte when a reason code is sent without properties.
func appendReasonAndProps(dst []byte, t PacketType, code ReasonCode, props *Properties, withPropsLen bool) ([]byte, error) {
	first := byte(t) << 4
	if code == Success && props.Empty() {
		return append(dst, first, 0), nil
	}
	if props.Empty() {
		if withPropsLen {
			return append(dst, first, 2, byte(code), 0), nil
		}
		return append(dst, first, 1, byte(code)), nil
	}
	if err := props.check(); err != nil {
		return dst, err
	}
	size := props.size()
	dst, err := appendFixedHeader(dst, first, 1+varintSize(size)+size)
	if err != nil {
		return dst, err
	}
	dst = append(dst, byte(code))
	return props.append(dst, size), nil
}
