package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// retainEvery makes every retainEvery-th topic's messages retained, so that
// the retained store holds a bounded set (topics ÷ retainEvery) that is
// rewritten all run long.
const retainEvery = 10

// topicName is topic i of the many-topics load: soak/t/<i÷100>/<i mod 100>,
// so that one + level matches a group of 100.
func topicName(i int) string { return fmt.Sprintf("soak/t/%d/%d", i/100, i%100) }

// topicGroups is how many groups of 100 n topics make.
func topicGroups(n int) int { return (n + 99) / 100 }

// topicFilter is the filter of wildcard subscriber j: all topics two ways,
// one group, or one member of every group.
func topicFilter(j, n int) string {
	switch j % 4 {
	case 0:
		return "soak/t/#"
	case 1:
		return fmt.Sprintf("soak/t/+/%d", j%100)
	case 2:
		return fmt.Sprintf("soak/t/%d/+", j%topicGroups(n))
	}
	return "soak/t/+/+"
}

// matches reports whether topic matches filter (no $ topics, no shared
// subscriptions: the soak uses neither).
func matches(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, level := range f {
		switch {
		case level == "#":
			return true
		case i >= len(t):
			return false
		case level != "+" && level != t[i]:
			return false
		}
	}
	return len(f) == len(t)
}

// topics is the many-topics load: QoS 0 publishers cycling over n distinct
// topics (every retainEvery-th retained) and subscribers on wildcards, each
// counting its deliveries against the messages its filter matched.
type topics struct {
	names [][]byte
	pubs  []*wire
	subs  []*topicSub
	sent  atomic.Int64
	errs  *errorLog
}

type topicSub struct {
	w        *wire
	filter   string
	match    []bool // by topic index
	expected atomic.Int64
	received atomic.Int64
	closing  atomic.Bool
	done     chan struct{}
}

func startTopics(ctx context.Context, d *dialer, n, pubs, subs int, errs *errorLog, ct *counters) (*topics, error) {
	tp := &topics{names: make([][]byte, n), errs: errs}
	for i := range tp.names {
		tp.names[i] = []byte(topicName(i))
	}
	for j := range subs {
		w, _, err := d.connect(ctx, session{clientID: fmt.Sprintf("soak-t-sub%d", j), version: codec.Version311, clean: true})
		if err != nil {
			tp.stop()
			return nil, fmt.Errorf("topics: %w", err)
		}
		s := &topicSub{w: w, filter: topicFilter(j, n), match: make([]bool, n), done: make(chan struct{})}
		for i, name := range tp.names {
			s.match[i] = matches(s.filter, string(name))
		}
		if err := w.subscribe(1, []codec.Subscription{{Filter: []byte(s.filter)}}, func(*codec.Packet) error { return nil }); err != nil {
			w.close()
			tp.stop()
			return nil, fmt.Errorf("topics: %w", err)
		}
		tp.subs = append(tp.subs, s)
		go s.read(j, errs, ct)
	}
	for p := range pubs {
		w, _, err := d.connect(ctx, session{clientID: fmt.Sprintf("soak-t-pub%d", p), version: codec.Version311, clean: true})
		if err != nil {
			tp.stop()
			return nil, fmt.Errorf("topics: %w", err)
		}
		tp.pubs = append(tp.pubs, w)
		// Nothing comes back to a QoS 0 publisher, but a read notices
		// the broker closing it.
		go func() {
			var p codec.Packet
			for w.next(&p) == nil {
			}
		}()
	}
	return tp, nil
}

func (s *topicSub) read(j int, errs *errorLog, ct *counters) {
	defer close(s.done)
	var p codec.Packet
	for {
		if err := s.w.next(&p); err != nil {
			if !s.closing.Load() {
				errs.add("topic subscriber", fmt.Errorf("soak-t-sub%d: %w", j, err))
			}
			return
		}
		if p.Type == codec.PUBLISH {
			s.received.Add(1)
			ct.topicRecv.Add(1)
		}
	}
}

// run publishes at rate messages per second in all, split over the
// publishers, until ctx is done. Publisher p publishes to topics p, p+P,
// p+2P, … in turn.
func (tp *topics) run(ctx context.Context, rate float64) {
	var wg sync.WaitGroup
	for p, w := range tp.pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := p
			pace(ctx, rate/float64(len(tp.pubs)), func(n int) bool {
				var out []byte
				for range n {
					pub := codec.Publish{Topic: tp.names[next], Retain: next%retainEvery == 0, Payload: newPayload(0, uint64(next))}
					out, _ = pub.Append(out, codec.Version311)
					for _, s := range tp.subs {
						if s.match[next] {
							s.expected.Add(1)
						}
					}
					if next += len(tp.pubs); next >= len(tp.names) {
						next = p
					}
				}
				_ = w.c.SetWriteDeadline(time.Now().Add(ioTimeout)) // a broker that stopped reading must fail the soak, not hang it
				if _, err := w.c.Write(out); err != nil {
					tp.errs.add("topic publisher", fmt.Errorf("soak-t-pub%d: %w", p, err))
					return false
				}
				tp.sent.Add(int64(n))
				return true
			})
		}()
	}
	wg.Wait()
}

// complete reports whether every subscriber has received what it expected.
func (tp *topics) complete() bool {
	for _, s := range tp.subs {
		if s.received.Load() < s.expected.Load() {
			return false
		}
	}
	return true
}

func (tp *topics) received() int64 {
	n := int64(0)
	for _, s := range tp.subs {
		n += s.received.Load()
	}
	return n
}

func (tp *topics) stop() {
	for _, w := range tp.pubs {
		w.close()
	}
	for _, s := range tp.subs {
		s.closing.Store(true)
		s.w.close()
		<-s.done
	}
}

// topicsResult counts the many-topics load. QoS 0 may be dropped, so a
// shortfall is reported, not failed.
type topicsResult struct {
	Topics      int      `json:"topics"`
	Retained    int      `json:"retained_topics"`
	Filters     []string `json:"filters"`
	Sent        int64    `json:"sent"`
	Expected    int64    `json:"expected"`
	Received    int64    `json:"received"`
	Subscribers int      `json:"subscribers"`
}

func (tp *topics) result() topicsResult {
	r := topicsResult{Topics: len(tp.names), Retained: (len(tp.names) + retainEvery - 1) / retainEvery,
		Sent: tp.sent.Load(), Subscribers: len(tp.subs)}
	for _, s := range tp.subs {
		r.Filters = append(r.Filters, s.filter)
		r.Expected += s.expected.Load()
		r.Received += s.received.Load()
	}
	return r
}
