// Command relay is the benchmark suite's ceiling: the least work any MQTT
// broker must do for the load generator, so that a broker's rate can be read
// as a fraction of what this machine and this load generator allow. It
// speaks just enough MQTT 3.1.1: CONNECT gets CONNACK, SUBSCRIBE makes the
// connection a subscriber of everything (filters are ignored, each is
// granted the QoS it asked for), and every PUBLISH is copied verbatim, bytes
// as read, to every subscriber but its sender. There is no routing, no
// session, no retained message, no packet id of its own, no authentication
// and next to no validation.
//
// Acknowledgements: QoS 1 gets PUBACK and QoS 2 PUBREC at once, PUBREL gets
// PUBCOMP and PUBREC gets PUBREL; PUBACKs and PUBCOMPs that subscribers send
// for forwarded messages (with the publisher's packet ids) are dropped.
//
// Writes are coalesced per wake: each connection has a writer goroutine that
// takes everything pending for it in one write. At most maxPending bytes of
// PUBLISHes wait per connection; beyond that QoS 0 is dropped (counted, and
// reported on exit) and a QoS 1 or 2 publisher's reader waits for room, which
// pushes back through TCP. It stops on SIGINT or SIGTERM.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

const (
	// maxPending bounds the PUBLISH bytes waiting to be written to one
	// connection; control packets are not counted against it.
	maxPending = 8 << 20
	// maxPacket is the largest packet read; a larger one closes the
	// connection.
	maxPacket = 16 << 20
	readSize  = 64 << 10
)

// MQTT control packet types (the fixed header's high nibble).
const (
	typeConnect     = 1
	typePublish     = 3
	typePuback      = 4
	typePubrec      = 5
	typePubrel      = 6
	typePubcomp     = 7
	typeSubscribe   = 8
	typeUnsubscribe = 10
	typePingreq     = 12
	typeDisconnect  = 14
)

var (
	errMalformed = errors.New("relay: malformed packet")
	errTooLarge  = errors.New("relay: packet too large")
	errNeedMore  = errors.New("relay: need more bytes")
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1883", "TCP address to accept MQTT connections on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		slog.Error("cannot listen", "addr", *listen, "err", err)
		os.Exit(1)
	}
	r := new(relay)
	go r.serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = ln.Close()
	if n := r.dropped.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "relay: dropped %d QoS 0 messages at the %d-byte bound\n", n, maxPending)
	}
}

// relay is the shared state: who subscribed, and what was dropped.
type relay struct {
	mu      sync.Mutex              // serializes changes to subs
	subs    atomic.Pointer[[]*conn] // copy on write; readers load it once per read
	dropped atomic.Int64            // QoS 0 PUBLISHes dropped at maxPending
}

// serve accepts connections on ln until it is closed.
func (r *relay) serve(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := &conn{nc: nc, r: r, wake: make(chan struct{}, 1)}
		c.room.L = &c.mu
		go c.writeLoop()
		go func() {
			_ = c.readLoop()
			c.shutdown()
		}()
	}
}

func (r *relay) setSub(c *conn, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next []*conn
	if old := r.subs.Load(); old != nil {
		for _, s := range *old {
			if s != c {
				next = append(next, s)
			}
		}
	}
	if on {
		next = append(next, c)
	}
	r.subs.Store(&next)
}

// conn is one client connection: its reader goroutine parses and forwards,
// its writer goroutine writes what others queued for it.
type conn struct {
	nc         net.Conn
	r          *relay
	wake       chan struct{} // capacity 1: something is pending, or closed
	subscribed bool          // the reader goroutine's own

	mu      sync.Mutex
	room    sync.Cond // on mu; broadcast when the writer takes pending, or on close
	pending []byte
	closed  bool
}

// shutdown closes c once: it stops being a subscriber, waiting publishers
// and the writer are woken, and the socket is closed.
func (c *conn) shutdown() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.room.Broadcast()
	c.mu.Unlock()
	c.r.setSub(c, false)
	_ = c.nc.Close()
	c.signal()
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// writeLoop writes everything pending in one write per wake.
func (c *conn) writeLoop() {
	var out []byte
	for range c.wake {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		out, c.pending = c.pending, out[:0]
		c.room.Broadcast()
		c.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		if _, err := c.nc.Write(out); err != nil {
			c.shutdown()
			return
		}
	}
}

// enqueue queues control packets b (copied; the caller keeps b), unbounded.
func (c *conn) enqueue(b []byte) {
	c.mu.Lock()
	if !c.closed {
		c.pending = append(c.pending, b...)
	}
	c.mu.Unlock()
	c.signal()
}

// forward queues b, n whole PUBLISHes (copied; the caller keeps b). Beyond
// maxPending it drops them if all are QoS 0 and otherwise waits for room.
func (c *conn) forward(b []byte, n int, qos0 bool) {
	c.mu.Lock()
	for len(c.pending) > 0 && len(c.pending)+len(b) > maxPending && !c.closed {
		if qos0 {
			c.mu.Unlock()
			c.r.dropped.Add(int64(n))
			return
		}
		c.room.Wait()
	}
	if !c.closed {
		c.pending = append(c.pending, b...)
	}
	c.mu.Unlock()
	c.signal()
}

// readLoop reads packets until the connection fails or the client sends
// DISCONNECT. The PUBLISHes of one read that lie next to each other are
// forwarded as one run, and the read's acknowledgements are queued at once.
func (c *conn) readLoop() error {
	buf := make([]byte, readSize)
	have := 0
	var acks []byte
	var subs []*conn
	for {
		n, err := c.nc.Read(buf[have:])
		if err != nil {
			return err
		}
		have += n
		if p := c.r.subs.Load(); p != nil {
			subs = *p
		}
		off, run, runN, runQoS0 := 0, 0, 0, true
		flush := func() {
			if runN > 0 {
				for _, s := range subs {
					if s != c {
						s.forward(buf[run:off], runN, runQoS0)
					}
				}
			}
			runN, runQoS0 = 0, true
		}
		quit := false
		var perr error
		for off < have && !quit {
			hdr, rl, err := header(buf[off:have])
			if errors.Is(err, errNeedMore) {
				break
			}
			if err != nil {
				perr = err
				break
			}
			end := off + hdr + rl
			if end > have {
				if hdr+rl > len(buf) {
					buf = append(buf, make([]byte, hdr+rl-len(buf))...)
				}
				break
			}
			pkt := buf[off:end]
			if pkt[0]>>4 == typePublish {
				if runN == 0 {
					run = off
				}
				runN++
				if qos := (pkt[0] >> 1) & 3; qos > 0 {
					runQoS0 = false
					id, ok := publishID(pkt[hdr:])
					if !ok {
						perr = errMalformed
						break
					}
					acks = ackFor(acks, qos, id)
				}
				off = end
				continue
			}
			flush()
			off = end
			if acks, quit, perr = c.control(acks, pkt, hdr); perr != nil {
				break
			}
		}
		flush()
		if len(acks) > 0 {
			c.enqueue(acks)
			acks = acks[:0]
		}
		if quit || perr != nil {
			return perr
		}
		have = copy(buf, buf[off:have])
	}
}

// control handles a packet other than PUBLISH, appending any answer to acks.
// quit is set by DISCONNECT.
func (c *conn) control(acks, pkt []byte, hdr int) (_ []byte, quit bool, _ error) {
	body := pkt[hdr:]
	switch pkt[0] >> 4 {
	case typeConnect:
		return append(acks, 0x20, 0x02, 0x00, 0x00), false, nil
	case typeSubscribe:
		if len(body) < 2 {
			return acks, false, errMalformed
		}
		var granted []byte
		for p := 2; p < len(body); {
			if p+2 > len(body) {
				return acks, false, errMalformed
			}
			p += 2 + (int(body[p])<<8 | int(body[p+1]))
			if p >= len(body) {
				return acks, false, errMalformed
			}
			g := body[p] & 3
			if g == 3 {
				g = 0x80
			}
			granted = append(granted, g)
			p++
		}
		if !c.subscribed {
			// Before the SUBACK goes out: the client may publish as
			// soon as it has it.
			c.r.setSub(c, true)
			c.subscribed = true
		}
		acks = appendHeader(acks, 0x90, 2+len(granted))
		acks = append(acks, body[0], body[1])
		return append(acks, granted...), false, nil
	case typeUnsubscribe: // answered, but every filter stays in force
		if len(body) < 2 {
			return acks, false, errMalformed
		}
		return append(acks, 0xB0, 0x02, body[0], body[1]), false, nil
	case typePubrec:
		if len(body) < 2 {
			return acks, false, errMalformed
		}
		return append(acks, 0x62, 0x02, body[0], body[1]), false, nil
	case typePubrel:
		if len(body) < 2 {
			return acks, false, errMalformed
		}
		return append(acks, 0x70, 0x02, body[0], body[1]), false, nil
	case typePuback, typePubcomp: // for forwarded messages: nothing to do
		return acks, false, nil
	case typePingreq:
		return append(acks, 0xD0, 0x00), false, nil
	case typeDisconnect:
		return acks, true, nil
	}
	return acks, false, errMalformed
}

// ackFor appends the answer to a PUBLISH of qos > 0: PUBACK or PUBREC.
func ackFor(acks []byte, qos byte, id [2]byte) []byte {
	t := byte(typePuback << 4)
	if qos == 2 {
		t = typePubrec << 4
	}
	return append(acks, t, 0x02, id[0], id[1])
}

// publishID returns the packet id of a QoS 1 or 2 PUBLISH from its variable
// header and payload body.
func publishID(body []byte) (id [2]byte, ok bool) {
	if len(body) < 2 {
		return id, false
	}
	p := 2 + (int(body[0])<<8 | int(body[1]))
	if p+2 > len(body) {
		return id, false
	}
	return [2]byte{body[p], body[p+1]}, true
}

// header decodes the fixed header at the start of b: its length and the
// remaining length.
func header(b []byte) (hdr, rl int, err error) {
	for i := 1; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, errNeedMore
		}
		rl |= int(b[i]&0x7f) << (7 * (i - 1))
		if b[i]&0x80 == 0 {
			if rl > maxPacket {
				return 0, 0, errTooLarge
			}
			return i + 1, rl, nil
		}
	}
	return 0, 0, errMalformed
}

// appendHeader appends a fixed header of first byte b0 and remaining length rl.
func appendHeader(dst []byte, b0 byte, rl int) []byte {
	dst = append(dst, b0)
	for {
		d := byte(rl & 0x7f)
		if rl >>= 7; rl > 0 {
			d |= 0x80
		}
		dst = append(dst, d)
		if rl == 0 {
			return dst
		}
	}
}
