// Package testutil holds helpers shared by the tests of several packages: a
// broker on a loopback port, MQTT clients connected to it, and small require
// helpers.
package testutil

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/wal"
)

// StartBroker starts a broker on a free loopback port with o (Listen is
// overridden) and stops it when the test ends. With TERN_TEST_STORE set to
// sync, batch or none, the broker gets a data directory with that durability. Logs go to the test log when
// TERN_TEST_LOG is set, else nowhere.
func StartBroker(t testing.TB, o engine.Options) *engine.Server {
	t.Helper()
	o.Listen = "127.0.0.1:0"
	if o.EventLoops == 0 {
		o.EventLoops = 2
	}
	if o.Logger == nil {
		var w io.Writer = io.Discard
		if os.Getenv("TERN_TEST_LOG") != "" {
			w = os.Stderr
		}
		o.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var store *wal.Store
	if d := os.Getenv("TERN_TEST_STORE"); d != "" && o.Store == nil {
		// The same tests against a broker with a data directory: every
		// acknowledgement then waits for the store.
		dur, err := wal.ParseDurability(d)
		if err != nil {
			t.Fatalf("TERN_TEST_STORE: %v", err)
		}
		store, err = wal.Open(wal.Options{Dir: t.TempDir(), Durability: dur, MinFreeBytes: -1, Logger: o.Logger})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		o.Store = store
	}
	s := engine.New(o)
	if err := s.Start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop broker: %v", err)
		}
		if store != nil {
			if err := store.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		}
	})
	return s
}

// Require fails the test now when err is not nil.
func Require(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Equal fails the test now when got != want.
func Equal[T comparable](t testing.TB, got, want T, what string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}
