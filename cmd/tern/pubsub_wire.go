package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/tern-mqtt/tern/codec"
)

// wire is the connection of tern pub or tern sub to the broker, as the
// client library sees it, above TLS. It frames the bytes both ways into
// packets in order to
//   - print one line per packet with -d, as mosquitto's clients do, and
//   - know which incoming QoS 1 and 2 messages are not yet acknowledged, so
//     that sub can wait for their acknowledgements before DISCONNECT (the
//     libraries acknowledge after the message handler returns, on their own
//     goroutines).
//
// Both client libraries use it, so both print and settle alike.
type wire struct {
	net.Conn
	id      string
	version byte
	trace   io.Writer // nil without -d

	// pmu serialises the packets paho.golang writes from several goroutines:
	// it takes the wire's Lock (sync.Locker) around the writes of one packet.
	pmu sync.Mutex

	omu sync.Mutex // held over a write and its framing, so frames follow the byte order
	out framer

	imu sync.Mutex // the same for reads
	in  framer

	mu      sync.Mutex
	pending map[uint16]byte // incoming QoS 1 and 2 messages not yet acknowledged: packet id → QoS
	changed chan struct{}   // closed, and replaced, when pending loses an id
}

func newWire(o *clientOpts, trace io.Writer) *wire {
	w := &wire{id: o.id, version: o.version, pending: map[uint16]byte{}, changed: make(chan struct{})}
	w.in.dec.Version = o.version // the outgoing CONNECT sets the other one's
	if o.debug {
		w.trace = trace
	}
	return w
}

// attach makes nc the connection under w.
func (w *wire) attach(nc net.Conn) net.Conn {
	w.Conn = nc
	return w
}

// Lock and Unlock make w a sync.Locker, which paho.golang takes to write a
// packet in one piece.
func (w *wire) Lock()   { w.pmu.Lock() }
func (w *wire) Unlock() { w.pmu.Unlock() }

func (w *wire) Write(b []byte) (int, error) {
	w.omu.Lock()
	defer w.omu.Unlock()
	n, err := w.Conn.Write(b)
	w.out.feed(b[:n], func(p *codec.Packet) { w.packet(true, p) })
	return n, err
}

func (w *wire) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	w.imu.Lock()
	w.in.feed(b[:n], func(p *codec.Packet) { w.packet(false, p) })
	w.imu.Unlock()
	return n, err
}

// settle waits until the incoming messages of QoS 1 and 2 that are
// unacknowledged now have been acknowledged (PUBACK, or PUBCOMP at QoS 2),
// or until ctx ends.
func (w *wire) settle(ctx context.Context) {
	w.mu.Lock()
	ids := make([]uint16, 0, len(w.pending))
	for id := range w.pending {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	for {
		w.mu.Lock()
		open := false
		for _, id := range ids {
			if _, ok := w.pending[id]; ok {
				open = true
				break
			}
		}
		changed := w.changed
		w.mu.Unlock()
		if !open {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

func (w *wire) acked(id uint16, qos byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if q, ok := w.pending[id]; ok && (qos == 0 || q == qos) {
		delete(w.pending, id)
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// packet handles one packet that was sent (out) or received.
func (w *wire) packet(out bool, p *codec.Packet) {
	switch {
	case p.Type == codec.PUBLISH && !out && p.Publish.QoS > 0:
		w.mu.Lock()
		w.pending[p.Publish.PacketID] = p.Publish.QoS
		w.mu.Unlock()
	case p.Type == codec.PUBACK && out:
		w.acked(p.Ack.PacketID, 1)
	case p.Type == codec.PUBREC && out && p.Ack.ReasonCode >= 0x80:
		w.acked(p.Ack.PacketID, 2) // the QoS 2 flow ends here
	case p.Type == codec.PUBCOMP && out:
		w.acked(p.Ack.PacketID, 2)
	}
	if w.trace == nil {
		return
	}
	dir := "received"
	if out {
		dir = "sending"
	}
	fmt.Fprintf(w.trace, "Client %s %s %s%s\n", w.id, dir, p.Type, w.describe(p))
}

// describe is what mosquitto's clients print after a packet's name with -d.
func (w *wire) describe(p *codec.Packet) string {
	switch p.Type {
	case codec.CONNACK:
		if w.version < codec.Version5 {
			return fmt.Sprintf(" (%d)", codec.ConnackReturnCode(p.Connack.ReasonCode))
		}
		return fmt.Sprintf(" (%d)", p.Connack.ReasonCode)
	case codec.PUBLISH:
		m := &p.Publish
		return fmt.Sprintf(" (d%d, q%d, r%d, m%d, '%s', ... (%d bytes))",
			bit(m.Dup), m.QoS, bit(m.Retain), m.PacketID, m.Topic, len(m.Payload))
	case codec.PUBACK, codec.PUBREC, codec.PUBREL, codec.PUBCOMP:
		return fmt.Sprintf(" (m%d, rc%d)", p.Ack.PacketID, p.Ack.ReasonCode)
	case codec.UNSUBACK:
		return fmt.Sprintf(" (m%d)", p.Unsuback.PacketID)
	case codec.SUBSCRIBE:
		var b strings.Builder
		fmt.Fprintf(&b, " (m%d", p.Subscribe.PacketID)
		for _, sub := range p.Subscribe.Subscriptions {
			opts := sub.QoS | bit(sub.NoLocal)<<2 | bit(sub.RetainAsPublished)<<3 | sub.RetainHandling<<4
			fmt.Fprintf(&b, ", '%s' options 0x%02x", sub.Filter, opts)
		}
		return b.String() + ")"
	case codec.SUBACK:
		codes := make([]string, len(p.Suback.ReasonCodes))
		for i, c := range p.Suback.ReasonCodes {
			codes[i] = fmt.Sprintf("0x%02x", c)
		}
		return fmt.Sprintf(" (m%d, %s)", p.Suback.PacketID, strings.Join(codes, ", "))
	case codec.DISCONNECT:
		if w.version >= codec.Version5 {
			return fmt.Sprintf(" (%d)", p.Disconnect.ReasonCode)
		}
	}
	return ""
}

func bit(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// framer reassembles one direction's byte stream into packets and decodes
// them with the broker's own codec.
type framer struct {
	buf    []byte
	dec    codec.Decoder
	p      codec.Packet
	broken bool // a packet did not decode: framing stops (the library sees the error)
}

// feed frames b and calls packet for each packet it completes. The packet
// is valid only during the call.
func (f *framer) feed(b []byte, packet func(p *codec.Packet)) {
	if f.broken {
		return
	}
	f.buf = append(f.buf, b...)
	used := 0
	for used < len(f.buf) {
		n, err := f.dec.Decode(f.buf[used:], &f.p)
		if errors.Is(err, codec.ErrNeedMore) {
			break
		}
		if err != nil {
			f.broken = true
			break
		}
		packet(&f.p)
		used += n
	}
	f.buf = append(f.buf[:0], f.buf[used:]...)
}

// syncWriter serialises the writes to standard error of the library
// goroutines (the -d trace, via wire) and of the command, and drops those
// that come after the command has returned, so that nothing writes to the
// caller's writer behind its back.
type syncWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(b), nil
	}
	return s.w.Write(b)
}

func (s *syncWriter) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
