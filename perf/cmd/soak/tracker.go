package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// tracker publishes tagged QoS 1 or 2 messages of one stream at a fixed rate
// and records which ones the broker acknowledged (PUBACK, or PUBCOMP at
// QoS 2): those, and only those, the broker owes its subscribers.
type tracker struct {
	name   string
	w      *wire
	stream uint32
	topic  []byte
	qos    byte
	window int // most messages sent and not yet acknowledged
	errs   *errorLog
	acks   *atomic.Int64 // a running total of acknowledged messages for the sampler, or nil

	closing atomic.Bool   // set before an intended close, so its read error is no error
	done    chan struct{} // closed when the acknowledgement reader ends

	mu       sync.Mutex
	inflight map[uint16]uint64 // packet id → sequence number, until acknowledged
	lastID   uint16
	sent     uint64 // sequence numbers below it were written
	acked    bitset
	nAcked   int64
	refused  int64 // acknowledgements with a 5.0 failure reason code
	stray    int64 // acknowledgements for no message in flight
}

// newTracker starts the acknowledgement reader of a publisher connected
// as w.
func newTracker(name string, w *wire, stream uint32, topic string, qos byte, window int, errs *errorLog, acks *atomic.Int64) *tracker {
	t := &tracker{name: name, w: w, stream: stream, topic: []byte(topic), qos: qos, window: window,
		errs: errs, acks: acks, done: make(chan struct{}), inflight: map[uint16]uint64{}}
	go t.readAcks()
	return t
}

// run publishes at rate messages per second until ctx is done or the
// connection fails.
func (t *tracker) run(ctx context.Context, rate float64) {
	pace(ctx, rate, func(n int) bool {
		err := t.publish(n)
		if err != nil && !t.closing.Load() {
			t.errs.add("tracked publisher", fmt.Errorf("%s: %w", t.name, err))
		}
		return err == nil
	})
}

// publish sends up to n messages, as many as the window has room for.
func (t *tracker) publish(n int) error {
	var out []byte
	t.mu.Lock()
	n = min(n, t.window-len(t.inflight))
	for range n {
		id := t.nextID()
		pub := codec.Publish{QoS: t.qos, Topic: t.topic, PacketID: id, Payload: newPayload(t.stream, t.sent)}
		var err error
		if out, err = pub.Append(out, t.w.version); err != nil {
			t.mu.Unlock()
			return err
		}
		// Recorded before the write: the acknowledgement may come back
		// before Write returns.
		t.inflight[id] = t.sent
		t.sent++
	}
	t.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	_ = t.w.c.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := t.w.c.Write(out)
	return err
}

// nextID returns a packet id not in flight. The window is far below 65535,
// so the search ends. t.mu is held.
func (t *tracker) nextID() uint16 {
	for {
		t.lastID++
		if t.lastID == 0 {
			t.lastID = 1
		}
		if _, busy := t.inflight[t.lastID]; !busy {
			return t.lastID
		}
	}
}

// readAcks reads the publisher's connection until it closes: PUBACK or
// PUBCOMP completes a message, PUBREC is answered with PUBREL.
func (t *tracker) readAcks() {
	defer close(t.done)
	var p codec.Packet
	for {
		if err := t.w.next(&p); err != nil {
			if !t.closing.Load() {
				t.errs.add("tracked publisher", fmt.Errorf("%s: read: %w", t.name, err))
			}
			return
		}
		switch {
		case p.Type == codec.PUBACK && t.qos == 1, p.Type == codec.PUBCOMP && t.qos == 2:
			t.complete(p.Ack.PacketID, p.Ack.ReasonCode)
		case p.Type == codec.PUBREC && t.qos == 2:
			if p.Ack.ReasonCode >= 0x80 { // 5.0: refused, the flow ends here
				t.complete(p.Ack.PacketID, p.Ack.ReasonCode)
				continue
			}
			if err := t.w.ack(codec.PUBREL, p.Ack.PacketID); err != nil && !t.closing.Load() {
				t.errs.add("tracked publisher", fmt.Errorf("%s: PUBREL: %w", t.name, err))
			}
		case p.Type == codec.DISCONNECT:
			t.errs.add("tracked publisher", fmt.Errorf("%s: broker sent DISCONNECT %v", t.name, p.Disconnect.ReasonCode))
		}
	}
}

func (t *tracker) complete(id uint16, rc codec.ReasonCode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	seq, ok := t.inflight[id]
	if !ok {
		t.stray++
		return
	}
	delete(t.inflight, id)
	if rc >= 0x80 {
		t.refused++
		return
	}
	t.acked.set(seq)
	t.nAcked++
	if t.acks != nil {
		t.acks.Add(1)
	}
}

// settle waits until nothing is in flight, the connection is gone, or
// timeout passes, and reports whether nothing is in flight.
func (t *tracker) settle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		n := len(t.inflight)
		t.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-t.done:
			return false
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// stop closes the connection and waits for the reader.
func (t *tracker) stop() {
	t.closing.Store(true)
	t.w.close()
	<-t.done
}

// result returns what was sent and acknowledged. Call it after stop.
func (t *tracker) result() (sent uint64, acked bitset, nAcked, inflight, refused, stray int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent, t.acked, t.nAcked, int64(len(t.inflight)), t.refused, t.stray
}

// ackedCount is the number of messages acknowledged so far.
func (t *tracker) ackedCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nAcked
}
