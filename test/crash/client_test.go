package crash

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// conn is one MQTT connection of the test's own client. It does no protocol
// work of its own (no retries, no automatic acknowledgements, no keep-alive):
// the publisher and subscriber models decide every packet.
//
// Reads belong to one goroutine. Writes may come from several (a publisher's
// sender and its acknowledgement reader) and are serialised by wmu.
type conn struct {
	nc      net.Conn
	version byte

	// Read side, owned by the reading goroutine.
	dec codec.Decoder
	buf []byte // received bytes; buf[off:] not decoded yet
	off int
	pkt codec.Packet

	wmu  sync.Mutex
	wbuf []byte // encoding buffer, guarded by wmu
}

type connectOpts struct {
	clientID      string
	version       byte // codec.Version311 or codec.Version5
	clean         bool // Clean Session (3.1.1) / Clean Start (5.0)
	sessionExpiry uint32
}

// connack is the part of a CONNACK the tests look at, copied out of the
// read buffer.
type connack struct {
	sessionPresent bool
	receiveMax     int // 5.0 Receive Maximum, 65535 when absent
}

// dial connects and sends CONNECT; it returns once the CONNACK accepted the
// connection. Keep Alive is 0: connections live for seconds and send no
// PINGREQ (a 5.0 broker may announce a Server Keep Alive, which the test
// outlives by far).
func dial(addr string, o connectOpts, deadline time.Time) (*conn, connack, error) {
	d := net.Dialer{Deadline: deadline}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, connack{}, err
	}
	c := &conn{nc: nc, version: o.version, buf: make([]byte, 0, 64<<10)}
	c.dec.Version = o.version
	p := codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{
		ProtocolVersion: o.version,
		CleanStart:      o.clean,
		ClientID:        []byte(o.clientID),
	}}
	if o.version == codec.Version5 && o.sessionExpiry != 0 {
		p.Connect.Props.SetSessionExpiry(o.sessionExpiry)
	}
	if err := c.send(&p, deadline); err != nil {
		c.close()
		return nil, connack{}, err
	}
	rp, err := c.read(deadline)
	if err != nil {
		c.close()
		return nil, connack{}, fmt.Errorf("waiting for CONNACK: %w", err)
	}
	if rp.Type != codec.CONNACK {
		c.close()
		return nil, connack{}, fmt.Errorf("got %s, want CONNACK", rp.Type)
	}
	if rc := rp.Connack.ReasonCode; rc.IsError() {
		c.close()
		return nil, connack{}, fmt.Errorf("CONNACK refused: %s (%#x)", rc, byte(rc))
	}
	ack := connack{sessionPresent: rp.Connack.SessionPresent, receiveMax: 65535}
	if rp.Connack.Props.Has(codec.PropReceiveMaximum) {
		ack.receiveMax = int(rp.Connack.Props.ReceiveMaximum)
	}
	return c, ack, nil
}

// send encodes p at the connection's level and writes it whole.
func (c *conn) send(p *codec.Packet, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.wbuf, err = p.Append(c.wbuf[:0], c.version)
	if err != nil {
		return fmt.Errorf("encode %s: %w", p.Type, err)
	}
	_ = c.nc.SetWriteDeadline(deadline)
	_, err = c.nc.Write(c.wbuf)
	return err
}

// ack sends a PUBACK, PUBREC, PUBREL or PUBCOMP.
func (c *conn) ack(t codec.PacketType, id uint16, rc codec.ReasonCode, deadline time.Time) error {
	return c.send(&codec.Packet{Type: t, Ack: codec.Ack{Type: t, PacketID: id, ReasonCode: rc}}, deadline)
}

// publish sends a PUBLISH of m with packet id id (0 for QoS 0).
func (c *conn) publish(m *msg, id uint16, dup bool, deadline time.Time) error {
	return c.send(&codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{
		Dup:      dup,
		QoS:      m.qos,
		Retain:   m.retain,
		Topic:    []byte(m.topic),
		PacketID: id,
		Payload:  []byte(m.payload),
	}}, deadline)
}

// disconnect sends a normal DISCONNECT and closes the socket.
func (c *conn) disconnect() {
	_ = c.send(&codec.Packet{Type: codec.DISCONNECT}, time.Now().Add(time.Second))
	c.close()
}

func (c *conn) close() { _ = c.nc.Close() }

// read returns the next packet, waiting until deadline. The packet and every
// byte slice in it are views into the connection's buffers, valid until the
// next call of read: copy what you keep.
func (c *conn) read(deadline time.Time) (*codec.Packet, error) {
	for {
		if c.off < len(c.buf) {
			n, err := c.dec.Decode(c.buf[c.off:], &c.pkt)
			if err == nil {
				c.off += n
				return &c.pkt, nil
			}
			if !errors.Is(err, codec.ErrNeedMore) {
				return nil, fmt.Errorf("decode: %w", err)
			}
		}
		if c.off > 0 {
			c.buf = c.buf[:copy(c.buf, c.buf[c.off:])]
			c.off = 0
		}
		if len(c.buf) == cap(c.buf) {
			c.buf = append(c.buf, make([]byte, cap(c.buf))...)[:len(c.buf)]
		}
		_ = c.nc.SetReadDeadline(deadline)
		m, err := c.nc.Read(c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+m]
		if m == 0 && err != nil {
			return nil, err
		}
	}
}

// isTimeout reports whether err is a read or write deadline passing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
