package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// ioTimeout bounds a handshake (CONNECT to CONNACK, SUBSCRIBE to SUBACK) and
// a whole churn cycle: a broker that takes longer is stalled, not slow.
const ioTimeout = 10 * time.Second

// wire is one client connection speaking MQTT 3.1.1 or 5.0 through codec.
// One goroutine owns the reads (next); any goroutine may write, since
// net.Conn never interleaves two whole Writes.
type wire struct {
	c       net.Conn
	version byte
	dec     codec.Decoder
	buf     []byte
	off, n  int // the undecoded bytes are buf[off:n]
}

// session is what a client asks for in its CONNECT.
type session struct {
	clientID string
	version  byte // codec.Version311 or codec.Version5
	clean    bool
	// expiry is the 5.0 Session Expiry Interval in seconds; a persistent
	// 5.0 session needs it, since 0 ends the session with the connection.
	expiry uint32
	// willTopic, when set, gives the connection a QoS 0 will.
	willTopic string
}

// dialer connects clients to one broker, spreading them round-robin over
// source addresses 127.0.0.1 .. 127.0.0.sources so that neither side runs
// out of ephemeral ports over a long run.
type dialer struct {
	addr    string
	sources int
	n       atomic.Uint32
}

// connect dials, sends CONNECT and waits for a successful CONNACK; it
// returns the connection and the CONNACK's session-present flag.
func (d *dialer) connect(ctx context.Context, s session) (*wire, bool, error) {
	src := 1 + int(d.n.Add(1)%uint32(d.sources))
	nd := net.Dialer{Timeout: ioTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}}
	c, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, false, fmt.Errorf("%s: dial: %w", s.clientID, err)
	}
	w := &wire{c: c, version: s.version, dec: codec.Decoder{Version: s.version}, buf: make([]byte, 4096)}
	p := &codec.Packet{Type: codec.CONNECT}
	// Keep-alive 0: the soak's clients send no PINGREQ, and the long-lived
	// ones must not be cut off for it.
	p.Connect = codec.Connect{ProtocolVersion: s.version, CleanStart: s.clean, ClientID: []byte(s.clientID)}
	if s.version == codec.Version5 && s.expiry > 0 {
		p.Connect.Props.SessionExpiry = s.expiry
		p.Connect.Props.Mark(codec.PropSessionExpiry)
	}
	if s.willTopic != "" {
		p.Connect.Will, p.Connect.WillTopic, p.Connect.WillPayload = true, []byte(s.willTopic), []byte("gone")
	}
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	if err := w.send(p); err != nil {
		w.close()
		return nil, false, fmt.Errorf("%s: connect: %w", s.clientID, err)
	}
	if err := w.next(p); err != nil {
		w.close()
		return nil, false, fmt.Errorf("%s: waiting for CONNACK: %w", s.clientID, err)
	}
	if p.Type != codec.CONNACK || p.Connack.ReasonCode != codec.Success {
		w.close()
		return nil, false, fmt.Errorf("%s: connect refused: %v %v", s.clientID, p.Type, p.Connack.ReasonCode)
	}
	_ = c.SetDeadline(time.Time{})
	return w, p.Connack.SessionPresent, nil
}

// next reads the next packet into p. The byte slices of p are views into
// the wire's buffer, valid until the next call.
func (w *wire) next(p *codec.Packet) error {
	for {
		if w.off < w.n {
			k, err := w.dec.Decode(w.buf[w.off:w.n], p)
			if err == nil {
				w.off += k
				return nil
			}
			if !errors.Is(err, codec.ErrNeedMore) {
				return fmt.Errorf("decode: %w", err)
			}
		}
		if w.off > 0 {
			w.n = copy(w.buf, w.buf[w.off:w.n])
			w.off = 0
		}
		if w.n == len(w.buf) { // one packet larger than the buffer
			w.buf = append(w.buf, make([]byte, len(w.buf))...)
		}
		m, err := w.c.Read(w.buf[w.n:])
		if err != nil {
			return err
		}
		w.n += m
	}
}

// send encodes p at the connection's version and writes it.
func (w *wire) send(p *codec.Packet) error {
	b, err := p.Append(nil, w.version)
	if err != nil {
		return err
	}
	_, err = w.c.Write(b)
	return err
}

// ack writes a PUBACK, PUBREC, PUBREL or PUBCOMP for id. The 2-byte body is
// valid in both versions: in 5.0 it means reason Success, no properties.
func (w *wire) ack(t codec.PacketType, id uint16) error {
	flags := byte(0)
	if t == codec.PUBREL {
		flags = 0x02 // MQTT-3.6.1-1
	}
	_, err := w.c.Write([]byte{byte(t)<<4 | flags, 2, byte(id >> 8), byte(id)})
	return err
}

// disconnect sends DISCONNECT (reason Normal in 5.0), after which the broker
// closes the connection: whoever reads w then sees EOF, or a timeout after a
// second. Close w only after that. Closing at once, with bytes still unread,
// would send RST, which can discard the DISCONNECT unread in the broker's
// socket and fire the will; and the broker closing first keeps the
// TIME_WAIT sockets on its side, off the soak's ephemeral ports.
func (w *wire) disconnect() {
	_ = w.c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = w.send(&codec.Packet{Type: codec.DISCONNECT})
	_ = w.c.SetReadDeadline(time.Now().Add(time.Second))
}

// discard reads and drops packets until the connection ends.
func (w *wire) discard() {
	var p codec.Packet
	for w.next(&p) == nil {
	}
}

func (w *wire) close() { _ = w.c.Close() }

// subscribe sends SUBSCRIBE (packet id id) and reads up to its SUBACK,
// handing any other packet to other (a resumed session may deliver before
// the SUBACK). It fails if a filter is refused.
func (w *wire) subscribe(id uint16, subs []codec.Subscription, other func(*codec.Packet) error) error {
	p := &codec.Packet{Type: codec.SUBSCRIBE}
	p.Subscribe = codec.Subscribe{PacketID: id, Subscriptions: subs}
	if err := w.send(p); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := w.await(codec.SUBACK, id, p, other); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if len(p.Suback.ReasonCodes) != len(subs) {
		return fmt.Errorf("SUBACK with %d codes for %d filters", len(p.Suback.ReasonCodes), len(subs))
	}
	// A lower QoS granted counts as refused: the accounting needs the one asked.
	for i, rc := range p.Suback.ReasonCodes {
		if rc != subs[i].QoS {
			return fmt.Errorf("subscription to %q at QoS %d answered %#x", subs[i].Filter, subs[i].QoS, rc)
		}
	}
	return nil
}

// unsubscribe sends UNSUBSCRIBE and reads up to its UNSUBACK, as subscribe.
func (w *wire) unsubscribe(id uint16, filter string, other func(*codec.Packet) error) error {
	p := &codec.Packet{Type: codec.UNSUBSCRIBE}
	p.Unsubscribe = codec.Unsubscribe{PacketID: id, Filters: [][]byte{[]byte(filter)}}
	if err := w.send(p); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	if err := w.await(codec.UNSUBACK, id, p, other); err != nil {
		return fmt.Errorf("unsubscribe: %w", err)
	}
	return nil
}

// await reads into p until a packet of type t with packet id id, handing
// every other packet to other.
func (w *wire) await(t codec.PacketType, id uint16, p *codec.Packet, other func(*codec.Packet) error) error {
	for {
		if err := w.next(p); err != nil {
			return fmt.Errorf("waiting for %v: %w", t, err)
		}
		switch {
		case p.Type == codec.SUBACK && t == codec.SUBACK && p.Suback.PacketID == id,
			p.Type == codec.UNSUBACK && t == codec.UNSUBACK && p.Unsuback.PacketID == id:
			return nil
		}
		if err := other(p); err != nil {
			return err
		}
	}
}
