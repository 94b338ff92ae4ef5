package engine_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestAcceptSurvivesEMFILE runs the process out of file descriptors while
// clients connect: accept fails with EMFILE, and once descriptors are free
// again the listener still accepts (issue: an accept error must not stop the
// listener). The soft limit is lowered for this test only and restored.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()

	var old syscall.Rlimit
	testutil.Require(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old), "getrlimit")
	lowered := old
	lowered.Cur = uint64(countOpenFDs(t) + 40)
	testutil.Require(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered), "setrlimit")
	restored := false
	restore := func() {
		if !restored {
			restored = true
			testutil.Require(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old), "restore rlimit")
		}
	}
	defer restore()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Snapshot().AcceptErrors == 0 && time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			time.Sleep(10 * time.Millisecond) // the client side ran out first; let accept catch up
			continue
		}
		conns = append(conns, c)
	}
	if srv.Snapshot().AcceptErrors == 0 {
		t.Fatal("accept never failed: the test did not exhaust descriptors")
	}
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	restore()

	// The listener backs off and keeps accepting.
	c := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "after-emfile", CleanStart: true})
	_, err := c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "x"}}})
	testutil.Require(t, err, "subscribe after EMFILE")
}

func countOpenFDs(t *testing.T) int {
	t.Helper()
	n := 0
	for fd := 0; fd < 4096; fd++ {
		var st syscall.Stat_t
		if syscall.Fstat(fd, &st) == nil {
			n = fd + 1
		}
	}
	return n
}
