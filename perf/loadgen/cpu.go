package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat. The kernel reports them
// in USER_HZ, which is 100 on every Linux architecture Go supports.
const userHZ = 100

// ProcCPU returns the user plus system CPU time the process pid has used, all
// of its threads included, from /proc/PID/stat, in steps of 10 ms. pid 0
// returns 0.
func ProcCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("loadgen: cannot read broker CPU time: %w", err)
	}
	return parseStat(b)
}

// parseStat reads utime and stime (fields 14 and 15) from the contents of a
// /proc/PID/stat file. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so fields are counted from the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("loadgen: malformed /proc stat %q", b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("loadgen: short /proc stat %q", b)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadgen: malformed /proc stat field %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// LoadAverage returns the machine's 1-minute load average from /proc/loadavg,
// or -1 when it cannot be read: on a shared machine it tells how much else
// was running during a measurement.
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return -1
	}
	return v
}

// LoadRange is the line the commands end their report with: the range of the
// load averages read before each run (or round), and the CPUs they share.
func LoadRange(loads []float64, each string) string {
	if len(loads) == 0 {
		return ""
	}
	return fmt.Sprintf("Machine load average (1 min) before each %s: %.1f to %.1f on %d CPUs.",
		each, slices.Min(loads), slices.Max(loads), runtime.NumCPU())
}
