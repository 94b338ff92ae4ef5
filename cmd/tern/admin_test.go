package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/wal"
)

// openTestStore opens a store in dir as a broker does (Load once before the
// first Submit) and closes it at the end of the test.
func openTestStore(t *testing.T, dir string) *wal.Store {
	t.Helper()
	st, err := wal.Open(wal.Options{Dir: dir, Durability: wal.DurabilityNone, MinFreeBytes: -1,
		Logger: slog.New(slog.DiscardHandler)})
	testutil.Require(t, err, "open store")
	t.Cleanup(func() { _ = st.Close() })
	_, err = st.Load()
	testutil.Require(t, err, "load")
	return st
}

// subscribe commits a SUBSCRIBE of client to filter, which logs one record.
func subscribe(t *testing.T, st *wal.Store, client, filter string) {
	t.Helper()
	b := wal.NewBatch(wal.KindSubscribe, []byte(client))
	b.SubPut([]byte(client), []byte(filter), &wal.Subscription{QoS: 1})
	b.SetTopic([]byte(filter), 1, 0)
	done := make(chan error, 1)
	testutil.Require(t, st.Submit(b, func(err error) { done <- err }), "submit")
	testutil.Require(t, <-done, "commit")
}

// startTestAdmin starts the admin endpoint on a loopback port, for a broker
// that is not started (enough for the change log and the health checks),
// and closes it at the end of the test.
func startTestAdmin(t *testing.T, dataDir, token string, st *wal.Store) *adminServer {
	t.Helper()
	a, err := startAdmin(testAdminOptions(dataDir, token, st))
	testutil.Require(t, err, "start admin")
	t.Cleanup(func() { closeAdmin(t, a) })
	return a
}

func testAdminOptions(dataDir, token string, st *wal.Store) adminOptions {
	log := slog.New(slog.DiscardHandler)
	srv := engine.New(engine.Options{Store: st, SysInterval: -1, Logger: log})
	return adminOptions{Addr: "127.0.0.1:0", DataDir: dataDir, Token: token, Server: srv, Store: st, Logger: log}
}

func closeAdmin(t *testing.T, a *adminServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Require(t, a.Close(ctx), "close admin")
}

// get sends a request to the admin endpoint; token "" sends none.
func get(t *testing.T, a *adminServer, method, path, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+a.Addr()+path, nil)
	testutil.Require(t, err, "request")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	testutil.Require(t, err, method+" "+path)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// jsonError returns the "error" of a JSON error answer, failing the test
// when the body is not one.
func jsonError(t *testing.T, resp *http.Response) string {
	t.Helper()
	testutil.Equal(t, resp.Header.Get("Content-Type"), "application/json", "error content type")
	var e struct {
		Error string `json:"error"`
	}
	testutil.Require(t, json.NewDecoder(resp.Body).Decode(&e), "decode error body")
	if e.Error == "" {
		t.Fatalf("%s: empty error message", resp.Request.URL.Path)
	}
	return e.Error
}

func TestAdminHealthzAndErrors(t *testing.T) {
	a := startTestAdmin(t, "", "", nil) // a broker without --data-dir

	resp := get(t, a, http.MethodGet, "/healthz", "")
	testutil.Equal(t, resp.StatusCode, http.StatusOK, "healthz status")
	body, _ := io.ReadAll(resp.Body)
	testutil.Equal(t, string(body), "ok", "healthz body")

	f := func(method, path string, code int, wantInError string) {
		t.Helper()
		resp := get(t, a, method, path, "")
		testutil.Equal(t, resp.StatusCode, code, method+" "+path+" status")
		if msg := jsonError(t, resp); !strings.Contains(msg, wantInError) {
			t.Fatalf("%s %s: error %q lacks %q", method, path, msg, wantInError)
		}
	}
	f(http.MethodGet, "/v1/wal/tail", http.StatusNotFound, "--data-dir")
	f(http.MethodGet, "/v1/wal/tail?follow=1", http.StatusNotFound, "--data-dir")
	f(http.MethodGet, "/nope", http.StatusNotFound, "/nope")
	f(http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "POST")
	f(http.MethodPost, "/v1/wal/tail", http.StatusMethodNotAllowed, "POST")
}

func TestAdminTailParams(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	subscribe(t, st, "c1", "a/#")
	a := startTestAdmin(t, "", "", st)

	f := func(query string, wantInError string) {
		t.Helper()
		resp := get(t, a, http.MethodGet, "/v1/wal/tail?"+query, "")
		testutil.Equal(t, resp.StatusCode, http.StatusBadRequest, query+" status")
		if msg := jsonError(t, resp); !strings.Contains(msg, wantInError) {
			t.Fatalf("%s: error %q lacks %q", query, msg, wantInError)
		}
	}
	f("from=abc", "from")
	f("from=-1", "from")
	f("follow=maybe", "follow")
	f("format=xml", "format")

	resp := get(t, a, http.MethodGet, "/v1/wal/tail?follow=0&format=text", "")
	testutil.Equal(t, resp.StatusCode, http.StatusOK, "tail status")
	testutil.Equal(t, resp.Header.Get("Content-Type"), "text/plain; charset=utf-8", "text content type")
	body, err := io.ReadAll(resp.Body)
	testutil.Require(t, err, "read tail")
	if !strings.Contains(string(body), `subscribe client_id="c1" topic="a/#" qos=1`) {
		t.Fatalf("tail body lacks the record:\n%s", body)
	}
	testutil.Equal(t, resp.Trailer.Get(tailErrorTrailer), "", "trailer of a complete stream")
}

// TestAdminToken checks that a token, when set, is needed on every request
// but the health probes.
func TestAdminToken(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	a := startTestAdmin(t, "", "s3cret", st)
	f := func(path, token string, code int) {
		t.Helper()
		resp := get(t, a, http.MethodGet, path, token)
		testutil.Equal(t, resp.StatusCode, code, path+" with token "+token)
		if code == http.StatusUnauthorized {
			testutil.Equal(t, resp.Header.Get("WWW-Authenticate"), `Bearer realm="tern"`, "WWW-Authenticate")
			jsonError(t, resp)
		}
	}
	f("/healthz", "", http.StatusOK)
	f("/readyz", "", http.StatusServiceUnavailable) // answered (not started here), not refused
	f("/metrics", "", http.StatusUnauthorized)
	f("/metrics", "wrong", http.StatusUnauthorized)
	f("/metrics", "s3cret2", http.StatusUnauthorized)
	f("/v1/wal/tail", "", http.StatusUnauthorized)
	f("/nope", "", http.StatusUnauthorized)
	f("/healthz", "s3cret", http.StatusOK)
	f("/v1/wal/tail", "s3cret", http.StatusOK)
}

// TestAdminAddrFile checks that the endpoint publishes its address in the
// data directory while it runs, and only then.
func TestAdminAddrFile(t *testing.T) {
	dir := t.TempDir()
	st := openTestStore(t, dir)
	a, err := startAdmin(testAdminOptions(dir, "", st))
	testutil.Require(t, err, "start admin")
	b, err := os.ReadFile(filepath.Join(dir, adminAddrFile))
	testutil.Require(t, err, "read admin.addr")
	testutil.Equal(t, string(b), a.Addr()+"\n", "admin.addr")
	if !strings.HasPrefix(a.Addr(), "127.0.0.1:") || strings.HasSuffix(a.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the bound loopback port", a.Addr())
	}
	closeAdmin(t, a)
	_, err = os.Stat(filepath.Join(dir, adminAddrFile))
	if !os.IsNotExist(err) {
		t.Fatalf("admin.addr left after Close: %v", err)
	}
	closeAdmin(t, a) // a second Close is harmless
	if _, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		t.Fatal("admin endpoint still accepts connections after Close")
	}

	// The store lives on: the data directory was not touched otherwise.
	subscribe(t, st, "c1", "a")

	_, err = startAdmin(testAdminOptions(filepath.Join(dir, "missing"), "", st))
	if err == nil {
		t.Fatal("startAdmin with an unwritable data directory succeeded")
	}
}

// tailLines reads a tail stream line by line into a channel, closed at EOF.
func tailLines(r io.Reader) <-chan string {
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("tail stream ended")
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no tail record within 5s")
	}
	return ""
}

// TestAdminTailFollow follows the log over HTTP while changes commit, then
// closes the endpoint: the stream ends and its trailer says why.
func TestAdminTailFollow(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	subscribe(t, st, "c0", "x")
	a := startTestAdmin(t, "", "", st)

	resp := get(t, a, http.MethodGet, "/v1/wal/tail?follow=1&format=json", "")
	testutil.Equal(t, resp.StatusCode, http.StatusOK, "tail status")
	testutil.Equal(t, resp.Header.Get("Content-Type"), "application/x-ndjson", "json content type")
	lines := tailLines(resp.Body)
	var last uint64
	check := func(client string) {
		t.Helper()
		var r struct {
			Seq      uint64 `json:"seq"`
			Kind     string `json:"kind"`
			ClientID string `json:"client_id"`
		}
		l := nextLine(t, lines)
		testutil.Require(t, json.Unmarshal([]byte(l), &r), "decode "+l)
		testutil.Equal(t, r.ClientID, client, "client id of "+l)
		testutil.Equal(t, r.Kind, "subscribe", "kind of "+l)
		if r.Seq <= last {
			t.Fatalf("seq %d after %d", r.Seq, last)
		}
		last = r.Seq
	}
	check("c0")
	for _, c := range []string{"c1", "c2", "c3"} {
		subscribe(t, st, c, "x")
		check(c)
	}
	closeAdmin(t, a)
	select {
	case l, ok := <-lines:
		if ok {
			t.Fatalf("unexpected record after Close: %s", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end on Close")
	}
	if got := resp.Trailer.Get(tailErrorTrailer); !strings.Contains(got, "shutting down") {
		t.Fatalf("trailer %s = %q, want the shutdown", tailErrorTrailer, got)
	}
}

// TestAdminTailStoreClosed follows the log and closes the store under it.
func TestAdminTailStoreClosed(t *testing.T) {
	st := openTestStore(t, t.TempDir())
	a := startTestAdmin(t, "", "", st)
	resp := get(t, a, http.MethodGet, "/v1/wal/tail?follow=1", "")
	testutil.Equal(t, resp.StatusCode, http.StatusOK, "tail status")
	lines := tailLines(resp.Body)
	subscribe(t, st, "c1", "x")
	if l := nextLine(t, lines); !strings.Contains(l, `client_id="c1"`) {
		t.Fatalf("text record: %s", l)
	}
	testutil.Require(t, st.Close(), "close store")
	select {
	case l, ok := <-lines:
		if ok {
			t.Fatalf("unexpected record after the store closed: %s", l)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end when the store closed")
	}
	testutil.Equal(t, resp.Trailer.Get(tailErrorTrailer), wal.ErrClosed.Error(), "trailer")
}

func TestDialAddr(t *testing.T) {
	f := func(ip string, want string) {
		t.Helper()
		testutil.Equal(t, dialAddr(&net.TCPAddr{IP: net.ParseIP(ip), Port: 8080}), want, ip)
	}
	f("0.0.0.0", "127.0.0.1:8080")
	f("::", "[::1]:8080")
	f("", "127.0.0.1:8080")
	f("127.0.0.1", "127.0.0.1:8080")
	f("192.0.2.7", "192.0.2.7:8080")
	f("::1", "[::1]:8080")
}
