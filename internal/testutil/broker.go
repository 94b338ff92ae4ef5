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
)

// StartBroker starts a broker on a free loopback port with o (Listen is
// overridden) and stops it when the test ends. Logs go to the test log when
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
