package engine_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// logLines parses the JSON log lines written to sink.
func logLines(t *testing.T, sink *testutil.LockedBuffer) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(sink.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestOneLogLinePerConnectionOpenAndClose: at info level a connection logs
// when it is accepted and when it closes, with its client id, remote
// address, protocol and close reason, and nothing per message.
func TestOneLogLinePerConnectionOpenAndClose(t *testing.T) {
	var sink testutil.LockedBuffer
	logger := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := testutil.StartBroker(t, engine.Options{Logger: logger, SysInterval: -1})
	addr := srv.Addr().String()
	c := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "logged", CleanStart: true})
	_, err := c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "l/#", QoS: 1}}})
	testutil.Require(t, err, "subscribe")
	for range 50 {
		_, err := c.Publish(testutil.Ctx(t), &paho.Publish{Topic: "l/x", QoS: 1, Payload: []byte("m")})
		testutil.Require(t, err, "publish")
		c.Recv(t)
	}
	testutil.Require(t, c.Disconnect(&paho.Disconnect{}), "disconnect")
	waitFor(t, "close logged", func() bool {
		for _, l := range logLines(t, &sink) {
			if l["msg"] == "connection closed" {
				return true
			}
		}
		return false
	})
	var opened, closed []map[string]any
	for _, l := range logLines(t, &sink) {
		switch l["msg"] {
		case "client connected":
			opened = append(opened, l)
		case "connection closed":
			closed = append(closed, l)
		case "listening", "stopped":
		default:
			t.Errorf("unexpected log line: %v", l)
		}
	}
	testutil.Equal(t, len(opened), 1, "open lines")
	testutil.Equal(t, len(closed), 1, "close lines")
	for _, l := range append(opened, closed...) {
		testutil.Equal(t, l["client_id"], any("logged"), "client_id")
		testutil.Equal(t, l["protocol"], any(float64(5)), "protocol")
		testutil.Equal(t, l["listener"], any("tcp"), "listener")
		if r, _ := l["remote"].(string); r == "" {
			t.Errorf("no remote in %v", l)
		}
	}
	testutil.Equal(t, closed[0]["reason"], any("client disconnected"), "reason")
	if _, ok := closed[0]["duration"]; !ok {
		t.Errorf("no duration in %v", closed[0])
	}
}

// TestCloseLineSaysWhyWithoutReasonCode: a connection the server closes
// without a reason code (no PROXY header) says why in its close line, not
// "success".
func TestCloseLineSaysWhyWithoutReasonCode(t *testing.T) {
	var sink testutil.LockedBuffer
	logger := slog.New(slog.NewJSONHandler(&sink, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := testutil.StartBroker(t, engine.Options{Logger: logger, SysInterval: -1, ProxyProtocol: true})
	c := testutil.DialRaw(t, srv.Addr().String())
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	c.ExpectClosed(5 * time.Second)
	var reason any
	waitFor(t, "close logged", func() bool {
		for _, l := range logLines(t, &sink) {
			if l["msg"] == "connection closed" {
				reason = l["reason"]
				return true
			}
		}
		return false
	})
	if r, _ := reason.(string); r == "" || r == "success" || !strings.Contains(r, "PROXY") {
		t.Fatalf("close reason %q", reason)
	}
}
