package main

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestConnectRate and TestOpenIdle drive an in-process Tern with tiny
// parameters; the broker's "process" is the test's own.
func TestConnectRate(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	res, err := connectRate(context.Background(), s.Addr().String(), os.Getpid(), 4, 3, 200*time.Millisecond)
	testutil.Require(t, err, "connectRate")
	if res.Connections == 0 || res.PerSec <= 0 {
		t.Fatalf("no connection completed: %+v", res)
	}
	testutil.Equal(t, res.Errors, int64(0), "errors")
	testutil.Equal(t, res.NotClosed, int64(0), "connections the broker did not close after DISCONNECT") // MQTT-3.14.4-1
}

func TestOpenIdle(t *testing.T) {
	s := testutil.StartBroker(t, engine.Options{})
	res, err := openIdle(context.Background(), s.Addr().String(), os.Getpid(), 50, 2, 3, 300, 10*time.Second, io.Discard)
	testutil.Require(t, err, "openIdle")
	testutil.Equal(t, res.Idle, 50, "connections")
	testutil.Equal(t, res.Dropped, 0, "dropped")
	if res.RSSBefore <= 0 || res.RSSAfter <= 0 {
		t.Fatalf("RSS not read: %+v", res)
	}
}
