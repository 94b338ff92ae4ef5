package engine

import (
	"testing"
	"unsafe"

	"github.com/tern-mqtt/tern/sessions"
)

// Every idle connection costs these structs (issue 5: bytes per idle
// connection); a field that pushes one into the next Go size class costs a
// million-connection broker tens of megabytes. Rarely used state goes behind
// a pointer (conn.extra, conn.batch, Session.lists) instead.
func TestConnectionStructSizes(t *testing.T) {
	if n := unsafe.Sizeof(conn{}); n > 384 {
		t.Errorf("conn is %d bytes, over the 384-byte size class", n)
	}
	if n := unsafe.Sizeof(sessions.Session{}); n > 240 {
		t.Errorf("sessions.Session is %d bytes, over the 240-byte size class", n)
	}
}

// TestHotStatsFillTwoCacheLines: a stripe of the per-message counters is
// exactly two cache lines and the stripes start on a line, so that
// neighbouring stripes never share one.
func TestHotStatsFillTwoCacheLines(t *testing.T) {
	if n := unsafe.Sizeof(hotStats{}); n != 128 {
		t.Fatalf("hotStats is %d bytes, want 128", n)
	}
	for range 10 {
		s := New(Options{})
		if p := uintptr(unsafe.Pointer(s.stats.hot)); p%64 != 0 {
			t.Fatalf("stripes at %#x: not on a cache line", p)
		}
	}
}
