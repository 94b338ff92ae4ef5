package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// tagSize is the length of the tag that starts every accounted payload:
	// the stream (4 bytes) and the message's sequence number in it (8),
	// big-endian.
	tagSize = 12
	// payloadSize is the size of every payload the soak publishes.
	payloadSize = 64
	// maxSeq bounds the sequence numbers a tally accepts, so that a
	// corrupted tag cannot make it allocate without bound: 2^24 is a day of
	// one stream at 190 msg/s.
	maxSeq = 1 << 24
)

// putTag writes the tag of message seq of stream at the start of b.
func putTag(b []byte, stream uint32, seq uint64) {
	binary.BigEndian.PutUint32(b, stream)
	binary.BigEndian.PutUint64(b[4:], seq)
}

// readTag reads the tag putTag wrote; ok is false for a payload too short.
func readTag(b []byte) (stream uint32, seq uint64, ok bool) {
	if len(b) < tagSize {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:]), true
}

// newPayload returns a payload of payloadSize bytes tagged with stream and seq.
func newPayload(stream uint32, seq uint64) []byte {
	b := make([]byte, payloadSize)
	for i := tagSize; i < len(b); i++ {
		b[i] = 'x'
	}
	putTag(b, stream, seq)
	return b
}

// bitset is a set of sequence numbers.
type bitset []uint64

func (s *bitset) set(i uint64) {
	for uint64(len(*s)) <= i/64 {
		*s = append(*s, 0)
	}
	(*s)[i/64] |= 1 << (i % 64)
}

func (s bitset) has(i uint64) bool { return i/64 < uint64(len(s)) && s[i/64]&(1<<(i%64)) != 0 }

// tally counts the deliveries of one stream to one subscriber by sequence
// number. It is not safe for concurrent use.
type tally struct {
	got   []uint8 // deliveries per sequence number, saturating at 255
	bogus int64   // deliveries with no valid tag, another stream's tag, or the wrong QoS
}

// add records a delivery of seq and reports whether it was the first.
func (t *tally) add(seq uint64) bool {
	if seq >= maxSeq {
		t.bogus++
		return false
	}
	if seq >= uint64(len(t.got)) {
		t.got = append(t.got, make([]uint8, int(seq)+1-len(t.got)+len(t.got)/2)...)
	}
	if t.got[seq] < 255 {
		t.got[seq]++
	}
	return t.got[seq] == 1
}

// delivered reports whether seq was delivered at least once.
func (t *tally) delivered(seq uint64) bool { return seq < uint64(len(t.got)) && t.got[seq] > 0 }

// verdict is the accounting of one stream at one subscriber.
type verdict struct {
	Acked      int64 `json:"acked"`      // messages the broker acknowledged to the publisher
	Lost       int64 `json:"lost"`       // acknowledged and never delivered
	Duplicates int64 `json:"duplicates"` // deliveries beyond the first of a message
	Unexpected int64 `json:"unexpected"` // deliveries of a message never sent, or bogus
}

func (v *verdict) addUp(o verdict) {
	v.Acked += o.Acked
	v.Lost += o.Lost
	v.Duplicates += o.Duplicates
	v.Unexpected += o.Unexpected
}

// judge compares what t received with what the publisher sent (sequence
// numbers below sent) and had acknowledged (acked). A message sent but not
// acknowledged may or may not arrive: neither counts against the broker.
func judge(sent uint64, acked bitset, t *tally) verdict {
	v := verdict{Unexpected: t.bogus}
	for seq := range sent {
		if acked.has(seq) {
			v.Acked++
			if !t.delivered(seq) {
				v.Lost++
			}
		}
	}
	for seq, n := range t.got {
		switch {
		case n == 0:
		case uint64(seq) >= sent:
			v.Unexpected += int64(n)
		default:
			v.Duplicates += int64(n) - 1
		}
	}
	return v
}

// errorLog collects the errors of the clients: counts by kind and the first
// few messages, for the report.
type errorLog struct {
	total  atomic.Int64
	mu     sync.Mutex
	byKind map[string]int64
	first  []string
}

// maxErrorLines is how many error messages the report keeps.
const maxErrorLines = 20

func newErrorLog() *errorLog { return &errorLog{byKind: map[string]int64{}} }

func (e *errorLog) add(kind string, err error) {
	e.total.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.byKind[kind]++
	if len(e.first) < maxErrorLines {
		e.first = append(e.first, fmt.Sprintf("%s: %v", kind, err))
	}
}

func (e *errorLog) snapshot() (map[string]int64, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	kinds := make(map[string]int64, len(e.byKind))
	for k, n := range e.byKind {
		kinds[k] = n
	}
	return kinds, append([]string(nil), e.first...)
}

// counters are the running totals the sampler turns into rates.
type counters struct {
	churnCycles  atomic.Int64
	takeovers    atomic.Int64
	reconnects   atomic.Int64
	topicRecv    atomic.Int64
	fanoutRecv   atomic.Int64
	trackedAcked atomic.Int64
}

// pace calls send with the number of messages due, once per tick, until ctx
// is done or send returns false, so that a sender keeps rate per second on
// average. Messages send does not send (a full window) are not owed later,
// and neither is a lag of more than a second: a stalled broker gets the
// usual rate when it recovers, not a burst.
func pace(ctx context.Context, rate float64, send func(n int) bool) {
	if rate <= 0 {
		return
	}
	tick := max(time.Duration(float64(time.Second)/rate), 10*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	done := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := time.Since(start).Seconds()*rate - done
		if due > rate {
			done += due - rate
			due = rate
		}
		n := int(due)
		if n == 0 {
			continue
		}
		done += float64(n)
		if !send(n) {
			return
		}
	}
}

// sleepCtx sleeps for d or until ctx is done, and reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
