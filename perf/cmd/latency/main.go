// Command latency measures end-to-end latency at a fixed rate: one publisher
// sends 64 B messages at -rate (paced by a ticker, what is due written once
// per -tick) to one subscriber through each broker, at QoS 0 and QoS 1, for
// -duration after -warmup. Every payload carries its send time; the
// subscriber records each message's latency. Brokers run interleaved, a
// fresh one per run; it prints one JSON line per run and, per QoS, a
// Markdown table of the medians with ratios to Mosquitto.
//
//	go run ./cmd/latency -brokers tern,mosquitto,relay -repeat 3
//
// Run it from inside perf/: it builds Tern from ../, and mochi and relay from
// peers/mochi and peers/relay.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/peers"
	"github.com/tern-mqtt/tern/perf/stats"
)

// line is the JSON line printed per run.
type line struct {
	Broker  string  `json:"broker"`
	Round   int     `json:"round"`
	LoadAvg float64 `json:"loadavg"` // the machine's 1-minute load average before the run
	result
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "tern,mosquitto,mochi,relay", "comma-separated brokers: "+strings.Join(peers.Names, ", ")+" (missing ones are skipped)")
	qosList := flag.String("qos", "0,1", "comma-separated QoS levels to measure, each a run of its own")
	rate := flag.Int("rate", 10000, "messages per second")
	tick := flag.Duration("tick", time.Millisecond, "the publisher writes the messages due once per tick")
	duration := flag.Duration("duration", 5*time.Second, "measured interval of each run")
	warmup := flag.Duration("warmup", time.Second, "load before each measured interval")
	payload := flag.Int("payload", 64, "payload bytes (at least 16: the send time and a sequence number)")
	repeat := flag.Int("repeat", 3, "rounds; each round runs every broker once per QoS")
	flag.Parse()

	var qoss []byte
	for _, s := range strings.Split(*qosList, ",") {
		q, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || q < 0 || q > 1 {
			return fmt.Errorf("-qos %q: want 0, 1 or 0,1", *qosList)
		}
		qoss = append(qoss, byte(q))
	}
	if *payload < stampSize {
		return fmt.Errorf("-payload %d: want at least %d", *payload, stampSize)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ps, cleanup, err := peers.PrepareAll(ctx, *brokers, "latency")
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Fprintf(os.Stderr, "latency: %d msg/s of %d B, QoS %s; %d rounds × %d brokers of %v + %v warm-up\n",
		*rate, *payload, *qosList, *repeat, len(ps), *duration, *warmup)

	results := map[byte]map[string][]result{}
	var loads []float64
	enc := json.NewEncoder(os.Stdout)
	for round := 1; round <= *repeat; round++ {
		for _, q := range qoss {
			for _, p := range ps {
				load := loadgen.LoadAverage()
				loads = append(loads, load)
				o := options{QoS: q, Rate: *rate, Tick: *tick, Duration: *duration, Warmup: *warmup,
					Payload: *payload, ClientID: fmt.Sprintf("lat-%d-%d", round, q)}
				var res result
				err := p.With("latency", os.Stderr, func(b *peers.Broker) (err error) {
					o.Addr, o.BrokerPID = b.Addr, b.PID
					res, err = measure(ctx, o)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s QoS %d round %d: %w", p.Name, q, round, err)
				}
				if results[q] == nil {
					results[q] = map[string][]result{}
				}
				results[q][p.Name] = append(results[q][p.Name], res)
				if err := enc.Encode(line{Broker: p.Name, Round: round, LoadAvg: load, result: res}); err != nil {
					return err
				}
			}
		}
	}
	for _, q := range qoss {
		fmt.Println()
		printTable(os.Stdout, q, *rate, *payload, ps, results[q])
	}
	fmt.Printf("\n%s\n", loadgen.LoadRange(loads, "run"))
	return nil
}

// printTable writes a Markdown table of the medians of every column, each
// taken on its own, and the latency ratios to Mosquitto's medians.
func printTable(w io.Writer, qos byte, rate, payload int, ps []*peers.Peer, results map[string][]result) {
	type row struct{ p50, p99, p999, max, lost, sent, behind, cpu float64 }
	rows := map[string]row{}
	for _, p := range ps {
		rs := results[p.Name]
		rows[p.Name] = row{
			p50:    stats.Median(rs, func(r result) float64 { return r.P50 }),
			p99:    stats.Median(rs, func(r result) float64 { return r.P99 }),
			p999:   stats.Median(rs, func(r result) float64 { return r.P999 }),
			max:    stats.Median(rs, func(r result) float64 { return r.Max }),
			lost:   stats.Median(rs, func(r result) float64 { return float64(r.Lost) }),
			sent:   stats.Median(rs, func(r result) float64 { return r.SendRate }),
			behind: stats.Median(rs, func(r result) float64 { return r.MaxBehind }),
			cpu:    stats.Median(rs, func(r result) float64 { return r.CPUPerMsg }),
		}
	}
	base, haveBase := rows["mosquitto"]
	ratio := func(a, b float64) string {
		if !haveBase || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	fmt.Fprintf(w, "latency QoS %d: 1 publisher → 1 subscriber, %d msg/s of %d B; medians of %d runs; latencies in µs\n\n",
		qos, rate, payload, len(results[ps[0].Name]))
	fmt.Fprintln(w, "| broker | p50 | p99 | p99.9 | max | lost | sent msg/s | publisher behind | broker CPU µs/msg | p50 ÷ Mosquitto | p99 ÷ Mosquitto | p99.9 ÷ Mosquitto | max ÷ Mosquitto |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range ps {
		r := rows[p.Name]
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f ms | %.2f | %s | %s | %s | %s |\n",
			p.Name, r.p50, r.p99, r.p999, r.max, r.lost, r.sent, r.behind, r.cpu,
			ratio(r.p50, base.p50), ratio(r.p99, base.p99), ratio(r.p999, base.p999), ratio(r.max, base.max))
	}
}
