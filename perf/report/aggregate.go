package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tern-mqtt/tern/perf/stats"
)

// refs are the brokers every other broker's medians are divided by, when
// they ran in the same scenario: the two other brokers, and the relay, the
// ceiling of the machine and the load generator.
var refs = []struct{ name, title string }{{"mosquitto", "Mosquitto"}, {"mochi", "mochi"}, {"relay", "relay"}}

// column is one metric of a table: the median of a numeric JSON field over a
// broker's runs or, for text, the runs' values of a string field in order.
type column struct {
	field  string
	head   string
	format func(float64) string
	text   bool
	// ratio, when set, adds a column "<ratio> ÷ <ref>" per reference
	// broker that ran.
	ratio string
}

// kind is how the report reads the lines of one command.
type kind struct {
	split    func(run) string // the table a run belongs to within its scenario; nil: one table
	describe func(run) string // the load, from the parameters a line echoes
	cols     []column
	// rate and cpu are the fields of delivered msg/s and broker CPU µs per
	// message for the charts; "" when the command has none.
	rate, cpu string
}

var kinds = map[string]*kind{
	"bench": {
		describe: describeBench,
		cols: []column{
			{field: "recv_per_sec", head: "delivered msg/s", format: stats.SI, ratio: "msg/s"},
			{field: "loss_pct", head: "loss", format: pct},
			{field: "cpu_us_per_msg", head: "broker CPU µs/msg", format: f2, ratio: "CPU/msg"},
			{field: "broker_cores", head: "broker cores", format: f2},
			{field: "drain_end", head: "drain end", text: true},
		},
		rate: "recv_per_sec", cpu: "cpu_us_per_msg",
	},
	"latency": {
		split: func(r run) string { return fmt.Sprintf("QoS %.0f", r.num("qos")) },
		describe: func(r run) string {
			return fmt.Sprintf("1 publisher → 1 subscriber, %.0f msg/s; latencies in µs", r.num("rate"))
		},
		cols: []column{
			{field: "p50_us", head: "p50", format: f0, ratio: "p50"},
			{field: "p99_us", head: "p99", format: f0, ratio: "p99"},
			{field: "p999_us", head: "p99.9", format: f0},
			{field: "max_us", head: "max", format: f0},
			{field: "lost", head: "lost", format: f0},
			{field: "cpu_us_per_msg", head: "broker CPU µs/msg", format: f2},
		},
	},
	"connrate": {
		describe: func(r run) string {
			return fmt.Sprintf("%.0f workers connect and disconnect; %.0f idle connections, keep-alive %.0f s",
				r.num("workers"), r.num("idle"), r.num("keepalive_s"))
		},
		cols: []column{
			{field: "conn_per_s", head: "conn/s", format: f0, ratio: "conn/s"},
			{field: "cpu_us_per_conn", head: "broker CPU µs/conn", format: f1, ratio: "CPU/conn"},
			{field: "errors", head: "errors", format: f0},
			{field: "bytes_per_conn", head: "bytes/idle conn", format: f0, ratio: "bytes/conn"},
		},
	},
	"retainstorm": {
		describe: func(r run) string {
			return fmt.Sprintf("%.0f retained messages, then one subscriber to #", r.num("retained"))
		},
		cols: []column{
			{field: "rate", head: "delivered msg/s", format: stats.SI, ratio: "msg/s"},
			{field: "delivery_s", head: "delivery", format: secs},
			{field: "publish_s", head: "publish", format: secs},
			{field: "lost", head: "lost", format: f0},
			{field: "cpu_us_per_msg", head: "broker CPU µs/msg", format: f2, ratio: "CPU/msg"},
			{field: "rss_bytes", head: "broker RSS", format: mib},
		},
		rate: "rate", cpu: "cpu_us_per_msg",
	},
}

// run is one child JSON line, decoded.
type run map[string]any

// num returns the numeric field key, 0 when absent.
func (r run) num(key string) float64 {
	f, _ := r[key].(float64)
	return f
}

func (r run) broker() string {
	s, _ := r["broker"].(string)
	return s
}

// Table is the runs of one scenario, or of one QoS of the latency scenario,
// by broker.
type Table struct {
	Scenario string
	Command  string
	Split    string // "QoS 0" for one QoS of latency; "" for a scenario in one table
	Desc     string // the load, from the first run's parameters
	Brokers  []string
	kind     *kind
	runs     map[string][]run
}

// Runs returns how many runs of broker the table holds.
func (t *Table) Runs(broker string) int { return len(t.runs[broker]) }

// Median returns the median of the numeric field over broker's runs that
// have it; false when none has.
func (t *Table) Median(broker, field string) (float64, bool) {
	var rs []run
	for _, r := range t.runs[broker] {
		if _, ok := r[field].(float64); ok {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return 0, false
	}
	return stats.Median(rs, func(r run) float64 { return r.num(field) }), true
}

// Ratio returns the median of field for broker over that for ref, false
// when either did not run or ref's median is 0.
func (t *Table) Ratio(broker, ref, field string) (float64, bool) {
	a, ok := t.Median(broker, field)
	b, okRef := t.Median(ref, field)
	if !ok || !okRef || b == 0 {
		return 0, false
	}
	return a / b, true
}

// Aggregate groups lines into tables, by scenario and split, in the order
// they first appear, brokers too.
func Aggregate(lines []Line) ([]*Table, error) {
	var tables []*Table
	for i, l := range lines {
		k, ok := kinds[l.Command]
		if !ok {
			return nil, fmt.Errorf("report: line %d: unknown command %q", i+1, l.Command)
		}
		var r run
		if err := json.Unmarshal(l.Run, &r); err != nil {
			return nil, fmt.Errorf("report: line %d: %w", i+1, err)
		}
		if r.broker() == "" {
			return nil, fmt.Errorf("report: line %d: no broker", i+1)
		}
		split := ""
		if k.split != nil {
			split = k.split(r)
		}
		j := slices.IndexFunc(tables, func(t *Table) bool { return t.Scenario == l.Scenario && t.Split == split })
		if j < 0 {
			j = len(tables)
			tables = append(tables, &Table{Scenario: l.Scenario, Command: l.Command, Split: split,
				Desc: k.describe(r), kind: k, runs: map[string][]run{}})
		}
		t := tables[j]
		if !slices.Contains(t.Brokers, r.broker()) {
			t.Brokers = append(t.Brokers, r.broker())
		}
		t.runs[r.broker()] = append(t.runs[r.broker()], r)
	}
	return tables, nil
}

func describeBench(r run) string {
	var b strings.Builder
	pubs, subs := r.num("publishers"), r.num("subscribers")
	filter, _ := r["filter"].(string)
	if pairs, _ := r["pairs"].(bool); pairs {
		fmt.Fprintf(&b, "%.0f pairs, publisher i → subscriber i", pubs)
	} else {
		fmt.Fprintf(&b, "%s → %s on %s", plural(pubs, "publisher"), plural(subs, "subscriber"), filter)
	}
	fmt.Fprintf(&b, ", QoS %.0f, %.0f B", r.num("qos"), r.num("payload_bytes"))
	if p, _ := r["persistent_pubs"].(bool); p {
		b.WriteString(", persistent sessions")
	} else if p, _ := r["persistent_subs"].(bool); p {
		b.WriteString(", persistent subscriber sessions")
	}
	return b.String()
}

func plural(n float64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%.0f %ss", n, what)
}

func pct(v float64) string  { return fmt.Sprintf("%.1f%%", v) }
func f0(v float64) string   { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string   { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string   { return fmt.Sprintf("%.2f", v) }
func secs(v float64) string { return fmt.Sprintf("%.2f s", v) }
func mib(v float64) string  { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
