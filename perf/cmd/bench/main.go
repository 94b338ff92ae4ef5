// Command bench runs one load scenario against several brokers, interleaved
// (tern, mosquitto, mochi, tern, ...) so that the machine's noise hits all of
// them alike, prints one JSON line per run and then a Markdown table of the
// medians with ratios against Mosquitto and against memory-only Tern.
//
//	go run ./cmd/bench -scenario fanin-qos0 -brokers tern,mosquitto,mochi -duration 5s -repeat 3
//
// The durable Terns (tern-sync, tern-batch, tern-none: a fresh data directory
// per run) store QoS 1 deliveries only for persistent sessions, so compare
// them with -persistent sub (subscribers connect with Clean Session 0), which
// applies to every broker of the run alike:
//
//	go run ./cmd/bench -scenario fanin-qos1 -persistent sub -brokers tern,tern-sync,tern-batch,tern-none,mosquitto
//
// Add relay (peers/relay: PUBLISH bytes copied verbatim to every subscriber,
// the ceiling of the machine and the load generator) to read each broker's
// rate as a fraction of it, in the table's last column:
//
//	go run ./cmd/bench -scenario fanin-qos0 -brokers tern,relay,mosquitto
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
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/peers"
)

// scenario is a named load shape; Duration, Warmup and the broker address are
// filled in per run.
type scenario struct {
	name     string
	desc     string
	o        loadgen.Options
	sessions string // the -persistent flag, for the table's title
}

var scenarios = []scenario{
	{name: "fanin-qos0", desc: "fan-in QoS 0, 8 publishers → 1 subscriber on bench/+, 64 B",
		o: loadgen.Options{Publishers: 8, Subscribers: 1, QoS: 0, PayloadSize: 64}},
	{name: "fanin-qos1", desc: "fan-in QoS 1, 8 publishers → 1 subscriber on bench/+, 64 B, window 64",
		o: loadgen.Options{Publishers: 8, Subscribers: 1, QoS: 1, PayloadSize: 64, Window: 64}},
	{name: "fanout-qos0", desc: "fan-out QoS 0, 1 publisher → 50 subscribers on bench/+, 64 B",
		o: loadgen.Options{Publishers: 1, Subscribers: 50, QoS: 0, PayloadSize: 64}},
	// Window 16: Mosquitto drops a publisher with more than
	// max_inflight_messages (default 20) incomplete incoming QoS 2 messages.
	{name: "fanin-qos2", desc: "fan-in QoS 2, 8 publishers → 1 subscriber on bench/+, 64 B, window 16, duplicates counted",
		o: loadgen.Options{Publishers: 8, Subscribers: 1, QoS: 2, PayloadSize: 64, Window: 16}},
	{name: "fanin-qos0-4k", desc: "fan-in QoS 0, 8 publishers → 1 subscriber on bench/+, 4 KiB",
		o: loadgen.Options{Publishers: 8, Subscribers: 1, QoS: 0, PayloadSize: 4096}},
	{name: "fanout-qos1", desc: "fan-out QoS 1, 1 publisher → 50 subscribers on bench/+, 64 B, window 64",
		o: loadgen.Options{Publishers: 1, Subscribers: 50, QoS: 1, PayloadSize: 64, Window: 64}},
	{name: "fanout1000-qos0", desc: "fan-out QoS 0, 1 publisher → 1000 subscribers on bench/+, 64 B",
		o: loadgen.Options{Publishers: 1, Subscribers: 1000, QoS: 0, PayloadSize: 64}},
	{name: "p2p-qos1", desc: "point to point QoS 1, 100 pairs: publisher i → bench/p2p/i → subscriber i, 64 B, window 64",
		o: loadgen.Options{Publishers: 100, Subscribers: 100, Pairs: true, TopicPrefix: "bench/p2p/", QoS: 1, PayloadSize: 64, Window: 64}},
	{name: "shared-qos1", desc: "shared QoS 1, 8 publishers → 4 subscribers in $share/g/bench/+, 64 B, window 64, duplicates counted across the group",
		o: loadgen.Options{Publishers: 8, Subscribers: 4, Filter: "$share/g/bench/+", QoS: 1, PayloadSize: 64, Window: 64}},
}

// line is the JSON line printed per run.
type line struct {
	Scenario string `json:"scenario"`
	Broker   string `json:"broker"`
	Round    int    `json:"round"`
	// LoadAvg is the machine's 1-minute load average before the run: the
	// machine is shared, and what else ran shows in it.
	LoadAvg float64 `json:"loadavg"`
	loadgen.Result
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	scen := flag.String("scenario", "fanin-qos0", "scenario: "+strings.Join(names, ", "))
	brokers := flag.String("brokers", strings.Join(peers.Default, ","), "comma-separated brokers to compare: "+strings.Join(peers.Names, ", "))
	duration := flag.Duration("duration", 5*time.Second, "measured interval of each run")
	warmup := flag.Duration("warmup", time.Second, "load before each measured interval")
	repeat := flag.Int("repeat", 3, "rounds; each round runs every broker once")
	sources := flag.Int("source-addrs", 8, "spread connections over 127.0.0.1 .. 127.0.0.N")
	ternArgs := flag.String("tern-args", "", "extra space-separated arguments for every Tern variant, for diagnosis (e.g. \"--max-queued-messages 0\")")
	window := flag.Int("window", 0, "QoS 1/2 messages each publisher keeps in flight (0: the scenario's)")
	profile := flag.String("profile", "", "directory for pprof profiles of every Tern run: CPU over the measured interval and allocations, served by tern serve --pprof-listen (empty: none)")
	persistent := flag.String("persistent", "none", "clients that connect with Clean Session 0, for every broker: none, sub (subscribers) or all (publishers too)")
	flag.Parse()

	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == *scen })
	if i < 0 {
		return fmt.Errorf("unknown scenario %q (known: %s)", *scen, strings.Join(names, ", "))
	}
	sc := scenarios[i]
	if *window > 0 {
		sc.o.Window = *window
		sc.desc += fmt.Sprintf(" (window set to %d)", *window)
	}
	switch *persistent {
	case "none":
	case "sub":
		sc.o.PersistentSubscribers = true
	case "all":
		sc.o.PersistentSubscribers, sc.o.PersistentPublishers = true, true
	default:
		return fmt.Errorf("-persistent %q: want none, sub or all", *persistent)
	}
	sc.sessions = *persistent

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			return err
		}
	}
	ps, cleanup, err := peers.PrepareAll(ctx, *brokers, "bench")
	if err != nil {
		return err
	}
	defer cleanup()
	for _, p := range ps {
		if strings.HasPrefix(p.Name, "tern") && *ternArgs != "" {
			p.ExtraArgs = strings.Fields(*ternArgs)
			fmt.Fprintf(os.Stderr, "bench: %s with %s\n", p.Name, *ternArgs)
		}
	}
	if !sc.o.PersistentSubscribers && slices.ContainsFunc(ps, func(p *peers.Peer) bool { return p.Durability != "" }) {
		fmt.Fprintln(os.Stderr, "bench: warning: subscribers use clean sessions, whose deliveries a durable Tern need not store; -persistent sub measures the store")
	}
	fmt.Fprintf(os.Stderr, "bench: %s: %s; %d rounds × %d brokers of %v + %v warm-up\n",
		sc.name, sc.desc, *repeat, len(ps), *duration, *warmup)

	results := map[string][]loadgen.Result{}
	var loads []float64
	enc := json.NewEncoder(os.Stdout)
	for round := 1; round <= *repeat; round++ {
		for _, p := range ps {
			load := loadgen.LoadAverage()
			loads = append(loads, load)
			res, err := runOne(ctx, p, sc, *duration, *warmup, *sources, profileDir(*profile, p, sc, round))
			if err != nil {
				return fmt.Errorf("%s round %d: %w", p.Name, round, err)
			}
			results[p.Name] = append(results[p.Name], res)
			if res.Duplicates != 0 || res.Misrouted != 0 {
				fmt.Fprintf(os.Stderr, "bench: %s round %d: %d duplicate and %d misrouted deliveries of %d\n",
					p.Name, round, res.Duplicates, res.Misrouted, res.Received)
			}
			if err := enc.Encode(line{Scenario: sc.name, Broker: p.Name, Round: round, LoadAvg: load, Result: res}); err != nil {
				return err
			}
		}
	}
	fmt.Println()
	printTable(os.Stdout, sc, ps, results)
	fmt.Printf("\n%s\n", loadgen.LoadRange(loads, "run"))
	return nil
}

// profileDir is the file name prefix of one run's profiles, or "" when the
// run is not profiled (no -profile, or not a Tern).
func profileDir(dir string, p *peers.Peer, sc scenario, round int) string {
	if dir == "" || !strings.HasPrefix(p.Name, "tern") {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s-r%d", sc.name, p.Name, round))
}

// runOne starts a fresh broker, runs the scenario against it and stops it.
// With prof set, the broker serves its profiles on a loopback port, and the
// CPU profile of the measured interval and the allocation profile at its end
// are written to prof+".cpu.pprof" and prof+".allocs.pprof".
func runOne(ctx context.Context, p *peers.Peer, sc scenario, duration, warmup time.Duration, sources int, prof string) (loadgen.Result, error) {
	var paddr string
	if prof != "" {
		var err error
		if paddr, err = peers.FreePort(); err != nil {
			return loadgen.Result{}, err
		}
		saved := p.ExtraArgs
		p.ExtraArgs = append(slices.Clip(saved), "--pprof-listen", paddr)
		defer func() { p.ExtraArgs = saved }()
	}
	b, err := p.Start()
	if err != nil {
		return loadgen.Result{}, err
	}
	o := sc.o
	o.Addr, o.BrokerPID, o.Duration, o.Warmup, o.SourceAddrs = b.Addr, b.PID, duration, warmup, sources
	o.TLS = p.ClientTLS
	cpuDone := make(chan error, 1)
	if prof != "" {
		go func() {
			time.Sleep(warmup)
			cpuDone <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", paddr, max(1, int(duration.Seconds()))), prof+".cpu.pprof")
		}()
	}
	res, err := loadgen.Run(ctx, o)
	if prof != "" {
		perr := <-cpuDone
		if perr == nil {
			perr = fetchProfile(ctx, "http://"+paddr+"/debug/pprof/allocs", prof+".allocs.pprof")
		}
		if perr != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", perr)
		}
	}
	if stopErr := b.Stop(); err == nil && stopErr != nil {
		fmt.Fprintln(os.Stderr, "bench:", stopErr)
	}
	return res, err
}

// fetchProfile writes what url serves to file.
func fetchProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
