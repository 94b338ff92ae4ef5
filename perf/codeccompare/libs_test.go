package codeccompare

import (
	"bytes"
	"fmt"
	"io"

	paho "github.com/eclipse/paho.golang/packets"
	mochi "github.com/mochi-mqtt/server/v2/packets"

	"github.com/tern-mqtt/tern/codec"
)

// Each codec is driven through a decoder and an encoder type holding the
// state it reuses between packets. The benchmarks call decode and encode in
// their loops and the test inspects the same state afterwards, so what is
// measured is what was checked. decode returns how many bytes the packet took.

// pahoSupports reports whether paho.golang can take part in case c.
// paho.golang's packets package speaks only MQTT 5.0: Publish.Unpack,
// Connect.Unpack and Subscribe.Unpack always read a property length, and
// their Buffers methods always write one, so a 3.1.1 packet is misread (the
// first payload byte taken for a property length) and cannot be encoded.
// TestPahoMisreads311 checks this still holds.
func pahoSupports(c *wireCase) bool { return c.version == 5 }

// --- tern ---

// ternDecoder decodes as the broker does: one Decoder and one Packet per
// connection, the Packet's fields left as views into raw. A CONNECT is the
// first packet of a connection and a Decoder refuses a second one
// (MQTT-3.1.0-2), so for CONNECT every decode starts a new connection by
// clearing the Decoder's version.
type ternDecoder struct {
	d       codec.Decoder
	p       codec.Packet
	newConn bool
}

func newTernDecoder(c *wireCase) *ternDecoder {
	if c.msg.kind == kindConnect {
		return &ternDecoder{newConn: true}
	}
	return &ternDecoder{d: codec.Decoder{Version: c.version}}
}

func (t *ternDecoder) decode(raw []byte) (int, error) {
	if t.newConn {
		t.d.Version = 0
	}
	return t.d.Decode(raw, &t.p)
}

func (t *ternDecoder) message() message {
	p := &t.p
	switch p.Type {
	case codec.PUBLISH:
		pub := &p.Publish
		m := message{kind: kindPublish, qos: pub.QoS, topic: string(pub.Topic),
			packetID: pub.PacketID, payload: pub.Payload}
		if pub.Props.Has(codec.PropMessageExpiry) {
			m.expiry = pub.Props.MessageExpiry
		}
		m.contentType = string(pub.Props.ContentType)
		for _, u := range pub.Props.User {
			m.user = append(m.user, [2]string{string(u.Key), string(u.Value)})
		}
		return m
	case codec.CONNECT:
		cn := &p.Connect
		m := message{kind: kindConnect, clean: cn.CleanStart, clientID: string(cn.ClientID),
			keepAlive: cn.KeepAlive}
		if cn.UsernameFlag {
			m.username = string(cn.Username)
		}
		if cn.PasswordFlag {
			m.password = string(cn.Password)
		}
		return m
	case codec.SUBSCRIBE:
		m := message{kind: kindSubscribe, packetID: p.Subscribe.PacketID}
		for _, s := range p.Subscribe.Subscriptions {
			m.filters = append(m.filters, filter{string(s.Filter), s.QoS})
		}
		return m
	}
	return message{kind: byte(p.Type)}
}

// ternEncoder appends into one reused buffer.
type ternEncoder struct {
	p       codec.Packet
	version byte
	buf     []byte
}

func newTernEncoder(c *wireCase) *ternEncoder {
	e := &ternEncoder{version: c.version, buf: make([]byte, 0, len(c.raw))}
	m := &c.msg
	switch m.kind {
	case kindPublish:
		e.p.Type = codec.PUBLISH
		pub := &e.p.Publish
		pub.QoS, pub.Topic, pub.PacketID, pub.Payload = m.qos, []byte(m.topic), m.packetID, m.payload
		if m.expiry != 0 {
			pub.Props.SetMessageExpiry(m.expiry)
		}
		if m.contentType != "" {
			pub.Props.SetContentType([]byte(m.contentType))
		}
		for _, u := range m.user {
			pub.Props.AddUser([]byte(u[0]), []byte(u[1]))
		}
	case kindConnect:
		e.p.Type = codec.CONNECT
		e.p.Connect = codec.Connect{ProtocolVersion: c.version, CleanStart: m.clean,
			KeepAlive: m.keepAlive, ClientID: []byte(m.clientID),
			UsernameFlag: true, Username: []byte(m.username),
			PasswordFlag: true, Password: []byte(m.password)}
	case kindSubscribe:
		e.p.Type = codec.SUBSCRIBE
		e.p.Subscribe.PacketID = m.packetID
		for _, f := range m.filters {
			e.p.Subscribe.Subscriptions = append(e.p.Subscribe.Subscriptions,
				codec.Subscription{Filter: []byte(f.topic), QoS: f.qos})
		}
	}
	return e
}

// encode returns the packet in e's buffer, valid until the next call.
func (e *ternEncoder) encode() ([]byte, error) {
	var err error
	e.buf, err = e.p.Append(e.buf[:0], e.version)
	return e.buf, err
}

// --- paho.golang ---

// pahoDecoder reads with packets.ReadPacket, paho's only entry point for
// decoding a packet of unknown type, from a reused bytes.Reader. ReadPacket
// allocates a new ControlPacket and copies the body on every call.
type pahoDecoder struct {
	r  bytes.Reader
	cp *paho.ControlPacket
}

func (d *pahoDecoder) decode(raw []byte) (int, error) {
	d.r.Reset(raw)
	cp, err := paho.ReadPacket(&d.r)
	if err != nil {
		return 0, err
	}
	d.cp = cp
	return len(raw) - d.r.Len(), nil
}

func (d *pahoDecoder) message() message {
	switch p := d.cp.Content.(type) {
	case *paho.Publish:
		m := message{kind: kindPublish, qos: p.QoS, topic: p.Topic, packetID: p.PacketID,
			payload: p.Payload, contentType: p.Properties.ContentType}
		if p.Properties.MessageExpiry != nil {
			m.expiry = *p.Properties.MessageExpiry
		}
		for _, u := range p.Properties.User {
			m.user = append(m.user, [2]string{u.Key, u.Value})
		}
		return m
	case *paho.Connect:
		m := message{kind: kindConnect, clean: p.CleanStart, clientID: p.ClientID,
			keepAlive: p.KeepAlive}
		if p.UsernameFlag {
			m.username = p.Username
		}
		if p.PasswordFlag {
			m.password = string(p.Password)
		}
		return m
	case *paho.Subscribe:
		m := message{kind: kindSubscribe, packetID: p.PacketID}
		for _, s := range p.Subscriptions {
			m.filters = append(m.filters, filter{s.Topic, s.QoS})
		}
		return m
	}
	return message{kind: d.cp.Type}
}

// pahoEncoder writes with the packet's WriteTo, as paho's client does, into
// a reused bytes.Buffer.
type pahoEncoder struct {
	pk  paho.Packet
	buf bytes.Buffer
}

func newPahoEncoder(c *wireCase) *pahoEncoder {
	e := &pahoEncoder{}
	e.buf.Grow(len(c.raw))
	m := &c.msg
	switch m.kind {
	case kindPublish:
		p := &paho.Publish{QoS: m.qos, Topic: m.topic, PacketID: m.packetID,
			Payload: m.payload, Properties: &paho.Properties{ContentType: m.contentType}}
		if m.expiry != 0 {
			exp := m.expiry
			p.Properties.MessageExpiry = &exp
		}
		for _, u := range m.user {
			p.Properties.User = append(p.Properties.User, paho.User{Key: u[0], Value: u[1]})
		}
		e.pk = p
	case kindConnect:
		e.pk = &paho.Connect{ProtocolName: "MQTT", ProtocolVersion: c.version,
			CleanStart: m.clean, KeepAlive: m.keepAlive, ClientID: m.clientID,
			UsernameFlag: true, Username: m.username,
			PasswordFlag: true, Password: []byte(m.password),
			Properties: &paho.Properties{}}
	case kindSubscribe:
		s := &paho.Subscribe{PacketID: m.packetID, Properties: &paho.Properties{}}
		for _, f := range m.filters {
			s.Subscriptions = append(s.Subscriptions, paho.SubOptions{Topic: f.topic, QoS: f.qos})
		}
		e.pk = s
	}
	return e
}

func (e *pahoEncoder) encode() ([]byte, error) {
	e.buf.Reset()
	_, err := e.pk.WriteTo(&e.buf)
	return e.buf.Bytes(), err
}

// --- mochi ---

// mochiDecoder decodes as mochi's server does in Client.ReadFixedHeader and
// Client.ReadPacket (clients.go): FixedHeader.Decode on the first byte,
// DecodeLength for the remaining length, a zeroed Packet carrying the
// connection's ProtocolVersion, then the decoder of the packet type. The
// server also reads the body into a new slice and decodes a second copy of
// it; here the body is decoded in place, as tern does, so those two copies are
// not measured. The Packet is reused but zeroed each time, as it must be:
// PublishDecode appends user properties to what is there.
type mochiDecoder struct {
	version byte
	r       bytes.Reader
	pk      mochi.Packet
}

func newMochiDecoder(c *wireCase) *mochiDecoder { return &mochiDecoder{version: c.version} }

func (d *mochiDecoder) decode(raw []byte) (int, error) {
	d.r.Reset(raw)
	first, err := d.r.ReadByte()
	if err != nil {
		return 0, err
	}
	var fh mochi.FixedHeader
	if err := fh.Decode(first); err != nil {
		return 0, err
	}
	if fh.Remaining, _, err = mochi.DecodeLength(&d.r); err != nil {
		return 0, err
	}
	start := len(raw) - d.r.Len()
	if len(raw)-start < fh.Remaining {
		return 0, io.ErrUnexpectedEOF
	}
	body := raw[start : start+fh.Remaining]
	d.pk = mochi.Packet{ProtocolVersion: d.version, FixedHeader: fh}
	switch fh.Type {
	case mochi.Publish:
		err = d.pk.PublishDecode(body)
	case mochi.Connect:
		err = d.pk.ConnectDecode(body)
	case mochi.Subscribe:
		err = d.pk.SubscribeDecode(body)
	default:
		err = fmt.Errorf("packet type %d not in the comparison", fh.Type)
	}
	return start + fh.Remaining, err
}

func (d *mochiDecoder) message() message {
	pk := &d.pk
	switch pk.FixedHeader.Type {
	case mochi.Publish:
		m := message{kind: kindPublish, qos: pk.FixedHeader.Qos, topic: pk.TopicName,
			packetID: pk.PacketID, payload: pk.Payload,
			expiry: pk.Properties.MessageExpiryInterval, contentType: pk.Properties.ContentType}
		for _, u := range pk.Properties.User {
			m.user = append(m.user, [2]string{u.Key, u.Val})
		}
		return m
	case mochi.Connect:
		cn := &pk.Connect
		m := message{kind: kindConnect, clean: cn.Clean, clientID: cn.ClientIdentifier,
			keepAlive: cn.Keepalive}
		if cn.UsernameFlag {
			m.username = string(cn.Username)
		}
		if cn.PasswordFlag {
			m.password = string(cn.Password)
		}
		return m
	case mochi.Subscribe:
		m := message{kind: kindSubscribe, packetID: pk.PacketID}
		for _, s := range pk.Filters {
			m.filters = append(m.filters, filter{s.Filter, s.Qos})
		}
		return m
	}
	return message{kind: pk.FixedHeader.Type}
}

// mochiEncoder encodes with the Packet's encoder of its type into a reused
// bytes.Buffer. (The server's WritePacket allocates a new buffer per packet.)
// Mods is left zero: no maximum packet size, problem information allowed.
type mochiEncoder struct {
	pk  mochi.Packet
	buf bytes.Buffer
}

func newMochiEncoder(c *wireCase) *mochiEncoder {
	e := &mochiEncoder{}
	e.buf.Grow(len(c.raw))
	m := &c.msg
	e.pk.ProtocolVersion = c.version
	switch m.kind {
	case kindPublish:
		e.pk.FixedHeader = mochi.FixedHeader{Type: mochi.Publish, Qos: m.qos}
		e.pk.TopicName, e.pk.PacketID, e.pk.Payload = m.topic, m.packetID, m.payload
		e.pk.Properties.MessageExpiryInterval = m.expiry
		e.pk.Properties.ContentType = m.contentType
		for _, u := range m.user {
			e.pk.Properties.User = append(e.pk.Properties.User, mochi.UserProperty{Key: u[0], Val: u[1]})
		}
	case kindConnect:
		e.pk.FixedHeader = mochi.FixedHeader{Type: mochi.Connect}
		e.pk.Connect = mochi.ConnectParams{ProtocolName: []byte("MQTT"), Clean: m.clean,
			Keepalive: m.keepAlive, ClientIdentifier: m.clientID,
			UsernameFlag: true, Username: []byte(m.username),
			PasswordFlag: true, Password: []byte(m.password)}
	case kindSubscribe:
		e.pk.FixedHeader = mochi.FixedHeader{Type: mochi.Subscribe, Qos: 1} // flags 0010
		e.pk.PacketID = m.packetID
		for _, f := range m.filters {
			e.pk.Filters = append(e.pk.Filters, mochi.Subscription{Filter: f.topic, Qos: f.qos})
		}
	}
	return e
}

func (e *mochiEncoder) encode() ([]byte, error) {
	e.buf.Reset()
	var err error
	switch e.pk.FixedHeader.Type {
	case mochi.Publish:
		err = e.pk.PublishEncode(&e.buf)
	case mochi.Connect:
		err = e.pk.ConnectEncode(&e.buf)
	case mochi.Subscribe:
		err = e.pk.SubscribeEncode(&e.buf)
	default:
		err = fmt.Errorf("packet type %d not in the comparison", e.pk.FixedHeader.Type)
	}
	return e.buf.Bytes(), err
}
