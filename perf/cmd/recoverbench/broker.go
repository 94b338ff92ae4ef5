package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/codec"
)

// logLine is one line the broker wrote to stdout or stderr, with the time
// since its start at which recoverbench read it.
type logLine struct {
	At   time.Duration
	Text string
}

// broker is a running Tern whose output is captured line by line.
type broker struct {
	cmd   *exec.Cmd
	start time.Time
	done  chan error // the result of Wait

	mu    sync.Mutex
	lines []logLine
	read  chan struct{} // closed when the output reaches EOF
}

// startBroker runs bin with args, capturing its output; start is taken just
// before the process is created.
func startBroker(bin string, args []string) (*broker, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = w, w
	b := &broker{cmd: cmd, done: make(chan error, 1), read: make(chan struct{})}
	b.start = time.Now()
	err = cmd.Start()
	_ = w.Close() // the child holds its copy
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("cannot start %s: %w", bin, err)
	}
	go func() {
		defer close(b.read)
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := logLine{At: time.Since(b.start), Text: sc.Text()}
			b.mu.Lock()
			b.lines = append(b.lines, l)
			b.mu.Unlock()
		}
	}()
	go func() { b.done <- cmd.Wait() }()
	return b, nil
}

// output returns the lines read so far.
func (b *broker) output() []logLine {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]logLine(nil), b.lines...)
}

// ready measures the time from the broker's start until it accepts TCP on
// addr (tcp) and until it answers a CONNECT with a successful CONNACK
// (ready). It retries refused connections and CONNECTs that are closed or
// refused, for at most timeout, and fails at once when the broker exits.
func (b *broker) ready(addr string, timeout time.Duration) (tcp, ready time.Duration, err error) {
	deadline := b.start.Add(timeout)
	connect, err := (&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{
		ProtocolVersion: codec.Version311, CleanStart: true, ClientID: []byte("recoverbench-probe")}}).Append(nil, codec.Version311)
	if err != nil {
		return 0, 0, err
	}
	for time.Now().Before(deadline) {
		select {
		case err := <-b.done:
			b.done <- err
			return tcp, 0, fmt.Errorf("broker exited during recovery: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if tcp == 0 {
			tcp = time.Since(b.start)
		}
		ok, err := probe(c, connect, deadline)
		_ = c.Close()
		if ok {
			return tcp, time.Since(b.start), nil
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return tcp, 0, fmt.Errorf("no CONNACK from %s within %v", addr, timeout)
}

// probe sends CONNECT on c and reports whether a successful CONNACK came
// back before deadline; it sends DISCONNECT after it.
func probe(c net.Conn, connect []byte, deadline time.Time) (bool, error) {
	_ = c.SetDeadline(deadline)
	if _, err := c.Write(connect); err != nil {
		return false, err
	}
	m := newConn(c)
	p, err := m.next()
	if err != nil {
		return false, err
	}
	if p.Type != codec.CONNACK || p.Connack.ReasonCode != codec.Success {
		return false, nil
	}
	_, _ = c.Write([]byte{byte(codec.DISCONNECT) << 4, 0})
	return true, nil
}

// memory returns the broker's resident set size and its peak (VmRSS and
// VmHWM of /proc/PID/status), in bytes.
func (b *broker) memory() (rss, hwm int64, err error) {
	s, err := os.ReadFile("/proc/" + strconv.Itoa(b.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the broker's memory use: %w", err)
	}
	field := func(name string) int64 {
		_, rest, ok := bytes.Cut(s, []byte("\n"+name+":"))
		if !ok {
			return 0
		}
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		kb, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(line), []byte(" kB"))), 10, 64)
		return kb << 10
	}
	return field("VmRSS"), field("VmHWM"), nil
}

// stop sends SIGTERM and waits up to timeout for the broker to exit, then
// kills it. It returns how long the clean stop took.
func (b *broker) stop(timeout time.Duration) (time.Duration, error) {
	t := time.Now()
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
		<-b.read
		return time.Since(t), nil
	case <-time.After(timeout):
		_ = b.cmd.Process.Kill()
		<-b.done
		<-b.read
		return time.Since(t), fmt.Errorf("broker did not stop on SIGTERM within %v; killed", timeout)
	}
}
