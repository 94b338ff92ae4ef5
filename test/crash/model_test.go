package crash

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// msg is one application message a publisher sent, identified by its unique
// payload.
type msg struct {
	payload string
	topic   string
	qos     byte
	retain  bool
	probe   bool // published after a restart to check the subscriptions survived

	sentCycle int
	resends   int  // PUBLISH (DUP) or PUBREL sent again on a new connection
	acked     bool // PUBACK (QoS 1) or PUBCOMP (QoS 2) received
	ackCycle  int
	retIdx    int // position among the messages sent to its retained topic
}

func (m *msg) String() string {
	s := fmt.Sprintf("%s (q%d %s, sent cycle %d", m.payload, m.qos, m.topic, m.sentCycle)
	if m.retain {
		s += ", retained"
	}
	if m.resends > 0 {
		s += fmt.Sprintf(", resent %dx", m.resends)
	}
	if m.acked {
		s += fmt.Sprintf(", acked cycle %d", m.ackCycle)
	}
	return s + ")"
}

// filter is one subscription of a persistent subscriber.
type filter struct {
	pattern string
	qos     byte
}

// matches reports whether topic matches the MQTT topic filter (4.7).
func matches(pattern, topic string) bool {
	fp, tp := strings.Split(pattern, "/"), strings.Split(topic, "/")
	for i, f := range fp {
		if f == "#" {
			return true
		}
		if i >= len(tp) || (f != "+" && f != tp[i]) {
			return false
		}
	}
	return len(fp) == len(tp)
}

// subRecord is what one persistent subscriber was owed and got, over the
// whole test.
type subRecord struct {
	name    string
	filters []filter
	got     map[string]int  // payload → deliveries counted (QoS 2: fresh packet ids only)
	q2      map[string]int  // payload → deliveries at QoS 2 with a fresh packet id
	pending map[string]*msg // acknowledged, matching, not delivered yet

	// Per-cycle counts, reset by cycleStats.
	delivered, redelivered, q2Resent int
}

// wantQoS is the QoS at which m must reach the subscriber: the largest of
// min(published QoS, subscription QoS) over its matching filters, or -1 when
// none matches. The subscribers' filters never overlap, so each message
// matches at most one of them.
func (s *subRecord) wantQoS(m *msg) int {
	want := -1
	for _, f := range s.filters {
		if matches(f.pattern, m.topic) {
			want = max(want, int(min(m.qos, f.qos)))
		}
	}
	return want
}

// retainedTopic is the history of one retained topic. Its publisher has at
// most one message in flight on it at a time, resent until acknowledged, so
// the broker sees the messages in msgs order and must keep the last
// acknowledged one or a later one.
type retainedTopic struct {
	msgs     []*msg
	maxAcked int // index in msgs of the last acknowledged message, -1 when none
}

// tracker is the oracle: every message sent and acknowledged, every delivery,
// and the failures found. Publishers and subscribers call it from their own
// goroutines.
type tracker struct {
	mu       sync.Mutex
	cycle    int
	msgs     map[string]*msg
	subs     []*subRecord
	retained map[string]*retainedTopic
	fails    []string
	reported int
}

func newTracker() *tracker {
	return &tracker{msgs: map[string]*msg{}, retained: map[string]*retainedTopic{}}
}

func (tr *tracker) addSub(name string, filters []filter) *subRecord {
	s := &subRecord{name: name, filters: filters, got: map[string]int{}, q2: map[string]int{}, pending: map[string]*msg{}}
	tr.mu.Lock()
	tr.subs = append(tr.subs, s)
	tr.mu.Unlock()
	return s
}

func (tr *tracker) setCycle(c int) {
	tr.mu.Lock()
	tr.cycle = c
	tr.mu.Unlock()
}

func (tr *tracker) failf(format string, args ...any) {
	tr.mu.Lock()
	tr.failLocked(format, args...)
	tr.mu.Unlock()
}

func (tr *tracker) failLocked(format string, args ...any) {
	tr.fails = append(tr.fails, fmt.Sprintf("cycle %d: ", tr.cycle)+fmt.Sprintf(format, args...))
}

// newFailures returns the failures recorded since the last call.
func (tr *tracker) newFailures() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	f := tr.fails[tr.reported:]
	tr.reported = len(tr.fails)
	return f
}

// sent registers m before its first PUBLISH is written.
func (tr *tracker) sent(m *msg) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m.sentCycle = tr.cycle
	if _, dup := tr.msgs[m.payload]; dup {
		panic("BUG: payload sent twice: " + m.payload)
	}
	tr.msgs[m.payload] = m
	if m.retain {
		rt := tr.retained[m.topic]
		if rt == nil {
			rt = &retainedTopic{maxAcked: -1}
			tr.retained[m.topic] = rt
		}
		m.retIdx = len(rt.msgs)
		rt.msgs = append(rt.msgs, m)
	}
}

// resent records that m's PUBLISH or PUBREL is sent again after a reconnect.
func (tr *tracker) resent(m *msg) {
	tr.mu.Lock()
	m.resends++
	tr.mu.Unlock()
}

// acked records that the broker acknowledged m: from now on every matching
// subscriber is owed it.
func (tr *tracker) acked(m *msg) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if m.acked {
		return
	}
	m.acked, m.ackCycle = true, tr.cycle
	for _, s := range tr.subs {
		if s.wantQoS(m) > 0 && s.got[m.payload] == 0 {
			s.pending[m.payload] = m
		}
	}
	if m.retain {
		rt := tr.retained[m.topic]
		rt.maxAcked = max(rt.maxAcked, m.retIdx)
	}
}

// delivered records a PUBLISH that reached subscriber s. fresh is false for
// a QoS 2 PUBLISH whose packet id s had already answered with PUBREC and not
// yet seen released: the resend of a delivery already counted (4.3.3).
func (tr *tracker) delivered(s *subRecord, topic, payload string, qos byte, id uint16, dup, fresh bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !fresh {
		s.q2Resent++
		return
	}
	m := tr.msgs[payload]
	switch {
	case m == nil:
		tr.failLocked("%s: received %q on %s (q%d), which no publisher sent", s.name, payload, topic, qos)
		return
	case m.topic != topic:
		tr.failLocked("%s: received %s on topic %s", s.name, m, topic)
	}
	switch want := s.wantQoS(m); {
	case want < 0:
		tr.failLocked("%s: received %s, which matches none of its subscriptions %v", s.name, m, s.filters)
	case int(qos) != want:
		// MQTT-3.8.4-8 (3.1.1: 3.8.4): min(published QoS, granted QoS).
		tr.failLocked("%s: received %s at QoS %d, want QoS %d (subscription QoS lost?)", s.name, m, qos, want)
	}
	if qos == 2 {
		s.q2[payload]++
		if n := s.q2[payload]; n > 1 {
			tr.failLocked("%s: QoS 2 message %s delivered %d times (this time packet id %d, dup=%v)",
				s.name, m, n, id, dup)
		}
	}
	if s.got[payload] > 0 {
		s.redelivered++
	}
	s.got[payload]++
	s.delivered++
	delete(s.pending, payload)
}

// pendingCount returns how many acknowledged messages s is still owed.
func (tr *tracker) pendingCount(s *subRecord) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(s.pending)
}

// checkDelivered fails for every acknowledged message a subscriber has not
// received after draining, and forgets them so that each is reported once.
func (tr *tracker) checkDelivered() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, s := range tr.subs {
		if len(s.pending) == 0 {
			continue
		}
		ms := make([]*msg, 0, len(s.pending))
		probes := 0
		for _, m := range s.pending {
			ms = append(ms, m)
			if m.probe {
				probes++
			}
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].payload < ms[j].payload })
		var b strings.Builder
		for i, m := range ms {
			if i == 20 {
				fmt.Fprintf(&b, " ... and %d more", len(ms)-i)
				break
			}
			b.WriteString("\n\t\t" + m.String())
		}
		what := ""
		if probes > 0 {
			what = fmt.Sprintf(" (%d of them probes published after the restart: subscription lost?)", probes)
		}
		tr.failLocked("%s %v: %d acknowledged messages never delivered%s:%s", s.name, s.filters, len(ms), what, b.String())
		clear(s.pending)
	}
}

// checkRetained compares the retained messages a fresh subscriber got
// (topic → payload) with what was acknowledged.
func (tr *tracker) checkRetained(got map[string]string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	topics := make([]string, 0, len(tr.retained))
	for topic := range tr.retained {
		topics = append(topics, topic)
	}
	sort.Strings(topics)
	var bad []string
	for _, topic := range topics {
		rt := tr.retained[topic]
		p, ok := got[topic]
		delete(got, topic)
		var lastAcked *msg
		if rt.maxAcked >= 0 {
			lastAcked = rt.msgs[rt.maxAcked]
		}
		if !ok {
			if lastAcked != nil {
				bad = append(bad, fmt.Sprintf("%s lost: last acknowledged %s", topic, lastAcked))
			}
			continue
		}
		m := tr.msgs[p]
		switch {
		case m == nil || m.topic != topic || !m.retain:
			bad = append(bad, fmt.Sprintf("%s holds %q, which was not sent retained to that topic", topic, p))
		case lastAcked != nil && m.retIdx < rt.maxAcked:
			bad = append(bad, fmt.Sprintf("%s holds the stale %s; %s was acknowledged after it", topic, m, lastAcked))
		}
	}
	for topic, p := range got {
		bad = append(bad, fmt.Sprintf("%s holds %q, but no publisher retained anything there", topic, p))
	}
	if len(bad) > 0 {
		tr.failLocked("retained messages wrong on %d of %d topics:\n\t\t%s", len(bad), len(topics), strings.Join(bad, "\n\t\t"))
	}
}

// retainedTopics returns how many retained topics have an acknowledged
// message, which a fresh subscriber must all receive.
func (tr *tracker) retainedTopics() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, rt := range tr.retained {
		if rt.maxAcked >= 0 {
			n++
		}
	}
	return n
}

// cycleStats returns and resets the per-cycle delivery counts.
func (tr *tracker) cycleStats() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var b strings.Builder
	for _, s := range tr.subs {
		fmt.Fprintf(&b, " %s=%d", s.name, s.delivered)
		if s.redelivered > 0 || s.q2Resent > 0 {
			fmt.Fprintf(&b, "(+%d again, %d q2 resends)", s.redelivered, s.q2Resent)
		}
		s.delivered, s.redelivered, s.q2Resent = 0, 0, 0
	}
	return b.String()
}
