package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// decodeCase decodes c.raw the way a connection would.
func decodeCase(c packetCase) (*Packet, int, error) {
	d := Decoder{Version: c.version, MaxPacketSize: c.maxSize}
	var p Packet
	n, err := d.Decode(c.raw, &p)
	return &p, n, err
}

// decoderVersion is the Decoder.Version to decode an encoding of p with: a
// CONNECT is only accepted by a fresh decoder.
func decoderVersion(p *Packet, v byte) byte {
	if p.Type == CONNECT {
		return 0
	}
	return v
}

// encodeVersion is the level a decoded packet is re-encoded at.
func encodeVersion(p *Packet, decoderVersion byte) byte {
	if p.Type == CONNECT {
		return p.Connect.ProtocolVersion
	}
	return decoderVersion
}

func TestDecodeCases(t *testing.T) {
	for _, c := range allCases() {
		t.Run(c.name, func(t *testing.T) {
			p, n, err := decodeCase(c)
			if c.want == nil {
				if err == nil {
					t.Fatalf("decoded %+v, want error %v", p, c.err)
				}
				if !errors.Is(err, c.err) {
					t.Fatalf("error %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if n != len(c.raw) {
				t.Fatalf("consumed %d bytes, want %d", n, len(c.raw))
			}
			if diff := diffPackets(c.want, p); diff != "" {
				t.Fatalf("decoded packet differs: %s", diff)
			}
		})
	}
}

func TestEncodeCases(t *testing.T) {
	for _, c := range validCases {
		if c.decodeOnly {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			got, err := c.want.Append(nil, encodeVersion(c.want, c.version))
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(got, c.raw) {
				t.Fatalf("encoded\n% x\nwant\n% x", got, c.raw)
			}
			// Appending keeps what dst already holds.
			prefix := []byte("keep")
			got, _ = c.want.Append(prefix, encodeVersion(c.want, c.version))
			if !bytes.Equal(got[:4], []byte("keep")) || !bytes.Equal(got[4:], c.raw) {
				t.Fatalf("append to a non-empty buffer broke it: % x", got)
			}
		})
	}
}

// TestRoundTrip checks decode(encode(p)) == p for every valid case, including
// the non-canonical inputs: their decoded packet must survive a round trip.
func TestRoundTrip(t *testing.T) {
	for _, c := range validCases {
		t.Run(c.name, func(t *testing.T) {
			v := encodeVersion(c.want, c.version)
			enc, err := c.want.Append(nil, v)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			d := Decoder{Version: decoderVersion(c.want, v)}
			var p Packet
			n, err := d.Decode(enc, &p)
			if err != nil || n != len(enc) {
				t.Fatalf("decode of own encoding: n=%d err=%v", n, err)
			}
			if diff := diffPackets(c.want, &p); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// TestIncremental feeds each valid packet one byte at a time: every proper
// prefix needs more, the whole packet decodes, and bytes after it are left.
func TestIncremental(t *testing.T) {
	for _, c := range validCases {
		t.Run(c.name, func(t *testing.T) {
			d := Decoder{Version: c.version}
			var p Packet
			for i := 0; i < len(c.raw); i++ {
				if n, err := d.Decode(c.raw[:i], &p); n != 0 || !errors.Is(err, ErrNeedMore) {
					t.Fatalf("prefix of %d bytes: n=%d err=%v, want need more", i, n, err)
				}
			}
			stream := append(append([]byte{}, c.raw...), 0xC0, 0x00, 0x30)
			n, err := d.Decode(stream, &p)
			if err != nil || n != len(c.raw) {
				t.Fatalf("n=%d err=%v, want %d", n, err, len(c.raw))
			}
			if p.Type == CONNECT && d.Version != p.Connect.ProtocolVersion {
				t.Fatalf("decoder version %d after CONNECT level %d", d.Version, p.Connect.ProtocolVersion)
			}
			if diff := diffPackets(c.want, &p); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// A sequence of different packets decoded into one Packet must not leak
// fields of one into the next.
func TestReuseDoesNotLeak(t *testing.T) {
	var p Packet
	for _, c := range validCases {
		d := Decoder{Version: c.version}
		if _, err := d.Decode(c.raw, &p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if diff := diffPackets(c.want, &p); diff != "" {
			t.Fatalf("%s after reuse: %s", c.name, diff)
		}
	}
}

func TestMaxPacketSizeBeforeBody(t *testing.T) {
	// A declared remaining length of 256 MB, with none of the body present:
	// rejected from the fixed header alone (MQTT-3.2.2-15 on the server side).
	hdr := []byte{0x30, 0xff, 0xff, 0xff, 0x7f}
	d := Decoder{Version: 4, MaxPacketSize: 1 << 20}
	var p Packet
	if n, err := d.Decode(hdr, &p); n != 0 || !errors.Is(err, ErrPacketTooLarge) || ReasonOf(err) != PacketTooLarge {
		t.Fatalf("n=%d err=%v", n, err)
	}
	// Exactly at the limit is allowed.
	pkt := pk(0x30, str("t"), "12345")
	d.MaxPacketSize = len(pkt)
	if n, err := d.Decode(pkt, &p); err != nil || n != len(pkt) {
		t.Fatalf("at limit: n=%d err=%v", n, err)
	}
	d.MaxPacketSize = len(pkt) - 1
	if _, err := d.Decode(pkt[:3], &p); !errors.Is(err, ErrPacketTooLarge) {
		t.Fatalf("one over the limit, partial body: %v", err)
	}
}

func TestVarint(t *testing.T) {
	f := func(v int, want []byte) {
		t.Helper()
		got := AppendVarint(nil, v)
		if !bytes.Equal(got, want) {
			t.Fatalf("encode %d = % x, want % x", v, got, want)
		}
		if varintSize(v) != len(want) {
			t.Fatalf("size %d = %d", v, varintSize(v))
		}
		dv, n, err := ReadVarint(append(got, 0xAA))
		if err != nil || dv != v || n != len(want) {
			t.Fatalf("decode % x = %d, %d, %v", got, dv, n, err)
		}
	}
	// The boundaries of table 1.5.5.
	f(0, []byte{0x00})
	f(127, []byte{0x7f})
	f(128, []byte{0x80, 0x01})
	f(16_383, []byte{0xff, 0x7f})
	f(16_384, []byte{0x80, 0x80, 0x01})
	f(2_097_151, []byte{0xff, 0xff, 0x7f})
	f(2_097_152, []byte{0x80, 0x80, 0x80, 0x01})
	f(MaxVarint, []byte{0xff, 0xff, 0xff, 0x7f})

	bad := func(in []byte, want error) {
		t.Helper()
		if _, _, err := ReadVarint(in); !errors.Is(err, want) {
			t.Fatalf("% x: %v, want %v", in, err, want)
		}
	}
	bad([]byte{0xff, 0xff, 0xff, 0xff, 0x01}, ErrMalformedVarint) // five bytes (1.5.5)
	bad([]byte{0x80, 0x00}, ErrVarintNotMinimal)                  // MQTT-1.5.5-1
	bad([]byte{0x80, 0x80}, ErrNeedMore)
	bad(nil, ErrNeedMore)
}

func TestReasonCodes(t *testing.T) {
	if ReasonOf(ErrTopicWildcard) != TopicNameInvalid || ReasonOf(fmt.Errorf("wrapped: %w", ErrPublishQoS)) != MalformedPacket {
		t.Fatal("ReasonOf does not follow the chain")
	}
	if ReasonOf(errors.New("other")) != UnspecifiedError {
		t.Fatal("ReasonOf of a foreign error")
	}
	f := func(r ReasonCode, connack311, suback311 byte) {
		t.Helper()
		if got := ConnackReturnCode(r); got != connack311 {
			t.Fatalf("ConnackReturnCode(%#x) = %d, want %d", byte(r), got, connack311)
		}
		if got := SubackReturnCode(r); got != suback311 {
			t.Fatalf("SubackReturnCode(%#x) = %#x, want %#x", byte(r), got, suback311)
		}
	}
	f(Success, 0, 0)
	f(UnsupportedProtocolVersion, 1, 0x80)
	f(ClientIdentifierNotValid, 2, 0x80)
	f(ServerUnavailable, 3, 0x80)
	f(ServerBusy, 3, 0x80)
	f(BadUserNameOrPassword, 4, 0x80)
	f(NotAuthorized, 5, 0x80)
	if SubackReturnCode(GrantedQoS2) != 2 || SubackReturnCode(GrantedQoS1) != 1 {
		t.Fatal("granted QoS")
	}
	if !ReasonCode(0x8E).ValidFor(DISCONNECT) || ReasonCode(0x8E).ValidFor(PUBACK) || ReasonCode(0x19).ValidFor(CONNACK) {
		t.Fatal("ValidFor")
	}
	if NotAuthorized.String() != "not authorized" || ReasonCode(0x03).String() != "unknown reason code" || !NotAuthorized.IsError() {
		t.Fatal("String/IsError")
	}
	if PUBREL.String() != "PUBREL" || PacketType(20).String() != "INVALID" {
		t.Fatal("PacketType.String")
	}
	if e := ErrTopicWildcard.Error(); e != "codec: topic name contains a wildcard [MQTT-3.3.2-2]" {
		t.Fatalf("Error() = %q", e)
	}
}

func TestEncodeErrors(t *testing.T) {
	long := make([]byte, 65536)
	f := func(name string, p *Packet, v byte, want error) {
		t.Helper()
		if _, err := p.Append(nil, v); !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
	}
	f("topic over 65535", publishPkt(Publish{Topic: long}), 4, ErrStringTooLong)
	f("client id over 65535", connectPkt(Connect{ProtocolVersion: 4, ClientID: long}), 4, ErrStringTooLong)
	f("property over 65535", publishPkt(Publish{Topic: bs("t"), Props: mkProps(func(p *Properties) { p.SetContentType(long) })}), 5, ErrStringTooLong)
	f("user property over 65535", ackPkt(Ack{Type: PUBACK, PacketID: 1, ReasonCode: 0x80, Props: mkProps(func(p *Properties) { p.AddUser(bs("k"), long) })}), 5, ErrStringTooLong)
	f("filter over 65535", subscribePkt(Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: long}}}), 4, ErrStringTooLong)
	f("unsubscribe filter over 65535", unsubscribePkt(Unsubscribe{PacketID: 1, Filters: [][]byte{long}}), 4, ErrStringTooLong)
	f("payload over the wire limit", publishPkt(Publish{Topic: bs("t"), Payload: make([]byte, MaxVarint)}), 4, ErrPacketTooLarge)
	f("auth before 5.0", authPkt(Auth{}), 4, ErrVersionPacket)
	f("reserved type", &Packet{Type: 0}, 4, ErrReservedType)
}

func TestPublishSizeAndHeader(t *testing.T) {
	for _, c := range validCases {
		if c.want.Type != PUBLISH {
			continue
		}
		p := &c.want.Publish
		if got := p.Size(c.version); got != len(c.raw) {
			t.Fatalf("%s: Size = %d, want %d", c.name, got, len(c.raw))
		}
		hdr, err := p.AppendHeader(nil, c.version)
		if err != nil || !bytes.Equal(append(hdr, p.Payload...), c.raw) {
			t.Fatalf("%s: header + payload differs from the packet (%v)", c.name, err)
		}
	}
}

func TestPropertiesAccessors(t *testing.T) {
	var p Properties
	if !p.Empty() || p.Has(PropTopicAlias) {
		t.Fatal("zero Properties not empty")
	}
	p.Mark(0x30) // undefined identifiers are ignored
	p.Mark(0x04)
	if !p.Empty() {
		t.Fatal("Mark of an undefined identifier took effect")
	}
	p.SetTopicAlias(3)
	p.AddUser(bs("a"), bs("b"))
	p.Unmark(PropTopicAlias)
	if p.Has(PropTopicAlias) || !p.Has(PropUser) {
		t.Fatal("Unmark")
	}
	users := p.User
	p.Reset()
	if !p.Empty() || len(p.User) != 0 || cap(p.User) != cap(users) {
		t.Fatal("Reset must clear values and keep capacity")
	}
}

// diffPackets compares the fields of want's type, treating nil and empty
// slices as equal. It returns "" when they match.
func diffPackets(want, got *Packet) string {
	if want.Type != got.Type {
		return fmt.Sprintf("type %v, want %v", got.Type, want.Type)
	}
	var w, g any
	switch want.Type {
	case CONNECT:
		w, g = want.Connect, got.Connect
	case CONNACK:
		w, g = want.Connack, got.Connack
	case PUBLISH:
		w, g = want.Publish, got.Publish
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		w, g = want.Ack, got.Ack
	case SUBSCRIBE:
		w, g = want.Subscribe, got.Subscribe
	case SUBACK:
		w, g = want.Suback, got.Suback
	case UNSUBSCRIBE:
		w, g = want.Unsubscribe, got.Unsubscribe
	case UNSUBACK:
		w, g = want.Unsuback, got.Unsuback
	case DISCONNECT:
		w, g = want.Disconnect, got.Disconnect
	case AUTH:
		w, g = want.Auth, got.Auth
	default:
		return ""
	}
	wn, gn := normalize(reflect.ValueOf(w)), normalize(reflect.ValueOf(g))
	if !reflect.DeepEqual(wn, gn) {
		return fmt.Sprintf("\n got  %+v\n want %+v", gn, wn)
	}
	return ""
}

// normalize returns a deep copy of v with empty slices made nil.
func normalize(v reflect.Value) any {
	c := reflect.New(v.Type()).Elem()
	normalizeInto(c, v)
	return c.Interface()
}

func normalizeInto(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		dst.Set(src) // copies the unexported presence mask too
		for i := 0; i < src.NumField(); i++ {
			if dst.Field(i).CanSet() {
				normalizeInto(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Slice:
		if src.Len() == 0 {
			dst.Set(reflect.Zero(src.Type()))
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			normalizeInto(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	default:
		dst.Set(src)
	}
}
