// Command connrate measures what connections cost each broker:
//
//   - connect rate: -workers concurrent workers each repeatedly dial,
//     CONNECT (clean session), wait for the CONNACK, DISCONNECT and close,
//     for -duration; it reports connections per second and the broker's CPU
//     time (utime + stime) per connection;
//   - idle connections: -idle connections (capped under the open-files
//     limit), each CONNECTed with keep-alive -keepalive, and the broker's
//     VmRSS before and after; it reports bytes per connection.
//
// Brokers run interleaved, a fresh one per measurement; it prints one JSON
// line per broker and round and a Markdown table of the medians with ratios
// to Mosquitto.
//
//	go run ./cmd/connrate -brokers tern,mosquitto -repeat 3
//
// Run it from inside perf/: it builds Tern from ../, and mochi and relay from
// peers/mochi and peers/relay.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/peers"
	"github.com/tern-mqtt/tern/perf/stats"
)

// line is the JSON line printed per broker and round.
type line struct {
	Broker  string  `json:"broker"`
	Round   int     `json:"round"`
	LoadAvg float64 `json:"loadavg"` // the machine's 1-minute load average before the round's first run
	rateResult
	idleResult
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "connrate:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", "tern,mosquitto,mochi,relay", "comma-separated brokers: "+strings.Join(peers.Names, ", ")+" (missing ones are skipped)")
	workers := flag.Int("workers", 32, "concurrent connect/disconnect workers")
	duration := flag.Duration("duration", 5*time.Second, "connect-rate interval of each run (0 skips it)")
	idle := flag.Int("idle", 10000, "idle connections to open (0 skips it; capped below the open-files limit)")
	subs := flag.Int("subs", 0, "distinct filters each idle connection subscribes to (run once with 0 and once with K: the difference over N×K is the bytes per subscription)")
	keepAlive := flag.Duration("keepalive", 300*time.Second, "keep-alive of the idle connections (0 disables it)")
	openTimeout := flag.Duration("open-timeout", 2*time.Minute, "bound on opening the idle connections")
	sources := flag.Int("source-addrs", 8, "spread connections over 127.0.0.1 .. 127.0.0.N")
	repeat := flag.Int("repeat", 3, "rounds; each round runs every broker once")
	ternArgs := flag.String("tern-args", "", "extra space-separated arguments for every Tern variant, for diagnosis (e.g. \"--pprof-listen 127.0.0.1:6061\")")
	flag.Parse()
	if *sources < 1 || *sources > 254 || *workers < 1 || *keepAlive < 0 || *keepAlive > 65535*time.Second {
		return errors.New("bad -source-addrs, -workers or -keepalive")
	}

	limit, err := loadgen.RaiseNoFile()
	if err != nil {
		return err
	}
	if *idle > 0 && uint64(*idle)+fdMargin > limit {
		capped := int(limit) - fdMargin
		fmt.Fprintf(os.Stderr, "connrate: -idle %d capped to %d: the open-files limit is %d (for the brokers too)\n", *idle, capped, limit)
		*idle = capped
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ps, cleanup, err := peers.PrepareAll(ctx, *brokers, "connrate")
	if err != nil {
		return err
	}
	defer cleanup()
	for _, p := range ps {
		if strings.HasPrefix(p.Name, "tern") {
			p.ExtraArgs = strings.Fields(*ternArgs)
		}
	}
	fmt.Fprintf(os.Stderr, "connrate: %d rounds × %d brokers: %d workers for %v, then %d idle connections with keep-alive %v\n",
		*repeat, len(ps), *workers, *duration, *idle, *keepAlive)

	var lines []line
	var loads []float64
	enc := json.NewEncoder(os.Stdout)
	for round := 1; round <= *repeat; round++ {
		for _, p := range ps {
			l := line{Broker: p.Name, Round: round, LoadAvg: loadgen.LoadAverage()}
			loads = append(loads, l.LoadAvg)
			if *duration > 0 {
				err := p.With("connrate", os.Stderr, func(b *peers.Broker) (err error) {
					l.rateResult, err = connectRate(ctx, b.Addr, b.PID, *workers, *sources, *duration)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s round %d: connect rate: %w", p.Name, round, err)
				}
			}
			if *idle > 0 {
				err := p.With("connrate", os.Stderr, func(b *peers.Broker) (err error) {
					l.idleResult, err = openIdle(ctx, b.Addr, b.PID, *idle, *subs, *sources, uint16(*keepAlive/time.Second), *openTimeout, os.Stderr)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s round %d: idle connections: %w", p.Name, round, err)
				}
			}
			lines = append(lines, l)
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
	}
	fmt.Println()
	printTable(os.Stdout, *workers, *duration, *idle, *subs, *keepAlive, ps, lines)
	fmt.Printf("\n%s\n", loadgen.LoadRange(loads, "round"))
	return nil
}

// printTable writes a Markdown table of the medians of every column, each
// taken on its own, and their ratios to Mosquitto's.
func printTable(w io.Writer, workers int, duration time.Duration, idle, subs int, keepAlive time.Duration, ps []*peers.Peer, lines []line) {
	type row struct{ rate, cpu, errs, bytes, before, after float64 }
	rows := map[string]row{}
	for _, p := range ps {
		mine := slices.DeleteFunc(slices.Clone(lines), func(l line) bool { return l.Broker != p.Name })
		m := func(f func(line) float64) float64 { return stats.Median(mine, f) }
		rows[p.Name] = row{
			rate:   m(func(l line) float64 { return l.PerSec }),
			cpu:    m(func(l line) float64 { return l.CPUPerConn }),
			errs:   m(func(l line) float64 { return float64(l.Errors) }),
			bytes:  m(func(l line) float64 { return l.BytesPerConn }),
			before: m(func(l line) float64 { return float64(l.RSSBefore) }),
			after:  m(func(l line) float64 { return float64(l.RSSAfter) }),
		}
	}
	base, haveBase := rows["mosquitto"]
	ratio := func(a, b float64) string {
		if !haveBase || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	fmt.Fprintf(w, "connrate: %d workers connect/disconnect for %v; %d idle connections, keep-alive %v, %d subscriptions each; medians of %d rounds\n\n",
		workers, duration, idle, keepAlive, subs, len(lines)/len(ps))
	fmt.Fprintln(w, "| broker | conn/s | broker CPU µs/conn | errors | RSS before | RSS after | bytes/idle conn | conn/s ÷ Mosquitto | CPU/conn ÷ Mosquitto | bytes/conn ÷ Mosquitto |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	mib := func(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
	for _, p := range ps {
		r := rows[p.Name]
		fmt.Fprintf(w, "| %s | %.0f | %.1f | %.0f | %s | %s | %.0f | %s | %s | %s |\n",
			p.Name, r.rate, r.cpu, r.errs, mib(r.before), mib(r.after), r.bytes,
			ratio(r.rate, base.rate), ratio(r.cpu, base.cpu), ratio(r.bytes, base.bytes))
	}
}
