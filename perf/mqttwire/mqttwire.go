// Package mqttwire is the small MQTT 3.1.1 client the benchmark commands
// share: dial and CONNECT from a chosen loopback source address, SUBSCRIBE,
// one request and its answer, and a read loop that decodes packets in place.
package mqttwire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// HandshakeTimeout bounds each request and its answer.
const HandshakeTimeout = 10 * time.Second

// Dial connects to addr from 127.0.0.src and completes an MQTT 3.1.1
// CONNECT (clean session) with clientID and keepAlive in seconds.
func Dial(ctx context.Context, addr, clientID string, keepAlive uint16, src int) (net.Conn, error) {
	return dial(ctx, addr, clientID, keepAlive, src, true)
}

// DialPersistent is Dial with Clean Session 0: the broker keeps the session
// after the connection. The session must be new (a benchmark's own).
func DialPersistent(ctx context.Context, addr, clientID string, keepAlive uint16, src int) (net.Conn, error) {
	return dial(ctx, addr, clientID, keepAlive, src, false)
}

func dial(ctx context.Context, addr, clientID string, keepAlive uint16, src int, clean bool) (net.Conn, error) {
	d := net.Dialer{Timeout: HandshakeTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &codec.Packet{Type: codec.CONNECT}
	p.Connect = codec.Connect{ProtocolVersion: codec.Version311, CleanStart: clean, KeepAlive: keepAlive, ClientID: []byte(clientID)}
	if err := RoundTrip(c, p, codec.CONNACK); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if p.Connack.ReasonCode != codec.Success {
		c.Close()
		return nil, fmt.Errorf("connect refused: %v", p.Connack.ReasonCode)
	}
	if !clean && p.Connack.SessionPresent {
		c.Close()
		return nil, errors.New("connect: session present, the client id is taken")
	}
	return c, nil
}

// Subscribe subscribes c to filter at qos and waits for the SUBACK.
func Subscribe(c net.Conn, filter string, qos byte) error {
	p := &codec.Packet{Type: codec.SUBSCRIBE}
	p.Subscribe = codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: []byte(filter), QoS: qos}}}
	if err := RoundTrip(c, p, codec.SUBACK); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if len(p.Suback.ReasonCodes) != 1 || p.Suback.ReasonCodes[0] != qos {
		return fmt.Errorf("subscription to %q refused: % x", filter, p.Suback.ReasonCodes)
	}
	return nil
}

// RoundTrip writes p, then reads one packet into p and checks it is of type
// want. It reads byte by byte past the fixed header, so that no byte of a
// later packet is consumed.
func RoundTrip(c net.Conn, p *codec.Packet, want codec.PacketType) error {
	out, err := p.Append(nil, codec.Version311)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(out); err != nil {
		return err
	}
	dec := codec.Decoder{Version: codec.Version311}
	if err := ReadPacket(c, &dec, p); err != nil {
		return fmt.Errorf("waiting for %v: %w", want, err)
	}
	if p.Type != want {
		return fmt.Errorf("got %v, want %v", p.Type, want)
	}
	return nil
}

// ReadPacket reads exactly one packet from c into p, byte by byte, so that
// no byte of a later packet is consumed: for handshakes, before a read loop
// takes the connection over.
func ReadPacket(c net.Conn, dec *codec.Decoder, p *codec.Packet) error {
	var buf []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return err
		}
		buf = append(buf, one[0])
		n, err := dec.Decode(buf, p)
		if err == nil && n == len(buf) {
			return nil
		}
		if !errors.Is(err, codec.ErrNeedMore) {
			return err
		}
	}
}

// ReadLoop reads c until it fails or is closed, hands every whole packet to
// onPacket (valid only during the call) and calls afterRead, when not nil,
// once per read.
func ReadLoop(c net.Conn, bufSize int, onPacket func(*codec.Packet), afterRead func() error) error {
	dec := codec.Decoder{Version: codec.Version311}
	var p codec.Packet
	buf := make([]byte, bufSize)
	have := 0
	for {
		m, err := c.Read(buf[have:])
		if err != nil {
			return err
		}
		have += m
		off := 0
		for off < have {
			k, err := dec.Decode(buf[off:have], &p)
			if errors.Is(err, codec.ErrNeedMore) {
				break
			}
			if err != nil {
				return fmt.Errorf("decode: %w", err)
			}
			off += k
			onPacket(&p)
		}
		if afterRead != nil {
			if err := afterRead(); err != nil {
				return err
			}
		}
		have = copy(buf, buf[off:have])
		if have == len(buf) { // one packet larger than the buffer
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}
