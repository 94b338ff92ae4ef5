// Command retainstorm measures the retained storm: a subscriber to # on a
// broker that holds -retained retained messages. Per broker and round, on a
// fresh broker, it
//
//   - populates: -retained retained messages of -payload bytes at -qos, on
//     distinct topics storm/<i/1000>/<i%1000>, from 4 publishers with 256
//     PUBLISHes in flight between them; at QoS 0 a PINGREQ after the last
//     one tells when the broker has read them all;
//   - waits until the broker used at most 20 ms of CPU over 500 ms (30 s at
//     most), then reads its VmRSS;
//   - connects one subscriber (clean session, MQTT 3.1.1), SUBSCRIBEs to #
//     at -sub-qos (acknowledging each QoS 1 message) and reads until every
//     topic arrived, -timeout passed, nothing new came for -stall after the
//     first message, or the broker closed the connection; it checks RETAIN=1 and counts distinct
//     topics and duplicates, and reads the broker's CPU time over the
//     delivery and its VmRSS at the end.
//
// delivery_s is the time from writing the SUBSCRIBE to the last new topic
// received (the last of all when the storm is complete); rate is the
// distinct topics received over it; lost is -retained minus them. Brokers
// run interleaved; it prints one JSON line per run and a Markdown table of
// the medians with ratios to Mosquitto.
//
//	go run ./cmd/retainstorm -brokers tern,tern-sync,mosquitto,mochi -repeat 1
//
// relay keeps no retained messages and is left out. Run it from inside
// perf/: it builds Tern from ../ and mochi from peers/mochi.
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

// line is the JSON line printed per run. Another suite parses it: keep the
// field names and their meaning.
type line struct {
	Scenario string  `json:"scenario"`
	Broker   string  `json:"broker"`
	Round    int     `json:"round"`
	LoadAvg  float64 `json:"loadavg"` // the machine's 1-minute load average before the run
	result
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "retainstorm:", err)
		os.Exit(1)
	}
}

func run() error {
	brokers := flag.String("brokers", strings.Join(peers.Default, ","), "comma-separated brokers: "+strings.Join(peers.Names, ", ")+" (missing ones are skipped; relay keeps no retained messages)")
	repeat := flag.Int("repeat", 3, "rounds; each round runs every broker once")
	retained := flag.Int("retained", 100000, "retained messages, each on a topic of its own")
	payload := flag.Int("payload", 64, "payload bytes")
	qos := flag.Int("qos", 1, "QoS of the populating PUBLISHes (0 or 1); at 1 the broker has acknowledged each before the SUBSCRIBE")
	subQoS := flag.Int("sub-qos", 0, "QoS of the subscription to # (0 or 1; at 1 the subscriber PUBACKs each message)")
	timeout := flag.Duration("timeout", 60*time.Second, "bound on the delivery, and on the populate")
	stall := flag.Duration("stall", 5*time.Second, "end the delivery once nothing new arrived this long after the first message (0: wait for -timeout)")
	sources := flag.Int("source-addrs", 8, "spread connections over 127.0.0.1 .. 127.0.0.N")
	ternArgs := flag.String("tern-args", "", "extra space-separated arguments for every Tern variant, for diagnosis (e.g. \"--max-outbound-bytes 67108864\")")
	flag.Parse()
	if *retained < 1 || *payload < 0 || *qos < 0 || *qos > 1 || *subQoS < 0 || *subQoS > 1 ||
		*sources < 1 || *sources > 254 || *timeout <= 0 || *stall < 0 || *repeat < 1 {
		return errors.New("bad -retained, -payload, -qos, -sub-qos, -source-addrs, -timeout, -stall or -repeat")
	}

	var names []string
	for _, n := range strings.Split(*brokers, ",") {
		if n = strings.TrimSpace(n); n == "relay" {
			fmt.Fprintln(os.Stderr, "retainstorm: skipping relay: it keeps no retained messages")
			continue
		}
		names = append(names, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ps, cleanup, err := peers.PrepareAll(ctx, strings.Join(names, ","), "retainstorm")
	if err != nil {
		return err
	}
	defer cleanup()
	for _, p := range ps {
		if strings.HasPrefix(p.Name, "tern") {
			p.ExtraArgs = strings.Fields(*ternArgs)
		}
	}
	fmt.Fprintf(os.Stderr, "retainstorm: %d rounds × %d brokers: %d retained messages of %d B at QoS %d, then # at QoS %d\n",
		*repeat, len(ps), *retained, *payload, *qos, *subQoS)

	var lines []line
	enc := json.NewEncoder(os.Stdout)
	for round := 1; round <= *repeat; round++ {
		for _, p := range ps {
			l := line{Scenario: "retained-storm", Broker: p.Name, Round: round, LoadAvg: loadgen.LoadAverage()}
			o := options{Retained: *retained, Payload: *payload, QoS: byte(*qos), SubQoS: byte(*subQoS),
				Sources: *sources, Timeout: *timeout, Stall: *stall, ClientID: fmt.Sprintf("storm-%d", round)}
			err := p.With("retainstorm", os.Stderr, func(b *peers.Broker) (err error) {
				o.Addr, o.BrokerPID = b.Addr, b.PID
				l.result, err = measure(ctx, o)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s round %d: %w", p.Name, round, err)
			}
			report(os.Stderr, l)
			lines = append(lines, l)
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
	}
	fmt.Println()
	printTable(os.Stdout, shape(*retained, *payload, *qos, *subQoS), ps, lines)
	var loads []float64
	for _, l := range lines {
		loads = append(loads, l.LoadAvg)
	}
	fmt.Printf("\n%s\n", loadgen.LoadRange(loads, "run"))
	return nil
}

// report writes what the JSON line leaves out: how the delivery ended and
// anything wrong with what arrived.
func report(w io.Writer, l line) {
	quiet := fmt.Sprintf("quiescent after %.1f s", l.QuiesceSecs)
	if !l.Quiesced {
		quiet = fmt.Sprintf("NOT quiescent after %.1f s (%.0f%% of a CPU)", l.QuiesceSecs, 100*l.IdleCPUShare)
	}
	fmt.Fprintf(w, "retainstorm: %s round %d: populated in %.2f s, %s; delivery %s: %d of %d topics, first after %.3f s, last after %.3f s",
		l.Broker, l.Round, l.PublishSecs, quiet, l.End, int64(l.Retained)-l.Lost, l.Retained, l.FirstSecs, l.DeliverySecs)
	for _, c := range []struct {
		n    int64
		what string
	}{{l.Lost, "lost"}, {l.Duplicates, "duplicates"}, {l.NotRetained, "without RETAIN"}, {l.Unexpected, "on unexpected topics"}} {
		if c.n != 0 {
			fmt.Fprintf(w, "; %d %s", c.n, c.what)
		}
	}
	fmt.Fprintln(w)
}

// shape describes the runs for the table's title.
func shape(retained, payload, qos, subQoS int) string {
	return fmt.Sprintf("%d retained messages of %d B populated at QoS %d, one subscriber on # at QoS %d", retained, payload, qos, subQoS)
}

// printTable writes a Markdown table of the medians of every column, each
// taken on its own, and the ratio of the rate to Mosquitto's.
func printTable(w io.Writer, title string, ps []*peers.Peer, lines []line) {
	type row struct {
		pub, del, rate, recv, lost, dups, cpu, rss, after float64
		ends                                              string
	}
	rows := map[string]row{}
	for _, p := range ps {
		mine := slices.DeleteFunc(slices.Clone(lines), func(l line) bool { return l.Broker != p.Name })
		m := func(f func(line) float64) float64 { return stats.Median(mine, f) }
		rows[p.Name] = row{
			pub:   m(func(l line) float64 { return l.PublishSecs }),
			del:   m(func(l line) float64 { return l.DeliverySecs }),
			rate:  m(func(l line) float64 { return l.Rate }),
			recv:  m(func(l line) float64 { return float64(l.Received) }),
			lost:  m(func(l line) float64 { return float64(l.Lost) }),
			dups:  m(func(l line) float64 { return float64(l.Duplicates) }),
			cpu:   m(func(l line) float64 { return l.CPUPerMsg }),
			rss:   m(func(l line) float64 { return float64(l.RSS) }),
			after: m(func(l line) float64 { return float64(l.RSSAfter) }),
			ends:  ends(mine),
		}
	}
	base, haveBase := rows["mosquitto"]
	ratio := func(a, b float64) string {
		if !haveBase || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	fmt.Fprintf(w, "retained storm: %s; medians of %d rounds\n\n", title, len(lines)/len(ps))
	fmt.Fprintln(w, "| broker | populate s | delivery s | msg/s | received | lost | duplicates | delivery end | broker CPU µs/msg | RSS before | RSS after | msg/s ÷ Mosquitto |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	mib := func(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
	for _, p := range ps {
		r := rows[p.Name]
		fmt.Fprintf(w, "| %s | %.2f | %.3f | %.0f | %.0f | %.0f | %.0f | %s | %.2f | %s | %s | %s |\n",
			p.Name, r.pub, r.del, r.rate, r.recv, r.lost, r.dups, r.ends, r.cpu, mib(r.rss), mib(r.after), ratio(r.rate, base.rate))
	}
	fmt.Fprintln(w, "\nmsg/s is distinct topics received over delivery s, which ends at the last one received: where lost > 0 the broker dropped part of the storm and the rate is of what arrived.")
}

// ends lists how the runs' deliveries ended, with counts when they differ.
func ends(lines []line) string {
	count := map[string]int{}
	var order []string
	for _, l := range lines {
		// "closed by the broker (reason)": the reasons stay on stderr.
		e, _, _ := strings.Cut(l.End, " (")
		if count[e] == 0 {
			order = append(order, e)
		}
		count[e]++
	}
	if len(order) == 1 {
		return order[0]
	}
	parts := make([]string, len(order))
	for i, e := range order {
		parts[i] = fmt.Sprintf("%s ×%d", e, count[e])
	}
	return strings.Join(parts, ", ")
}
