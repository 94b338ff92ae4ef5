package codec

// The shared table of raw packet byte cases. The encode tests, the decode
// tests and the fuzz seeds all draw from allCases().
//
// A case with want != nil is valid: decoding raw at version gives want, and
// unless decodeOnly is set, encoding want at version gives raw exactly (the
// canonical form: properties in identifier order, 5.0 acknowledgements in
// their shortest form). A case with want == nil must fail to decode with err.

import (
	"encoding/binary"
	"fmt"
)

type packetCase struct {
	name       string
	version    byte // Decoder.Version before decoding (0 allowed for CONNECT)
	raw        []byte
	want       *Packet
	err        error // with want == nil: the error Decode must return (errors.Is)
	decodeOnly bool  // valid input that is not the canonical encoding of want
	maxSize    int   // Decoder.MaxPacketSize
}

func allCases() []packetCase {
	var all []packetCase
	all = append(all, validCases...)
	all = append(all, malformedCases...)
	return all
}

// Building blocks for raw bytes.
type (
	str string // a two-byte length-prefixed string or binary field
	u16 uint16
	u32 uint32
	vi  int // a variable byte integer
)

// cat concatenates wire fields: int and byte as one byte, string as raw bytes,
// []byte, str, u16, u32 and vi as their wire forms.
func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int:
			b = append(b, byte(v))
		case byte:
			b = append(b, v)
		case string:
			b = append(b, v...)
		case []byte:
			b = append(b, v...)
		case str:
			b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
			b = append(b, v...)
		case u16:
			b = binary.BigEndian.AppendUint16(b, uint16(v))
		case u32:
			b = binary.BigEndian.AppendUint32(b, uint32(v))
		case vi:
			b = appendVarint(b, int(v))
		default:
			panic(fmt.Sprintf("cat: unsupported %T", p))
		}
	}
	return b
}

// pk builds a packet: the first byte, the remaining length computed from the
// body, then the body.
func pk(first int, body ...any) []byte {
	b := cat(body...)
	return cat(first, vi(len(b)), b)
}

// props builds a property section: its length, then the properties.
func props(parts ...any) []byte {
	b := cat(parts...)
	return cat(vi(len(b)), b)
}

func bs(s string) []byte { return []byte(s) }

// mkProps builds a Properties value through its setters.
func mkProps(set func(p *Properties)) Properties {
	var p Properties
	set(&p)
	return p
}

func connectPkt(c Connect) *Packet {
	if c.ProtocolName == nil {
		c.ProtocolName = c.protocolName()
	}
	return &Packet{Type: CONNECT, Connect: c}
}
func connackPkt(c Connack) *Packet         { return &Packet{Type: CONNACK, Connack: c} }
func publishPkt(p Publish) *Packet         { return &Packet{Type: PUBLISH, Publish: p} }
func ackPkt(a Ack) *Packet                 { return &Packet{Type: a.Type, Ack: a} }
func subscribePkt(s Subscribe) *Packet     { return &Packet{Type: SUBSCRIBE, Subscribe: s} }
func subackPkt(s Suback) *Packet           { return &Packet{Type: SUBACK, Suback: s} }
func unsubscribePkt(u Unsubscribe) *Packet { return &Packet{Type: UNSUBSCRIBE, Unsubscribe: u} }
func unsubackPkt(u Unsuback) *Packet       { return &Packet{Type: UNSUBACK, Unsuback: u} }
func disconnectPkt(d Disconnect) *Packet   { return &Packet{Type: DISCONNECT, Disconnect: d} }
func authPkt(a Auth) *Packet               { return &Packet{Type: AUTH, Auth: a} }

var validCases = []packetCase{
	// CONNECT
	{name: "connect/3.1.1 minimal", version: 0,
		raw:  pk(0x10, str("MQTT"), 4, 0x02, u16(60), str("c1")),
		want: connectPkt(Connect{ProtocolVersion: 4, CleanStart: true, KeepAlive: 60, ClientID: bs("c1")})},
	{name: "connect/3.1.1 spec 3.1.2.10 flags 0xCE with will, user and password",
		raw: pk(0x10, str("MQTT"), 4, 0xCE, u16(10), str("cid"), str("w/t"), str("bye"), str("user"), str("pass")),
		want: connectPkt(Connect{ProtocolVersion: 4, CleanStart: true, KeepAlive: 10, ClientID: bs("cid"),
			Will: true, WillQoS: 1, WillTopic: bs("w/t"), WillPayload: bs("bye"),
			UsernameFlag: true, Username: bs("user"), PasswordFlag: true, Password: bs("pass")})},
	{name: "connect/3.1.1 will qos 2 retain, empty client id, empty user name",
		raw: pk(0x10, str("MQTT"), 4, 0xB6, u16(0), str(""), str("a"), str(""), str("")),
		want: connectPkt(Connect{ProtocolVersion: 4, CleanStart: true, ClientID: bs(""),
			Will: true, WillQoS: 2, WillRetain: true, WillTopic: bs("a"), WillPayload: bs(""),
			UsernameFlag: true, Username: bs("")})},
	{name: "connect/3.1 MQIsdp",
		raw:  pk(0x10, str("MQIsdp"), 3, 0x02, u16(30), str("client-31")),
		want: connectPkt(Connect{ProtocolVersion: 3, CleanStart: true, KeepAlive: 30, ClientID: bs("client-31")})},
	{name: "connect/3.1 persistent with user and password",
		raw: pk(0x10, str("MQIsdp"), 3, 0xC0, u16(5), str("p31"), str("u"), str("pw")),
		want: connectPkt(Connect{ProtocolVersion: 3, KeepAlive: 5, ClientID: bs("p31"),
			UsernameFlag: true, Username: bs("u"), PasswordFlag: true, Password: bs("pw")})},
	{name: "connect/5.0 spec 3.1.2.12 session expiry 10",
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(10), props(0x11, u32(10)), str("c5")),
		want: connectPkt(Connect{ProtocolVersion: 5, CleanStart: true, KeepAlive: 10, ClientID: bs("c5"),
			Props: mkProps(func(p *Properties) { p.SetSessionExpiry(10) })})},
	{name: "connect/5.0 every connect and will property",
		raw: pk(0x10, str("MQTT"), 5, 0xF4, u16(30),
			props(0x11, u32(3600), 0x15, str("SCRAM-SHA-256"), 0x16, str("\x01\x02"), 0x17, 0, 0x19, 1,
				0x21, u16(20), 0x22, u16(10), 0x26, str("k"), str("v1"), 0x26, str("k"), str("v2"), 0x27, u32(65536)),
			str("full5"),
			props(0x01, 1, 0x02, u32(100), 0x03, str("text/plain"), 0x08, str("r/t"), 0x09, str("corr"),
				0x18, u32(5), 0x26, str("wk"), str("wv")),
			str("will/topic"), str("gone"), str("user"), str("secret")),
		want: connectPkt(Connect{ProtocolVersion: 5, KeepAlive: 30, ClientID: bs("full5"),
			Props: mkProps(func(p *Properties) {
				p.SetSessionExpiry(3600)
				p.SetAuthMethod(bs("SCRAM-SHA-256"))
				p.SetAuthData([]byte{1, 2})
				p.SetRequestProblemInfo(0)
				p.SetRequestResponseInfo(1)
				p.SetReceiveMaximum(20)
				p.SetTopicAliasMaximum(10)
				p.AddUser(bs("k"), bs("v1"))
				p.AddUser(bs("k"), bs("v2"))
				p.SetMaximumPacketSize(65536)
			}),
			Will: true, WillQoS: 2, WillRetain: true, WillTopic: bs("will/topic"), WillPayload: bs("gone"),
			WillProps: mkProps(func(p *Properties) {
				p.SetPayloadFormat(1)
				p.SetMessageExpiry(100)
				p.SetContentType(bs("text/plain"))
				p.SetResponseTopic(bs("r/t"))
				p.SetCorrelationData(bs("corr"))
				p.SetWillDelay(5)
				p.AddUser(bs("wk"), bs("wv"))
			}),
			UsernameFlag: true, Username: bs("user"), PasswordFlag: true, Password: bs("secret")})},
	{name: "connect/5.0 password without user name is allowed",
		raw:  pk(0x10, str("MQTT"), 5, 0x40, u16(0), props(), str(""), str("tok")),
		want: connectPkt(Connect{ProtocolVersion: 5, ClientID: bs(""), PasswordFlag: true, Password: bs("tok")})},
	{name: "connect/5.0 will without will properties",
		raw: pk(0x10, str("MQTT"), 5, 0x0E, u16(60), props(), str("w5"), props(), str("t"), str("p")),
		want: connectPkt(Connect{ProtocolVersion: 5, CleanStart: true, KeepAlive: 60, ClientID: bs("w5"),
			Will: true, WillQoS: 1, WillTopic: bs("t"), WillPayload: bs("p")})},

	// CONNACK
	{name: "connack/3.1.1 accepted, session present", version: 4,
		raw:  pk(0x20, 0x01, 0x00),
		want: connackPkt(Connack{SessionPresent: true})},
	{name: "connack/3.1.1 refused not authorized", version: 4,
		raw:  pk(0x20, 0x00, 0x05),
		want: connackPkt(Connack{ReasonCode: NotAuthorized})},
	{name: "connack/3.1.1 refused unacceptable protocol version", version: 4,
		raw:  pk(0x20, 0x00, 0x01),
		want: connackPkt(Connack{ReasonCode: UnsupportedProtocolVersion})},
	{name: "connack/3.1 accepted", version: 3,
		raw:  pk(0x20, 0x00, 0x00),
		want: connackPkt(Connack{})},
	{name: "connack/3.1 identifier rejected", version: 3,
		raw:  pk(0x20, 0x00, 0x02),
		want: connackPkt(Connack{ReasonCode: ClientIdentifierNotValid})},
	{name: "connack/5.0 success no properties", version: 5,
		raw:  pk(0x20, 0x00, 0x00, props()),
		want: connackPkt(Connack{})},
	{name: "connack/5.0 every connack property", version: 5,
		raw: pk(0x20, 0x01, 0x00, props(
			0x11, u32(120), 0x12, str("auto-1"), 0x13, u16(30), 0x15, str("m"), 0x16, str("d"),
			0x1A, str("resp"), 0x1C, str("other:1883"), 0x1F, str("welcome"), 0x21, u16(100), 0x22, u16(16),
			0x24, 1, 0x25, 0, 0x26, str("a"), str("b"), 0x27, u32(1<<20), 0x28, 0, 0x29, 0, 0x2A, 1)),
		want: connackPkt(Connack{SessionPresent: true, Props: mkProps(func(p *Properties) {
			p.SetSessionExpiry(120)
			p.SetAssignedClientID(bs("auto-1"))
			p.SetServerKeepAlive(30)
			p.SetAuthMethod(bs("m"))
			p.SetAuthData(bs("d"))
			p.SetResponseInfo(bs("resp"))
			p.SetServerReference(bs("other:1883"))
			p.SetReasonString(bs("welcome"))
			p.SetReceiveMaximum(100)
			p.SetTopicAliasMaximum(16)
			p.SetMaximumQoS(1)
			p.SetRetainAvailable(0)
			p.AddUser(bs("a"), bs("b"))
			p.SetMaximumPacketSize(1 << 20)
			p.SetWildcardSubAvailable(0)
			p.SetSubIDAvailable(0)
			p.SetSharedSubAvailable(1)
		})})},
	{name: "connack/5.0 refused bad user name or password", version: 5,
		raw:  pk(0x20, 0x00, 0x86, props(0x1F, str("no"))),
		want: connackPkt(Connack{ReasonCode: BadUserNameOrPassword, Props: mkProps(func(p *Properties) { p.SetReasonString(bs("no")) })})},

	// PUBLISH
	{name: "publish/3.1.1 qos 0", version: 4,
		raw:  pk(0x30, str("a/b"), "hello"),
		want: publishPkt(Publish{Topic: bs("a/b"), Payload: bs("hello")})},
	{name: "publish/3.1.1 spec 3.3.2.3 qos 1 packet id 10 dup retain", version: 4,
		raw:  pk(0x3B, str("a/b"), u16(10), "x"),
		want: publishPkt(Publish{Dup: true, QoS: 1, Retain: true, Topic: bs("a/b"), PacketID: 10, Payload: bs("x")})},
	{name: "publish/3.1.1 qos 2 empty payload", version: 4,
		raw:  pk(0x34, str("t"), u16(65535)),
		want: publishPkt(Publish{QoS: 2, Topic: bs("t"), PacketID: 65535, Payload: bs("")})},
	{name: "publish/3.1.1 utf-8 topic", version: 4,
		raw:  pk(0x31, str("sensors/température/€"), "\x00\xff"),
		want: publishPkt(Publish{Retain: true, Topic: bs("sensors/température/€"), Payload: []byte{0, 0xff}})},
	{name: "publish/3.1 qos 1", version: 3,
		raw:  pk(0x32, str("old/client"), u16(1), "v31"),
		want: publishPkt(Publish{QoS: 1, Topic: bs("old/client"), PacketID: 1, Payload: bs("v31")})},
	{name: "publish/5.0 qos 0 no properties", version: 5,
		raw:  pk(0x30, str("a/b"), props(), "hello"),
		want: publishPkt(Publish{Topic: bs("a/b"), Payload: bs("hello")})},
	{name: "publish/5.0 qos 1 every publish property", version: 5,
		raw: pk(0x32, str("a/b"), u16(7), props(0x01, 1, 0x02, u32(60), 0x03, str("application/json"),
			0x08, str("reply/here"), 0x09, str("\x00\x01"), 0x0B, vi(1), 0x0B, vi(268435455), 0x23, u16(5),
			0x26, str("k"), str("1"), 0x26, str("k"), str("2")), `{"v":1}`),
		want: publishPkt(Publish{QoS: 1, Topic: bs("a/b"), PacketID: 7, Payload: bs(`{"v":1}`),
			Props: mkProps(func(p *Properties) {
				p.SetPayloadFormat(1)
				p.SetMessageExpiry(60)
				p.SetContentType(bs("application/json"))
				p.SetResponseTopic(bs("reply/here"))
				p.SetCorrelationData([]byte{0, 1})
				p.AddSubscriptionID(1)
				p.AddSubscriptionID(268435455)
				p.SetTopicAlias(5)
				p.AddUser(bs("k"), bs("1"))
				p.AddUser(bs("k"), bs("2"))
			})})},
	{name: "publish/5.0 empty topic with topic alias", version: 5,
		raw: pk(0x30, str(""), props(0x23, u16(3)), "p"),
		want: publishPkt(Publish{Topic: bs(""), Payload: bs("p"),
			Props: mkProps(func(p *Properties) { p.SetTopicAlias(3) })})},
	{name: "publish/5.0 qos 2 retain", version: 5,
		raw:  pk(0x35, str("r"), u16(2), props(), ""),
		want: publishPkt(Publish{QoS: 2, Retain: true, Topic: bs("r"), PacketID: 2, Payload: bs("")})},

	// PUBACK, PUBREC, PUBREL, PUBCOMP
	{name: "puback/3.1.1", version: 4, raw: pk(0x40, u16(1)), want: ackPkt(Ack{Type: PUBACK, PacketID: 1})},
	{name: "pubrec/3.1.1", version: 4, raw: pk(0x50, u16(2)), want: ackPkt(Ack{Type: PUBREC, PacketID: 2})},
	{name: "pubrel/3.1.1", version: 4, raw: pk(0x62, u16(3)), want: ackPkt(Ack{Type: PUBREL, PacketID: 3})},
	{name: "pubcomp/3.1.1", version: 4, raw: pk(0x70, u16(4)), want: ackPkt(Ack{Type: PUBCOMP, PacketID: 4})},
	{name: "puback/3.1", version: 3, raw: pk(0x40, u16(9)), want: ackPkt(Ack{Type: PUBACK, PacketID: 9})},
	{name: "pubrel/3.1", version: 3, raw: pk(0x62, u16(9)), want: ackPkt(Ack{Type: PUBREL, PacketID: 9})},
	{name: "puback/5.0 success short form", version: 5, raw: pk(0x40, u16(1)), want: ackPkt(Ack{Type: PUBACK, PacketID: 1})},
	{name: "puback/5.0 no matching subscribers", version: 5,
		raw: pk(0x40, u16(1), 0x10), want: ackPkt(Ack{Type: PUBACK, PacketID: 1, ReasonCode: NoMatchingSubscribers})},
	{name: "puback/5.0 explicit success and empty properties", version: 5, decodeOnly: true,
		raw: pk(0x40, u16(1), 0x00, 0x00), want: ackPkt(Ack{Type: PUBACK, PacketID: 1})},
	{name: "pubrec/5.0 quota exceeded with reason string", version: 5,
		raw: pk(0x50, u16(300), 0x97, props(0x1F, str("full"), 0x26, str("k"), str("v"))),
		want: ackPkt(Ack{Type: PUBREC, PacketID: 300, ReasonCode: QuotaExceeded, Props: mkProps(func(p *Properties) {
			p.SetReasonString(bs("full"))
			p.AddUser(bs("k"), bs("v"))
		})})},
	{name: "pubrel/5.0 packet identifier not found", version: 5,
		raw: pk(0x62, u16(5), 0x92), want: ackPkt(Ack{Type: PUBREL, PacketID: 5, ReasonCode: PacketIdentifierNotFound})},
	{name: "pubcomp/5.0 success", version: 5, raw: pk(0x70, u16(6)), want: ackPkt(Ack{Type: PUBCOMP, PacketID: 6})},

	// SUBSCRIBE, SUBACK
	{name: "subscribe/3.1.1 two filters", version: 4,
		raw: pk(0x82, u16(10), str("a/+"), 0, str("b/#"), 2),
		want: subscribePkt(Subscribe{PacketID: 10, Subscriptions: []Subscription{
			{Filter: bs("a/+"), QoS: 0}, {Filter: bs("b/#"), QoS: 2}}})},
	{name: "subscribe/3.1 one filter", version: 3,
		raw:  pk(0x82, u16(1), str("#"), 1),
		want: subscribePkt(Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: bs("#"), QoS: 1}}})},
	{name: "subscribe/5.0 options, subscription id, shared filter", version: 5,
		raw: pk(0x82, u16(11), props(0x0B, vi(42), 0x26, str("k"), str("v")),
			str("x/y"), 0x2E, str("$share/g/s/#"), 0x01),
		want: subscribePkt(Subscribe{PacketID: 11,
			Props: mkProps(func(p *Properties) { p.AddSubscriptionID(42); p.AddUser(bs("k"), bs("v")) }),
			Subscriptions: []Subscription{
				{Filter: bs("x/y"), QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
				{Filter: bs("$share/g/s/#"), QoS: 1}}})},
	{name: "suback/3.1.1", version: 4,
		raw:  pk(0x90, u16(10), 0, 1, 2, 0x80),
		want: subackPkt(Suback{PacketID: 10, ReasonCodes: []byte{0, 1, 2, 0x80}})},
	{name: "suback/5.0 with reason string", version: 5,
		raw: pk(0x90, u16(11), props(0x1F, str("partly")), 0x02, 0x8F, 0x9E, 0xA1, 0xA2),
		want: subackPkt(Suback{PacketID: 11, ReasonCodes: []byte{0x02, 0x8F, 0x9E, 0xA1, 0xA2},
			Props: mkProps(func(p *Properties) { p.SetReasonString(bs("partly")) })})},

	// UNSUBSCRIBE, UNSUBACK
	{name: "unsubscribe/3.1.1 two filters", version: 4,
		raw:  pk(0xA2, u16(12), str("a/+"), str("b/#")),
		want: unsubscribePkt(Unsubscribe{PacketID: 12, Filters: [][]byte{bs("a/+"), bs("b/#")}})},
	{name: "unsubscribe/5.0 with user property", version: 5,
		raw: pk(0xA2, u16(13), props(0x26, str("k"), str("v")), str("$share/g/t")),
		want: unsubscribePkt(Unsubscribe{PacketID: 13, Filters: [][]byte{bs("$share/g/t")},
			Props: mkProps(func(p *Properties) { p.AddUser(bs("k"), bs("v")) })})},
	{name: "unsuback/3.1.1", version: 4, raw: pk(0xB0, u16(12)), want: unsubackPkt(Unsuback{PacketID: 12})},
	{name: "unsuback/3.1", version: 3, raw: pk(0xB0, u16(12)), want: unsubackPkt(Unsuback{PacketID: 12})},
	{name: "unsuback/5.0", version: 5,
		raw:  pk(0xB0, u16(13), props(), 0x00, 0x11),
		want: unsubackPkt(Unsuback{PacketID: 13, ReasonCodes: []byte{0x00, 0x11}})},

	// PINGREQ, PINGRESP
	{name: "pingreq/3.1", version: 3, raw: []byte{0xC0, 0}, want: &Packet{Type: PINGREQ}},
	{name: "pingreq/3.1.1", version: 4, raw: []byte{0xC0, 0}, want: &Packet{Type: PINGREQ}},
	{name: "pingreq/5.0", version: 5, raw: []byte{0xC0, 0}, want: &Packet{Type: PINGREQ}},
	{name: "pingresp/3.1.1", version: 4, raw: []byte{0xD0, 0}, want: &Packet{Type: PINGRESP}},
	{name: "pingresp/5.0", version: 5, raw: []byte{0xD0, 0}, want: &Packet{Type: PINGRESP}},

	// DISCONNECT
	{name: "disconnect/3.1", version: 3, raw: []byte{0xE0, 0}, want: disconnectPkt(Disconnect{})},
	{name: "disconnect/3.1.1", version: 4, raw: []byte{0xE0, 0}, want: disconnectPkt(Disconnect{})},
	{name: "disconnect/5.0 normal", version: 5, raw: []byte{0xE0, 0}, want: disconnectPkt(Disconnect{})},
	{name: "disconnect/5.0 with will message", version: 5,
		raw: pk(0xE0, 0x04), want: disconnectPkt(Disconnect{ReasonCode: DisconnectWithWill})},
	{name: "disconnect/5.0 normal with empty properties", version: 5, decodeOnly: true,
		raw: pk(0xE0, 0x00, 0x00), want: disconnectPkt(Disconnect{})},
	{name: "disconnect/5.0 session taken over with properties", version: 5,
		raw: pk(0xE0, 0x8E, props(0x11, u32(0), 0x1C, str("b:1883"), 0x1F, str("taken"))),
		want: disconnectPkt(Disconnect{ReasonCode: SessionTakenOver, Props: mkProps(func(p *Properties) {
			p.SetSessionExpiry(0)
			p.SetServerReference(bs("b:1883"))
			p.SetReasonString(bs("taken"))
		})})},

	// AUTH
	{name: "auth/5.0 success short form", version: 5, raw: []byte{0xF0, 0}, want: authPkt(Auth{})},
	{name: "auth/5.0 continue authentication", version: 5,
		raw: pk(0xF0, 0x18, props(0x15, str("SCRAM-SHA-256"), 0x16, str("n,,n=user,r=abc"))),
		want: authPkt(Auth{ReasonCode: ContinueAuthentication, Props: mkProps(func(p *Properties) {
			p.SetAuthMethod(bs("SCRAM-SHA-256"))
			p.SetAuthData(bs("n,,n=user,r=abc"))
		})})},
	{name: "auth/5.0 re-authenticate", version: 5,
		raw:  pk(0xF0, 0x19, props(0x15, str("SCRAM-SHA-256"))),
		want: authPkt(Auth{ReasonCode: ReAuthenticate, Props: mkProps(func(p *Properties) { p.SetAuthMethod(bs("SCRAM-SHA-256")) })})},

	// 3.1 leaves flags that 3.1.1 fixed unused, and retries carry DUP.
	{name: "pubrel/3.1 retry with DUP", version: 3, decodeOnly: true,
		raw: pk(0x6A, u16(9)), want: ackPkt(Ack{Type: PUBREL, PacketID: 9})},
	{name: "subscribe/3.1 retry with DUP", version: 3, decodeOnly: true,
		raw:  pk(0x8A, u16(2), str("a"), 0),
		want: subscribePkt(Subscribe{PacketID: 2, Subscriptions: []Subscription{{Filter: bs("a")}}})},
	{name: "unsubscribe/3.1 retry with DUP", version: 3, decodeOnly: true,
		raw: pk(0xAA, u16(3), str("a")), want: unsubscribePkt(Unsubscribe{PacketID: 3, Filters: [][]byte{bs("a")}})},
	{name: "puback/3.1 unused flags set", version: 3, decodeOnly: true,
		raw: pk(0x48, u16(4)), want: ackPkt(Ack{Type: PUBACK, PacketID: 4})},
	{name: "subscribe/3.1 unused upper bits of the QoS byte", version: 3, decodeOnly: true,
		raw:  pk(0x82, u16(5), str("a"), 0xF1),
		want: subscribePkt(Subscribe{PacketID: 5, Subscriptions: []Subscription{{Filter: bs("a"), QoS: 1}}})},
	{name: "connect/3.1 unused reserved flag", decodeOnly: true,
		raw:  pk(0x10, str("MQIsdp"), 3, 0x03, u16(30), str("c")),
		want: connectPkt(Connect{ProtocolVersion: 3, CleanStart: true, KeepAlive: 30, ClientID: bs("c")})},
	{name: "subscribe/3.1.1 $share is an ordinary filter", version: 4,
		raw:  pk(0x82, u16(6), str("$share/g/t"), 1),
		want: subscribePkt(Subscribe{PacketID: 6, Subscriptions: []Subscription{{Filter: bs("$share/g/t"), QoS: 1}}})},
}
