package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/wal"
)

// durableBroker is a broker with a store on a crashable in-memory file
// system: crash() keeps only what was synced, as a power cut or kill -9 of
// the machine would, and starts a new broker on that.
type durableBroker struct {
	t     *testing.T
	fs    vfs.FS
	mem   *vfs.MemFS
	store *wal.Store
	srv   *engine.Server
	addr  string
	opts  engine.Options
	wopts wal.Options
}

func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("TERN_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startDurable(t *testing.T, o engine.Options, wo wal.Options) *durableBroker {
	t.Helper()
	mem := vfs.NewCrashableMem()
	if wo.FS == nil {
		wo.FS = mem
	}
	d := &durableBroker{t: t, fs: wo.FS, mem: mem, opts: o, wopts: wo}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *durableBroker) start() {
	d.t.Helper()
	wo := d.wopts
	wo.Dir = "/data"
	wo.FS = d.fs
	if wo.MinFreeBytes == 0 {
		wo.MinFreeBytes = -1
	}
	wo.Logger = testLogger()
	st, err := wal.Open(wo)
	if err != nil {
		d.t.Fatalf("open store: %v", err)
	}
	o := d.opts
	o.Listen = "127.0.0.1:0"
	o.EventLoops = 2
	o.Logger = wo.Logger
	o.Store = st
	srv := engine.New(o)
	if err := srv.Start(); err != nil {
		d.t.Fatalf("start broker: %v", err)
	}
	d.store, d.srv, d.addr = st, srv, srv.Addr().String()
}

// stop stops the broker and closes its store (a clean shutdown).
func (d *durableBroker) stop() {
	if d.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.srv.Stop(ctx)
	if err := d.store.Close(); err != nil {
		d.t.Errorf("close store: %v", err)
	}
	d.srv, d.store = nil, nil
}

// restart stops cleanly and starts again on the same files.
func (d *durableBroker) restart() {
	d.t.Helper()
	d.stop()
	d.start()
}

// crash starts a new broker on a copy of the files as a crash would leave
// them (everything not synced is lost), and stops the old one.
func (d *durableBroker) crash() {
	d.t.Helper()
	clone := d.mem.CrashClone(vfs.CrashCloneCfg{})
	d.stop()
	d.mem, d.fs = clone, clone
	d.start()
}

// persistent311 edits a 3.1.1 CONNECT for a persistent session.
func persistent311(c *codec.Connect) { c.CleanStart = false }

// durable5 edits a 5.0 CONNECT for a session that never expires, resumed.
func durable5(c *codec.Connect) {
	c.CleanStart = false
	c.Props.SetSessionExpiry(0xFFFFFFFF)
}

// publishAcked sends a PUBLISH and completes its flow as a publisher.
func (c *wireClient) publishAcked(topic string, qos byte, id uint16, retain bool, payload string) {
	c.t.Helper()
	c.publish(topic, qos, id, retain, payload)
	switch qos {
	case 1:
		c.expectAck(codec.PUBACK, id)
	case 2:
		c.expectAck(codec.PUBREC, id)
		c.ack(codec.PUBREL, id)
		c.expectAck(codec.PUBCOMP, id)
	}
}

// receiveAll reads PUBLISH packets until none comes for quiet, acknowledging
// each as a subscriber, and returns the payloads in order.
func (c *wireClient) receiveAll(quiet time.Duration) []string {
	c.t.Helper()
	return c.receive(-1, quiet)
}

// receive reads packets as a subscriber until it has n PUBLISH payloads (n <
// 0: any number) or nothing comes for wait, acknowledging each step of the
// QoS 1 and 2 flows. It may run in a goroutine of its own: a packet no
// subscriber expects is reported with Errorf.
func (c *wireClient) receive(n int, wait time.Duration) []string {
	var got []string
	for n < 0 || len(got) < n {
		p, err := c.next(wait)
		if err != nil {
			return got
		}
		switch p.Type {
		case codec.PUBLISH:
			got = append(got, string(p.Publish.Payload))
			switch p.Publish.QoS {
			case 1:
				c.ack(codec.PUBACK, p.Publish.PacketID)
			case 2:
				c.ack(codec.PUBREC, p.Publish.PacketID)
			}
		case codec.PUBREL:
			c.ack(codec.PUBCOMP, p.Ack.PacketID)
		default:
			c.t.Errorf("unexpected %v%s", p.Type, describe(p))
			return got
		}
	}
	return got
}

func equalStrings(t *testing.T, got, want []string, what string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// Everything acknowledged survives a crash: offline durable sessions' queued
// QoS 1 and 2 messages (in order, once), their subscriptions, and retained
// messages.
func TestDurableCrashKeepsAcknowledged(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	s311, _ := connectWire(t, d.addr, codec.Version311, "s311", persistent311)
	s311.subscribe(1, 0, subscription("d/#", 2))
	s311.send(&codec.Packet{Type: codec.DISCONNECT})
	s5, _ := connectWire(t, d.addr, codec.Version5, "s5", durable5)
	s5.subscribe(1, 0, subscription("d/q1", 1))
	s5.send(&codec.Packet{Type: codec.DISCONNECT})

	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", durable5)
	var want311, want5 []string
	for i := 1; i <= 6; i++ {
		qos := byte(1 + i%2)
		topic := fmt.Sprintf("d/q%d", qos)
		payload := fmt.Sprintf("m%d", i)
		pub.publishAcked(topic, qos, uint16(i), false, payload)
		want311 = append(want311, payload)
		if qos == 1 {
			want5 = append(want5, payload)
		}
	}
	pub.publishAcked("d/retained", 1, 20, true, "kept")
	want311 = append(want311, "kept")

	d.crash()

	s311 = dialWire(t, d.addr, codec.Version311)
	if ack := s311.connect("s311", persistent311); !ack.SessionPresent {
		t.Fatal("3.1.1 session not present after the crash")
	}
	equalStrings(t, s311.receiveAll(500*time.Millisecond), want311, "3.1.1 subscriber after the crash")
	s5 = dialWire(t, d.addr, codec.Version5)
	if ack := s5.connect("s5", durable5); !ack.SessionPresent {
		t.Fatal("5.0 session not present after the crash")
	}
	equalStrings(t, s5.receiveAll(500*time.Millisecond), want5, "5.0 subscriber after the crash")

	// Subscriptions are intact: a new message arrives at once.
	pub = dialWire(t, d.addr, codec.Version5)
	pub.connect("pub", durable5)
	pub.publishAcked("d/q1", 1, 1, false, "after")
	equalStrings(t, s311.receiveAll(300*time.Millisecond), []string{"after"}, "3.1.1 subscriber, new message")
	equalStrings(t, s5.receiveAll(300*time.Millisecond), []string{"after"}, "5.0 subscriber, new message")

	// The retained message is intact.
	fresh, _ := connectWire(t, d.addr, codec.Version5, "fresh", nil)
	fresh.subscribe(1, 0, subscription("d/retained", 1))
	equalStrings(t, fresh.receiveAll(300*time.Millisecond), []string{"kept"}, "retained after the crash")
}

// A QoS 2 delivery in flight when the broker crashes is resent with the same
// packet id and DUP (MQTT-4.4.0-1), so the receiver does not take it twice;
// one whose PUBREC was acknowledged with PUBREL continues with PUBREL.
func TestDurableInflightQoS2AcrossCrash(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
	sub.subscribe(1, 0, subscription("x/#", 2))
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
	pub.publishAcked("x/1", 2, 1, false, "one")
	first := sub.expectPublish()
	id := first.PacketID
	// Not acknowledged yet: after the crash it comes again, same id, DUP.
	sub.ping()
	d.crash()

	sub = dialWire(t, d.addr, codec.Version5)
	sub.connect("sub", durable5)
	again := sub.expectPublish()
	if again.PacketID != id || !again.Dup || string(again.Payload) != "one" {
		t.Fatalf("resent PUBLISH id %d dup %v %q, want id %d dup true \"one\"", again.PacketID, again.Dup, again.Payload, id)
	}
	sub.ack(codec.PUBREC, id)
	sub.expectAck(codec.PUBREL, id) // sent only once the store knows the PUBREC came
	d.crash()

	sub = dialWire(t, d.addr, codec.Version5)
	sub.connect("sub", durable5)
	sub.expectAck(codec.PUBREL, id) // continues with PUBREL, never the message again
	sub.ack(codec.PUBCOMP, id)
	sub.expectNone(300 * time.Millisecond)
	d.restart()

	sub = dialWire(t, d.addr, codec.Version5)
	sub.connect("sub", durable5)
	sub.expectNone(300 * time.Millisecond) // completed: gone from the store
}

// An inbound QoS 2 message whose PUBREC the publisher got is not forwarded
// again when the publisher resends it after a crash (MQTT-4.3.3-10), and its
// PUBREL still completes.
func TestDurableInboundQoS2AcrossCrash(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version311, "sub", persistent311)
	sub.subscribe(1, 0, subscription("y", 2))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	sub.expectClosed(wireTimeout) // offline before anything is published to it
	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", persistent311)
	pub.publish("y", 2, 7, false, "once")
	pub.expectAck(codec.PUBREC, 7)
	d.crash()

	pub = dialWire(t, d.addr, codec.Version311)
	if ack := pub.connect("pub", persistent311); !ack.SessionPresent {
		t.Fatal("publisher session lost")
	}
	p := publishPacket("y", 2, 7, false, "once")
	p.Publish.Dup = true
	pub.send(p)
	pub.expectAck(codec.PUBREC, 7)
	pub.ack(codec.PUBREL, 7)
	pub.expectAck(codec.PUBCOMP, 7)

	sub = dialWire(t, d.addr, codec.Version311)
	sub.connect("sub", persistent311)
	equalStrings(t, sub.receiveAll(500*time.Millisecond), []string{"once"}, "QoS 2 message delivered")
}

// Time spent down counts against the Session Expiry Interval.
func TestDurableExpiryCountsDowntime(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	short, _ := connectWire(t, d.addr, codec.Version5, "short", func(c *codec.Connect) { c.Props.SetSessionExpiry(1) })
	short.subscribe(1, 0, subscription("a", 1))
	short.send(&codec.Packet{Type: codec.DISCONNECT})
	long, _ := connectWire(t, d.addr, codec.Version5, "long", func(c *codec.Connect) { c.Props.SetSessionExpiry(60) })
	long.subscribe(1, 0, subscription("a", 1))
	long.send(&codec.Packet{Type: codec.DISCONNECT})
	time.Sleep(100 * time.Millisecond)
	d.stop()
	time.Sleep(1200 * time.Millisecond)
	d.start()

	short = dialWire(t, d.addr, codec.Version5)
	if ack := short.connect("short", func(c *codec.Connect) { c.CleanStart = false }); ack.SessionPresent {
		t.Fatal("a session with expiry 1 s survived 1.2 s of downtime")
	}
	long = dialWire(t, d.addr, codec.Version5)
	if ack := long.connect("long", func(c *codec.Connect) { c.CleanStart = false; c.Props.SetSessionExpiry(60) }); !ack.SessionPresent {
		t.Fatal("a session with expiry 60 s was lost")
	}
}

// A delayed will survives a restart and is published when its delay ends,
// counted from the connection's loss, not from the restart.
func TestDurableDelayedWillAcrossRestart(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version311, "watcher", persistent311)
	sub.subscribe(1, 0, subscription("wills/#", 1))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	sub.expectClosed(wireTimeout) // offline before anything is published to it
	dying, _ := connectWire(t, d.addr, codec.Version5, "dying", func(c *codec.Connect) {
		c.Props.SetSessionExpiry(60)
		c.Will, c.WillQoS = true, 1
		c.WillTopic, c.WillPayload = []byte("wills/dying"), []byte("gone")
		c.WillProps.SetWillDelay(2)
	})
	lost := time.Now()
	_ = dying.nc.Close() // connection lost: the will waits 2 s
	time.Sleep(100 * time.Millisecond)
	d.restart()

	sub = dialWire(t, d.addr, codec.Version311)
	sub.connect("watcher", persistent311)
	p, err := sub.next(4 * time.Second)
	if err != nil || p.Type != codec.PUBLISH || string(p.Publish.Payload) != "gone" {
		t.Fatalf("will not published after the restart: %v %v", err, p)
	}
	if waited := time.Since(lost); waited < 1900*time.Millisecond || waited > 3500*time.Millisecond {
		t.Fatalf("will published %v after the connection was lost, want about 2 s", waited)
	}
}

// Acknowledged deliveries leave the store: a long run of QoS 1 and 2
// messages to a durable subscriber leaves no queue entry and no message body.
func TestDurableStoreDoesNotGrow(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{Durability: wal.DurabilityNone})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
	sub.subscribe(1, 0, subscription("g/#", 2))
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", durable5)
	const n = 2000
	done := make(chan []string)
	go func() { done <- sub.receiveAllN(n) }()
	for i := 1; i <= n; i++ {
		pub.publishAcked("g/t", byte(1+i%2), uint16(i), false, fmt.Sprint(i))
	}
	if got := <-done; len(got) != n {
		t.Fatalf("received %d of %d", len(got), n)
	}
	sub.ping()
	time.Sleep(100 * time.Millisecond) // the last acknowledgements' deletions commit
	d.stop()

	st, err := wal.Open(wal.Options{Dir: "/data", FS: d.fs, MinFreeBytes: -1, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range state.Sessions {
		if len(ss.Queue) != 0 || len(ss.InboundQoS2) != 0 {
			t.Fatalf("session %s keeps %d queue entries and %d inbound ids", ss.ClientID, len(ss.Queue), len(ss.InboundQoS2))
		}
	}
	if state.Messages != 0 || state.Orphans != 0 {
		t.Fatalf("store keeps %d message bodies (%d orphans)", state.Messages, state.Orphans)
	}
	d.opts = engine.Options{}
	d.srv = nil // stopped above
}

// receiveAllN receives n PUBLISH packets, acknowledging each, and answers
// the PUBRELs that follow the last ones.
func (c *wireClient) receiveAllN(n int) []string {
	got := c.receive(n, 10*time.Second)
	c.receive(-1, 200*time.Millisecond)
	return got
}

// Acknowledgements leave in the order their packets came (MQTT-4.6.0-2),
// whether they waited for the store or not.
func TestDurableAcksInOrder(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version311, "sub", persistent311)
	sub.subscribe(1, 0, subscription("stored/#", 1))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	sub.expectClosed(wireTimeout) // offline before anything is published to it
	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", nil)
	for i := 1; i <= 200; i++ {
		topic := "memory/x"
		if i%3 == 0 {
			topic = "stored/x"
		}
		pub.publish(topic, 1, uint16(i), false, "m")
	}
	for i := 1; i <= 200; i++ {
		pub.expectAck(codec.PUBACK, uint16(i))
	}
}

// Unsubscribing and a clean start are stored too.
func TestDurableUnsubscribeAndCleanStart(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	c, _ := connectWire(t, d.addr, codec.Version311, "c", persistent311)
	c.subscribe(1, 0, subscription("keep", 1), subscription("drop", 1))
	c.send(&codec.Packet{Type: codec.UNSUBSCRIBE, Unsubscribe: codec.Unsubscribe{PacketID: 2, Filters: [][]byte{[]byte("drop")}}})
	c.expect(codec.UNSUBACK)
	c.send(&codec.Packet{Type: codec.DISCONNECT})
	other, _ := connectWire(t, d.addr, codec.Version311, "gone", persistent311)
	other.subscribe(1, 0, subscription("keep", 1))
	other.send(&codec.Packet{Type: codec.DISCONNECT})
	other, _ = connectWire(t, d.addr, codec.Version311, "gone", nil) // clean start ends the stored session
	other.send(&codec.Packet{Type: codec.DISCONNECT})
	time.Sleep(50 * time.Millisecond)
	d.crash()

	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", nil)
	pub.publishAcked("keep", 1, 1, false, "k")
	pub.publishAcked("drop", 1, 2, false, "d")
	c = dialWire(t, d.addr, codec.Version311)
	c.connect("c", persistent311)
	equalStrings(t, c.receiveAll(300*time.Millisecond), []string{"k"}, "after unsubscribe and crash")
	other = dialWire(t, d.addr, codec.Version311)
	if ack := other.connect("gone", persistent311); ack.SessionPresent {
		t.Fatal("a session ended by a clean start came back")
	}
}

// lowDiskFS reports as little free space as the test says.
type lowDiskFS struct {
	vfs.FS
	free atomic.Uint64
}

func (f *lowDiskFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	return vfs.DiskUsage{AvailBytes: f.free.Load(), TotalBytes: 1 << 40}, nil
}

// With the disk nearly full the broker refuses new QoS 1/2 work with 0x97
// (3.1.1: closes, it cannot say so) rather than acknowledge what it cannot
// store, keeps serving QoS 0, and accepts work again when space returns.
func TestDurableDiskFull(t *testing.T) {
	fs := &lowDiskFS{FS: vfs.NewMem()}
	fs.free.Store(1 << 40)
	d := startDurable(t, engine.Options{}, wal.Options{FS: fs, MinFreeBytes: 1 << 30, RetryInterval: 50 * time.Millisecond})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
	sub.subscribe(1, 0, subscription("f/#", 1))
	fs.free.Store(1 << 20)
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
	// The store notices at its next commit (it checks at most every 100 ms).
	deadline := time.Now().Add(3 * time.Second)
	var refused bool
	for i := uint16(1); time.Now().Before(deadline); i++ {
		pub.publish("f/x", 1, i, false, "p")
		if a := pub.expectAck(codec.PUBACK, i); a.ReasonCode == codec.QuotaExceeded {
			refused = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !refused {
		t.Fatal("QoS 1 still accepted with the disk full")
	}
	sub2, _ := connectWire(t, d.addr, codec.Version5, "sub2", durable5)
	codes := sub2.subscribe(2, 0, subscription("f/more", 1))
	if codes[0] != byte(codec.QuotaExceeded) {
		t.Fatalf("SUBSCRIBE with the disk full: %#x, want 0x97", codes[0])
	}
	old, _ := connectWire(t, d.addr, codec.Version311, "old", nil)
	old.publish("f/x", 1, 1, false, "p")
	old.expectClosed(2 * time.Second)

	fs.free.Store(1 << 40)
	pub.publishUntilAccepted("f/x", 100, 3*time.Second)
}

// publishUntilAccepted publishes QoS 1 messages with packet ids from
// firstID on until one is accepted, failing the test after within.
func (c *wireClient) publishUntilAccepted(topic string, firstID uint16, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for i := firstID; ; i++ {
		c.publish(topic, 1, i, false, "again")
		if c.expectAck(codec.PUBACK, i).ReasonCode == codec.Success {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("QoS 1 still refused after %v", within)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// A stored message that expires in an offline session's queue is not
// delivered (MQTT-3.3.2-5) and its entry leaves the store.
func TestDurableExpiredEntriesDeleted(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
	sub.subscribe(1, 0, subscription("e", 1))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	sub.expectClosed(wireTimeout) // offline before anything is published to it
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
	p := publishPacket("e", 1, 1, false, "short-lived")
	p.Publish.Props.SetMessageExpiry(1)
	pub.send(p)
	pub.expectAck(codec.PUBACK, 1)
	pub.publishAcked("e", 1, 2, false, "lasting")
	time.Sleep(1100 * time.Millisecond)

	sub = dialWire(t, d.addr, codec.Version5)
	sub.connect("sub", durable5)
	equalStrings(t, sub.receiveAll(300*time.Millisecond), []string{"lasting"}, "after expiry")
	time.Sleep(50 * time.Millisecond)
	d.stop()
	st, err := wal.Open(wal.Options{Dir: "/data", FS: d.fs, MinFreeBytes: -1, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, ss := range state.Sessions {
		if len(ss.Queue) != 0 {
			t.Fatalf("session %s keeps %d queue entries", ss.ClientID, len(ss.Queue))
		}
	}
}

// failingWAL fails writes and syncs of Pebble's WAL while on.
func failingWAL() *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo, errorfs.OpFileWrite, errorfs.OpFileWriteAt:
			return errorfs.ErrInjected
		}
		return nil
	})}
}

// A failed WAL sync is never acknowledged: a 5.0 publisher hears 0x80, a
// 3.1.1 one is disconnected without PUBACK, and the broker takes work again
// once the store recovers.
func TestDurableSyncFailureNotAcknowledged(t *testing.T) {
	inj := failingWAL()
	d := startDurable(t, engine.Options{}, wal.Options{FS: errorfs.Wrap(vfs.NewMem(), inj), RetryInterval: 20 * time.Millisecond})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
	sub.subscribe(1, 0, subscription("s/#", 1))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	sub.expectClosed(wireTimeout) // offline before anything is published to it
	p5, _ := connectWire(t, d.addr, codec.Version5, "p5", nil)
	p311, _ := connectWire(t, d.addr, codec.Version311, "p311", nil)
	p5.publishAcked("s/x", 1, 1, false, "ok")

	inj.On()
	p5.publish("s/x", 1, 2, false, "lost")
	if a := p5.expectAck(codec.PUBACK, 2); a.ReasonCode != codec.UnspecifiedError && a.ReasonCode != codec.QuotaExceeded {
		t.Fatalf("PUBACK with a failing WAL: %v, want a refusal", a.ReasonCode)
	}
	p311.publish("s/x", 1, 1, false, "lost")
	for _, p := range p311.expectClosed(3 * time.Second) {
		if p.Type == codec.PUBACK {
			t.Fatal("3.1.1 PUBACK for a message the store failed to keep")
		}
	}

	inj.Off()
	p5.publishUntilAccepted("s/x", 10, 5*time.Second)
}

// The retained store is bounded: a retained message for a new topic beyond
// --max-retained-messages is refused with 0x97 (5.0), replacing one is not,
// and retained messages stay on disk across a restart.
func TestDurableRetainedLimitAndRestart(t *testing.T) {
	d := startDurable(t, engine.Options{MaxRetainedMessages: 2}, wal.Options{})
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
	pub.publishAcked("r/1", 1, 1, true, "one")
	pub.publishAcked("r/2", 1, 2, true, "two")
	pub.publish("r/3", 1, 3, true, "three")
	if a := pub.expectAck(codec.PUBACK, 3); a.ReasonCode != codec.QuotaExceeded {
		t.Fatalf("retained beyond the limit: %v, want 0x97", a.ReasonCode)
	}
	pub.publish("r/2", 2, 4, true, "two again")
	if a := pub.expectAck(codec.PUBREC, 4); a.ReasonCode.IsError() {
		t.Fatalf("replacing a retained message at the limit: %v", a.ReasonCode)
	}
	pub.ack(codec.PUBREL, 4)
	pub.expectAck(codec.PUBCOMP, 4)
	d.crash()

	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", nil)
	sub.subscribe(1, 0, subscription("r/#", 2))
	got := sub.receiveAll(300 * time.Millisecond)
	slices.Sort(got)
	equalStrings(t, got, []string{"one", "two again"}, "retained after the crash")
	if n := d.srv.Snapshot().Retained; n != 2 {
		t.Fatalf("retained count %d after restart, want 2", n)
	}
	pub, _ = connectWire(t, d.addr, codec.Version5, "pub", nil)
	pub.publishAcked("r/1", 1, 1, true, "") // clearing frees a place
	pub.publishAcked("r/3", 1, 2, true, "three")
}
