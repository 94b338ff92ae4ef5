// Command soak runs one broker under a long mixed load and watches it for
// leaks and lost messages:
//
//   - churn: -churn-workers clients connecting and leaving at -churn-rate
//     in all (3.1.1 and 5.0, clean and persistent sessions over
//     -churn-ids client ids, some with a will, some leaving without
//     DISCONNECT), each subscribing, publishing to itself at QoS 0, 1
//     and 2 and waiting for its messages to come back;
//   - many topics: -topic-publishers cycling at -topic-rate over -topics
//     distinct topics (every tenth retained), -topic-subscribers on
//     wildcards;
//   - fan-out: one publisher at -fanout-rate, QoS 1, to -fanout-subs
//     subscribers, -fanout-qos1 of them at QoS 1, spread over
//     -source-addrs source addresses 127.0.0.x;
//   - tracked streams: -streams publisher → subscriber pairs at
//     -stream-rate, alternately QoS 1 and 2, with persistent subscribers
//     that keep their connection, reconnect, or are taken over (the same
//     client id connecting while the old connection is open; the broker
//     must close the old one) about every -change-every, in 3.1.1 and 5.0.
//
// Every -sample it reads the broker's VmRSS, open fds (/proc/PID/fd),
// goroutines (Tern only: the admin endpoint's pprof, which the soak turns
// on on a free loopback port) and CPU time, and prints a line with the
// load's rates. After -duration it stops the load and drains for at most
// -drain: every QoS 1/2 message the broker acknowledged to a tracked or
// fan-out publisher (PUBACK, PUBCOMP) must reach each of its subscribers,
// and a QoS 2 one exactly once.
//
// It prints a table of the samples, a trend verdict per series over the
// samples after -warmup and the accounting, and writes the summary as JSON
// to -out. The exit status is 1 when the run failed: an upward trend (a
// least-squares rise over the window above -trend-pct of the mean and a
// floor, still climbing in the window's second half; judgeTrend has the
// rule), a lost or (QoS 2) duplicated message, a takeover that left the old
// connection open, a resumed session without its state, a client error, or
// the broker dying; 2 when it could not be made.
//
//	go run ./cmd/soak -out /tmp/soak.json                       # 10 minutes against memory-only Tern
//	go run ./cmd/soak -broker tern-sync -duration 2m -out /tmp/soak-sync.json
//
// Run it from inside perf/: it builds Tern from ../ (peers).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/peers"
)

func main() {
	cfg, out := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	sum.print(os.Stdout)
	if out != "" {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err == nil {
			err = os.WriteFile(out, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak: cannot write the summary:", err)
			os.Exit(2)
		}
	}
	if !sum.Pass {
		os.Exit(1)
	}
}

func parseFlags() (config, string) {
	var c config
	flag.StringVar(&c.Broker, "broker", "tern", "the broker to soak, one of "+strings.Join(peers.Names, ", ")+" (tern-sync soaks the durable path)")
	flag.DurationVar(&c.Duration, "duration", 10*time.Minute, "time under load")
	flag.DurationVar(&c.Sample, "sample", 10*time.Second, "time between samples of the broker")
	flag.DurationVar(&c.Warmup, "warmup", time.Minute, "samples before this are left out of the trends")
	flag.DurationVar(&c.Drain, "drain", 30*time.Second, "longest wait after the load for acknowledged messages still on their way")
	flag.IntVar(&c.SourceAddrs, "source-addrs", 8, "spread connections over 127.0.0.1 .. 127.0.0.N")
	flag.IntVar(&c.ChurnWorkers, "churn-workers", 16, "concurrent connect/disconnect clients")
	flag.Float64Var(&c.ChurnRate, "churn-rate", 200, "connect/disconnect cycles per second, all workers together")
	flag.IntVar(&c.ChurnIDs, "churn-ids", 2000, "client ids the churn cycles through (the persistent sessions it leaves are at most this many)")
	flag.IntVar(&c.Topics, "topics", 10000, "distinct topics the topic publishers cycle over")
	flag.IntVar(&c.TopicPubs, "topic-publishers", 2, "QoS 0 publishers over the topics")
	flag.IntVar(&c.TopicSubs, "topic-subscribers", 4, "wildcard subscribers to the topics")
	flag.Float64Var(&c.TopicRate, "topic-rate", 1000, "messages per second over the topics, all publishers together")
	flag.IntVar(&c.FanoutSubs, "fanout-subs", 1000, "fan-out subscribers")
	flag.IntVar(&c.FanoutQoS1, "fanout-qos1", 100, "fan-out subscribers at QoS 1 (the rest at QoS 0)")
	flag.Float64Var(&c.FanoutRate, "fanout-rate", 10, "fan-out messages per second (QoS 1); deliveries are this times -fanout-subs")
	flag.IntVar(&c.Streams, "streams", 12, "tracked streams, QoS 1 and 2 alternately (12 covers QoS × steady/reconnect/takeover × 3.1.1/5.0)")
	flag.Float64Var(&c.StreamRate, "stream-rate", 20, "messages per second per tracked stream")
	flag.IntVar(&c.StreamWindow, "stream-window", 32, "QoS 1/2 messages in flight per tracked publisher")
	flag.DurationVar(&c.Change, "change-every", 2*time.Second, "mean time between reconnects or takeovers of a tracked subscriber")
	flag.Float64Var(&c.TrendPct, "trend-pct", 10, "an upward trend is a fitted rise over the post-warm-up window above this percentage of the mean (and above the series' floor) that still goes on in the window's second half")
	flag.Uint64Var(&c.Seed, "seed", uint64(time.Now().UnixNano()), "seed of the churn's and the subscribers' random choices")
	args := flag.String("broker-args", "", "extra arguments for Tern, space-separated (for diagnosis, e.g. \"--max-queued-messages 0\")")
	out := flag.String("out", "", "write the JSON summary to this file")
	flag.Parse()
	c.BrokerArgs = strings.Fields(*args)
	c.Progress = os.Stdout
	return c, *out
}
