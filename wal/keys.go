package wal

import (
	"encoding/binary"
	"fmt"
)

// Key layout. Every key starts with one family byte, so that a family is one
// contiguous key range and a whole family can be iterated or counted without
// touching the others. Numbers are big-endian so that byte order is numeric
// order. Client ids and topic filters are arbitrary bytes (MQTT allows any
// UTF-8, including U+0000), so a client id is written with a uvarint length
// in front: a varint is self-delimiting, so the key of one client id is never
// a prefix of the keys of a longer client id that starts with the same bytes
// ("a" and "a\x00..." differ in their length byte), and all keys of one
// session in one family share the prefix family|len|clientID. Within a
// family, sessions are therefore ordered by id length first, then by bytes;
// nothing depends on that order.
//
//	meta       0x01 name                          -> meta record
//	session    0x10 len cid                       -> Session
//	sub        0x11 len cid filter                -> Subscription
//	queue      0x12 len cid seq(8)                -> QueueEntry
//	inbound    0x13 len cid packetID(2)           -> InboundQoS2
//	will       0x14 len cid                       -> Will
//	message    0x20 id(8)                         -> Message (stored once, referenced by queue entries)
//	retained   0x21 topic                         -> Message without topic
//	log        0x30 seq(8)                        -> LogRecord
//
// Topics of retained messages and filters end their key, so they need no
// length: nothing follows them.
const (
	famMeta     byte = 0x01
	famSession  byte = 0x10
	famSub      byte = 0x11
	famQueue    byte = 0x12
	famInbound  byte = 0x13
	famWill     byte = 0x14
	famMessage  byte = 0x20
	famRetained byte = 0x21
	famLog      byte = 0x30
)

// sessionFamilies are the families whose keys start with a client id; a
// session's deletion clears its range in each of them.
var sessionFamilies = [...]byte{famSession, famSub, famQueue, famInbound, famWill}

// familyName names a family in check reports and errors.
func familyName(f byte) string {
	switch f {
	case famMeta:
		return "meta"
	case famSession:
		return "session"
	case famSub:
		return "subscription"
	case famQueue:
		return "queue"
	case famInbound:
		return "inbound-qos2"
	case famWill:
		return "will"
	case famMessage:
		return "message"
	case famRetained:
		return "retained"
	case famLog:
		return "log"
	}
	return fmt.Sprintf("unknown(0x%02x)", f)
}

// Names of meta keys.
const (
	metaFormat   = "format"   // the store's format marker, written at creation
	metaCounters = "counters" // allocator high-water marks, rewritten by every commit
)

// formatMarker is the value of the format meta key. A directory that holds a
// Pebble store without it is not a tern store.
const formatMarker = "tern-wal-1"

// All key builders append to dst and return the extended slice; they never
// keep dst or their arguments.

func metaKey(dst []byte, name string) []byte {
	dst = append(dst, famMeta)
	return append(dst, name...)
}

// clientPrefix is family|uvarint(len(cid))|cid: the prefix of every key of
// client cid in family fam.
func clientPrefix(dst []byte, fam byte, cid []byte) []byte {
	dst = append(dst, fam)
	dst = binary.AppendUvarint(dst, uint64(len(cid)))
	return append(dst, cid...)
}

func sessionKey(dst, cid []byte) []byte { return clientPrefix(dst, famSession, cid) }

func subKey(dst, cid, filter []byte) []byte {
	return append(clientPrefix(dst, famSub, cid), filter...)
}

func queueKey(dst, cid []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(clientPrefix(dst, famQueue, cid), seq)
}

func inboundKey(dst, cid []byte, packetID uint16) []byte {
	return binary.BigEndian.AppendUint16(clientPrefix(dst, famInbound, cid), packetID)
}

func willKey(dst, cid []byte) []byte { return clientPrefix(dst, famWill, cid) }

func messageKey(dst []byte, id uint64) []byte {
	dst = append(dst, famMessage)
	return binary.BigEndian.AppendUint64(dst, id)
}

func retainedKey(dst, topic []byte) []byte {
	dst = append(dst, famRetained)
	return append(dst, topic...)
}

func logKey(dst []byte, seq uint64) []byte {
	dst = append(dst, famLog)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// familyBounds returns the key range [lo, hi) of a whole family.
func familyBounds(fam byte) (lo, hi []byte) { return []byte{fam}, []byte{fam + 1} }

// prefixEnd returns the smallest key greater than every key with prefix p:
// p with its last byte below 0xFF incremented and what follows cut. p is not
// modified. It returns nil (no upper bound) when p is all 0xFF, which cannot
// happen for our keys: they start with a family byte below 0xFF.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// clientKey is a key of one of the session families taken apart. Its slices
// point into the key it was parsed from.
type clientKey struct {
	fam  byte
	cid  []byte
	rest []byte // filter, 8-byte seq or 2-byte packet id; empty for session and will
}

// parseClientKey splits a key of a session family, checking that the rest has
// the size its family requires.
func parseClientKey(k []byte) (clientKey, error) {
	if len(k) < 2 {
		return clientKey{}, fmt.Errorf("%w: key %x too short", ErrCorrupt, k)
	}
	ck := clientKey{fam: k[0]}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || n > uint64(len(k)-1-w) {
		return clientKey{}, fmt.Errorf("%w: %s key %x: bad client id length", ErrCorrupt, familyName(ck.fam), k)
	}
	start := 1 + w
	ck.cid = k[start : start+int(n) : start+int(n)]
	ck.rest = k[start+int(n):]
	want := -1
	switch ck.fam {
	case famSession, famWill:
		want = 0
	case famQueue:
		want = 8
	case famInbound:
		want = 2
	case famSub:
		if len(ck.rest) == 0 {
			return clientKey{}, fmt.Errorf("%w: subscription key %x without a filter", ErrCorrupt, k)
		}
	default:
		return clientKey{}, fmt.Errorf("%w: key %x is not in a session family", ErrCorrupt, k)
	}
	if want >= 0 && len(ck.rest) != want {
		return clientKey{}, fmt.Errorf("%w: %s key %x: %d bytes after the client id, want %d",
			ErrCorrupt, familyName(ck.fam), k, len(ck.rest), want)
	}
	return ck, nil
}

func (ck clientKey) seq() uint64      { return binary.BigEndian.Uint64(ck.rest) }
func (ck clientKey) packetID() uint16 { return binary.BigEndian.Uint16(ck.rest) }
func (ck clientKey) family() string   { return familyName(ck.fam) }

// parseIDKey reads the 8-byte big-endian number of a message or log key.
func parseIDKey(k []byte, fam byte) (uint64, error) {
	if len(k) != 9 || k[0] != fam {
		return 0, fmt.Errorf("%w: %s key %x: want 9 bytes", ErrCorrupt, familyName(fam), k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}
