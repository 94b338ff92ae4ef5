// Package loadgen drives a running MQTT broker over raw TCP and measures it:
// N publishers and M subscribers speaking MQTT 3.1.1 through the codec package
// (no client library) at QoS 0, 1 or 2, every subscriber on one filter (fan-in,
// fan-out, or one shared-subscription group) or publisher i paired with
// subscriber i, a warm-up, a measured interval bounded in time and in
// message count, a drain, and then counts of messages sent, received and lost,
// the delivery rate, and the broker process's CPU time over the measured
// interval read from /proc.
//
// It owns its sockets and goroutines for the length of one Run; nothing
// outlives it.
package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options describes one load run. Zero fields take the defaults documented on
// each field; EnsureDefaults fills them.
type Options struct {
	Addr string // broker TCP address; required
	// TLS, when set, is the client side of a TLS listener at Addr.
	TLS         *tls.Config
	Publishers  int  // publishing connections; default 1
	Subscribers int  // subscribing connections; default 1
	QoS         byte // 0, 1 or 2, for both PUBLISH and SUBSCRIBE
	PayloadSize int  // bytes of payload per message; default 64
	// Filter is every subscriber's filter; default "bench/+". A shared
	// filter ($share/GROUP/...) makes the subscribers one group: each
	// message is expected once across them, not once per subscriber.
	Filter      string
	TopicPrefix string // publisher i publishes to TopicPrefix+i; default "bench/"
	// Pairs subscribes subscriber i to TopicPrefix+i instead of Filter, so
	// that it receives publisher i's messages only (it counts any other as
	// misrouted). It needs as many subscribers as publishers.
	Pairs       bool
	Window      int           // QoS 1 and 2: incomplete PUBLISHes per publisher; default 64
	Batch       int           // QoS 0: PUBLISHes per write; default 64
	Warmup      time.Duration // load before the measured interval; 0 means none
	Duration    time.Duration // measured interval; default 5 s
	MaxMessages int64         // per publisher; 0 means unbounded (time only)
	// DrainTimeout bounds the wait, after publishing stops, for messages
	// still in flight; default 5 s. Draining also ends once every expected
	// message arrived (and, at QoS 1 and 2, every publisher's message was
	// acknowledged) or nothing arrived for StallTimeout.
	DrainTimeout time.Duration
	StallTimeout time.Duration // default 1 s
	// SourceAddrs spreads connections over local addresses 127.0.0.1 ..
	// 127.0.0.SourceAddrs so that many connections do not run out of
	// ephemeral ports on one address; default 1, at most 254.
	SourceAddrs int
	// BrokerPID is the broker's process id for CPU accounting; 0 skips it
	// (an in-process broker shares the load generator's process).
	BrokerPID int
	// ClientIDPrefix starts every client id; default "lg".
	ClientIDPrefix string
	// PersistentSubscribers and PersistentPublishers connect those clients
	// with Clean Session 0, so that the broker keeps a session for them: on
	// a durable broker, QoS 1 deliveries to a persistent subscriber go
	// through its store, and to a clean one they need not. The session must
	// be new: ClientIDPrefix has to differ from that of an earlier Run on
	// the same broker.
	PersistentSubscribers bool
	PersistentPublishers  bool
	// Sample is the period of the progress sampler that finds stalls;
	// default 100 ms.
	Sample time.Duration
}

// EnsureDefaults fills the zero fields of o with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Publishers == 0 {
		o.Publishers = 1
	}
	if o.Subscribers == 0 {
		o.Subscribers = 1
	}
	if o.PayloadSize == 0 {
		o.PayloadSize = 64
	}
	if o.Filter == "" {
		o.Filter = "bench/+"
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "bench/"
	}
	if o.Window == 0 {
		o.Window = 64
	}
	if o.Batch == 0 {
		o.Batch = 64
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = time.Second
	}
	if o.SourceAddrs == 0 {
		o.SourceAddrs = 1
	}
	if o.ClientIDPrefix == "" {
		o.ClientIDPrefix = "lg"
	}
	if o.Sample == 0 {
		o.Sample = 100 * time.Millisecond
	}
}

func (o *Options) validate() error {
	switch {
	case o.Addr == "":
		return errors.New("loadgen: no broker address")
	case o.QoS > 2:
		return fmt.Errorf("loadgen: QoS %d not supported", o.QoS)
	case o.Pairs && o.Publishers != o.Subscribers:
		return fmt.Errorf("loadgen: %d publishers cannot pair with %d subscribers", o.Publishers, o.Subscribers)
	case o.countsDuplicates() && o.PayloadSize < tagSize:
		return fmt.Errorf("loadgen: counting duplicates needs payloads of at least %d bytes", tagSize)
	case o.Publishers < 0 || o.Subscribers < 0 || o.PayloadSize < 0 || o.Window < 0 || o.Batch < 0:
		return errors.New("loadgen: negative count")
	case o.Window > 65535:
		return errors.New("loadgen: window larger than the packet id space")
	case o.SourceAddrs > 254:
		return errors.New("loadgen: more than 254 source addresses")
	}
	return nil
}

// shared reports whether the subscribers form one shared-subscription group.
func (o *Options) shared() bool { return !o.Pairs && strings.HasPrefix(o.Filter, "$share/") }

// countsDuplicates reports whether the run tags every payload with its
// publisher and sequence number to count duplicate deliveries: at QoS 2,
// where there must be none, and for a shared group, where each message must
// reach one member once. Elsewhere it is off, so that a wide fan-out does
// not keep a bitmap per subscriber.
func (o *Options) countsDuplicates() bool { return o.QoS == 2 || o.shared() }

// perMessage is how many deliveries each message sent is expected to make.
func (o *Options) perMessage() int64 {
	if o.Pairs || o.shared() {
		return 1
	}
	return int64(o.Subscribers)
}

// Result is what one Run measured. Totals cover the whole run, warm-up and
// drain included; the rates and CPU cover the measured interval only.
type Result struct {
	Sent     int64 `json:"sent"`     // PUBLISHes written by all publishers
	Acked    int64 `json:"acked"`    // PUBACKs (QoS 1) or PUBCOMPs (QoS 2) received by publishers
	Received int64 `json:"received"` // PUBLISHes read by all subscribers, duplicates included
	// Duplicates counts deliveries of a message that had already reached
	// the same subscriber (or, for a shared group, any member of the
	// group). Counted only at QoS 2 and for a shared group, from a tag at
	// the start of each payload.
	Duplicates int64 `json:"duplicates"`
	// Misrouted counts deliveries a subscriber should not have had: in
	// Pairs, another publisher's topic; when counting duplicates, a payload
	// without a valid tag.
	Misrouted int64 `json:"misrouted"`
	// Lost is Expected − (Received − Duplicates − Misrouted): the messages
	// that never arrived where they should have.
	Lost    int64   `json:"lost"`
	LossPct float64 `json:"loss_pct"`

	Measured         time.Duration `json:"measured_ns"`    // actual measured interval
	SentMeasured     int64         `json:"sent_measured"`  // PUBLISHes written in it
	ReceivedMeasured int64         `json:"recv_measured"`  // deliveries in it
	Throughput       float64       `json:"recv_per_sec"`   // ReceivedMeasured per second
	SendRate         float64       `json:"sent_per_sec"`   // SentMeasured per second
	BrokerCPU        time.Duration `json:"broker_cpu_ns"`  // utime+stime over the interval; 0 when not measured
	CPUPerMsg        float64       `json:"cpu_us_per_msg"` // BrokerCPU per delivery, in µs; 0 when not measured
	StallSamples     int           `json:"stall_samples"`  // sample periods in the interval with no delivery
	MaxGap           time.Duration `json:"max_gap_ns"`     // longest run of such periods
	Drain            time.Duration `json:"drain_ns"`       // time spent draining after publishing stopped
	// DrainEnd says why draining stopped: "complete" (every expected
	// message arrived, and was acknowledged at QoS 1 and 2), "stalled" (nothing arrived for StallTimeout: the
	// rest is lost) or "timeout" (still arriving at DrainTimeout: Lost then
	// counts a backlog the broker still held, not only drops).
	DrainEnd         string  `json:"drain_end"`
	ConnErrors       int64   `json:"conn_errors"`     // connections that failed mid-run
	FirstError       string  `json:"first_error"`     // the first of those, for the report
	Cores            float64 `json:"broker_cores"`    // BrokerCPU ÷ Measured
	Expected         int64   `json:"expected"`        // Sent × Subscribers; Sent for Pairs and shared groups
	Publishers       int     `json:"publishers"`      // echo of the options, for the JSON line
	Subscribers      int     `json:"subscribers"`     //
	QoS              byte    `json:"qos"`             //
	PayloadSize      int     `json:"payload_bytes"`   //
	PersistentSubs   bool    `json:"persistent_subs"` //
	PersistentPubs   bool    `json:"persistent_pubs"` //
	Filter           string  `json:"filter"`          // "" for Pairs
	Pairs            bool    `json:"pairs"`           //
	DeliveredPerSent float64 `json:"fanout_observed"` // Received ÷ Sent
}

// counters are the per-connection counts one goroutine writes and Run reads.
type counters struct {
	sent, acked, received, dups, misrouted atomic.Int64
	// torn is set when a publisher's write stopped mid-packet: nothing
	// more may be written to that connection.
	torn atomic.Bool
}

// run is the shared state of one Run.
type run struct {
	o        Options
	stop     atomic.Bool   // publishers stop sending when set
	stopped  chan struct{} // closed with stop set, for publishers waiting on acks
	haltOnce sync.Once
	// resumed is closed once the publishers have stopped and the write
	// deadline halt set is lifted, so that QoS 2 publishers' readers can
	// again send PUBREL for what is still in flight.
	resumed    chan struct{}
	resumeOnce sync.Once
	readers    sync.WaitGroup // the PUBACK readers of QoS 1 publishers
	errs       atomic.Int64
	errOnce    sync.Once
	err1       string
}

// halt stops the publishers and unblocks any of them stuck in a write to a
// broker that stopped reading.
func (r *run) halt(pubs []net.Conn) {
	r.haltOnce.Do(func() {
		r.stop.Store(true)
		close(r.stopped)
		if r.o.TLS != nil {
			// A timed-out write leaves a tls.Conn broken for good (crypto/tls),
			// so resume could not bring it back for the drain's PUBRELs: TLS
			// publishers stop between writes, on r.stop, instead.
			return
		}
		for _, c := range pubs {
			_ = c.SetWriteDeadline(time.Now())
		}
	})
}

// resume lifts the write deadline halt set on the publishers whose writes
// ended on a packet boundary (none when pubs is nil) and releases readers
// waiting to write.
func (r *run) resume(pubs []net.Conn, cs []*counters) {
	r.resumeOnce.Do(func() {
		for i, c := range pubs {
			if !cs[i].torn.Load() {
				_ = c.SetWriteDeadline(time.Time{})
			}
		}
		close(r.resumed)
	})
}

func (r *run) fail(err error) {
	if r.stop.Load() {
		return // sockets closed on purpose at the end
	}
	r.errs.Add(1)
	r.errOnce.Do(func() { r.err1 = err.Error() })
}

// Run connects the subscribers, then the publishers, loads the broker for
// o.Warmup + o.Duration (or until every publisher sent o.MaxMessages), drains,
// closes every connection and returns the counts. It fails only when the
// clients cannot connect and subscribe; errors later in the run are counted
// in the Result.
func Run(ctx context.Context, o Options) (Result, error) {
	o.EnsureDefaults()
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	r := &run{o: o, stopped: make(chan struct{}), resumed: make(chan struct{})}
	var conns []net.Conn
	var wg sync.WaitGroup
	pubConns := make([]net.Conn, o.Publishers)
	defer func() {
		r.halt(nil)
		r.resume(nil, nil)
		for _, c := range conns {
			_ = c.Close()
		}
		wg.Wait()
		r.readers.Wait()
	}()
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	subs := make([]*counters, o.Subscribers)
	for i := range subs {
		c, err := r.dial(dialCtx, i)
		if err != nil {
			return Result{}, err
		}
		conns = append(conns, c)
		id := o.ClientIDPrefix + "-sub-" + strconv.Itoa(i)
		filter := o.Filter
		if o.Pairs {
			filter = o.TopicPrefix + strconv.Itoa(i)
		}
		if err := handshake(c, id, o.PersistentSubscribers, filter, o.QoS); err != nil {
			return Result{}, fmt.Errorf("loadgen: subscriber %d: %w", i, err)
		}
		subs[i] = new(counters)
	}
	pubs := make([]*counters, o.Publishers)
	for i := range pubs {
		c, err := r.dial(dialCtx, o.Subscribers+i)
		if err != nil {
			return Result{}, err
		}
		conns = append(conns, c)
		if err := handshake(c, o.ClientIDPrefix+"-pub-"+strconv.Itoa(i), o.PersistentPublishers, "", 0); err != nil {
			return Result{}, fmt.Errorf("loadgen: publisher %d: %w", i, err)
		}
		pubs[i], pubConns[i] = new(counters), c
	}

	// One record of what arrived per subscriber, or one for a whole shared
	// group.
	var group *seen
	if o.shared() {
		group = newSeen(o.Publishers)
	}
	// Large fan-outs get smaller read buffers: 64 MiB in all at most.
	bufSize := min(256<<10, max(16<<10, (64<<20)/max(1, o.Subscribers)))
	for i, c := range conns[:o.Subscribers] {
		sv := group
		if sv == nil && o.countsDuplicates() {
			sv = newSeen(o.Publishers)
		}
		var want []byte // the only topic subscriber i may receive, in Pairs
		if o.Pairs {
			want = []byte(o.TopicPrefix + strconv.Itoa(i))
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.subscribe(c, subs[i], sv, want, bufSize) }()
	}
	sum := func(cs []*counters, f func(*counters) *atomic.Int64) int64 {
		var n int64
		for _, c := range cs {
			n += f(c).Load()
		}
		return n
	}
	sent := func() int64 { return sum(pubs, func(c *counters) *atomic.Int64 { return &c.sent }) }
	recv := func() int64 { return sum(subs, func(c *counters) *atomic.Int64 { return &c.received }) }
	// good counts the deliveries that count against the expected: neither
	// duplicated nor misrouted.
	good := func() int64 {
		return recv() - sum(subs, func(c *counters) *atomic.Int64 { return &c.dups }) -
			sum(subs, func(c *counters) *atomic.Int64 { return &c.misrouted })
	}

	var pubWG sync.WaitGroup
	startPublishers := func() {
		for i, c := range pubConns {
			topic := []byte(o.TopicPrefix + strconv.Itoa(i))
			pubWG.Add(1)
			go func() { defer pubWG.Done(); r.publish(c, i, topic, pubs[i]) }()
		}
	}
	pubsDone := make(chan struct{})

	var cpu0 time.Duration
	var cpuErr error
	var t0 time.Time
	var sent0, recv0 int64
	if o.Warmup <= 0 {
		// No warm-up: the interval starts before the first PUBLISH, or a
		// run bounded by count could be over before it began.
		cpu0, cpuErr = ProcCPU(o.BrokerPID)
		t0, sent0, recv0 = time.Now(), sent(), recv()
		startPublishers()
		go func() { pubWG.Wait(); close(pubsDone) }()
	} else {
		startPublishers()
		go func() { pubWG.Wait(); close(pubsDone) }()
		// Warm-up: load without measuring, unless the publishers finish first.
		select {
		case <-time.After(o.Warmup):
		case <-pubsDone:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
		cpu0, cpuErr = ProcCPU(o.BrokerPID)
		t0, sent0, recv0 = time.Now(), sent(), recv()
	}

	// Measured interval, sampled to find stalls.
	var res Result
	tick := time.NewTicker(o.Sample)
	end := time.NewTimer(o.Duration)
	last, gap, finished := recv0, 0, false
measure:
	for {
		select {
		case <-tick.C:
			n := recv()
			if n == last {
				res.StallSamples++
				gap++
				res.MaxGap = max(res.MaxGap, time.Duration(gap)*o.Sample)
			} else {
				gap = 0
			}
			last = n
		case <-end.C:
			break measure
		case <-pubsDone:
			// Bounded by count: the interval runs until the last
			// message is delivered (or the drain gives up), so the
			// rate is that of the whole batch end to end.
			finished = true
			break measure
		case <-ctx.Done():
			tick.Stop()
			return Result{}, ctx.Err()
		}
	}
	tick.Stop()
	end.Stop()
	var t1 time.Time
	var sent1, recv1 int64
	var cpu1 time.Duration
	var cpuErr1 error
	snapshot := func() {
		t1, sent1, recv1 = time.Now(), sent(), recv()
		cpu1, cpuErr1 = ProcCPU(o.BrokerPID)
	}
	if !finished {
		snapshot()
	}
	r.halt(pubConns)
	<-pubsDone
	r.resume(pubConns, pubs)

	// Drain: wait for what is still in flight, bounded: the deliveries and,
	// at QoS 1 and 2, the publishers' acknowledgements (at QoS 2 a broker
	// may forward a message only on its PUBREL).
	total := sent()
	expected := total * o.perMessage()
	acked := func() int64 { return sum(pubs, func(c *counters) *atomic.Int64 { return &c.acked }) }
	complete := func(delivered, acks int64) bool {
		return delivered >= expected && (o.QoS == 0 || acks >= total)
	}
	drainStart := time.Now()
	deadline := drainStart.Add(o.DrainTimeout)
	lastN, lastAcks, lastChange := good(), acked(), drainStart
	for time.Now().Before(deadline) && !complete(lastN, lastAcks) && time.Since(lastChange) < o.StallTimeout {
		time.Sleep(time.Millisecond)
		if n, a := good(), acked(); n != lastN || a != lastAcks {
			lastN, lastAcks, lastChange = n, a, time.Now()
		}
	}
	switch {
	case complete(lastN, lastAcks):
		res.DrainEnd = "complete"
	case time.Since(lastChange) >= o.StallTimeout:
		res.DrainEnd = "stalled"
	default:
		res.DrainEnd = "timeout"
	}
	if finished {
		snapshot()
	}
	res.Drain = time.Since(drainStart)
	for _, c := range conns {
		_ = c.Close()
	}
	wg.Wait()
	r.readers.Wait()

	res.Sent = sent()
	res.Acked = acked()
	res.Received = recv()
	res.Duplicates = sum(subs, func(c *counters) *atomic.Int64 { return &c.dups })
	res.Misrouted = sum(subs, func(c *counters) *atomic.Int64 { return &c.misrouted })
	res.Expected = res.Sent * o.perMessage()
	res.Lost = res.Expected - (res.Received - res.Duplicates - res.Misrouted)
	if res.Expected > 0 {
		res.LossPct = 100 * float64(res.Lost) / float64(res.Expected)
	}
	if res.Sent > 0 {
		res.DeliveredPerSent = float64(res.Received) / float64(res.Sent)
	}
	res.Measured = t1.Sub(t0)
	res.SentMeasured, res.ReceivedMeasured = sent1-sent0, recv1-recv0
	if s := res.Measured.Seconds(); s > 0 {
		res.Throughput = float64(res.ReceivedMeasured) / s
		res.SendRate = float64(res.SentMeasured) / s
	}
	if o.BrokerPID != 0 {
		if cpuErr != nil {
			return res, cpuErr
		}
		if cpuErr1 != nil {
			return res, cpuErr1
		}
		res.BrokerCPU = cpu1 - cpu0
		if res.ReceivedMeasured > 0 {
			res.CPUPerMsg = res.BrokerCPU.Seconds() * 1e6 / float64(res.ReceivedMeasured)
		}
		if res.Measured > 0 {
			res.Cores = math.Round(100*res.BrokerCPU.Seconds()/res.Measured.Seconds()) / 100
		}
	}
	res.ConnErrors, res.FirstError = r.errs.Load(), r.err1
	res.Publishers, res.Subscribers, res.QoS, res.PayloadSize = o.Publishers, o.Subscribers, o.QoS, o.PayloadSize
	res.PersistentSubs, res.PersistentPubs = o.PersistentSubscribers, o.PersistentPublishers
	res.Pairs = o.Pairs
	if !o.Pairs {
		res.Filter = o.Filter
	}
	return res, nil
}

// dial opens connection number i from source address 127.0.0.(1 + i mod
// SourceAddrs).
func (r *run) dial(ctx context.Context, i int) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%r.o.SourceAddrs))}}
	c, err := d.DialContext(ctx, "tcp", r.o.Addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: cannot connect to %s: %w", r.o.Addr, err)
	}
	if r.o.TLS != nil {
		tc := tls.Client(c, r.o.TLS)
		_ = c.SetDeadline(time.Now().Add(handshakeTimeout)) // a listener that never answers must not hang the run
		err := tc.HandshakeContext(ctx)
		_ = c.SetDeadline(time.Time{})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("loadgen: TLS handshake with %s: %w", r.o.Addr, err)
		}
		return tc, nil
	}
	return c, nil
}
