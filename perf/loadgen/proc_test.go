package loadgen

import (
	"os"
	"testing"

	"github.com/tern-mqtt/tern/internal/testutil"
)

func TestParseRSS(t *testing.T) {
	got, err := ParseRSS([]byte("Name:\ttern\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nRssAnon:\t 8000 kB\n"))
	testutil.Require(t, err, "ParseRSS")
	testutil.Equal(t, got, int64(10<<20), "VmRSS")
	if _, err := ParseRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("no error without VmRSS")
	}
	if _, err := ParseRSS([]byte("VmRSS:\t12 MB\n")); err == nil {
		t.Fatal("no error for a unit that is not kB")
	}
	if rss, err := ProcRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("own RSS: %d, %v", rss, err)
	}
}
