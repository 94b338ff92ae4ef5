package codeccompare

import (
	"bytes"
	"strings"
)

// wireCase is one packet on the wire, written out by hand so that no codec
// under test produces the input the others are measured on, together with the
// values it carries. The decoders are checked against those values and the
// encoders, given those values, must reproduce raw byte for byte.
type wireCase struct {
	name    string // sub-benchmark case, e.g. "publish-311-64B"
	version byte   // protocol level: 4 (3.1.1) or 5 (5.0)
	raw     []byte

	msg message
}

// message is what a packet carries, in the same terms for every codec.
type message struct {
	kind byte // 1 CONNECT, 3 PUBLISH, 8 SUBSCRIBE (the wire packet type)

	// PUBLISH, no dup, no retain.
	qos      byte
	topic    string
	packetID uint16 // PUBLISH and SUBSCRIBE
	payload  []byte
	// 5.0 PUBLISH properties; zero when absent.
	expiry      uint32
	contentType string
	user        [][2]string

	// CONNECT, username and password set, no will.
	clean     bool
	clientID  string
	username  string
	password  string
	keepAlive uint16

	// SUBSCRIBE
	filters []filter
}

type filter struct {
	topic string
	qos   byte
}

const (
	kindConnect   = 1
	kindPublish   = 3
	kindSubscribe = 8
)

// The values of the cases. The 5.0 PUBLISH properties are the three the brief
// names, in identifier order, which is the order all three encoders write.
const (
	pubTopic     = "tern/bench/sensors/42/temperature"
	pubPacketID  = 4242
	propExpiry   = 3600
	propCType    = "application/json"
	propUserKey  = "trace-id"
	propUserVal  = "4bf92f3577b34da6"
	connClientID = "tern-bench-client-0001"
	connUsername = "bench-user"
	connPassword = "s3cr3t-passw0rd"
	connKeep     = 60
	subPacketID  = 4243
)

var subFilters = []filter{
	{"sensors/+/temperature", 1},
	{"devices/#", 0},
	{"tern/bench/events", 2},
}

// cases is the table shared by the correctness test and the benchmarks.
var cases = []*wireCase{
	publishCase("publish-311-64B", 4, 64),
	publishCase("publish-311-4KiB", 4, 4096),
	publishCase("publish-5-64B", 5, 64),
	publishCase("publish-5-4KiB", 5, 4096),
	{
		name:    "connect-311",
		version: 4,
		raw: frame(0x10, // CONNECT
			str("MQTT"), []byte{4}, // protocol name, level 4
			[]byte{0xC2},        // flags: username, password, clean session
			[]byte{0, connKeep}, // keep alive
			str(connClientID), str(connUsername), str(connPassword)),
		msg: message{kind: kindConnect, clean: true, clientID: connClientID,
			username: connUsername, password: connPassword, keepAlive: connKeep},
	},
	{
		name:    "subscribe-311",
		version: 4,
		raw: frame(0x82, // SUBSCRIBE, reserved flags 0010 (MQTT-3.8.1-1)
			u16(subPacketID),
			str(subFilters[0].topic), []byte{subFilters[0].qos},
			str(subFilters[1].topic), []byte{subFilters[1].qos},
			str(subFilters[2].topic), []byte{subFilters[2].qos}),
		msg: message{kind: kindSubscribe, packetID: subPacketID, filters: subFilters},
	},
}

// publishCase builds a QoS 1 PUBLISH with a payload of n bytes; at level 5
// it carries the three properties.
func publishCase(name string, version byte, n int) *wireCase {
	payload := []byte(strings.Repeat("0123456789abcdef", n/16+1)[:n])
	parts := [][]byte{str(pubTopic), u16(pubPacketID)}
	if version == 5 {
		props := bytes.Join([][]byte{
			{0x02, 0, 0, propExpiry >> 8, propExpiry & 0xff},                       // message expiry interval
			append([]byte{0x03}, str(propCType)...),                                // content type
			append(append([]byte{0x26}, str(propUserKey)...), str(propUserVal)...), // user property
		}, nil)
		parts = append(parts, varint(len(props)), props)
	}
	parts = append(parts, payload)
	c := &wireCase{
		name:    name,
		version: version,
		raw:     frame(0x32, parts...), // PUBLISH, QoS 1
		msg: message{kind: kindPublish, qos: 1, topic: pubTopic, packetID: pubPacketID,
			payload: payload},
	}
	if version == 5 {
		c.msg.expiry = propExpiry
		c.msg.contentType = propCType
		c.msg.user = [][2]string{{propUserKey, propUserVal}}
	}
	return c
}

// frame returns a packet: the first byte, the remaining length and the body.
func frame(first byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(append([]byte{first}, varint(len(b))...), b...)
}

// varint is the variable byte integer of section 1.5.5.
func varint(n int) []byte {
	var b []byte
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// str is a UTF-8 string with its two-byte length (section 1.5.4).
func str(s string) []byte { return append(u16(uint16(len(s))), s...) }
