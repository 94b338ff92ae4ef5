package main

// Regression tests of what the review of issue 7 found in the serve
// settings and the admin endpoint.

import (
	"bytes"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

func flagGiven(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// --print-config writes admin-listen = "" for an admin-listen that was not
// given; loaded back, that "" counts as given and turns off the admin
// endpoint that --data-dir alone starts (docs/configuration.md: "its output
// is itself a valid config file", and `admin-listen = ""` turns it off).
func TestRegress7PrintConfigAdminListenRoundTrip(t *testing.T) {
	fs, _, cfg, err := loadServe(t, "--data-dir", t.TempDir())
	testutil.Require(t, err, "load")
	var out bytes.Buffer
	testutil.Require(t, printConfig(&out, fs, cfg), "print")
	fs2, _, _, err := loadServe(t, "--config", writeConfig(t, out.String()))
	testutil.Require(t, err, "load the printed config")
	if flagGiven(fs, "admin-listen") != flagGiven(fs2, "admin-listen") {
		t.Fatalf("admin-listen given: %v before, %v after loading --print-config's output back; "+
			"with data-dir the admin endpoint goes from a random loopback port to off",
			flagGiven(fs, "admin-listen"), flagGiven(fs2, "admin-listen"))
	}
}

// --print-config exits 0 on settings that serve refuses with exit code 2,
// so it cannot be used to check a config before a restart.
func TestRegress7PrintConfigDoesNotValidate(t *testing.T) {
	stdout := os.Stdout
	tmp, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	testutil.Require(t, err, "create")
	os.Stdout = tmp
	rc := serve([]string{"--max-inflight", "0", "--log-level", "verbose", "--print-config"})
	os.Stdout = stdout
	if rc != 2 {
		t.Fatalf("serve --max-inflight 0 --log-level verbose --print-config: exit %d, want 2 as without --print-config", rc)
	}
}

// --max-session-expiry 0 caps every session at 0 s: it ends with its
// connection (the engine reads a 0 cap as unset, hence NoSessionExpiry).
func TestRegress7MaxSessionExpiryZero(t *testing.T) {
	fs, s := newServeFlags()
	fs.SetOutput(new(bytes.Buffer))
	testutil.Require(t, fs.Parse([]string{"--max-session-expiry", "0"}), "parse")
	o := s.o
	o.NoSessionExpiry = s.maxSessionExp == 0 // as serve does
	srv := testutil.StartBroker(t, o)
	exp := uint32(3600)
	c, ack, err := testutil.DialV5(srv.Addr().String(), &paho.Connect{ClientID: "r7-keep", CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &exp}})
	testutil.Require(t, err, "connect")
	if ack.Properties == nil || ack.Properties.SessionExpiryInterval == nil || *ack.Properties.SessionExpiryInterval != 0 {
		t.Errorf("CONNACK does not tell the client its expiry is 0: %+v", ack.Properties)
	}
	_ = c.Disconnect(&paho.Disconnect{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := srv.Session("r7-keep"); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("--max-session-expiry 0: the session outlived its connection")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Zeros the engine would quietly replace by its defaults are refused, and so
// are bad values, by --print-config as by serve.
func TestRegress7SettingsChecked(t *testing.T) {
	f := func(args ...string) {
		t.Helper()
		fs, s := newServeFlags()
		fs.SetOutput(new(bytes.Buffer))
		testutil.Require(t, fs.Parse(args), "parse")
		if err := s.check(); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	f("--max-queued-bytes", "0")
	f("--max-packet-size", "0")
	f("--max-packet-size", "300000000")
	f("--max-outbound-bytes", "0")
	f("--connect-timeout", "0s")
	f("--slow-consumer-timeout", "0s")
	f("--shutdown-timeout", "0s")
	f("--max-connections", "0")
	f("--min-free-bytes", "0")
	f("--durability", "fast")
	f("--log-format", "xml")
	f("--tls-client-auth", "maybe")
	fs, s := newServeFlags()
	testutil.Require(t, fs.Parse(nil), "parse")
	testutil.Require(t, s.check(), "the defaults")
}

// An empty (or blank) --admin-token-file starts the admin endpoint without
// any authentication: every /v1 action, pprof included, is open. tern ctl
// refuses the same file as empty.
func TestRegress7EmptyAdminTokenFailsOpen(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	testutil.Require(t, os.WriteFile(tokenFile, []byte(" \n"), 0o600), "write token")
	addr := "127.0.0.1:" + freePort(t)
	admin := "127.0.0.1:" + freePort(t)
	code := make(chan int, 1)
	go func() {
		code <- serve([]string{"--listen", addr, "--allow-anonymous", "--log-level", "error",
			"--admin-listen", admin, "--admin-token-file", tokenFile, "--shutdown-timeout", "3s"})
	}()
	var status int
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/v1/stats")
		if err == nil {
			status = resp.StatusCode
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if status != http.StatusServiceUnavailable {
				break
			}
		}
		select {
		case rc := <-code:
			if rc != 0 {
				return // refusing to start is a fix
			}
			t.Fatalf("serve returned %d", rc)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("admin endpoint did not answer")
		}
	}
	testutil.Require(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM), "kill")
	select {
	case <-code:
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return")
	}
	if status != http.StatusUnauthorized {
		t.Fatalf("GET /v1/stats without a token, with a blank --admin-token-file: %d, want 401 (or serve refusing to start)", status)
	}
}

// The broker's own retained $SYS values are listed by the API, read-only.
func TestRegress7RetainedSysListed(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	srv := engine.New(engine.Options{Listen: "127.0.0.1:0", EventLoops: 1, SysInterval: 50 * time.Millisecond, Logger: log})
	a, err := startAdmin(adminOptions{Addr: "127.0.0.1:0", Server: srv, Logger: log})
	testutil.Require(t, err, "start admin")
	t.Cleanup(func() { closeAdmin(t, a) })
	testutil.Require(t, srv.Start(), "start")
	t.Cleanup(func() { _ = srv.Stop(testutil.Ctx(t)) })
	c := testutil.ConnectV5(t, srv.Addr().String(), &paho.Connect{ClientID: "r7-sys", CleanStart: true})
	_, err = c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$SYS/broker/version"}}})
	testutil.Require(t, err, "subscribe")
	c.Recv(t) // the broker does have it, retained
	code, body := callAdmin(t, a.Addr(), "", http.MethodGet, "/v1/retained?filter=%24SYS%2F%23")
	var p struct{ Items []any }
	_ = json.Unmarshal(body, &p)
	if code != 200 || len(p.Items) == 0 {
		t.Fatalf("GET /v1/retained?filter=$SYS/#: %d %s", code, body)
	}
	code, _ = callAdmin(t, a.Addr(), "", http.MethodGet, "/v1/retained/%24SYS%2Fbroker%2Fversion")
	testutil.Equal(t, code, http.StatusOK, "GET a $SYS value")
	code, _ = callAdmin(t, a.Addr(), "", http.MethodDelete, "/v1/retained/%24SYS%2Fbroker%2Fversion")
	testutil.Equal(t, code, http.StatusForbidden, "DELETE a $SYS value")
}
