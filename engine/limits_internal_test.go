package engine

import (
	"net/netip"
	"testing"
	"time"
)

// An address that connected and left within one rate window is forgotten
// by the sweep, so the table does not grow with every address ever seen.
func TestIPLimitsForgetIdleAddresses(t *testing.T) {
	s := &Server{opts: Options{MaxConnectionsPerIP: 2, ConnectRatePerIP: 5}}
	now := time.Now().UnixNano()
	for i := range 100 {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if r := s.admit(addr, now); r != 0 {
			t.Fatalf("admit %v: %v", addr, r)
		}
		s.release(addr)
	}
	if n := len(s.ips.entries); n != 100 {
		t.Fatalf("%d entries within the window, want 100 (their rate windows still count)", n)
	}
	s.sweepIPs(now + int64(time.Second))
	if n := len(s.ips.entries); n != 0 {
		t.Fatalf("%d entries after the sweep, want 0", n)
	}
}
