// Command suite runs every benchmark of perf/ in turn and writes a report:
// the nine bench scenarios against -brokers, the durable QoS 1 fan-in
// (tern, tern-sync and mosquitto with persistent subscribers), latency,
// connrate and retainstorm (skipped in a tree without perf/cmd/retainstorm).
// It builds each command once,
// runs it with the suite's -brokers, -repeat and -duration, passes its
// stderr through and keeps its stdout, then writes into -out:
//
//   - runs.jsonl: every JSON line the commands printed, unchanged, each
//     wrapped as {"scenario":…,"command":…,"run":<the line>};
//   - <scenario>.txt: each command's stdout, its own tables included;
//   - suite.json: the machine, the command lines and how each step went;
//   - report.md with throughput.svg, cpu.svg and latency.svg (package
//     report).
//
// Run it from inside perf/ (the commands build Tern from ../):
//
//	go run ./cmd/suite                                  # about 30 minutes
//	go run ./cmd/suite -only fanin-qos0,latency -repeat 1
//	go run ./cmd/suite -from results/suite-2026-11-27T120000Z   # re-render only
//
// A failed step does not stop the suite: its lines so far are kept, the
// report says it failed, and the suite exits 1 at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/report"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "suite:", err)
		os.Exit(1)
	}
}

// step is one command run of the suite.
type step struct {
	name    string   // the scenario's name in -only, runs.jsonl and <name>.txt
	command string   // its directory under perf/cmd
	args    []string // after the program name
	// estimate is what the step should take, for the ETA; only the ratios
	// between steps matter, as the ETA scales it by how the steps so far
	// compared with theirs.
	estimate time.Duration
}

// benchScenarios are cmd/bench's scenarios, in the order the suite runs
// them.
var benchScenarios = []string{"fanin-qos0", "fanin-qos1", "fanin-qos2", "fanin-qos0-4k",
	"fanout-qos0", "fanout-qos1", "fanout1000-qos0", "p2p-qos1", "shared-qos1"}

// durableBrokers are the brokers of the durable QoS 1 fan-in, whatever
// -brokers says: it measures what Tern's store costs against memory-only
// Tern and Mosquitto.
const durableBrokers = "tern,tern-sync,mosquitto"

// Per-run costs beyond -duration, for the estimates: bench's 1 s warm-up,
// a drain of up to 5 s and the broker's start and stop; latency's warm-up;
// connrate's 10,000 idle connections.
const (
	benchOverhead    = 6 * time.Second
	latencyOverhead  = 2 * time.Second
	connrateOverhead = 10 * time.Second
	retainstormRun   = 10 * time.Second
	stepOverhead     = 5 * time.Second // building the brokers
)

// steps returns the suite: every bench scenario, the durable fan-in,
// latency, connrate and retainstorm.
func steps(brokers string, repeat int, duration time.Duration) []step {
	n := time.Duration(len(strings.Split(brokers, ",")) * repeat)
	common := []string{"-brokers", brokers, "-repeat", fmt.Sprint(repeat)}
	d := []string{"-duration", duration.String()}
	var ss []step
	for _, sc := range benchScenarios {
		ss = append(ss, step{name: sc, command: "bench",
			args:     slices.Concat([]string{"-scenario", sc}, common, d),
			estimate: stepOverhead + n*(duration+benchOverhead)})
	}
	ss = append(ss,
		step{name: "fanin-qos1-durable", command: "bench",
			args: slices.Concat([]string{"-scenario", "fanin-qos1", "-persistent", "sub",
				"-brokers", durableBrokers, "-repeat", fmt.Sprint(repeat)}, d),
			estimate: stepOverhead + time.Duration(3*repeat)*(duration+benchOverhead)},
		step{name: "latency", command: "latency", args: slices.Concat(common, d),
			estimate: stepOverhead + 2*n*(duration+latencyOverhead)},
		step{name: "connrate", command: "connrate", args: slices.Concat(common, d),
			estimate: stepOverhead + n*(duration+connrateOverhead)},
		step{name: "retainstorm", command: "retainstorm", args: common,
			estimate: stepOverhead + n*retainstormRun},
	)
	return ss
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for _, s := range steps("tern", 1, 0) {
		names = append(names, s.name)
	}
	brokers := fs.String("brokers", "tern,mosquitto,mochi,relay", "comma-separated brokers for every scenario but the durable fan-in ("+durableBrokers+"); missing ones are skipped")
	repeat := fs.Int("repeat", 3, "rounds of each command")
	duration := fs.Duration("duration", 5*time.Second, "measured interval of each bench, latency and connrate run")
	only := fs.String("only", "", "comma-separated scenarios to run, of: "+strings.Join(names, ", "))
	out := fs.String("out", "", "directory for the results (default results/suite-<UTC date and time>)")
	from := fs.String("from", "", "run nothing: render the report again from the runs.jsonl and suite.json in this directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	if *from != "" {
		m, lines, err := report.Load(*from)
		if err != nil {
			return err
		}
		if err := report.Render(*from, m, lines); err != nil {
			return err
		}
		fmt.Fprintln(stdout, filepath.Join(*from, report.ReportFile))
		return nil
	}

	if *repeat < 1 || *duration <= 0 {
		return errors.New("-repeat and -duration must be positive")
	}
	todo := steps(*brokers, *repeat, *duration)
	if *only != "" {
		want := strings.Split(*only, ",")
		for i, w := range want {
			w = strings.TrimSpace(w)
			want[i] = w
			if !slices.Contains(names, w) {
				return fmt.Errorf("-only: unknown scenario %q (known: %s)", w, strings.Join(names, ", "))
			}
		}
		todo = slices.DeleteFunc(todo, func(s step) bool { return !slices.Contains(want, s.name) })
	}
	if *out == "" {
		*out = filepath.Join("results", "suite-"+time.Now().UTC().Format("2006-01-02T150405Z"))
	}
	return runSuite(ctx, todo, *out, args, stdout, stderr)
}

// runSuite runs the steps, then renders the report, even after a failed or
// interrupted step, from the lines that came.
func runSuite(ctx context.Context, todo []step, out string, args []string, stdout, stderr io.Writer) error {
	root, err := goList(ctx, ".", "github.com/tern-mqtt/tern/perf")
	if err != nil {
		return err
	}
	m := report.Meta{Started: time.Now().UTC(), Args: args}
	// Scenarios whose command is not there yet are skipped, not failed: the
	// suite runs on trees that predate a command.
	var commands []string
	for _, s := range todo {
		if _, err := os.Stat(filepath.Join(root, "cmd", s.command)); err != nil {
			fmt.Fprintf(stderr, "suite: skipping %s: perf/cmd/%s does not exist\n", s.name, s.command)
			continue
		}
		if !slices.Contains(commands, s.command) {
			commands = append(commands, s.command)
		}
	}

	bin, err := os.MkdirTemp("", "tern-suite-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	fmt.Fprintf(stderr, "suite: building %s\n", strings.Join(commands, ", "))
	if err := build(ctx, root, bin, commands); err != nil {
		return err
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	runs, err := os.Create(filepath.Join(out, report.RunsFile))
	if err != nil {
		return err
	}
	defer runs.Close()
	m.Machine = machine(ctx, root)

	var done, doneEstimate, left time.Duration
	for _, s := range todo {
		left += s.estimate
	}
	var failed []string
	for i, s := range todo {
		sm := report.Scenario{Name: s.name, Command: slices.Concat([]string{"go", "run", "./cmd/" + s.command}, s.args)}
		if !slices.Contains(commands, s.command) {
			sm.Command, sm.Skipped = nil, "perf/cmd/"+s.command+" does not exist"
			m.Scenarios = append(m.Scenarios, sm)
			left -= s.estimate
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "suite: [%d/%d] %s: %s (elapsed %v, ETA %s)\n", i+1, len(todo), s.name,
			strings.Join(sm.Command[2:], " "), time.Since(m.Started).Round(time.Second), eta(done, doneEstimate, left))
		start := time.Now()
		err := runStep(ctx, filepath.Join(bin, s.command), root, s, out, runs, stderr)
		sm.Seconds = time.Since(start).Seconds()
		if err != nil {
			sm.Error = err.Error()
			failed = append(failed, s.name)
			fmt.Fprintf(stderr, "suite: %s failed: %v\n", s.name, err)
		}
		m.Scenarios = append(m.Scenarios, sm)
		done += time.Since(start)
		doneEstimate += s.estimate
		left -= s.estimate
		// After each step, so that an interrupted suite can still be
		// rendered with -from.
		if err := report.SaveMeta(out, m); err != nil {
			return err
		}
	}
	m.Finished = time.Now().UTC()
	if err := report.SaveMeta(out, m); err != nil {
		return err
	}
	if err := runs.Close(); err != nil {
		return err
	}
	_, lines, err := report.Load(out)
	if err != nil {
		return err
	}
	if err := report.Render(out, m, lines); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "suite: done in %v\n", m.Finished.Sub(m.Started).Round(time.Second))
	fmt.Fprintln(stdout, filepath.Join(out, report.ReportFile))
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted; the report covers what ran: %w", ctx.Err())
	case failed != nil:
		return fmt.Errorf("failed: %s (see %s)", strings.Join(failed, ", "), filepath.Join(out, report.ReportFile))
	}
	return nil
}

// eta is the time the steps left should take: their estimate scaled by how
// long the steps done took against theirs.
func eta(done, doneEstimate, left time.Duration) string {
	if doneEstimate > 0 {
		left = time.Duration(float64(left) * float64(done) / float64(doneEstimate))
	}
	return "~" + left.Round(time.Second).String()
}
