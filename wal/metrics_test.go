package wal

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteMetrics(t *testing.T) {
	s := openTest(t, nil, Options{})
	defer s.Close()
	for range 3 {
		mustSubmit(t, s, NewBatch(KindConnect, []byte("c")))
	}
	var buf bytes.Buffer
	s.WriteMetrics(&buf)
	out := buf.String()
	for _, want := range []string{
		"tern_wal_commits_total 3\n",
		"tern_wal_syncs_total 3\n",
		"tern_wal_changes_total 3\n",
		"tern_wal_commit_duration_seconds_count 3\n",
		`tern_wal_commit_duration_seconds_bucket{le="+Inf"} 3` + "\n",
		`tern_wal_state{state="ok"} 1` + "\n",
		`tern_wal_state{state="failed"} 0` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}
