package crash

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

const (
	window         = 32 // QoS 1/2 messages in flight per publisher
	retainedPerPub = 8  // retained topics of each publisher
	sessionForever = 0xFFFFFFFF
	drainQuiet     = 1500 * time.Millisecond // silence that ends a drain still owed messages
	drainGrace     = 150 * time.Millisecond  // silence after the last owed message, to catch duplicates
	readTick       = 50 * time.Millisecond
	retainedQuiet  = time.Second
	retainedFilter = "crash/r/+/+"
)

// connSet holds the live client connections, so that the no-kill debug mode
// can break them all as a kill would.
type connSet struct {
	mu sync.Mutex
	m  map[*conn]struct{}
}

func (s *connSet) add(c *conn) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[*conn]struct{}{}
	}
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c *conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	for c := range s.m {
		c.close()
	}
	s.mu.Unlock()
}

// publisher is a client with a persistent session that publishes QoS 0, 1
// and 2 messages with unique payloads, some retained, with at most window
// of them in flight. It behaves as the specification asks of a client across
// reconnects (MQTT-4.4.0-1): on a new connection to its session it resends
// every unacknowledged PUBLISH with DUP set and every unacknowledged PUBREL,
// with their original packet ids, before anything new. So by the end of a
// cycle every message it sent has been acknowledged, and the broker's
// inbound QoS 2 state (4.3.3) is exercised across kills.
type publisher struct {
	name     string // also the payload prefix
	clientID string
	version  byte
	rate     int // new messages per second
	tr       *tracker
	conns    *connSet

	rng           *rand.Rand // used by the sending goroutine only
	everConnected bool       // a CONNACK made the session exist
	extra         []*msg     // sent by the next settle (probes), then cleared

	mu       sync.Mutex
	cond     *sync.Cond
	dead     bool // the current connection is gone
	seq      int
	nextID   uint16
	order    int
	inflight map[uint16]*flight
	retBusy  [retainedPerPub]bool // a retained topic with a message in flight
	stats    pubStats
}

type flight struct {
	m         *msg
	id        uint16
	order     int  // sending order, kept by resends
	rec       bool // PUBREC received, PUBREL sent
	relResent bool // PUBREL sent again on a later connection
	retSlot   int  // index in retBusy, -1 when not retained
}

type pubStats struct {
	sent, q0, acked1, acked2, ackedRet, refused, resent int
}

func newPublisher(name string, version byte, rate int, seed int64, tr *tracker, conns *connSet) *publisher {
	p := &publisher{
		name: name, clientID: "crash-" + name, version: version, rate: rate, tr: tr, conns: conns,
		rng:      rand.New(rand.NewSource(seed)),
		inflight: map[uint16]*flight{},
	}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// takeStats returns and resets the counts since the last call.
func (p *publisher) takeStats() pubStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	p.stats = pubStats{}
	return s
}

func (p *publisher) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inflight)
}

// session connects to the publisher's session and resends what is in
// flight. With load it then sends new messages until the connection breaks
// (the broker is killed) and returns nil. Without, it sends p.extra and
// returns nil once everything in flight is acknowledged and it disconnected.
func (p *publisher) session(addr string, deadline time.Time, load bool) error {
	c, ack, err := dial(addr, connectOpts{clientID: p.clientID, version: p.version, sessionExpiry: sessionForever}, deadline)
	if err != nil {
		return err
	}
	p.conns.add(c)
	defer p.conns.remove(c)

	type resend struct {
		id  uint16
		m   *msg
		rel bool
	}
	var todo []resend
	p.mu.Lock()
	if p.everConnected && !ack.sessionPresent {
		p.tr.failf("%s: CONNACK session present 0 on reconnect: the broker lost its session (%d messages in flight abandoned)",
			p.name, len(p.inflight))
		clear(p.inflight)
		p.retBusy = [retainedPerPub]bool{}
	}
	p.everConnected, p.dead = true, false
	fs := make([]*flight, 0, len(p.inflight))
	for _, f := range p.inflight {
		fs = append(fs, f)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].order < fs[j].order })
	for _, f := range fs {
		if f.rec {
			f.relResent = true
		}
		p.tr.resent(f.m)
		todo = append(todo, resend{f.id, f.m, f.rec})
	}
	p.stats.resent += len(todo)
	p.mu.Unlock()

	readerDone := make(chan error, 1)
	go func() { readerDone <- p.readAcks(c, deadline) }()
	finish := func(err error) error {
		c.close()
		<-readerDone
		return err
	}
	for _, r := range todo {
		if r.rel {
			err = c.ack(codec.PUBREL, r.id, codec.Success, deadline)
		} else {
			err = c.publish(r.m, r.id, true, deadline)
		}
		if err != nil {
			return finish(fmt.Errorf("resend: %w", err))
		}
	}

	if load {
		start, n := time.Now(), 0
		for {
			n++
			if d := time.Until(start.Add(time.Duration(n) * time.Second / time.Duration(p.rate))); d > 0 {
				time.Sleep(d)
			}
			p.mu.Lock()
			for len(p.inflight) >= window && !p.dead {
				p.cond.Wait()
			}
			if p.dead {
				p.mu.Unlock()
				break
			}
			m, id := p.nextLocked()
			p.mu.Unlock()
			if c.publish(m, id, false, deadline) != nil {
				break
			}
		}
		return finish(nil)
	}

	for len(p.extra) > 0 {
		m := p.extra[0]
		p.extra = p.extra[1:] // in flight from here: a broken connection resends it
		p.mu.Lock()
		id := p.registerLocked(m, -1)
		p.mu.Unlock()
		if err := c.publish(m, id, false, deadline); err != nil {
			return finish(fmt.Errorf("publish: %w", err))
		}
	}
	// The reader closes the connection at the deadline, which wakes this.
	p.mu.Lock()
	for len(p.inflight) > 0 && !p.dead {
		p.cond.Wait()
	}
	left, dead := len(p.inflight), p.dead
	p.mu.Unlock()
	if dead {
		return finish(fmt.Errorf("connection lost with %d messages unacknowledged", left))
	}
	c.disconnect()
	<-readerDone
	return nil
}

// nextLocked makes the next new message and, for QoS 1 and 2, puts it in
// flight. Called with p.mu held.
func (p *publisher) nextLocked() (*msg, uint16) {
	p.seq++
	m := &msg{payload: fmt.Sprintf("%s-%06d", p.name, p.seq)}
	slot := -1
	r := p.rng.Intn(100)
	var free []int
	if r >= 5 && r < 20 {
		for i, busy := range p.retBusy {
			if !busy {
				free = append(free, i)
			}
		}
	}
	switch {
	case r < 5:
		m.qos, m.topic = 0, fmt.Sprintf("crash/d/%s/q0", p.name)
	case len(free) > 0:
		slot = free[p.rng.Intn(len(free))]
		p.retBusy[slot] = true
		m.qos, m.retain, m.topic = byte(1+r%2), true, fmt.Sprintf("crash/r/%s/%d", p.name, slot)
	case r < 60:
		m.qos, m.topic = 1, fmt.Sprintf("crash/d/%s/q1", p.name)
	default:
		m.qos, m.topic = 2, fmt.Sprintf("crash/d/%s/q2", p.name)
	}
	return m, p.registerLocked(m, slot)
}

// registerLocked records m with the tracker and, for QoS 1 and 2, gives it a
// free packet id and puts it in flight. slot is its retained topic, or -1.
func (p *publisher) registerLocked(m *msg, slot int) uint16 {
	p.tr.sent(m)
	p.stats.sent++
	if m.qos == 0 {
		p.stats.q0++
		return 0
	}
	for {
		p.nextID++
		if _, used := p.inflight[p.nextID]; p.nextID != 0 && !used {
			break
		}
	}
	p.order++
	p.inflight[p.nextID] = &flight{m: m, id: p.nextID, order: p.order, retSlot: slot}
	return p.nextID
}

// doneLocked takes f out of flight; acked says whether the broker accepted it.
func (p *publisher) doneLocked(f *flight, acked bool) {
	delete(p.inflight, f.id)
	m := f.m
	if f.retSlot >= 0 {
		p.retBusy[f.retSlot] = false
	}
	switch {
	case !acked:
		p.stats.refused++
	case m.retain:
		p.stats.ackedRet++
	case m.qos == 1:
		p.stats.acked1++
	default:
		p.stats.acked2++
	}
	if acked {
		p.tr.acked(m)
	}
	p.cond.Broadcast()
}

// readAcks handles what the broker sends on a publisher's connection until
// it closes or deadline passes, then marks the connection dead.
func (p *publisher) readAcks(c *conn, deadline time.Time) error {
	err := p.readAcksLoop(c, deadline)
	c.close()
	p.mu.Lock()
	p.dead = true
	p.cond.Broadcast()
	p.mu.Unlock()
	return err
}

func (p *publisher) readAcksLoop(c *conn, deadline time.Time) error {
	for {
		pkt, err := c.read(deadline)
		if err != nil {
			return err
		}
		if pkt.Type == codec.DISCONNECT {
			return fmt.Errorf("broker sent DISCONNECT %s", pkt.Disconnect.ReasonCode)
		}
		if pkt.Type != codec.PUBACK && pkt.Type != codec.PUBREC && pkt.Type != codec.PUBCOMP {
			p.tr.failf("%s: unexpected %s from the broker", p.name, pkt.Type)
			continue
		}
		id, rc, typ := pkt.Ack.PacketID, pkt.Ack.ReasonCode, pkt.Type
		p.mu.Lock()
		f := p.inflight[id]
		var sendRel bool
		switch {
		case f == nil || (typ == codec.PUBACK) != (f.m.qos == 1) || (typ == codec.PUBCOMP && !f.rec):
			p.tr.failf("%s: %s for packet id %d, which is not waiting for one (in flight: %v)", p.name, typ, id, f != nil)
		case typ == codec.PUBACK:
			p.doneLocked(f, !rc.IsError())
		case typ == codec.PUBREC && rc.IsError():
			p.doneLocked(f, false)
		case typ == codec.PUBREC:
			f.rec, sendRel = true, true
		default: // PUBCOMP
			if rc == codec.PacketIdentifierNotFound && !f.relResent {
				// Legitimate only for a PUBREL resent after a reconnect,
				// whose first copy the broker had already completed.
				p.tr.failf("%s: PUBCOMP %s for the first PUBREL of %s: the broker forgot a QoS 2 packet id it had just sent PUBREC for",
					p.name, rc, f.m)
			}
			// The broker answered PUBREC: the message is its own from then on.
			p.doneLocked(f, true)
		}
		p.mu.Unlock()
		if sendRel {
			if err := c.ack(codec.PUBREL, id, codec.Success, deadline); err != nil {
				return err
			}
		}
	}
}

// subscriber is a client with a persistent session and fixed subscriptions.
// It is a correct QoS 2 receiver across reconnects (4.3.3, Method B): the
// packet ids it answered with PUBREC and has not seen released stay in its
// session, and a PUBLISH with one of them is a resend, acknowledged again
// but not delivered again. One goroutine at a time uses it.
type subscriber struct {
	name, clientID string
	version        byte
	rec            *subRecord
	tr             *tracker
	conns          *connSet

	everConnected bool
	subscribed    bool
	awaitingRel   map[uint16]string // packet id → payload, PUBREC sent, PUBREL not seen
}

func newSubscriber(name string, version byte, filters []filter, tr *tracker, conns *connSet) *subscriber {
	vs := "3.1.1"
	if version == codec.Version5 {
		vs = "5.0"
	}
	return &subscriber{
		name: name, clientID: "crash-" + name, version: version, tr: tr, conns: conns,
		rec:         tr.addSub(name+"("+vs+")", filters),
		awaitingRel: map[uint16]string{},
	}
}

// connect connects to the subscriber's session, checks the broker kept it,
// and subscribes the first time.
func (s *subscriber) connect(addr string, deadline time.Time) (*conn, error) {
	c, ack, err := dial(addr, connectOpts{clientID: s.clientID, version: s.version, sessionExpiry: sessionForever}, deadline)
	if err != nil {
		return nil, err
	}
	if s.everConnected && !ack.sessionPresent {
		// MQTT-3.2.2-2 (3.1.1) / MQTT-3.2.2-3 (5.0).
		s.tr.failf("%s: CONNACK session present 0 on reconnect: the broker lost its session (%d QoS 2 ids awaiting PUBREL dropped)",
			s.rec.name, len(s.awaitingRel))
		clear(s.awaitingRel)
	}
	s.everConnected = true
	if s.subscribed {
		s.conns.add(c)
		return c, nil
	}
	sub := codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1}}
	for _, f := range s.rec.filters {
		sub.Subscribe.Subscriptions = append(sub.Subscribe.Subscriptions, codec.Subscription{Filter: []byte(f.pattern), QoS: f.qos})
	}
	if err := c.send(&sub, deadline); err != nil {
		c.close()
		return nil, err
	}
	for {
		pkt, err := c.read(deadline)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("waiting for SUBACK: %w", err)
		}
		if pkt.Type != codec.SUBACK {
			if err := s.handle(c, pkt, deadline); err != nil {
				c.close()
				return nil, err
			}
			continue
		}
		for i, f := range s.rec.filters {
			if i >= len(pkt.Suback.ReasonCodes) || pkt.Suback.ReasonCodes[i] != f.qos {
				c.close()
				return nil, fmt.Errorf("SUBACK %v for %v", pkt.Suback.ReasonCodes, s.rec.filters)
			}
		}
		s.subscribed = true
		s.conns.add(c)
		return c, nil
	}
}

// handle answers one packet the broker sent and records deliveries.
func (s *subscriber) handle(c *conn, pkt *codec.Packet, deadline time.Time) error {
	switch pkt.Type {
	case codec.PUBLISH:
		pub := &pkt.Publish
		topic, payload, id := string(pub.Topic), string(pub.Payload), pub.PacketID
		switch pub.QoS {
		case 0:
			s.tr.delivered(s.rec, topic, payload, 0, 0, false, true)
			return nil
		case 1:
			s.tr.delivered(s.rec, topic, payload, 1, id, pub.Dup, true)
			return c.ack(codec.PUBACK, id, codec.Success, deadline)
		}
		if prev, ok := s.awaitingRel[id]; ok {
			if prev != payload {
				s.tr.failf("%s: broker reused QoS 2 packet id %d for %q (dup=%v) before releasing it for %q",
					s.rec.name, id, payload, pub.Dup, prev)
			}
			s.tr.delivered(s.rec, topic, payload, 2, id, pub.Dup, false)
		} else {
			s.tr.delivered(s.rec, topic, payload, 2, id, pub.Dup, true)
			s.awaitingRel[id] = payload
		}
		return c.ack(codec.PUBREC, id, codec.Success, deadline)
	case codec.PUBREL:
		id, rc := pkt.Ack.PacketID, codec.Success
		if _, ok := s.awaitingRel[id]; !ok && s.version == codec.Version5 {
			rc = codec.PacketIdentifierNotFound
		}
		delete(s.awaitingRel, id)
		return c.ack(codec.PUBCOMP, id, rc, deadline)
	case codec.DISCONNECT:
		return fmt.Errorf("broker sent DISCONNECT %s", pkt.Disconnect.ReasonCode)
	}
	s.tr.failf("%s: unexpected %s from the broker", s.rec.name, pkt.Type)
	return nil
}

// drain connects and receives until the subscriber got every acknowledged
// message it is owed and drainGrace passed without a packet, or drainQuiet
// passed without one; then it disconnects. It returns an error when the
// connection broke or deadline passed first.
func (s *subscriber) drain(addr string, deadline time.Time) error {
	c, err := s.connect(addr, deadline)
	if err != nil {
		return err
	}
	defer s.conns.remove(c)
	last := time.Now()
	for {
		pkt, err := c.read(time.Now().Add(readTick))
		switch {
		case err == nil:
			last = time.Now()
			if err := s.handle(c, pkt, deadline); err != nil {
				c.close()
				return err
			}
			continue
		case !isTimeout(err):
			c.close()
			return err
		}
		quiet := time.Since(last)
		if quiet >= drainQuiet || (quiet >= drainGrace && s.tr.pendingCount(s.rec) == 0) {
			c.disconnect()
			return nil
		}
		if time.Now().After(deadline) {
			c.close()
			return fmt.Errorf("still receiving at the deadline, %d messages owed", s.tr.pendingCount(s.rec))
		}
	}
}

// listen stays connected, receiving, until the connection breaks.
func (s *subscriber) listen(c *conn, deadline time.Time) error {
	defer s.conns.remove(c)
	defer c.close()
	for {
		pkt, err := c.read(deadline)
		if err != nil {
			return err
		}
		if err := s.handle(c, pkt, deadline); err != nil {
			return err
		}
	}
}

// readRetained subscribes a new clean session at QoS 1 to every retained
// topic and returns topic → payload of the retained messages it gets: all
// want of them and a short silence, or whatever came before retainedQuiet.
func readRetained(addr string, version byte, want int, deadline time.Time) (map[string]string, error) {
	c, _, err := dial(addr, connectOpts{clientID: "crash-retained-check", version: version, clean: true}, deadline)
	if err != nil {
		return nil, err
	}
	defer c.close()
	sub := codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1,
		Subscriptions: []codec.Subscription{{Filter: []byte(retainedFilter), QoS: 1}}}}
	if err := c.send(&sub, deadline); err != nil {
		return nil, err
	}
	got := map[string]string{}
	last := time.Now()
	for {
		pkt, err := c.read(time.Now().Add(readTick))
		switch {
		case err == nil:
			last = time.Now()
			switch pkt.Type {
			case codec.SUBACK:
			case codec.PUBLISH:
				pub := &pkt.Publish
				if !pub.Retain {
					return nil, fmt.Errorf("non-retained PUBLISH on %s (%q) while no one publishes", pub.Topic, pub.Payload)
				}
				got[string(pub.Topic)] = string(pub.Payload)
				if pub.QoS > 0 {
					if err := c.ack(codec.PUBACK, pub.PacketID, codec.Success, deadline); err != nil {
						return nil, err
					}
				}
			default:
				return nil, fmt.Errorf("unexpected %s", pkt.Type)
			}
			continue
		case !isTimeout(err):
			return nil, err
		}
		quiet := time.Since(last)
		if quiet >= retainedQuiet || (quiet >= drainGrace && len(got) >= want) {
			c.disconnect()
			return got, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.New("retained messages still arriving at the deadline")
		}
	}
}
