package engine_test

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// valPtr returns a pointer to a copy of v, for paho's optional properties.
func valPtr[T any](v T) *T { return &v }

// TestPublishFlowsEveryQoS drives the QoS 0, 1 and 2 flows in both directions
// over raw sockets, at 3.1.1 and 5.0, and checks every packet of them.
func TestPublishFlowsEveryQoS(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(version, qos byte) {
		t.Helper()
		topic := fmt.Sprintf("flow/%d/%d", version, qos)
		sub, _ := connectWire(t, addr, version, fmt.Sprintf("flow-sub-%d-%d", version, qos), nil)
		codes := sub.subscribe(1, 0, subscription(topic, 2))
		testutil.Equal(t, string(codes), "\x02", "granted QoS") // MQTT-3.8.4-7
		pub, _ := connectWire(t, addr, version, fmt.Sprintf("flow-pub-%d-%d", version, qos), nil)

		// Inbound: the broker is the receiver.
		pub.publish(topic, qos, 10, false, "m")
		switch qos {
		case 1:
			a := pub.expectAck(codec.PUBACK, 10) // MQTT-4.3.2-4
			testutil.Equal(t, a.ReasonCode, codec.Success, "PUBACK reason")
		case 2:
			a := pub.expectAck(codec.PUBREC, 10) // MQTT-4.3.3-8
			testutil.Equal(t, a.ReasonCode, codec.Success, "PUBREC reason")
			pub.ack(codec.PUBREL, 10)
			a = pub.expectAck(codec.PUBCOMP, 10) // MQTT-4.3.3-11
			testutil.Equal(t, a.ReasonCode, codec.Success, "PUBCOMP reason")
		}

		// Outbound: the broker is the sender.
		m := sub.expectPublish()
		testutil.Equal(t, string(m.Topic), topic, "topic")
		testutil.Equal(t, string(m.Payload), "m", "payload")
		testutil.Equal(t, m.QoS, qos, "delivered QoS")
		testutil.Equal(t, m.Dup, false, "DUP of a first delivery") // MQTT-4.3.1-1, MQTT-4.3.2-2, MQTT-4.3.3-2
		testutil.Equal(t, m.Retain, false, "RETAIN")
		if qos > 0 && m.PacketID == 0 {
			t.Fatal("QoS > 0 PUBLISH without a packet identifier") // MQTT-2.2.1-4
		}
		switch qos {
		case 1:
			sub.ack(codec.PUBACK, m.PacketID)
		case 2:
			sub.ack(codec.PUBREC, m.PacketID)
			rel := sub.expectAck(codec.PUBREL, m.PacketID) // MQTT-4.3.3-4
			testutil.Equal(t, rel.ReasonCode, codec.Success, "PUBREL reason")
			sub.ack(codec.PUBCOMP, m.PacketID)
		}
		// A completed flow is never resent on the same connection (MQTT-4.4.0-1).
		sub.expectNone(150 * time.Millisecond)
		pub.ping()
	}
	for _, version := range []byte{codec.Version311, codec.Version5} {
		for qos := byte(0); qos <= 2; qos++ {
			t.Run(fmt.Sprintf("v%d/qos%d", version, qos), func(t *testing.T) { f(version, qos) })
		}
	}
}

// TestPacketsSplitAcrossReads: MQTT runs over an ordered, lossless byte
// stream (4.2), so packet boundaries need not match socket reads. A CONNECT
// and a PUBLISH written in two parts, and a PUBLISH larger than one socket
// read but under the Maximum Packet Size the broker announced (3.2.2.3.6),
// are each received as one packet.
func TestPacketsSplitAcrossReads(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub, _ := connectWire(t, addr, codec.Version5, "split-sub", nil)
	sub.subscribe(1, 0, subscription("split/#", 0))
	writeInTwo := func(c *wireClient, b []byte, at int) {
		t.Helper()
		c.write(b[:at])
		time.Sleep(50 * time.Millisecond)
		c.write(b[at:])
	}

	c := dialWire(t, addr, codec.Version5)
	connect, err := (&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5,
		CleanStart: true, KeepAlive: 30, ClientID: []byte("split-pub")}}).Append(nil, codec.Version5)
	testutil.Require(t, err, "encode CONNECT")
	writeInTwo(c, connect, 7)
	ack := c.expect(codec.CONNACK).Connack
	testutil.Equal(t, ack.ReasonCode, codec.Success, "CONNACK reason")

	pub, err := publishPacket("split/a", 0, 0, false, "hello").Append(nil, codec.Version5)
	testutil.Require(t, err, "encode PUBLISH")
	writeInTwo(c, pub, 3)
	testutil.Equal(t, string(sub.expectPublish().Payload), "hello", "payload of a PUBLISH written in two parts")

	big := string(bytes.Repeat([]byte("p"), 256<<10))
	if ack.Props.MaximumPacketSize != 0 && int(ack.Props.MaximumPacketSize) < len(big)+64 {
		t.Fatalf("broker announced Maximum Packet Size %d", ack.Props.MaximumPacketSize)
	}
	c.publish("split/big", 1, 1, false, big)
	c.expectAck(codec.PUBACK, 1)
	m := sub.expectPublish()
	testutil.Equal(t, len(m.Payload), len(big), "payload length of a 256 KiB PUBLISH")
}

// TestQoS2DuplicatePublishDeliveredOnce sends the same QoS 2 PUBLISH twice,
// the second with DUP, before PUBREL: both are acknowledged with PUBREC and
// the subscriber receives the message once (MQTT-4.3.3-10). After PUBCOMP the
// packet id names a new message (MQTT-4.3.3-12).
func TestQoS2DuplicatePublishDeliveredOnce(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub, _ := connectWire(t, addr, codec.Version5, "dup-sub", nil)
	sub.subscribe(1, 0, subscription("dup/t", 0))
	pub, _ := connectWire(t, addr, codec.Version5, "dup-pub", nil)

	pub.publish("dup/t", 2, 7, false, "once")
	pub.expectAck(codec.PUBREC, 7)
	again := publishPacket("dup/t", 2, 7, false, "once")
	again.Publish.Dup = true
	pub.send(again)
	pub.expectAck(codec.PUBREC, 7)
	pub.ack(codec.PUBREL, 7)
	c := pub.expectAck(codec.PUBCOMP, 7)
	testutil.Equal(t, c.ReasonCode, codec.Success, "PUBCOMP reason")

	testutil.Equal(t, string(sub.expectPublish().Payload), "once", "payload")
	sub.expectNone(300 * time.Millisecond)

	pub.publish("dup/t", 2, 7, false, "new")
	pub.expectAck(codec.PUBREC, 7)
	pub.ack(codec.PUBREL, 7)
	pub.expectAck(codec.PUBCOMP, 7)
	testutil.Equal(t, string(sub.expectPublish().Payload), "new", "payload of a reused packet id")
}

// TestPubrelForUnknownPacketID: a PUBREL whose packet id is not awaiting one
// is still answered with PUBCOMP (MQTT-4.3.3-11), at 5.0 with reason 0x92
// Packet Identifier not found (3.7.2.1), and the connection stays open.
func TestPubrelForUnknownPacketID(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(version byte, want codec.ReasonCode) {
		t.Helper()
		c, _ := connectWire(t, addr, version, fmt.Sprintf("pubrel-%d", version), nil)
		c.ack(codec.PUBREL, 99)
		a := c.expectAck(codec.PUBCOMP, 99)
		testutil.Equal(t, a.ReasonCode, want, "PUBCOMP reason")
		c.ping()
	}
	f(codec.Version5, codec.PacketIdentifierNotFound)
	f(codec.Version311, codec.Success)
}

// TestQoSDowngradedToSubscription: a message is delivered at the minimum of
// its QoS and the subscription's granted QoS (MQTT-3.8.4-8).
func TestQoSDowngradedToSubscription(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "down-pub", CleanStart: true})
	f := func(pubQoS, subQoS, want byte) {
		t.Helper()
		topic := fmt.Sprintf("down/%d/%d", pubQoS, subQoS)
		sub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "down-sub-" + topic[5:8], CleanStart: true})
		sa, err := sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: subQoS}}})
		testutil.Require(t, err, "subscribe")
		testutil.Equal(t, sa.Reasons[0], subQoS, "granted QoS") // MQTT-3.8.4-7
		_, err = pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: topic, QoS: pubQoS, Payload: []byte("x")})
		testutil.Require(t, err, "publish")
		testutil.Equal(t, sub.Recv(t).QoS, want, fmt.Sprintf("QoS of a QoS %d message on a QoS %d subscription", pubQoS, subQoS))
	}
	f(2, 1, 1)
	f(2, 0, 0)
	f(1, 0, 0)
	f(1, 2, 1)
	f(0, 2, 0)
}

// TestRedeliveryOfUnacknowledgedQoS1OnReconnect: a QoS 1 message not
// acknowledged before the connection dropped is sent again, with DUP and the
// same packet id, when the client resumes its session (MQTT-4.4.0-1,
// MQTT-3.3.1-1), and never again once acknowledged.
func TestRedeliveryOfUnacknowledgedQoS1OnReconnect(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	persistent := func(c *codec.Connect) { c.Props.SetSessionExpiry(60) }
	resume := func(c *codec.Connect) { c.CleanStart = false; c.Props.SetSessionExpiry(60) }

	sub, _ := connectWire(t, addr, codec.Version5, "redeliver-1", persistent)
	sub.subscribe(1, 0, subscription("re/1", 1))
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "redeliver-pub", CleanStart: true})
	_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "re/1", QoS: 1, Payload: []byte("unacked")})
	testutil.Require(t, err, "publish")
	first := sub.expectPublish()
	testutil.Equal(t, first.Dup, false, "DUP of the first delivery")
	_ = sub.nc.Close() // no PUBACK

	sub2 := dialWire(t, addr, codec.Version5)
	ack := sub2.connect("redeliver-1", resume)
	testutil.Equal(t, ack.SessionPresent, true, "session present") // MQTT-3.2.2-3
	again := sub2.expectPublish()
	testutil.Equal(t, again.Dup, true, "DUP of the redelivery") // MQTT-3.3.1-1
	testutil.Equal(t, again.PacketID, first.PacketID, "packet id of the redelivery")
	testutil.Equal(t, again.QoS, byte(1), "QoS of the redelivery")
	testutil.Equal(t, string(again.Topic), "re/1", "topic of the redelivery")
	testutil.Equal(t, string(again.Payload), "unacked", "payload of the redelivery")
	sub2.ack(codec.PUBACK, again.PacketID)
	sub2.ping()
	_ = sub2.nc.Close()

	sub3 := dialWire(t, addr, codec.Version5)
	sub3.connect("redeliver-1", resume)
	sub3.expectNone(300 * time.Millisecond) // acknowledged: not sent again
}

// TestRedeliveryOfQoS2OnReconnect: on resuming a session the broker sends
// again a QoS 2 PUBLISH that got no PUBREC (with DUP) and the PUBREL of one
// that got a PUBREC but no PUBCOMP, with their original packet ids
// (MQTT-4.4.0-1); the released one is never sent as PUBLISH again
// (MQTT-4.3.3-6).
func TestRedeliveryOfQoS2OnReconnect(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	persistent := func(c *codec.Connect) { c.Props.SetSessionExpiry(60) }
	resume := func(c *codec.Connect) { c.CleanStart = false; c.Props.SetSessionExpiry(60) }

	sub, _ := connectWire(t, addr, codec.Version5, "redeliver-2", persistent)
	sub.subscribe(1, 0, subscription("re/2", 2))
	pub, _ := connectWire(t, addr, codec.Version5, "redeliver-2-pub", nil)
	for i, payload := range []string{"released", "unreceived"} {
		id := uint16(i + 1)
		pub.publish("re/2", 2, id, false, payload)
		pub.expectAck(codec.PUBREC, id)
		pub.ack(codec.PUBREL, id)
		pub.expectAck(codec.PUBCOMP, id)
	}
	released := sub.expectPublish()
	testutil.Equal(t, string(released.Payload), "released", "first payload")
	sub.ack(codec.PUBREC, released.PacketID)
	// The PUBREL and the second PUBLISH may come in either order.
	var unreceived *codec.Publish
	for rel := false; !rel || unreceived == nil; {
		p, err := sub.next(wireTimeout)
		testutil.Require(t, err, "waiting for PUBREL and the second PUBLISH")
		switch {
		case p.Type == codec.PUBREL && p.Ack.PacketID == released.PacketID:
			rel = true
		case p.Type == codec.PUBLISH && string(p.Publish.Payload) == "unreceived":
			unreceived = &p.Publish
		default:
			t.Fatalf("unexpected %v%s", p.Type, describe(p))
		}
	}
	_ = sub.nc.Close() // neither PUBCOMP nor PUBREC

	sub2 := dialWire(t, addr, codec.Version5)
	sub2.connect("redeliver-2", resume)
	var gotRel, gotPub bool
	for range 2 {
		p, err := sub2.next(wireTimeout)
		testutil.Require(t, err, "waiting for the resent packets")
		switch {
		case p.Type == codec.PUBREL && p.Ack.PacketID == released.PacketID:
			gotRel = true
		case p.Type == codec.PUBLISH && string(p.Publish.Payload) == "unreceived":
			testutil.Equal(t, p.Publish.Dup, true, "DUP of the resent PUBLISH") // MQTT-3.3.1-1
			testutil.Equal(t, p.Publish.PacketID, unreceived.PacketID, "packet id of the resent PUBLISH")
			testutil.Equal(t, p.Publish.QoS, byte(2), "QoS of the resent PUBLISH")
			gotPub = true
		default:
			t.Fatalf("unexpected %v on resuming%s", p.Type, describe(p))
		}
	}
	if !gotRel || !gotPub {
		t.Fatalf("resent PUBREL %v, resent PUBLISH %v; want both", gotRel, gotPub)
	}
	sub2.ack(codec.PUBCOMP, released.PacketID)
	sub2.ack(codec.PUBREC, unreceived.PacketID)
	sub2.expectAck(codec.PUBREL, unreceived.PacketID)
	sub2.ack(codec.PUBCOMP, unreceived.PacketID)
	sub2.expectNone(200 * time.Millisecond)
}

// TestNoLocal: with No Local a client does not get its own messages back
// (MQTT-3.8.3-3), but still those of other clients; without it, it does.
func TestNoLocal(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	a, _ := connectWire(t, addr, codec.Version5, "nolocal-a", nil)
	nl := subscription("nl/quiet", 0)
	nl.NoLocal = true
	a.subscribe(1, 0, nl, subscription("nl/echo", 0))
	b, _ := connectWire(t, addr, codec.Version5, "nolocal-b", nil)

	a.publish("nl/quiet", 0, 0, false, "from-a")
	a.ping()
	b.publish("nl/quiet", 0, 0, false, "from-b")
	m := a.expectPublish()
	testutil.Equal(t, string(m.Payload), "from-b", "first message on the No Local subscription")

	a.publish("nl/echo", 0, 0, false, "echo")
	testutil.Equal(t, string(a.expectPublish().Payload), "echo", "own message without No Local")
	a.expectNone(200 * time.Millisecond)
}

// TestSubscriptionIdentifiers: a message is delivered with the identifier of
// the subscription it matched (MQTT-3.3.4-3), without one for a subscription
// that has none, and subscribing again replaces the identifier
// (MQTT-3.8.4-3).
func TestSubscriptionIdentifiers(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	c, _ := connectWire(t, addr, codec.Version5, "subid", nil)
	c.subscribe(1, 7, subscription("sid/a", 0))
	c.subscribe(2, 0, subscription("sid/b", 0))
	pub, _ := connectWire(t, addr, codec.Version5, "subid-pub", nil)

	pub.publish("sid/a", 0, 0, false, "a")
	m := c.expectPublish()
	testutil.Equal(t, fmt.Sprint(m.Props.SubscriptionIDs), "[7]", "subscription identifiers of sid/a")
	pub.publish("sid/b", 0, 0, false, "b")
	m = c.expectPublish()
	testutil.Equal(t, fmt.Sprint(m.Props.SubscriptionIDs), "[]", "subscription identifiers of sid/b")

	c.subscribe(3, 9, subscription("sid/a", 0))
	pub.publish("sid/a", 0, 0, false, "a2")
	m = c.expectPublish()
	testutil.Equal(t, fmt.Sprint(m.Props.SubscriptionIDs), "[9]", "subscription identifiers after resubscribing")
}

// TestSubackReasonCodes: one reason code per filter, in order (MQTT-3.8.4-6,
// MQTT-3.9.3-1): the granted QoS (MQTT-3.8.4-7), 0x8F Topic Filter invalid
// for a malformed filter at 5.0, 0x80 Failure at 3.1.1 (3.1.1 MQTT-3.8.4-5,
// MQTT-3.9.3-2); a refused filter subscribes nothing.
func TestSubackReasonCodes(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(version byte, want []byte) {
		t.Helper()
		c, _ := connectWire(t, addr, version, fmt.Sprintf("suback-%d", version), nil)
		subs := []codec.Subscription{
			subscription("sa/a", 0),
			subscription("sa/b/#", 1),
			subscription("a/#/b", 2), // '#' not last: MQTT-4.7.1-1
			subscription("sa/c", 2),
			subscription("sa/+x", 1), // '+' not alone in its level: MQTT-4.7.1-2
			subscription("", 1),      // MQTT-4.7.3-1
		}
		if version >= codec.Version5 {
			subs = append(subs, subscription("$share/g", 1)) // no filter after the share name: MQTT-4.8.2-2
		}
		got := c.subscribe(1, 0, subs...)
		testutil.Equal(t, fmt.Sprintf("% x", got), fmt.Sprintf("% x", want), "SUBACK reason codes")

		pub, _ := connectWire(t, addr, version, fmt.Sprintf("suback-pub-%d", version), nil)
		pub.publish("a/x/b", 0, 0, false, "refused")
		pub.publish("sa/a", 0, 0, false, "granted")
		testutil.Equal(t, string(c.expectPublish().Payload), "granted", "first message received")
	}
	f(codec.Version5, []byte{0x00, 0x01, 0x8F, 0x02, 0x8F, 0x8F, 0x8F})
	f(codec.Version311, []byte{0x00, 0x01, 0x80, 0x02, 0x80, 0x80})
}

// TestOverlappingSubscriptions: a message matching two subscriptions of one
// client is delivered once, at the highest QoS of them (MQTT-3.3.4-2), with
// both subscription identifiers (MQTT-3.3.4-3, MQTT-3.3.4-4).
func TestOverlappingSubscriptions(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	c, _ := connectWire(t, addr, codec.Version5, "overlap", nil)
	c.subscribe(1, 1, subscription("ov/+", 0))
	c.subscribe(2, 2, subscription("ov/#", 2))
	pub, _ := connectWire(t, addr, codec.Version5, "overlap-pub", nil)

	f := func(pubQoS, want byte) {
		t.Helper()
		pub.publish("ov/x", pubQoS, uint16(10+pubQoS), false, "o")
		m := c.expectPublish()
		testutil.Equal(t, m.QoS, want, "delivered QoS")
		ids := slices.Clone(m.Props.SubscriptionIDs)
		slices.Sort(ids) // their order is not significant (MQTT-3.3.4-4)
		testutil.Equal(t, fmt.Sprint(ids), "[1 2]", "subscription identifiers")
		switch m.QoS {
		case 1:
			c.ack(codec.PUBACK, m.PacketID)
		case 2:
			c.ack(codec.PUBREC, m.PacketID)
			c.expectAck(codec.PUBREL, m.PacketID)
			c.ack(codec.PUBCOMP, m.PacketID)
		}
		c.expectNone(200 * time.Millisecond) // one copy only
	}
	f(2, 2)
	f(1, 1)
	f(0, 0)
}

// TestUnsubscribe: UNSUBSCRIBE ends delivery (MQTT-3.10.4-1, MQTT-3.10.4-2)
// and is answered with an UNSUBACK of the same packet id even when nothing was
// subscribed (MQTT-3.10.4-4, MQTT-3.10.4-5), at 5.0 with one reason code per
// filter in order, 0x11 No subscription existed for a filter that had none
// (MQTT-3.11.3-1, 3.11.3).
func TestUnsubscribe(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(version byte) {
		t.Helper()
		c, _ := connectWire(t, addr, version, fmt.Sprintf("unsub-%d", version), nil)
		a, b := fmt.Sprintf("un/%d/a", version), fmt.Sprintf("un/%d/b", version)
		c.subscribe(1, 0, subscription(a, 0), subscription(b, 0))
		c.send(&codec.Packet{Type: codec.UNSUBSCRIBE, Unsubscribe: codec.Unsubscribe{PacketID: 2,
			Filters: [][]byte{[]byte(a), []byte("un/none")}}})
		ack := c.expect(codec.UNSUBACK).Unsuback
		testutil.Equal(t, ack.PacketID, uint16(2), "UNSUBACK packet id")
		if version >= codec.Version5 {
			testutil.Equal(t, fmt.Sprintf("% x", ack.ReasonCodes), "00 11", "UNSUBACK reason codes")
		}
		pub, _ := connectWire(t, addr, version, fmt.Sprintf("unsub-pub-%d", version), nil)
		pub.publish(a, 0, 0, false, "gone")
		pub.publish(b, 0, 0, false, "kept")
		m := c.expectPublish()
		testutil.Equal(t, string(m.Topic), b, "topic still subscribed")
		c.expectNone(200 * time.Millisecond)
	}
	f(codec.Version5)
	f(codec.Version311)
}

// TestMessageExpiry: a message queued for an offline session is delivered
// with its Message Expiry Interval lowered by the time it waited
// (MQTT-3.3.2-6), one whose interval passed is never delivered
// (MQTT-3.3.2-5), and one without an interval gets none.
func TestMessageExpiry(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	cp := func(clean bool) *paho.Connect {
		return &paho.Connect{ClientID: "expiry-sub", CleanStart: clean,
			Properties: &paho.ConnectProperties{SessionExpiryInterval: valPtr(uint32(60))}}
	}
	sub := testutil.ConnectV5(t, addr, cp(true))
	_, err := sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "exp/#", QoS: 1}}})
	testutil.Require(t, err, "subscribe")
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "expiry-pub", CleanStart: true})

	// Online: forwarded with the interval, nothing waited.
	_, err = pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "exp/live", QoS: 1, Payload: []byte("l"),
		Properties: &paho.PublishProperties{MessageExpiry: valPtr(uint32(10))}})
	testutil.Require(t, err, "publish")
	m := sub.Recv(t)
	if m.Properties == nil || m.Properties.MessageExpiry == nil || *m.Properties.MessageExpiry > 10 || *m.Properties.MessageExpiry < 9 {
		t.Fatalf("live delivery: message expiry %v, want 9..10", expiryOf(m))
	}

	testutil.Require(t, sub.Disconnect(&paho.Disconnect{}), "disconnect")
	time.Sleep(100 * time.Millisecond) // let the broker see the session go offline
	for _, p := range []struct {
		topic  string
		expiry *uint32
	}{{"exp/short", valPtr(uint32(1))}, {"exp/long", valPtr(uint32(10))}, {"exp/none", nil}} {
		_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: p.topic, QoS: 1, Payload: []byte(p.topic),
			Properties: &paho.PublishProperties{MessageExpiry: p.expiry}})
		testutil.Require(t, err, "publish "+p.topic)
	}
	time.Sleep(2100 * time.Millisecond)

	sub = testutil.ConnectV5(t, addr, cp(false))
	got := map[string]*paho.Publish{}
	var topics []string
	for quiet := false; !quiet; {
		select {
		case m := <-sub.Msgs:
			got[m.Topic] = m
			topics = append(topics, m.Topic)
		case <-time.After(500 * time.Millisecond):
			quiet = true
		}
	}
	// exp/live may come again: paho acknowledges it after handing it over,
	// possibly after the DISCONNECT.
	delete(got, "exp/live")
	if _, ok := got["exp/short"]; ok {
		t.Fatalf("exp/short was delivered after its expiry interval passed (received %v)", topics)
	}
	long, ok := got["exp/long"]
	if !ok {
		t.Fatalf("exp/long not delivered (received %v)", topics)
	}
	if e := long.Properties.MessageExpiry; e == nil || *e > 8 || *e == 0 {
		t.Fatalf("exp/long: message expiry %v after waiting 2 s, want 1..8", expiryOf(long))
	}
	none, ok := got["exp/none"]
	if !ok {
		t.Fatalf("exp/none not delivered (received %v)", topics)
	}
	if n := len(topics) - strings.Count(strings.Join(topics, " "), "exp/live"); n != 2 {
		t.Fatalf("received %v, want exp/long and exp/none once each", topics)
	}
	if none.Properties != nil && none.Properties.MessageExpiry != nil {
		t.Fatalf("exp/none: message expiry %d, want none", *none.Properties.MessageExpiry)
	}
}

func expiryOf(m *paho.Publish) string {
	if m.Properties == nil || m.Properties.MessageExpiry == nil {
		return "absent"
	}
	return strconv.FormatUint(uint64(*m.Properties.MessageExpiry), 10)
}

// TestTopicAliasFromClient: the broker resolves the topic aliases a client
// sets (MQTT-3.3.2-12), including a remapped alias, and delivers under the
// real topic without an alias to a subscriber that allows none
// (MQTT-3.1.2-27). An alias above the broker's Topic Alias Maximum is
// answered with DISCONNECT 0x94 Topic Alias invalid (MQTT-3.3.2-9, 3.3.2.3.4),
// and an alias never set with 0x82 Protocol Error (3.3.2.3.4).
func TestTopicAliasFromClient(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{TopicAliasMax: 4})
	addr := srv.Addr().String()
	sub, _ := connectWire(t, addr, codec.Version5, "alias-sub", nil)
	sub.subscribe(1, 0, subscription("ta/#", 0))
	pub, ack := connectWire(t, addr, codec.Version5, "alias-pub", nil)
	testutil.Equal(t, ack.Props.TopicAliasMaximum, uint16(4), "Topic Alias Maximum in CONNACK")

	send := func(c *wireClient, topic string, alias uint16, payload string) {
		t.Helper()
		p := publishPacket(topic, 0, 0, false, payload)
		p.Publish.Props.SetTopicAlias(alias)
		c.send(p)
	}
	send(pub, "ta/x", 1, "1")
	send(pub, "", 1, "2")
	send(pub, "ta/y", 4, "3")
	send(pub, "ta/z", 1, "4") // remaps alias 1
	send(pub, "", 1, "5")
	send(pub, "", 4, "6")
	for _, want := range []string{"ta/x 1", "ta/x 2", "ta/y 3", "ta/z 4", "ta/z 5", "ta/y 6"} {
		m := sub.expectPublish()
		testutil.Equal(t, string(m.Topic)+" "+string(m.Payload), want, "delivered topic and payload")
		testutil.Equal(t, m.Props.Has(codec.PropTopicAlias), false, "topic alias towards a client with no Topic Alias Maximum")
	}

	send(pub, "ta/over", 5, "x")
	pkts := pub.expectClosed(wireTimeout)
	r, ok := disconnectReason(pkts)
	if !ok || r != codec.TopicAliasInvalid {
		t.Fatalf("alias above the maximum: DISCONNECT %v (sent: %v), want 0x94", r, ok)
	}

	unknown, _ := connectWire(t, addr, codec.Version5, "alias-unknown", nil)
	send(unknown, "", 3, "x")
	r, ok = disconnectReason(unknown.expectClosed(wireTimeout))
	if !ok || r != codec.ProtocolError {
		t.Fatalf("unknown alias: DISCONNECT %v (sent: %v), want 0x82", r, ok)
	}
	sub.expectNone(100 * time.Millisecond)
}

// TestTopicAliasToClient: a subscriber announcing a Topic Alias Maximum gets
// aliases no greater than it (MQTT-3.1.2-26) and, resolving them by 3.3.2.3.4,
// always the right topic.
func TestTopicAliasToClient(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	const aliasMax = 2
	sub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "alias-out", CleanStart: true,
		Properties: &paho.ConnectProperties{TopicAliasMaximum: valPtr(uint16(aliasMax))}})
	_, err := sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "to/#", QoS: 1}}})
	testutil.Require(t, err, "subscribe")
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "alias-out-pub", CleanStart: true})
	var want []string
	for round := range 3 {
		for _, topic := range []string{"to/one", "to/two", "to/three"} {
			want = append(want, topic)
			_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(strconv.Itoa(round))})
			testutil.Require(t, err, "publish")
		}
	}
	aliases := map[uint16]string{}
	used := 0
	for i, w := range want {
		m := sub.Recv(t)
		topic := m.Topic
		if m.Properties != nil && m.Properties.TopicAlias != nil {
			a := *m.Properties.TopicAlias
			if a == 0 || a > aliasMax {
				t.Fatalf("message %d: topic alias %d, want 1..%d", i, a, aliasMax) // MQTT-3.3.2-8, MQTT-3.1.2-26
			}
			if topic != "" {
				aliases[a] = topic
			} else {
				topic = aliases[a]
				used++
			}
		}
		testutil.Equal(t, topic, w, fmt.Sprintf("topic of message %d", i))
	}
	t.Logf("%d of %d deliveries used an alias without the topic", used, len(want))
}

// TestForwardedProperties: Payload Format Indicator, Content Type, Response
// Topic, Correlation Data and User Properties reach the subscriber unaltered
// (MQTT-3.3.2-4, MQTT-3.3.2-20, MQTT-3.3.2-15, MQTT-3.3.2-16,
// MQTT-3.3.2-17), the user properties in their order with repeats
// (MQTT-3.3.2-18).
func TestForwardedProperties(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "props-sub", CleanStart: true})
	_, err := sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "props/t", QoS: 1}}})
	testutil.Require(t, err, "subscribe")
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "props-pub", CleanStart: true})
	user := paho.UserProperties{{Key: "k", Value: "1"}, {Key: "a", Value: "x"}, {Key: "k", Value: "2"}, {Key: "k", Value: "1"}, {Key: "é", Value: ""}}
	corr := []byte{0, 1, 2, 0xff}
	_, err = pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "props/t", QoS: 1, Payload: []byte("{}"),
		Properties: &paho.PublishProperties{PayloadFormat: valPtr(byte(1)), ContentType: "application/json",
			ResponseTopic: "props/reply", CorrelationData: corr, User: user}})
	testutil.Require(t, err, "publish")
	m := sub.Recv(t)
	pr := m.Properties
	if pr == nil {
		t.Fatal("no properties forwarded")
	}
	if pr.PayloadFormat == nil || *pr.PayloadFormat != 1 {
		t.Fatalf("payload format indicator %v, want 1", pr.PayloadFormat)
	}
	testutil.Equal(t, pr.ContentType, "application/json", "content type")
	testutil.Equal(t, pr.ResponseTopic, "props/reply", "response topic")
	if !bytes.Equal(pr.CorrelationData, corr) {
		t.Fatalf("correlation data % x, want % x", pr.CorrelationData, corr)
	}
	testutil.Equal(t, fmt.Sprint(pr.User), fmt.Sprint(user), "user properties")
}

// TestSharedSubscriptionDistribution: each message on a shared subscription
// goes to one member of the group (4.8.2); two members both get some, none
// twice, none lost.
func TestSharedSubscriptionDistribution(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	var members []*testutil.V5
	for i := range 2 {
		m := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: fmt.Sprintf("share-%d", i), CleanStart: true})
		_, err := m.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$share/g/sh/t", QoS: 1}}})
		testutil.Require(t, err, "subscribe")
		members = append(members, m)
	}
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "share-pub", CleanStart: true})
	const n = 20
	for i := range n {
		_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "sh/t", QoS: 1, Payload: []byte(strconv.Itoa(i))})
		testutil.Require(t, err, "publish")
	}
	seen := map[string]int{}
	counts := make([]int, len(members))
	deadline := time.After(5 * time.Second)
	for total := 0; total < n; total++ {
		select {
		case m := <-members[0].Msgs:
			seen[string(m.Payload)]++
			counts[0]++
			testutil.Equal(t, m.QoS, byte(1), "QoS") // MQTT-4.8.2-3
		case m := <-members[1].Msgs:
			seen[string(m.Payload)]++
			counts[1]++
			testutil.Equal(t, m.QoS, byte(1), "QoS")
		case <-deadline:
			t.Fatalf("received %d of %d messages (per member %v)", total, n, counts)
		}
	}
	members[0].NoMsg(t, 200*time.Millisecond)
	members[1].NoMsg(t, 10*time.Millisecond)
	for i := range n {
		testutil.Equal(t, seen[strconv.Itoa(i)], 1, fmt.Sprintf("copies of message %d", i))
	}
	if counts[0] == 0 || counts[1] == 0 {
		t.Fatalf("per member %v: want both members to get messages", counts)
	}
}

// TestSharedSubscriptionOfflineMember: while one member of a group is offline
// (its session persists) the online member gets every message (4.8.2), and
// the offline one gets none of them when it returns.
func TestSharedSubscriptionOfflineMember(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	cp := func(id string, clean bool) *paho.Connect {
		return &paho.Connect{ClientID: id, CleanStart: clean,
			Properties: &paho.ConnectProperties{SessionExpiryInterval: valPtr(uint32(60))}}
	}
	on := testutil.ConnectV5(t, addr, cp("share-on", true))
	off := testutil.ConnectV5(t, addr, cp("share-off", true))
	for _, m := range []*testutil.V5{on, off} {
		_, err := m.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$share/g/sh/off", QoS: 1}}})
		testutil.Require(t, err, "subscribe")
	}
	testutil.Require(t, off.Disconnect(&paho.Disconnect{}), "disconnect")
	time.Sleep(100 * time.Millisecond) // let the broker see the member go offline

	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "share-off-pub", CleanStart: true})
	const n = 10
	for i := range n {
		_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "sh/off", QoS: 1, Payload: []byte(strconv.Itoa(i))})
		testutil.Require(t, err, "publish")
	}
	for i := range n {
		testutil.Equal(t, string(on.Recv(t).Payload), strconv.Itoa(i), "message to the online member")
	}
	on.NoMsg(t, 100*time.Millisecond)

	back := testutil.ConnectV5(t, addr, cp("share-off", false))
	testutil.Equal(t, back.Connack.SessionPresent, true, "session present")
	back.NoMsg(t, 300*time.Millisecond)
}
