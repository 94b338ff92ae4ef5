package wal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// tailStore writes three changes to a store in a temp dir and closes it.
func tailStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := openTest(t, vfs.Default, Options{Dir: dir})
	b := NewBatch(KindConnect, []byte("alice"))
	b.SessionPut([]byte("alice"), &Session{Expiry: 60})
	mustSubmit(t, s, b)
	b = NewBatch(KindSubscribe, []byte("alice"))
	b.SetTopic([]byte("a/#"), 1, 0)
	b.SubPut([]byte("alice"), []byte("a/#"), &Subscription{QoS: 1})
	mustSubmit(t, s, b)
	pb, _, _ := publishBatch(s, "bob \"b\"", "a/b", "hello", "alice")
	mustSubmit(t, s, pb)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTailText(t *testing.T) {
	dir := tailStore(t)
	var out bytes.Buffer
	if err := Tail(dir, 0, false, "text", &out); err != nil {
		t.Fatal(err)
	}
	ts := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`
	want := []string{
		`^1 ` + ts + ` connect client_id="alice" topic="" qos=0 size=0$`,
		`^2 ` + ts + ` subscribe client_id="alice" topic="a/#" qos=1 size=0$`,
		`^3 ` + ts + ` publish client_id="bob \\"b\\"" topic="a/b" qos=1 size=5$`,
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), out.String())
	}
	for i, l := range lines {
		if !regexp.MustCompile(want[i]).MatchString(l) {
			t.Errorf("line %d: %q does not match %s", i+1, l, want[i])
		}
	}

	// From a sequence number on.
	out.Reset()
	if err := Tail(dir, 3, false, "text", &out); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "\n"); got != 1 || !strings.HasPrefix(out.String(), "3 ") {
		t.Fatalf("--from 3: %q", out.String())
	}
}

func TestTailJSON(t *testing.T) {
	dir := tailStore(t)
	var out bytes.Buffer
	if err := Tail(dir, 2, true, "json", &out); err != nil { // follow on a stopped broker: prints and returns
		t.Fatal(err)
	}
	var got []jsonRecord
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r jsonRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			t.Fatalf("time %q: %v", r.Time, err)
		}
		r.Time = ""
		got = append(got, r)
	}
	want := []jsonRecord{
		{Seq: 2, Kind: "subscribe", ClientID: "alice", Topic: "a/#", QoS: 1},
		{Seq: 3, Kind: "publish", ClientID: `bob "b"`, Topic: "a/b", QoS: 1, Size: 5},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestTailOfRunningBroker(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.Default, Options{Dir: dir})
	defer s.Close()
	err := Tail(dir, 0, false, "text", &bytes.Buffer{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Tail of a running broker's directory: %v, want ErrLocked", err)
	}
	err = Tail(dir, 0, true, "text", &bytes.Buffer{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "not supported while the broker holds the directory lock") {
		t.Fatalf("Tail --follow of a running broker: %v", err)
	}
	if err := Tail(dir, 0, false, "yaml", &bytes.Buffer{}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestStoreTailFollows(t *testing.T) {
	s := openTest(t, nil, Options{})
	mustSubmit(t, s, NewBatch(KindConnect, []byte("first")))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	errc := make(chan error, 1)
	go func() { errc <- s.Tail(ctx, 0, true, "text", &out) }()
	waitFor := func(substr string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), substr) {
			if time.Now().After(deadline) {
				t.Fatalf("tail output %q lacks %q", out.String(), substr)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(`client_id="first"`)
	for _, id := range []string{"second", "third"} {
		mustSubmit(t, s, NewBatch(KindConnect, []byte(id)))
		waitFor(`client_id="` + id + `"`)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 3 {
		t.Fatalf("each record once, got:\n%s", out.String())
	}
	// Closing the store ends a follower.
	go func() { errc <- s.Tail(context.Background(), 4, true, "json", &out) }()
	time.Sleep(10 * time.Millisecond)
	s.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("follower after Close: %v", err)
	}
}

func TestTailReadsInChunks(t *testing.T) {
	s := openTest(t, nil, Options{Durability: DurabilityNone})
	defer s.Close()
	var w waiter
	const n = 2*tailChunk + 10
	for i := range n {
		b := NewBatch(KindConnect, []byte(strconv.Itoa(i)))
		w.submit(t, s, b)
	}
	w.wait(t)
	var out bytes.Buffer
	if err := s.Tail(context.Background(), 0, false, "text", &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, strconv.Itoa(i+1)+" ") || !strings.Contains(l, `client_id="`+strconv.Itoa(i)+`"`) {
			t.Fatalf("line %d: %q", i, l)
		}
	}
}
