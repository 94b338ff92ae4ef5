package wal

import (
	"fmt"
	"io"

	"github.com/VictoriaMetrics/metrics"
)

// commitBuckets are the upper bounds (seconds) of the commit latency
// histogram: from a page-cache write (tens of microseconds) to a disk that
// stalls for seconds, where an fsync on SSD sits around 0.2-2 ms.
var commitBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

// storeMetrics are what a Store measures beyond its counters. Each store has
// its own set (tests open many stores in one process).
type storeMetrics struct {
	set *metrics.Set
	// commitSeconds is the time of one Pebble commit of a group, its sync
	// included when it syncs (always under DurabilitySync; once per
	// SyncInterval under DurabilityBatch; never under DurabilityNone).
	commitSeconds *metrics.PrometheusHistogram
}

func newStoreMetrics() storeMetrics {
	set := metrics.NewSet()
	return storeMetrics{
		set:           set,
		commitSeconds: set.NewPrometheusHistogramExt("tern_wal_commit_duration_seconds", commitBuckets),
	}
}

// WriteMetrics writes the store's metrics in the Prometheus text format:
// the commit latency histogram, its counters, and whether it takes work.
func (s *Store) WriteMetrics(w io.Writer) {
	st := s.Stats()
	metrics.WriteCounterUint64(w, "tern_wal_changes_total", st.Changes)
	metrics.WriteCounterUint64(w, "tern_wal_commits_total", st.Commits)
	metrics.WriteCounterUint64(w, "tern_wal_syncs_total", st.Syncs)
	metrics.WriteCounterUint64(w, "tern_wal_refused_total", st.Refused)
	metrics.WriteCounterUint64(w, "tern_wal_failed_total", st.Failed)
	metrics.WriteCounterUint64(w, "tern_wal_recoveries_total", st.Recovery)
	state := "ok"
	switch s.state.Load() {
	case stateLowSpace:
		state = "low_space"
	case stateOK:
	default:
		state = "failed"
	}
	for _, v := range []string{"ok", "low_space", "failed"} {
		n := uint64(0)
		if v == state {
			n = 1
		}
		metrics.WriteGaugeUint64(w, fmt.Sprintf(`tern_wal_state{state=%q}`, v), n)
	}
	s.metrics.set.WritePrometheus(w)
}
