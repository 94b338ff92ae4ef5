package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// handshakeTimeout bounds the wait for CONNACK and SUBACK.
const handshakeTimeout = 10 * time.Second

// handshake sends CONNECT (3.1.1, keep-alive off, clean session unless
// persistent) and, when filter is not empty, SUBSCRIBE to it at qos, and
// waits for CONNACK and SUBACK. It reads no further than the SUBACK, so
// nothing the broker sends later is lost. A persistent session must be new
// (CONNACK session present 0): a resumed one could deliver queued messages
// before the SUBACK.
func handshake(c net.Conn, clientID string, persistent bool, filter string, qos byte) error {
	p := &codec.Packet{Type: codec.CONNECT}
	// Keep-alive 0: runs are short and no client sends PINGREQ.
	p.Connect = codec.Connect{ProtocolVersion: codec.Version311, CleanStart: !persistent, ClientID: []byte(clientID)}
	out, err := p.Append(nil, codec.Version311)
	if err != nil {
		return err
	}
	if filter != "" {
		p.Type = codec.SUBSCRIBE
		p.Subscribe = codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: []byte(filter), QoS: qos}}}
		if out, err = p.Append(out, codec.Version311); err != nil {
			return err
		}
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(out); err != nil {
		return err
	}
	dec := codec.Decoder{Version: codec.Version311}
	if err := readPacket(c, &dec, p); err != nil {
		return fmt.Errorf("waiting for CONNACK: %w", err)
	}
	if p.Type != codec.CONNACK || p.Connack.ReasonCode != codec.Success {
		return fmt.Errorf("refused: %v %v", p.Type, p.Connack.ReasonCode)
	}
	if p.Connack.SessionPresent {
		return fmt.Errorf("client id %q resumed a session left by an earlier run", clientID)
	}
	if filter == "" {
		return nil
	}
	if err := readPacket(c, &dec, p); err != nil {
		return fmt.Errorf("waiting for SUBACK: %w", err)
	}
	if p.Type != codec.SUBACK || len(p.Suback.ReasonCodes) != 1 || p.Suback.ReasonCodes[0] != qos {
		return fmt.Errorf("subscription to %q refused: %v % x", filter, p.Type, p.Suback.ReasonCodes)
	}
	return nil
}

// readPacket reads exactly one packet from c, byte by byte after the fixed
// header, so that no byte of the next packet is consumed. It is for the
// handshake only.
func readPacket(c net.Conn, dec *codec.Decoder, p *codec.Packet) error {
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

// subscribe reads and counts PUBLISHes from c until c fails or is closed,
// acknowledging each QoS 1 PUBLISH, with one write of PUBACKs per read.
func (r *run) subscribe(c net.Conn, ct *counters) {
	var acks []byte
	n := int64(0)
	r.readLoop(c, "subscriber", 256<<10, func(p *codec.Packet) {
		if p.Type != codec.PUBLISH {
			return
		}
		n++
		if p.Publish.QoS == 1 {
			id := p.Publish.PacketID
			acks = append(acks, byte(codec.PUBACK)<<4, 2, byte(id>>8), byte(id))
		}
	}, func() error {
		ct.received.Add(n)
		n = 0
		if len(acks) == 0 {
			return nil
		}
		_, err := c.Write(acks)
		acks = acks[:0]
		return err
	})
}

// readLoop reads c until it fails or is closed, decodes every whole packet
// and hands it to onPacket (valid only during the call), and calls afterRead
// once per read. Errors are reported through r.fail under role's name.
func (r *run) readLoop(c net.Conn, role string, bufSize int, onPacket func(*codec.Packet), afterRead func() error) {
	dec := codec.Decoder{Version: codec.Version311}
	var p codec.Packet
	buf := make([]byte, bufSize)
	have := 0
	for {
		m, err := c.Read(buf[have:])
		if err != nil {
			r.fail(fmt.Errorf("%s read: %w", role, err))
			return
		}
		have += m
		off := 0
		for off < have {
			k, err := dec.Decode(buf[off:have], &p)
			if errors.Is(err, codec.ErrNeedMore) {
				break
			}
			if err != nil {
				r.fail(fmt.Errorf("%s decode: %w", role, err))
				return
			}
			off += k
			onPacket(&p)
		}
		if err := afterRead(); err != nil {
			r.fail(fmt.Errorf("%s write: %w", role, err))
			return
		}
		have = copy(buf, buf[off:have])
		if have == len(buf) { // one packet larger than the buffer
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}

// publish sends PUBLISHes of o.PayloadSize bytes to topic until r stops or
// o.MaxMessages are sent: QoS 0 in writes of o.Batch packets, QoS 1 keeping at
// most o.Window unacknowledged.
func (r *run) publish(c net.Conn, topic []byte, ct *counters) {
	pkt, idAt := template(topic, r.o.PayloadSize, r.o.QoS)
	if r.o.QoS == 0 {
		r.publish0(c, pkt, ct)
		return
	}
	r.publish1(c, pkt, idAt, ct)
}

// template encodes one PUBLISH and returns it with the offset of its packet
// id (QoS 1), so that later packets are copies with the id patched.
func template(topic []byte, size int, qos byte) ([]byte, int) {
	pub := codec.Publish{QoS: qos, Topic: topic, Payload: bytes.Repeat([]byte{'x'}, size)}
	if qos > 0 {
		pub.PacketID = 1
	}
	pkt, err := pub.Append(nil, codec.Version311)
	if err != nil {
		panic("BUG: cannot encode the load generator's PUBLISH: " + err.Error())
	}
	return pkt, len(pkt) - size - 2
}

// budget returns how many of want messages the publisher may still send.
func (r *run) budget(sent, want int64) int64 {
	if r.o.MaxMessages > 0 {
		want = min(want, r.o.MaxMessages-sent)
	}
	return want
}

func (r *run) publish0(c net.Conn, pkt []byte, ct *counters) {
	batch := bytes.Repeat(pkt, r.o.Batch)
	var sent int64
	for !r.stop.Load() {
		k := r.budget(sent, int64(r.o.Batch))
		if k <= 0 {
			return
		}
		n, err := c.Write(batch[:k*int64(len(pkt))])
		// A write cut short (by the deadline set at stop) still delivered
		// its whole packets.
		w := int64(n / len(pkt))
		sent += w
		ct.sent.Add(w)
		if err != nil {
			r.fail(fmt.Errorf("publisher write: %w", err))
			return
		}
	}
}

func (r *run) publish1(c net.Conn, pkt []byte, idAt int, ct *counters) {
	wake := make(chan struct{}, 1)
	r.readers.Add(1)
	go func() {
		defer r.readers.Done()
		defer close(wake)
		r.readAcks(c, ct, wake)
	}()
	window := int64(r.o.Window)
	buf := make([]byte, 0, len(pkt)*r.o.Window)
	var sent int64
	id := uint16(0)
	for !r.stop.Load() {
		room := r.budget(sent, window-(sent-ct.acked.Load()))
		if r.o.MaxMessages > 0 && sent >= r.o.MaxMessages {
			return
		}
		if room <= 0 {
			select {
			case _, ok := <-wake:
				if !ok {
					return // the connection failed; readAcks counted it
				}
			case <-r.stopped:
			}
			continue
		}
		buf = buf[:0]
		for range room {
			if id++; id == 0 {
				id = 1
			}
			buf = append(buf, pkt...)
			buf[len(buf)-len(pkt)+idAt] = byte(id >> 8)
			buf[len(buf)-len(pkt)+idAt+1] = byte(id)
		}
		n, err := c.Write(buf)
		w := int64(n / len(pkt))
		sent += w
		ct.sent.Add(w)
		if err != nil {
			r.fail(fmt.Errorf("publisher write: %w", err))
			return
		}
	}
}

// readAcks counts the PUBACKs on c until it fails or is closed, and signals
// wake after each read that brought some.
func (r *run) readAcks(c net.Conn, ct *counters, wake chan<- struct{}) {
	n := int64(0)
	r.readLoop(c, "publisher", 64<<10, func(p *codec.Packet) {
		if p.Type == codec.PUBACK {
			n++
		}
	}, func() error {
		if n > 0 {
			ct.acked.Add(n)
			n = 0
			select {
			case wake <- struct{}{}:
			default:
			}
		}
		return nil
	})
}
