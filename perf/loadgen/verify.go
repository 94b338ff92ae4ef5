package loadgen

import (
	"encoding/binary"
	"sync"
)

// tagSize is the length of the tag that starts every payload when a run
// counts duplicates: the publisher's index (4 bytes, big-endian) and the
// message's sequence number from that publisher (8 bytes, big-endian).
const tagSize = 12

// putTag writes the tag of message seq of publisher pub into payload, which
// must hold at least tagSize bytes and belongs to the caller.
func putTag(payload []byte, pub int, seq uint64) {
	binary.BigEndian.PutUint32(payload, uint32(pub))
	binary.BigEndian.PutUint64(payload[4:], seq)
}

// tag identifies one message of one publisher.
type tag struct {
	pub uint32
	seq uint64
}

// maxSeq bounds the sequence numbers a subscriber accepts, so that a
// corrupt tag cannot make seen allocate without bound: 2^30 messages from one
// publisher is hours of load.
const maxSeq = 1 << 30

// readTag returns the tag at the start of payload, false when payload is too
// short to carry one or the tag is not one of the run's publishers'.
// payload is only read during the call.
func readTag(payload []byte, publishers int) (tag, bool) {
	if len(payload) < tagSize {
		return tag{}, false
	}
	t := tag{binary.BigEndian.Uint32(payload), binary.BigEndian.Uint64(payload[4:])}
	return t, int64(t.pub) < int64(publishers) && t.seq < maxSeq
}

// seen records which messages reached one subscriber, or one shared group of
// subscribers, to count those that came more than once: a bit per sequence
// number per publisher. Subscribers of one group share it, so it is locked,
// once per read rather than once per message.
type seen struct {
	mu   sync.Mutex
	bits [][]uint64 // by publisher index, then seq/64
}

func newSeen(publishers int) *seen {
	return &seen{bits: make([][]uint64, publishers)}
}

// add records tags (all with pub below the number of publishers) and returns
// how many of them were recorded before, by this call or an earlier one.
func (s *seen) add(tags []tag) int64 {
	var dups int64
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tags {
		b := s.bits[t.pub]
		w := int(t.seq / 64)
		if w >= len(b) {
			b = append(b, make([]uint64, w+1-len(b)+len(b)/2)...)
			s.bits[t.pub] = b
		}
		m := uint64(1) << (t.seq % 64)
		if b[w]&m != 0 {
			dups++
		}
		b[w] |= m
	}
	return dups
}
