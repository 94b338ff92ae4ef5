// Package peers builds and starts the brokers the benchmark suite compares:
// Tern itself (../cmd/tern), memory-only as "tern" and with a data directory
// as "tern-sync", "tern-batch" and "tern-none" (its --durability), Mosquitto
// (the installed Debian package), mochi-mqtt (perf/peers/mochi) and relay
// (perf/peers/relay: the least work any broker must do, the ceiling of the
// machine and the load generator), each as a separate process on a loopback
// port, so that the load generator can read the broker's CPU time from /proc.
//
// Binaries are built once, by Prepare, into a directory the caller owns;
// each Start then runs a fresh broker, and a durable Tern gets a fresh, empty
// data directory in it that Stop removes.
package peers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrMissing is returned by Prepare for a broker this machine cannot run,
// such as Mosquitto when it is not installed.
var ErrMissing = errors.New("peers: broker not available")

// Names lists the brokers Prepare knows, in the order the suite runs them.
var Names = []string{"tern", "tern-sync", "tern-batch", "tern-none", "tern-tls", "mosquitto", "mochi", "relay"}

// Default is the set the suite compares when not told otherwise: the
// memory-only brokers.
var Default = []string{"tern", "mosquitto", "mochi"}

// startTimeout bounds the wait for a started broker to accept connections.
const startTimeout = 10 * time.Second

// Peer is a broker ready to start: its binary is built or found.
type Peer struct {
	Name    string
	Version string // as the broker reports it, or the module version
	// Durability is Tern's --durability ("sync", "batch", "none") for the
	// durable variants, which Start gives a fresh data directory; "" for a
	// broker that keeps nothing on disk.
	Durability string
	// ExtraArgs are appended to the command line of every start (Tern
	// only, for diagnosis: say, --max-queued-messages 0).
	ExtraArgs []string
	// ClientTLS is the client side of the TLS listener of "tern-tls" (whose
	// address is the Broker's Addr); nil for the others.
	ClientTLS *tls.Config
	bin       string
	dir       string // for config files and data directories
	// args returns the command line for a broker listening on addr, with
	// dir for its config files and dataDir its data directory ("" unless
	// Durability is set).
	args func(addr, dir, dataDir string) ([]string, error)
}

// Prepare builds or finds the broker name, putting what it builds or writes
// in dir. It returns an error wrapping ErrMissing when the broker is not
// installed.
func Prepare(ctx context.Context, name, dir string) (*Peer, error) {
	p := &Peer{Name: name, dir: dir}
	switch name {
	case "tern", "tern-sync", "tern-batch", "tern-none", "tern-tls":
		if err := p.prepareTern(ctx); err != nil {
			return nil, err
		}
		if name == "tern-tls" {
			if err := p.prepareTLS(ctx); err != nil {
				return nil, err
			}
		}
	case "mochi", "relay":
		root, err := moduleDir(ctx, "github.com/tern-mqtt/tern/perf")
		if err != nil {
			return nil, err
		}
		p.bin = filepath.Join(dir, name)
		if err := goBuild(ctx, root, p.bin, "./peers/"+name); err != nil {
			return nil, err
		}
		p.Version = "mochi-mqtt/server/v2 v2.7.9"
		if name == "relay" {
			p.Version = "perf/peers/relay, working tree"
		}
		p.args = func(addr, _, _ string) ([]string, error) { return []string{"-listen", addr}, nil }
	case "mosquitto":
		bin, err := exec.LookPath("mosquitto")
		if err != nil {
			bin = "/usr/sbin/mosquitto" // not on a non-root PATH on Debian
			if _, err := os.Stat(bin); err != nil {
				return nil, fmt.Errorf("%w: mosquitto is not installed (apt-get install mosquitto)", ErrMissing)
			}
		}
		p.bin = bin
		out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
		p.Version, _, _ = strings.Cut(string(out), "\n")
		p.args = mosquittoArgs
	default:
		return nil, fmt.Errorf("%w: unknown broker %q (known: %s)", ErrMissing, name, strings.Join(Names, ", "))
	}
	return p, nil
}

// prepareTern builds Tern into p.dir (every variant shares the binary: the
// build cache makes the second build a link at most) and sets its command
// line. A durable variant needs a Tern with --data-dir: an older one is
// reported as missing, so a suite run skips it.
func (p *Peer) prepareTern(ctx context.Context) error {
	var err error
	if p.bin, err = BuildTern(ctx, p.dir); err != nil {
		return err
	}
	p.Version = "working tree"
	_, p.Durability, _ = strings.Cut(p.Name, "-")
	if p.Durability == "tls" { // tern-tls: memory only, over its TLS listener
		p.Durability = ""
	}
	if p.Durability != "" && !TernServeHas(ctx, p.bin, "data-dir") {
		return fmt.Errorf("%w: this tern has no --data-dir (persistence not built yet)", ErrMissing)
	}
	p.Version += ", " + cmp.Or(p.Durability, "memory only")
	// An admin listener on a fixed default port would collide between a
	// broker that is stopping and the next one.
	noAdmin := TernServeHas(ctx, p.bin, "admin-listen")
	anonymous := TernServeHas(ctx, p.bin, "allow-anonymous") // off by default since issue 6
	p.args = func(addr, _, dataDir string) ([]string, error) {
		args := []string{"serve", "--listen", addr, "--log-level", "error"}
		if noAdmin {
			args = append(args, "--admin-listen", "")
		}
		if anonymous {
			args = append(args, "--allow-anonymous")
		}
		if p.Durability != "" {
			args = append(args, "--data-dir", dataDir, "--durability", p.Durability)
		}
		return args, nil
	}
	return nil
}

// BuildTern builds the tern command of the tern module the perf module uses
// (../, by its replace directive) into dir and returns the binary's path.
func BuildTern(ctx context.Context, dir string) (string, error) {
	root, err := moduleDir(ctx, "github.com/tern-mqtt/tern")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tern")
	return bin, goBuild(ctx, root, bin, "./cmd/tern")
}

// TernServeHas reports whether `tern serve` of the binary bin has the flag
// name (without dashes), from its --help, so that the suite runs against a
// tree in which a flag is still being added.
func TernServeHas(ctx context.Context, bin, name string) bool {
	help, _ := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	return bytes.Contains(help, []byte("  -"+name+" ")) || bytes.Contains(help, []byte("  -"+name+"\n"))
}

// mosquittoArgs writes a config for a listener on addr and returns the
// arguments that run Mosquitto with it. The settings keep it from being
// handicapped: Nagle off as the others have it, and no cap on the queue of
// messages per client. It keeps nothing on disk (persistence false, its
// default): persistent sessions live in memory only.
func mosquittoArgs(addr, dir, _ string) ([]string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	conf := strings.Join([]string{
		"listener " + port + " " + host,
		"allow_anonymous true",
		"set_tcp_nodelay true",
		"max_queued_messages 0",
		"persistence false",
		"log_dest none",
		"",
	}, "\n")
	file := filepath.Join(dir, "mosquitto-"+port+".conf")
	// Mosquitto started as root drops to user mosquitto after reading it.
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write mosquitto config: %w", err)
	}
	return []string{"-c", file}, nil
}

// Broker is a running broker process.
type Broker struct {
	Name    string
	Addr    string // host:port it listens on
	PID     int
	DataDir string // the durable Tern's data directory, removed by Stop; "" for others
	cmd     *exec.Cmd
	done    chan error
	exited  chan struct{} // closed once the process has exited and been reaped
	exitErr error         // what Wait returned; set before exited is closed
}

// Start runs a fresh broker on a free loopback port and returns once it
// accepts TCP connections.
func (p *Peer) Start() (*Broker, error) {
	addr, err := FreePort()
	if err != nil {
		return nil, err
	}
	var dataDir string
	if p.Durability != "" {
		if dataDir, err = os.MkdirTemp(p.dir, p.Name+"-data-"); err != nil {
			return nil, fmt.Errorf("cannot create a data directory for %s: %w", p.Name, err)
		}
	}
	b, err := p.start(addr, dataDir)
	if err != nil && dataDir != "" {
		_ = os.RemoveAll(dataDir)
	}
	return b, err
}

// With starts a fresh broker, runs f with it and stops it. A failure to stop
// does not spoil f's measurement: it goes to warn, prefixed with prog.
func (p *Peer) With(prog string, warn io.Writer, f func(*Broker) error) error {
	b, err := p.Start()
	if err != nil {
		return err
	}
	err = f(b)
	if stopErr := b.Stop(); stopErr != nil {
		fmt.Fprintf(warn, "%s: %v\n", prog, stopErr)
	}
	return err
}

func (p *Peer) start(addr, dataDir string) (*Broker, error) {
	args, err := p.args(addr, p.dir, dataDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.bin, append(args, p.ExtraArgs...)...)
	cmd.Stderr = &tailWriter{} // kept for the error message if it dies
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s: %w", p.Name, err)
	}
	b := &Broker{Name: p.Name, Addr: addr, PID: cmd.Process.Pid, DataDir: dataDir, cmd: cmd,
		done: make(chan error, 1), exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		b.exitErr = err
		close(b.exited)
		b.done <- err
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return b, nil
		}
		select {
		case err := <-b.done:
			return nil, fmt.Errorf("%s exited at start: %v: %s", p.Name, err, cmd.Stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = b.Stop()
			return nil, fmt.Errorf("%s does not accept connections on %s after %v", p.Name, addr, startTimeout)
		}
	}
}

// Exited is closed once the broker process has exited, whether Stop ended
// it or it died: a long run watches it to tell a crash from a slow broker.
func (b *Broker) Exited() <-chan struct{} { return b.exited }

// ExitReport says how the broker exited and ends with the last 4 KiB of its
// stderr. It is valid once Exited is closed, and "" before.
func (b *Broker) ExitReport() string {
	select {
	case <-b.exited:
	default:
		return ""
	}
	status := "exit status 0"
	if b.exitErr != nil {
		status = b.exitErr.Error()
	}
	return fmt.Sprintf("%s; stderr: %s", status, b.cmd.Stderr)
}

// Stop sends SIGTERM and waits up to 5 s for the broker to exit, then kills
// it, and removes its data directory.
func (b *Broker) Stop() error {
	err := b.stop()
	if b.DataDir != "" {
		if rmErr := os.RemoveAll(b.DataDir); err == nil && rmErr != nil {
			err = fmt.Errorf("cannot remove %s's data directory: %w", b.Name, rmErr)
		}
	}
	return err
}

func (b *Broker) stop() error {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
		return nil
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
		return fmt.Errorf("%s did not stop on SIGTERM within 5 s; killed", b.Name)
	}
}

// FreePort returns a loopback address with a port nobody listens on now.
func FreePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// moduleDir returns the directory of module path as the current module sees
// it (the perf module replaces tern with ../).
func moduleDir(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	if err != nil {
		return "", fmt.Errorf("cannot locate module %s (run from inside perf/): %w", path, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// goBuild builds pkg of the module in root into out.
func goBuild(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cannot build %s in %s: %w\n%s", pkg, root, err, b)
	}
	return nil
}

// tailWriter keeps the last 4 KiB written to it.
type tailWriter struct{ b []byte }

func (w *tailWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	if len(w.b) > 4096 {
		w.b = w.b[len(w.b)-4096:]
	}
	return len(p), nil
}

func (w *tailWriter) String() string { return strconv.Quote(string(w.b)) }

// PrepareAll prepares the comma-separated brokers in names in a new
// temporary directory that cleanup removes. Brokers that are not installed
// are skipped with a line on stderr under prog's name; none at all is an
// error.
func PrepareAll(ctx context.Context, names, prog string) ([]*Peer, func(), error) {
	dir, err := os.MkdirTemp("", "tern-"+prog+"-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o755); err != nil { // Mosquitto reads its config as user mosquitto
		cleanup()
		return nil, nil, err
	}
	var ps []*Peer
	for _, name := range strings.Split(names, ",") {
		if strings.TrimSpace(name) == "tern-tls" && prog != "bench" {
			cleanup()
			return nil, nil, fmt.Errorf("%s speaks plain TCP only: tern-tls is for cmd/bench", prog)
		}
		p, err := Prepare(ctx, strings.TrimSpace(name), dir)
		if errors.Is(err, ErrMissing) {
			fmt.Fprintf(os.Stderr, "%s: skipping %s: %v\n", prog, name, err)
			continue
		}
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		fmt.Fprintf(os.Stderr, "%s: %s: %s\n", prog, p.Name, p.Version)
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		cleanup()
		return nil, nil, errors.New("no broker to run")
	}
	return ps, cleanup, nil
}
