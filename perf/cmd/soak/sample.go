package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
)

// sample is one reading of the broker process and of the load.
type sample struct {
	T          float64 `json:"t_s"` // seconds since the load started; negative for the idle readings
	RSS        int64   `json:"rss_bytes"`
	FDs        int     `json:"fds"`
	Goroutines int     `json:"goroutines"` // -1: not read (a broker without Tern's admin endpoint, or it did not answer)
	CPU        float64 `json:"cpu_cores"`  // broker utime+stime per second since the previous sample
	// Rates since the previous sample, per second.
	Churn   float64 `json:"churn_cycles_per_s"`
	Topics  float64 `json:"topic_deliveries_per_s"`
	Fanout  float64 `json:"fanout_deliveries_per_s"`
	Tracked float64 `json:"tracked_acked_per_s"`
	// Running totals.
	Takeovers  int64 `json:"takeovers"`
	Reconnects int64 `json:"reconnects"`
	Errors     int64 `json:"errors"`
}

// probe reads the broker process from /proc and, for Tern, its goroutine
// count from the admin endpoint's pprof.
type probe struct {
	pid   int
	admin string // host:port of Tern's admin endpoint; "" for other brokers
	http  *http.Client
	warn  io.Writer

	lastAt  time.Time
	lastCPU time.Duration
}

func newProbe(pid int, admin string, warn io.Writer) *probe {
	return &probe{pid: pid, admin: admin, http: &http.Client{Timeout: 5 * time.Second}, warn: warn}
}

// read takes a sample of the process; the load's fields are left zero. It
// fails only when /proc cannot be read (the broker is gone); goroutines it
// cannot read are -1, with a line to warn.
func (pr *probe) read() (sample, error) {
	var s sample
	var err error
	now := time.Now()
	if s.RSS, err = loadgen.ProcRSS(pr.pid); err != nil {
		return s, err
	}
	if s.FDs, err = procFDs(pr.pid); err != nil {
		return s, err
	}
	cpu, err := loadgen.ProcCPU(pr.pid)
	if err != nil {
		return s, err
	}
	if !pr.lastAt.IsZero() {
		s.CPU = float64(cpu-pr.lastCPU) / float64(now.Sub(pr.lastAt))
	}
	pr.lastAt, pr.lastCPU = now, cpu
	s.Goroutines = -1
	if pr.admin != "" {
		// A broker too busy to answer within the client's timeout is
		// worth a gap in one series, not the end of the run.
		if s.Goroutines, err = pr.goroutines(); err != nil {
			s.Goroutines = -1
			fmt.Fprintln(pr.warn, "soak:", err)
		}
	}
	return s, nil
}

// goroutines asks the admin endpoint for the goroutine profile in text
// (debug=1), whose first line is "goroutine profile: total N".
func (pr *probe) goroutines() (int, error) {
	resp, err := pr.http.Get("http://" + pr.admin + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return 0, fmt.Errorf("cannot read the broker's goroutines: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("cannot read the broker's goroutines: %s", resp.Status)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("cannot read the broker's goroutines: %w", err)
	}
	return parseGoroutines(line)
}

func parseGoroutines(line string) (int, error) {
	n, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("unexpected goroutine profile header %q", line)
	}
	return strconv.Atoi(n)
}

// procFDs counts the open file descriptors of process pid.
func procFDs(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, fmt.Errorf("cannot count broker fds: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("cannot count broker fds: %w", err)
	}
	return len(names), nil
}
