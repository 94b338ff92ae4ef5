// Command recoverbench measures how long Tern takes to recover a large data
// directory on start, and how much memory it holds afterwards.
//
// It populates a data directory once, directly through the wal package (no
// broker involved): -sessions persistent 3.1.1 sessions, each with -subs
// subscriptions and -queued queued QoS 1 messages whose bodies the sessions
// share, and -retained retained messages of 64 B on topics
// site/S/dev/D/temp. Then, -repeat times, it starts the real broker (built
// from ../cmd/tern) on that directory and a loopback port and measures the
// time from the process's start until a CONNECT gets its CONNACK, reads the
// broker's resident memory (VmRSS, and the peak VmHWM) from /proc, checks a
// sample (stored sessions resume with session present and their queued
// messages; a retained message comes back on SUBSCRIBE), and stops it. The
// broker's log lines are captured and printed with the time they came, to
// show the progress it logs while recovering. It prints the medians and one
// JSON line.
//
//	go run ./cmd/recoverbench                      # 100k sessions, 1M retained
//	go run ./cmd/recoverbench -sessions 1000 -retained 10000 -repeat 1
//
// Run it from inside perf/. The data directory is removed at the end unless
// -keep is given; -dir reuses a directory kept by an earlier run with the same
// -sessions, -subs, -queued and -retained (the checks do not acknowledge
// what they receive, so the stored state stays as populated).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/peers"
	"github.com/tern-mqtt/tern/perf/stats"
)

// goal is the bound on recovery of 100k sessions and 1M retained
// messages on the development machine.
const goal = 10 * time.Second

// run is what one start of the broker measured; times in seconds, sizes in
// MiB.
type run struct {
	TCP         float64 `json:"tcp_s"`           // start until a TCP connection is accepted
	Ready       float64 `json:"ready_s"`         // start until a CONNECT gets its CONNACK
	CPU         float64 `json:"cpu_s"`           // the broker's CPU time (user+system) once ready
	LoadAvg     float64 `json:"loadavg"`         // the machine's 1-minute load average before the start
	RSS         float64 `json:"rss_mib"`         // VmRSS once ready
	HWM         float64 `json:"rss_peak_mib"`    // VmHWM once ready: the peak of recovery
	Stop        float64 `json:"stop_s"`          // SIGTERM until exit
	LinesBefore int     `json:"log_lines_ready"` // log lines written before it was ready
	Check       string  `json:"check"`           // "ok" or what failed
	lines       []logLine
}

// report is the JSON line; times in seconds, sizes in MiB.
type report struct {
	Sessions     int     `json:"sessions"`
	Subs         int     `json:"subs_per_session"`
	Queued       int     `json:"queued_per_session"`
	Bodies       int     `json:"message_bodies"` // 0 when -dir reused a directory
	Retained     int     `json:"retained"`
	Data         float64 `json:"data_mib"`
	Populate     float64 `json:"populate_s"` // 0 when -dir reused a directory
	Durability   string  `json:"durability"`
	Runs         []run   `json:"runs"`
	ReadyMedian  float64 `json:"ready_median_s"`
	CPUMedian    float64 `json:"cpu_median_s"`
	RSSMedian    float64 `json:"rss_median_mib"`
	HWMMedian    float64 `json:"rss_peak_median_mib"`
	ChecksPassed bool    `json:"checks_passed"`
	GoalMet      bool    `json:"goal_met"` // every start ready within the goal, every check passed
}

func main() {
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "recoverbench:", err)
		os.Exit(1)
	}
}

func mainErr() error {
	var l layout
	flag.IntVar(&l.sessions, "sessions", 100_000, "persistent sessions to store")
	flag.IntVar(&l.subs, "subs", 2, "subscriptions per session")
	flag.IntVar(&l.queued, "queued", 3, "queued QoS 1 messages per session (bodies shared by 1000 sessions)")
	flag.IntVar(&l.retained, "retained", 1_000_000, "retained messages to store (64 B each)")
	repeat := flag.Int("repeat", 3, "broker starts on the populated directory")
	keep := flag.Bool("keep", false, "keep the data directory (and the built broker) and print where")
	dir := flag.String("dir", "", "reuse this data directory, kept by an earlier run with the same layout flags, instead of populating")
	durability := flag.String("durability", "sync", "the broker's --durability")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up on a start that has not answered CONNECT after this long")
	populateOnly := flag.Bool("populate-only", false, "populate, report and stop (with -keep, for a later -dir)")
	flag.Parse()
	if l.sessions < 0 || l.subs < 0 || l.queued < 0 || l.retained < 0 || *repeat < 1 {
		return errors.New("negative count or -repeat < 1")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "tern-recoverbench-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "recoverbench: keeping", work)
	} else {
		defer os.RemoveAll(work)
	}

	rep := report{Sessions: l.sessions, Subs: l.subs, Queued: l.queued, Retained: l.retained, Durability: *durability}
	var bin string
	if !*populateOnly {
		if bin, err = peers.BuildTern(ctx, work); err != nil {
			return err
		}
		if !peers.TernServeHas(ctx, bin, "data-dir") {
			return errors.New("this tern has no --data-dir yet: nothing to recover (-populate-only still works)")
		}
	}

	data := *dir
	if data == "" {
		data = filepath.Join(work, "data")
		fmt.Fprintf(os.Stderr, "recoverbench: populating %s: %d sessions × (%d subscriptions, %d queued), %d retained\n",
			data, l.sessions, l.subs, l.queued, l.retained)
		pop, err := populate(data, l, func(s string) { fmt.Fprintln(os.Stderr, "recoverbench: populated", s) })
		if err != nil {
			return err
		}
		rep.Populate, rep.Data, rep.Bodies = pop.Elapsed.Seconds(), mib(pop.Bytes), pop.Bodies
	} else {
		n, err := dirSize(data)
		if err != nil {
			return err
		}
		rep.Data = mib(n)
	}
	fmt.Fprintf(os.Stderr, "recoverbench: data directory %s: %.1f MiB (populated in %.2f s)\n", data, rep.Data, rep.Populate)
	if *populateOnly {
		return nil
	}

	adminOff := peers.TernServeHas(ctx, bin, "admin-listen")
	if peers.TernServeHas(ctx, bin, "allow-anonymous") { // off by default since issue 6
		extraServeArgs = append(extraServeArgs, "--allow-anonymous")
	}
	rep.ChecksPassed = true
	for r := range *repeat {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res, err := startOnce(bin, data, *durability, adminOff, l, r, *repeat, *timeout)
		if err != nil {
			return fmt.Errorf("run %d: %w", r+1, err)
		}
		printRun(r+1, res)
		rep.Runs = append(rep.Runs, res)
		rep.ChecksPassed = rep.ChecksPassed && res.Check == "ok"
	}

	rep.ReadyMedian = stats.Median(rep.Runs, func(r run) float64 { return r.Ready })
	rep.CPUMedian = stats.Median(rep.Runs, func(r run) float64 { return r.CPU })
	rep.RSSMedian = stats.Median(rep.Runs, func(r run) float64 { return r.RSS })
	rep.HWMMedian = stats.Median(rep.Runs, func(r run) float64 { return r.HWM })
	rep.GoalMet = rep.ChecksPassed && !slices.ContainsFunc(rep.Runs, func(r run) bool { return r.Ready > goal.Seconds() })
	fmt.Printf("recovery of %d sessions (%d subscriptions, %d queued each) and %d retained messages, %.1f MiB on disk, --durability %s:\n",
		l.sessions, l.subs, l.queued, l.retained, rep.Data, *durability)
	fmt.Printf("median of %d starts: ready (CONNACK) after %.2f s, %.2f s of broker CPU; RSS %.0f MiB, peak %.0f MiB; sample checks %s; goal (every start < %v) %s\n",
		len(rep.Runs), rep.ReadyMedian, rep.CPUMedian, rep.RSSMedian, rep.HWMMedian, okWord(rep.ChecksPassed),
		goal, map[bool]string{true: "met", false: "NOT met"}[rep.GoalMet])
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(os.Stderr, "recoverbench: kept %s (rerun with -dir %s)\n", work, data)
	}
	return nil
}

// extraServeArgs are flags every start passes, found from the binary's help.
var extraServeArgs []string

// startOnce starts the broker on data, measures its recovery, checks the
// sample of run r of n and stops it.
func startOnce(bin, data, durability string, adminOff bool, l layout, r, n int, timeout time.Duration) (run, error) {
	addr, err := peers.FreePort()
	if err != nil {
		return run{}, err
	}
	args := []string{"serve", "--listen", addr, "--data-dir", data, "--durability", durability, "--log-level", "info"}
	if adminOff {
		args = append(args, "--admin-listen", "")
	}
	args = append(args, extraServeArgs...)
	load := loadgen.LoadAverage()
	b, err := startBroker(bin, args)
	if err != nil {
		return run{}, err
	}
	tcp, ready, err := b.ready(addr, timeout)
	if err != nil {
		_, _ = b.stop(30 * time.Second)
		return run{}, fmt.Errorf("%w; broker output:\n%s", err, formatLines(b.output(), 0))
	}
	rss, hwm, err := b.memory()
	var cpu time.Duration
	if err == nil {
		cpu, err = loadgen.ProcCPU(b.cmd.Process.Pid)
	}
	if err != nil {
		_, _ = b.stop(30 * time.Second)
		return run{}, err
	}
	res := run{TCP: tcp.Seconds(), Ready: ready.Seconds(), CPU: cpu.Seconds(), LoadAvg: load,
		RSS: mib(rss), HWM: mib(hwm), Check: "ok"}
	if err := check(addr, l, r, n); err != nil {
		res.Check = err.Error()
	}
	stopped, err := b.stop(30 * time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "recoverbench:", err)
	}
	res.Stop = stopped.Seconds()
	res.lines = b.output()
	for _, ln := range res.lines {
		if ln.At <= ready {
			res.LinesBefore++
		}
	}
	return res, nil
}

// check verifies the sample of run r of n: the first and last sessions and
// one in between that differs per run, and one retained message that differs
// per run.
func check(addr string, l layout, r, n int) error {
	if l.sessions > 0 {
		for _, i := range []int{0, (r + 1) * l.sessions / (n + 1), l.sessions - 1} {
			if err := checkSession(addr, l, i); err != nil {
				return err
			}
		}
	}
	if l.retained > 0 {
		return checkRetained(addr, ((r+1)*l.retained/(n+1)+r*7919)%l.retained)
	}
	return nil
}

func printRun(i int, r run) {
	fmt.Fprintf(os.Stderr, "recoverbench: start %d (load average %.1f): TCP accepted after %.3f s, CONNACK after %.3f s, %.2f s of broker CPU; RSS %.0f MiB (peak %.0f MiB); check %s; stopped in %.2f s; broker output:\n%s",
		i, r.LoadAvg, r.TCP, r.Ready, r.CPU, r.RSS, r.HWM, r.Check, r.Stop, formatLines(r.lines, 40))
}

// formatLines returns the lines, at most max of them (0: all), indented, with
// the time each came.
func formatLines(ls []logLine, maxLines int) string {
	var b strings.Builder
	for i, l := range ls {
		if maxLines > 0 && i == maxLines {
			fmt.Fprintf(&b, "    ... %d more lines\n", len(ls)-i)
			break
		}
		fmt.Fprintf(&b, "    +%7.3fs  %s\n", l.At.Seconds(), l.Text)
	}
	return b.String()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func okWord(ok bool) string {
	if ok {
		return "passed"
	}
	return "FAILED"
}
