package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/internal/testutil"
)

// Tests of tern ctl against a running broker and its admin endpoint.

// runCtl runs tern ctl with args and returns its output and exit code.
func runCtl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = ctlCmd(args, &out, &errb)
	return out.String(), errb.String(), code
}

// ctlOK runs tern ctl --admin ADDR args and wants exit code 0.
func (e *apiEnv) ctlOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := runCtl(t, append([]string{"--admin", e.admin.Addr()}, args...)...)
	if code != 0 {
		t.Fatalf("tern ctl %q: exit %d\n%s", args, code, errs)
	}
	return out
}

// ctlFail runs tern ctl --admin ADDR args and wants exit code 1 with want
// on stderr.
func (e *apiEnv) ctlFail(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errs, code := runCtl(t, append([]string{"--admin", e.admin.Addr()}, args...)...)
	if code != 1 || !strings.Contains(errs, want) || out != "" {
		t.Fatalf("tern ctl %q: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errs, want)
	}
}

// tableRows splits a table into its rows of fields (split on runs of two
// spaces or more, as tabwriter pads), header first.
func tableRows(out string) [][]string {
	var rows [][]string
	for line := range strings.SplitSeq(strings.TrimRight(out, "\n"), "\n") {
		var row []string
		for f := range strings.SplitSeq(line, "  ") {
			if f = strings.TrimSpace(f); f != "" {
				row = append(row, f)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func column(rows [][]string, i int) []string {
	var out []string
	for _, r := range rows[1:] {
		out = append(out, r[i])
	}
	return out
}

// fields reads the "key: value" lines of out.
func fields(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// wantFields fails unless out has the "key: value" lines want (key, value,
// key, value...).
func wantFields(t *testing.T, out string, want ...string) {
	t.Helper()
	got := fields(out)
	for i := 0; i < len(want); i += 2 {
		if v, ok := got[want[i]]; !ok || v != want[i+1] {
			t.Fatalf("%s: %q, want %q in:\n%s", want[i], v, want[i+1], out)
		}
	}
}

func decodeJSON(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return m
}

func TestCtlSessions(t *testing.T) {
	e := startAPI(t, false, "")
	odd := "dev/with space"
	c1 := mqttConnect(t, e, "c1", 3600)
	mqttSubscribe(t, c1, nil, paho.SubscribeOptions{Topic: "a/+", QoS: 1})
	gone := mqttConnect(t, e, odd, 0xFFFFFFFF)
	mqttSubscribe(t, gone, nil, paho.SubscribeOptions{Topic: "x/#", QoS: 2, NoLocal: true})
	testutil.Require(t, gone.Disconnect(&paho.Disconnect{}), "disconnect")
	mqttConnect(t, e, "other", 0)
	waitFor(t, odd+" offline", func() bool {
		info, _, err := e.srv.Session(odd)
		return err == nil && !info.Online
	})

	rows := tableRows(e.ctlOK(t, "sessions", "list"))
	if !slices.Equal(rows[0], []string{"CLIENT ID", "STATE", "PROTOCOL", "LISTENER", "REMOTE", "SUBS", "QUEUED", "INFLIGHT", "EXPIRY"}) {
		t.Fatalf("header %q", rows[0])
	}
	testutil.Equal(t, len(rows), 4, "rows")
	testutil.Equal(t, strings.Join(column(rows, 0), ","), `c1,"dev/with space",other`, "client ids")
	testutil.Equal(t, strings.Join(column(rows, 1), ","), "online,offline,online", "states")
	testutil.Equal(t, strings.Join(column(rows, 8), ","), "1h0m0s,never,0s", "expiry")
	testutil.Equal(t, rows[1][2], "5.0", "protocol")
	testutil.Equal(t, rows[1][3], "tcp", "listener")
	testutil.Equal(t, rows[2][4], "-", "remote of an offline session")

	f := func(want string, args ...string) {
		t.Helper()
		if got := strings.Join(column(tableRows(e.ctlOK(t, append([]string{"sessions", "list"}, args...)...)), 0), ","); got != want {
			t.Fatalf("sessions list %q: %s, want %s", args, got, want)
		}
	}
	f("c1,other", "--state", "online")
	f(`"dev/with space"`, "--state", "offline")
	f(`"dev/with space"`, "--prefix", "dev/")
	f("other", "--after", odd)
	f(`c1,"dev/with space",other`, "--limit", "1", "--all")

	// One page: the rest is announced on stderr.
	out, errs, code := runCtl(t, "--admin", e.admin.Addr(), "sessions", "list", "--limit", "2")
	testutil.Equal(t, code, 0, "exit code")
	testutil.Equal(t, len(tableRows(out)), 3, "rows of a page of 2")
	if !strings.Contains(errs, "--after 'dev/with space'") || !strings.Contains(errs, "--all") {
		t.Fatalf("no hint of the next page: %q", errs)
	}

	// --json: the API's page, or every page merged with --all.
	m := decodeJSON(t, e.ctlOK(t, "sessions", "list", "--json", "--limit", "1"))
	testutil.Equal(t, m["next"], any("c1"), "next")
	testutil.Equal(t, len(m["items"].([]any)), 1, "items")
	m = decodeJSON(t, e.ctlOK(t, "--json", "sessions", "list", "--limit", "1", "--all"))
	testutil.Equal(t, len(m["items"].([]any)), 3, "items of --all")
	if _, ok := m["next"]; ok {
		t.Fatal("next in the output of --all")
	}

	// show, flags after the id.
	out = e.ctlOK(t, "sessions", "show", odd)
	wantFields(t, out, "client id", `"dev/with space"`, "state", "offline", "protocol", "5.0",
		"session expiry", "never", "subscriptions", "1", "queued", "0 messages, 0 bytes")
	_, subs, _ := strings.Cut(out, "\n\n")
	if rows := tableRows(subs); !slices.Equal(rows[1], []string{"x/#", "2", "no_local"}) {
		t.Fatalf("subscriptions of sessions show:\n%s", out)
	}
	m = decodeJSON(t, e.ctlOK(t, "sessions", "show", "c1", "--json"))
	testutil.Equal(t, m["session"].(map[string]any)["client_id"], any("c1"), "client_id")
	// Ids that a path would lose to cleaning.
	for _, id := range []string{".", "..", "a/../b", "100%"} {
		mqttConnect(t, e, id, 0)
		wantFields(t, e.ctlOK(t, "sessions", "show", id), "client id", id)
		testutil.Equal(t, e.ctlOK(t, "sessions", "delete", id), "deleted the session of "+id+"\n", "delete "+id)
	}

	// kick and delete.
	testutil.Equal(t, e.ctlOK(t, "sessions", "kick", "c1"), "disconnected c1\n", "kick output")
	wantKicked(t, c1)
	e.ctlFail(t, `client "c1" is not connected (404 Not Found)`, "sessions", "kick", "c1")
	e.ctlFail(t, `no session of client id "nope"`, "sessions", "kick", "nope")
	testutil.Equal(t, e.ctlOK(t, "sessions", "delete", odd), "deleted the session of \"dev/with space\"\n", "delete output")
	e.ctlFail(t, `no session of client id "dev/with space" (404 Not Found)`, "sessions", "show", odd)
	m = decodeJSON(t, e.ctlOK(t, "sessions", "delete", "--json", "c1"))
	testutil.Equal(t, m["deleted"], any(true), "deleted")
	e.ctlFail(t, "bad state", "sessions", "list", "--state", "maybe")
	e.ctlFail(t, "bad limit", "sessions", "list", "--limit", "20000")
}

func TestCtlSubscriptions(t *testing.T) {
	e := startAPI(t, false, "")
	s1 := mqttConnect(t, e, "s1", 0)
	mqttSubscribe(t, s1, nil, paho.SubscribeOptions{Topic: "a/+", QoS: 1}, paho.SubscribeOptions{Topic: "b/#"})
	s2 := mqttConnect(t, e, "s2", 0)
	id := 9
	mqttSubscribe(t, s2, &paho.SubscribeProperties{SubscriptionIdentifier: &id},
		paho.SubscribeOptions{Topic: "a/x", QoS: 2, RetainHandling: 1})

	rows := tableRows(e.ctlOK(t, "subscriptions", "list"))
	if !slices.Equal(rows[0], []string{"CLIENT ID", "FILTER", "QOS", "OPTIONS"}) {
		t.Fatalf("header %q", rows[0])
	}
	testutil.Equal(t, strings.Join(rows[3], " "), "s2 a/x 2 retain_handling=1,id=9", "row with options")
	f := func(want string, args ...string) {
		t.Helper()
		rows := tableRows(e.ctlOK(t, append([]string{"subscriptions", "list"}, args...)...))
		var got []string
		for _, r := range rows[1:] {
			got = append(got, r[0]+" "+r[1])
		}
		if strings.Join(got, ",") != want {
			t.Fatalf("subscriptions list %q: %q, want %s", args, got, want)
		}
	}
	f("s1 a/+,s1 b/#,s2 a/x")
	f("s1 a/+,s2 a/x", "--topic", "a/x")
	f("s1 b/#", "--filter", "b/#")
	f("s2 a/x", "--client-prefix", "s2")
	f("s1 a/+,s1 b/#,s2 a/x", "--limit", "1", "--all")

	// The cursor printed for the next page works as --after.
	_, errs, code := runCtl(t, "--admin", e.admin.Addr(), "subscriptions", "list", "--limit", "2")
	testutil.Equal(t, code, 0, "exit code")
	_, after, ok := strings.Cut(strings.TrimSpace(errs), "--after ")
	if !ok {
		t.Fatalf("no cursor on stderr: %q", errs)
	}
	f("s2 a/x", "--after", strings.TrimSuffix(after, ")"))

	m := decodeJSON(t, e.ctlOK(t, "subscriptions", "list", "--json"))
	testutil.Equal(t, len(m["items"].([]any)), 3, "items")
	e.ctlFail(t, "bad topic", "subscriptions", "list", "--topic", "a/#")
}

func TestCtlRetained(t *testing.T) {
	e := startAPI(t, true, "")
	pub := mqttConnect(t, e, "pub", 0)
	mqttPublish(t, pub, "r/1", []byte("hello world"), 1, true)
	mqttPublish(t, pub, "r/bin", []byte{0, 0xff}, 0, true)
	mqttPublish(t, pub, "-dash", []byte("esc\x1b[2J"), 1, true)
	waitFor(t, "3 retained", func() bool { return e.srv.Snapshot().Retained == 3 })

	rows := tableRows(e.ctlOK(t, "retained", "list"))
	if !slices.Equal(rows[0], []string{"TOPIC", "QOS", "PAYLOAD BYTES", "CREATED", "EXPIRES"}) {
		t.Fatalf("header %q", rows[0])
	}
	testutil.Equal(t, strings.Join(column(rows, 0), ","), "-dash,r/1,r/bin", "topics")
	testutil.Equal(t, strings.Join(column(rows, 2), ","), "7,11,2", "payload sizes")
	testutil.Equal(t, rows[1][4], "-", "expires")
	rows = tableRows(e.ctlOK(t, "retained", "list", "--filter", "r/+"))
	testutil.Equal(t, strings.Join(column(rows, 0), ","), "r/1,r/bin", "topics matching r/+")

	wantFields(t, e.ctlOK(t, "retained", "get", "r/1"), "topic", "r/1", "qos", "1", "payload", "hello world",
		"size", "14 bytes, payload 11")
	wantFields(t, e.ctlOK(t, "retained", "get", "r/bin"), "payload (base64)", "AP8=")
	// A control sequence in a payload does not reach the terminal.
	wantFields(t, e.ctlOK(t, "retained", "get", "--", "-dash"), "payload", `"esc\x1b[2J"`)
	m := decodeJSON(t, e.ctlOK(t, "retained", "get", "--json", "r/bin"))
	testutil.Equal(t, m["payload_base64"], any("AP8="), "payload_base64")

	testutil.Equal(t, e.ctlOK(t, "retained", "delete", "r/1"), "deleted the retained message on r/1\n", "delete output")
	e.ctlFail(t, `no retained message on topic "r/1" (404 Not Found)`, "retained", "get", "r/1")
	e.ctlFail(t, `no retained message on topic "r/1"`, "retained", "delete", "r/1")
	e.ctlFail(t, "bad filter", "retained", "list", "--filter", "a/#/b")
}

func TestCtlStats(t *testing.T) {
	e := startAPI(t, true, "")
	c := mqttConnect(t, e, "c", 0)
	mqttPublish(t, c, "s", []byte("x"), 1, false)
	out := e.ctlOK(t, "stats")
	wantFields(t, out, "version", version, "ready", "yes", "connections", "1 (1 past CONNECT)",
		"sessions", "1 (0 offline)", "messages received", "QoS 0: 0, QoS 1: 1, QoS 2: 0",
		"dropped slow_subscriber", "0")
	if !strings.HasSuffix(fields(out)["store"], " recoveries") {
		t.Fatalf("no store line:\n%s", out)
	}
	m := decodeJSON(t, e.ctlOK(t, "stats", "--json"))
	testutil.Equal(t, m["version"], any(version), "version")
}

func TestCtlUsage(t *testing.T) {
	f := func(code int, want string, args ...string) {
		t.Helper()
		out, errs, got := runCtl(t, args...)
		if got != code || !strings.Contains(out+errs, want) {
			t.Fatalf("tern ctl %q: exit %d, want %d with %q\nstdout: %s\nstderr: %s", args, got, code, want, out, errs)
		}
	}
	f(2, "usage: tern ctl")
	f(0, "usage: tern ctl", "--help")
	f(0, "sessions kick ID", "help")
	f(2, "unknown command", "bogus")
	f(2, "missing subcommand", "sessions")
	f(2, `unknown subcommand "frob"`, "retained", "frob")
	f(2, "missing argument", "sessions", "show")
	f(2, `unexpected argument "b"`, "sessions", "show", "a", "b")
	f(2, `unexpected argument "x"`, "stats", "x")
	f(2, "flag provided but not defined", "sessions", "list", "--nope")
	f(0, "usage: tern ctl sessions list", "sessions", "list", "-h")
	f(0, "--state", "sessions", "list", "--help")
	f(0, "usage: tern ctl retained delete TOPIC", "retained", "delete", "-h")
}

// TestCtlAddress checks how ctl finds the endpoint, and what it says when
// it cannot.
func TestCtlAddress(t *testing.T) {
	e := startAPI(t, false, "")
	mqttConnect(t, e, "c1", 0)
	f := func(code int, want string, args ...string) {
		t.Helper()
		out, errs, got := runCtl(t, args...)
		if got != code || !strings.Contains(out+errs, want) {
			t.Fatalf("tern ctl %q: exit %d, want %d with %q\nstdout: %s\nstderr: %s", args, got, code, want, out, errs)
		}
	}
	f(0, "c1", "--data-dir", e.dataDir, "sessions", "list")
	f(0, "c1", "sessions", "list", "--data-dir", e.dataDir)
	empty := t.TempDir()
	f(1, filepath.Join(empty, adminAddrFile), "--data-dir", empty, "stats")

	// Nothing listens on a port just closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Require(t, err, "listen")
	dead := l.Addr().String()
	testutil.Require(t, l.Close(), "close")
	f(1, "cannot reach the broker's admin endpoint at "+dead+" (from --admin)", "--admin", dead, "stats")
}

func TestCtlToken(t *testing.T) {
	e := startAPI(t, false, "s3cret")
	dir := t.TempDir()
	good, bad, empty := filepath.Join(dir, "good"), filepath.Join(dir, "bad"), filepath.Join(dir, "empty")
	testutil.Require(t, os.WriteFile(good, []byte("s3cret\n"), 0o600), "write token")
	testutil.Require(t, os.WriteFile(bad, []byte("wrong\n"), 0o600), "write token")
	testutil.Require(t, os.WriteFile(empty, nil, 0o600), "write token")

	e.ctlFail(t, "--token-file", "stats")
	e.ctlFail(t, "401 Unauthorized", "--token-file", bad, "stats")
	e.ctlFail(t, "is empty", "--token-file", empty, "stats")
	e.ctlFail(t, "cannot read the admin token", "--token-file", filepath.Join(dir, "missing"), "stats")
	if out := e.ctlOK(t, "--token-file", good, "stats"); !strings.Contains(out, "version:") {
		t.Fatalf("stats with the token:\n%s", out)
	}
	e.ctlOK(t, "sessions", "list", "--token-file", good)
	e.ctlOK(t, "--admin-token-file", good, "stats") // the name serve and tern wal tail use
}
