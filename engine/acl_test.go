package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/auth"
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// Access control through the engine's Authorize hook, with rules from an
// ACL file in Mosquitto's format (auth.ACL), driven by real clients.

const engineACL = `user alice
topic readwrite a/#
topic deny a/secret
topic write will/alice

user watcher
topic read #
`

func startACLBroker(t *testing.T) string {
	t.Helper()
	acl, err := auth.ParseACL(strings.NewReader(engineACL))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartBroker(t, engine.Options{Authorize: func(c *engine.ConnectInfo) engine.Rules {
		return acl.For(auth.Client{Username: string(c.Username), HasUsername: c.HasUsername, ClientID: c.ClientID})
	}})
	return srv.Addr().String()
}

func withUser(name string) func(*codec.Connect) {
	return func(c *codec.Connect) { c.UsernameFlag, c.Username = true, []byte(name) }
}

// 5.0: a PUBLISH the ACL does not allow is answered Not authorized (0x87) in
// its PUBACK and PUBREC, and reaches nobody, not even a subscriber allowed to
// read it; an allowed one goes through.
func TestACLPublish5(t *testing.T) {
	addr := startACLBroker(t)
	watcher := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "w", CleanStart: true, UsernameFlag: true, Username: "watcher"})
	subscribe(t, watcher, paho.SubscribeOptions{Topic: "#", QoS: 1})
	alice, _ := connectWire(t, addr, codec.Version5, "alice-5", withUser("alice"))
	alice.publish("b/x", 1, 1, false, "denied")
	if a := alice.expectAck(codec.PUBACK, 1); a.ReasonCode != codec.NotAuthorized {
		t.Fatalf("PUBACK %v, want not authorized (0x87)", a.ReasonCode)
	}
	alice.publish("a/secret", 2, 2, false, "denied")
	if a := alice.expectAck(codec.PUBREC, 2); a.ReasonCode != codec.NotAuthorized {
		t.Fatalf("PUBREC %v, want not authorized (0x87)", a.ReasonCode)
	}
	alice.publish("a/ok", 1, 3, false, "allowed")
	if a := alice.expectAck(codec.PUBACK, 3); a.ReasonCode.IsError() {
		t.Fatalf("PUBACK %v for an allowed topic", a.ReasonCode)
	}
	recvPayload(t, watcher, "allowed")
	watcher.NoMsg(t, 200*time.Millisecond)
}

// 3.1.1 cannot refuse a PUBLISH: a denied one completes its QoS 1/2 flow as
// if accepted (the client does not send it again), is not delivered and is
// not retained.
func TestACLPublish311(t *testing.T) {
	addr := startACLBroker(t)
	got := make(chan mqtt.Message, 10)
	watcher, _ := connect311(t, addr, "watcher-311", true, got, func(o *mqtt.ClientOptions) { o.SetUsername("watcher") })
	waitToken(t, watcher.Subscribe("#", 1, nil), "subscribe")
	alice, _ := connect311(t, addr, "alice-311", true, nil, func(o *mqtt.ClientOptions) { o.SetUsername("alice") })
	waitToken(t, alice.Publish("b/x", 1, true, "denied-1"), "publish QoS 1")
	waitToken(t, alice.Publish("a/secret", 2, false, "denied-2"), "publish QoS 2")
	waitToken(t, alice.Publish("a/ok", 1, false, "allowed"), "publish allowed")
	if m := recv311(t, got); string(m.Payload()) != "allowed" {
		t.Fatalf("got %q on %s, want only the allowed message", m.Payload(), m.Topic())
	}
	select {
	case m := <-got:
		t.Fatalf("a denied message arrived: %q on %s", m.Payload(), m.Topic())
	case <-time.After(200 * time.Millisecond):
	}
	// Nor was the denied retained message kept.
	late := make(chan mqtt.Message, 10)
	l, _ := connect311(t, addr, "late-311", true, late, func(o *mqtt.ClientOptions) { o.SetUsername("watcher") })
	waitToken(t, l.Subscribe("b/#", 1, nil), "subscribe")
	select {
	case m := <-late:
		t.Fatalf("a denied retained message was kept: %q", m.Payload())
	case <-time.After(200 * time.Millisecond):
	}
}

// SUBSCRIBE: a filter no read rule meets is refused, 0x87 in 5.0 and 0x80
// in 3.1.1 (one code per filter, in order: MQTT-3.8.4-6); one that meets a grant is
// given, and then only the topics the rules allow are delivered, retained
// messages included.
func TestACLSubscribeAndDelivery(t *testing.T) {
	addr := startACLBroker(t)
	alice := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "alice-r", CleanStart: true, UsernameFlag: true, Username: "alice"})
	_, err := alice.Publish(testutil.Ctx(t), &paho.Publish{Topic: "a/kept", QoS: 1, Retain: true, Payload: []byte("retained")})
	testutil.Require(t, err, "publish retained")

	sub, _ := connectWire(t, addr, codec.Version5, "alice-sub", withUser("alice"))
	ack := sub.subscribe(1, 0, subscription("a/#", 1), subscription("b/#", 1), subscription("$share/g/a/+", 1), subscription("a/secret", 0))
	want := []byte{1, byte(codec.NotAuthorized), 1, byte(codec.NotAuthorized)}
	if string(ack) != string(want) {
		t.Fatalf("SUBACK codes % x, want % x", ack, want)
	}
	if p := sub.expectPublish(); string(p.Payload) != "retained" {
		t.Fatalf("retained %q, want retained", p.Payload)
	}
	sub311, _ := connectWire(t, addr, codec.Version311, "alice-311s", withUser("alice"))
	if ack := sub311.subscribe(1, 0, subscription("b/#", 0), subscription("a/+", 0)); ack[0] != 0x80 || ack[1] != 0 {
		t.Fatalf("3.1.1 SUBACK codes % x, want 80 00", ack)
	}
}

// The deny on a/secret hides it from a subscriber to a/# while a/other
// arrives: deliveries are checked one by one.
func TestACLDeliveryChecked(t *testing.T) {
	acl, err := auth.ParseACL(strings.NewReader("user reader\ntopic read a/#\ntopic deny a/secret\nuser writer\ntopic write #\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartBroker(t, engine.Options{Authorize: func(c *engine.ConnectInfo) engine.Rules {
		return acl.For(auth.Client{Username: string(c.Username), HasUsername: c.HasUsername, ClientID: c.ClientID})
	}})
	addr := srv.Addr().String()
	writer := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "writer", CleanStart: true, UsernameFlag: true, Username: "writer"})
	publishRetained := func(topic, payload string) {
		_, err := writer.Publish(testutil.Ctx(t), &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte(payload)})
		testutil.Require(t, err, "publish "+topic)
	}
	publishRetained("a/secret", "retained secret")
	publishRetained("a/open", "retained open")
	reader := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "reader", CleanStart: true, UsernameFlag: true, Username: "reader"})
	subscribe(t, reader, paho.SubscribeOptions{Topic: "a/#", QoS: 1})
	recvPayload(t, reader, "retained open")
	publish(t, writer, "a/secret", "live secret", 1)
	publish(t, writer, "a/other", "live other", 1)
	recvPayload(t, reader, "live other")
	reader.NoMsg(t, 200*time.Millisecond)
	if s := srv.Snapshot(); s.ACLDenied < 2 {
		t.Fatalf("ACLDenied %d, want the retained and the live secret counted", s.ACLDenied)
	}
}

// A will the client may not publish is refused at CONNECT: 5.0 CONNACK
// 0x87, 3.1.1 return code 5.
func TestACLWillRefusedAtConnect(t *testing.T) {
	addr := startACLBroker(t)
	for _, v := range []byte{codec.Version5, codec.Version311} {
		c := dialWire(t, addr, v)
		p := &codec.Packet{Type: codec.CONNECT}
		p.Connect = codec.Connect{ProtocolVersion: v, CleanStart: true, KeepAlive: 30, ClientID: []byte("alice-will"),
			UsernameFlag: true, Username: []byte("alice"), Will: true, WillTopic: []byte("will/other"), WillPayload: []byte("x")}
		c.send(p)
		ack := c.expect(codec.CONNACK).Connack
		if ack.ReasonCode != codec.NotAuthorized {
			t.Fatalf("level %d: CONNACK %v, want not authorized", v, ack.ReasonCode)
		}
	}
	// An allowed will topic connects (connectWire fails the test otherwise).
	connectWire(t, addr, codec.Version5, "alice-will-ok", func(c *codec.Connect) {
		withUser("alice")(c)
		c.Will, c.WillTopic, c.WillPayload = true, []byte("will/alice"), []byte("bye")
	})
}
