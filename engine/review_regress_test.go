package engine_test

// Regression tests for bugs found in review: each failed before its fix.

import (
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// A resumed session with 600 queued messages is sent in batches of more
// than 1024 iovecs; Linux refuses such a writev (EINVAL), which used to close
// the connection before even its CONNACK arrived.
func TestRegressWritevOverIOVMax(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub, _ := connectWire(t, addr, codec.Version311, "sub", func(c *codec.Connect) { c.CleanStart = false })
	sub.subscribe(1, 0, subscription("t", 0))
	sub.nc.Close()
	time.Sleep(100 * time.Millisecond)
	pub, _ := connectWire(t, addr, codec.Version311, "pub", nil)
	for i := 0; i < 600; i++ {
		pub.publish("t", 0, 0, false, "x")
	}
	pub.ping()
	sub2 := dialWire(t, addr, codec.Version311)
	sub2.connect("sub", func(c *codec.Connect) { c.CleanStart = false })
	n := 0
	for n < 600 {
		p, err := sub2.next(2 * time.Second)
		if err != nil {
			t.Fatalf("after %d of 600 queued messages: %v", n, err)
		}
		if p.Type == codec.PUBLISH {
			n++
		}
	}
}

// A will delay must not extend the session: with Session Expiry 2 s and Will
// Delay 1 s the session is gone 2.6 s after the close (MQTT-3.1.3-9, 3.1.2.11.2).
func TestRegressWillDelayDoesNotExtendExpiry(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	c, _ := connectWire(t, addr, codec.Version5, "w", func(p *codec.Connect) {
		p.Props.SetSessionExpiry(2)
		p.Will = true
		p.WillTopic = []byte("will")
		p.WillPayload = []byte("bye")
		p.WillProps.SetWillDelay(1)
	})
	c.nc.Close()
	time.Sleep(2600 * time.Millisecond)
	c2 := dialWire(t, addr, codec.Version5)
	ack := c2.connect("w", func(p *codec.Connect) { p.CleanStart = false; p.Props.SetSessionExpiry(2) })
	if ack.SessionPresent {
		t.Fatal("session present 2.6 s after a disconnect with Session Expiry 2 s")
	}
}

// Messages to one subscriber keep their order when one fills the last slot
// of the in-flight window and the next waits in the session while a PUBACK
// frees the slot in the same read (MQTT-4.6.0-6).
func TestRegressOrderAcrossWindow(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{EventLoops: 1})
	addr := srv.Addr().String()
	sub, _ := connectWire(t, addr, codec.Version5, "sub", func(c *codec.Connect) { c.Props.SetReceiveMaximum(2) })
	sub.subscribe(1, 0, subscription("t", 1))
	pub, _ := connectWire(t, addr, codec.Version5, "pub", nil)
	busy, _ := connectWire(t, addr, codec.Version5, "busy", nil)
	var junk []byte
	for i := 0; i < 3000; i++ {
		junk, _ = publishPacket("nobody", 0, 0, false, "j").Append(junk, codec.Version5)
	}
	id := uint16(1)
	for round := 0; round < 60; round++ {
		pub.publish("t", 1, id, false, "X")
		id++
		pub.expect(codec.PUBACK)
		x := sub.expectPublish()
		var mm []byte
		mm, _ = publishPacket("t", 1, id, false, "M1").Append(mm, codec.Version5)
		mm, _ = publishPacket("t", 1, id+1, false, "M2").Append(mm, codec.Version5)
		id += 2
		_, _ = busy.nc.Write(junk) // keep the loop busy so that the three arrive in one turn
		_, _ = pub.nc.Write(mm)
		sub.ack(codec.PUBACK, x.PacketID)
		p1 := sub.expectPublish()
		sub.ack(codec.PUBACK, p1.PacketID)
		p2 := sub.expectPublish()
		sub.ack(codec.PUBACK, p2.PacketID)
		if string(p1.Payload) != "M1" || string(p2.Payload) != "M2" {
			t.Fatalf("round %d: got %s then %s", round, p1.Payload, p2.Payload)
		}
		pub.expect(codec.PUBACK)
		pub.expect(codec.PUBACK)
	}
}

// A reconnecting client with a smaller Receive Maximum gets only that many
// of its unacknowledged messages resent at once (MQTT-3.3.4-9, 4.9); the rest
// follow, in order and with DUP, as it acknowledges.
func TestRegressResendWithinReceiveMaximum(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	persistent := func(c *codec.Connect) { c.Props.SetSessionExpiry(60) }
	sub, _ := connectWire(t, addr, codec.Version5, "rm-sub", persistent)
	sub.subscribe(1, 0, subscription("rm", 1))
	pub, _ := connectWire(t, addr, codec.Version5, "rm-pub", nil)
	for i := 0; i < 5; i++ {
		pub.publish("rm", 1, uint16(i+1), false, string(rune('a'+i)))
		pub.expect(codec.PUBACK)
	}
	for i := 0; i < 5; i++ {
		sub.expectPublish() // received, never acknowledged
	}
	sub.nc.Close()
	time.Sleep(100 * time.Millisecond)

	sub2 := dialWire(t, addr, codec.Version5)
	sub2.connect("rm-sub", func(c *codec.Connect) {
		c.CleanStart = false
		c.Props.SetSessionExpiry(60)
		c.Props.SetReceiveMaximum(2)
	})
	got := ""
	var first []uint16
	for i := 0; i < 2; i++ {
		p := sub2.expectPublish()
		testutil.Equal(t, p.Dup, true, "DUP on resend")
		got += string(p.Payload)
		first = append(first, p.PacketID)
	}
	sub2.expectNone(300 * time.Millisecond)
	sub2.ack(codec.PUBACK, first[0])
	sub2.ack(codec.PUBACK, first[1])
	for i := 0; i < 3; i++ {
		p := sub2.expectPublish()
		got += string(p.Payload)
		sub2.ack(codec.PUBACK, p.PacketID)
	}
	testutil.Equal(t, got, "abcde", "resend order")
}

// A subscriber that stays over MaxOutboundBytes longer than SlowConsumerAfter
// is disconnected (5.0: DISCONNECT 0x97), and the others keep being served.
func TestSlowConsumerDisconnected(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxOutboundBytes: 32 << 10, SlowConsumerAfter: 500 * time.Millisecond})
	addr := srv.Addr().String()
	by := newBystander(t, addr)
	slow, _ := connectWire(t, addr, codec.Version5, "slow", func(c *codec.Connect) { c.Props.SetSessionExpiry(60) })
	slow.subscribe(1, 0, subscription("slow/t", 1))
	pub, _ := connectWire(t, addr, codec.Version5, "slow-pub", nil)
	payload := string(make([]byte, 48<<10))
	// QoS 1 so that the messages wait in the session rather than being
	// dropped: the slow client never reads, so once the kernel's socket
	// buffers are full (a few MB on loopback) it stays over the bound.
	for i := 0; i < 400; i++ {
		pub.publish("slow/t", 1, uint16(i+1), false, payload)
		pub.expect(codec.PUBACK)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Snapshot().Connections > 3 && time.Now().Before(deadline) { // bystander, publisher, slow
		time.Sleep(50 * time.Millisecond)
	}
	for srv.Snapshot().Connections == 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	testutil.Equal(t, srv.Snapshot().Connections, int64(2), "connections after the slow consumer was cut off")
	by.check()
	pub.ping()
}

// Request Problem Information 0: the server sends no Reason String or User
// Property on anything but PUBLISH, CONNACK and DISCONNECT (MQTT-3.1.2-29);
// Request Response Information 1: the server may answer without Response
// Information (3.1.2.11.7), which Tern does.
func TestRequestProblemAndResponseInformation(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	c, ack := connectWire(t, addr, codec.Version5, "rpi", func(p *codec.Connect) {
		p.Props.SetRequestProblemInfo(0)
		p.Props.SetRequestResponseInfo(1)
	})
	if ack.Props.Has(codec.PropResponseInfo) || ack.Props.Has(codec.PropReasonString) {
		t.Fatalf("CONNACK carries response information or a reason string")
	}
	c.subscribe(1, 0, subscription("a/#/b", 0)) // refused with 0x8F
	c.publish("x", 1, 7, false, "p")
	p := c.expect(codec.PUBACK)
	if p.Ack.Props.Has(codec.PropReasonString) || p.Ack.Props.Has(codec.PropUser) {
		t.Fatal("PUBACK carries a reason string or user property")
	}
}

// Packets only a server sends, and AUTH when enhanced authentication was not
// started, are protocol errors from a client: 5.0 DISCONNECT 0x82 and close
// (4.13, MQTT-4.12.0-1); a 3.1.1 client is just closed.
func TestServerOnlyPacketsFromClient(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(name string, version byte, p *codec.Packet) {
		t.Helper()
		c, _ := connectWire(t, addr, version, "bad-"+name, nil)
		c.send(p)
		reason, got := disconnectReason(c.expectClosed(3 * time.Second))
		if version == codec.Version5 && (!got || reason != codec.ProtocolError) {
			t.Fatalf("%s at 5.0: DISCONNECT %v (sent %v), want 0x82", name, reason, got)
		}
		if version < codec.Version5 && got {
			t.Fatalf("%s at 3.1.1: a server DISCONNECT was sent", name)
		}
	}
	f("connack5", codec.Version5, &codec.Packet{Type: codec.CONNACK})
	f("suback5", codec.Version5, &codec.Packet{Type: codec.SUBACK, Suback: codec.Suback{PacketID: 1, ReasonCodes: []byte{0}}})
	f("unsuback5", codec.Version5, &codec.Packet{Type: codec.UNSUBACK, Unsuback: codec.Unsuback{PacketID: 1, ReasonCodes: []byte{0}}})
	f("pingresp5", codec.Version5, &codec.Packet{Type: codec.PINGRESP})
	auth := codec.Auth{ReasonCode: codec.ContinueAuthentication}
	auth.Props.SetAuthMethod([]byte("SCRAM-SHA-256"))
	f("auth5", codec.Version5, &codec.Packet{Type: codec.AUTH, Auth: auth})
	f("suback311", codec.Version311, &codec.Packet{Type: codec.SUBACK, Suback: codec.Suback{PacketID: 1, ReasonCodes: []byte{0}}})
	f("pingresp311", codec.Version311, &codec.Packet{Type: codec.PINGRESP})
}
