package wal

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestCheckSoundStore(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.Default, Options{Dir: dir})
	populate(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Check(dir, &out); err != nil {
		t.Fatalf("Check: %v\n%s", err, out.String())
	}
	for _, want := range []string{"session:       3", "queue:         4", "message:       4", "retained:      2",
		"1 message bodies are not referred to", "OK: no damage found"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCheckDamagedStore(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.Default, Options{Dir: dir})
	want := populate(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage the store behind tern's back.
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{log: testLogger(t), sink: &fatalSink{}}})
	if err != nil {
		t.Fatal(err)
	}
	bob := want["bob"]
	for _, op := range []func() error{
		func() error { return db.Set(sessionKey(nil, []byte("a\x00b")), []byte{recordVersion, 0x80}, nil) }, // truncated
		func() error { return db.Delete(messageKey(nil, bob.Queue[0].Entry.MsgID), nil) },                   // body of alice's and bob's entry
		func() error {
			return db.Set(subKey(nil, []byte("nobody"), []byte("f")), appendSubscription(nil, &Subscription{}), nil)
		},
		func() error { return db.Set([]byte{0x7F, 1}, nil, nil) },                                       // no family
		func() error { return db.Set(logKey(nil, 1), []byte{recordVersion, 1}, nil) },                   // truncated log record
		func() error { return db.Set(queueKey(nil, []byte("bob"), 1<<60)[:12], []byte{}, pebble.Sync) }, // short key
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	err = Check(dir, &out)
	if err == nil {
		t.Fatalf("Check of a damaged store passed:\n%s", out.String())
	}
	report := out.String()
	for _, want := range []string{
		`session "a\x00b": wal: corrupt record: session: truncated`,
		`refers to message 1, which is missing`,
		`subscription of "nobody": no session record`,
		`key 7f01 in no known family`,
		`log record 1: wal: corrupt record: log record: truncated`,
		`queue key`,
		`subscription of "a\x00b": no session record`, // its session record is the damaged one
		"7 problems found",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if !strings.Contains(err.Error(), "7 problems") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q", err)
	}
}

func TestCheckRefusesRunningBroker(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, vfs.Default, Options{Dir: dir})
	defer s.Close()
	var out bytes.Buffer
	err := Check(dir, &out)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Check of a locked store: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "DAMAGED") { // in use is not damage
		t.Fatalf("Check of a locked store reports damage:\n%s", out.String())
	}
}
