package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// dial connects to addr from 127.0.0.src and completes an MQTT 3.1.1
// CONNECT (clean session) with clientID and keepAlive in seconds.
func dial(ctx context.Context, addr, clientID string, keepAlive uint16, src int) (net.Conn, error) {
	d := net.Dialer{Timeout: handshakeTimeout, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(src))}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &codec.Packet{Type: codec.CONNECT}
	p.Connect = codec.Connect{ProtocolVersion: codec.Version311, CleanStart: true, KeepAlive: keepAlive, ClientID: []byte(clientID)}
	if err := roundTrip(c, p, codec.CONNACK); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if p.Connack.ReasonCode != codec.Success {
		c.Close()
		return nil, fmt.Errorf("connect refused: %v", p.Connack.ReasonCode)
	}
	return c, nil
}

// roundTrip writes p, then reads one packet into p and checks it is of type
// want. It reads byte by byte past the fixed header, so that no byte of a
// later packet is consumed.
func roundTrip(c net.Conn, p *codec.Packet, want codec.PacketType) error {
	out, err := p.Append(nil, codec.Version311)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(out); err != nil {
		return err
	}
	dec := codec.Decoder{Version: codec.Version311}
	var buf []byte
	one := make([]byte, 1)
	for {
		if _, err := c.Read(one); err != nil {
			return fmt.Errorf("waiting for %v: %w", want, err)
		}
		buf = append(buf, one[0])
		n, err := dec.Decode(buf, p)
		if err == nil && n == len(buf) {
			if p.Type != want {
				return fmt.Errorf("got %v, want %v", p.Type, want)
			}
			return nil
		}
		if !errors.Is(err, codec.ErrNeedMore) {
			return err
		}
	}
}
