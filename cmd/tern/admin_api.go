package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
)

// The admin API: what an operator asks of a running broker and does to it,
// as JSON under /v1/ of the admin endpoint. docs/admin-api.md describes it
// for its users and `tern ctl` (ctl.go) is its client.
//
// A client id or a topic travels in the path as one element, percent-encoded
// as url.PathEscape (or JavaScript's encodeURIComponent) does it: '/' as
// %2F, ' ' as %20, '#' as %23, '?' as %3F, '%' as %25. ServeMux matches the
// escaped path and unescapes each element after, so "a%2Fb" is the one
// client id "a/b". A topic may keep its '/' as they are
// (GET /v1/retained/sensors/temp), except around an empty, "." or ".." level,
// which would make the path unclean (jsonFallback refuses it).

const (
	// apiTimeout is the default adminOptions.ActionTimeout: a stuck client
	// or disk makes a request fail, not hang.
	apiTimeout = 10 * time.Second
	// maxPageLimit is the largest page the engine returns.
	maxPageLimit = 10_000
)

// page is one page of a list: the cursor of the next page goes in the
// request's after parameter; Next is left out on the last page.
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

func newPage[T any](items []T, more bool, cursor func(T) string) page[T] {
	p := page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{} // [] rather than null
	}
	if more && len(items) > 0 {
		p.Next = cursor(items[len(items)-1])
	}
	return p
}

// handleAPI routes the /v1 API on mux. Every route reads the engine, so it
// answers 503 until the broker has started.
func (a *adminServer) handleAPI(mux *http.ServeMux) {
	h := func(pattern string, f http.HandlerFunc) { mux.Handle(pattern, a.whenStarted(f)) }
	h("GET /v1/sessions", a.listSessions)
	h("GET /v1/sessions/{id}", a.showSession)
	h("DELETE /v1/sessions/{id}", a.deleteSession)
	h("POST /v1/sessions/{id}/disconnect", a.disconnect)
	h("GET /v1/subscriptions", a.listSubscriptions)
	h("GET /v1/retained", a.listRetained)
	h("GET /v1/retained/{topic...}", a.showRetained)
	h("DELETE /v1/retained/{topic...}", a.deleteRetained)
	h("GET /v1/stats", a.stats)
}

// params checks that the query of r has only the parameters known, and
// reads limit when it is one of them; it answers 400 and returns false
// otherwise. Refusing an unknown parameter catches a misspelt filter, which
// would otherwise silently list everything.
func params(w http.ResponseWriter, r *http.Request, known ...string) (q url.Values, limit int, ok bool) {
	// ParseQuery rather than URL.Query, which drops a pair it cannot
	// decode: "filter=a/%ZZ" would list everything.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad query: "+err.Error())
		return nil, 0, false
	}
	for k := range q {
		if !slices.Contains(known, k) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q", k))
			return nil, 0, false
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad limit %q: want 1-%d", s, maxPageLimit))
			return nil, 0, false
		}
		limit = n
	}
	return q, limit, true
}

func (a *adminServer) listSessions(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := params(w, r, "prefix", "state", "limit", "after")
	if !ok {
		return
	}
	sq := engine.SessionQuery{Prefix: q.Get("prefix"), After: q.Get("after"), Limit: limit}
	switch s := q.Get("state"); s {
	case "":
	case "online", "offline":
		online := s == "online"
		sq.Online = &online
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad state %q: want online or offline", s))
		return
	}
	items, more := a.broker.Sessions(sq)
	writeJSON(w, http.StatusOK, newPage(items, more, func(s engine.SessionInfo) string { return s.ClientID }))
}

// sessionDetail is the answer of GET /v1/sessions/{id}.
type sessionDetail struct {
	Session       engine.SessionInfo        `json:"session"`
	Subscriptions []engine.SubscriptionInfo `json:"subscriptions"`
}

func (a *adminServer) showSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, subs, err := a.broker.Session(id)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no session of client id %q", id))
		return
	}
	if subs == nil {
		subs = []engine.SubscriptionInfo{}
	}
	writeJSON(w, http.StatusOK, sessionDetail{Session: info, Subscriptions: subs})
}

// actionResult is the answer of a successful action on a client's session.
type actionResult struct {
	ClientID     string `json:"client_id"`
	Disconnected bool   `json:"disconnected,omitempty"`
	Deleted      bool   `json:"deleted,omitempty"`
}

func (a *adminServer) disconnect(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.broker.Disconnect(id); err != nil {
		msg := fmt.Sprintf("no session of client id %q", id)
		if _, _, err := a.broker.Session(id); err == nil {
			msg = fmt.Sprintf("client %q is not connected", id)
		}
		writeError(w, http.StatusNotFound, msg)
		return
	}
	a.log.Info("client disconnected by an administrator", "client_id", id, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, actionResult{ClientID: id, Disconnected: true})
}

func (a *adminServer) deleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, _, err := a.broker.Session(id)
	existed := err == nil
	ctx, cancel := context.WithTimeout(r.Context(), a.actionTimeout)
	defer cancel()
	err = a.broker.DeleteSession(ctx, id)
	if existed && errors.Is(err, engine.ErrNotFound) {
		// It ended while being deleted: a connected client's session
		// without expiry ends with the disconnection that DeleteSession
		// makes, and the engine then finds nothing left to delete.
		err = nil
	}
	switch {
	case err == nil: // the engine logs it
		writeJSON(w, http.StatusOK, actionResult{ClientID: id, Deleted: true})
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no session of client id %q", id))
	case errors.Is(err, engine.ErrOnline):
		writeError(w, http.StatusConflict, fmt.Sprintf("client %q is connected: it did not leave within %v "+
			"of being disconnected, or it reconnected", id, a.actionTimeout))
	default:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("cannot delete the session of %q: %v", id, err))
	}
}

func (a *adminServer) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := params(w, r, "client_prefix", "filter", "topic", "limit", "after")
	if !ok {
		return
	}
	sq := engine.SubscriptionQuery{ClientPrefix: q.Get("client_prefix"), Filter: q.Get("filter"),
		Topic: q.Get("topic"), Limit: limit}
	if s := q.Get("after"); s != "" {
		after, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad after %q: want the next of the previous page", s))
			return
		}
		sq.After = string(after)
	}
	if sq.Filter != "" {
		if err := codec.ValidateFilter([]byte(sq.Filter), codec.Version5); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad filter %q: %v", sq.Filter, err))
			return
		}
	}
	if sq.Topic != "" {
		if err := codec.ValidateTopicName([]byte(sq.Topic)); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad topic %q: %v", sq.Topic, err))
			return
		}
	}
	items, more := a.broker.Subscriptions(sq)
	writeJSON(w, http.StatusOK, newPage(items, more, subscriptionCursor))
}

// subscriptionCursor is the next of a page of subscriptions: the engine's
// cursor holds a NUL, which no shell argument can, so it goes out in
// base64url.
func subscriptionCursor(s engine.SubscriptionInfo) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s.Cursor()))
}

func (a *adminServer) listRetained(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := params(w, r, "filter", "limit", "after")
	if !ok {
		return
	}
	rq := engine.RetainedQuery{Filter: q.Get("filter"), After: q.Get("after"), Limit: limit}
	if rq.Filter != "" {
		// As the engine checks it, to tell a bad filter (400) from a store
		// error (503) in what it returns.
		err := codec.ValidateFilter([]byte(rq.Filter), codec.Version311)
		if err == nil && strings.HasPrefix(rq.Filter, codec.SharePrefix) {
			err = errors.New("a shared subscription's filter holds no retained messages")
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad filter %q: %v", rq.Filter, err))
			return
		}
	}
	items, more, err := a.broker.Retained(rq)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "cannot read the retained messages: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, newPage(items, more, func(m engine.RetainedInfo) string { return m.Topic }))
}

// retainedDetail is the answer of GET /v1/retained/{topic}: the payload
// always in base64, and also as a string when it is valid UTF-8.
type retainedDetail struct {
	engine.RetainedInfo
	Text          *string `json:"payload,omitempty"`
	PayloadBase64 string  `json:"payload_base64"`
}

// retainedTopic reads the topic of a /v1/retained/{topic...} path; it
// answers 400 and returns false when it is not a topic name.
func retainedTopic(w http.ResponseWriter, r *http.Request) (string, bool) {
	topic := r.PathValue("topic")
	if topic == "" {
		writeError(w, http.StatusBadRequest, "no topic in the path (GET /v1/retained lists the retained messages)")
		return "", false
	}
	if err := codec.ValidateTopicName([]byte(topic)); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad topic %q: %v (a filter goes in GET /v1/retained?filter=)", topic, err))
		return "", false
	}
	return topic, true
}

func (a *adminServer) showRetained(w http.ResponseWriter, r *http.Request) {
	topic, ok := retainedTopic(w, r)
	if !ok {
		return
	}
	m, err := a.broker.RetainedMessage(topic)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no retained message on topic %q", topic))
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("cannot read the retained message on %q: %v", topic, err))
		return
	}
	d := retainedDetail{RetainedInfo: m, PayloadBase64: base64.StdEncoding.EncodeToString(m.Payload)}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		d.Text = &s
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *adminServer) deleteRetained(w http.ResponseWriter, r *http.Request) {
	topic, ok := retainedTopic(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.actionTimeout)
	defer cancel()
	switch err := a.broker.DeleteRetained(ctx, topic); {
	case err == nil:
		a.log.Info("retained message deleted by an administrator", "topic", topic, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, struct {
			Topic   string `json:"topic"`
			Deleted bool   `json:"deleted"`
		}{topic, true})
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no retained message on topic %q", topic))
	case errors.Is(err, engine.ErrSysTopic):
		writeError(w, http.StatusForbidden, fmt.Sprintf("%q is one of the broker's own $SYS topics", topic))
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the store did not commit the deletion of %q within %v", topic, a.actionTimeout))
	default:
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("cannot delete the retained message on %q: %v", topic, err))
	}
}

// brokerStats is the answer of GET /v1/stats: engine.Snapshot under stable
// snake_case names, with the names of the metrics (docs/metrics.md) where
// there is one.
type brokerStats struct {
	Version       string    `json:"version"`
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	Ready         bool      `json:"ready"`
	NotReady      string    `json:"not_ready,omitempty"` // why not, when not ready

	Connections      int64           `json:"connections"` // open sockets, past CONNECT or not
	Online           int64           `json:"online"`      // clients past CONNECT
	Sessions         int             `json:"sessions"`
	Subscriptions    int             `json:"subscriptions"`
	RetainedMessages int             `json:"retained_messages"`
	RetainedBytes    int64           `json:"retained_bytes"`
	Listeners        []listenerStats `json:"listeners"`

	PacketsReceived  int64            `json:"packets_received"`
	MessagesReceived byQoS            `json:"messages_received"`
	MessagesSent     byQoS            `json:"messages_sent"`
	BytesReceived    int64            `json:"bytes_received"`
	BytesSent        int64            `json:"bytes_sent"`
	MessagesDropped  map[string]int64 `json:"messages_dropped"` // by reason, as tern_messages_dropped_total

	ACLDenied            int64 `json:"acl_denied"`
	Limited              int64 `json:"limited"`
	PublishersPaused     int64 `json:"publishers_paused"`
	PublishesHeldBack    int64 `json:"publishes_held_back"`
	RetainedRefused      int64 `json:"retained_refused"`
	StoreRefused         int64 `json:"store_refused"`
	AcceptErrors         int64 `json:"accept_errors"`
	ConnectionsRefused   int64 `json:"connections_refused"`
	TLSHandshakeFailures int64 `json:"tls_handshake_failures"`

	EventLoops           int     `json:"event_loops"`
	EventLoopBusySeconds float64 `json:"eventloop_busy_seconds"`

	Queues queueStats  `json:"queues"`
	Store  *storeStats `json:"store,omitempty"` // left out without --data-dir
}

type listenerStats struct {
	Name    string           `json:"name"`
	Sockets int64            `json:"sockets"`
	Clients map[string]int64 `json:"clients"` // by protocol version: "3.1", "3.1.1", "5.0"
}

type byQoS struct {
	QoS0 int64 `json:"qos0"`
	QoS1 int64 `json:"qos1"`
	QoS2 int64 `json:"qos2"`
}

func newByQoS(n [3]int64) byQoS { return byQoS{n[0], n[1], n[2]} }

// queueStats are engine.QueueTotals, at most queueTotalsMaxAge old.
type queueStats struct {
	Queued      int64 `json:"queued_messages"`
	QueuedBytes int64 `json:"queued_bytes"`
	InflightOut int64 `json:"inflight_out"`
	InflightIn  int64 `json:"inflight_in"` // QoS 2 received, awaiting PUBREL
}

type storeStats struct {
	Changes    uint64 `json:"changes"`
	Commits    uint64 `json:"commits"`
	Syncs      uint64 `json:"syncs"`
	Refused    uint64 `json:"refused"`
	Failed     uint64 `json:"failed"`
	Recoveries uint64 `json:"recoveries"`
	Error      string `json:"error,omitempty"` // why it takes no work, when it does not
}

func (a *adminServer) stats(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := params(w, r); !ok {
		return
	}
	s := a.broker.Snapshot()
	qt := a.metrics.queueTotals()
	st := brokerStats{
		Version: version, Started: s.Started.UTC(), UptimeSeconds: time.Since(s.Started).Seconds(),
		Connections: s.Connections, Online: s.Online, Sessions: s.Sessions, Subscriptions: s.Subscriptions,
		RetainedMessages: s.Retained, RetainedBytes: s.RetainedBytes,
		PacketsReceived: s.Received, MessagesReceived: newByQoS(s.MessagesIn), MessagesSent: newByQoS(s.MessagesOut),
		BytesReceived: s.BytesIn, BytesSent: s.BytesOut,
		MessagesDropped: map[string]int64{},
		ACLDenied:       s.ACLDenied, Limited: s.Limited, PublishersPaused: s.PausedQoS0, PublishesHeldBack: s.HeldBack,
		RetainedRefused: s.RetainRefused, StoreRefused: s.StoreRefused, AcceptErrors: s.AcceptErrors,
		ConnectionsRefused: s.RefusedConns, TLSHandshakeFailures: s.TLSHandshakeFailures,
		EventLoops: s.EventLoops, EventLoopBusySeconds: s.Busy.Seconds(),
		Queues: queueStats{Queued: qt.Queued, QueuedBytes: qt.QueuedBytes, InflightOut: qt.Inflight, InflightIn: qt.InboundQoS2},
	}
	for _, d := range drops(&s) {
		st.MessagesDropped[d.reason] = d.n
	}
	st.Ready = true
	if err := a.broker.Ready(); err != nil {
		st.Ready, st.NotReady = false, err.Error()
	}
	for _, l := range s.Listeners {
		ls := listenerStats{Name: l.Name, Sockets: l.Sockets, Clients: make(map[string]int64, len(l.Clients))}
		for p, n := range l.Clients {
			ls.Clients[engine.ProtocolNames[p]] = n
		}
		st.Listeners = append(st.Listeners, ls)
	}
	if a.store != nil {
		ws := a.store.Stats()
		st.Store = &storeStats{Changes: ws.Changes, Commits: ws.Commits, Syncs: ws.Syncs, Refused: ws.Refused,
			Failed: ws.Failed, Recoveries: ws.Recovery}
		if err := a.store.Err(); err != nil {
			st.Store.Error = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, st)
}
