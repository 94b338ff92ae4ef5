package wal

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestKeyOrderIsNumeric(t *testing.T) {
	nums := []uint64{0, 1, 2, 255, 256, 65535, 65536, 1 << 32, 1<<56 + 1, 1<<64 - 1}
	f := func(name string, key func(uint64) []byte) {
		t.Helper()
		nums := nums
		if name == "inbound" {
			nums = nums[:6] // packet ids are 16 bits
		}
		for i := 1; i < len(nums); i++ {
			a, b := key(nums[i-1]), key(nums[i])
			if bytes.Compare(a, b) >= 0 {
				t.Errorf("%s: key(%d)=%x not below key(%d)=%x", name, nums[i-1], a, nums[i], b)
			}
		}
	}
	f("queue", func(n uint64) []byte { return queueKey(nil, []byte("client"), n) })
	f("message", func(n uint64) []byte { return messageKey(nil, n) })
	f("log", func(n uint64) []byte { return logKey(nil, n) })
	f("inbound", func(n uint64) []byte { return inboundKey(nil, []byte("c"), uint16(n)) })
}

func TestFamiliesAreContiguous(t *testing.T) {
	// Every family's keys lie in [fam, fam+1), whatever the client id.
	cid := []byte{0xFF, 0xFF, 0xFF}
	keys := map[byte][]byte{
		famSession: sessionKey(nil, cid), famSub: subKey(nil, cid, []byte{0xFF}),
		famQueue: queueKey(nil, cid, 1<<64-1), famInbound: inboundKey(nil, cid, 0xFFFF),
		famWill: willKey(nil, cid), famMessage: messageKey(nil, 1<<64-1),
		famRetained: retainedKey(nil, []byte{0xFF, 0xFF}), famLog: logKey(nil, 1<<64-1),
		famMeta: metaKey(nil, metaCounters),
	}
	for fam, k := range keys {
		lo, hi := familyBounds(fam)
		if bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) >= 0 {
			t.Errorf("%s key %x outside [%x, %x)", familyName(fam), k, lo, hi)
		}
	}
}

// keysOf returns keys of client cid in every session family.
func keysOf(cid []byte) [][]byte {
	return [][]byte{
		sessionKey(nil, cid), willKey(nil, cid),
		subKey(nil, cid, []byte("a")), subKey(nil, cid, []byte{0}), subKey(nil, cid, []byte{0xFF, 0xFF}),
		subKey(nil, cid, []byte("\x01a")),
		queueKey(nil, cid, 0), queueKey(nil, cid, 1<<64-1),
		inboundKey(nil, cid, 0), inboundKey(nil, cid, 0xFFFF),
	}
}

// inRange reports whether k falls in the deletion range of cid in k's family.
func inRange(k, cid []byte) bool {
	p := clientPrefix(nil, k[0], cid)
	return bytes.Compare(k, p) >= 0 && bytes.Compare(k, prefixEnd(p)) < 0
}

func TestClientIDsNeverCollide(t *testing.T) {
	// Pairs where one id is a prefix of the other, ids with the bytes a length
	// prefix or a sequence number would have, empty and 0xFF ids.
	ids := [][]byte{
		{}, []byte("a"), []byte("a\x00"), []byte("a\x01"), []byte("ab"), []byte("a\x01a"), []byte("\x01a"),
		{0xFF}, {0xFF, 0xFF}, {0}, {0, 0}, bytes.Repeat([]byte("x"), 127), bytes.Repeat([]byte("x"), 128),
		bytes.Repeat([]byte("x"), 300), append(bytes.Repeat([]byte("x"), 127), 0),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		id := make([]byte, rng.IntN(6))
		for i := range id {
			id[i] = []byte{0, 1, 2, 'a', 0xFF}[rng.IntN(5)]
		}
		ids = append(ids, id)
	}
	for i, a := range ids {
		for _, k := range keysOf(a) {
			ck, err := parseClientKey(k)
			if err != nil {
				t.Fatalf("parse %x: %v", k, err)
			}
			if !bytes.Equal(ck.cid, a) {
				t.Fatalf("parse %x: client %x, want %x", k, ck.cid, a)
			}
			for j, b := range ids {
				if i == j || bytes.Equal(a, b) {
					continue
				}
				if inRange(k, b) {
					t.Fatalf("key %x of client %q lies in the range of client %q", k, a, b)
				}
			}
			if !inRange(k, a) {
				t.Fatalf("key %x of client %q outside its own range", k, a)
			}
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	f := func(in, want []byte) {
		t.Helper()
		if got := prefixEnd(in); !bytes.Equal(got, want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", in, got, want)
		}
	}
	f([]byte{1}, []byte{2})
	f([]byte{1, 0xFF}, []byte{2})
	f([]byte{1, 2, 0xFF, 0xFF}, []byte{1, 3})
	f([]byte{0xFF}, nil)
	in := []byte{1, 0xFF}
	prefixEnd(in)
	if !bytes.Equal(in, []byte{1, 0xFF}) {
		t.Errorf("prefixEnd modified its argument: %x", in)
	}
}

func TestParseClientKeyRejectsGarbage(t *testing.T) {
	f := func(k []byte) {
		t.Helper()
		if _, err := parseClientKey(k); err == nil {
			t.Errorf("parseClientKey(%x) succeeded", k)
		}
	}
	f(nil)
	f([]byte{famSession})
	f([]byte{famSession, 5, 'a'})                     // length past the end
	f([]byte{famSession, 0x80})                       // truncated varint
	f([]byte{famSession, 1, 'a', 'b'})                // bytes after a session id
	f([]byte{famQueue, 1, 'a', 1, 2, 3})              // short sequence
	f([]byte{famInbound, 1, 'a', 1})                  // short packet id
	f([]byte{famSub, 1, 'a'})                         // no filter
	f([]byte{famMessage, 1, 'a'})                     // not a session family
	f(slices.Concat([]byte{famWill, 2}, []byte("a"))) // short id
}
