package main

import (
	"io"
	"os"
	"strings"
	"testing"

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
