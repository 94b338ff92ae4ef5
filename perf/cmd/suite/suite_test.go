package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/perf/report"
)

// TestSuite runs the suite for real on one short scenario against Tern
// (built from ../ like every command builds it), then renders the report
// again from what it wrote.
func TestSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the commands and Tern and runs a broker")
	}
	// Bounded: a cold build of Tern takes most of it; the run takes about
	// 5 s (1 s warm-up, 300 ms measured, a drain of at most 5 s).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "out")
	var stdout bytes.Buffer
	err := run(ctx, []string{"-only", "fanin-qos0", "-brokers", "tern", "-repeat", "1", "-duration", "300ms", "-out", out},
		&stdout, testWriter{t})
	testutil.Require(t, err, "suite")
	testutil.Equal(t, strings.TrimSpace(stdout.String()), filepath.Join(out, report.ReportFile), "printed path")

	m, lines, err := report.Load(out)
	testutil.Require(t, err, "load")
	testutil.Equal(t, len(lines), 1, "lines in runs.jsonl")
	var r struct {
		Scenario string  `json:"scenario"`
		Broker   string  `json:"broker"`
		Rate     float64 `json:"recv_per_sec"`
	}
	testutil.Require(t, json.Unmarshal(lines[0].Run, &r), "run")
	testutil.Equal(t, lines[0].Scenario+" "+lines[0].Command+" "+r.Scenario+" "+r.Broker, "fanin-qos0 bench fanin-qos0 tern", "line")
	if r.Rate <= 0 {
		t.Errorf("delivered %v msg/s", r.Rate)
	}
	testutil.Equal(t, len(m.Scenarios), 1, "scenarios in suite.json")
	testutil.Equal(t, m.Scenarios[0].Error, "", "error")
	if m.Machine.CPUs == 0 || m.Machine.Go == "" {
		t.Errorf("machine: %+v", m.Machine)
	}

	txt, err := os.ReadFile(filepath.Join(out, "fanin-qos0.txt"))
	testutil.Require(t, err, "bench output")
	if !bytes.Contains(txt, []byte("| tern |")) {
		t.Errorf("fanin-qos0.txt has no table:\n%s", txt)
	}

	md := readReport(t, out)
	for _, want := range []string{
		"| broker | runs | delivered msg/s | loss | broker CPU µs/msg |",
		"\n| tern | 1 | ",
		"](throughput.svg)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}

	// -from renders the same report from the files alone.
	testutil.Require(t, os.Remove(filepath.Join(out, report.ReportFile)), "remove report")
	testutil.Require(t, run(ctx, []string{"-from", out}, &stdout, testWriter{t}), "-from")
	testutil.Equal(t, readReport(t, out), md, "report rendered with -from")
}

func TestOnly(t *testing.T) {
	err := run(context.Background(), []string{"-only", "fanin-qos0,nope"}, &bytes.Buffer{}, testWriter{t})
	if err == nil || !strings.Contains(err.Error(), `unknown scenario "nope"`) {
		t.Errorf("-only nope: %v", err)
	}
}

func TestSteps(t *testing.T) {
	ss := steps("tern,mosquitto", 2, time.Second)
	var names []string
	for _, s := range ss {
		names = append(names, s.name)
	}
	testutil.Equal(t, len(ss), 13, "steps")
	testutil.Equal(t, names[9], "fanin-qos1-durable", "the durable fan-in")
	testutil.Equal(t, strings.Join(ss[9].args, " "),
		"-scenario fanin-qos1 -persistent sub -brokers tern,tern-sync,mosquitto -repeat 2 -duration 1s", "its arguments")
	testutil.Equal(t, strings.Join(ss[0].args, " "), "-scenario fanin-qos0 -brokers tern,mosquitto -repeat 2 -duration 1s", "bench")
	i := slices.Index(names, "retainstorm")
	testutil.Equal(t, strings.Join(ss[i].args, " "), "-brokers tern,mosquitto -repeat 2", "retainstorm: no -duration")
}

func TestETA(t *testing.T) {
	f := func(done, doneEstimate, left time.Duration, want string) {
		t.Helper()
		testutil.Equal(t, eta(done, doneEstimate, left), want, "eta")
	}
	f(0, 0, time.Minute, "~1m0s")                          // nothing done: the estimate
	f(time.Minute, 2*time.Minute, 10*time.Minute, "~5m0s") // twice as fast as estimated
}

func readReport(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, report.ReportFile))
	testutil.Require(t, err, "report.md")
	return string(b)
}

// testWriter sends the commands' progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
