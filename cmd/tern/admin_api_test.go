package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/wal"
)

// Integration tests of the admin API, /readyz and /metrics: a broker on a
// loopback port, driven by paho clients, and its admin endpoint over HTTP.

// apiEnv is a running broker with its admin endpoint.
type apiEnv struct {
	srv     *engine.Server
	st      *wal.Store // nil without a store
	admin   *adminServer
	mqtt    string // the broker's MQTT address
	token   string
	dataDir string // where the endpoint publishes admin.addr
}

// startAPI starts a broker, with a store when withStore, and its admin
// endpoint requiring token when it is not empty; all stop when the test
// ends.
func startAPI(t *testing.T, withStore bool, token string) *apiEnv {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	e := &apiEnv{token: token, dataDir: t.TempDir()}
	o := engine.Options{Listen: "127.0.0.1:0", EventLoops: 2, SysInterval: -1, Logger: log}
	if withStore {
		st, err := wal.Open(wal.Options{Dir: t.TempDir(), Durability: wal.DurabilityNone, MinFreeBytes: -1, Logger: log})
		testutil.Require(t, err, "open store")
		t.Cleanup(func() { _ = st.Close() }) // last: after the broker stops
		e.st, o.Store = st, st
	}
	e.srv = engine.New(o)
	a, err := startAdmin(adminOptions{Addr: "127.0.0.1:0", DataDir: e.dataDir, Token: token,
		Server: e.srv, Store: e.st, Logger: log})
	testutil.Require(t, err, "start admin")
	e.admin = a
	t.Cleanup(func() { closeAdmin(t, a) })
	testutil.Require(t, e.srv.Start(), "start broker")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		testutil.Require(t, e.srv.Stop(ctx), "stop broker")
	})
	e.mqtt = e.srv.Addr().String()
	return e
}

// call sends method path (escaped already) to the admin endpoint, with the
// env's token, and returns the status and the body.
func (e *apiEnv) call(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	return callAdmin(t, e.admin.Addr(), e.token, method, path)
}

func callAdmin(t *testing.T, addr, token, method, path string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	testutil.Require(t, err, "request "+path)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	testutil.Require(t, err, method+" "+path)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	testutil.Require(t, err, "read "+path)
	return resp.StatusCode, body
}

// json calls the endpoint, wants the status code and a JSON object, and
// returns it.
func (e *apiEnv) json(t *testing.T, method, path string, code int) map[string]any {
	t.Helper()
	got, body := e.call(t, method, path)
	if got != code {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, got, code, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: not a JSON object: %v\n%s", method, path, err, body)
	}
	return m
}

// wantError calls the endpoint and wants a JSON error with code whose
// message holds want.
func (e *apiEnv) wantError(t *testing.T, method, path string, code int, want string) {
	t.Helper()
	m := e.json(t, method, path, code)
	msg, _ := m["error"].(string)
	if msg == "" || len(m) != 1 {
		t.Fatalf("%s %s: not a JSON error: %v", method, path, m)
	}
	if !strings.Contains(msg, want) {
		t.Fatalf("%s %s: error %q lacks %q", method, path, msg, want)
	}
}

// keys fails unless m has exactly the keys want.
func wantKeys(t *testing.T, what string, m any, want ...string) {
	t.Helper()
	obj, ok := m.(map[string]any)
	if !ok {
		t.Fatalf("%s: %T is not an object", what, m)
	}
	var got []string
	for k := range obj {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: keys %q, want %q", what, got, want)
	}
}

// items returns the items of a page and fails when it is not one.
func pageItems(t *testing.T, page map[string]any) []map[string]any {
	t.Helper()
	raw, ok := page["items"].([]any)
	if !ok {
		t.Fatalf("page without items: %v", page)
	}
	var out []map[string]any
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}

// field returns the string field k of every item.
func fieldOf(list []map[string]any, k string) []string {
	out := []string{}
	for _, it := range list {
		s, _ := it[k].(string)
		out = append(out, s)
	}
	return out
}

func mqttConnect(t *testing.T, e *apiEnv, id string, expiry uint32) *testutil.V5 {
	t.Helper()
	cp := &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}
	if expiry != 0 {
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	return testutil.ConnectV5(t, e.mqtt, cp)
}

func mqttSubscribe(t *testing.T, c *testutil.V5, props *paho.SubscribeProperties, opts ...paho.SubscribeOptions) {
	t.Helper()
	ack, err := c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Properties: props, Subscriptions: opts})
	testutil.Require(t, err, "subscribe")
	for i, code := range ack.Reasons {
		if code >= 0x80 {
			t.Fatalf("subscription %q refused: %#x", opts[i].Topic, code)
		}
	}
}

// mqttPublish publishes and, at QoS 1 and 2, waits for the acknowledgement.
func mqttPublish(t *testing.T, c *testutil.V5, topic string, payload []byte, qos byte, retain bool) {
	t.Helper()
	_, err := c.Publish(testutil.Ctx(t), &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: payload})
	testutil.Require(t, err, "publish "+topic)
}

func wantKicked(t *testing.T, c *testutil.V5) {
	t.Helper()
	select {
	case d := <-c.Disconnects:
		testutil.Equal(t, d.ReasonCode, byte(codec.AdministrativeAction), "DISCONNECT reason") // 0x98
	case <-time.After(5 * time.Second):
		t.Fatal("no DISCONNECT 0x98 within 5s")
	}
}

// eventually retries cond for 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

func apiQuery(kv ...string) string {
	q := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		q.Add(kv[i], kv[i+1])
	}
	return q.Encode()
}

// TestAdminReadyz follows /readyz through a broker's life, and checks that
// the routes that read the engine wait for its start: with a store, the
// retained messages do not exist before it.
func TestAdminReadyz(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	st, err := wal.Open(wal.Options{Dir: t.TempDir(), Durability: wal.DurabilityNone, MinFreeBytes: -1, Logger: log})
	testutil.Require(t, err, "open store")
	defer st.Close()
	srv := engine.New(engine.Options{Listen: "127.0.0.1:0", EventLoops: 1, SysInterval: -1, Logger: log, Store: st})
	a, err := startAdmin(adminOptions{Addr: "127.0.0.1:0", Server: srv, Store: st, Logger: log})
	testutil.Require(t, err, "start admin")
	defer closeAdmin(t, a)

	f := func(path string, code int, want string) {
		t.Helper()
		got, body := callAdmin(t, a.Addr(), "", http.MethodGet, path)
		if got != code || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d %s, want %d with %q", path, got, body, code, want)
		}
	}
	f("/readyz", http.StatusServiceUnavailable, `{"error":"not ready: engine: not started"}`)
	f("/healthz", http.StatusOK, "ok")
	for _, p := range []string{"/metrics", "/v1/sessions", "/v1/sessions/x", "/v1/subscriptions",
		"/v1/retained", "/v1/retained/a", "/v1/stats"} {
		f(p, http.StatusServiceUnavailable, "has not started")
	}

	testutil.Require(t, srv.Start(), "start")
	f("/readyz", http.StatusOK, "ok")
	f("/v1/retained", http.StatusOK, `{"items":[]}`)
	f("/metrics", http.StatusOK, "tern_build_info")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Require(t, srv.Stop(ctx), "stop")
	f("/readyz", http.StatusServiceUnavailable, "shutting down")
	f("/healthz", http.StatusOK, "ok")
}

func TestAdminSessions(t *testing.T) {
	e := startAPI(t, false, "")
	odd := "dev/with space ü" // a '/', a space and a non-ASCII letter
	c1 := mqttConnect(t, e, "c1", 3600)
	mqttSubscribe(t, c1, nil, paho.SubscribeOptions{Topic: "a/+", QoS: 1}, paho.SubscribeOptions{Topic: "b/#"})
	gone := mqttConnect(t, e, odd, 3600)
	mqttSubscribe(t, gone, nil, paho.SubscribeOptions{Topic: "x/#", QoS: 2})
	testutil.Require(t, gone.Disconnect(&paho.Disconnect{}), "disconnect")
	other := mqttConnect(t, e, "other", 0)
	waitFor(t, odd+" offline", func() bool {
		info, _, err := e.srv.Session(odd)
		return err == nil && !info.Online
	})
	esc := url.PathEscape(odd)

	// The shape of an online and an offline session.
	list := pageItems(t, e.json(t, http.MethodGet, "/v1/sessions", http.StatusOK))
	testutil.Equal(t, len(list), 3, "sessions")
	wantKeys(t, "online session", list[0], "client_id", "online", "protocol", "listener", "remote", "connected_since",
		"expiry_interval", "durable", "subscriptions", "queued", "queued_bytes", "inflight", "inbound_qos2")
	wantKeys(t, "offline session", list[1], "client_id", "online", "protocol", "expiry_interval", "durable",
		"subscriptions", "queued", "queued_bytes", "inflight", "inbound_qos2")
	testutil.Equal(t, list[0]["client_id"], any("c1"), "client_id")
	testutil.Equal(t, list[0]["online"], any(true), "online")
	testutil.Equal(t, list[0]["protocol"], any(5.0), "protocol")
	testutil.Equal(t, list[0]["listener"], any("tcp"), "listener")
	testutil.Equal(t, list[0]["subscriptions"], any(2.0), "subscriptions")
	testutil.Equal(t, list[0]["expiry_interval"], any(3600.0), "expiry_interval")
	testutil.Equal(t, list[1]["online"], any(false), "offline")

	f := func(query string, want []string, next string) {
		t.Helper()
		page := e.json(t, http.MethodGet, "/v1/sessions?"+query, http.StatusOK)
		if got := fieldOf(pageItems(t, page), "client_id"); !slices.Equal(got, want) {
			t.Fatalf("?%s: %q, want %q", query, got, want)
		}
		got, ok := page["next"]
		if next == "" {
			if ok {
				t.Fatalf("?%s: next %v on the last page", query, got)
			}
			wantKeys(t, "last page", page, "items")
			return
		}
		testutil.Equal(t, got, any(next), "next of ?"+query)
	}
	f("", []string{"c1", odd, "other"}, "")
	f(apiQuery("limit", "1"), []string{"c1"}, "c1")
	f(apiQuery("limit", "1", "after", "c1"), []string{odd}, odd)
	f(apiQuery("limit", "2", "after", "c1"), []string{odd, "other"}, "")
	f(apiQuery("after", odd), []string{"other"}, "")
	f(apiQuery("prefix", "dev/"), []string{odd}, "")
	f(apiQuery("state", "online"), []string{"c1", "other"}, "")
	f(apiQuery("state", "offline"), []string{odd}, "")
	f(apiQuery("state", "offline", "prefix", "c"), []string{}, "")

	// One session, its id escaped as one path element.
	d := e.json(t, http.MethodGet, "/v1/sessions/"+esc, http.StatusOK)
	wantKeys(t, "session detail", d, "session", "subscriptions")
	testutil.Equal(t, d["session"].(map[string]any)["client_id"], any(odd), "client_id")
	subs := d["subscriptions"].([]any)
	testutil.Equal(t, len(subs), 1, "subscriptions")
	wantKeys(t, "subscription", subs[0], "client_id", "filter", "qos")
	testutil.Equal(t, subs[0].(map[string]any)["filter"], any("x/#"), "filter")
	testutil.Equal(t, subs[0].(map[string]any)["qos"], any(2.0), "qos")
	d = e.json(t, http.MethodGet, "/v1/sessions/other", http.StatusOK)
	testutil.Equal(t, len(d["subscriptions"].([]any)), 0, "no subscriptions: [] not null")

	g := func(method, path string, code int, want string) {
		t.Helper()
		e.wantError(t, method, path, code, want)
	}
	g(http.MethodGet, "/v1/sessions/nope", http.StatusNotFound, `no session of client id "nope"`)
	g(http.MethodGet, "/v1/sessions/dev/with%20space%20%C3%BC", http.StatusNotFound, "%2F")
	g(http.MethodGet, "/v1/sessions//x", http.StatusBadRequest, "%2F")
	g(http.MethodGet, "/v1/sessions/./x", http.StatusBadRequest, "%2F")
	g(http.MethodGet, "/v1/sessions?limit=0", http.StatusBadRequest, "limit")
	g(http.MethodGet, "/v1/sessions?limit=x", http.StatusBadRequest, "limit")
	g(http.MethodGet, "/v1/sessions?limit=10001", http.StatusBadRequest, "limit")
	g(http.MethodGet, "/v1/sessions?state=maybe", http.StatusBadRequest, "state")
	g(http.MethodGet, "/v1/sessions?prefx=c", http.StatusBadRequest, `unknown parameter "prefx"`)
	// A pair that does not decode is refused, not dropped (which would
	// list everything).
	g(http.MethodGet, "/v1/sessions?prefix=c%ZZ", http.StatusBadRequest, "bad query")
	g(http.MethodGet, "/v1/sessions?limit=%ZZ", http.StatusBadRequest, "bad query")
	g(http.MethodGet, "/v1/sessions?a;b", http.StatusBadRequest, "bad query")
	g(http.MethodPost, "/v1/sessions", http.StatusMethodNotAllowed, "POST")
	g(http.MethodPut, "/v1/sessions/c1", http.StatusMethodNotAllowed, "PUT")
	g(http.MethodGet, "/v1/sessions/c1/disconnect", http.StatusMethodNotAllowed, "GET")
	g(http.MethodPost, "/v1/sessions/nope/disconnect", http.StatusNotFound, "no session")
	g(http.MethodPost, "/v1/sessions/"+esc+"/disconnect", http.StatusNotFound, "not connected")
	g(http.MethodDelete, "/v1/sessions/nope", http.StatusNotFound, `"nope"`)
	g(http.MethodGet, "/v1/nope", http.StatusNotFound, "/v1/nope")

	// Kick: DISCONNECT 0x98, the session stays.
	m := e.json(t, http.MethodPost, "/v1/sessions/c1/disconnect", http.StatusOK)
	wantKeys(t, "disconnect answer", m, "client_id", "disconnected")
	testutil.Equal(t, m["disconnected"], any(true), "disconnected")
	wantKicked(t, c1)
	waitFor(t, "c1 offline", func() bool {
		s := e.json(t, http.MethodGet, "/v1/sessions/c1", http.StatusOK)["session"].(map[string]any)
		return s["online"] == false
	})

	// Delete an offline session, then an online one (kicked first).
	m = e.json(t, http.MethodDelete, "/v1/sessions/"+esc, http.StatusOK)
	wantKeys(t, "delete answer", m, "client_id", "deleted")
	testutil.Equal(t, m["client_id"], any(odd), "client_id")
	g(http.MethodGet, "/v1/sessions/"+esc, http.StatusNotFound, "no session")
	g(http.MethodDelete, "/v1/sessions/"+esc, http.StatusNotFound, "no session")
	e.json(t, http.MethodDelete, "/v1/sessions/other", http.StatusOK)
	wantKicked(t, other)
	f("", []string{"c1"}, "")

	// 409: the client is still connected when the time to leave is over
	// (here at once).
	log := slog.New(slog.DiscardHandler)
	hasty, err := startAdmin(adminOptions{Addr: "127.0.0.1:0", Server: e.srv, Logger: log, ActionTimeout: time.Nanosecond})
	testutil.Require(t, err, "start admin")
	defer closeAdmin(t, hasty)
	stuck := mqttConnect(t, e, "stuck", 3600)
	code, body := callAdmin(t, hasty.Addr(), "", http.MethodDelete, "/v1/sessions/stuck")
	if code != http.StatusConflict || !strings.Contains(string(body), `client \"stuck\" is connected`) {
		t.Fatalf("DELETE of a connected session that does not leave in time: %d %s", code, body)
	}
	wantKicked(t, stuck)
}

func TestAdminSubscriptions(t *testing.T) {
	e := startAPI(t, false, "")
	s1 := mqttConnect(t, e, "s1", 0)
	mqttSubscribe(t, s1, nil, paho.SubscribeOptions{Topic: "a/+", QoS: 1}, paho.SubscribeOptions{Topic: "b/#"},
		paho.SubscribeOptions{Topic: "$share/g/a/x", QoS: 1})
	s2 := mqttConnect(t, e, "s2", 0)
	id := 7
	mqttSubscribe(t, s2, &paho.SubscribeProperties{SubscriptionIdentifier: &id},
		paho.SubscribeOptions{Topic: "a/x", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2})

	list := pageItems(t, e.json(t, http.MethodGet, "/v1/subscriptions", http.StatusOK))
	wantKeys(t, "plain subscription", list[0], "client_id", "filter", "qos")
	wantKeys(t, "subscription with options", list[3], "client_id", "filter", "qos", "no_local", "retain_as_published",
		"retain_handling", "subscription_identifier")
	testutil.Equal(t, list[3]["subscription_identifier"], any(7.0), "subscription_identifier")

	f := func(query string, want ...string) string {
		t.Helper()
		page := e.json(t, http.MethodGet, "/v1/subscriptions?"+query, http.StatusOK)
		var got []string
		for _, it := range pageItems(t, page) {
			got = append(got, it["client_id"].(string)+" "+it["filter"].(string))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("?%s: %q, want %q", query, got, want)
		}
		next, _ := page["next"].(string)
		return next
	}
	f("", "s1 $share/g/a/x", "s1 a/+", "s1 b/#", "s2 a/x")
	f(apiQuery("client_prefix", "s2"), "s2 a/x")
	f(apiQuery("filter", "a/+"), "s1 a/+")
	f(apiQuery("filter", "$share/g/a/x"), "s1 $share/g/a/x")
	f(apiQuery("topic", "a/x"), "s1 $share/g/a/x", "s1 a/+", "s2 a/x")
	f(apiQuery("topic", "b"), "s1 b/#") // "b/#" matches its parent level
	f(apiQuery("topic", "c"))
	next := f(apiQuery("limit", "2"), "s1 $share/g/a/x", "s1 a/+")
	if next == "" {
		t.Fatal("no next on a page that is not the last")
	}
	next = f(apiQuery("limit", "1", "after", next), "s1 b/#")
	if last := f(apiQuery("after", next), "s2 a/x"); last != "" {
		t.Fatalf("next %q on the last page", last)
	}

	g := func(query string, want string) {
		t.Helper()
		e.wantError(t, http.MethodGet, "/v1/subscriptions?"+query, http.StatusBadRequest, want)
	}
	g(apiQuery("filter", "a/#/b"), "filter")
	g(apiQuery("topic", "a/+"), "topic")
	g(apiQuery("after", "not base64!"), "after")
	g(apiQuery("limit", "-1"), "limit")
	g(apiQuery("client-prefix", "s"), "client-prefix")
}

func TestAdminRetained(t *testing.T) {
	e := startAPI(t, true, "")
	pub := mqttConnect(t, e, "pub", 0)
	for _, m := range []struct {
		topic   string
		payload []byte
	}{
		{"r/1", []byte("hello")},
		{"r/2 x", []byte{0xff, 0xfe}}, // not UTF-8
		{"r//3", []byte("empty level")},
		{"$app/x", []byte("dollar")},
	} {
		mqttPublish(t, pub, m.topic, m.payload, 1, true)
	}

	list := pageItems(t, e.json(t, http.MethodGet, "/v1/retained", http.StatusOK))
	testutil.Equal(t, len(list), 3, "retained matching # (not $app/x)")
	wantKeys(t, "retained in a list", list[0], "topic", "qos", "size", "payload_size", "created")
	f := func(query string, want []string, next string) {
		t.Helper()
		page := e.json(t, http.MethodGet, "/v1/retained?"+query, http.StatusOK)
		if got := fieldOf(pageItems(t, page), "topic"); !slices.Equal(got, want) {
			t.Fatalf("?%s: %q, want %q", query, got, want)
		}
		got, _ := page["next"].(string)
		testutil.Equal(t, got, next, "next of ?"+query)
	}
	f("", []string{"r//3", "r/1", "r/2 x"}, "")
	f(apiQuery("limit", "2"), []string{"r//3", "r/1"}, "r/1")
	f(apiQuery("limit", "2", "after", "r/1"), []string{"r/2 x"}, "")
	f(apiQuery("filter", "r/+"), []string{"r/1", "r/2 x"}, "")
	f(apiQuery("filter", "$app/#"), []string{"$app/x"}, "")
	f(apiQuery("filter", "nothing/here"), []string{}, "")

	// One message: the topic with its '/' as they are, or escaped.
	m := e.json(t, http.MethodGet, "/v1/retained/r/1", http.StatusOK)
	wantKeys(t, "retained message", m, "topic", "qos", "size", "payload_size", "created", "payload", "payload_base64")
	testutil.Equal(t, m["payload"], any("hello"), "payload")
	testutil.Equal(t, m["payload_base64"], any("aGVsbG8="), "payload_base64")
	testutil.Equal(t, m["qos"], any(1.0), "qos")
	m = e.json(t, http.MethodGet, "/v1/retained/"+url.PathEscape("r/2 x"), http.StatusOK)
	wantKeys(t, "binary retained message", m, "topic", "qos", "size", "payload_size", "created", "payload_base64")
	testutil.Equal(t, m["payload_base64"], any("//4="), "payload_base64")
	m = e.json(t, http.MethodGet, "/v1/retained/r%2F%2F3", http.StatusOK)
	testutil.Equal(t, m["payload"], any("empty level"), "payload of r//3")
	m = e.json(t, http.MethodGet, "/v1/retained/%24app/x", http.StatusOK)
	testutil.Equal(t, m["topic"], any("$app/x"), "topic")

	g := func(method, path string, code int, want string) {
		t.Helper()
		e.wantError(t, method, path, code, want)
	}
	g(http.MethodGet, "/v1/retained/r//3", http.StatusBadRequest, "%2F") // ServeMux would clean it to r/3
	g(http.MethodDelete, "/v1/retained/r/./1", http.StatusBadRequest, "%2F")
	g(http.MethodGet, "/v1/retained/nope", http.StatusNotFound, `no retained message on topic "nope"`)
	g(http.MethodGet, "/v1/retained/a%2F%23", http.StatusBadRequest, "filter")
	g(http.MethodGet, "/v1/retained/", http.StatusBadRequest, "no topic")
	g(http.MethodGet, "/v1/retained?"+apiQuery("filter", "a/#/b"), http.StatusBadRequest, "filter")
	g(http.MethodGet, "/v1/retained?"+apiQuery("filter", "$share/g/a"), http.StatusBadRequest, "filter")
	g(http.MethodGet, "/v1/retained?limit=100000", http.StatusBadRequest, "limit")
	g(http.MethodPost, "/v1/retained/r/1", http.StatusMethodNotAllowed, "POST")

	// Delete: gone from the API, and from what a new subscriber gets.
	m = e.json(t, http.MethodDelete, "/v1/retained/r/1", http.StatusOK)
	wantKeys(t, "delete answer", m, "topic", "deleted")
	testutil.Equal(t, m["topic"], any("r/1"), "topic")
	g(http.MethodGet, "/v1/retained/r/1", http.StatusNotFound, "r/1")
	g(http.MethodDelete, "/v1/retained/r/1", http.StatusNotFound, "r/1")
	f("", []string{"r//3", "r/2 x"}, "")
	sub := mqttConnect(t, e, "sub", 0)
	mqttSubscribe(t, sub, nil, paho.SubscribeOptions{Topic: "r/#", QoS: 1})
	got := []string{sub.Recv(t).Topic, sub.Recv(t).Topic}
	slices.Sort(got)
	if !slices.Equal(got, []string{"r//3", "r/2 x"}) {
		t.Fatalf("retained messages delivered: %q", got)
	}
	sub.NoMsg(t, 200*time.Millisecond)
}

func TestAdminStats(t *testing.T) {
	e := startAPI(t, true, "")
	c := mqttConnect(t, e, "c", 3600)
	mqttSubscribe(t, c, nil, paho.SubscribeOptions{Topic: "s/#", QoS: 1})
	mqttPublish(t, c, "s/1", []byte("x"), 1, true)
	c.Recv(t)

	s := e.json(t, http.MethodGet, "/v1/stats", http.StatusOK)
	wantKeys(t, "stats", s, "version", "started", "uptime_seconds", "ready", "connections", "online", "sessions",
		"subscriptions", "retained_messages", "retained_bytes", "listeners", "packets_received", "messages_received",
		"messages_sent", "bytes_received", "bytes_sent", "messages_dropped", "acl_denied", "limited",
		"publishers_paused", "publishes_held_back", "retained_refused", "store_refused", "accept_errors",
		"connections_refused", "tls_handshake_failures", "event_loops", "eventloop_busy_seconds", "queues", "store")
	wantKeys(t, "messages_received", s["messages_received"], "qos0", "qos1", "qos2")
	wantKeys(t, "messages_dropped", s["messages_dropped"], "slow_subscriber", "queue_full_qos0", "queue_full",
		"too_large", "expired")
	wantKeys(t, "queues", s["queues"], "queued_messages", "queued_bytes", "inflight_out", "inflight_in")
	wantKeys(t, "store", s["store"], "changes", "commits", "syncs", "refused", "failed", "recoveries")
	listeners := s["listeners"].([]any)
	testutil.Equal(t, len(listeners), 4, "listeners")
	wantKeys(t, "listener", listeners[0], "name", "sockets", "clients")
	wantKeys(t, "clients", listeners[0].(map[string]any)["clients"], "3.1", "3.1.1", "5.0")
	testutil.Equal(t, listeners[0].(map[string]any)["name"], any("tcp"), "first listener")
	testutil.Equal(t, s["version"], any(version), "version")
	testutil.Equal(t, s["ready"], any(true), "ready")
	testutil.Equal(t, s["online"], any(1.0), "online")
	testutil.Equal(t, s["sessions"], any(1.0), "sessions")
	testutil.Equal(t, s["retained_messages"], any(1.0), "retained_messages")
	testutil.Equal(t, s["messages_received"].(map[string]any)["qos1"], any(1.0), "messages_received.qos1")
	testutil.Equal(t, s["event_loops"], any(2.0), "event_loops")
	if s["store"].(map[string]any)["commits"].(float64) == 0 {
		t.Fatal("no store commits counted")
	}
	e.wantError(t, http.MethodGet, "/v1/stats?x=1", http.StatusBadRequest, "x")

	// Without a store: no store section.
	e = startAPI(t, false, "")
	s = e.json(t, http.MethodGet, "/v1/stats", http.StatusOK)
	if _, ok := s["store"]; ok {
		t.Fatalf("store stats of a broker without a store: %v", s["store"])
	}
}

// scrape returns the samples of /metrics by series (name and labels).
func scrapeMetrics(t *testing.T, e *apiEnv) map[string]float64 {
	t.Helper()
	code, body := e.call(t, http.MethodGet, "/metrics")
	testutil.Equal(t, code, http.StatusOK, "metrics status")
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func sample(t *testing.T, samples map[string]float64, series string) float64 {
	t.Helper()
	v, ok := samples[series]
	if !ok {
		t.Fatalf("no %s in /metrics", series)
	}
	return v
}

func TestAdminMetrics(t *testing.T) {
	e := startAPI(t, true, "")
	resp := get(t, e.admin, http.MethodGet, "/metrics", "")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("content type %q", ct)
	}
	m := scrapeMetrics(t, e)
	testutil.Equal(t, sample(t, m, `tern_build_info{version="`+version+`"}`), 1, "tern_build_info")
	before := sample(t, m, `tern_messages_received_total{qos="1"}`)
	sentBefore := sample(t, m, `tern_messages_sent_total{qos="1"}`)

	const conns5 = `tern_connections{listener="tcp",protocol="5.0"}`
	sub := mqttConnect(t, e, "sub", 3600) // a persistent session: its QoS 1 deliveries are stored
	mqttSubscribe(t, sub, nil, paho.SubscribeOptions{Topic: "m/#", QoS: 1})
	pub := mqttConnect(t, e, "pub", 0)
	idle := mqttConnect(t, e, "idle", 0)
	waitFor(t, conns5+" = 3", func() bool { return sample(t, scrapeMetrics(t, e), conns5) == 3 })

	const n = 5
	for i := range n {
		mqttPublish(t, pub, "m/"+strconv.Itoa(i), []byte("x"), 1, false)
	}
	for range n {
		sub.Recv(t)
	}
	m = scrapeMetrics(t, e)
	testutil.Equal(t, sample(t, m, `tern_messages_received_total{qos="1"}`), before+n, "QoS 1 messages received")
	waitFor(t, "QoS 1 messages sent", func() bool {
		return sample(t, scrapeMetrics(t, e), `tern_messages_sent_total{qos="1"}`) == sentBefore+n
	})
	if v := sample(t, m, "tern_wal_commit_duration_seconds_count"); v == 0 {
		t.Fatal("tern_wal_commit_duration_seconds_count = 0 after QoS 1 deliveries to a persistent session")
	}
	testutil.Equal(t, sample(t, m, `tern_wal_state{state="ok"}`), 1, "wal state")
	testutil.Equal(t, sample(t, m, "tern_subscriptions"), 1, "tern_subscriptions")
	testutil.Equal(t, sample(t, m, `tern_sessions{state="online"}`), 3, "online sessions")
	testutil.Equal(t, sample(t, m, "tern_eventloops"), 2, "tern_eventloops")

	testutil.Require(t, idle.Disconnect(&paho.Disconnect{}), "disconnect")
	waitFor(t, conns5+" = 2", func() bool { return sample(t, scrapeMetrics(t, e), conns5) == 2 })
}

// TestAdminAPIToken checks that the token guards the new routes too, but not
// the health probes.
func TestAdminAPIToken(t *testing.T) {
	e := startAPI(t, false, "s3cret")
	for _, p := range []string{"/healthz", "/readyz"} {
		code, _ := callAdmin(t, e.admin.Addr(), "", http.MethodGet, p)
		testutil.Equal(t, code, http.StatusOK, p+" without the token")
	}
	for _, p := range []string{"/metrics", "/v1/sessions", "/v1/stats", "/v1/retained/x", "/debug/pprof/"} {
		code, body := callAdmin(t, e.admin.Addr(), "", http.MethodGet, p)
		if code != http.StatusUnauthorized || !strings.Contains(string(body), `"error"`) {
			t.Fatalf("GET %s without the token: %d %s", p, code, body)
		}
		code, _ = callAdmin(t, e.admin.Addr(), "wrong", http.MethodGet, p)
		testutil.Equal(t, code, http.StatusUnauthorized, p+" with a wrong token")
	}
	f := func(p string, code int) {
		t.Helper()
		got, body := e.call(t, http.MethodGet, p)
		if got != code {
			t.Fatalf("GET %s with the token: %d %s, want %d", p, got, body, code)
		}
	}
	f("/readyz", http.StatusOK)
	f("/metrics", http.StatusOK)
	f("/v1/sessions", http.StatusOK)
	f("/v1/stats", http.StatusOK)
	f("/v1/retained/x", http.StatusNotFound)
	f("/debug/pprof/", http.StatusOK)
}
