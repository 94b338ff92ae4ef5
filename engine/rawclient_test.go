package engine_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// wireClient is a minimal MQTT client on a raw TCP socket, built on the codec
// package, for tests that must send exact bytes or see exact packets: DUP and
// RETAIN flags, packet ids, reason codes, properties, and misbehaviour no
// real client library allows. It belongs to one test goroutine.
type wireClient struct {
	t       testing.TB
	nc      net.Conn
	version byte
	dec     codec.Decoder
	// in holds received bytes not yet decoded. Consumed bytes are sliced off
	// the front and never overwritten, so the views of every packet returned
	// by next stay valid for the rest of the test.
	in  []byte
	tmp []byte
}

// wireTimeout bounds every wait of a wireClient for a packet that should come.
const wireTimeout = 5 * time.Second

// dialWire opens a TCP connection to addr that speaks protocol level version
// (codec.Version311 or codec.Version5) once connected. The socket is closed
// when the test ends.
func dialWire(t testing.TB, addr string, version byte) *wireClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, wireTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &wireClient{t: t, nc: nc, version: version, tmp: make([]byte, 64<<10)}
	c.dec.Version = version // decode the server's packets at this level
	return c
}

// connectWire dials addr and connects as clientID with a clean start; edit, if
// not nil, changes the CONNECT before it is sent. It fails the test unless
// the CONNACK is a success, and returns it.
func connectWire(t testing.TB, addr string, version byte, clientID string, edit func(*codec.Connect)) (*wireClient, *codec.Connack) {
	t.Helper()
	c := dialWire(t, addr, version)
	return c, c.connect(clientID, edit)
}

// connect sends a CONNECT (clean start, keep alive 30 s unless edit changes
// them) and expects a successful CONNACK.
func (c *wireClient) connect(clientID string, edit func(*codec.Connect)) *codec.Connack {
	c.t.Helper()
	p := &codec.Packet{Type: codec.CONNECT}
	p.Connect = codec.Connect{ProtocolVersion: c.version, CleanStart: true, KeepAlive: 30, ClientID: []byte(clientID)}
	if edit != nil {
		edit(&p.Connect)
	}
	c.send(p)
	ack := c.expect(codec.CONNACK).Connack
	if ack.ReasonCode != codec.Success {
		c.t.Fatalf("connect %q: CONNACK %#02x (%v)", clientID, byte(ack.ReasonCode), ack.ReasonCode)
	}
	return &ack
}

// write writes b whole, failing the test on error.
func (c *wireClient) write(b []byte) {
	c.t.Helper()
	if err := c.tryWrite(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// tryWrite writes b and returns the error, for tests where the broker may
// already have closed the connection.
func (c *wireClient) tryWrite(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(wireTimeout))
	_, err := c.nc.Write(b)
	return err
}

// send encodes p at the client's protocol level and writes it.
func (c *wireClient) send(p *codec.Packet) {
	c.t.Helper()
	b, err := p.Append(nil, c.version)
	if err != nil {
		c.t.Fatalf("encode %v: %v", p.Type, err)
	}
	c.write(b)
}

// next returns the next packet the server sends, waiting at most d. The
// error is io.EOF when the server closed the connection, a timeout error
// when nothing came in time, or a decoding error for bytes that are not a
// valid packet.
func (c *wireClient) next(d time.Duration) (*codec.Packet, error) {
	deadline := time.Now().Add(d)
	for {
		if len(c.in) > 0 {
			p := new(codec.Packet)
			n, err := c.dec.Decode(c.in, p)
			if err == nil {
				c.in = c.in[n:]
				return p, nil
			}
			if !errors.Is(err, codec.ErrNeedMore) {
				return nil, fmt.Errorf("undecodable bytes from the server % x: %w", c.in[:min(len(c.in), 32)], err)
			}
		}
		_ = c.nc.SetReadDeadline(deadline)
		n, err := c.nc.Read(c.tmp)
		if n > 0 {
			// Appending never overwrites bytes before len(c.in), which the
			// views of earlier packets point into.
			c.in = append(c.in, c.tmp[:n]...)
			continue
		}
		if err != nil {
			if isClosedErr(err) {
				return nil, io.EOF
			}
			return nil, err
		}
	}
}

// isClosedErr reports whether a read error means the peer closed the
// connection (FIN or RST).
func isClosedErr(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// expect returns the next packet and fails the test unless it is of type t.
func (c *wireClient) expect(t codec.PacketType) *codec.Packet {
	c.t.Helper()
	p, err := c.next(wireTimeout)
	if err != nil {
		c.t.Fatalf("waiting for %v: %v", t, err)
	}
	if p.Type != t {
		c.t.Fatalf("got %v, want %v%s", p.Type, t, describe(p))
	}
	return p
}

// expectPublish returns the next packet, which must be a PUBLISH.
func (c *wireClient) expectPublish() *codec.Publish {
	c.t.Helper()
	return &c.expect(codec.PUBLISH).Publish
}

// expectAck returns the next packet, which must be an acknowledgement of type
// t for packet id id.
func (c *wireClient) expectAck(t codec.PacketType, id uint16) *codec.Ack {
	c.t.Helper()
	a := &c.expect(t).Ack
	if a.PacketID != id {
		c.t.Fatalf("%v for packet id %d, want %d", t, a.PacketID, id)
	}
	return a
}

// expectNone fails the test when the server sends anything within d.
func (c *wireClient) expectNone(d time.Duration) {
	c.t.Helper()
	p, err := c.next(d)
	switch {
	case err == nil:
		c.t.Fatalf("unexpected %v%s", p.Type, describe(p))
	case errors.Is(err, os.ErrDeadlineExceeded):
	default:
		c.t.Fatalf("waiting for silence: %v", err)
	}
}

// expectClosed waits at most d for the server to close the connection and
// returns the packets it sent before closing (a 5.0 DISCONNECT, say). It
// fails the test when the connection is still open after d.
func (c *wireClient) expectClosed(d time.Duration) []*codec.Packet {
	c.t.Helper()
	var got []*codec.Packet
	deadline := time.Now().Add(d)
	for {
		p, err := c.next(time.Until(deadline))
		switch {
		case err == nil:
			got = append(got, p)
			continue
		case errors.Is(err, io.EOF):
			return got
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.t.Fatalf("connection still open after %v (received %d packets)", d, len(got))
		default:
			// Bytes that do not decode: the server wrote garbage, then
			// (hopefully) closed. Drain to the close.
			c.t.Errorf("%v", err)
			c.in = nil
			c.drainUntilClosed(deadline)
			return got
		}
	}
}

func (c *wireClient) drainUntilClosed(deadline time.Time) {
	c.t.Helper()
	for {
		_ = c.nc.SetReadDeadline(deadline)
		if _, err := c.nc.Read(c.tmp); err != nil {
			if !isClosedErr(err) {
				c.t.Fatalf("connection still open: %v", err)
			}
			return
		}
	}
}

// disconnectReason returns the reason code of the DISCONNECT among pkts, and
// whether there was one.
func disconnectReason(pkts []*codec.Packet) (codec.ReasonCode, bool) {
	for _, p := range pkts {
		if p.Type == codec.DISCONNECT {
			return p.Disconnect.ReasonCode, true
		}
	}
	return 0, false
}

func describe(p *codec.Packet) string {
	switch p.Type {
	case codec.PUBLISH:
		return fmt.Sprintf(" (topic %q qos %d id %d dup %v retain %v payload %q)",
			p.Publish.Topic, p.Publish.QoS, p.Publish.PacketID, p.Publish.Dup, p.Publish.Retain, p.Publish.Payload)
	case codec.PUBACK, codec.PUBREC, codec.PUBREL, codec.PUBCOMP:
		return fmt.Sprintf(" (id %d reason %#02x)", p.Ack.PacketID, byte(p.Ack.ReasonCode))
	case codec.DISCONNECT:
		return fmt.Sprintf(" (reason %#02x %v)", byte(p.Disconnect.ReasonCode), p.Disconnect.ReasonCode)
	case codec.CONNACK:
		return fmt.Sprintf(" (reason %#02x)", byte(p.Connack.ReasonCode))
	}
	return ""
}

// subscribe sends a SUBSCRIBE with packet id id (and subscription identifier
// subID unless 0) and returns the reason codes of the SUBACK.
func (c *wireClient) subscribe(id uint16, subID uint32, subs ...codec.Subscription) []byte {
	c.t.Helper()
	p := &codec.Packet{Type: codec.SUBSCRIBE}
	p.Subscribe = codec.Subscribe{PacketID: id, Subscriptions: subs}
	if subID != 0 {
		p.Subscribe.Props.AddSubscriptionID(subID)
	}
	c.send(p)
	ack := c.expect(codec.SUBACK).Suback
	if ack.PacketID != id {
		c.t.Fatalf("SUBACK for packet id %d, want %d", ack.PacketID, id)
	}
	return ack.ReasonCodes
}

// subscription is a codec.Subscription of filter at QoS qos, for subscribe.
func subscription(filter string, qos byte) codec.Subscription {
	return codec.Subscription{Filter: []byte(filter), QoS: qos}
}

// publish sends a PUBLISH without properties.
func (c *wireClient) publish(topic string, qos byte, id uint16, retain bool, payload string) {
	c.t.Helper()
	c.send(publishPacket(topic, qos, id, retain, payload))
}

// publishPacket builds a PUBLISH without properties.
func publishPacket(topic string, qos byte, id uint16, retain bool, payload string) *codec.Packet {
	p := &codec.Packet{Type: codec.PUBLISH}
	p.Publish = codec.Publish{Topic: []byte(topic), QoS: qos, PacketID: id, Retain: retain, Payload: []byte(payload)}
	return p
}

// ack sends a PUBACK, PUBREC, PUBREL or PUBCOMP for packet id id.
func (c *wireClient) ack(t codec.PacketType, id uint16) {
	c.t.Helper()
	c.send(&codec.Packet{Type: t, Ack: codec.Ack{PacketID: id}})
}

// ping sends a PINGREQ and waits for the PINGRESP, which proves every packet
// sent before it was processed.
func (c *wireClient) ping() {
	c.t.Helper()
	c.write(codec.AppendPingreq(nil))
	c.expect(codec.PINGRESP)
}
