package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// takeoverCloseTimeout bounds the wait for the broker to close the old
// connection after a takeover's CONNACK (MQTT-3.1.4-2).
const takeoverCloseTimeout = 5 * time.Second

// mode is what a tracked stream's subscriber does to its connection.
type mode int

const (
	// steady keeps one connection for the whole run.
	steady mode = iota
	// reconnect closes its connection now and then (DISCONNECT or an abrupt
	// close, alternately), stays away a moment and resumes its session.
	reconnect
	// takeover connects again with the same client id while the old
	// connection is open; the broker must close the old one and carry the
	// session over.
	takeover
	modes = 3
)

func (m mode) String() string { return [...]string{"steady", "reconnect", "takeover"}[m] }

// stream is one tracked publisher → subscriber stream: a clean-session
// publisher at QoS 1 or 2 on its own topic, and a persistent subscriber
// that must receive every message the broker acknowledged to the publisher
// (at QoS 2 exactly once), whatever happens to its connection.
type stream struct {
	id      uint32
	qos     byte
	mode    mode
	version byte
	topic   string
	subID   string
	pub     *tracker
	d       *dialer
	errs    *errorLog
	ct      *counters

	conn     link // the subscriber's current connection; only the subscriber loop changes it
	mu       sync.Mutex
	cur      *wire // the connection whose deliveries count; nil while the loop switches
	tally    tally
	pending2 map[uint16]bool // QoS 2 packet ids delivered and awaiting PUBREL: the client's session state

	// Counted by the subscriber loop alone.
	reconnects, takeovers, notClosed, sessionLost int64
	maxCloseWait                                  time.Duration
}

// link is a connection and its reader's end.
type link struct {
	w    *wire
	done chan struct{}
}

// sessionExpiry5 is the Session Expiry Interval of the tracked subscribers
// that speak 5.0: longer than any run.
const sessionExpiry5 = 24 * 3600

// newStream describes stream i: QoS alternates 1, 2; the mode cycles every
// two streams; the version flips every six, so that twelve streams cover
// every combination.
func newStream(i int, d *dialer, errs *errorLog, ct *counters) *stream {
	s := &stream{id: uint32(i), qos: byte(1 + i%2), mode: mode(i / 2 % modes), version: codec.Version311,
		topic: fmt.Sprintf("soak/s/%d", i), subID: fmt.Sprintf("soak-s%d-sub", i),
		d: d, errs: errs, ct: ct, pending2: map[uint16]bool{}}
	if i/(2*modes)%2 == 1 {
		s.version = codec.Version5
	}
	return s
}

func (s *stream) String() string {
	v := "3.1.1"
	if s.version == codec.Version5 {
		v = "5.0"
	}
	return fmt.Sprintf("stream %d (QoS %d, %s, %s)", s.id, s.qos, s.mode, v)
}

// start connects and subscribes the subscriber, then the publisher.
func (s *stream) start(ctx context.Context, window int) error {
	if err := s.dial(ctx, true); err != nil {
		return err
	}
	w, _, err := s.d.connect(ctx, session{clientID: fmt.Sprintf("soak-s%d-pub", s.id), version: s.version, clean: true})
	if err != nil {
		return fmt.Errorf("%v: publisher: %w", s, err)
	}
	s.pub = newTracker(fmt.Sprintf("soak-s%d-pub", s.id), w, s.id, s.topic, s.qos, window, s.errs, &s.ct.trackedAcked)
	return nil
}

// dial connects the subscriber (resuming its session unless first) and
// makes the new connection current.
func (s *stream) dial(ctx context.Context, first bool) error {
	ss := session{clientID: s.subID, version: s.version}
	if s.version == codec.Version5 {
		ss.expiry = sessionExpiry5
	}
	w, present, err := s.d.connect(ctx, ss)
	if err != nil {
		return fmt.Errorf("%v: subscriber: %w", s, err)
	}
	s.attach(w, present, first)
	if !present {
		if !first {
			s.sessionLost++
			s.errs.add("session lost", fmt.Errorf("%v: CONNACK session present 0 on resume", s))
		}
		err := w.subscribe(1, []codec.Subscription{{Filter: []byte(s.topic), QoS: s.qos}}, func(p *codec.Packet) error {
			s.deliver(w, p)
			return nil
		})
		if err != nil {
			w.close()
			return fmt.Errorf("%v: %w", s, err)
		}
	}
	s.conn = link{w: w, done: make(chan struct{})}
	go s.read(s.conn)
	return nil
}

// attach makes w the connection whose deliveries count. A resume that
// came back without the session (present false) drops the client's QoS 2
// state with it, as 5.0 says (MQTT-3.2.2-5).
func (s *stream) attach(w *wire, present, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = w
	if !present && !first {
		clear(s.pending2)
	}
}

// detach stops counting deliveries on the current connection: from now on
// its reader drops what it reads, unacknowledged, and the broker owes those
// messages to the next connection of the session.
func (s *stream) detach() link {
	s.mu.Lock()
	s.cur = nil
	s.mu.Unlock()
	return s.conn
}

// read reads l until it closes, handing each packet to deliver.
func (s *stream) read(l link) {
	defer close(l.done)
	var p codec.Packet
	for {
		if err := l.w.next(&p); err != nil {
			return
		}
		s.deliver(l.w, &p)
	}
}

// deliver accounts for one packet read on w and acknowledges it, unless w
// is no longer current.
func (s *stream) deliver(w *wire, p *codec.Packet) {
	s.mu.Lock()
	if s.cur != w {
		s.mu.Unlock()
		return
	}
	var ack codec.PacketType
	id := p.Publish.PacketID
	switch p.Type {
	case codec.PUBLISH:
		stream, seq, ok := readTag(p.Publish.Payload)
		valid := ok && stream == s.id && p.Publish.QoS == s.qos
		switch {
		case p.Publish.QoS == 2 && s.pending2[id]:
			// A resend of a message already delivered (our PUBREC was
			// lost): not a new delivery.
		case !valid:
			s.tally.bogus++
		default:
			s.tally.add(seq)
		}
		switch p.Publish.QoS {
		case 1:
			ack = codec.PUBACK
		case 2:
			s.pending2[id] = true
			ack = codec.PUBREC
		}
	case codec.PUBREL:
		id = p.Ack.PacketID
		delete(s.pending2, id)
		ack = codec.PUBCOMP
	}
	s.mu.Unlock()
	if ack != 0 {
		_ = w.ack(ack, id) // a failed write shows as the reader's next error
	}
}

// subscribe runs the subscriber's connection changes until load is done and
// leaves it connected. every is the mean time between changes.
func (s *stream) subscribe(load context.Context, every time.Duration, rng *rand.Rand) {
	for {
		var change <-chan time.Time
		var t *time.Timer
		if s.mode != steady {
			t = time.NewTimer(time.Duration((0.5 + rng.Float64()) * float64(every)))
			change = t.C
		}
		select {
		case <-load.Done():
			return
		case <-s.conn.done:
			// The broker closed a connection nobody replaced.
			s.errs.add("tracked subscriber", fmt.Errorf("%v: connection lost", s))
			s.detach()
			s.redial()
		case <-change:
			if s.mode == reconnect {
				s.reconnect(load, rng)
			} else {
				s.takeover()
			}
		}
		if t != nil {
			t.Stop()
		}
	}
}

// reconnect closes the connection (DISCONNECT or abruptly, at random), waits
// up to a second and resumes the session.
func (s *stream) reconnect(load context.Context, rng *rand.Rand) {
	old := s.detach()
	if rng.IntN(2) == 0 {
		old.w.disconnect() // the reader sees the broker close
	} else {
		old.w.close()
	}
	<-old.done
	old.w.close()
	sleepCtx(load, time.Duration(rng.Float64()*float64(time.Second)))
	s.reconnects++
	s.ct.reconnects.Add(1)
	s.redial()
}

// takeover connects again while the old connection is open, then checks
// that the broker closes the old one.
func (s *stream) takeover() {
	old := s.detach()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.dial(ctx, false); err != nil {
		s.errs.add("takeover", err)
		old.w.close()
		<-old.done
		s.redial()
		return
	}
	start := time.Now()
	select {
	case <-old.done:
		s.maxCloseWait = max(s.maxCloseWait, time.Since(start))
	case <-time.After(takeoverCloseTimeout):
		s.notClosed++
		s.errs.add("takeover", fmt.Errorf("%v: old connection still open %v after the new CONNACK", s, takeoverCloseTimeout))
		old.w.close()
		<-old.done
	}
	s.takeovers++
	s.ct.takeovers.Add(1)
}

// redial connects the subscriber again, retrying for a while: the run's
// accounting needs it back even when the load has stopped.
func (s *stream) redial() {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		err := s.dial(ctx, false)
		cancel()
		if err == nil {
			return
		}
		s.errs.add("tracked subscriber", err)
		if attempt == 5 {
			// Left detached; a nil done blocks the loop's select rather
			// than spinning on a closed one. What the broker owed this
			// subscriber shows as lost.
			s.conn = link{w: s.conn.w}
			return
		}
		time.Sleep(time.Second)
	}
}

// missing returns how many acknowledged messages the subscriber has not
// received yet.
func (s *stream) missing() int64 {
	s.pub.mu.Lock()
	defer s.pub.mu.Unlock()
	sent, acked := s.pub.sent, s.pub.acked
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(0)
	for seq := range sent {
		if acked.has(seq) && !s.tally.delivered(seq) {
			n++
		}
	}
	return n
}

// stop closes both connections and waits for their readers.
func (s *stream) stop() {
	if s.pub != nil {
		s.pub.stop()
	}
	l := s.detach()
	if l.w != nil {
		l.w.close()
	}
	if l.done != nil {
		<-l.done
	}
}

// streamResult is the accounting of one tracked stream.
type streamResult struct {
	Stream      uint32 `json:"stream"`
	QoS         byte   `json:"qos"`
	Mode        string `json:"mode"`
	Version     byte   `json:"version"`
	Sent        uint64 `json:"sent"`
	InFlight    int64  `json:"in_flight"` // sent and never acknowledged, at the end
	Refused     int64  `json:"refused"`
	StrayAcks   int64  `json:"stray_acks"`
	Reconnects  int64  `json:"reconnects"`
	Takeovers   int64  `json:"takeovers"`
	NotClosed   int64  `json:"takeover_not_closed"`
	SessionLost int64  `json:"session_lost"`
	// MaxCloseMS is the longest a takeover's old connection stayed open
	// after the new CONNACK.
	MaxCloseMS float64 `json:"max_takeover_close_ms"`
	verdict
}

// result judges the stream. Call it after stop.
func (s *stream) result() streamResult {
	sent, acked, _, inflight, refused, stray := s.pub.result()
	return streamResult{Stream: s.id, QoS: s.qos, Mode: s.mode.String(), Version: s.version,
		Sent: sent, InFlight: inflight, Refused: refused, StrayAcks: stray,
		Reconnects: s.reconnects, Takeovers: s.takeovers, NotClosed: s.notClosed, SessionLost: s.sessionLost,
		MaxCloseMS: float64(s.maxCloseWait) / float64(time.Millisecond),
		verdict:    judge(sent, acked, &s.tally)}
}
