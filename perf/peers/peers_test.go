package peers

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/tern-mqtt/tern/internal/testutil"
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
