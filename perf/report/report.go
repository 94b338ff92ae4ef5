// Package report turns the JSON lines of one benchmark suite run
// (cmd/suite) into a Markdown report and SVG charts: it reads runs.jsonl and
// suite.json, takes the median of each metric per scenario and broker, and
// the ratios of those medians to Mosquitto's, mochi's and the relay's in the
// same scenario of the same run. It never compares lines of two runs.
package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Files the suite writes into its output directory, and Render reads back.
const (
	RunsFile   = "runs.jsonl"
	MetaFile   = "suite.json"
	ReportFile = "report.md"
)

// Line is one line of runs.jsonl: a child command's JSON line, byte for byte
// as the command printed it, with the suite scenario it belongs to (a
// scenario name alone is not enough: the durable fan-in is bench's
// fanin-qos1 too) and the command that printed it.
type Line struct {
	Scenario string          `json:"scenario"`
	Command  string          `json:"command"` // bench, latency, connrate or retainstorm
	Run      json.RawMessage `json:"run"`
}

// AppendLine appends the runs.jsonl line that wraps run, a child's JSON
// line, to dst. It copies run unchanged; it returns an error, and dst as it
// was, when run is not a JSON object.
func AppendLine(dst []byte, scenario, command string, run []byte) ([]byte, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(run, &probe); err != nil {
		return dst, fmt.Errorf("report: not a JSON object: %w", err)
	}
	s, _ := json.Marshal(scenario)
	c, _ := json.Marshal(command)
	dst = append(dst, `{"scenario":`...)
	dst = append(dst, s...)
	dst = append(dst, `,"command":`...)
	dst = append(dst, c...)
	dst = append(dst, `,"run":`...)
	dst = append(dst, run...)
	return append(dst, "}\n"...), nil
}

// ReadLines parses runs.jsonl. Blank lines are ignored.
func ReadLines(r io.Reader) ([]Line, error) {
	var lines []Line
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("report: line %d: %w", n, err)
		}
		lines = append(lines, l)
	}
	return lines, sc.Err()
}

// Meta is what the suite records about a run besides the lines, in
// suite.json.
type Meta struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Args is the suite's command line after the program name, as run
	// from perf/.
	Args      []string   `json:"args"`
	Machine   Machine    `json:"machine"`
	Scenarios []Scenario `json:"scenarios"`
}

// Machine is what the report says about the machine and the software under
// test; a field it could not find holds what went wrong instead.
type Machine struct {
	CPU        string `json:"cpu"`
	CPUs       int    `json:"cpus"`
	RAM        string `json:"ram"`
	Kernel     string `json:"kernel"`
	Go         string `json:"go"`
	Mosquitto  string `json:"mosquitto"`
	Mochi      string `json:"mochi"`
	TernCommit string `json:"tern_commit"`
}

// Scenario is one step of the suite as it ran.
type Scenario struct {
	Name    string   `json:"name"`
	Command []string `json:"command"` // the child's command line, program name first
	Seconds float64  `json:"seconds"`
	Skipped string   `json:"skipped,omitempty"` // why it did not run
	Error   string   `json:"error,omitempty"`   // how it failed; its lines so far are kept
}

// Load reads runs.jsonl and suite.json from dir. A missing suite.json (runs.jsonl assembled by hand)
// gives an empty Meta.
func Load(dir string) (Meta, []Line, error) {
	var m Meta
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return m, nil, err
	default:
		if err := json.Unmarshal(b, &m); err != nil {
			return m, nil, fmt.Errorf("report: cannot parse %s: %w", MetaFile, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, RunsFile))
	if err != nil {
		return m, nil, err
	}
	defer f.Close()
	lines, err := ReadLines(f)
	return m, lines, err
}

// SaveMeta writes m as dir/suite.json.
func SaveMeta(dir string, m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, MetaFile), append(b, '\n'), 0o644)
}

// Render writes report.md and the charts (throughput.svg, cpu.svg,
// latency.svg: each only when there is something to draw) into dir.
func Render(dir string, m Meta, lines []Line) error {
	tables, err := Aggregate(lines)
	if err != nil {
		return err
	}
	var drawn []chart
	for _, c := range charts(tables) {
		path := filepath.Join(dir, c.file)
		b, err := c.SVG()
		if errors.Is(err, errNoData) {
			// Left by an earlier rendering of the same directory.
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("report: cannot draw %s: %w", c.file, err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		drawn = append(drawn, c)
	}
	var md bytes.Buffer
	writeMarkdown(&md, m, tables, drawn)
	return os.WriteFile(filepath.Join(dir, ReportFile), md.Bytes(), 0o644)
}
