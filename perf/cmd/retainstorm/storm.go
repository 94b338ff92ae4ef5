package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/mqttwire"
)

// options is one retained-storm run against a running broker.
type options struct {
	Addr      string
	BrokerPID int // for its CPU time and RSS
	Retained  int // retained messages, each on a topic of its own
	Payload   int // bytes per message
	QoS       byte
	SubQoS    byte
	Sources   int           // source addresses 127.0.0.1 .. 127.0.0.Sources
	Timeout   time.Duration // bounds the populate, and the delivery
	// Stall ends the delivery early once nothing new arrived for this long
	// after the first message, so that a broker that dropped part of the
	// storm does not cost a whole Timeout; 0 leaves it to Timeout.
	Stall    time.Duration
	ClientID string // prefix of the clients' ids
}

const (
	// publishers populate the broker, each with window/publishers QoS 1
	// PUBLISHes unacknowledged at most.
	publishers = 4
	window     = 256
	// qos0Batch is how many QoS 0 PUBLISHes a publisher writes at once.
	qos0Batch = 256
	// perLevel is the fan-out of the topic tree: storm/<i/perLevel>/<i%perLevel>.
	perLevel = 1000

	// The broker counts as quiescent once it used at most quietCPU over
	// quietFor; the wait gives up after quiesceMax (a store still compacting)
	// and the run goes on, saying so.
	quietFor   = 500 * time.Millisecond
	quietCPU   = 20 * time.Millisecond
	quiesceMax = 30 * time.Second
)

// result is what one run measured. The tagged fields are the JSON line's
// (another suite parses them: keep names and meaning); the others are
// diagnostics, printed on stderr.
type result struct {
	Retained     int     `json:"retained"`
	Received     int64   `json:"received"`   // PUBLISHes the subscriber read, duplicates included
	Lost         int64   `json:"lost"`       // Retained − distinct topics received
	Duplicates   int64   `json:"duplicates"` // PUBLISHes on a topic received before
	PublishSecs  float64 `json:"publish_s"`
	DeliverySecs float64 `json:"delivery_s"` // SUBSCRIBE written → last distinct topic received
	Rate         float64 `json:"rate"`       // distinct topics received / DeliverySecs
	CPUPerMsg    float64 `json:"cpu_us_per_msg"`
	RSS          int64   `json:"rss_bytes"` // before the SUBSCRIBE, once quiescent
	RSSAfter     int64   `json:"rss_after_bytes"`

	End         string  `json:"-"` // complete, stalled, timeout, or closed by the broker
	FirstSecs   float64 `json:"-"` // SUBSCRIBE written → first retained message
	NotRetained int64   `json:"-"` // PUBLISHes with RETAIN 0 (MQTT-3.3.1-8 wants 1)
	Unexpected  int64   `json:"-"` // PUBLISHes on a topic populate did not write
	QuiesceSecs float64 `json:"-"`
	Quiesced    bool    `json:"-"` // false: the wait gave up after quiesceMax
	// IdleCPUShare is the broker's CPU time over the last quietFor of the
	// wait, as a share of one CPU.
	IdleCPUShare float64 `json:"-"`
}

// measure populates the broker at o.Addr with o.Retained retained messages,
// waits for it to quiesce, then subscribes one client to # and measures
// the delivery of the storm.
func measure(ctx context.Context, o options) (result, error) {
	res := result{Retained: o.Retained}
	if o.Retained < 1 || o.Payload < 0 || o.QoS > 1 || o.SubQoS > 1 || o.Sources < 1 || o.Sources > 254 || o.Timeout <= 0 {
		return res, fmt.Errorf("retainstorm: bad options %+v", o)
	}
	start := time.Now()
	if err := populate(ctx, o); err != nil {
		return res, fmt.Errorf("populate: %w", err)
	}
	res.PublishSecs = time.Since(start).Seconds()

	waited, ok, used, err := quiesce(ctx, o.BrokerPID)
	if err != nil {
		return res, err
	}
	res.QuiesceSecs, res.Quiesced, res.IdleCPUShare = waited.Seconds(), ok, float64(used)/float64(quietFor)
	if res.RSS, err = loadgen.ProcRSS(o.BrokerPID); err != nil {
		return res, err
	}
	return res, deliver(ctx, o, &res)
}

// populate publishes the retained messages from publishers clients, each a
// contiguous share of the topics, and returns once the broker has handled
// them all: each client has its PUBACKs (at QoS 1) and the PINGRESP to a
// PINGREQ sent after its last PUBLISH, which a broker answers only once it
// has read what came before (at QoS 0).
func populate(ctx context.Context, o options) error {
	errs := make([]error, publishers)
	var wg sync.WaitGroup
	for k := range publishers {
		from, to := k*o.Retained/publishers, (k+1)*o.Retained/publishers
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := publishRange(ctx, o, k, from, to); err != nil {
				errs[k] = fmt.Errorf("publisher %d: %w", k, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// errAllAnswered ends a publisher's read loop.
var errAllAnswered = errors.New("all answered")

// publishRange publishes messages [from, to) from one client, k.
func publishRange(ctx context.Context, o options, k, from, to int) error {
	c, err := mqttwire.Dial(ctx, o.Addr, fmt.Sprintf("%s-pub%d", o.ClientID, k), 0, 1+k%o.Sources)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(o.Timeout))
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()

	// Credits are the free places of the QoS 1 window; the reader returns
	// one per PUBACK.
	perConn := window / publishers
	credit := make(chan struct{}, perConn)
	for range perConn {
		credit <- struct{}{}
	}
	want := 0
	if o.QoS == 1 {
		want = to - from
	}
	readDone := make(chan error, 1)
	go func() {
		acks, pong := 0, false
		var bad error
		err := mqttwire.ReadLoop(c, 4<<10, func(p *codec.Packet) {
			switch p.Type {
			case codec.PUBACK:
				acks++
				select {
				case credit <- struct{}{}:
				default: // more PUBACKs than PUBLISHes in flight
					bad = errors.New("PUBACK for no PUBLISH in flight")
				}
			case codec.PINGRESP:
				pong = true
			default:
				bad = fmt.Errorf("unexpected %v", p.Type)
			}
		}, func() error {
			switch {
			case bad != nil:
				return bad
			case pong && acks == want:
				return errAllAnswered
			}
			return nil
		})
		readDone <- err
	}()

	payload := bytes.Repeat([]byte{'r'}, o.Payload)
	pub := codec.Publish{QoS: o.QoS, Retain: true, Payload: payload}
	var topic []byte
	var buf []byte
	for i := from; i < to; {
		n := min(qos0Batch, to-i)
		if o.QoS == 1 {
			if n, err = takeCredits(credit, to-i, readDone); err != nil {
				return err
			}
		}
		buf = buf[:0]
		for j := i; j < i+n; j++ {
			topic = appendTopic(topic[:0], j)
			pub.Topic = topic
			if o.QoS == 1 {
				pub.PacketID = uint16((j-from)%65535 + 1) // unique within the window
			}
			if buf, err = pub.Append(buf, codec.Version311); err != nil {
				return err
			}
		}
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		i += n
	}
	if _, err := c.Write(codec.AppendPingreq(nil)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := <-readDone; !errors.Is(err, errAllAnswered) {
		return fmt.Errorf("read: %w", err)
	}
	_, _ = c.Write([]byte{byte(codec.DISCONNECT) << 4, 0})
	return nil
}

// takeCredits waits for at least one free place in the window and takes
// every other one free now, up to limit; it returns how many it took.
func takeCredits(credit chan struct{}, limit int, readDone chan error) (int, error) {
	select {
	case <-credit:
	case err := <-readDone:
		return 0, fmt.Errorf("read: %w", err)
	}
	n := 1
	for n < limit {
		select {
		case <-credit:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// quiesce waits until the broker has used at most quietCPU over quietFor,
// for at most quiesceMax, and returns how long it waited, whether the broker
// went quiet, and the CPU it used over the last quietFor.
func quiesce(ctx context.Context, pid int) (time.Duration, bool, time.Duration, error) {
	start := time.Now()
	prev, err := loadgen.ProcCPU(pid)
	if err != nil {
		return 0, false, 0, err
	}
	for {
		select {
		case <-ctx.Done():
			return time.Since(start), false, 0, ctx.Err()
		case <-time.After(quietFor):
		}
		cur, err := loadgen.ProcCPU(pid)
		if err != nil {
			return 0, false, 0, err
		}
		used := cur - prev
		if used <= quietCPU {
			return time.Since(start), true, used, nil
		}
		if time.Since(start) >= quiesceMax {
			return time.Since(start), false, used, nil
		}
		prev = cur
	}
}

// deliver connects the subscriber, subscribes it to # and reads the storm
// until every topic arrived, o.Timeout passed, nothing new came for
// o.Stall after the first message, or the broker closed the connection.
func deliver(ctx context.Context, o options, res *result) error {
	c, err := mqttwire.Dial(ctx, o.Addr, o.ClientID+"-sub", 0, 1+publishers%o.Sources)
	if err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	defer c.Close()
	p := &codec.Packet{Type: codec.SUBSCRIBE}
	p.Subscribe = codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: []byte("#"), QoS: o.SubQoS}}}
	sub, err := p.Append(nil, codec.Version311)
	if err != nil {
		return err
	}

	s := &storm{want: o.SubQoS, seen: make([]bool, o.Retained), done: make(chan struct{})}
	cpu0, err := loadgen.ProcCPU(o.BrokerPID)
	if err != nil {
		return err
	}
	s.start = time.Now()
	if _, err := c.Write(sub); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	readDone := make(chan struct{})
	var readErr error
	go func() {
		defer close(readDone)
		readErr = s.read(c)
	}()

	// cpu1 is read within a tick of the last new topic, so that the wait
	// for a stall (the broker idle, or busy with its own housekeeping) is
	// not charged to the delivery.
	cpu1, progress := cpu0, int64(0)
	timeout := time.NewTimer(o.Timeout)
	defer timeout.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for res.End == "" {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			res.End = "complete"
			if cpu1, err = loadgen.ProcCPU(o.BrokerPID); err != nil {
				return err
			}
		case <-readDone:
			res.End = "closed by the broker"
		case <-timeout.C:
			res.End = "timeout"
		case <-tick.C:
			last := s.lastNs.Load()
			if last != progress {
				progress = last
				if cpu1, err = loadgen.ProcCPU(o.BrokerPID); err != nil {
					return err
				}
			}
			// Before the first message only Timeout applies: a broker may
			// take seconds to collect the matches of # before it sends any.
			if o.Stall > 0 && last > 0 && time.Since(s.start) > time.Duration(last)+o.Stall {
				res.End = "stalled"
			}
		}
	}
	// Read while the subscriber is still connected: what the broker holds
	// for it counts.
	if res.RSSAfter, err = loadgen.ProcRSS(o.BrokerPID); err != nil {
		return err
	}
	_ = c.Close()
	<-readDone
	if s.subackErr != nil {
		return s.subackErr
	}
	if !s.subacked && res.End != "complete" {
		return fmt.Errorf("subscriber: no SUBACK (%s)", res.End)
	}
	if readErr != nil && !errors.Is(readErr, net.ErrClosed) && res.End != "closed by the broker" {
		return fmt.Errorf("subscriber: %w", readErr)
	}
	if res.End == "closed by the broker" {
		res.End += fmt.Sprintf(" (%v)", readErr)
	}

	res.Received, res.Duplicates = s.received, s.dups
	res.NotRetained, res.Unexpected = s.notRetained, s.unexpected
	res.Lost = int64(o.Retained) - s.distinct
	if s.distinct > 0 {
		res.FirstSecs = s.first.Seconds()
		res.DeliverySecs = s.last.Seconds()
		res.Rate = float64(s.distinct) / res.DeliverySecs
	}
	if res.Received > 0 {
		res.CPUPerMsg = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(res.Received)
	}
	return nil
}

// storm is the subscriber's view of the delivery. The plain fields are
// written only by read and read by others after it returned.
type storm struct {
	want  byte // the QoS the SUBACK must grant
	start time.Time
	seen  []bool        // by topic index
	done  chan struct{} // closed once every topic arrived

	lastNs atomic.Int64 // time.Duration since start of the last new topic, for the stall check

	received, dups, distinct int64
	notRetained, unexpected  int64
	first, last              time.Duration // since start: first message, last new topic
	subacked                 bool
	subackErr                error
}

// read reads the storm from c until c fails or is closed, with one write
// of PUBACKs for the QoS 1 messages of each read.
func (s *storm) read(c net.Conn) error {
	var acks []byte
	newTopic := false
	return mqttwire.ReadLoop(c, 256<<10, func(p *codec.Packet) {
		switch p.Type {
		case codec.SUBACK:
			if len(p.Suback.ReasonCodes) != 1 || p.Suback.ReasonCodes[0] != s.want {
				s.subackErr = fmt.Errorf("SUBACK to # at QoS %d: % x", s.want, p.Suback.ReasonCodes)
				_ = c.Close()
			}
			s.subacked = true
			return
		case codec.PUBLISH:
		default:
			return
		}
		now := time.Since(s.start)
		if s.received == 0 {
			s.first = now
		}
		s.received++
		if p.Publish.QoS == 1 {
			id := p.Publish.PacketID
			acks = append(acks, byte(codec.PUBACK)<<4, 2, byte(id>>8), byte(id))
		}
		if !p.Publish.Retain {
			s.notRetained++
		}
		i := topicIndex(p.Publish.Topic)
		switch {
		case i < 0 || i >= len(s.seen):
			s.unexpected++
			return
		case s.seen[i]:
			s.dups++
			return
		}
		s.seen[i] = true
		s.distinct++
		s.last = now
		newTopic = true
		if s.distinct == int64(len(s.seen)) {
			close(s.done)
		}
	}, func() error {
		if newTopic {
			s.lastNs.Store(int64(s.last))
			newTopic = false
		}
		if len(acks) == 0 {
			return nil
		}
		_, err := c.Write(acks) // one write of PUBACKs per read
		acks = acks[:0]
		return err
	})
}

// appendTopic appends the topic of retained message i to dst.
func appendTopic(dst []byte, i int) []byte {
	dst = append(dst, "storm/"...)
	dst = strconv.AppendInt(dst, int64(i/perLevel), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, int64(i%perLevel), 10)
}

// topicIndex returns i for the topic appendTopic writes for i, and -1 for
// any other, so that a mangled topic never counts as one of the storm's.
func topicIndex(t []byte) int {
	rest, ok := bytes.CutPrefix(t, []byte("storm/"))
	if !ok {
		return -1
	}
	hi, lo, ok := bytes.Cut(rest, []byte("/"))
	a, b := atoi(hi), atoi(lo)
	if !ok || a < 0 || b < 0 || b >= perLevel {
		return -1
	}
	return a*perLevel + b
}

// atoi parses a decimal without sign or leading zeros, of at most 9 digits;
// -1 for anything else.
func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 9 || len(b) > 1 && b[0] == '0' {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
