package peers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/perf/loadgen"
)

// TestTernVariants builds Tern, starts each variant and checks that a
// durable one gets a fresh data directory that Stop removes. A variant the
// tree cannot run yet (no --data-dir) is skipped.
func TestTernVariants(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the broker")
	}
	dir := t.TempDir()
	for _, name := range []string{"tern", "tern-sync", "tern-batch", "tern-none"} {
		p, err := Prepare(context.Background(), name, dir)
		if errors.Is(err, ErrMissing) {
			t.Logf("%s: %v", name, err)
			continue
		}
		testutil.Require(t, err, name)
		testutil.Equal(t, p.Durability, strings.TrimPrefix(strings.TrimPrefix(name, "tern"), "-"), name+": durability")
		b, err := p.Start()
		testutil.Require(t, err, name+": start")
		c, err := net.Dial("tcp", b.Addr)
		testutil.Require(t, err, name+": dial")
		_ = c.Close()
		testutil.Equal(t, b.DataDir != "", p.Durability != "", name+": has a data directory")
		if b.DataDir != "" {
			_, err := os.Stat(b.DataDir)
			testutil.Require(t, err, name+": data directory")
		}
		testutil.Require(t, b.Stop(), name+": stop")
		if b.DataDir != "" {
			if _, err := os.Stat(b.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: data directory %s left after Stop: %v", name, b.DataDir, err)
			}
		}
	}
}

func TestMosquittoConfig(t *testing.T) {
	dir := t.TempDir()
	args, err := mosquittoArgs("127.0.0.1:18830", dir, "")
	testutil.Require(t, err, "mosquittoArgs")
	conf, err := os.ReadFile(args[1])
	testutil.Require(t, err, "read config")
	for _, want := range []string{"listener 18830 127.0.0.1", "persistence false", "max_queued_messages 0", "set_tcp_nodelay true"} {
		if !strings.Contains(string(conf), want+"\n") {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
}

// TestRelay builds and starts the relay peer and runs a short bounded fan-in
// through it at QoS 0 and 1.
func TestRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the relay")
	}
	p, err := Prepare(context.Background(), "relay", t.TempDir())
	testutil.Require(t, err, "prepare")
	b, err := p.Start()
	testutil.Require(t, err, "start")
	defer func() { testutil.Require(t, b.Stop(), "stop") }()
	f := func(qos byte) {
		t.Helper()
		o := loadgen.Options{Addr: b.Addr, BrokerPID: b.PID, Publishers: 4, Subscribers: 1, QoS: qos,
			Duration: time.Second, MaxMessages: 1000, ClientIDPrefix: fmt.Sprintf("relay-qos%d", qos)}
		res, err := loadgen.Run(context.Background(), o)
		testutil.Require(t, err, o.ClientIDPrefix)
		testutil.Equal(t, res.Received, int64(4000), o.ClientIDPrefix+": received")
		testutil.Equal(t, res.ConnErrors, int64(0), o.ClientIDPrefix+": connection errors")
	}
	f(0)
	f(1)
}
