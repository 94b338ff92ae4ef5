package codec

import "errors"

// ReasonCode is an MQTT 5.0 reason code (section 2.4). For 3.1 and 3.1.1 the
// broker speaks in reason codes too and converts at the edge: see
// ConnackReturnCode and SubackReturnCode.
type ReasonCode byte

// MQTT 5.0 reason codes, section 2.4. Where one byte has several names the
// first is kept and the others are aliases.
const (
	Success                             ReasonCode = 0x00
	NormalDisconnection                 ReasonCode = 0x00
	GrantedQoS0                         ReasonCode = 0x00
	GrantedQoS1                         ReasonCode = 0x01
	GrantedQoS2                         ReasonCode = 0x02
	DisconnectWithWill                  ReasonCode = 0x04
	NoMatchingSubscribers               ReasonCode = 0x10
	NoSubscriptionExisted               ReasonCode = 0x11
	ContinueAuthentication              ReasonCode = 0x18
	ReAuthenticate                      ReasonCode = 0x19
	UnspecifiedError                    ReasonCode = 0x80
	MalformedPacket                     ReasonCode = 0x81
	ProtocolError                       ReasonCode = 0x82
	ImplementationSpecificError         ReasonCode = 0x83
	UnsupportedProtocolVersion          ReasonCode = 0x84
	ClientIdentifierNotValid            ReasonCode = 0x85
	BadUserNameOrPassword               ReasonCode = 0x86
	NotAuthorized                       ReasonCode = 0x87
	ServerUnavailable                   ReasonCode = 0x88
	ServerBusy                          ReasonCode = 0x89
	Banned                              ReasonCode = 0x8A
	ServerShuttingDown                  ReasonCode = 0x8B
	BadAuthenticationMethod             ReasonCode = 0x8C
	KeepAliveTimeout                    ReasonCode = 0x8D
	SessionTakenOver                    ReasonCode = 0x8E
	TopicFilterInvalid                  ReasonCode = 0x8F
	TopicNameInvalid                    ReasonCode = 0x90
	PacketIdentifierInUse               ReasonCode = 0x91
	PacketIdentifierNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded              ReasonCode = 0x93
	TopicAliasInvalid                   ReasonCode = 0x94
	PacketTooLarge                      ReasonCode = 0x95
	MessageRateTooHigh                  ReasonCode = 0x96
	QuotaExceeded                       ReasonCode = 0x97
	AdministrativeAction                ReasonCode = 0x98
	PayloadFormatInvalid                ReasonCode = 0x99
	RetainNotSupported                  ReasonCode = 0x9A
	QoSNotSupported                     ReasonCode = 0x9B
	UseAnotherServer                    ReasonCode = 0x9C
	ServerMoved                         ReasonCode = 0x9D
	SharedSubscriptionsNotSupported     ReasonCode = 0x9E
	ConnectionRateExceeded              ReasonCode = 0x9F
	MaximumConnectTime                  ReasonCode = 0xA0
	SubscriptionIdentifiersNotSupported ReasonCode = 0xA1
	WildcardSubscriptionsNotSupported   ReasonCode = 0xA2
)

var reasonNames = [256]string{
	0x00: "success", 0x01: "granted QoS 1", 0x02: "granted QoS 2",
	0x04: "disconnect with will message", 0x10: "no matching subscribers",
	0x11: "no subscription existed", 0x18: "continue authentication", 0x19: "re-authenticate",
	0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
	0x83: "implementation specific error", 0x84: "unsupported protocol version",
	0x85: "client identifier not valid", 0x86: "bad user name or password",
	0x87: "not authorized", 0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned",
	0x8B: "server shutting down", 0x8C: "bad authentication method", 0x8D: "keep alive timeout",
	0x8E: "session taken over", 0x8F: "topic filter invalid", 0x90: "topic name invalid",
	0x91: "packet identifier in use", 0x92: "packet identifier not found",
	0x93: "receive maximum exceeded", 0x94: "topic alias invalid", 0x95: "packet too large",
	0x96: "message rate too high", 0x97: "quota exceeded", 0x98: "administrative action",
	0x99: "payload format invalid", 0x9A: "retain not supported", 0x9B: "QoS not supported",
	0x9C: "use another server", 0x9D: "server moved", 0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded", 0xA0: "maximum connect time",
	0xA1: "subscription identifiers not supported", 0xA2: "wildcard subscriptions not supported",
}

func (r ReasonCode) String() string {
	if s := reasonNames[r]; s != "" {
		return s
	}
	return "unknown reason code"
}

// IsError reports whether r reports a failure: 5.0 reason codes of 0x80 and
// above are errors (section 2.4).
func (r ReasonCode) IsError() bool { return r >= 0x80 }

// Reason code sets per packet type (5.0 sections 3.2.2.2, 3.4.2.1, 3.5.2.1,
// 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1). A receiver treats any
// other value as a protocol error.
var (
	connackReasons    = reasonSet(0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F)
	pubackReasons     = reasonSet(0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99) // PUBACK and PUBREC
	pubrelReasons     = reasonSet(0x00, 0x92)                                           // PUBREL and PUBCOMP
	subackReasons     = reasonSet(0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2)
	unsubackReasons   = reasonSet(0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91)
	disconnectReasons = reasonSet(0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2)
	authReasons       = reasonSet(0x00, 0x18, 0x19)
	suback311Codes    = reasonSet(0x00, 0x01, 0x02, 0x80)
)

type reasonBits [4]uint64

func reasonSet(codes ...byte) reasonBits {
	var s reasonBits
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *reasonBits) has(c byte) bool { return s[c>>6]&(1<<(c&63)) != 0 }

// ValidFor reports whether r may be sent in a 5.0 packet of type t.
func (r ReasonCode) ValidFor(t PacketType) bool {
	switch t {
	case CONNACK:
		return connackReasons.has(byte(r))
	case PUBACK, PUBREC:
		return pubackReasons.has(byte(r))
	case PUBREL, PUBCOMP:
		return pubrelReasons.has(byte(r))
	case SUBACK:
		return subackReasons.has(byte(r))
	case UNSUBACK:
		return unsubackReasons.has(byte(r))
	case DISCONNECT:
		return disconnectReasons.has(byte(r))
	case AUTH:
		return authReasons.has(byte(r))
	}
	return false
}

// 3.1 and 3.1.1 CONNACK return codes (3.1.1 section 3.2.2.3).
const (
	ConnAccepted                  byte = 0x00
	ConnRefusedProtocolVersion    byte = 0x01
	ConnRefusedIdentifierRejected byte = 0x02
	ConnRefusedServerUnavailable  byte = 0x03
	ConnRefusedBadUsernameOrPass  byte = 0x04
	ConnRefusedNotAuthorized      byte = 0x05
)

// ConnackReturnCode converts a 5.0 CONNACK reason code to the closest 3.1.1
// return code. 3.1.1 has no code for most 5.0 refusals; those become "server
// unavailable", the one code that tells a client to try again later.
func ConnackReturnCode(r ReasonCode) byte {
	switch r {
	case Success:
		return ConnAccepted
	case UnsupportedProtocolVersion:
		return ConnRefusedProtocolVersion
	case ClientIdentifierNotValid:
		return ConnRefusedIdentifierRejected
	case BadUserNameOrPassword, BadAuthenticationMethod:
		return ConnRefusedBadUsernameOrPass
	case NotAuthorized, Banned:
		return ConnRefusedNotAuthorized
	}
	return ConnRefusedServerUnavailable
}

// connackReasonFromReturnCode maps a 3.1.1 return code to its 5.0 reason code
// so that decoded CONNACKs carry reason codes at every level.
func connackReasonFromReturnCode(c byte) (ReasonCode, bool) {
	switch c {
	case ConnAccepted:
		return Success, true
	case ConnRefusedProtocolVersion:
		return UnsupportedProtocolVersion, true
	case ConnRefusedIdentifierRejected:
		return ClientIdentifierNotValid, true
	case ConnRefusedServerUnavailable:
		return ServerUnavailable, true
	case ConnRefusedBadUsernameOrPass:
		return BadUserNameOrPassword, true
	case ConnRefusedNotAuthorized:
		return NotAuthorized, true
	}
	return 0, false
}

// SubackReturnCode converts a 5.0 SUBACK reason code to a 3.1.1 return code:
// a granted QoS, or 0x80 for any failure (3.1.1 section 3.9.3).
func SubackReturnCode(r ReasonCode) byte {
	if r <= GrantedQoS2 {
		return byte(r)
	}
	return 0x80
}

// Error is a decoding or validation failure together with the 5.0 reason code
// a broker answers it with and the normative statement it enforces. Errors are
// package-level values so that returning one allocates nothing; compare them
// with errors.Is.
type Error struct {
	Code ReasonCode
	Rule string // normative statement, e.g. "MQTT-3.3.2-2"; empty when none applies
	msg  string
}

func (e *Error) Error() string {
	if e.Rule == "" {
		return e.msg
	}
	return e.msg + " [" + e.Rule + "]"
}

func newErr(code ReasonCode, rule, msg string) *Error {
	return &Error{Code: code, Rule: rule, msg: "codec: " + msg}
}

// ReasonOf returns the 5.0 reason code a broker should answer err with:
// the code of a codec Error anywhere in err's chain, else UnspecifiedError.
func ReasonOf(err error) ReasonCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return UnspecifiedError
}

// ErrNeedMore is returned by Decode when buf does not yet hold a whole packet.
// It is not a protocol failure: read more bytes and call Decode again.
var ErrNeedMore = errors.New("codec: need more bytes")

// Decoding and validation errors. Rule names the 5.0 normative statement, or
// the 3.1.1 one where it says so; it is empty where the rule is in the text of
// the specification without a number (the comment names the section). The
// 3.1.1 numbers of the same rules often differ (1.5.4-1 is 3.1.1 1.5.3-1,
// 2.2.1-3 is 2.3.1-1, 4.7.1-1 is 4.7.1-2).
var (
	ErrMalformedVarint       = newErr(MalformedPacket, "", "variable byte integer longer than four bytes") // 1.5.5
	ErrVarintNotMinimal      = newErr(MalformedPacket, "MQTT-1.5.5-1", "variable byte integer not in the minimum number of bytes")
	ErrVarintTooLarge        = newErr(MalformedPacket, "", "variable byte integer value out of range")
	ErrReservedType          = newErr(MalformedPacket, "", "reserved packet type") // table 2-1
	ErrFixedHeaderFlags      = newErr(MalformedPacket, "MQTT-2.1.3-1", "invalid fixed header flags")
	ErrPacketTooLarge        = newErr(PacketTooLarge, "MQTT-3.2.2-15", "packet exceeds maximum packet size")
	ErrShortPacket           = newErr(MalformedPacket, "", "remaining length shorter than packet contents")
	ErrTrailingBytes         = newErr(MalformedPacket, "", "bytes after the end of packet contents")
	ErrInvalidUTF8           = newErr(MalformedPacket, "MQTT-1.5.4-1", "ill-formed UTF-8 string")
	ErrNullCharacter         = newErr(MalformedPacket, "MQTT-1.5.4-2", "UTF-8 string contains U+0000")
	ErrStringTooLong         = newErr(MalformedPacket, "", "string longer than 65535 bytes")
	ErrProtocolName          = newErr(UnsupportedProtocolVersion, "MQTT-3.1.2-1", "invalid protocol name")
	ErrProtocolVersion       = newErr(UnsupportedProtocolVersion, "MQTT-3.1.2-2", "unsupported protocol level")
	ErrConnectReserved       = newErr(MalformedPacket, "MQTT-3.1.2-3", "CONNECT reserved flag is set")
	ErrWillFlags             = newErr(MalformedPacket, "MQTT-3.1.2-11", "will QoS set without will flag")
	ErrWillRetain            = newErr(MalformedPacket, "MQTT-3.1.2-13", "will retain set without will flag")
	ErrWillQoS               = newErr(MalformedPacket, "MQTT-3.1.2-12", "will QoS is 3")
	ErrPasswordNoUsername    = newErr(MalformedPacket, "MQTT-3.1.2-22", "password flag set without user name flag (3.1.1)")
	ErrConnackFlags          = newErr(MalformedPacket, "MQTT-3.2.2-1", "CONNACK reserved flags are set")
	ErrConnackSessionPresent = newErr(ProtocolError, "MQTT-3.2.2-6", "session present set on a refused CONNACK")
	ErrReturnCode            = newErr(ProtocolError, "", "CONNACK return code reserved for future use") // 3.1.1 table 3.1
	ErrPublishQoS            = newErr(MalformedPacket, "MQTT-3.3.1-4", "PUBLISH QoS is 3")
	ErrPublishDupQoS0        = newErr(ProtocolError, "MQTT-3.3.1-2", "DUP flag set on a QoS 0 PUBLISH")
	ErrTopicWildcard         = newErr(TopicNameInvalid, "MQTT-3.3.2-2", "topic name contains a wildcard")
	ErrTopicEmpty            = newErr(ProtocolError, "", "empty topic name without a topic alias") // 3.3.2.1
	ErrPacketIDZero          = newErr(ProtocolError, "MQTT-2.2.1-3", "packet identifier is 0")
	ErrReasonCode            = newErr(ProtocolError, "", "reason code not allowed in this packet") // MQTT-3.x.2-1 of each packet
	ErrNoSubscriptions       = newErr(ProtocolError, "MQTT-3.8.3-2", "SUBSCRIBE without topic filters")
	ErrNoUnsubscriptions     = newErr(ProtocolError, "MQTT-3.10.3-2", "UNSUBSCRIBE without topic filters")
	ErrSubscribeOptions      = newErr(MalformedPacket, "MQTT-3.8.3-5", "SUBSCRIBE options reserved bits set")
	ErrSubscribeOptions311   = newErr(MalformedPacket, "3.1.1 MQTT-3-8.3-4", "SUBSCRIBE requested QoS has reserved bits set or is 3")
	ErrSubscribeQoS          = newErr(ProtocolError, "", "SUBSCRIBE maximum QoS is 3") // 3.8.3.1
	ErrRetainHandling        = newErr(ProtocolError, "", "retain handling is 3")       // 3.8.3.1
	ErrSharedNoLocal         = newErr(ProtocolError, "MQTT-3.8.3-4", "no local set on a shared subscription")
	ErrSubackCode            = newErr(ProtocolError, "MQTT-3.9.3-2", "invalid SUBACK return code")
	ErrVersionPacket         = newErr(MalformedPacket, "", "packet type not defined at this protocol level")
	ErrNoVersion             = newErr(ProtocolError, "MQTT-3.1.0-1", "packet before CONNECT")
	ErrSecondConnect         = newErr(ProtocolError, "MQTT-3.1.0-2", "second CONNECT")
	ErrAuthDataWithoutMethod = newErr(ProtocolError, "", "authentication data without authentication method") // 3.1.2.11.10
	ErrAuthMethodMissing     = newErr(ProtocolError, "MQTT-4.12.0-2", "AUTH without authentication method")
	ErrPropertyUnknown       = newErr(MalformedPacket, "", "unknown or misplaced property") // 2.2.2.2
	ErrPropertyDuplicate     = newErr(ProtocolError, "", "property included more than once")
	ErrPropertyValue         = newErr(ProtocolError, "", "property value out of range")
	ErrPropertyLength        = newErr(MalformedPacket, "", "property length exceeds packet")
	ErrTopicAliasZero        = newErr(TopicAliasInvalid, "MQTT-3.3.2-8", "topic alias is 0")
	ErrSubscriptionIDZero    = newErr(ProtocolError, "", "subscription identifier is 0")

	// Validation of topic names and filters (section 4.7, 4.8).
	ErrFilterEmpty    = newErr(TopicFilterInvalid, "MQTT-4.7.3-1", "empty topic filter")
	ErrFilterHash     = newErr(TopicFilterInvalid, "MQTT-4.7.1-1", "'#' not alone as the last level of a topic filter")
	ErrFilterPlus     = newErr(TopicFilterInvalid, "MQTT-4.7.1-2", "'+' not alone in its level of a topic filter")
	ErrShareName      = newErr(TopicFilterInvalid, "MQTT-4.8.2-1", "empty shared subscription name")
	ErrShareNameChars = newErr(TopicFilterInvalid, "MQTT-4.8.2-2", "shared subscription name holds '+' or '#'")
	ErrShareFilter    = newErr(TopicFilterInvalid, "MQTT-4.8.2-2", "shared subscription without a topic filter")
	ErrTopicTooLong   = newErr(TopicNameInvalid, "MQTT-4.7.3-3", "topic longer than 65535 bytes")
	ErrFilterTooLong  = newErr(TopicFilterInvalid, "MQTT-4.7.3-3", "topic filter longer than 65535 bytes")
	ErrTopicNameEmpty = newErr(TopicNameInvalid, "MQTT-4.7.3-1", "empty topic name")
)
