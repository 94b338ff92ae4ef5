package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// writeMarkdown writes the report: the machine, the command line, the
// charts with their values, and a section per scenario with a table of the
// medians of each broker and their ratios to the reference brokers that ran
// in it.
func writeMarkdown(w io.Writer, m Meta, tables []*Table, drawn []chart) {
	title := "Tern benchmark suite"
	if !m.Started.IsZero() {
		title += ", " + m.Started.UTC().Format("2006-01-02 15:04 UTC")
	}
	fmt.Fprintf(w, "# %s\n\n", title)
	if m.Args != nil {
		fmt.Fprintf(w, "Run in perf/ as `%s`", shellJoin(append([]string{"go", "run", "./cmd/suite"}, m.Args...)))
		if !m.Finished.IsZero() {
			fmt.Fprintf(w, "; it took %v", m.Finished.Sub(m.Started).Round(time.Second))
		}
		fmt.Fprint(w, ".\n\n")
	}
	fmt.Fprintf(w, "Every number is the median of a broker's runs of a scenario; every ratio divides "+
		"one broker's median by another's in the same scenario of this run. Each command's JSON lines "+
		"are in [%s](%s), its output in `<scenario>.txt`.\n\n", RunsFile, RunsFile)

	writeMachine(w, m.Machine, tables)

	if len(drawn) > 0 {
		fmt.Fprint(w, "## Summary\n\n")
	}
	for _, c := range drawn {
		fmt.Fprintf(w, "![%s](%s)\n\n", c.Title, c.file)
		writeChartTable(w, c)
	}

	// The suite's order, then any scenario only the lines know.
	var names []string
	for _, s := range m.Scenarios {
		names = append(names, s.Name)
	}
	for _, t := range tables {
		if !slices.Contains(names, t.Scenario) {
			names = append(names, t.Scenario)
		}
	}
	for _, name := range names {
		fmt.Fprintf(w, "## %s\n\n", name)
		mine := slices.DeleteFunc(slices.Clone(tables), func(t *Table) bool { return t.Scenario != name })
		if len(mine) > 0 {
			fmt.Fprintf(w, "%s.\n\n", mine[0].Desc)
		}
		if i := slices.IndexFunc(m.Scenarios, func(s Scenario) bool { return s.Name == name }); i >= 0 {
			s := m.Scenarios[i]
			switch {
			case s.Skipped != "":
				fmt.Fprintf(w, "Skipped: %s.\n\n", s.Skipped)
			case s.Command != nil:
				fmt.Fprintf(w, "`%s` took %v; its output: [%s.txt](%s.txt).\n\n",
					shellJoin(s.Command), time.Duration(s.Seconds*float64(time.Second)).Round(time.Second), name, name)
			}
			if s.Error != "" {
				fmt.Fprintf(w, "**Failed:** %s\n\n", cell(s.Error))
			}
		}
		for _, t := range mine {
			if t.Split != "" {
				fmt.Fprintf(w, "### %s\n\n", t.Split)
			}
			WriteTable(w, t)
			fmt.Fprintln(w)
		}
	}
}

func writeMachine(w io.Writer, mc Machine, tables []*Table) {
	fmt.Fprint(w, "## Machine\n\n| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "| %s | %s |\n", k, cell(v))
		}
	}
	row("CPU", mc.CPU)
	if mc.CPUs > 0 {
		row("CPUs", fmt.Sprint(mc.CPUs))
	}
	row("RAM", mc.RAM)
	row("kernel", mc.Kernel)
	row("Go", mc.Go)
	row("Mosquitto", mc.Mosquitto)
	row("mochi", mc.Mochi)
	row("Tern commit", mc.TernCommit)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, t := range tables {
		for _, rs := range t.runs {
			for _, r := range rs {
				if l, ok := r["loadavg"].(float64); ok {
					lo, hi = min(lo, l), max(hi, l)
				}
			}
		}
	}
	if !math.IsInf(lo, 1) {
		row("load average (1 min) before the runs", fmt.Sprintf("%.1f to %.1f", lo, hi))
	}
	fmt.Fprintln(w)
}

// writeChartTable writes the values of a chart, a row per group.
func writeChartTable(w io.Writer, c chart) {
	fmt.Fprint(w, "| |")
	for _, s := range c.Series {
		fmt.Fprintf(w, " %s |", s.Name)
	}
	fmt.Fprint(w, "\n|---|"+strings.Repeat("---|", len(c.Series))+"\n")
	for i, g := range c.Groups {
		fmt.Fprintf(w, "| %s |", g)
		for _, s := range c.Series {
			if v := s.Values[i]; !math.IsNaN(v) {
				fmt.Fprintf(w, " %s |", c.format(v))
			} else {
				fmt.Fprint(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// WriteTable writes t as a Markdown table: a row per broker with its number
// of runs, the median of each column, and the ratio columns of the
// reference brokers that ran.
func WriteTable(w io.Writer, t *Table) {
	var present []struct{ name, title string }
	for _, r := range refs {
		if slices.Contains(t.Brokers, r.name) {
			present = append(present, r)
		}
	}
	head := []string{"broker", "runs"}
	for _, c := range t.kind.cols {
		head = append(head, c.head)
	}
	for _, c := range t.kind.cols {
		if c.ratio != "" {
			for _, r := range present {
				head = append(head, c.ratio+" ÷ "+r.title)
			}
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, b := range t.Brokers {
		row := []string{b, fmt.Sprint(t.Runs(b))}
		for _, c := range t.kind.cols {
			row = append(row, t.cell(b, c))
		}
		for _, c := range t.kind.cols {
			if c.ratio == "" {
				continue
			}
			for _, r := range present {
				v := "–"
				if x, ok := t.Ratio(b, r.name, c.field); ok {
					v = fmt.Sprintf("%.2f×", x)
				}
				row = append(row, v)
			}
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
}

// cell formats column c of broker b: the median, or for a text column the
// runs' values.
func (t *Table) cell(b string, c column) string {
	if c.text {
		var vs []string
		for _, r := range t.runs[b] {
			if s, ok := r[c.field].(string); ok {
				vs = append(vs, s)
			}
		}
		return cell(strings.Join(vs, " "))
	}
	v, ok := t.Median(b, c.field)
	if !ok {
		return "–"
	}
	return c.format(v)
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// shellJoin joins args as a shell would need them typed.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$`\\|&;<>()*?#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
