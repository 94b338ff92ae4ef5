package crash

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildTern builds cmd/tern into dir, without -race: the race detector
// instruments the test process, the broker under test runs at full speed.
func buildTern(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "tern")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tern")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tern in %s: %v\n%s", root, err, out)
	}
	return bin
}

// serveFlags returns the flags `tern serve --help` lists.
func serveFlags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	flags := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "-") {
			flags[strings.TrimLeft(f[0], "-")] = true
		}
	}
	return flags
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// broker is the tern process under test. Its stdout and stderr go to one log
// file, kept across restarts, each start preceded by a marker line.
type broker struct {
	bin     string
	addr    string
	args    []string
	logPath string

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	starts int
	killed bool // the last exit was our SIGKILL
}

// start starts the broker and returns once it logged "listening" and accepts
// TCP connections.
func (b *broker) start(deadline time.Time) error {
	from, err := b.spawn()
	if err != nil {
		return err
	}
	logged := false
	for {
		select {
		case <-b.exited:
			return fmt.Errorf("broker exited during start-up (%s); log:\n%s", b.cmd.ProcessState, b.logSince(from))
		default:
		}
		if !logged {
			logged = strings.Contains(b.logSince(from), "msg=listening")
		}
		if logged {
			if nc, err := net.DialTimeout("tcp", b.addr, 200*time.Millisecond); err == nil {
				_ = nc.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = b.kill()
			return fmt.Errorf("broker not accepting connections on %s in time (listening logged: %v); log:\n%s", b.addr, logged, b.logSince(from))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killDuringStart starts the broker and kills it after d, wherever its
// start-up (recovery) got to; it reports whether it was listening by then.
func (b *broker) killDuringStart(d time.Duration) (bool, error) {
	from, err := b.spawn()
	if err != nil {
		return false, err
	}
	time.Sleep(d)
	listening := strings.Contains(b.logSince(from), "msg=listening")
	return listening, b.kill()
}

// spawn starts the process and returns the log offset its output begins at.
func (b *broker) spawn() (int64, error) {
	b.starts++
	lf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	st, _ := lf.Stat()
	from := st.Size()
	args := make([]string, len(b.args))
	for i, a := range b.args {
		if args[i] = a; a == "" {
			args[i] = `""`
		}
	}
	fmt.Fprintf(lf, "=== crash test: start %d at %s: %s %s\n", b.starts, time.Now().Format(time.StampMilli), b.bin, strings.Join(args, " "))
	cmd := exec.Command(b.bin, b.args...)
	// The test's own TERN_CRASH_* knobs would reach tern serve as settings
	// it does not know (a warning each): the broker gets only its flags.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TERN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	err = cmd.Start()
	_ = lf.Close()
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", b.bin, err)
	}
	b.cmd, b.exited, b.killed = cmd, make(chan struct{}), false
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(b.exited)
	return from, nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *broker) kill() error {
	if b.cmd == nil {
		return nil
	}
	select {
	case <-b.exited:
		return fmt.Errorf("broker had already exited: %s", b.cmd.ProcessState)
	default:
	}
	b.killed = true
	if err := syscall.Kill(b.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill -9 %d: %w", b.cmd.Process.Pid, err)
	}
	<-b.exited
	return nil
}

// alive returns an error when the broker exited without being killed.
func (b *broker) alive() error {
	if b.cmd == nil {
		return errors.New("broker not started")
	}
	select {
	case <-b.exited:
		if !b.killed {
			return fmt.Errorf("broker exited on its own: %s", b.cmd.ProcessState)
		}
	default:
	}
	return nil
}

func (b *broker) logSince(off int64) string {
	data, _ := os.ReadFile(b.logPath)
	if off > int64(len(data)) {
		return ""
	}
	return string(data[off:])
}

// logDigest returns what helps explain a failure: every warning and error of
// the whole run and the last lines of the log.
func (b *broker) logDigest(tail int) string {
	data, _ := os.ReadFile(b.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var out bytes.Buffer
	var notable []string
	for _, l := range lines {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "panic") {
			notable = append(notable, l)
		}
	}
	if len(notable) > 50 {
		notable = append(notable[:25], append([]string{"\t..."}, notable[len(notable)-25:]...)...)
	}
	fmt.Fprintf(&out, "broker log %s: %d warnings/errors", b.logPath, len(notable))
	for _, l := range notable {
		out.WriteString("\n\t" + l)
	}
	fmt.Fprintf(&out, "\nlast %d lines:", tail)
	for _, l := range lines[max(0, len(lines)-tail):] {
		out.WriteString("\n\t" + l)
	}
	return out.String()
}
