package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/perf/loadgen"
)

const (
	// fanoutTopic is the one topic of the fan-out.
	fanoutTopic = "soak/fanout"
	// fanoutStream is the tag stream of the fan-out's messages, above any
	// tracked stream's.
	fanoutStream = 1 << 20
	// dialers is how many connections setup opens at once.
	dialers = 32
)

// fanout is one publisher at a fixed rate, QoS 1, to many clean-session
// subscribers of one topic: most subscribed at QoS 0 (counted), some at
// QoS 1, which must receive every message the broker acknowledged.
type fanout struct {
	pub  *tracker
	subs []*fanSub
}

// fanSub is one fan-out subscriber.
type fanSub struct {
	w        *wire
	qos      byte
	done     chan struct{}
	closing  atomic.Bool
	dropped  atomic.Bool  // the broker closed it during the run
	distinct atomic.Int64 // QoS 1: messages received at least once
	received int64        // deliveries; read after done
	tally    tally        // QoS 1 only; read after done
}

// startFanout connects n subscribers (the first qos1 of them at QoS 1) and
// then the publisher.
func startFanout(ctx context.Context, d *dialer, n, qos1 int, errs *errorLog, ct *counters) (*fanout, error) {
	f := &fanout{subs: make([]*fanSub, n)}
	err := loadgen.Parallel(ctx, n, dialers, func(ctx context.Context, i int) error {
		qos := byte(0)
		if i < qos1 {
			qos = 1
		}
		s, err := dialFanSub(ctx, d, i, qos, errs, ct)
		if err != nil {
			return err
		}
		f.subs[i] = s
		return nil
	})
	if err != nil {
		f.stop()
		return nil, fmt.Errorf("fan-out: %w", err)
	}
	w, _, err := d.connect(ctx, session{clientID: "soak-f-pub", version: codec.Version311, clean: true})
	if err != nil {
		f.stop()
		return nil, fmt.Errorf("fan-out publisher: %w", err)
	}
	f.pub = newTracker("soak-f-pub", w, fanoutStream, fanoutTopic, 1, 16, errs, nil)
	return f, nil
}

func dialFanSub(ctx context.Context, d *dialer, i int, qos byte, errs *errorLog, ct *counters) (*fanSub, error) {
	w, _, err := d.connect(ctx, session{clientID: fmt.Sprintf("soak-f%d", i), version: codec.Version311, clean: true})
	if err != nil {
		return nil, err
	}
	s := &fanSub{w: w, qos: qos, done: make(chan struct{})}
	if err := w.subscribe(1, []codec.Subscription{{Filter: []byte(fanoutTopic), QoS: qos}}, func(*codec.Packet) error { return nil }); err != nil {
		w.close()
		return nil, err
	}
	go s.read(i, errs, ct)
	return s, nil
}

func (s *fanSub) read(i int, errs *errorLog, ct *counters) {
	defer close(s.done)
	var p codec.Packet
	for {
		if err := s.w.next(&p); err != nil {
			if !s.closing.Load() {
				s.dropped.Store(true)
				errs.add("fan-out subscriber", fmt.Errorf("soak-f%d: %w", i, err))
			}
			return
		}
		if p.Type != codec.PUBLISH {
			continue
		}
		s.received++
		ct.fanoutRecv.Add(1)
		if s.qos == 0 {
			continue
		}
		stream, seq, ok := readTag(p.Publish.Payload)
		switch {
		case !ok || stream != fanoutStream || p.Publish.QoS != 1:
			s.tally.bogus++
		case s.tally.add(seq):
			s.distinct.Add(1)
		}
		if p.Publish.QoS == 1 {
			_ = s.w.ack(codec.PUBACK, p.Publish.PacketID)
		}
	}
}

// complete reports whether every live QoS 1 subscriber has received every
// message acknowledged so far.
func (f *fanout) complete() bool {
	want := f.pub.ackedCount()
	for _, s := range f.subs {
		if s.qos == 1 && !s.dropped.Load() && s.distinct.Load() < want {
			return false
		}
	}
	return true
}

// stop closes every connection and waits for the readers.
func (f *fanout) stop() {
	if f.pub != nil {
		f.pub.stop()
	}
	for _, s := range f.subs {
		if s != nil {
			s.closing.Store(true)
			s.w.close()
		}
	}
	for _, s := range f.subs {
		if s != nil {
			<-s.done
		}
	}
}

// fanoutResult is the accounting of the fan-out.
type fanoutResult struct {
	Subscribers int    `json:"subscribers"`
	QoS1Subs    int    `json:"qos1_subscribers"`
	Dropped     int    `json:"dropped"` // subscribers the broker disconnected; left out of the QoS 1 accounting
	Sent        uint64 `json:"sent"`
	InFlight    int64  `json:"in_flight"`
	// QoS1 sums the verdicts of the live QoS 1 subscribers.
	QoS1 verdict `json:"qos1"`
	// QoS0Received and QoS0Expected count the QoS 0 subscribers' deliveries
	// against sent × live QoS 0 subscribers: QoS 0 may be dropped, so a
	// shortfall is reported, not failed.
	QoS0Received int64 `json:"qos0_received"`
	QoS0Expected int64 `json:"qos0_expected"`
}

// result judges the fan-out. Call it after stop.
func (f *fanout) result() fanoutResult {
	sent, acked, _, inflight, _, _ := f.pub.result()
	r := fanoutResult{Subscribers: len(f.subs), Sent: sent, InFlight: inflight}
	for _, s := range f.subs {
		if s.qos == 1 {
			r.QoS1Subs++
		}
		if s.dropped.Load() {
			r.Dropped++
			continue
		}
		if s.qos == 1 {
			r.QoS1.addUp(judge(sent, acked, &s.tally))
		} else {
			r.QoS0Received += s.received
			r.QoS0Expected += int64(sent)
		}
	}
	return r
}

// waitFor polls done every 50 ms until it reports true or timeout passes,
// and returns its last answer.
func waitFor(timeout time.Duration, done func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			return done()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}
