package engine_test

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// smallReceiveBuffer makes a client's socket buffer little, so that a slow
// reader is felt by the broker at once rather than after megabytes of
// loopback buffering.
func smallReceiveBuffer(o *mqtt.ClientOptions) {
	o.SetDialer(&net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}})
}

// A QoS 0 publisher faster than a subscriber that keeps reading is slowed
// down to the subscriber's pace (its socket is no longer read while the
// subscriber is over --max-outbound-bytes), so nothing is lost: the issue 5
// fan-in goal "0 loss". Before, everything over the bound was dropped.
func TestQoS0PublisherPausedForSlowSubscriber(t *testing.T) {
	const n, size = 20000, 512 // 10 MB: more than the kernel buffers hold (tcp_wmem max is 4 MiB by default)
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 16 << 10})
	addr := srv.Addr().String()
	got := make(chan mqtt.Message, n)
	sub, _ := connect311(t, addr, "slow-q0", true, nil, smallReceiveBuffer, func(o *mqtt.ClientOptions) {
		var handled int
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			if handled++; handled%16 == 0 {
				time.Sleep(time.Millisecond) // paho reads no further while its handler runs
			}
			got <- m
		})
	})
	waitToken(t, sub.Subscribe("q0/#", 0, nil), "subscribe")

	pub, _ := connectWire(t, addr, codec.Version311, "fast-q0", nil)
	payload := make([]byte, size)
	go func() {
		for i := range n {
			copy(payload, strconv.Itoa(i)+" ")
			if err := pub.tryWrite(mustAppend(publishPacket("q0/t", 0, 0, false, string(payload)))); err != nil {
				return
			}
		}
	}()
	for i := range n {
		select {
		case m := <-got:
			var seq int
			if _, err := fmt.Sscan(string(m.Payload()), &seq); err != nil || seq != i {
				t.Fatalf("message %d is %q: lost or out of order (dropped %d)", i, m.Payload()[:12], srv.Snapshot().DroppedQoS0)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d QoS 0 messages arrived (dropped %d)", i, n, srv.Snapshot().DroppedQoS0)
		}
	}
	if s := srv.Snapshot(); s.DroppedQoS0 != 0 || s.PausedQoS0 == 0 {
		t.Fatalf("dropped %d, paused %d times: the publisher was not held back", s.DroppedQoS0, s.PausedQoS0)
	}
}

// A subscriber that stopped reading holds its QoS 0 publishers back for at
// most about a second (stalledAfter); then its messages are dropped and the
// other subscribers of the same publisher get everything.
func TestStalledQoS0SubscriberDoesNotHoldPublishersBack(t *testing.T) {
	const n, size = 16000, 1024 // 16 MB: more than the kernel buffers for the stalled socket (tcp_wmem max is 4 MiB by default)
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 16 << 10})
	addr := srv.Addr().String()
	stalled, _ := connectWire(t, addr, codec.Version311, "stalled-q0", nil)
	stalled.subscribe(1, 0, subscription("st0/#", 0))
	if err := stalled.nc.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	got := make(chan mqtt.Message, n)
	fast, _ := connect311(t, addr, "fast-sub-q0", true, got)
	waitToken(t, fast.Subscribe("st0/#", 0, nil), "subscribe")

	pub, _ := connectWire(t, addr, codec.Version311, "pub-q0", nil)
	payload := string(make([]byte, size))
	began := time.Now()
	sent := make(chan time.Duration, 1)
	go func() {
		for range n {
			if err := pub.tryWrite(mustAppend(publishPacket("st0/t", 0, 0, false, payload))); err != nil {
				break
			}
		}
		sent <- time.Since(began)
	}()
	for i := range n {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("the reading subscriber got %d of %d", i, n)
		}
	}
	if took := <-sent; took > 8*time.Second { // about stalledAfter, not the 30 s slow-consumer timeout
		t.Fatalf("publishing %d messages took %v: the stalled subscriber held the publisher back", n, took)
	}
	if s := srv.Snapshot(); s.DroppedQoS0 == 0 || s.PausedQoS0 == 0 {
		t.Fatalf("dropped %d, paused %d: the stalled subscriber was neither held for nor dropped for", s.DroppedQoS0, s.PausedQoS0)
	}
}

func mustAppend(p *codec.Packet) []byte {
	b, err := p.Append(nil, codec.Version311)
	if err != nil {
		panic(err)
	}
	return b
}
