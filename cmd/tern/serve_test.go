package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/internal/testutil"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Require(t, err, "listen")
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestServeStopsOnSIGTERM runs `tern serve`, connects a 5.0 client and sends
// the process SIGTERM: the client gets DISCONNECT 0x8B (server shutting
// down) and serve returns 0.
func TestServeStopsOnSIGTERM(t *testing.T) {
	addr := "127.0.0.1:" + freePort(t)
	code := make(chan int, 1)
	go func() {
		code <- serve([]string{"--listen", addr, "--allow-anonymous", "--log-level", "error", "--shutdown-timeout", "3s"})
	}()
	var c *testutil.V5
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if c, _, err = testutil.DialV5(addr, &paho.Connect{ClientID: "sigterm", CleanStart: true}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	testutil.Require(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM), "kill")
	select {
	case d := <-c.Disconnects:
		testutil.Equal(t, d.ReasonCode, byte(0x8B), "DISCONNECT reason on shutdown")
	case <-time.After(5 * time.Second):
		t.Fatal("no DISCONNECT 0x8B")
	}
	select {
	case rc := <-code:
		testutil.Equal(t, rc, 0, "exit code")
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return")
	}
}

func TestServeFlagErrors(t *testing.T) {
	f := func(args ...string) {
		t.Helper()
		if rc := serve(args); rc != 2 {
			t.Fatalf("serve %v = %d, want 2", args, rc)
		}
	}
	f("--max-inflight", "0")
	f("--max-queued-messages", "-5")
	f("--max-keepalive", "70000")
	f("--topic-alias-max", "70000")
	f("--log-level", "loud")
	f("--log-format", "xml")
	f("--no-such-flag")
	f("extra-arg")
	if rc := serve([]string{"--help"}); rc != 0 {
		t.Fatalf("--help exit %d", rc)
	}
}

// TestServePprofListen: --pprof-listen serves the Go profiles of the running
// broker on its own address, and stops with it.
func TestServePprofListen(t *testing.T) {
	addr := "127.0.0.1:" + freePort(t)
	paddr := "127.0.0.1:" + freePort(t)
	code := make(chan int, 1)
	go func() {
		code <- serve([]string{"--listen", addr, "--allow-anonymous", "--pprof-listen", paddr, "--log-level", "error", "--shutdown-timeout", "3s"})
	}()
	deadline := time.Now().Add(5 * time.Second)
	var body []byte
	for {
		resp, err := http.Get("http://" + paddr + "/debug/pprof/heap?debug=1")
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			testutil.Equal(t, resp.StatusCode, http.StatusOK, "status")
			testutil.Require(t, err, "read heap profile")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile endpoint did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(string(body), "heap profile") {
		t.Fatalf("not a heap profile: %.200s", body)
	}
	testutil.Require(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM), "kill")
	select {
	case rc := <-code:
		testutil.Equal(t, rc, 0, "exit code")
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return")
	}
	if resp, err := http.Get("http://" + paddr + "/debug/pprof/"); err == nil {
		resp.Body.Close()
		t.Fatal("profile endpoint still serving after shutdown")
	}
}

// TestServePprofListenBusy: an address --pprof-listen cannot listen on stops
// serve with exit 1 before it accepts MQTT connections.
func TestServePprofListenBusy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Require(t, err, "listen")
	defer l.Close()
	addr := "127.0.0.1:" + freePort(t)
	if rc := serve([]string{"--listen", addr, "--pprof-listen", l.Addr().String(), "--log-level", "error"}); rc != 1 {
		t.Fatalf("serve with a busy --pprof-listen = %d, want 1", rc)
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("MQTT listener open after a failed start")
	}
}
