package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/tern-mqtt/tern/perf/report"
)

// machine gathers what the report says about the machine and the software
// under test; root is the perf module's directory. What it cannot find it
// says so in the field, so the report shows the gap.
func machine(ctx context.Context, root string) report.Machine {
	m := report.Machine{CPUs: runtime.NumCPU()}
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseFloat(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 64); err == nil {
		m.RAM = fmt.Sprintf("%.1f GiB", kb/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	m.Go = output(ctx, root, "go", "env", "GOVERSION")
	m.Mochi = output(ctx, root, "go", "list", "-m", "-f", "{{.Path}} {{.Version}}", "github.com/mochi-mqtt/server/v2")
	m.Mosquitto = mosquittoVersion(ctx)

	if tern, err := goList(ctx, root, "github.com/tern-mqtt/tern"); err != nil {
		m.TernCommit = err.Error()
	} else {
		m.TernCommit = output(ctx, tern, "git", "rev-parse", "HEAD")
		// Tracked files only: the suite's own results are untracked files
		// of the same tree.
		if output(ctx, tern, "git", "status", "--porcelain", "--untracked-files=no") != "" {
			m.TernCommit += " with uncommitted changes"
		}
	}
	return m
}

// mosquittoVersion returns the first line of `mosquitto -h`, which prints
// the version (and exits non-zero).
func mosquittoVersion(ctx context.Context) string {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto" // not on a non-root PATH on Debian
		if _, err := os.Stat(bin); err != nil {
			return "not installed"
		}
	}
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}

// output runs name with args in dir and returns its trimmed stdout, or what
// went wrong.
func output(ctx context.Context, dir, name string, args ...string) string {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return fmt.Sprintf("unknown (%s: %v)", name, err)
	}
	return strings.TrimSpace(string(out))
}

// procField returns the value of the first "key: value" line of a /proc
// file, "" when there is none.
func procField(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
