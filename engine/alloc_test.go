package engine_test

import (
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// qos0Path is one publisher and one subscriber on a running broker, with a
// batch of QoS 0 PUBLISHes built once, so that the loop that drives them
// allocates nothing of its own: every allocation counted while it runs is
// the broker's.
type qos0Path struct {
	pub, sub net.Conn
	batch    []byte // perBatch PUBLISHes, as the subscriber also receives them
	perBatch int
	in       []byte
}

func newQoS0Path(tb testing.TB, perBatch, payload int) *qos0Path {
	srv := testutil.StartBroker(tb, engine.Options{})
	addr := srv.Addr().String()
	sub, _ := connectWire(tb, addr, codec.Version311, "alloc-sub", nil)
	sub.subscribe(1, 0, subscription("alloc/+", 0))
	pub, _ := connectWire(tb, addr, codec.Version311, "alloc-pub", nil)
	p := &codec.Packet{Type: codec.PUBLISH}
	p.Publish = codec.Publish{Topic: []byte("alloc/t"), Payload: make([]byte, payload)}
	one, err := p.Append(nil, codec.Version311)
	if err != nil {
		tb.Fatal(err)
	}
	q := &qos0Path{pub: pub.nc, sub: sub.nc, perBatch: perBatch, in: make([]byte, 64<<10)}
	for range perBatch {
		q.batch = append(q.batch, one...)
	}
	return q
}

// round publishes one batch and reads until the subscriber has all of it:
// 3.1.1 QoS 0 arrives byte for byte as sent.
func (q *qos0Path) round(tb testing.TB) {
	if _, err := q.pub.Write(q.batch); err != nil {
		tb.Fatal(err)
	}
	for got := 0; got < len(q.batch); {
		n, err := q.sub.Read(q.in)
		if err != nil && err != io.EOF {
			tb.Fatal(err)
		}
		got += n
	}
}

// TestQoS0PublishPathAllocs holds the broker to the issue's "0 allocations
// per message" on the steady-state QoS 0 publish path (decode, route, queue,
// write). What is left is per wake, not per message: waking the subscriber's
// event loop from the publisher's allocates a closure and a queue node in
// gnet (two per wake, and a batch may take a few reads and wakes on a busy
// machine), and the broker's background work (timers) may land a few in the
// window. So the bound is half an allocation per message at batches of 64
// and more: one allocation per message, the regression this guards against,
// fails it on any machine; quiet, the figure is about 0.04 at 64 and 0.014
// at 256.
func TestQoS0PublishPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, perBatch := range []int{8, 64, 256} {
		q := newQoS0Path(t, perBatch, 64)
		for range 200 { // warm the pools and buffers
			q.round(t)
		}
		const rounds = 500
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range rounds {
			q.round(t)
		}
		runtime.ReadMemStats(&after)
		perRound := float64(after.Mallocs-before.Mallocs) / rounds
		t.Logf("%d messages per batch: %.2f allocations per batch, %.4f per message", perBatch, perRound, perRound/float64(perBatch))
		if perMsg := perRound / float64(perBatch); perBatch >= 64 && perMsg >= 0.5 {
			t.Errorf("%d messages per batch: %.2f allocations per message; want none but gnet's per wake", perBatch, perMsg)
		}
	}
}

// BenchmarkQoS0PublishPath reports the broker's allocations per message
// (-benchmem) and the time per message of a closed loop: a batch of 64 QoS 0
// PUBLISHes from one client to one subscriber and back.
func BenchmarkQoS0PublishPath(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(map[int]string{64: "64B", 4096: "4KiB"}[size], func(b *testing.B) {
			q := newQoS0Path(b, 64, size)
			for range 50 {
				q.round(b)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += q.perBatch {
				q.round(b)
			}
		})
	}
}
