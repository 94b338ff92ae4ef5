package main

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestStreamDeliverQoS2 feeds a QoS 2 subscriber the packets a broker would
// send, resends and a broker bug among them, and checks what it counts and
// how it answers: a resend of a message whose PUBREL has not come is not a
// new delivery (MQTT-4.3.3-2, the receiver's side of exactly once), while
// the same message under a new packet id is a duplicate.
func TestStreamDeliverQoS2(t *testing.T) {
	client, broker := net.Pipe()
	defer client.Close()
	defer broker.Close()
	acks := make(chan [4]byte, 16)
	go func() {
		var b [4]byte
		for {
			if _, err := io.ReadFull(broker, b[:]); err != nil {
				close(acks)
				return
			}
			acks <- b
		}
	}()
	s := newStream(1, nil, newErrorLog(), &counters{})
	testutil.Equal(t, s.qos, byte(2), "stream 1's QoS")
	w := &wire{c: client, version: codec.Version311}
	s.attach(w, false, true)

	publish := func(id uint16, seq uint64, dup bool) *codec.Packet {
		return &codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{QoS: 2, Dup: dup, PacketID: id,
			Topic: []byte(s.topic), Payload: newPayload(s.id, seq)}}
	}
	pubrel := func(id uint16) *codec.Packet {
		return &codec.Packet{Type: codec.PUBREL, Ack: codec.Ack{PacketID: id}}
	}
	expectAck := func(want codec.PacketType, id uint16) {
		t.Helper()
		select {
		case b := <-acks:
			testutil.Equal(t, codec.PacketType(b[0]>>4), want, "answer")
			testutil.Equal(t, uint16(b[2])<<8|uint16(b[3]), id, "answer's packet id")
		case <-time.After(time.Second):
			t.Fatalf("no %v for %d", want, id)
		}
	}
	s.deliver(w, publish(5, 0, false))
	expectAck(codec.PUBREC, 5)
	s.deliver(w, publish(5, 0, true)) // our PUBREC was lost
	expectAck(codec.PUBREC, 5)
	s.deliver(w, pubrel(5))
	expectAck(codec.PUBCOMP, 5)
	s.deliver(w, pubrel(5)) // our PUBCOMP was lost
	expectAck(codec.PUBCOMP, 5)
	s.deliver(w, publish(5, 1, false)) // packet id 5 reused for the next message
	expectAck(codec.PUBREC, 5)
	s.deliver(w, publish(6, 0, false)) // the broker sends message 0 again: a duplicate
	expectAck(codec.PUBREC, 6)

	// A connection that is no longer current is ignored and not answered:
	// the broker owes its messages to the next one.
	s.detach()
	s.deliver(w, publish(7, 2, false))
	select {
	case b := <-acks:
		t.Fatalf("answered % x on a detached connection", b)
	case <-time.After(50 * time.Millisecond):
	}

	var acked bitset
	acked.set(0)
	acked.set(1)
	acked.set(2)
	v := judge(3, acked, &s.tally)
	testutil.Equal(t, v, verdict{Acked: 3, Lost: 1, Duplicates: 1}, "verdict")
	testutil.Equal(t, len(s.pending2), 2, "packet ids awaiting PUBREL")

	// A resumed session the broker lost takes the client's QoS 2 state
	// with it.
	s.attach(w, false, false)
	testutil.Equal(t, len(s.pending2), 0, "QoS 2 state after a lost session")
}

// TestStreamCombinations checks that the default twelve streams cover QoS
// 1 and 2 × every mode × 3.1.1 and 5.0.
func TestStreamCombinations(t *testing.T) {
	seen := map[[3]int]bool{}
	for i := range 12 {
		s := newStream(i, nil, nil, nil)
		seen[[3]int{int(s.qos), int(s.mode), int(s.version)}] = true
	}
	testutil.Equal(t, len(seen), 12, "distinct combinations")
}
