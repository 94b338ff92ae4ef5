package engine_test

// Review tests of the persistence wiring. Tests named TestReview* that fail
// show a bug; the comment above each says which.

import (
	"os"
	"os/exec"
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

// slowSync delays the syncs of Pebble's WAL while on: a slow disk, so that a
// test can act (and crash) while a change is written but not yet durable.
type slowSync struct{ delay atomic.Int64 }

func (s *slowSync) on(d time.Duration) { s.delay.Store(int64(d)) }
func (s *slowSync) off()               { s.delay.Store(0) }

func (s *slowSync) MaybeError(op errorfs.Op) error {
	if !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		if d := time.Duration(s.delay.Load()); d > 0 {
			time.Sleep(d)
		}
	}
	return nil
}

func (s *slowSync) String() string { return "slowSync" }

// startSlowDurable is startDurable on a crashable file system whose WAL syncs
// can be slowed down; crash() keeps what was synced.
func startSlowDurable(t *testing.T, o engine.Options) (*durableBroker, *slowSync) {
	t.Helper()
	slow := &slowSync{}
	mem := vfs.NewCrashableMem()
	d := &durableBroker{t: t, fs: errorfs.Wrap(mem, slow), mem: mem, opts: o, wopts: wal.Options{}}
	d.start()
	t.Cleanup(d.stop)
	return d, slow
}

// waitStoreOK waits until the store takes work again after a failure.
func waitStoreOK(t *testing.T, d *durableBroker) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for d.store.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover: %v", d.store.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inChild runs the test body in a child process when it may crash the
// process (a double release panics in a loop goroutine), so that the rest of
// the package's tests still run; the parent fails with the child's output.
func inChild(t *testing.T, body func(t *testing.T)) {
	t.Helper()
	if os.Getenv("TERN_REVIEW_CHILD") == t.Name() {
		body(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TERN_REVIEW_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := string(out)
		if len(s) > 6000 {
			s = s[:6000] + "\n..."
		}
		t.Fatalf("child failed (%v):\n%s", err, s)
	}
}

// BUG: a will whose delay is not shorter than the Session Expiry Interval is
// published by fireWill when the session ends, with no store batch (tx nil):
// with a store, storeRetained(m, nil) refuses, so a retained will is never
// retained, and the will's QoS 1 copy for an offline durable subscriber is
// queued in memory only and lost by a crash.
func TestReviewWillAtSessionEndIsStored(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	watcher, _ := connectWire(t, d.addr, codec.Version311, "watcher", persistent311)
	watcher.subscribe(1, 0, subscription("wills/#", 1))
	watcher.send(&codec.Packet{Type: codec.DISCONNECT})

	dying, _ := connectWire(t, d.addr, codec.Version5, "dying", func(c *codec.Connect) {
		c.Props.SetSessionExpiry(1)
		c.Will, c.WillQoS, c.WillRetain = true, 1, true
		c.WillTopic, c.WillPayload = []byte("wills/dying"), []byte("gone")
		c.WillProps.SetWillDelay(5) // the session ends first: the will goes then (MQTT-3.1.3-9)
	})
	_ = dying.nc.Close()
	time.Sleep(1600 * time.Millisecond) // the session ended and its will was published

	fresh, _ := connectWire(t, d.addr, codec.Version5, "fresh", nil)
	fresh.subscribe(1, 0, subscription("wills/dying", 1))
	if got := fresh.receiveAll(300 * time.Millisecond); len(got) != 1 || got[0] != "gone" {
		t.Errorf("retained will: got %q, want [gone]", got)
	}
	d.crash()

	watcher = dialWire(t, d.addr, codec.Version311)
	watcher.connect("watcher", persistent311)
	if got := watcher.receiveAll(500 * time.Millisecond); len(got) != 1 || got[0] != "gone" {
		t.Errorf("durable subscriber's will after a crash: got %q, want [gone]", got)
	}
}

// Same will, memory only: published and retained at the session's end
// (passes; the bug above is store-only).
func TestReviewWillAtSessionEndMemory(t *testing.T) {
	srv := engine.New(engine.Options{Listen: "127.0.0.1:0", Logger: testLogger()})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(t.Context())
	addr := srv.Addr().String()
	dying, _ := connectWire(t, addr, codec.Version5, "dying", func(c *codec.Connect) {
		c.Props.SetSessionExpiry(1)
		c.Will, c.WillQoS, c.WillRetain = true, 1, true
		c.WillTopic, c.WillPayload = []byte("wills/dying"), []byte("gone")
		c.WillProps.SetWillDelay(5)
	})
	_ = dying.nc.Close()
	time.Sleep(1600 * time.Millisecond)
	fresh, _ := connectWire(t, addr, codec.Version5, "fresh", nil)
	fresh.subscribe(1, 0, subscription("wills/dying", 1))
	equalStrings(t, fresh.receiveAll(300*time.Millisecond), []string{"gone"}, "retained will (memory)")
}

// BUG: a failed store change is acknowledged anyway when it is not a PUBACK
// or PUBREC (gate.go writeGated): here the PUBCOMP for a PUBREL whose
// InboundQoS2Delete failed. The packet id stays in the store, so after a
// restart the next message the publisher sends with that id is taken for a
// duplicate: acknowledged (PUBREC, PUBCOMP) and never delivered.
func TestReviewFailedPubrelNotAcknowledged(t *testing.T) {
	inj := failingWAL()
	d := startDurable(t, engine.Options{}, wal.Options{FS: errorfs.Wrap(vfs.NewMem(), inj), RetryInterval: 20 * time.Millisecond})
	sub, _ := connectWire(t, d.addr, codec.Version311, "sub", persistent311)
	sub.subscribe(1, 0, subscription("q", 2))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", persistent311)
	pub.publish("q", 2, 7, false, "first")
	pub.expectAck(codec.PUBREC, 7)

	inj.On()
	pub.ack(codec.PUBREL, 7)
	p, err := pub.next(2 * time.Second)
	pubcomp := err == nil && p.Type == codec.PUBCOMP
	inj.Off()
	waitStoreOK(t, d)
	if pubcomp {
		t.Errorf("PUBCOMP sent for a PUBREL whose store change failed")
	}
	d.restart()

	pub = dialWire(t, d.addr, codec.Version311)
	pub.connect("pub", persistent311)
	// No PUBCOMP came: the client sends PUBREL again (MQTT-4.4.0-1) before
	// it may use the id again.
	pub.ack(codec.PUBREL, 7)
	pub.expectAck(codec.PUBCOMP, 7)
	pub.publishAcked("q", 2, 7, false, "second")
	sub = dialWire(t, d.addr, codec.Version311)
	sub.connect("sub", persistent311)
	got := sub.receiveAll(500 * time.Millisecond)
	if len(got) == 0 || got[len(got)-1] != "second" {
		t.Errorf("subscriber got %q: the acknowledged message \"second\" was swallowed as a duplicate", got)
	}
}

// BUG: storeTx.submit's finish releases the hold even when the batch failed,
// so a QoS 2 message refused to its publisher (PUBREC 0x80) is delivered to
// the subscriber anyway, and the publisher's retry is delivered a second
// time. (drainSession's KindSend refusal is ignored too: the PUBLISH goes out
// while the store is failed.)
func TestReviewRefusedQoS2NotDelivered(t *testing.T) {
	inj := failingWAL()
	d := startDurable(t, engine.Options{}, wal.Options{FS: errorfs.Wrap(vfs.NewMem(), inj), RetryInterval: 20 * time.Millisecond})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
	sub.subscribe(1, 0, subscription("r", 2))
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)

	inj.On()
	pub.publish("r", 2, 1, false, "m")
	a := pub.expectAck(codec.PUBREC, 1)
	inj.Off()
	waitStoreOK(t, d)
	if !a.ReasonCode.IsError() {
		t.Fatalf("PUBREC %v with a failing WAL", a.ReasonCode)
	}
	pub.publishAcked("r", 2, 2, false, "m") // the publisher tries again
	got := sub.receiveAll(500 * time.Millisecond)
	if len(got) != 1 {
		t.Fatalf("subscriber got %q: a QoS 2 message refused to its publisher was delivered as well as its retry", got)
	}
}

// BUG: a publisher that reconnects and resends a QoS 2 PUBLISH (DUP, same id)
// gets PUBREC at once (handlePublish: !isNew -> appendAck), though the first
// PUBLISH's batch is not durable yet: its gated PUBREC was on the old
// connection. A crash then loses a message the publisher saw PUBREC for.
func TestReviewResentQoS2PubrecWaitsForStore(t *testing.T) {
	d, slow := startSlowDurable(t, engine.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version311, "sub", persistent311)
	sub.subscribe(1, 0, subscription("y", 2))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", persistent311)
	pub.ping()
	time.Sleep(50 * time.Millisecond)

	slow.on(1500 * time.Millisecond)
	pub.publish("y", 2, 7, false, "once")
	pub.ping() // handled; its batch waits for the slow sync
	_ = pub.nc.Close()
	pub = dialWire(t, d.addr, codec.Version311)
	pub.connect("pub", persistent311)
	p := publishPacket("y", 2, 7, false, "once")
	p.Publish.Dup = true
	pub.send(p)
	pub.expectAck(codec.PUBREC, 7)
	d.crash() // right after the PUBREC

	sub = dialWire(t, d.addr, codec.Version311)
	sub.connect("sub", persistent311)
	equalStrings(t, sub.receiveAll(500*time.Millisecond), []string{"once"}, "message the publisher got PUBREC for")
}

// BUG: on a resumed session, resendLocked sends PUBREL for a delivery whose
// PUBREC was taken in memory but whose PubrecReceived update is not durable
// (the gated PUBREL sat on the old connection). The receiver completes the
// flow with PUBCOMP; after a crash the entry is still InFlight and the
// message is sent again (DUP, same id), which the receiver takes as new: a
// QoS 2 duplicate.
func TestReviewResentPubrelWaitsForStore(t *testing.T) {
	d, slow := startSlowDurable(t, engine.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
	sub.subscribe(1, 0, subscription("x", 2))
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
	pub.publishAcked("x", 2, 1, false, "one")
	id := sub.expectPublish().PacketID
	time.Sleep(50 * time.Millisecond)

	slow.on(1500 * time.Millisecond)
	sub.ack(codec.PUBREC, id)
	sub.ping() // PUBREC handled; PUBREL waits for the slow sync
	_ = sub.nc.Close()
	sub = dialWire(t, d.addr, codec.Version5)
	sub.connect("sub", durable5)
	sub.expectAck(codec.PUBREL, id)
	sub.ack(codec.PUBCOMP, id) // the receiver forgets id: the flow is complete
	sub.ping()
	d.crash()

	sub = dialWire(t, d.addr, codec.Version5)
	sub.connect("sub", durable5)
	if p, err := sub.next(500 * time.Millisecond); err == nil && p.Type == codec.PUBLISH {
		t.Fatalf("after PUBREL and PUBCOMP the message came again%s: a QoS 2 duplicate", describe(p))
	}
}

// BUG: a publisher that reconnects and repeats a PUBREL gets PUBCOMP at once
// (the id is already gone from memory: PacketIdentifierNotFound, which a
// 3.1.1 PUBCOMP cannot even say), though the InboundQoS2Delete of the first
// PUBREL is not durable. After a crash the id is back, and the publisher's
// next message under that id is swallowed as a duplicate.
func TestReviewRepeatedPubrelWaitsForStore(t *testing.T) {
	d, slow := startSlowDurable(t, engine.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version311, "sub", persistent311)
	sub.subscribe(1, 0, subscription("z", 2))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", persistent311)
	pub.publish("z", 2, 9, false, "first")
	pub.expectAck(codec.PUBREC, 9)
	time.Sleep(50 * time.Millisecond)

	slow.on(1500 * time.Millisecond)
	pub.ack(codec.PUBREL, 9)
	pub.ping()
	_ = pub.nc.Close()
	pub = dialWire(t, d.addr, codec.Version311)
	pub.connect("pub", persistent311)
	pub.ack(codec.PUBREL, 9)
	pub.expectAck(codec.PUBCOMP, 9)
	d.crash()

	pub = dialWire(t, d.addr, codec.Version311)
	pub.connect("pub", persistent311)
	pub.publishAcked("z", 2, 9, false, "second")
	sub = dialWire(t, d.addr, codec.Version311)
	sub.connect("sub", persistent311)
	equalStrings(t, sub.receiveAll(500*time.Millisecond), []string{"first", "second"}, "subscriber")
}

// BUG: a gated QoS 2 PUBLISH whose KindSend change is still being written
// when the connection closes is released twice: closeGate releases every
// entry of the gate queue, and complete, called later by the committer,
// releases it again because the gate is closed. The second release drops
// the in-flight window's reference: the message is freed while the session
// still resends it (a panic, or another message's bytes on the wire).
func TestReviewGatedDeliveryReleasedOnce(t *testing.T) {
	inChild(t, func(t *testing.T) {
		d, slow := startSlowDurable(t, engine.Options{})
		sub, _ := connectWire(t, d.addr, codec.Version5, "sub", durable5)
		sub.subscribe(1, 0, subscription("g", 2))
		pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
		time.Sleep(50 * time.Millisecond)

		slow.on(time.Second)
		pub.publish("g", 2, 1, false, "one")
		pub.expectAck(codec.PUBREC, 1) // durable; the subscriber's KindSend is submitted now
		time.Sleep(100 * time.Millisecond)
		_ = sub.nc.Close() // while the KindSend sync sleeps
		time.Sleep(1500 * time.Millisecond)
		slow.off()

		sub = dialWire(t, d.addr, codec.Version5)
		sub.connect("sub", durable5)
		p := sub.expectPublish()
		if string(p.Topic) != "g" || string(p.Payload) != "one" || !p.Dup {
			t.Fatalf("resent %s", describe(&codec.Packet{Type: codec.PUBLISH, Publish: *p}))
		}
		sub.ack(codec.PUBREC, p.PacketID)
		sub.expectAck(codec.PUBREL, p.PacketID)
		sub.ack(codec.PUBCOMP, p.PacketID)
		sub.ping()
	})
}

// BUG: a 3.1.1 UNSUBACK has no reason codes (failAt 0), so an UNSUBSCRIBE
// whose SubDelete failed is acknowledged as done; memory forgot the
// subscription but the store did not, and after a restart it is back.
func TestReviewFailedUnsubscribeNotAcknowledged311(t *testing.T) {
	inj := failingWAL()
	d := startDurable(t, engine.Options{}, wal.Options{FS: errorfs.Wrap(vfs.NewMem(), inj), RetryInterval: 20 * time.Millisecond})
	c, _ := connectWire(t, d.addr, codec.Version311, "c", persistent311)
	c.subscribe(1, 0, subscription("u", 1))
	inj.On()
	c.send(&codec.Packet{Type: codec.UNSUBSCRIBE, Unsubscribe: codec.Unsubscribe{PacketID: 2, Filters: [][]byte{[]byte("u")}}})
	p, err := c.next(2 * time.Second)
	acked := err == nil && p.Type == codec.UNSUBACK
	inj.Off()
	waitStoreOK(t, d)
	if !acked {
		return // refused (connection closed): the client will try again
	}
	c.send(&codec.Packet{Type: codec.DISCONNECT})
	d.restart()
	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", nil)
	pub.publishAcked("u", 1, 1, false, "after")
	c = dialWire(t, d.addr, codec.Version311)
	c.connect("c", persistent311)
	if got := c.receiveAll(300 * time.Millisecond); len(got) > 0 {
		t.Fatalf("UNSUBACK sent for a failed unsubscribe, and after a restart the subscription is back: got %q", got)
	}
}

// BUG (5.0): a SUBSCRIBE whose SubPut failed is answered 0x80 but the
// subscription stays in the session and the router: the client, told it is
// not subscribed, receives messages on it.
func TestReviewFailedSubscribeNotActive(t *testing.T) {
	inj := failingWAL()
	d := startDurable(t, engine.Options{}, wal.Options{FS: errorfs.Wrap(vfs.NewMem(), inj), RetryInterval: 20 * time.Millisecond})
	c, _ := connectWire(t, d.addr, codec.Version5, "c", durable5)
	inj.On()
	codes := c.subscribe(1, 0, subscription("s", 1))
	inj.Off()
	waitStoreOK(t, d)
	if codes[0] < 0x80 {
		t.Skipf("SUBSCRIBE accepted (%#x) with a failing WAL", codes[0])
	}
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
	pub.publishAcked("s", 1, 1, false, "m")
	if got := c.receiveAll(300 * time.Millisecond); len(got) > 0 {
		t.Fatalf("SUBACK %#x, yet the subscription delivers: %q", codes[0], got)
	}
}

// Restored in-flight QoS 2 deliveries keep their packet ids (DUP), and a
// queued delivery sent after the restart gets an id none of them uses
// (sessions.RestoreInflight raises lastID). Passes.
func TestReviewRestoredInflightIDsNotReused(t *testing.T) {
	d := startDurable(t, engine.Options{}, wal.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version5, "sub", func(c *codec.Connect) {
		durable5(c)
		c.Props.SetReceiveMaximum(2)
	})
	sub.subscribe(1, 0, subscription("i", 2))
	pub, _ := connectWire(t, d.addr, codec.Version5, "pub", nil)
	for i, m := range []string{"a", "b", "c"} {
		pub.publishAcked("i", 2, uint16(i+1), false, m)
	}
	first := []*codec.Publish{sub.expectPublish(), sub.expectPublish()} // "c" waits: Receive Maximum 2
	sub.ping()
	d.crash()

	sub = dialWire(t, d.addr, codec.Version5)
	sub.connect("sub", durable5)
	seen := map[uint16]string{}
	for _, p := range first {
		again := sub.expectPublish()
		if again.PacketID != p.PacketID || !again.Dup || string(again.Payload) != string(p.Payload) {
			t.Fatalf("resent id %d %q dup %v, want id %d %q dup", again.PacketID, again.Payload, again.Dup, p.PacketID, p.Payload)
		}
		seen[again.PacketID] = string(again.Payload)
	}
	third := sub.expectPublish()
	if _, dup := seen[third.PacketID]; dup || string(third.Payload) != "c" {
		t.Fatalf("queued delivery after restart: id %d %q; in flight: %v", third.PacketID, third.Payload, seen)
	}
}

// A clean Stop while a publish's batch is still being synced: Close commits
// it, the publisher's acknowledgement is lost with the connection, and the
// message is delivered once after the restart. Passes.
func TestReviewStopWithPendingBatch(t *testing.T) {
	d, slow := startSlowDurable(t, engine.Options{})
	sub, _ := connectWire(t, d.addr, codec.Version311, "sub", persistent311)
	sub.subscribe(1, 0, subscription("p", 2))
	sub.send(&codec.Packet{Type: codec.DISCONNECT})
	pub, _ := connectWire(t, d.addr, codec.Version311, "pub", persistent311)
	pub.ping()
	slow.on(500 * time.Millisecond)
	pub.publish("p", 2, 3, false, "pending")
	pub.ping()
	d.restart()
	slow.off()
	pub = dialWire(t, d.addr, codec.Version311)
	pub.connect("pub", persistent311)
	p := publishPacket("p", 2, 3, false, "pending")
	p.Publish.Dup = true
	pub.send(p)
	pub.expectAck(codec.PUBREC, 3)
	pub.ack(codec.PUBREL, 3)
	pub.expectAck(codec.PUBCOMP, 3)
	sub = dialWire(t, d.addr, codec.Version311)
	sub.connect("sub", persistent311)
	equalStrings(t, sub.receiveAll(500*time.Millisecond), []string{"pending"}, "after a stop with a pending batch")
}
