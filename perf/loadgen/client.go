package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/perf/mqttwire"
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
	if err := mqttwire.ReadPacket(c, &dec, p); err != nil {
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
	if err := mqttwire.ReadPacket(c, &dec, p); err != nil {
		return fmt.Errorf("waiting for SUBACK: %w", err)
	}
	if p.Type != codec.SUBACK || len(p.Suback.ReasonCodes) != 1 || p.Suback.ReasonCodes[0] != qos {
		return fmt.Errorf("subscription to %q refused: %v % x", filter, p.Type, p.Suback.ReasonCodes)
	}
	return nil
}

// subscribe reads and counts PUBLISHes from c until c fails or is closed,
// acknowledging each QoS 1 PUBLISH with PUBACK and each QoS 2 one with PUBREC
// (and the PUBREL that follows with PUBCOMP), with one write of those per
// read. A message counts as received on its PUBLISH. When sv is not nil it
// records every message's tag there and counts those recorded before as
// duplicates; when want is not nil, PUBLISHes to another topic count as
// misrouted.
func (r *run) subscribe(c net.Conn, ct *counters, sv *seen, want []byte, bufSize int) {
	var acks []byte
	var tags []tag
	n, bad := int64(0), int64(0)
	r.readLoop(c, "subscriber", bufSize, func(p *codec.Packet) {
		switch p.Type {
		case codec.PUBLISH:
		case codec.PUBREL:
			acks = appendAck(acks, codec.PUBCOMP, p.Ack.PacketID)
			return
		default:
			return
		}
		n++
		switch id := p.Publish.PacketID; p.Publish.QoS {
		case 1:
			acks = appendAck(acks, codec.PUBACK, id)
		case 2:
			acks = appendAck(acks, codec.PUBREC, id)
		}
		if want != nil && !bytes.Equal(p.Publish.Topic, want) {
			bad++
			return
		}
		if sv != nil {
			t, ok := readTag(p.Publish.Payload, r.o.Publishers)
			if !ok {
				bad++
				return
			}
			tags = append(tags, t)
		}
	}, func() error {
		if len(tags) > 0 {
			ct.dups.Add(sv.add(tags))
			tags = tags[:0]
		}
		ct.misrouted.Add(bad)
		ct.received.Add(n)
		n, bad = 0, 0
		if len(acks) == 0 {
			return nil
		}
		_, err := c.Write(acks)
		acks = acks[:0]
		return err
	})
}

// appendAck appends a 3.1.1 PUBACK, PUBREC, PUBREL or PUBCOMP for id to b.
func appendAck(b []byte, t codec.PacketType, id uint16) []byte {
	flags := byte(0)
	if t == codec.PUBREL {
		flags = 0x02 // MQTT-3.6.1-1
	}
	return append(b, byte(t)<<4|flags, 2, byte(id>>8), byte(id))
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
// o.MaxMessages are sent: QoS 0 in writes of o.Batch packets, QoS 1 and 2
// keeping at most o.Window incomplete (not yet PUBACKed or PUBCOMPed). When
// the run counts duplicates, each payload starts with its tag: publisher
// index pub and the message's sequence number.
func (r *run) publish(c net.Conn, pub int, topic []byte, ct *counters) {
	pkt, idAt := template(topic, r.o.PayloadSize, r.o.QoS)
	var tagAt int // offset of the payload in pkt, or -1 for untagged
	if r.o.countsDuplicates() {
		tagAt = len(pkt) - r.o.PayloadSize
	} else {
		tagAt = -1
	}
	if r.o.QoS == 0 {
		r.publish0(c, pkt, pub, tagAt, ct)
		return
	}
	r.publish1(c, pkt, idAt, pub, tagAt, ct)
}

// template encodes one PUBLISH and returns it with the offset of its packet
// id (QoS 1 and 2), so that later packets are copies with the id patched.
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

// wrote counts the whole packets of size size that a write of n bytes sent,
// and marks the connection torn when the write stopped mid-packet.
func wrote(n, size int, ct *counters) int64 {
	if n%size != 0 {
		ct.torn.Store(true)
	}
	w := int64(n / size)
	ct.sent.Add(w)
	return w
}

func (r *run) publish0(c net.Conn, pkt []byte, pub, tagAt int, ct *counters) {
	batch := bytes.Repeat(pkt, r.o.Batch)
	var sent int64
	for !r.stop.Load() {
		k := r.budget(sent, int64(r.o.Batch))
		if k <= 0 {
			return
		}
		if tagAt >= 0 {
			for i := range k {
				putTag(batch[int(i)*len(pkt)+tagAt:], pub, uint64(sent+i))
			}
		}
		n, err := c.Write(batch[:k*int64(len(pkt))])
		// A write cut short (by the deadline set at stop) still delivered
		// its whole packets.
		sent += wrote(n, len(pkt), ct)
		if err != nil {
			r.fail(fmt.Errorf("publisher write: %w", err))
			return
		}
	}
}

func (r *run) publish1(c net.Conn, pkt []byte, idAt, pub, tagAt int, ct *counters) {
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
		for i := range room {
			if id++; id == 0 {
				id = 1
			}
			buf = append(buf, pkt...)
			p := buf[len(buf)-len(pkt):]
			p[idAt], p[idAt+1] = byte(id>>8), byte(id)
			if tagAt >= 0 {
				putTag(p[tagAt:], pub, uint64(sent+i))
			}
		}
		n, err := c.Write(buf)
		sent += wrote(n, len(pkt), ct)
		if err != nil {
			r.fail(fmt.Errorf("publisher write: %w", err))
			return
		}
	}
}

// readAcks reads c until it fails or is closed: it counts PUBACKs (QoS 1)
// or PUBCOMPs (QoS 2) and signals wake after each read that brought some,
// and answers each PUBREC with PUBREL. PUBRELs cut off by the write deadline
// halt sets are written once resume lifts it, so that messages still in
// flight complete during the drain.
func (r *run) readAcks(c net.Conn, ct *counters, wake chan<- struct{}) {
	done := codec.PUBACK
	if r.o.QoS == 2 {
		done = codec.PUBCOMP
	}
	n := int64(0)
	var rels []byte
	r.readLoop(c, "publisher", 64<<10, func(p *codec.Packet) {
		switch p.Type {
		case done:
			n++
		case codec.PUBREC:
			rels = appendAck(rels, codec.PUBREL, p.Ack.PacketID)
		}
	}, func() error {
		if err := r.writeRels(c, rels); err != nil {
			return err
		}
		rels = rels[:0]
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

// writeRels writes b (PUBRELs) to a publisher's connection, waiting out the
// write deadline halt sets: a write it cut short is finished after resume.
// If the publisher's own write was cut mid-packet, resume keeps the deadline
// and the retry fails.
func (r *run) writeRels(c net.Conn, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := c.Write(b)
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !r.stop.Load() {
		return err
	}
	<-r.resumed
	_, err = c.Write(b[n:])
	return err
}
