package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/peers"
	"github.com/tern-mqtt/tern/perf/stats"
)

// printTable writes a Markdown table of the medians of every column, each
// taken on its own, and the ratios of the medians to Mosquitto's and, when it
// ran, to memory-only Tern's (what a durable Tern costs) and to the relay's
// (the ceiling: what fraction of it a broker reaches). The drain column
// lists each run's loadgen.Result.DrainEnd: "timeout" means Lost includes a
// backlog the broker was still delivering.
func printTable(w io.Writer, sc scenario, ps []*peers.Peer, results map[string][]loadgen.Result) {
	type row struct{ rate, sent, loss, cpu, cores, stalls float64 }
	rows := map[string]row{}
	for _, p := range ps {
		rs := results[p.Name]
		rows[p.Name] = row{
			rate:  stats.Median(rs, func(r loadgen.Result) float64 { return r.Throughput }),
			sent:  stats.Median(rs, func(r loadgen.Result) float64 { return r.SendRate }),
			loss:  stats.Median(rs, func(r loadgen.Result) float64 { return r.LossPct }),
			cpu:   stats.Median(rs, func(r loadgen.Result) float64 { return r.CPUPerMsg }),
			cores: stats.Median(rs, func(r loadgen.Result) float64 { return r.Cores }),
			stalls: stats.Median(rs, func(r loadgen.Result) float64 {
				return float64(r.MaxGap) / float64(time.Millisecond)
			}),
		}
	}
	base, haveBase := rows["mosquitto"]
	mem, haveMem := rows["tern"]
	relay, haveRelay := rows["relay"]
	fmt.Fprintf(w, "%s: %s; persistent sessions: %s; medians of %d runs\n\n",
		sc.name, sc.desc, cmp.Or(sc.sessions, "none"), len(results[ps[0].Name]))
	head, rule := "", ""
	if haveRelay {
		head, rule = " msg/s ÷ relay |", "---|"
	}
	fmt.Fprintln(w, "| broker | delivered msg/s | sent msg/s | lost | broker CPU µs/msg | broker cores | longest stall | drain end | msg/s ÷ Mosquitto | CPU/msg ÷ Mosquitto | msg/s ÷ tern |"+head)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|"+rule)
	ratioTo := func(have bool, a, b float64) string {
		if !have || b == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f×", a/b)
	}
	ratio := func(a, b float64) string { return ratioTo(haveBase, a, b) }
	for _, p := range ps {
		r := rows[p.Name]
		var ends []string
		for _, res := range results[p.Name] {
			ends = append(ends, res.DrainEnd)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.1f%% | %.2f | %.2f | %.0f ms | %s | %s | %s | %s |",
			p.Name, stats.SI(r.rate), stats.SI(r.sent), r.loss, r.cpu, r.cores, r.stalls, strings.Join(ends, " "),
			ratio(r.rate, base.rate), ratio(r.cpu, base.cpu), ratioTo(haveMem, r.rate, mem.rate))
		if haveRelay {
			fmt.Fprintf(w, " %s |", ratioTo(true, r.rate, relay.rate))
		}
		fmt.Fprintln(w)
	}
}
