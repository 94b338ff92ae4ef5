package main

import (
	"testing"

	"github.com/tern-mqtt/tern/internal/testutil"
)

func TestJudge(t *testing.T) {
	f := func(name string, sent uint64, acked []uint64, got []uint64, bogus int64, want verdict) {
		t.Helper()
		var a bitset
		for _, seq := range acked {
			a.set(seq)
		}
		tl := tally{bogus: bogus}
		for _, seq := range got {
			tl.add(seq)
		}
		testutil.Equal(t, judge(sent, a, &tl), want, name)
	}
	f("all delivered", 3, []uint64{0, 1, 2}, []uint64{0, 1, 2}, 0, verdict{Acked: 3})
	f("one lost", 3, []uint64{0, 1, 2}, []uint64{0, 2}, 0, verdict{Acked: 3, Lost: 1})
	// Sent but never acknowledged: the broker owes nothing, delivered or not.
	f("unacknowledged", 4, []uint64{0, 1}, []uint64{0, 1, 3}, 0, verdict{Acked: 2})
	f("duplicates", 2, []uint64{0, 1}, []uint64{0, 1, 1, 1, 0}, 0, verdict{Acked: 2, Duplicates: 3})
	f("never sent", 2, []uint64{0, 1}, []uint64{0, 1, 7}, 0, verdict{Acked: 2, Unexpected: 1})
	f("bogus", 1, []uint64{0}, []uint64{0}, 2, verdict{Acked: 1, Unexpected: 2})
	f("nothing", 0, nil, nil, 0, verdict{})
	f("sparse acks", 200, []uint64{5, 150, 199}, []uint64{150}, 0, verdict{Acked: 3, Lost: 2})
}

func TestTallyBounds(t *testing.T) {
	var tl tally
	testutil.Equal(t, tl.add(maxSeq), false, "a sequence number past the bound")
	testutil.Equal(t, tl.bogus, int64(1), "counted as bogus")
	testutil.Equal(t, len(tl.got), 0, "nothing allocated for it")
	testutil.Equal(t, tl.add(1000), true, "first delivery")
	testutil.Equal(t, tl.add(1000), false, "second delivery")
	for range 300 {
		tl.add(3)
	}
	testutil.Equal(t, tl.got[3], uint8(255), "deliveries saturate")
}

func TestTag(t *testing.T) {
	p := newPayload(7, 1<<40+3)
	testutil.Equal(t, len(p), payloadSize, "payload size")
	stream, seq, ok := readTag(p)
	testutil.Equal(t, ok && stream == 7 && seq == 1<<40+3, true, "tag read back")
	_, _, ok = readTag(p[:tagSize-1])
	testutil.Equal(t, ok, false, "short payload")
}

func TestMatches(t *testing.T) {
	f := func(filter, topic string, want bool) {
		t.Helper()
		testutil.Equal(t, matches(filter, topic), want, filter+" ~ "+topic)
	}
	f("soak/t/#", "soak/t/3/7", true)
	f("soak/t/#", "soak/t", true) // # matches the parent level too (4.7.1.2)
	f("soak/t/+/+", "soak/t/3/7", true)
	f("soak/t/+/+", "soak/t/3", false)
	f("soak/t/+/7", "soak/t/3/7", true)
	f("soak/t/+/7", "soak/t/3/17", false)
	f("soak/t/3/+", "soak/t/3/0", true)
	f("soak/t/3/+", "soak/t/30/0", false)
	f("soak/t/3/7", "soak/t/3/7/x", false)
	testutil.Equal(t, topicName(10042), "soak/t/100/42", "topic name")
	testutil.Equal(t, topicGroups(10000), 100, "groups of 10000 topics")
	testutil.Equal(t, topicGroups(150), 2, "groups of 150 topics")
}

func TestParseProc(t *testing.T) {
	n, err := parseGoroutines("goroutine profile: total 1234\n")
	testutil.Require(t, err, "parseGoroutines")
	testutil.Equal(t, n, 1234, "goroutines")
	_, err = parseGoroutines("<html>")
	testutil.Equal(t, err != nil, true, "a page that is not a profile")
}
