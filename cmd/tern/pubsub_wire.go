package main

import (
	"context"
	"encoding/binary"
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
	w.out.feed(b[:n], func(head []byte, size int) { w.packet(true, head, size) })
	return n, err
}

func (w *wire) Read(b []byte) (int, error) {
	n, err := w.Conn.Read(b)
	w.imu.Lock()
	w.in.feed(b[:n], func(head []byte, size int) { w.packet(false, head, size) })
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

// packet handles one whole packet that was sent (out) or received. head
// holds its first bytes (all of them unless it is large), size is its
// length.
func (w *wire) packet(out bool, head []byte, size int) {
	t := codec.PacketType(head[0] >> 4)
	flags := head[0] & 0x0f
	_, n, _ := codec.ReadVarint(head[1:]) // the framer checked it
	body := head[1+n:]
	bodyLen := size - 1 - n
	var id uint16
	if len(body) >= 2 {
		id = binary.BigEndian.Uint16(body)
	}
	var rc byte // reason code of an acknowledgement, 0 when left out
	if len(body) >= 3 {
		rc = body[2]
	}
	switch {
	case t == codec.PUBLISH && !out && flags&0x06 != 0:
		if pid, ok := publishID(body); ok {
			w.mu.Lock()
			w.pending[pid] = (flags >> 1) & 3
			w.mu.Unlock()
		}
	case t == codec.PUBACK && out:
		w.acked(id, 1)
	case t == codec.PUBREC && out && rc >= 0x80:
		w.acked(id, 2) // the QoS 2 flow ends here
	case t == codec.PUBCOMP && out:
		w.acked(id, 2)
	}
	if w.trace == nil {
		return
	}
	dir := "received"
	if out {
		dir = "sending"
	}
	var detail string
	switch t {
	case codec.CONNACK:
		if len(body) >= 2 {
			detail = fmt.Sprintf(" (%d)", body[1])
		}
	case codec.PUBLISH:
		detail = w.describePublish(flags, body, bodyLen)
	case codec.PUBACK, codec.PUBREC, codec.PUBREL, codec.PUBCOMP, codec.UNSUBACK:
		detail = fmt.Sprintf(" (m%d, rc%d)", id, rc)
	case codec.SUBSCRIBE:
		detail = w.describeSubscribe(id, body)
	case codec.SUBACK:
		detail = fmt.Sprintf(" (m%d, %s)", id, w.subackCodes(body))
	case codec.DISCONNECT:
		if len(body) >= 1 {
			detail = fmt.Sprintf(" (%d)", body[0])
		}
	}
	fmt.Fprintf(w.trace, "Client %s %s %s%s\n", w.id, dir, t, detail)
}

// publishID returns the packet id of a PUBLISH body of QoS 1 or 2.
func publishID(body []byte) (uint16, bool) {
	if len(body) < 2 {
		return 0, false
	}
	pos := 2 + int(binary.BigEndian.Uint16(body))
	if len(body) < pos+2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(body[pos:]), true
}

// describePublish is mosquitto's "(d0, q1, r0, m1, 'topic', ... (5 bytes))".
func (w *wire) describePublish(flags byte, body []byte, bodyLen int) string {
	qos := (flags >> 1) & 3
	if len(body) < 2 {
		return ""
	}
	pos := 2 + int(binary.BigEndian.Uint16(body))
	if len(body) < pos {
		return ""
	}
	topic := body[2:pos]
	var id uint16
	if qos > 0 && len(body) >= pos+2 {
		id = binary.BigEndian.Uint16(body[pos:])
		pos += 2
	}
	if w.version == codec.Version5 {
		plen, n, err := codec.ReadVarint(body[min(pos, len(body)):])
		if err != nil {
			return ""
		}
		pos += n + plen
	}
	return fmt.Sprintf(" (d%d, q%d, r%d, m%d, '%s', ... (%d bytes))", flags>>3&1, qos, flags&1, id, topic, bodyLen-pos)
}

// describeSubscribe lists the filters of a SUBSCRIBE body.
func (w *wire) describeSubscribe(id uint16, body []byte) string {
	pos := 2
	if w.version == codec.Version5 {
		plen, n, err := codec.ReadVarint(body[min(pos, len(body)):])
		if err != nil {
			return ""
		}
		pos += n + plen
	}
	var b strings.Builder
	fmt.Fprintf(&b, " (m%d", id)
	for pos+2 <= len(body) {
		end := pos + 2 + int(binary.BigEndian.Uint16(body[pos:]))
		if end >= len(body) {
			break
		}
		fmt.Fprintf(&b, ", '%s' options 0x%02x", body[pos+2:end], body[end])
		pos = end + 1
	}
	b.WriteString(")")
	return b.String()
}

func (w *wire) subackCodes(body []byte) string {
	pos := 2
	if w.version == codec.Version5 {
		plen, n, err := codec.ReadVarint(body[min(pos, len(body)):])
		if err != nil {
			return ""
		}
		pos += n + plen
	}
	var codes []string
	for _, c := range body[min(pos, len(body)):] {
		codes = append(codes, fmt.Sprintf("0x%02x", c))
	}
	return strings.Join(codes, ", ")
}

// headMax bounds what a framer keeps of one packet: enough for any topic
// and the properties after it, not a large payload.
const headMax = 1 + 4 + 2 + 65535 + 2 + 4 + 4096

// framer cuts a byte stream into MQTT packets by their fixed headers.
type framer struct {
	head   []byte // the current packet's first bytes, at most headMax
	size   int    // the current packet's length once its fixed header is whole, else 0
	seen   int    // bytes of the current packet seen
	broken bool   // a malformed fixed header: framing stops
}

// feed frames b and calls packet for each packet it completes. head is
// valid only during the call.
func (f *framer) feed(b []byte, packet func(head []byte, size int)) {
	for len(b) > 0 && !f.broken {
		if f.size == 0 { // in the fixed header: one byte at a time
			f.head = append(f.head, b[0])
			b = b[1:]
			f.seen++
			if len(f.head) < 2 {
				continue
			}
			rl, n, err := codec.ReadVarint(f.head[1:])
			if err == codec.ErrNeedMore {
				continue
			}
			if err != nil {
				f.broken = true
				return
			}
			f.size = 1 + n + rl
		} else {
			k := min(len(b), f.size-f.seen)
			if room := headMax - len(f.head); room > 0 {
				f.head = append(f.head, b[:min(k, room)]...)
			}
			f.seen += k
			b = b[k:]
		}
		if f.seen == f.size {
			packet(f.head, f.size)
			f.head, f.size, f.seen = f.head[:0], 0, 0
		}
	}
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
