package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// ProcRSS returns the resident set size of process pid (VmRSS in
// /proc/PID/status), in bytes.
func ProcRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("cannot read broker RSS: %w", err)
	}
	return ParseRSS(b)
}

// ParseRSS reads VmRSS from the contents of a /proc/PID/status file.
func ParseRSS(b []byte) (int64, error) {
	_, rest, ok := bytes.Cut(b, []byte("\nVmRSS:"))
	if !ok {
		return 0, errors.New("no VmRSS in /proc status")
	}
	line, _, _ := bytes.Cut(rest, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, fmt.Errorf("malformed VmRSS line %q", line)
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed VmRSS line %q: %w", line, err)
	}
	return kb << 10, nil
}

// RaiseNoFile raises this process's soft open-files limit to the hard one
// (brokers started afterwards inherit it) and returns it.
func RaiseNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("cannot read the open-files limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, fmt.Errorf("cannot raise the open-files limit: %w", err)
		}
	}
	return l.Cur, nil
}
