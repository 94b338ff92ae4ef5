package wal

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// recordCases are one encoded value of each record type, shared by the round
// trip and truncation tests and the fuzz seeds. The first byte of a fuzz
// input picks the decoder (see decodeAny).
var recordCases = []struct {
	name string
	kind byte
	val  any
	enc  []byte
}{
	{"session", 0, Session{Expiry: 3600, Version: 5, ConnectedAt: 1700000000123456789, DisconnectedAt: -1},
		appendSession(nil, &Session{Expiry: 3600, Version: 5, ConnectedAt: 1700000000123456789, DisconnectedAt: -1})},
	{"session never expires", 0, Session{Expiry: 0xFFFFFFFF, Version: 4},
		appendSession(nil, &Session{Expiry: 0xFFFFFFFF, Version: 4})},
	{"subscription", 1, Subscription{QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, SubID: 268435455},
		appendSubscription(nil, &Subscription{QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, SubID: 268435455})},
	{"subscription plain", 1, Subscription{QoS: 1}, appendSubscription(nil, &Subscription{QoS: 1})},
	{"message", 2, Message{Topic: []byte("a/b"), Payload: []byte("hello\x00"), Props: []byte{0x01, 0x01}, QoS: 1,
		Retain: true, Created: 5, ExpireAt: 10, Origin: 7},
		appendMessage(nil, &Message{Topic: []byte("a/b"), Payload: []byte("hello\x00"), Props: []byte{0x01, 0x01},
			QoS: 1, Retain: true, Created: 5, ExpireAt: 10, Origin: 7}, true)},
	{"retained", 3, Message{Payload: []byte("on"), QoS: 2, Created: 1},
		appendMessage(nil, &Message{Payload: []byte("on"), QoS: 2, Created: 1}, false)},
	{"queue entry", 4, QueueEntry{MsgID: 1 << 40, QoS: 2, Retain: true, State: PubrecReceived, PacketID: 65535, SubIDs: []uint32{1, 268435455}},
		appendQueueEntry(nil, &QueueEntry{MsgID: 1 << 40, QoS: 2, Retain: true, State: PubrecReceived, PacketID: 65535, SubIDs: []uint32{1, 268435455}})},
	{"queue entry queued", 4, QueueEntry{MsgID: 1, QoS: 1}, appendQueueEntry(nil, &QueueEntry{MsgID: 1, QoS: 1})},
	{"inbound", 5, int64(1234567), appendInbound(nil, 1234567)},
	{"will", 6, Will{Delay: 30, Msg: Message{Topic: []byte("bye"), Payload: []byte("gone"), QoS: 1, Created: 3}},
		appendWill(nil, &Will{Delay: 30, Msg: Message{Topic: []byte("bye"), Payload: []byte("gone"), QoS: 1, Created: 3}})},
	{"log", 7, LogRecord{Kind: KindPublish, QoS: 1, Size: 12, Time: 99, ClientID: []byte("c"), Topic: []byte("t")},
		appendLogRecord(nil, &LogRecord{Kind: KindPublish, QoS: 1, Size: 12, Time: 99, ClientID: []byte("c"), Topic: []byte("t")})},
	{"counters", 8, counters{NextMsgID: 10, NextSeq: 20, LogSeq: 30, Time: 40},
		appendCounters(nil, &counters{NextMsgID: 10, NextSeq: 20, LogSeq: 30, Time: 40})},
}

// decodeAny decodes b with the decoder numbered kind.
func decodeAny(kind byte, b []byte) (any, error) {
	switch kind % 9 {
	case 0:
		return decodeSession(b)
	case 1:
		return decodeSubscription(b)
	case 2:
		return decodeMessage(b, true)
	case 3:
		return decodeMessage(b, false)
	case 4:
		return decodeQueueEntry(b)
	case 5:
		return decodeInbound(b)
	case 6:
		return decodeWill(b)
	case 7:
		return decodeLogRecord(b)
	default:
		return decodeCounters(b)
	}
}

// encodeAny encodes a decoded value again.
func encodeAny(kind byte, v any) []byte {
	switch kind % 9 {
	case 0:
		s := v.(Session)
		return appendSession(nil, &s)
	case 1:
		s := v.(Subscription)
		return appendSubscription(nil, &s)
	case 2, 3:
		m := v.(Message)
		return appendMessage(nil, &m, kind%9 == 2)
	case 4:
		e := v.(QueueEntry)
		return appendQueueEntry(nil, &e)
	case 5:
		return appendInbound(nil, v.(int64))
	case 6:
		w := v.(Will)
		return appendWill(nil, &w)
	case 7:
		r := v.(LogRecord)
		return appendLogRecord(nil, &r)
	default:
		c := v.(counters)
		return appendCounters(nil, &c)
	}
}

// normalize turns empty byte slices into nil so that DeepEqual compares
// contents.
func normalize(v any) any {
	switch x := v.(type) {
	case Message:
		x.Topic, x.Payload, x.Props = nilIfEmpty(x.Topic), nilIfEmpty(x.Payload), nilIfEmpty(x.Props)
		return x
	case Will:
		x.Msg = normalize(x.Msg).(Message)
		return x
	case LogRecord:
		x.ClientID, x.Topic = nilIfEmpty(x.ClientID), nilIfEmpty(x.Topic)
		return x
	}
	return v
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	for _, c := range recordCases {
		got, err := decodeAny(c.kind, c.enc)
		if err != nil {
			t.Errorf("%s: decode: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(normalize(got), normalize(c.val)) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.val)
		}
		if again := encodeAny(c.kind, got); !bytes.Equal(again, c.enc) {
			t.Errorf("%s: re-encoded %x, want %x", c.name, again, c.enc)
		}
	}
}

func TestRecordDecodersRejectDamage(t *testing.T) {
	for _, c := range recordCases {
		// Every truncation is an error, except for records ending in a
		// payload, where a shorter payload is still a valid record.
		for n := 0; n < len(c.enc); n++ {
			_, err := decodeAny(c.kind, c.enc[:n])
			endsInPayload := c.kind%9 == 2 || c.kind%9 == 3 || c.kind%9 == 6
			if err == nil && !endsInPayload {
				t.Errorf("%s: truncated to %d of %d bytes: no error", c.name, n, len(c.enc))
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: error %v does not wrap ErrCorrupt", c.name, err)
			}
		}
		// An unknown version.
		bad := append([]byte{recordVersion + 1}, c.enc[1:]...)
		if _, err := decodeAny(c.kind, bad); err == nil {
			t.Errorf("%s: version %d accepted", c.name, bad[0])
		}
		// Trailing bytes, for records that do not end in a payload.
		if k := c.kind % 9; k != 2 && k != 3 && k != 6 {
			if _, err := decodeAny(c.kind, append(bytes.Clone(c.enc), 0)); err == nil {
				t.Errorf("%s: trailing byte accepted", c.name)
			}
		}
	}
	f := func(kind byte, b []byte) {
		t.Helper()
		if _, err := decodeAny(kind, b); err == nil {
			t.Errorf("decoder %d accepted %x", kind, b)
		}
	}
	f(1, []byte{recordVersion, 3, 0})                                  // QoS 3
	f(1, []byte{recordVersion, 3 << 4, 0})                             // retain handling 3
	f(2, []byte{recordVersion, msgHasTopic | 3, 0, 0, 0, 0})           // QoS 3
	f(3, []byte{recordVersion, msgHasTopic, 0, 0, 0, 0, 0})            // topic in a retained message
	f(4, []byte{recordVersion, 3 << 3, 1, 0, 0})                       // state 3
	f(4, []byte{recordVersion, 1, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F}) // many sub ids, few bytes
	f(4, []byte{recordVersion, 1, 1, 0x80, 0x80, 0x04, 0})             // packet id 65536
	f(0, []byte{recordVersion, 0x80, 0x80, 0x80, 0x80, 0x10, 5, 0, 0}) // expiry 1<<32
	f(7, []byte{recordVersion, 1, 3, 0, 0, 0, 0})                      // log QoS 3
}

func FuzzDecodeRecords(f *testing.F) {
	for _, c := range recordCases {
		f.Add(append([]byte{c.kind}, c.enc...))
	}
	f.Add([]byte{4, recordVersion, 1, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		kind, b := in[0], in[1:]
		v, err := decodeAny(kind, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// What decodes re-encodes to something that decodes to the same.
		again, err := decodeAny(kind, encodeAny(kind, v))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", v, err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(v)) {
			t.Fatalf("round trip changed %+v into %+v", v, again)
		}
	})
}
