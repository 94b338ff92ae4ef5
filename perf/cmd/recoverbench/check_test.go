package main

import (
	"net"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// TestChecks runs the ready probe and the sample checks against an
// in-process memory-only broker in which the same state was made by MQTT:
// a persistent session that went offline with queued messages, and a
// retained message.
func TestChecks(t *testing.T) {
	addr := testutil.StartBroker(t, engine.Options{}).Addr().String()
	l := layout{sessions: 1, subs: 1, queued: 3, retained: 10}

	c, err := net.Dial("tcp", addr)
	testutil.Require(t, err, "dial")
	connect, err := (&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{
		ProtocolVersion: codec.Version311, CleanStart: true, ClientID: []byte("probe")}}).Append(nil, codec.Version311)
	testutil.Require(t, err, "encode CONNECT")
	ok, err := probe(c, connect, time.Now().Add(checkTimeout))
	testutil.Require(t, err, "probe")
	testutil.Equal(t, ok, true, "probe got CONNACK")
	_ = c.Close()

	sub, present, err := dialMQTT(addr, l.clientID(0), false)
	testutil.Require(t, err, "connect the persistent session")
	testutil.Equal(t, present, false, "session present on first connect")
	testutil.Require(t, sub.send(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1,
		Subscriptions: []codec.Subscription{{Filter: []byte(bodyTopic(0)[:len("recover/shared/")] + "+"), QoS: 1}}}}), "subscribe")
	p, err := sub.next()
	testutil.Require(t, err, "SUBACK")
	testutil.Equal(t, p.Type, codec.SUBACK, "SUBACK")
	sub.close()

	pub, _, err := dialMQTT(addr, "publisher", true)
	testutil.Require(t, err, "connect the publisher")
	defer pub.close()
	publish := func(topic string, payload []byte, retain bool) {
		t.Helper()
		testutil.Require(t, pub.send(&codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{
			QoS: 1, PacketID: 7, Retain: retain, Topic: []byte(topic), Payload: payload}}), "publish")
		p, err := pub.next()
		testutil.Require(t, err, "PUBACK")
		testutil.Equal(t, p.Type, codec.PUBACK, "PUBACK")
	}
	for k := range l.queued {
		publish(bodyTopic(l.body(0, k)), bodyPayload(l.body(0, k)), false)
	}
	publish(retainedTopic(3), retainedPayload(3), true)

	testutil.Require(t, checkSession(addr, l, 0), "session check")
	testutil.Require(t, checkSession(addr, l, 0), "session check again: nothing was acknowledged")
	testutil.Require(t, checkRetained(addr, 3), "retained check")
}
