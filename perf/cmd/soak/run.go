package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/peers"
)

// config is one soak run. main fills it from the flags; every field's
// default is the flag's.
type config struct {
	Broker       string        `json:"broker"`
	Duration     time.Duration `json:"duration_ns"`
	Sample       time.Duration `json:"sample_ns"`
	Warmup       time.Duration `json:"warmup_ns"`
	Drain        time.Duration `json:"drain_ns"`
	SourceAddrs  int           `json:"source_addrs"`
	ChurnWorkers int           `json:"churn_workers"`
	ChurnRate    float64       `json:"churn_rate"`
	ChurnIDs     int           `json:"churn_ids"`
	Topics       int           `json:"topics"`
	TopicPubs    int           `json:"topic_publishers"`
	TopicSubs    int           `json:"topic_subscribers"`
	TopicRate    float64       `json:"topic_rate"`
	FanoutSubs   int           `json:"fanout_subscribers"`
	FanoutQoS1   int           `json:"fanout_qos1"`
	FanoutRate   float64       `json:"fanout_rate"`
	Streams      int           `json:"streams"`
	StreamRate   float64       `json:"stream_rate"`
	StreamWindow int           `json:"stream_window"`
	Change       time.Duration `json:"change_every_ns"`
	TrendPct     float64       `json:"trend_pct"`
	Seed         uint64        `json:"seed"`
	BrokerArgs   []string      `json:"broker_args,omitempty"`
	// Progress receives a line per sample; nil discards them.
	Progress io.Writer `json:"-"`
}

func (c *config) validate() error {
	switch {
	case c.Duration <= 0 || c.Sample <= 0 || c.Warmup < 0 || c.Drain <= 0 || c.Change <= 0:
		return errors.New("-duration, -sample, -drain and -change-every must be positive, -warmup not negative")
	case c.SourceAddrs < 1 || c.SourceAddrs > 254:
		return errors.New("-source-addrs must be 1..254")
	case c.ChurnWorkers < 0 || c.ChurnIDs < c.ChurnWorkers || c.Topics < 1 || c.TopicPubs < 0 || c.TopicSubs < 0:
		return errors.New("bad churn or topics knobs (-churn-ids must be at least -churn-workers, -topics at least 1)")
	case c.FanoutSubs < 0 || c.FanoutQoS1 < 0 || c.FanoutQoS1 > c.FanoutSubs || c.Streams < 0:
		return errors.New("bad fan-out or stream knobs (-fanout-qos1 at most -fanout-subs)")
	case c.StreamWindow < 1 || c.StreamWindow > 1000:
		return errors.New("-stream-window must be 1..1000")
	case c.ChurnWorkers > 0 && c.ChurnRate <= 0, c.Streams > 0 && c.StreamRate <= 0:
		return errors.New("-churn-rate and -stream-rate must be positive")
	}
	return nil
}

// longLived is how many client connections stay open all run: the fan-out,
// the topics, the tracked streams' publishers and subscribers, and the will
// watcher.
func (c *config) longLived() int {
	return c.FanoutSubs + 1 + c.TopicPubs + c.TopicSubs + 2*c.Streams + 1
}

// connections is how many client connections the run holds at most: each
// costs a descriptor here and one in the broker. A takeover holds two
// connections of one subscriber for a moment.
func (c *config) connections() int { return c.longLived() + c.ChurnWorkers + c.Streams }

// fdReserve is what the soak leaves under the open-files limit for the
// broker's own files (a durable Tern's Pebble store) and this process's.
const fdReserve = 256

// run soaks the broker cfg.Broker and returns the summary. An error means
// the run could not be made; a broker that failed it is a summary with Pass
// false.
func run(ctx context.Context, cfg config) (*summary, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	limit, err := loadgen.RaiseNoFile()
	if err != nil {
		return nil, err
	}
	if need := uint64(cfg.connections() + fdReserve); need > limit {
		return nil, fmt.Errorf("the run needs about %d open files, over the limit of %d", need, limit)
	}
	ps, cleanup, err := peers.PrepareAll(ctx, cfg.Broker, "soak")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	if len(ps) != 1 {
		return nil, fmt.Errorf("-broker names one broker, not %q", cfg.Broker)
	}
	p := ps[0]
	admin := ""
	if strings.HasPrefix(p.Name, "tern") {
		if admin, err = peers.FreePort(); err != nil {
			return nil, err
		}
		// Appended after peers' own "--admin-listen ''": the last one wins.
		p.ExtraArgs = append([]string{"--admin-listen", admin}, cfg.BrokerArgs...)
	} else if len(cfg.BrokerArgs) > 0 {
		return nil, errors.New("-broker-args is for Tern only")
	}
	b, err := p.Start()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := b.Stop(); err != nil {
			fmt.Fprintln(cfg.Progress, "soak:", err)
		}
	}()
	s := &soak{cfg: cfg, b: b, probe: newProbe(b.PID, admin, cfg.Progress), errs: newErrorLog(), ct: &counters{},
		d: &dialer{addr: b.Addr, sources: cfg.SourceAddrs}}
	sum := &summary{Broker: p.Name, Version: p.Version, Config: cfg, Started: time.Now().UTC(),
		Connections: cfg.connections(), LoadAvg: loadgen.LoadAverage()}
	err = s.soak(ctx, sum)
	if died := b.ExitReport(); died != "" {
		sum.BrokerDied, sum.BrokerExit = true, died
	}
	if err != nil && !sum.BrokerDied {
		return nil, err
	}
	sum.judge()
	return sum, nil
}

// soak is one run's state.
type soak struct {
	cfg   config
	b     *peers.Broker
	probe *probe
	d     *dialer
	errs  *errorLog
	ct    *counters
}

func (s *soak) soak(ctx context.Context, sum *summary) error {
	cfg := s.cfg
	time.Sleep(500 * time.Millisecond) // let the broker finish starting before the idle reading
	idle, err := s.probe.read()
	if err != nil {
		return err
	}
	idle.T = -1
	sum.Idle = idle

	// Setup: every long-lived connection, before the load starts.
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	fo, err := startFanout(setup, s.d, cfg.FanoutSubs, cfg.FanoutQoS1, s.errs, s.ct)
	if err != nil {
		return err
	}
	defer fo.stop()
	tp, err := startTopics(setup, s.d, cfg.Topics, cfg.TopicPubs, cfg.TopicSubs, s.errs, s.ct)
	if err != nil {
		return err
	}
	defer tp.stop()
	streams := make([]*stream, cfg.Streams)
	defer func() {
		for _, st := range streams {
			if st != nil {
				st.stop()
			}
		}
	}()
	for i := range streams {
		streams[i] = newStream(i, s.d, s.errs, s.ct)
		if err := streams[i].start(setup, cfg.StreamWindow); err != nil {
			return err
		}
	}
	ch := &churn{d: s.d, workers: cfg.ChurnWorkers, ids: cfg.ChurnIDs, groups: topicGroups(cfg.Topics), errs: s.errs, ct: s.ct}
	if err := ch.watchWills(setup); err != nil {
		return err
	}
	defer ch.stop()
	fmt.Fprintf(cfg.Progress, "soak: %s (%s), pid %d: %d connections set up; load for %v, samples every %v, warm-up %v\n",
		sum.Broker, sum.Version, s.b.PID, cfg.longLived(), cfg.Duration, cfg.Sample, cfg.Warmup)

	// The load, until the duration is up, ctx is cancelled or the broker dies.
	load, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	start := time.Now()
	first, err := s.probe.read()
	if err != nil {
		return err
	}
	sum.Samples = append(sum.Samples, first)
	spawn(func() { fo.pub.run(load, cfg.FanoutRate) })
	spawn(func() { tp.run(load, cfg.TopicRate) })
	for i, st := range streams {
		spawn(func() { st.pub.run(load, cfg.StreamRate) })
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(1000+i)))
		spawn(func() { st.subscribe(load, cfg.Change, rng) })
	}
	if cfg.ChurnWorkers > 0 {
		spawn(func() { ch.run(load, cfg.ChurnRate, cfg.Seed) })
	}
	err = s.sample(load, start, sum)
	stopLoad()
	wg.Wait()
	if err != nil {
		return err
	}
	if ctx.Err() != nil { // interrupted: a shortened run proves nothing
		return fmt.Errorf("soak interrupted: %w", ctx.Err())
	}
	sum.Ran = time.Since(start).Seconds()

	// The drain: every acknowledged message must arrive.
	drainStart := time.Now()
	deadline := drainStart.Add(cfg.Drain)
	settled := fo.pub.settle(cfg.Drain)
	for _, st := range streams {
		settled = st.pub.settle(time.Until(deadline)) && settled
	}
	sum.Drain.Settled = settled
	sum.Drain.Complete = waitFor(time.Until(deadline), func() bool {
		if !fo.complete() {
			return false
		}
		for _, st := range streams {
			if st.missing() > 0 {
				return false
			}
		}
		return true
	})
	// QoS 0 has no end to wait for but the counts: stop when they add up
	// or have not moved for a second.
	last, still := tp.received(), time.Now()
	waitFor(time.Until(deadline), func() bool {
		if n := tp.received(); n != last {
			last, still = n, time.Now()
		}
		return tp.complete() || time.Since(still) > time.Second
	})
	sum.Drain.Seconds = time.Since(drainStart).Seconds()

	// Everything closed: what the broker keeps now is what it leaked, or
	// the persistent sessions it rightly holds.
	fo.stop()
	tp.stop()
	for _, st := range streams {
		st.stop()
	}
	ch.stop()
	sum.Fanout = fo.result()
	sum.Topics = tp.result()
	sum.Churn = ch.result()
	for _, st := range streams {
		sum.Streams = append(sum.Streams, st.result())
	}
	time.Sleep(2 * time.Second)
	after, err := s.probe.read()
	if err != nil {
		return err
	}
	after.T = -1
	sum.After = after
	sum.Errors, sum.ErrorLines = s.errs.snapshot()
	return nil
}

// sample takes a sample every cfg.Sample from start until cfg.Duration has
// passed, load is cancelled or the broker exits, printing a progress line
// for each.
func (s *soak) sample(load context.Context, start time.Time, sum *summary) error {
	counts := func() [4]int64 {
		return [4]int64{s.ct.churnCycles.Load(), s.ct.topicRecv.Load(), s.ct.fanoutRecv.Load(), s.ct.trackedAcked.Load()}
	}
	prev, prevCt := sum.Samples[0], counts()
	for i := 1; ; i++ {
		at := time.Duration(i) * s.cfg.Sample
		if at > s.cfg.Duration {
			at = s.cfg.Duration
		}
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-load.Done():
			t.Stop()
			return nil
		case <-s.b.Exited():
			t.Stop()
			return errors.New("the broker exited")
		case <-t.C:
		}
		smp, err := s.probe.read()
		if err != nil {
			select {
			case <-s.b.Exited():
				return errors.New("the broker exited")
			default:
				return err
			}
		}
		smp.T = time.Since(start).Seconds()
		dt := smp.T - prev.T
		ct := counts()
		rate := func(k int) float64 { return float64(ct[k]-prevCt[k]) / dt }
		smp.Churn, smp.Topics, smp.Fanout, smp.Tracked = rate(0), rate(1), rate(2), rate(3)
		smp.Takeovers, smp.Reconnects, smp.Errors = s.ct.takeovers.Load(), s.ct.reconnects.Load(), s.errs.total.Load()
		sum.Samples = append(sum.Samples, smp)
		fmt.Fprintln(s.cfg.Progress, progressLine(smp))
		prev, prevCt = smp, ct
		if at >= s.cfg.Duration {
			return nil
		}
	}
}
