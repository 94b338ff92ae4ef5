package main

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/wal"
)

// The broker's Prometheus metrics (GET /metrics on the admin endpoint),
// documented in docs/metrics.md. They are read from the engine's and the
// store's own counters at scrape time rather than kept twice: the engine
// counts in striped atomics on its hot path, and a scrape sums them.

// queueTotalsMaxAge bounds how often a scrape walks every session for the
// queued and in-flight totals: a scraper polling every second against ten
// million sessions would otherwise keep a core busy.
const queueTotalsMaxAge = 5 * time.Second

type metricsWriter struct {
	srv   *engine.Server
	store *wal.Store // nil without --data-dir

	mu       sync.Mutex
	totals   engine.QueueTotals
	totalsAt time.Time
}

func (m *metricsWriter) queueTotals() engine.QueueTotals {
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.totalsAt) > queueTotalsMaxAge {
		m.totals, m.totalsAt = m.srv.QueueTotals(), time.Now()
	}
	return m.totals
}

func (m *metricsWriter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.write(w)
}

// dropReasons name the causes of lost deliveries, as the metric's reason
// label, the stats API's keys and tern ctl stats say them.
var dropReasons = [...]string{"slow_subscriber", "queue_full_qos0", "queue_full", "too_large", "expired"}

type dropCount struct {
	reason string
	n      int64
}

// drops returns the snapshot's lost deliveries by reason, in dropReasons
// order.
func drops(s *engine.Snapshot) [len(dropReasons)]dropCount {
	n := [...]int64{s.DroppedSlow, s.DroppedQueueFull, s.Refused, s.DroppedTooLarge, s.Expired}
	var out [len(dropReasons)]dropCount
	for i, r := range dropReasons {
		out[i] = dropCount{r, n[i]}
	}
	return out
}

func (m *metricsWriter) write(w io.Writer) {
	s := m.srv.Snapshot()
	gauge := func(name string, v int64) { metrics.WriteGaugeUint64(w, name, uint64(max(v, 0))) }
	counter := func(name string, v int64) { metrics.WriteCounterUint64(w, name, uint64(max(v, 0))) }

	metrics.WriteGaugeUint64(w, fmt.Sprintf(`tern_build_info{version=%q}`, version), 1)
	if !s.Started.IsZero() {
		metrics.WriteGaugeFloat64(w, "tern_start_time_seconds", float64(s.Started.UnixNano())/1e9)
	}
	for _, l := range s.Listeners {
		gauge(fmt.Sprintf(`tern_sockets{listener=%q}`, l.Name), l.Sockets)
	}
	for _, l := range s.Listeners {
		for p, n := range l.Clients {
			gauge(fmt.Sprintf(`tern_connections{listener=%q,protocol=%q}`, l.Name, engine.ProtocolNames[p]), n)
		}
	}
	gauge(`tern_sessions{state="online"}`, s.Online)
	gauge(`tern_sessions{state="offline"}`, int64(s.Sessions)-s.Online)
	gauge("tern_subscriptions", int64(s.Subscriptions))
	gauge("tern_retained_messages", int64(s.Retained))
	gauge("tern_retained_bytes", s.RetainedBytes)
	qt := m.queueTotals()
	gauge("tern_queued_messages", qt.Queued)
	gauge("tern_queued_bytes", qt.QueuedBytes)
	gauge(`tern_inflight_messages{direction="out"}`, qt.Inflight)
	gauge(`tern_inflight_messages{direction="in"}`, qt.InboundQoS2)

	counter("tern_packets_received_total", s.Received)
	for q := range 3 {
		counter(fmt.Sprintf(`tern_messages_received_total{qos="%d"}`, q), s.MessagesIn[q])
	}
	for q := range 3 {
		counter(fmt.Sprintf(`tern_messages_sent_total{qos="%d"}`, q), s.MessagesOut[q])
	}
	for q := range 3 {
		counter(fmt.Sprintf(`tern_publish_bytes_received_total{qos="%d"}`, q), s.PublishBytesIn[q])
	}
	for q := range 3 {
		counter(fmt.Sprintf(`tern_publish_bytes_sent_total{qos="%d"}`, q), s.PublishBytesOut[q])
	}
	counter("tern_bytes_received_total", s.BytesIn)
	counter("tern_bytes_sent_total", s.BytesOut)
	for _, d := range drops(&s) {
		counter(fmt.Sprintf(`tern_messages_dropped_total{reason=%q}`, d.reason), d.n)
	}
	counter("tern_acl_denied_total", s.ACLDenied)
	counter("tern_limited_total", s.Limited)
	counter("tern_publishers_paused_total", s.PausedQoS0)
	counter("tern_publishes_held_back_total", s.HeldBack)
	counter("tern_retained_refused_total", s.RetainRefused)
	counter("tern_store_refused_total", s.StoreRefused)
	counter("tern_accept_errors_total", s.AcceptErrors)
	counter("tern_connections_refused_total", s.RefusedConns)
	counter("tern_tls_handshake_failures_total", s.TLSHandshakeFailures)
	gauge("tern_eventloops", int64(s.EventLoops))
	metrics.WriteCounterFloat64(w, "tern_eventloop_busy_seconds_total", s.Busy.Seconds())
	if m.store != nil {
		m.store.WriteMetrics(w)
	}
	// Go runtime and process metrics (memory, GC, CPU, open files).
	metrics.WriteProcessMetrics(w)
}
