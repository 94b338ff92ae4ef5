package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixture returns the tables of testdata/runs.jsonl: fanin-qos0 with tern,
// mosquitto and relay (no mochi), 3 rounds; the durable fan-in; latency with
// tern and mosquitto, 2 rounds per QoS (even counts); connrate and
// retainstorm with tern and mochi (no mosquitto).
func fixture(t *testing.T) ([]Line, []*Table) {
	t.Helper()
	f, err := os.Open("testdata/runs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := ReadLines(f)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := Aggregate(lines)
	if err != nil {
		t.Fatal(err)
	}
	return lines, tables
}

func table(t *testing.T, tables []*Table, scenario, split string) *Table {
	t.Helper()
	i := slices.IndexFunc(tables, func(x *Table) bool { return x.Scenario == scenario && x.Split == split })
	if i < 0 {
		t.Fatalf("no table %s %q", scenario, split)
	}
	return tables[i]
}

func TestAppendLine(t *testing.T) {
	run := []byte(`{"broker":"tern","p50_us":12.5,"note":"a<b"}`)
	b, err := AppendLine(nil, "latency", "latency", run)
	if err != nil {
		t.Fatal(err)
	}
	b, err = AppendLine(b, "fanin-qos0", "bench", []byte(`{"broker":"mochi"}`))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := ReadLines(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0].Scenario != "latency" || lines[1].Command != "bench" {
		t.Fatalf("got %+v", lines)
	}
	if !bytes.Equal(lines[0].Run, run) {
		t.Errorf("run changed: %s, want %s", lines[0].Run, run)
	}
	if _, err := AppendLine(nil, "x", "bench", []byte("| broker |")); err == nil {
		t.Error("a table line was accepted")
	}
}

func TestMedianAndRatio(t *testing.T) {
	_, tables := fixture(t)
	median := func(scenario, split, broker, field string, want float64) {
		t.Helper()
		got, ok := table(t, tables, scenario, split).Median(broker, field)
		if !ok || got != want {
			t.Errorf("%s %s %s %s: median %v, %v; want %v", scenario, split, broker, field, got, ok, want)
		}
	}
	median("fanin-qos0", "", "tern", "recv_per_sec", 500000)
	median("fanin-qos0", "", "mosquitto", "recv_per_sec", 200000)
	median("fanin-qos0", "", "relay", "cpu_us_per_msg", 0.2)
	median("latency", "QoS 0", "tern", "p50_us", 50) // the mean of the middle two
	median("latency", "QoS 1", "mosquitto", "p999_us", 1100)
	median("fanin-qos1-durable", "", "tern-sync", "recv_per_sec", 30000)

	ratio := func(scenario, broker, ref, field string, want float64) {
		t.Helper()
		got, ok := table(t, tables, scenario, "").Ratio(broker, ref, field)
		if !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("%s %s ÷ %s %s: %v, %v; want %v", scenario, broker, ref, field, got, ok, want)
		}
	}
	ratio("fanin-qos0", "tern", "mosquitto", "recv_per_sec", 2.5)
	ratio("fanin-qos0", "tern", "relay", "recv_per_sec", 1.0/3)
	ratio("fanin-qos0", "mosquitto", "mosquitto", "cpu_us_per_msg", 1)
	ratio("retainstorm", "tern", "mochi", "rate", 4)

	tb := table(t, tables, "fanin-qos0", "")
	if _, ok := tb.Ratio("tern", "mochi", "recv_per_sec"); ok {
		t.Error("a ratio to mochi, which did not run in fanin-qos0")
	}
	if _, ok := tb.Median("mochi", "recv_per_sec"); ok {
		t.Error("a median for mochi, which did not run in fanin-qos0")
	}
}

func TestAggregateSplitsAndOrders(t *testing.T) {
	_, tables := fixture(t)
	var got []string
	for _, tb := range tables {
		got = append(got, strings.TrimSpace(tb.Scenario+" "+tb.Split)+": "+strings.Join(tb.Brokers, ","))
	}
	want := []string{
		"fanin-qos0: tern,mosquitto,relay",
		"fanin-qos1-durable: tern,tern-sync,mosquitto",
		"latency QoS 0: tern,mosquitto",
		"latency QoS 1: tern,mosquitto",
		"connrate: tern,mochi",
		"retainstorm: tern,mochi",
	}
	if !slices.Equal(got, want) {
		t.Errorf("tables:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d := table(t, tables, "fanin-qos1-durable", "").Desc; d != "8 publishers → 1 subscriber on bench/+, QoS 1, 64 B, persistent subscriber sessions" {
		t.Errorf("durable fan-in described as %q", d)
	}

	_, err := Aggregate([]Line{{Scenario: "x", Command: "nope", Run: []byte(`{"broker":"tern"}`)}})
	if err == nil {
		t.Error("a line of an unknown command was accepted")
	}
}

func TestWriteTable(t *testing.T) {
	_, tables := fixture(t)
	f := func(scenario, split string, want ...string) {
		t.Helper()
		var b strings.Builder
		WriteTable(&b, table(t, tables, scenario, split))
		if got := strings.Split(strings.TrimSpace(b.String()), "\n"); !slices.Equal(got, want) {
			t.Errorf("%s %s:\n%s\nwant:\n%s", scenario, split, b.String(), strings.Join(want, "\n"))
		}
	}
	// No mochi columns: it did not run in this scenario.
	f("fanin-qos0", "",
		"| broker | runs | delivered msg/s | loss | broker CPU µs/msg | broker cores | drain end | msg/s ÷ Mosquitto | msg/s ÷ relay | CPU/msg ÷ Mosquitto | CPU/msg ÷ relay |",
		"|---|---|---|---|---|---|---|---|---|---|---|",
		"| tern | 3 | 500k | 0.1% | 1.00 | 0.80 | complete complete stalled | 2.50× | 0.33× | 0.33× | 5.00× |",
		"| mosquitto | 3 | 200k | 2.0% | 3.00 | 0.80 | complete complete timeout | 1.00× | 0.13× | 1.00× | 15.00× |",
		"| relay | 3 | 1.50M | 50.0% | 0.20 | 0.80 | stalled stalled stalled | 7.50× | 1.00× | 0.07× | 1.00× |",
	)
	f("latency", "QoS 1",
		"| broker | runs | p50 | p99 | p99.9 | max | lost | broker CPU µs/msg | p50 ÷ Mosquitto | p99 ÷ Mosquitto |",
		"|---|---|---|---|---|---|---|---|---|---|",
		"| tern | 2 | 80 | 160 | 500 | 1000 | 0 | 6.00 | 0.62× | 0.52× |",
		"| mosquitto | 2 | 130 | 310 | 1100 | 2200 | 0 | 6.00 | 1.00× | 1.00× |",
	)
	f("connrate", "",
		"| broker | runs | conn/s | broker CPU µs/conn | errors | bytes/idle conn | conn/s ÷ mochi | CPU/conn ÷ mochi | bytes/conn ÷ mochi |",
		"|---|---|---|---|---|---|---|---|---|",
		"| tern | 1 | 9000 | 80.0 | 0 | 4000 | 1.50× | 0.53× | 0.33× |",
		"| mochi | 1 | 6000 | 150.0 | 0 | 12000 | 1.00× | 1.00× | 1.00× |",
	)
}

func TestCharts(t *testing.T) {
	_, tables := fixture(t)
	cs := charts(tables)
	series := func(file string) map[string][]float64 {
		i := slices.IndexFunc(cs, func(c chart) bool { return c.file == file })
		m := map[string][]float64{}
		for _, s := range cs[i].Series {
			m[s.Name] = s.Values
		}
		return m
	}
	nan := math.NaN()
	f := func(file, broker string, want ...float64) {
		t.Helper()
		got, ok := series(file)[broker]
		if !ok || !slices.EqualFunc(got, want, func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }) {
			t.Errorf("%s %s: %v, want %v", file, broker, got, want)
		}
	}
	// Groups: fanin-qos0, fanin-qos1-durable, retainstorm.
	f("throughput.svg", "tern", 500000, 300000, 200000)
	f("throughput.svg", "mochi", nan, nan, 50000) // missing where it did not run
	f("throughput.svg", "relay", 1.5e6, nan, nan)
	f("cpu.svg", "tern-sync", nan, 9, nan)
	// Groups: QoS 0 p50, p99, p99.9, QoS 1 p50, p99, p99.9.
	f("latency.svg", "tern", 50, 110, 400, 80, 160, 500)
	if _, ok := series("latency.svg")["mochi"]; ok {
		t.Error("latency chart has a mochi series, but mochi did not run latency")
	}
}

// wellFormed decodes b as XML to its end.
func wellFormed(t *testing.T, name string, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", name, err)
		}
		if s, ok := tok.(xml.StartElement); ok && root == "" {
			root = s.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("%s: root element %q, want svg", name, root)
	}
}

func TestBarChartSVG(t *testing.T) {
	c := BarChart{Title: "t", YLabel: "msg/s", Groups: []string{"a", "fanout1000-qos0"},
		Series: []Series{{Name: "tern", Values: []float64{1e5, 2e6}}, {Name: "mochi", Values: []float64{math.NaN(), 0}}}}
	b, err := c.SVG()
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, "chart", b)
	for _, s := range []string{"tern", "mochi", "fanout1000-qos0", "100k", "10M"} {
		if !bytes.Contains(b, []byte(">"+s+"<")) {
			t.Errorf("the chart has no text %q", s)
		}
	}
	c.Series = c.Series[1:]
	if _, err := c.SVG(); !errors.Is(err, errNoData) {
		t.Errorf("a chart with no positive value: %v, want errNoData", err)
	}
}

func TestRender(t *testing.T) {
	lines, _ := fixture(t)
	dir := t.TempDir()
	m := Meta{
		Started: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 27, 12, 30, 5, 0, time.UTC),
		Args:    []string{"-repeat", "3", "-only", "fanin-qos0,latency"},
		Machine: Machine{CPU: "Some CPU @ 2.0GHz", CPUs: 2, Mosquitto: "mosquitto version 2.0.11", TernCommit: "0123456789ab"},
		Scenarios: []Scenario{
			{Name: "fanin-qos0", Command: []string{"bench", "-scenario", "fanin-qos0"}, Seconds: 95},
			{Name: "fanout-qos0", Command: []string{"bench", "-scenario", "fanout-qos0"}, Error: "exit status 1"},
			{Name: "soak", Skipped: "perf/cmd/soak does not exist"},
		},
	}
	if err := SaveMeta(dir, m); err != nil {
		t.Fatal(err)
	}
	var runs []byte
	for _, l := range lines {
		runs, _ = AppendLine(runs, l.Scenario, l.Command, l.Run)
	}
	if err := os.WriteFile(filepath.Join(dir, RunsFile), runs, 0o644); err != nil {
		t.Fatal(err)
	}
	m2, lines2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines2) != len(lines) || !m2.Started.Equal(m.Started) || m2.Machine != m.Machine {
		t.Fatalf("Load: %d lines, meta %+v", len(lines2), m2)
	}
	if err := Render(dir, m2, lines2); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Tern benchmark suite, 2026-11-27 12:00 UTC",
		"`go run ./cmd/suite -repeat 3 -only fanin-qos0,latency`; it took 30m5s.",
		"| Tern commit | 0123456789ab |",
		"| load average (1 min) before the runs | 0.5 to 3.5 |",
		"![Delivered messages per second (median)](throughput.svg)",
		"](cpu.svg)", "](latency.svg)",
		"| fanin-qos0 | 500k | 200k | 1.50M | – | – |", // the throughput chart's values
		"## fanin-qos0\n\n8 publishers → 1 subscriber on bench/+, QoS 0, 64 B.\n\n`bench -scenario fanin-qos0` took 1m35s; its output: [fanin-qos0.txt](fanin-qos0.txt).",
		"| tern | 3 | 500k | 0.1% |",
		"## fanout-qos0\n\n`bench -scenario fanout-qos0` took 0s; its output: [fanout-qos0.txt](fanout-qos0.txt).\n\n**Failed:** exit status 1",
		"## soak\n\nSkipped: perf/cmd/soak does not exist.",
		"## retainstorm\n\n100000 retained messages", // not in the meta, but in the lines
		"### QoS 1\n\n| broker | runs | p50 |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, f := range []string{"throughput.svg", "cpu.svg", "latency.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, f, b)
	}
	if testing.Verbose() {
		t.Logf("report.md:\n%s", md)
	}
}
