package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/wal"
)

// captureStdout runs fn with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, fn func() int) (string, int) {
	t.Helper()
	r, w, err := os.Pipe()
	testutil.Require(t, err, "pipe")
	old := os.Stdout
	os.Stdout = w
	code := fn()
	os.Stdout = old
	w.Close()
	out, _ := io.ReadAll(r)
	return string(out), code
}

// TestWalTailAndCheck writes a small store with the wal package, stops it,
// and reads it back with `tern wal tail` (text and json) and `tern wal check`.
func TestWalTailAndCheck(t *testing.T) {
	dir := t.TempDir()
	st, err := wal.Open(wal.Options{Dir: dir})
	testutil.Require(t, err, "open")
	done := make(chan error, 1)
	b := wal.NewBatch(wal.KindPublish, []byte("publisher-1"))
	b.SessionPut([]byte("subscriber-1"), &wal.Session{Expiry: 3600, Version: 5})
	m := wal.Message{Topic: []byte("sensors/1/temp"), Payload: []byte("21.5"), QoS: 1, Created: 1}
	b.SetTopic(m.Topic, 1, len(m.Payload))
	id := st.NewMessageID()
	b.MessagePut(id, &m)
	b.QueuePut([]byte("subscriber-1"), st.NewQueueSeq(), &wal.QueueEntry{MsgID: id, QoS: 1})
	testutil.Require(t, st.Submit(b, func(err error) { done <- err }), "submit")
	testutil.Require(t, <-done, "commit")
	testutil.Require(t, st.Close(), "close")

	out, code := captureStdout(t, func() int { return walCmd([]string{"tail", "--data-dir", dir}) })
	testutil.Equal(t, code, 0, "tail exit code")
	if !strings.Contains(out, "publisher-1") || !strings.Contains(out, "sensors/1/temp") {
		t.Fatalf("tail output lacks the record:\n%s", out)
	}
	out, code = captureStdout(t, func() int { return walCmd([]string{"tail", "--data-dir", dir, "--format", "json"}) })
	testutil.Equal(t, code, 0, "tail json exit code")
	if !strings.HasPrefix(strings.TrimSpace(out), "{") || !strings.Contains(out, `"sensors/1/temp"`) {
		t.Fatalf("json tail output:\n%s", out)
	}
	_, code = captureStdout(t, func() int { return walCmd([]string{"check", "--data-dir", dir}) })
	testutil.Equal(t, code, 0, "check exit code on a sound store")

	// A queue entry whose session is missing is damage that check reports.
	st, err = wal.Open(wal.Options{Dir: dir})
	testutil.Require(t, err, "reopen")
	b = wal.NewBatch(wal.KindPublish, []byte("publisher-1"))
	b.MessagePut(id+100, &m)
	b.QueuePut([]byte("nobody"), 1000, &wal.QueueEntry{MsgID: id + 100, QoS: 1})
	testutil.Require(t, st.Submit(b, func(err error) { done <- err }), "submit")
	testutil.Require(t, <-done, "commit")
	testutil.Require(t, st.Close(), "close")
	out, code = captureStdout(t, func() int { return walCmd([]string{"check", "--data-dir", dir}) })
	testutil.Equal(t, code, 1, "check exit code on a damaged store")
	if !strings.Contains(out, "nobody") {
		t.Fatalf("check report does not name the orphaned queue entry:\n%s", out)
	}

	testutil.Equal(t, walCmd([]string{"tail"}), 2, "tail without --data-dir")
	testutil.Equal(t, walCmd([]string{"check", "--data-dir", t.TempDir() + "/missing"}), 1, "check of a missing store")
	testutil.Equal(t, walCmd([]string{"nope"}), 2, "unknown subcommand")
	testutil.Equal(t, walCmd(nil), 2, "no subcommand")
}

// runTail runs `tern wal tail args...` and returns its stdout, stderr and
// exit code.
func runTail(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb strings.Builder
	code = runWal(t.Context(), append([]string{"tail"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// clientIDs returns the client ids of text tail lines, checking that their
// sequence numbers increase.
func clientIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	last := -1
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		seq, err := strconv.Atoi(strings.Fields(l)[0])
		testutil.Require(t, err, "seq of "+l)
		if seq <= last {
			t.Fatalf("seq %d after %d:\n%s", seq, last, out)
		}
		last = seq
		_, rest, _ := strings.Cut(l, `client_id="`)
		id, _, _ := strings.Cut(rest, `"`)
		ids = append(ids, id)
	}
	return ids
}

// TestWalTailRunningBroker reads the log of a store that a running broker
// holds: tail finds the broker's admin endpoint through DIR/admin.addr.
func TestWalTailRunningBroker(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	startTestAdmin(t, dir, "", st)
	for _, c := range []string{"c1", "c2", "c3"} {
		subscribe(t, st, c, "sensors/"+c)
	}

	out, errs, code := runTail(t, "--data-dir", dir)
	testutil.Equal(t, code, 0, "exit code; stderr: "+errs)
	testutil.Equal(t, strings.Join(clientIDs(t, out), ","), "c1,c2,c3", "records")
	if !strings.Contains(out, ` subscribe client_id="c2" topic="sensors/c2" qos=1 size=0`) {
		t.Fatalf("text record of c2 missing:\n%s", out)
	}

	out, errs, code = runTail(t, "--data-dir", dir, "--format", "json")
	testutil.Equal(t, code, 0, "json exit code; stderr: "+errs)
	var seqs []uint64
	for i, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var r struct {
			Seq      uint64 `json:"seq"`
			Time     string `json:"time"`
			Kind     string `json:"kind"`
			ClientID string `json:"client_id"`
			Topic    string `json:"topic"`
			QoS      int    `json:"qos"`
		}
		testutil.Require(t, json.Unmarshal([]byte(l), &r), "json line "+l)
		c := fmt.Sprintf("c%d", i+1)
		testutil.Equal(t, r.ClientID, c, "client_id")
		testutil.Equal(t, r.Topic, "sensors/"+c, "topic")
		testutil.Equal(t, r.Kind, "subscribe", "kind")
		testutil.Equal(t, r.QoS, 1, "qos")
		_, err := time.Parse(time.RFC3339Nano, r.Time)
		testutil.Require(t, err, "time")
		seqs = append(seqs, r.Seq)
	}
	testutil.Equal(t, len(seqs), 3, "json records")

	out, errs, code = runTail(t, "--data-dir", dir, "--from", strconv.FormatUint(seqs[1], 10))
	testutil.Equal(t, code, 0, "--from exit code; stderr: "+errs)
	testutil.Equal(t, strings.Join(clientIDs(t, out), ","), "c2,c3", "records from the second")

	// `tern wal check` cannot run beside the broker.
	var cout, cerr strings.Builder
	code = runWal(t.Context(), []string{"check", "--data-dir", dir}, &cout, &cerr)
	testutil.Equal(t, code, 2, "check exit code on a running broker's directory")
	if !strings.Contains(cerr.String(), "stop the broker first") {
		t.Fatalf("check on a locked directory says:\n%s", cerr.String())
	}
}

// TestWalTailFollow follows a running broker while it commits, until
// interrupted (exit 0), and until the broker goes away (exit 1).
func TestWalTailFollow(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	a := startTestAdmin(t, dir, "", st)
	subscribe(t, st, "c0", "x")

	// follow runs `tern wal tail --follow` until ctx is cancelled or the
	// broker ends the stream; its stdout comes line by line.
	follow := func(ctx context.Context, args ...string) (<-chan string, <-chan int, *strings.Builder) {
		pr, pw := io.Pipe()
		codes := make(chan int, 1)
		var errb strings.Builder // read only after the exit code arrives
		go func() {
			codes <- runWal(ctx, append([]string{"tail", "--follow", "--data-dir", dir}, args...), pw, &errb)
			pw.Close()
		}()
		return tailLines(pr), codes, &errb
	}
	expect := func(lines <-chan string, client string) {
		t.Helper()
		l := nextLine(t, lines)
		if !strings.Contains(l, `"`+client+`"`) { // text: client_id="c1", json: "client_id":"c1"
			t.Fatalf("got %s, want the record of %s", l, client)
		}
	}
	exitCode := func(codes <-chan int) int {
		t.Helper()
		select {
		case c := <-codes:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("tail --follow did not return")
		}
		return -1
	}

	ctx, cancel := context.WithCancel(t.Context())
	lines, codes, errb := follow(ctx)
	expect(lines, "c0")
	for _, c := range []string{"c1", "c2", "c3"} {
		subscribe(t, st, c, "x")
		expect(lines, c)
	}
	cancel()
	testutil.Equal(t, exitCode(codes), 0, "exit code when cancelled; stderr: "+errb.String())

	// SIGINT: tail has caught it since before it connected, so once a record
	// arrived the signal cannot kill the test binary.
	lines, codes, errb = follow(context.Background(), "--from", "4")
	expect(lines, "c3")
	testutil.Require(t, syscall.Kill(syscall.Getpid(), syscall.SIGINT), "kill")
	testutil.Equal(t, exitCode(codes), 0, "exit code on SIGINT; stderr: "+errb.String())

	// From the middle, in JSON, until the broker closes its endpoint.
	lines, codes, errb = follow(t.Context(), "--from", "3", "--format", "json")
	for i := 3; i <= 4; i++ {
		var r struct {
			Seq uint64 `json:"seq"`
		}
		l := nextLine(t, lines)
		testutil.Require(t, json.Unmarshal([]byte(l), &r), "json line "+l)
		testutil.Equal(t, r.Seq, uint64(i), "seq")
	}
	subscribe(t, st, "c4", "x")
	expect(lines, "c4")
	closeAdmin(t, a)
	testutil.Equal(t, exitCode(codes), 1, "exit code when the broker goes away")
	if !strings.Contains(errb.String(), "shutting down") {
		t.Fatalf("stderr when the broker goes away:\n%s", errb.String())
	}

	// Once the broker has stopped, --follow prints what is there and returns.
	testutil.Require(t, st.Close(), "close store")
	out, errs, code := runTail(t, "--follow", "--data-dir", dir)
	testutil.Equal(t, code, 0, "exit code of --follow on a stopped broker; stderr: "+errs)
	testutil.Equal(t, strings.Join(clientIDs(t, out), ","), "c0,c1,c2,c3,c4", "records")
}

// TestWalTailNoEndpoint reads a locked directory whose broker publishes no
// endpoint, or a stale one: tail says how to reach the broker.
func TestWalTailNoEndpoint(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	subscribe(t, st, "c1", "x")
	for _, args := range [][]string{{"--data-dir", dir}, {"--data-dir", dir, "--follow"}} {
		_, errs, code := runTail(t, args...)
		testutil.Equal(t, code, 1, "exit code without an endpoint")
		if !strings.Contains(errs, "--admin-listen") || !strings.Contains(errs, "--admin HOST:PORT") {
			t.Fatalf("error without an endpoint does not say how to reach the broker:\n%s", errs)
		}
	}

	// A stale admin.addr left by a broker that was killed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	testutil.Require(t, err, "listen")
	stale := l.Addr().String()
	l.Close()
	testutil.Require(t, os.WriteFile(filepath.Join(dir, adminAddrFile), []byte(stale+"\n"), 0o644), "write admin.addr")
	_, errs, code := runTail(t, "--data-dir", dir)
	testutil.Equal(t, code, 1, "exit code with a stale admin.addr")
	if !strings.Contains(errs, "cannot reach") || !strings.Contains(errs, stale) {
		t.Fatalf("error with a stale admin.addr:\n%s", errs)
	}

	// --admin names the endpoint, with or without the directory.
	a := startTestAdmin(t, "", "", st)
	for _, args := range [][]string{{"--data-dir", dir, "--admin", a.Addr()}, {"--admin", a.Addr()}} {
		out, errs, code := runTail(t, args...)
		testutil.Equal(t, code, 0, "exit code with --admin; stderr: "+errs)
		testutil.Equal(t, strings.Join(clientIDs(t, out), ","), "c1", "records")
	}
}

// TestWalTailToken reads through an endpoint that needs a bearer token.
func TestWalTailToken(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	startTestAdmin(t, dir, "s3cret", st)
	subscribe(t, st, "c1", "x")

	_, errs, code := runTail(t, "--data-dir", dir)
	testutil.Equal(t, code, 1, "exit code without the token")
	if !strings.Contains(errs, "401") || !strings.Contains(errs, "--admin-token-file") {
		t.Fatalf("error without the token:\n%s", errs)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	testutil.Require(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600), "write token")
	out, errs, code := runTail(t, "--data-dir", dir, "--admin-token-file", tokenFile)
	testutil.Equal(t, code, 0, "exit code with the token; stderr: "+errs)
	testutil.Equal(t, strings.Join(clientIDs(t, out), ","), "c1", "records")
}

func TestWalTailUsage(t *testing.T) {
	f := func(code int, wantInStderr string, args ...string) {
		t.Helper()
		_, errs, got := runTail(t, args...)
		testutil.Equal(t, got, code, strings.Join(args, " "))
		if !strings.Contains(errs, wantInStderr) {
			t.Fatalf("%v: stderr lacks %q:\n%s", args, wantInStderr, errs)
		}
	}
	f(2, "tern wal tail: --data-dir is required")
	f(2, "bad --format", "--data-dir", t.TempDir(), "--format", "xml")
	f(2, "unexpected argument", "--data-dir", t.TempDir(), "extra")
	f(2, "invalid value", "--data-dir", t.TempDir(), "--from", "x")
	f(0, "--admin-token-file", "--help")
}
