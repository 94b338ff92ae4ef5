package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/mqttwire"
)

// options is one latency run.
type options struct {
	Addr      string
	BrokerPID int // for its CPU time; 0 skips it
	QoS       byte
	Rate      int           // messages per second
	Tick      time.Duration // the publisher writes what is due once per tick
	Duration  time.Duration // measured interval
	Warmup    time.Duration // before it, at the same rate
	Payload   int           // bytes, at least stampSize
	ClientID  string        // prefix of both clients' ids
}

// stampSize is the head of every payload: the send time in nanoseconds since
// the run's start (monotonic) and the sequence number, both big-endian.
const stampSize = 16

const (
	topic = "latency/t"
	// Once the publisher stops, the subscriber has drainMax to receive the
	// rest, or drainStall without anything arriving.
	drainMax   = 5 * time.Second
	drainStall = time.Second
)

// result is what one run measured. Latencies are in microseconds; they and
// the counts cover the messages stamped inside the measured interval.
type result struct {
	QoS       byte    `json:"qos"`
	Rate      int     `json:"rate"`
	Sent      int64   `json:"sent"`
	Received  int64   `json:"received"`
	Lost      int64   `json:"lost"`
	Dups      int64   `json:"dups"`
	SendRate  float64 `json:"send_rate"`
	P50       float64 `json:"p50_us"`
	P99       float64 `json:"p99_us"`
	P999      float64 `json:"p999_us"`
	Max       float64 `json:"max_us"`
	MaxBehind float64 `json:"publisher_max_behind_ms"` // the publisher's largest lag behind its schedule
	CPUPerMsg float64 `json:"cpu_us_per_msg"`
	DrainEnd  string  `json:"drain_end"` // complete, stalled or timeout
}

// measure connects a subscriber and a publisher to o.Addr and sends o.Rate
// messages per second for o.Warmup+o.Duration, each stamped with its send
// time; the subscriber records the latency of each that was stamped in the
// measured interval.
//
// The stamp is taken just before the write that carries it, and the
// messages due in one tick share it. A publisher that falls behind (a write
// blocked by a broker that does not read) sends the backlog at the next tick
// with a later stamp: that delay is not in the latencies but in MaxBehind.
func measure(ctx context.Context, o options) (result, error) {
	res := result{QoS: o.QoS, Rate: o.Rate}
	if o.Rate <= 0 || o.Tick <= 0 || o.Duration <= 0 || o.Payload < stampSize || o.QoS > 1 {
		return res, fmt.Errorf("latency: bad options %+v", o)
	}
	sub, err := mqttwire.Dial(ctx, o.Addr, o.ClientID+"-sub", 0, 1)
	if err != nil {
		return res, fmt.Errorf("subscriber: %w", err)
	}
	defer sub.Close()
	if err := mqttwire.Subscribe(sub, topic, o.QoS); err != nil {
		return res, fmt.Errorf("subscriber: %w", err)
	}
	pub, err := mqttwire.Dial(ctx, o.Addr, o.ClientID+"-pub", 0, 2)
	if err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	defer pub.Close()

	start := time.Now()
	from, to := o.Warmup, o.Warmup+o.Duration
	s := &subscriber{from: from, to: to, start: start}
	var wg sync.WaitGroup
	var subErr, ackErr error
	wg.Add(1)
	go func() { defer wg.Done(); subErr = s.read(sub) }()
	if o.QoS == 1 {
		wg.Add(1)
		// PUBACKs are read and dropped so that the broker's writes never
		// block; the run is open-loop.
		go func() { defer wg.Done(); ackErr = mqttwire.ReadLoop(pub, 4<<10, func(*codec.Packet) {}, nil) }()
	}

	var cpu [2]time.Duration
	cpuErr := make(chan error, 1)
	go func() { // the broker's CPU time at both ends of the measured interval
		for i, at := range []time.Duration{from, to} {
			select {
			case <-time.After(time.Until(start.Add(at))):
			case <-ctx.Done():
				cpuErr <- ctx.Err()
				return
			}
			var err error
			if cpu[i], err = loadgen.ProcCPU(o.BrokerPID); err != nil {
				cpuErr <- err
				return
			}
		}
		cpuErr <- nil
	}()

	p := publisher{o: o, start: start, from: from, to: to}
	pubErr := p.run(ctx, pub)
	if err := <-cpuErr; err != nil && pubErr == nil {
		pubErr = err
	}
	res.DrainEnd = s.drain(p.measured)
	_ = pub.Close()
	_ = sub.Close()
	wg.Wait()
	if pubErr != nil {
		return res, pubErr
	}
	if res.DrainEnd != "complete" && subErr != nil && !errors.Is(subErr, net.ErrClosed) {
		return res, fmt.Errorf("subscriber: %w", subErr)
	}
	if ackErr != nil && !errors.Is(ackErr, net.ErrClosed) {
		return res, fmt.Errorf("publisher: %w", ackErr)
	}

	res.Sent, res.Received, res.Dups = p.measured, s.received.Load(), s.dups
	res.Lost = res.Sent - res.Received
	res.SendRate = float64(res.Sent) / o.Duration.Seconds()
	res.MaxBehind = float64(p.maxBehind) / float64(time.Millisecond)
	if res.Received > 0 {
		res.CPUPerMsg = float64(cpu[1]-cpu[0]) / float64(time.Microsecond) / float64(res.Received)
	}
	lat := s.latencies
	slices.Sort(lat)
	res.P50, res.P99, res.P999 = quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 0.999)
	if len(lat) > 0 {
		res.Max = float64(lat[len(lat)-1]) / 1e3
	}
	return res, nil
}

// quantile returns the q-quantile of sorted nanoseconds, in microseconds:
// the smallest value with at least q of all at or below it.
func quantile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return float64(sorted[max(0, min(i, len(sorted)-1))]) / 1e3
}

// publisher sends at a fixed rate, paced by a ticker.
type publisher struct {
	o         options
	start     time.Time
	from, to  time.Duration
	measured  int64 // messages stamped in [from, to)
	maxBehind time.Duration
}

func (p *publisher) run(ctx context.Context, c net.Conn) error {
	pub := codec.Publish{QoS: p.o.QoS, Topic: []byte(topic), Payload: make([]byte, p.o.Payload)}
	if p.o.QoS > 0 {
		pub.PacketID = 1
	}
	tmpl, err := pub.Append(nil, codec.Version311)
	if err != nil {
		return err
	}
	payloadAt := len(tmpl) - p.o.Payload
	// A backlog is sent at most one second's worth per write.
	maxBatch := int64(p.o.Rate)
	buf := make([]byte, 0, 1024*len(tmpl))
	_ = c.SetWriteDeadline(p.start.Add(p.to + drainMax))
	t := time.NewTicker(p.o.Tick)
	defer t.Stop()
	var seq int64
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		now := time.Since(p.start)
		if now >= p.to {
			return nil
		}
		due := int64(now) * int64(p.o.Rate) / int64(time.Second)
		n := min(due-seq, maxBatch)
		if n <= 0 {
			continue
		}
		// How late the oldest message of this write is against its schedule.
		p.maxBehind = max(p.maxBehind, now-time.Duration(seq*int64(time.Second)/int64(p.o.Rate)))
		buf = buf[:0]
		stamp := time.Since(p.start)
		for range n {
			seq++
			buf = append(buf, tmpl...)
			m := buf[len(buf)-len(tmpl):]
			if p.o.QoS > 0 {
				id := uint16(seq%65535) + 1
				binary.BigEndian.PutUint16(m[payloadAt-2:], id)
			}
			binary.BigEndian.PutUint64(m[payloadAt:], uint64(stamp))
			binary.BigEndian.PutUint64(m[payloadAt+8:], uint64(seq))
		}
		if stamp >= p.from && stamp < p.to {
			p.measured += n
		}
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("publisher write: %w", err)
		}
	}
}

// subscriber records the latency of every message stamped in [from, to).
type subscriber struct {
	start    time.Time
	from, to time.Duration
	received atomic.Int64 // unique measured messages
	// Written by read only; read after it returned.
	latencies []int64
	seen      []bool // by sequence number
	dups      int64
}

func (s *subscriber) read(c net.Conn) error {
	var acks []byte
	return mqttwire.ReadLoop(c, 64<<10, func(p *codec.Packet) {
		if p.Type != codec.PUBLISH || len(p.Publish.Payload) < stampSize {
			return
		}
		now := time.Since(s.start)
		if p.Publish.QoS == 1 {
			id := p.Publish.PacketID
			acks = append(acks, byte(codec.PUBACK)<<4, 2, byte(id>>8), byte(id))
		}
		stamp := time.Duration(binary.BigEndian.Uint64(p.Publish.Payload))
		seq := int(binary.BigEndian.Uint64(p.Publish.Payload[8:]))
		if stamp < s.from || stamp >= s.to {
			return
		}
		if seq >= len(s.seen) {
			s.seen = append(s.seen, make([]bool, seq+1-len(s.seen)+4096)...)
		}
		if s.seen[seq] {
			s.dups++
			return
		}
		s.seen[seq] = true
		s.latencies = append(s.latencies, int64(now-stamp))
		s.received.Add(1)
	}, func() error {
		if len(acks) == 0 {
			return nil
		}
		_, err := c.Write(acks) // one write of PUBACKs per read
		acks = acks[:0]
		return err
	})
}

// drain waits for the subscriber to receive want measured messages and says
// how the wait ended.
func (s *subscriber) drain(want int64) string {
	deadline := time.Now().Add(drainMax)
	last, lastAt := s.received.Load(), time.Now()
	for {
		got := s.received.Load()
		switch {
		case got >= want:
			return "complete"
		case time.Now().After(deadline):
			return "timeout"
		case got != last:
			last, lastAt = got, time.Now()
		case time.Since(lastAt) > drainStall:
			return "stalled"
		}
		time.Sleep(10 * time.Millisecond)
	}
}
