package codec

// malformedCases: inputs every decoder must refuse, each with the error (and
// so the reason code and normative statement) it must refuse them with.
//
// Comments name the statement a case checks: a bare id is the MQTT 5.0 one,
// "3.1.1 MQTT-..." the 3.1.1 one where the number differs, and a section
// number where the rule has no id. Before 5.0 every failure closes the
// connection, so the sentinel matters there only for logs and metrics.
//
// Known gaps, left out because the decoder does not yet do what the
// specification says (add them when it does): it accepts an empty Response
// Topic (MQTT-4.7.3-1); and it refuses 3.1 PUBREL, SUBSCRIBE and UNSUBSCRIBE
// retries with DUP set, which 3.1 allows.
var malformedCases = []packetCase{
	// Variable byte integers (1.5.5): at most four bytes, minimal encoding.
	{name: "malformed/remaining length of five bytes at 3.1", version: 3, // 1.5.5; 3.1.1 2.2.3
		raw: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, err: ErrMalformedVarint},
	{name: "malformed/remaining length of five bytes at 3.1.1", version: 4, // 1.5.5; 3.1.1 2.2.3
		raw: []byte{0xC0, 0x80, 0x80, 0x80, 0x80, 0x01}, err: ErrMalformedVarint},
	{name: "malformed/remaining length of five bytes at 5.0", version: 5, // 1.5.5
		raw: []byte{0xE0, 0xff, 0xff, 0xff, 0xff, 0x7f}, err: ErrMalformedVarint},
	{name: "malformed/remaining length 0 in two bytes at 3.1", version: 3, // MQTT-1.5.5-1
		raw: []byte{0xC0, 0x80, 0x00}, err: ErrVarintNotMinimal},
	{name: "malformed/remaining length 2 in two bytes at 3.1.1", version: 4, // MQTT-1.5.5-1
		raw: []byte{0x40, 0x82, 0x00, 0x00, 0x01}, err: ErrVarintNotMinimal},
	{name: "malformed/remaining length 0 in three bytes at 5.0", version: 5, // MQTT-1.5.5-1
		raw: []byte{0xE0, 0x80, 0x80, 0x00}, err: ErrVarintNotMinimal},
	{name: "malformed/5.0 property length not minimal", version: 5, // MQTT-1.5.5-1
		raw: pk(0x30, str("t"), 0x80, 0x00), err: ErrVarintNotMinimal},
	{name: "malformed/5.0 property identifier not minimal", version: 5, // MQTT-1.5.5-1
		raw: pk(0x40, u16(1), 0x00, props(0x9F, 0x00, str("r"))), err: ErrVarintNotMinimal},
	{name: "malformed/5.0 subscription identifier of five bytes", version: 5, // 1.5.5
		raw: pk(0x30, str("t"), props(0x0B, 0x80, 0x80, 0x80, 0x80, 0x01)), err: ErrMalformedVarint},

	// Packet types (table 2-1; 3.1.1 table 2.1): 0 is forbidden, 15 is AUTH
	// from 5.0 on and reserved before.
	{name: "malformed/reserved type 0 before CONNECT", version: 0, raw: []byte{0x00, 0x00}, err: ErrReservedType},
	{name: "malformed/reserved type 0 at 3.1", version: 3, raw: []byte{0x00, 0x00}, err: ErrReservedType},
	{name: "malformed/reserved type 0 at 3.1.1", version: 4, raw: []byte{0x00, 0x00}, err: ErrReservedType},
	{name: "malformed/reserved type 0 at 5.0", version: 5, raw: []byte{0x00, 0x00}, err: ErrReservedType},
	{name: "malformed/type 15 at 3.1.1", version: 4, raw: []byte{0xF0, 0x00}, err: ErrVersionPacket},
	{name: "malformed/type 15 at 3.1", version: 3, raw: pk(0xF0, 0x18, 0x00), err: ErrVersionPacket},

	// Anything but CONNECT first (MQTT-3.1.0-1).
	{name: "malformed/publish before CONNECT", version: 0, raw: pk(0x30, str("t"), "x"), err: ErrNoVersion},
	{name: "malformed/subscribe before CONNECT", version: 0, raw: pk(0x82, u16(1), str("a"), 0), err: ErrNoVersion},
	{name: "malformed/pingreq before CONNECT", version: 0, raw: []byte{0xC0, 0x00}, err: ErrNoVersion},
	{name: "malformed/auth before CONNECT", version: 0,
		raw: pk(0xF0, 0x18, props(0x15, str("m"))), err: ErrNoVersion},

	// Reserved fixed header flags: 0010 for PUBREL, SUBSCRIBE and UNSUBSCRIBE,
	// 0000 for the others (MQTT-2.1.3-1; 3.1.1 MQTT-2.2.2-1, MQTT-2.2.2-2).
	{name: "malformed/connect flags 0010", version: 0,
		raw: pk(0x12, str("MQTT"), 4, 0x02, u16(0), str("c")), err: ErrFixedHeaderFlags},
	{name: "malformed/connack 3.1.1 flags 0001", version: 4, raw: pk(0x21, 0, 0), err: ErrFixedHeaderFlags},
	{name: "malformed/puback 3.1.1 flags 0010", version: 4, raw: pk(0x42, u16(1)), err: ErrFixedHeaderFlags},
	{name: "malformed/pubrec 5.0 flags 0001", version: 5, raw: pk(0x51, u16(1)), err: ErrFixedHeaderFlags},
	{name: "malformed/pubrel 3.1.1 flags 0000", version: 4, // MQTT-3.6.1-1
		raw: pk(0x60, u16(1)), err: ErrFixedHeaderFlags},
	{name: "malformed/pubrel 3.1.1 flags 1010 (dup)", version: 4, // MQTT-3.6.1-1
		raw: pk(0x6A, u16(1)), err: ErrFixedHeaderFlags},
	{name: "malformed/pubrel 5.0 flags 0011", version: 5, // MQTT-3.6.1-1
		raw: pk(0x63, u16(1)), err: ErrFixedHeaderFlags},
	{name: "malformed/pubcomp 5.0 flags 1000", version: 5, raw: pk(0x78, u16(1)), err: ErrFixedHeaderFlags},
	{name: "malformed/subscribe 3.1.1 flags 0000", version: 4, // MQTT-3.8.1-1
		raw: pk(0x80, u16(1), str("a"), 0), err: ErrFixedHeaderFlags},
	{name: "malformed/subscribe 5.0 flags 1010 (dup)", version: 5, // MQTT-3.8.1-1
		raw: pk(0x8A, u16(1), props(), str("a"), 0), err: ErrFixedHeaderFlags},
	{name: "malformed/suback 3.1.1 flags 0010", version: 4, raw: pk(0x92, u16(1), 0), err: ErrFixedHeaderFlags},
	{name: "malformed/unsubscribe 3.1.1 flags 0000", version: 4, // MQTT-3.10.1-1
		raw: pk(0xA0, u16(1), str("a")), err: ErrFixedHeaderFlags},
	{name: "malformed/unsubscribe 5.0 flags 0011", version: 5, // MQTT-3.10.1-1
		raw: pk(0xA3, u16(1), props(), str("a")), err: ErrFixedHeaderFlags},
	{name: "malformed/unsuback 5.0 flags 0001", version: 5, raw: pk(0xB1, u16(1), props(), 0), err: ErrFixedHeaderFlags},
	{name: "malformed/pingreq 3.1.1 flags 0010", version: 4, raw: []byte{0xC2, 0x00}, err: ErrFixedHeaderFlags},
	{name: "malformed/pingresp 5.0 flags 0001", version: 5, raw: []byte{0xD1, 0x00}, err: ErrFixedHeaderFlags},
	{name: "malformed/disconnect 3.1.1 flags 0010", version: 4, // 3.1.1 MQTT-3.14.1-1
		raw: []byte{0xE2, 0x00}, err: ErrFixedHeaderFlags},
	{name: "malformed/disconnect 5.0 flags 1000", version: 5, // MQTT-3.14.1-1
		raw: []byte{0xE8, 0x00}, err: ErrFixedHeaderFlags},
	{name: "malformed/auth 5.0 flags 0010", version: 5, // MQTT-3.15.1-1
		raw: pk(0xF2, 0x18, props(0x15, str("m"))), err: ErrFixedHeaderFlags},

	// CONNECT: protocol name and level.
	{name: "malformed/connect protocol name MQTX", version: 0, // MQTT-3.1.2-1
		raw: pk(0x10, str("MQTX"), 4, 0x02, u16(0), str("c")), err: ErrProtocolName},
	{name: "malformed/connect protocol name mqtt in lower case", version: 0, // MQTT-3.1.2-1
		raw: pk(0x10, str("mqtt"), 5, 0x02, u16(0), props(), str("c")), err: ErrProtocolName},
	{name: "malformed/connect MQIsdp with level 4", version: 0, // 3.1.1 MQTT-3.1.2-2
		raw: pk(0x10, str("MQIsdp"), 4, 0x02, u16(0), str("c")), err: ErrProtocolVersion},
	{name: "malformed/connect MQTT with level 3", version: 0, // 3.1.1 MQTT-3.1.2-2
		raw: pk(0x10, str("MQTT"), 3, 0x02, u16(0), str("c")), err: ErrProtocolVersion},
	{name: "malformed/connect MQTT with level 6", version: 0, // MQTT-3.1.2-2
		raw: pk(0x10, str("MQTT"), 6, 0x02, u16(0), props(), str("c")), err: ErrProtocolVersion},

	// CONNECT: connect flags.
	{name: "malformed/connect 3.1.1 reserved flag", version: 0, // MQTT-3.1.2-3
		raw: pk(0x10, str("MQTT"), 4, 0x03, u16(0), str("c")), err: ErrConnectReserved},
	{name: "malformed/connect 5.0 reserved flag", version: 0, // MQTT-3.1.2-3
		raw: pk(0x10, str("MQTT"), 5, 0x01, u16(0), props(), str("c")), err: ErrConnectReserved},
	{name: "malformed/connect 3.1.1 will qos 3", version: 0, // 3.1.1 MQTT-3.1.2-14
		raw: pk(0x10, str("MQTT"), 4, 0x1E, u16(0), str("c"), str("t"), str("p")), err: ErrWillQoS},
	{name: "malformed/connect 5.0 will qos 3", version: 0, // MQTT-3.1.2-12
		raw: pk(0x10, str("MQTT"), 5, 0x1C, u16(0), props(), str("c"), props(), str("t"), str("p")), err: ErrWillQoS},
	{name: "malformed/connect 3.1 will qos 3", version: 0, // 3.1 section 3.1, Will QoS
		raw: pk(0x10, str("MQIsdp"), 3, 0x1E, u16(0), str("c"), str("t"), str("p")), err: ErrWillQoS},
	{name: "malformed/connect 3.1.1 will qos 1 without will flag", version: 0, // 3.1.1 MQTT-3.1.2-13
		raw: pk(0x10, str("MQTT"), 4, 0x0A, u16(0), str("c")), err: ErrWillFlags},
	{name: "malformed/connect 5.0 will qos 2 without will flag", version: 0, // MQTT-3.1.2-11
		raw: pk(0x10, str("MQTT"), 5, 0x12, u16(0), props(), str("c")), err: ErrWillFlags},
	{name: "malformed/connect 3.1.1 will retain without will flag", version: 0, // 3.1.1 MQTT-3.1.2-15
		raw: pk(0x10, str("MQTT"), 4, 0x22, u16(0), str("c")), err: ErrWillRetain},
	{name: "malformed/connect 5.0 will retain without will flag", version: 0, // MQTT-3.1.2-13
		raw: pk(0x10, str("MQTT"), 5, 0x20, u16(0), props(), str("c")), err: ErrWillRetain},
	{name: "malformed/connect 3.1.1 password without user name", version: 0, // 3.1.1 MQTT-3.1.2-22
		raw: pk(0x10, str("MQTT"), 4, 0x42, u16(0), str("c"), str("pw")), err: ErrPasswordNoUsername},
	// 3.1: "It is not valid to supply a password without supplying a user name."
	{name: "malformed/connect 3.1 password without user name", version: 0,
		raw: pk(0x10, str("MQIsdp"), 3, 0x42, u16(0), str("c"), str("pw")), err: ErrPasswordNoUsername},

	// CONNECT: fields cut short or followed by bytes the flags do not announce
	// (MQTT-3.1.4-1).
	{name: "malformed/connect protocol name cut short", version: 0,
		raw: pk(0x10, u16(4), "MQ"), err: ErrShortPacket},
	{name: "malformed/connect 3.1.1 without client id", version: 0, // MQTT-3.1.3-3
		raw: pk(0x10, str("MQTT"), 4, 0x02, u16(60)), err: ErrShortPacket},
	{name: "malformed/connect 5.0 without property length", version: 0, // MQTT-2.2.2-1
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(60)), err: ErrShortPacket},
	{name: "malformed/connect 3.1 will flag without will topic", version: 0, // 3.1.1 MQTT-3.1.2-9
		raw: pk(0x10, str("MQIsdp"), 3, 0x06, u16(0), str("c")), err: ErrShortPacket},
	{name: "malformed/connect 5.0 will flag without will properties", version: 0, // MQTT-3.1.2-9
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c")), err: ErrShortPacket},
	{name: "malformed/connect 5.0 user name flag without user name", version: 0, // MQTT-3.1.2-17
		raw: pk(0x10, str("MQTT"), 5, 0x82, u16(0), props(), str("c")), err: ErrShortPacket},
	{name: "malformed/connect 3.1.1 password flag without password", version: 0, // 3.1.1 MQTT-3.1.2-21
		raw: pk(0x10, str("MQTT"), 4, 0xC2, u16(0), str("c"), str("u")), err: ErrShortPacket},
	{name: "malformed/connect 3.1.1 user name without user name flag", version: 0, // 3.1.1 MQTT-3.1.2-18
		raw: pk(0x10, str("MQTT"), 4, 0x02, u16(0), str("c"), str("u")), err: ErrTrailingBytes},
	{name: "malformed/connect 5.0 bytes after the password", version: 0, // MQTT-3.1.4-1
		raw: pk(0x10, str("MQTT"), 5, 0xC2, u16(0), props(), str("c"), str("u"), str("p"), 0), err: ErrTrailingBytes},
	{name: "malformed/connect 3.1 bytes after the client id", version: 0,
		raw: pk(0x10, str("MQIsdp"), 3, 0x02, u16(0), str("c"), "x"), err: ErrTrailingBytes},

	// CONNECT: will topic (MQTT-4.7.3-1, MQTT-4.7.0-1; 3.1.1 MQTT-4.7.1-1).
	{name: "malformed/connect 3.1.1 empty will topic", version: 0, // MQTT-4.7.3-1
		raw: pk(0x10, str("MQTT"), 4, 0x06, u16(0), str("c"), str(""), str("p")), err: ErrTopicNameEmpty},
	{name: "malformed/connect 5.0 empty will topic", version: 0, // MQTT-4.7.3-1
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(), str(""), str("p")), err: ErrTopicNameEmpty},
	{name: "malformed/connect 3.1.1 will topic with #", version: 0, // 3.1.1 MQTT-4.7.1-1
		raw: pk(0x10, str("MQTT"), 4, 0x06, u16(0), str("c"), str("a/#"), str("p")), err: ErrTopicWildcard},
	{name: "malformed/connect 5.0 will topic with +", version: 0, // MQTT-4.7.0-1
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(), str("+/a"), str("p")), err: ErrTopicWildcard},

	// CONNECT: UTF-8 strings (MQTT-1.5.4-1, MQTT-1.5.4-2; 3.1.1 MQTT-1.5.3-1,
	// MQTT-1.5.3-2). ED A0 80 encodes the surrogate U+D800, C0 80 is an
	// overlong U+0000.
	{name: "malformed/connect 3.1.1 client id ill-formed UTF-8", version: 0, // MQTT-3.1.3-4
		raw: pk(0x10, str("MQTT"), 4, 0x02, u16(0), str("c\xff")), err: ErrInvalidUTF8},
	{name: "malformed/connect 5.0 client id with U+0000", version: 0, // MQTT-1.5.4-2
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(), str("c\x00")), err: ErrNullCharacter},
	{name: "malformed/connect 3.1 client id with a surrogate", version: 0, // MQTT-1.5.4-1
		raw: pk(0x10, str("MQIsdp"), 3, 0x02, u16(0), str("\xed\xa0\x80")), err: ErrInvalidUTF8},
	{name: "malformed/connect 3.1.1 client id with overlong U+0000", version: 0, // MQTT-1.5.4-1
		raw: pk(0x10, str("MQTT"), 4, 0x02, u16(0), str("\xc0\x80")), err: ErrInvalidUTF8},
	{name: "malformed/connect 5.0 user name ill-formed UTF-8", version: 0, // MQTT-3.1.3-12
		raw: pk(0x10, str("MQTT"), 5, 0x82, u16(0), props(), str("c"), str("u\xfe")), err: ErrInvalidUTF8},
	{name: "malformed/connect 3.1.1 user name with U+0000", version: 0, // 3.1.1 MQTT-3.1.3-11
		raw: pk(0x10, str("MQTT"), 4, 0x82, u16(0), str("c"), str("\x00")), err: ErrNullCharacter},
	{name: "malformed/connect 3.1 user name with a surrogate", version: 0, // MQTT-1.5.4-1
		raw: pk(0x10, str("MQIsdp"), 3, 0x82, u16(0), str("c"), str("\xed\xbf\xbf")), err: ErrInvalidUTF8},
	{name: "malformed/connect 3.1.1 will topic ill-formed UTF-8", version: 0, // 3.1.1 MQTT-3.1.3-10
		raw: pk(0x10, str("MQTT"), 4, 0x06, u16(0), str("c"), str("a/\xc0\xaf"), str("p")), err: ErrInvalidUTF8},
	{name: "malformed/connect 5.0 will topic with U+0000", version: 0, // MQTT-3.1.3-11, MQTT-4.7.3-2
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(), str("a\x00"), str("p")), err: ErrNullCharacter},
	{name: "malformed/connect 5.0 will topic with a surrogate", version: 0, // MQTT-1.5.4-1
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(), str("\xed\xa0\x80"), str("p")), err: ErrInvalidUTF8},

	// CONNECT: 5.0 properties (2.2.2.2: a property not listed for the packet
	// is malformed; 3.1.2.11 and 3.1.3.2: repeats and values).
	{name: "malformed/connect 5.0 topic alias property", version: 0, // 2.2.2.2
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x23, u16(1)), str("c")), err: ErrPropertyUnknown},
	{name: "malformed/connect 5.0 will delay in connect properties", version: 0, // 2.2.2.2
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x18, u32(5)), str("c")), err: ErrPropertyUnknown},
	{name: "malformed/connect 5.0 session expiry in will properties", version: 0, // 2.2.2.2
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(0x11, u32(5)), str("t"), str("p")), err: ErrPropertyUnknown},
	{name: "malformed/connect 5.0 unknown property 0x2B", version: 0, // 2.2.2.2
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x2B, 0), str("c")), err: ErrPropertyUnknown},
	{name: "malformed/connect 5.0 session expiry twice", version: 0, // 3.1.2.11.2
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x11, u32(1), 0x11, u32(2)), str("c")), err: ErrPropertyDuplicate},
	{name: "malformed/connect 5.0 receive maximum 0", version: 0, // 3.1.2.11.3
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x21, u16(0)), str("c")), err: ErrPropertyValue},
	{name: "malformed/connect 5.0 maximum packet size 0", version: 0, // 3.1.2.11.4
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x27, u32(0)), str("c")), err: ErrPropertyValue},
	{name: "malformed/connect 5.0 request response information 2", version: 0, // 3.1.2.11.6
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x19, 2), str("c")), err: ErrPropertyValue},
	{name: "malformed/connect 5.0 request problem information 2", version: 0, // 3.1.2.11.7
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x17, 2), str("c")), err: ErrPropertyValue},
	{name: "malformed/connect 5.0 will payload format indicator 2", version: 0, // 3.1.3.2.3
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(0x01, 2), str("t"), str("p")), err: ErrPropertyValue},
	{name: "malformed/connect 5.0 will response topic with #", version: 0, // MQTT-3.3.2-14, MQTT-4.7.0-1
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(0x08, str("r/#")), str("t"), str("p")), err: ErrTopicWildcard},
	{name: "malformed/connect 5.0 property length beyond the packet", version: 0, // 2.2.2.1
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), vi(20), str("c")), err: ErrPropertyLength},
	{name: "malformed/connect 5.0 session expiry cut short", version: 0,
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x11, 0, 0), str("c")), err: ErrShortPacket},
	{name: "malformed/connect 5.0 user property without value", version: 0, // 1.5.7
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x26, str("k")), str("c")), err: ErrShortPacket},
	{name: "malformed/connect 5.0 user property key ill-formed UTF-8", version: 0, // MQTT-1.5.7-1
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x26, str("k\xff"), str("v")), str("c")), err: ErrInvalidUTF8},
	{name: "malformed/connect 5.0 user property value with U+0000", version: 0, // MQTT-1.5.7-1
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x26, str("k"), str("v\x00")), str("c")), err: ErrNullCharacter},
	{name: "malformed/connect 5.0 will user property value with a surrogate", version: 0, // MQTT-1.5.7-1
		raw: pk(0x10, str("MQTT"), 5, 0x06, u16(0), props(), str("c"), props(0x26, str("k"), str("\xed\xa0\x80")), str("t"), str("p")), err: ErrInvalidUTF8},
	{name: "malformed/connect 5.0 authentication method ill-formed UTF-8", version: 0, // MQTT-1.5.4-1
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x15, str("\xff")), str("c")), err: ErrInvalidUTF8},

	// CONNACK
	{name: "malformed/connack 3.1.1 reserved flag bit 1", version: 4, // 3.1.1 3.2.2.1
		raw: pk(0x20, 0x02, 0x00), err: ErrConnackFlags},
	{name: "malformed/connack 5.0 reserved flag bit 7", version: 5, // MQTT-3.2.2-1
		raw: pk(0x20, 0x80, 0x00, props()), err: ErrConnackFlags},
	{name: "malformed/connack 3.1 non-zero first byte", version: 3, // 3.1 section 3.2: reserved
		raw: pk(0x20, 0x01, 0x00), err: ErrConnackFlags},
	{name: "malformed/connack 3.1.1 session present with refusal", version: 4, // 3.1.1 MQTT-3.2.2-4
		raw: pk(0x20, 0x01, 0x05), err: ErrConnackSessionPresent},
	{name: "malformed/connack 5.0 session present with refusal", version: 5, // MQTT-3.2.2-6
		raw: pk(0x20, 0x01, 0x87, props()), err: ErrConnackSessionPresent},
	{name: "malformed/connack 3.1.1 return code 6", version: 4, // 3.1.1 3.2.2.3: 6-255 reserved
		raw: pk(0x20, 0x00, 0x06), err: ErrReturnCode},
	{name: "malformed/connack 3.1 return code 0x80", version: 3, // 3.1 section 3.2
		raw: pk(0x20, 0x00, 0x80), err: ErrReturnCode},
	{name: "malformed/connack 5.0 reason code 0x01", version: 5, // MQTT-3.2.2-8
		raw: pk(0x20, 0x00, 0x01, props()), err: ErrReasonCode},
	{name: "malformed/connack 5.0 reason code 0x8E", version: 5, // MQTT-3.2.2-8
		raw: pk(0x20, 0x00, 0x8E, props()), err: ErrReasonCode},
	{name: "malformed/connack 3.1.1 remaining length 3", version: 4, // 3.1.1 3.2.1
		raw: pk(0x20, 0x00, 0x00, 0x00), err: ErrTrailingBytes},
	{name: "malformed/connack 5.0 without property length", version: 5, // MQTT-2.2.2-1
		raw: pk(0x20, 0x00, 0x00), err: ErrShortPacket},
	{name: "malformed/connack 5.0 maximum qos 2", version: 5, // 3.2.2.3.4
		raw: pk(0x20, 0x00, 0x00, props(0x24, 2)), err: ErrPropertyValue},
	{name: "malformed/connack 5.0 retain available 2", version: 5, // 3.2.2.3.5
		raw: pk(0x20, 0x00, 0x00, props(0x25, 2)), err: ErrPropertyValue},
	{name: "malformed/connack 5.0 shared subscription available 2", version: 5, // 3.2.2.3.13
		raw: pk(0x20, 0x00, 0x00, props(0x2A, 2)), err: ErrPropertyValue},
	{name: "malformed/connack 5.0 request problem information property", version: 5, // 2.2.2.2
		raw: pk(0x20, 0x00, 0x00, props(0x17, 1)), err: ErrPropertyUnknown},
	{name: "malformed/connack 5.0 assigned client identifier twice", version: 5, // 3.2.2.3.7
		raw: pk(0x20, 0x00, 0x00, props(0x12, str("a"), 0x12, str("b"))), err: ErrPropertyDuplicate},

	// PUBLISH: fixed header.
	{name: "malformed/publish 3.1.1 qos 3", version: 4, // MQTT-3.3.1-4
		raw: pk(0x36, str("t"), u16(1)), err: ErrPublishQoS},
	{name: "malformed/publish 5.0 qos 3 retain", version: 5, // MQTT-3.3.1-4
		raw: pk(0x37, str("t"), u16(1), props()), err: ErrPublishQoS},
	{name: "malformed/publish 3.1 qos 3", version: 3, // 3.1 section 2.1: QoS 3 reserved
		raw: pk(0x36, str("t"), u16(1)), err: ErrPublishQoS},
	{name: "malformed/publish 3.1.1 dup with qos 0", version: 4, // MQTT-3.3.1-2
		raw: pk(0x38, str("t"), "x"), err: ErrPublishDupQoS0},
	{name: "malformed/publish 5.0 dup with qos 0", version: 5, // MQTT-3.3.1-2
		raw: pk(0x39, str("t"), props(), "x"), err: ErrPublishDupQoS0},

	// PUBLISH: topic name (MQTT-3.3.2-1, MQTT-3.3.2-2, MQTT-4.7.3-1).
	{name: "malformed/publish 3.1.1 topic with +", version: 4, // MQTT-3.3.2-2
		raw: pk(0x30, str("a/+"), "x"), err: ErrTopicWildcard},
	{name: "malformed/publish 5.0 topic with #", version: 5, // MQTT-3.3.2-2
		raw: pk(0x30, str("a/#"), props(), "x"), err: ErrTopicWildcard},
	{name: "malformed/publish 3.1 topic #", version: 3, // 3.1 appendix A: wildcards are for subscriptions
		raw: pk(0x30, str("#"), "x"), err: ErrTopicWildcard},
	{name: "malformed/publish 3.1.1 empty topic", version: 4, // 3.1.1 MQTT-4.7.3-1
		raw: pk(0x30, str(""), "x"), err: ErrTopicNameEmpty},
	{name: "malformed/publish 3.1 empty topic", version: 3,
		raw: pk(0x32, str(""), u16(1), "x"), err: ErrTopicNameEmpty},
	{name: "malformed/publish 5.0 empty topic without topic alias", version: 5, // 3.3.2.1
		raw: pk(0x30, str(""), props(0x01, 1), "x"), err: ErrTopicEmpty},
	{name: "malformed/publish 3.1.1 without topic", version: 4, // MQTT-3.3.2-1
		raw: []byte{0x30, 0x00}, err: ErrShortPacket},
	{name: "malformed/publish 3.1.1 topic ill-formed UTF-8", version: 4, // MQTT-3.3.2-1
		raw: pk(0x30, str("a/\xff"), "x"), err: ErrInvalidUTF8},
	{name: "malformed/publish 5.0 topic with U+0000", version: 5, // MQTT-4.7.3-2
		raw: pk(0x30, str("a\x00b"), props(), "x"), err: ErrNullCharacter},
	{name: "malformed/publish 5.0 topic with a surrogate", version: 5, // MQTT-1.5.4-1
		raw: pk(0x30, str("a/\xed\xa0\x80"), props(), "x"), err: ErrInvalidUTF8},
	{name: "malformed/publish 3.1 topic with U+0000", version: 3,
		raw: pk(0x30, str("\x00"), "x"), err: ErrNullCharacter},

	// PUBLISH: packet identifier (MQTT-2.2.1-3; 3.1.1 MQTT-2.3.1-1).
	{name: "malformed/publish 3.1.1 qos 1 packet id 0", version: 4,
		raw: pk(0x32, str("t"), u16(0), "x"), err: ErrPacketIDZero},
	{name: "malformed/publish 5.0 qos 2 packet id 0", version: 5,
		raw: pk(0x34, str("t"), u16(0), props(), "x"), err: ErrPacketIDZero},
	{name: "malformed/publish 3.1.1 qos 1 packet id cut short", version: 4,
		raw: pk(0x32, str("t"), 0x00), err: ErrShortPacket},
	{name: "malformed/publish 5.0 qos 2 without packet id", version: 5,
		raw: pk(0x34, str("t")), err: ErrShortPacket},

	// PUBLISH: 5.0 properties.
	{name: "malformed/publish 5.0 topic alias 0", version: 5, // MQTT-3.3.2-8
		raw: pk(0x30, str("t"), props(0x23, u16(0)), "x"), err: ErrTopicAliasZero},
	{name: "malformed/publish 5.0 topic alias twice", version: 5, // 3.3.2.3.4
		raw: pk(0x30, str("t"), props(0x23, u16(1), 0x23, u16(2)), "x"), err: ErrPropertyDuplicate},
	{name: "malformed/publish 5.0 session expiry property", version: 5, // 2.2.2.2
		raw: pk(0x30, str("t"), props(0x11, u32(1)), "x"), err: ErrPropertyUnknown},
	{name: "malformed/publish 5.0 payload format indicator 2", version: 5, // 3.3.2.3.2
		raw: pk(0x30, str("t"), props(0x01, 2), "x"), err: ErrPropertyValue},
	{name: "malformed/publish 5.0 response topic with +", version: 5, // MQTT-3.3.2-14
		raw: pk(0x30, str("t"), props(0x08, str("r/+")), "x"), err: ErrTopicWildcard},
	{name: "malformed/publish 5.0 content type with U+0000", version: 5, // MQTT-3.3.2-19
		raw: pk(0x30, str("t"), props(0x03, str("text\x00")), "x"), err: ErrNullCharacter},
	{name: "malformed/publish 5.0 subscription identifier 0", version: 5, // 3.3.2.3.8
		raw: pk(0x30, str("t"), props(0x0B, vi(0)), "x"), err: ErrSubscriptionIDZero},
	{name: "malformed/publish 5.0 property length beyond the packet", version: 5, // 2.2.2.1
		raw: pk(0x30, str("t"), vi(9), 0x01, 0x01), err: ErrPropertyLength},
	{name: "malformed/publish 5.0 message expiry cut short", version: 5,
		raw: pk(0x30, str("t"), props(0x02, 0, 0), "x"), err: ErrShortPacket},
	{name: "malformed/publish 5.0 user property key with a surrogate", version: 5, // MQTT-1.5.7-1
		raw: pk(0x30, str("t"), props(0x26, str("\xed\xa0\x80"), str("v")), "x"), err: ErrInvalidUTF8},

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{name: "malformed/puback 3.1.1 packet id 0", version: 4, // MQTT-2.2.1-5
		raw: pk(0x40, u16(0)), err: ErrPacketIDZero},
	{name: "malformed/pubrec 5.0 packet id 0", version: 5, // MQTT-2.2.1-5
		raw: pk(0x50, u16(0), 0x00), err: ErrPacketIDZero},
	{name: "malformed/pubrel 3.1 packet id 0", version: 3,
		raw: pk(0x62, u16(0)), err: ErrPacketIDZero},
	{name: "malformed/puback 3.1.1 remaining length 3", version: 4, // 3.1.1 3.4.1
		raw: pk(0x40, u16(1), 0x00), err: ErrTrailingBytes},
	{name: "malformed/pubcomp 3.1.1 remaining length 3", version: 4, // 3.1.1 3.7.1
		raw: pk(0x70, u16(1), 0x00), err: ErrTrailingBytes},
	{name: "malformed/pubrec 3.1 remaining length 3", version: 3,
		raw: pk(0x50, u16(1), 0x00), err: ErrTrailingBytes},
	{name: "malformed/puback 5.0 packet id cut short", version: 5,
		raw: pk(0x40, 0x00), err: ErrShortPacket},
	{name: "malformed/puback 5.0 reason code 0x92", version: 5, // MQTT-3.4.2-1
		raw: pk(0x40, u16(1), 0x92), err: ErrReasonCode},
	{name: "malformed/pubrec 5.0 reason code 0x11", version: 5, // MQTT-3.5.2-1
		raw: pk(0x50, u16(1), 0x11), err: ErrReasonCode},
	{name: "malformed/pubrel 5.0 reason code 0x10", version: 5, // MQTT-3.6.2-1
		raw: pk(0x62, u16(1), 0x10), err: ErrReasonCode},
	{name: "malformed/pubcomp 5.0 reason code 0x80", version: 5, // MQTT-3.7.2-1
		raw: pk(0x70, u16(1), 0x80, props()), err: ErrReasonCode},
	{name: "malformed/puback 5.0 topic alias property", version: 5, // 2.2.2.2
		raw: pk(0x40, u16(1), 0x00, props(0x23, u16(1))), err: ErrPropertyUnknown},
	{name: "malformed/pubrec 5.0 reason string twice", version: 5, // 3.5.2.2.2
		raw: pk(0x50, u16(1), 0x80, props(0x1F, str("a"), 0x1F, str("b"))), err: ErrPropertyDuplicate},
	{name: "malformed/puback 5.0 reason string with U+0000", version: 5, // MQTT-1.5.4-2
		raw: pk(0x40, u16(1), 0x80, props(0x1F, str("no\x00"))), err: ErrNullCharacter},
	{name: "malformed/pubcomp 5.0 bytes after the properties", version: 5,
		raw: pk(0x70, u16(1), 0x00, props(), 0x00), err: ErrTrailingBytes},

	// PINGREQ, PINGRESP, DISCONNECT, AUTH.
	{name: "malformed/pingreq 3.1.1 with a body", version: 4, // 3.1.1 3.12.1: remaining length 0
		raw: pk(0xC0, 0x00), err: ErrTrailingBytes},
	{name: "malformed/pingreq 5.0 with a body", version: 5, // 3.12.1
		raw: pk(0xC0, 0x00, 0x00), err: ErrTrailingBytes},
	{name: "malformed/pingresp 3.1 with a body", version: 3,
		raw: pk(0xD0, 0x00), err: ErrTrailingBytes},
	{name: "malformed/disconnect 3.1.1 with a body", version: 4, // 3.1.1 3.14.1: remaining length 0
		raw: pk(0xE0, 0x00), err: ErrTrailingBytes},
	{name: "malformed/disconnect 3.1 with a body", version: 3,
		raw: pk(0xE0, 0x04, 0x00), err: ErrTrailingBytes},
	{name: "malformed/disconnect 5.0 reason code 0x01", version: 5, // MQTT-3.14.2-1
		raw: pk(0xE0, 0x01), err: ErrReasonCode},
	{name: "malformed/disconnect 5.0 reason code 0x84", version: 5, // MQTT-3.14.2-1
		raw: pk(0xE0, 0x84, props()), err: ErrReasonCode},
	{name: "malformed/disconnect 5.0 will delay property", version: 5, // 2.2.2.2
		raw: pk(0xE0, 0x00, props(0x18, u32(1))), err: ErrPropertyUnknown},
	{name: "malformed/disconnect 5.0 bytes after the properties", version: 5,
		raw: pk(0xE0, 0x00, props(), 0x00), err: ErrTrailingBytes},
	{name: "malformed/auth 5.0 reason code 0x01", version: 5, // MQTT-3.15.2-1
		raw: pk(0xF0, 0x01, props(0x15, str("m"))), err: ErrReasonCode},
	{name: "malformed/auth 5.0 reason code 0x87", version: 5, // MQTT-3.15.2-1
		raw: pk(0xF0, 0x87, props(0x15, str("m"))), err: ErrReasonCode},
	{name: "malformed/auth 5.0 session expiry property", version: 5, // 2.2.2.2
		raw: pk(0xF0, 0x18, props(0x15, str("m"), 0x11, u32(1))), err: ErrPropertyUnknown},
	{name: "malformed/auth 5.0 without authentication method", version: 5, // 3.15.2.2.2, MQTT-4.12.0-2
		raw: pk(0xF0, 0x18, props()), err: ErrAuthMethodMissing},
	{name: "malformed/connect 5.0 authentication data without method", version: 0, // 3.1.2.11.10
		raw: pk(0x10, str("MQTT"), 5, 0x02, u16(0), props(0x16, str("x")), str("c")), err: ErrAuthDataWithoutMethod},
	{name: "malformed/auth 5.0 authentication method twice", version: 5, // 3.15.2.2.2
		raw: pk(0xF0, 0x18, props(0x15, str("m"), 0x15, str("m"))), err: ErrPropertyDuplicate},

	// SUBSCRIBE: structure.
	{name: "malformed/subscribe 3.1.1 without filters", version: 4, // 3.1.1 MQTT-3.8.3-3
		raw: pk(0x82, u16(1)), err: ErrNoSubscriptions},
	{name: "malformed/subscribe 5.0 without filters", version: 5, // MQTT-3.8.3-2
		raw: pk(0x82, u16(1), props()), err: ErrNoSubscriptions},
	{name: "malformed/subscribe 3.1 without filters", version: 3,
		raw: pk(0x82, u16(1)), err: ErrNoSubscriptions},
	{name: "malformed/subscribe 3.1.1 packet id 0", version: 4, // 3.1.1 MQTT-2.3.1-1
		raw: pk(0x82, u16(0), str("a"), 0), err: ErrPacketIDZero},
	{name: "malformed/subscribe 5.0 without property length", version: 5, // MQTT-2.2.2-1
		raw: pk(0x82, u16(1)), err: ErrShortPacket},
	{name: "malformed/subscribe 3.1.1 without options byte", version: 4,
		raw: pk(0x82, u16(1), str("a")), err: ErrShortPacket},
	{name: "malformed/subscribe 5.0 second filter without options byte", version: 5,
		raw: pk(0x82, u16(1), props(), str("a"), 0, str("b")), err: ErrShortPacket},

	// SUBSCRIBE: options. Before 5.0 the byte is the requested QoS and bits
	// 2-7 are reserved (3.1.1 MQTT-3-8.3-4, the id as the 3.1.1 text spells
	// it), so "no local" does not exist there.
	{name: "malformed/subscribe 3.1.1 reserved option bit 2", version: 4, // 3.1.1 MQTT-3-8.3-4
		raw: pk(0x82, u16(1), str("a"), 0x04), err: ErrSubscribeOptions311},
	{name: "malformed/subscribe 3.1.1 reserved option bit 7", version: 4, // 3.1.1 MQTT-3-8.3-4
		raw: pk(0x82, u16(1), str("a"), 0x81), err: ErrSubscribeOptions311},
	{name: "malformed/subscribe 3.1.1 qos 3", version: 4, // 3.1.1 MQTT-3-8.3-4
		raw: pk(0x82, u16(1), str("a"), 0, str("b"), 3), err: ErrSubscribeOptions311},
	{name: "malformed/subscribe 3.1 qos 3", version: 3, // 3.1 section 3.8
		raw: pk(0x82, u16(1), str("a"), 3), err: ErrSubscribeOptions311},
	{name: "malformed/subscribe 5.0 reserved option bit 6", version: 5, // MQTT-3.8.3-5
		raw: pk(0x82, u16(1), props(), str("a"), 0x40), err: ErrSubscribeOptions},
	{name: "malformed/subscribe 5.0 reserved option bit 7", version: 5, // MQTT-3.8.3-5
		raw: pk(0x82, u16(1), props(), str("a"), 0x81), err: ErrSubscribeOptions},
	{name: "malformed/subscribe 5.0 qos 3", version: 5, // 3.8.3.1
		raw: pk(0x82, u16(1), props(), str("a"), 0x03), err: ErrSubscribeQoS},
	{name: "malformed/subscribe 5.0 retain handling 3", version: 5, // 3.8.3.1
		raw: pk(0x82, u16(1), props(), str("a"), 0x31), err: ErrRetainHandling},
	{name: "malformed/subscribe 5.0 no local on a shared subscription", version: 5, // MQTT-3.8.3-4
		raw: pk(0x82, u16(1), props(), str("a"), 0x04, str("$share/g/t"), 0x05), err: ErrSharedNoLocal},

	// SUBSCRIBE: filters (MQTT-3.8.3-1) and 5.0 properties.
	{name: "malformed/subscribe 3.1.1 filter ill-formed UTF-8", version: 4, // MQTT-3.8.3-1
		raw: pk(0x82, u16(1), str("a/\xff"), 0), err: ErrInvalidUTF8},
	{name: "malformed/subscribe 5.0 filter with U+0000", version: 5, // MQTT-1.5.4-2, MQTT-4.7.3-2
		raw: pk(0x82, u16(1), props(), str("a/\x00"), 0), err: ErrNullCharacter},
	{name: "malformed/subscribe 3.1 filter with a surrogate", version: 3, // MQTT-1.5.4-1
		raw: pk(0x82, u16(1), str("\xed\xa0\x80/#"), 0), err: ErrInvalidUTF8},
	{name: "malformed/subscribe 5.0 subscription identifier twice", version: 5, // 3.8.2.1.2
		raw: pk(0x82, u16(1), props(0x0B, vi(1), 0x0B, vi(2)), str("a"), 0), err: ErrPropertyDuplicate},
	{name: "malformed/subscribe 5.0 subscription identifier 0", version: 5, // 3.8.2.1.2
		raw: pk(0x82, u16(1), props(0x0B, vi(0)), str("a"), 0), err: ErrSubscriptionIDZero},
	{name: "malformed/subscribe 5.0 topic alias property", version: 5, // 2.2.2.2
		raw: pk(0x82, u16(1), props(0x23, u16(1)), str("a"), 0), err: ErrPropertyUnknown},

	// SUBACK (3.1.1 MQTT-3.9.3-2; 5.0 MQTT-3.9.3-2).
	{name: "malformed/suback 3.1.1 return code 0x03", version: 4,
		raw: pk(0x90, u16(1), 0x00, 0x03), err: ErrSubackCode},
	{name: "malformed/suback 5.0 reason code 0x03", version: 5,
		raw: pk(0x90, u16(1), props(), 0x03), err: ErrSubackCode},
	{name: "malformed/suback 5.0 reason code 0x11", version: 5,
		raw: pk(0x90, u16(1), props(), 0x00, 0x11), err: ErrSubackCode},
	{name: "malformed/suback 3.1.1 without return codes", version: 4, // MQTT-3.8.4-6
		raw: pk(0x90, u16(1)), err: ErrShortPacket},
	{name: "malformed/suback 5.0 without reason codes", version: 5, // MQTT-3.8.4-6
		raw: pk(0x90, u16(1), props()), err: ErrShortPacket},

	// UNSUBSCRIBE (MQTT-3.10.3-1, MQTT-3.10.3-2).
	{name: "malformed/unsubscribe 3.1.1 without filters", version: 4, // MQTT-3.10.3-2
		raw: pk(0xA2, u16(1)), err: ErrNoUnsubscriptions},
	{name: "malformed/unsubscribe 5.0 without filters", version: 5, // MQTT-3.10.3-2
		raw: pk(0xA2, u16(1), props()), err: ErrNoUnsubscriptions},
	{name: "malformed/unsubscribe 3.1 packet id 0", version: 3,
		raw: pk(0xA2, u16(0), str("a")), err: ErrPacketIDZero},
	{name: "malformed/unsubscribe 3.1.1 filter ill-formed UTF-8", version: 4, // MQTT-3.10.3-1
		raw: pk(0xA2, u16(1), str("a"), str("\xfe")), err: ErrInvalidUTF8},
	{name: "malformed/unsubscribe 5.0 filter with U+0000", version: 5, // MQTT-3.10.3-1, MQTT-1.5.4-2
		raw: pk(0xA2, u16(1), props(), str("\x00")), err: ErrNullCharacter},

	// UNSUBACK (MQTT-3.11.3-2; before 5.0 it carries only the packet id).
	{name: "malformed/unsuback 5.0 reason code 0x01", version: 5, // MQTT-3.11.3-2
		raw: pk(0xB0, u16(1), props(), 0x00, 0x01), err: ErrReasonCode},
	{name: "malformed/unsuback 5.0 without reason codes", version: 5,
		raw: pk(0xB0, u16(1), props()), err: ErrShortPacket},
	{name: "malformed/unsuback 3.1.1 remaining length 3", version: 4, // 3.1.1 3.11.1
		raw: pk(0xB0, u16(1), 0x00), err: ErrTrailingBytes},
	{name: "malformed/unsuback 3.1 remaining length 4", version: 3,
		raw: pk(0xB0, u16(1), 0x00, 0x00), err: ErrTrailingBytes},

	// Maximum packet size: refused from the fixed header alone, before any of
	// the body arrives (MQTT-3.2.2-15 from the server's side).
	{name: "malformed/publish 3.1.1 declares 256 MB over a 1 MB limit", version: 4, maxSize: 1 << 20,
		raw: []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, err: ErrPacketTooLarge},
	{name: "malformed/subscribe 5.0 declares 200 bytes over a 100 byte limit", version: 5, maxSize: 100,
		raw: []byte{0x82, 0xC8, 0x01}, err: ErrPacketTooLarge},
	{name: "malformed/connect declares 100 bytes over a 64 byte limit", version: 0, maxSize: 64,
		raw: []byte{0x10, 0x64}, err: ErrPacketTooLarge},
}
