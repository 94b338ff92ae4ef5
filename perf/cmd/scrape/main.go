// Command scrape measures what Tern's operations endpoints cost with many
// sessions. Per broker (memory-only "tern", and with -durable also
// "tern-sync": --data-dir, --durability sync), on one fresh broker started
// with --admin-listen on a free loopback port, it
//
//   - measures every endpoint with no client connected (the baseline, conns
//     0);
//   - opens -conns idle MQTT 3.1.1 connections (capped under the open-files
//     limit), each with a persistent session (Clean Session 0, client id
//     dev-<i>) subscribed to dev/<i>/cmd at QoS 1, checks /v1/stats counts
//     them, and measures every endpoint again with them open.
//
// An endpoint's measurement is one untimed request (it opens the HTTP
// connection, reused after, and fills /metrics' cache), then -requests
// sequential GETs, each timed from sending it to the last byte of its body;
// it reports the median and p90, the broker's CPU time (utime + stime from
// /proc/PID/stat, in 10 ms ticks) over the batch per request, and the size
// of the body. The endpoints:
//
//	GET /metrics
//	GET /v1/stats
//	GET /v1/sessions?limit=100
//	GET /v1/sessions?prefix=dev-1&limit=100
//	GET /v1/subscriptions?topic=dev/5/cmd
//
// /metrics (and /v1/stats, which shares the cache) walks every session for
// the queue totals at most once per 5 s (cmd/tern/metrics.go,
// queueTotalsMaxAge), so a batch mostly hits the cache. The row "/metrics
// (cold: walks every session)" is -cold single scrapes, each after 5.5 s
// without a request, and their median. Any request after an idle pause is
// slower than in a back-to-back batch (the broker and this process wake up),
// so each cold scrape is followed by a control, "/metrics (after 4.5 s idle,
// cached)": the same pause, but the totals the cold scrape read are still
// cached. Cold minus control is what the walk costs. The broker's CPU over
// those pauses, when nothing asks it anything, is printed after the table
// as its idle rate.
//
// It prints one JSON line per row and a Markdown table per broker.
//
//	go run ./cmd/scrape -conns 10000
//	go run ./cmd/scrape -conns 10000 -durable
//
// Run it from inside perf/: it builds Tern from ../.
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
)

// fdMargin is the number of descriptors under the open-files limit left for
// everything else, in this process and the broker's (as connrate).
const fdMargin = 500

// line is the JSON line printed per row.
type line struct {
	Broker  string  `json:"broker"`
	LoadAvg float64 `json:"loadavg"` // the machine's 1-minute load average before the broker started
	result
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scrape:", err)
		os.Exit(1)
	}
}

func run() error {
	conns := flag.Int("conns", 10000, "idle connections with persistent sessions to open (capped below the open-files limit; 0: the baseline only)")
	requests := flag.Int("requests", 50, "timed requests per endpoint and connection count")
	cold := flag.Int("cold", 3, "cold /metrics scrapes, each after 5.5 s idle and followed by a control after 4.5 s idle (10 s each; 0 skips them)")
	durable := flag.Bool("durable", false, "also run tern-sync (--data-dir, --durability sync) after the memory-only tern")
	keepAlive := flag.Duration("keepalive", 300*time.Second, "keep-alive of the idle connections (0 disables it)")
	sources := flag.Int("source-addrs", 8, "spread connections over 127.0.0.1 .. 127.0.0.N")
	timeout := flag.Duration("timeout", 5*time.Minute, "bound on the whole run, every broker included")
	ternArgs := flag.String("tern-args", "", "extra space-separated arguments for every Tern variant, for diagnosis")
	flag.Parse()
	if *conns < 0 || *requests < 1 || *cold < 0 || *sources < 1 || *sources > 254 ||
		*keepAlive < 0 || *keepAlive > 65535*time.Second || *timeout <= 0 {
		return errors.New("bad -conns, -requests, -cold, -source-addrs, -keepalive or -timeout")
	}

	limit, err := loadgen.RaiseNoFile()
	if err != nil {
		return err
	}
	if *conns > 0 && uint64(*conns)+fdMargin > limit {
		capped := int(limit) - fdMargin
		fmt.Fprintf(os.Stderr, "scrape: -conns %d capped to %d: the open-files limit is %d (for the broker too)\n", *conns, capped, limit)
		*conns = capped
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	names := "tern"
	if *durable {
		names += ",tern-sync"
	}
	ps, cleanup, err := peers.PrepareAll(ctx, names, "scrape")
	if err != nil {
		return err
	}
	defer cleanup()
	start := time.Now().UTC()
	fmt.Fprintf(os.Stderr, "scrape: %s: %d brokers: endpoints at 0 then %d connections (persistent, 1 QoS 1 subscription each), %d requests each, %d cold /metrics\n",
		start.Format(time.RFC3339), len(ps), *conns, *requests, *cold)

	enc := json.NewEncoder(os.Stdout)
	type report struct {
		peer  *peers.Peer
		rows  []result
		idle  []idleCPU
		loads float64
	}
	var reports []report
	for _, p := range ps {
		admin, err := peers.FreePort()
		if err != nil {
			return err
		}
		// Appended after peers' own --admin-listen "": the last one wins.
		p.ExtraArgs = append([]string{"--admin-listen", admin}, strings.Fields(*ternArgs)...)
		r := report{peer: p, loads: loadgen.LoadAverage()}
		err = p.With("scrape", os.Stderr, func(b *peers.Broker) error {
			m := &measurer{admin: "http://" + admin, pid: b.PID, requests: *requests, cold: *cold, progress: os.Stderr}
			defer m.close()
			if err := m.waitReady(ctx); err != nil {
				return err
			}
			rows, idle, err := m.all(ctx, 0)
			r.rows, r.idle = append(r.rows, rows...), append(r.idle, idle)
			if err != nil || *conns == 0 {
				return err
			}
			cs, err := openSessions(ctx, b.Addr, *conns, *sources, uint16(*keepAlive/time.Second), os.Stderr)
			defer cs.close()
			if err != nil {
				return err
			}
			if err := m.checkCounts(ctx, *conns); err != nil {
				return err
			}
			if rss, err := loadgen.ProcRSS(b.PID); err == nil {
				fmt.Fprintf(os.Stderr, "scrape: %s: %d sessions open, broker VmRSS %.1f MiB\n", p.Name, *conns, float64(rss)/(1<<20))
			}
			rows, idle, err = m.all(ctx, *conns)
			r.rows, r.idle = append(r.rows, rows...), append(r.idle, idle)
			if err == nil {
				err = cs.dropped()
			}
			return err
		})
		for _, row := range r.rows {
			if err := enc.Encode(line{Broker: p.Name, LoadAvg: r.loads, result: row}); err != nil {
				return err
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		reports = append(reports, r)
	}
	var loads []float64
	for _, r := range reports {
		fmt.Println()
		printTable(os.Stdout, r.peer, *requests, *cold, r.rows, r.idle)
		loads = append(loads, r.loads)
	}
	fmt.Printf("\nStarted %s. %s\n", start.Format(time.RFC3339), loadgen.LoadRange(loads, "broker"))
	return nil
}

// printTable writes the Markdown table of one broker's rows, each endpoint's
// baseline and loaded rows together.
func printTable(w io.Writer, p *peers.Peer, requests, cold int, rows []result, idle []idleCPU) {
	fmt.Fprintf(w, "scrape: %s (%s): %d sequential requests per endpoint (median, p90); cold and control: %d scrapes each, alternating after 5.5 s and 4.5 s idle; broker CPU from /proc utime+stime (10 ms ticks)\n\n",
		p.Name, p.Version, requests, cold)
	fmt.Fprintln(w, "| endpoint | conns | median ms | p90 ms | broker CPU ms/request | bytes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	var order []string
	for _, r := range rows {
		if !slices.Contains(order, r.Endpoint) {
			order = append(order, r.Endpoint)
		}
	}
	for _, e := range order {
		for _, r := range rows {
			if r.Endpoint == e {
				fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.2f | %d |\n", r.Endpoint, r.Conns, r.MedianMs, r.P90Ms, r.CPUMsPerReq, r.Bytes)
			}
		}
	}
	sep := "\n"
	for _, i := range idle {
		if i.Seconds > 0 {
			fmt.Fprintf(w, "%sBroker CPU while idle (over the pauses before the cold and control scrapes, %.1f s) at %d conns: %.2f ms/s.\n", sep, i.Seconds, i.Conns, i.MsPerSec)
			sep = ""
		}
	}
}
