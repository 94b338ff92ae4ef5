package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// Integration tests of connecting: protocol levels and names, client
// identifiers, Clean Start and Session Present, session expiry, session
// takeover, the limits announced in CONNACK and enforced both ways, packet
// order rules, the CONNECT timeout and shutdown. Statement numbers are MQTT
// 5.0 unless marked 3.1.1.

// v5 returns a paho CONNECT for client id with Clean Start and, when not 0,
// a Session Expiry Interval.
func v5(id string, clean bool, expiry uint32) *paho.Connect {
	cp := &paho.Connect{ClientID: id, CleanStart: clean, KeepAlive: 30}
	if expiry != 0 {
		cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: &expiry}
	}
	return cp
}

// subscribe subscribes c with opts and requires every subscription granted.
func subscribe(t *testing.T, c *testutil.V5, opts ...paho.SubscribeOptions) {
	t.Helper()
	ack, err := c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: opts})
	testutil.Require(t, err, "subscribe")
	for i, code := range ack.Reasons {
		if code >= 0x80 {
			t.Fatalf("subscription %q refused: %#x", opts[i].Topic, code)
		}
	}
}

// publish publishes from c and waits for the acknowledgement of QoS 1 and 2.
func publish(t *testing.T, c *testutil.V5, topic, payload string, qos byte) {
	t.Helper()
	_, err := c.Publish(testutil.Ctx(t), &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)})
	testutil.Require(t, err, "publish "+topic)
}

// recvPayload receives the next message of c and checks its payload.
func recvPayload(t *testing.T, c *testutil.V5, want string) *paho.Publish {
	t.Helper()
	m := c.Recv(t)
	testutil.Equal(t, string(m.Payload), want, "payload")
	return m
}

// disconnect sends a normal DISCONNECT from c and closes it.
func disconnect(t *testing.T, c *testutil.V5) {
	t.Helper()
	testutil.Require(t, c.Disconnect(&paho.Disconnect{}), "disconnect")
}

// raw5 is a raw 5.0 CONNECT with Clean Start.
func raw5(id string, keepAlive uint16) *codec.Connect {
	return &codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, KeepAlive: keepAlive, ClientID: []byte(id)}
}

// raw311 is a raw 3.1.1 CONNECT with Clean Session.
func raw311(id string, keepAlive uint16) *codec.Connect {
	return &codec.Connect{ProtocolVersion: codec.Version311, CleanStart: true, KeepAlive: keepAlive, ClientID: []byte(id)}
}

func pubPacket(topic, payload string, qos byte, id uint16) *codec.Packet {
	return &codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{Topic: []byte(topic), Payload: []byte(payload), QoS: qos, PacketID: id}}
}

func subPacket(filter string, qos byte, id uint16) *codec.Packet {
	return &codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: id,
		Subscriptions: []codec.Subscription{{Filter: []byte(filter), QoS: qos}}}}
}

func waitToken(t *testing.T, tok mqtt.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("%s: no answer within 5s", what)
	}
	testutil.Require(t, tok.Error(), what)
}

// connect311 connects a paho.mqtt.golang 3.1.1 client; every message it
// receives goes to got, subscribed in this connection or not. It returns the
// client and Session Present.
func connect311(t *testing.T, addr, id string, clean bool, got chan mqtt.Message, configure ...func(*mqtt.ClientOptions)) (mqtt.Client, bool) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetKeepAlive(30 * time.Second)
	if got != nil {
		o.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- m })
	}
	for _, f := range configure {
		f(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	waitToken(t, tok, "connect "+id)
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(0)
		}
	})
	return c, tok.(*mqtt.ConnectToken).SessionPresent()
}

func recv311(t *testing.T, got chan mqtt.Message) mqtt.Message {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func noMsg311(t *testing.T, got chan mqtt.Message, d time.Duration) {
	t.Helper()
	select {
	case m := <-got:
		t.Fatalf("unexpected message on %q: %q", m.Topic(), m.Payload())
	case <-time.After(d):
	}
}

// MQTT 3.1 (protocol name "MQIsdp", level 3) is accepted and answered in the
// 3.1 format, whose CONNACK has no Session Present flag (3.1 section 3.2).
func TestConnect31(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	r := testutil.DialRaw(t, srv.Addr().String())
	// ProtocolName nil encodes "MQIsdp" at level 3; decoding the CONNACK at
	// level 3 fails if any flag bit is set.
	ack := r.Connect(&codec.Connect{ProtocolVersion: codec.Version31, CleanStart: true, KeepAlive: 30, ClientID: []byte("c31")})
	testutil.Equal(t, ack.ReasonCode, codec.Success, "CONNACK return code")
	r.Send(subPacket("t31/#", 0, 1))
	sa := r.Expect(codec.SUBACK, 2*time.Second).Suback
	testutil.Equal(t, sa.PacketID, uint16(1), "SUBACK packet id")
	testutil.Equal(t, string(sa.ReasonCodes), "\x00", "SUBACK granted QoS")
	r.Send(pubPacket("t31/a", "hello 3.1", 0, 0))
	p := r.Expect(codec.PUBLISH, 2*time.Second).Publish
	testutil.Equal(t, string(p.Topic), "t31/a", "topic")
	testutil.Equal(t, string(p.Payload), "hello 3.1", "payload")
	r.Send(&codec.Packet{Type: codec.PINGREQ})
	r.Expect(codec.PINGRESP, 2*time.Second)
}

// MQTT-3.2.2-1 (3.1.1): a CONNECT with Clean Session 1 is accepted with
// return code 0 and Session Present 0.
func TestConnect311(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	c, present := connect311(t, srv.Addr().String(), "c311", true, nil)
	if !c.IsConnected() {
		t.Fatal("3.1.1 client not connected")
	}
	testutil.Equal(t, present, false, "session present")
}

// MQTT-3.1.4-5, MQTT-3.2.2-2: a 5.0 CONNECT with Clean Start 1 is
// acknowledged with reason code 0x00 and Session Present 0.
func TestConnect5(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	c := testutil.ConnectV5(t, srv.Addr().String(), v5("c5", true, 0))
	testutil.Equal(t, c.Connack.ReasonCode, byte(0), "CONNACK reason code")
	testutil.Equal(t, c.Connack.SessionPresent, false, "session present")
}

// MQTT-3.1.2-2 (3.1.1): a protocol level the server does not support is
// answered with CONNACK return code 0x01 (unacceptable protocol level) and the
// connection is closed. 5.0 MQTT-3.1.2-2 allows the same (a level it does not
// know cannot be answered in its own format); MQTT-3.2.2-5 (3.1.1) and
// MQTT-3.2.2-7 require the close after a refusing CONNACK.
func TestConnectUnsupportedLevel(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(name string, level byte) {
		t.Helper()
		r := testutil.DialRaw(t, addr)
		r.Send(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolName: []byte(name),
			ProtocolVersion: level, CleanStart: true, KeepAlive: 30, ClientID: []byte("lvl")}})
		ack := r.Expect(codec.CONNACK, 2*time.Second).Connack
		// A 3.1/3.1.1 return code 0x01 decodes as UnsupportedProtocolVersion.
		testutil.Equal(t, ack.ReasonCode, codec.UnsupportedProtocolVersion, fmt.Sprintf("%s level %d: CONNACK return code", name, level))
		testutil.Equal(t, ack.SessionPresent, false, "session present on a refusal") // MQTT-3.2.2-4 (3.1.1)
		r.ExpectClosed(2 * time.Second)
	}
	f("MQTT", 6)
	f("MQTT", 2)
	f("MQTT", 3)   // level 3 is only 3.1, named MQIsdp
	f("MQIsdp", 4) // MQIsdp is only level 3
}

// MQTT-3.1.2-1: a CONNECT whose protocol name is not "MQTT" is not processed
// as MQTT: the server may answer with a refusing CONNACK (0x84, or 0x01 in
// 3.1.1) and then must close the connection.
func TestConnectBadProtocolName(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(name string, level byte) {
		t.Helper()
		r := testutil.DialRaw(t, addr)
		r.Send(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolName: []byte(name),
			ProtocolVersion: level, CleanStart: true, KeepAlive: 30, ClientID: []byte("name")}})
		p, err := r.Read(2 * time.Second)
		if err == nil {
			if p.Type != codec.CONNACK || p.Connack.ReasonCode == codec.Success {
				t.Fatalf("protocol name %q: got %s reason %s, want a refusing CONNACK or a close", name, p.Type, p.Connack.ReasonCode)
			}
			r.ExpectClosed(2 * time.Second)
			return
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("protocol name %q: want the connection closed: %v", name, err)
		}
	}
	f("MQTX", codec.Version311)
	f("mqtt", codec.Version5)
	f("", codec.Version311)
	f("MQTTMQTT", codec.Version5)
}

// MQTT-3.1.3-8 (3.1.1): a zero-byte client id with Clean Session 0 gets
// CONNACK 0x02 (identifier rejected) and the connection closes; 3.1 requires a
// client id of 1 to 23 characters (3.1 section 3.1, return code 2).
// MQTT-3.1.4-5 (3.1.1), MQTT-3.1.4-6: nothing the client sent after the
// refused CONNECT is processed: a retained PUBLISH in the same segment is not
// stored.
func TestConnectEmptyClientIDRefused(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(level byte, clean bool, topic string) {
		t.Helper()
		r := testutil.DialRaw(t, addr)
		b := r.Encode(&codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: level, CleanStart: clean, KeepAlive: 30}})
		pub := pubPacket(topic, "must not be stored", 0, 0)
		pub.Publish.Retain = true
		b = append(b, r.Encode(pub)...)
		r.Write(b)
		ack := r.Expect(codec.CONNACK, 2*time.Second).Connack
		testutil.Equal(t, ack.ReasonCode, codec.ClientIdentifierNotValid, "CONNACK return code (0x02 identifier rejected)")
		testutil.Equal(t, ack.SessionPresent, false, "session present on a refusal")
		r.ExpectClosed(2 * time.Second)
	}
	f(codec.Version311, false, "refused/311")
	f(codec.Version31, true, "refused/31")
	f(codec.Version31, false, "refused/31b")

	sub := testutil.ConnectV5(t, addr, v5("refused-watcher", true, 0))
	subscribe(t, sub, paho.SubscribeOptions{Topic: "refused/#", QoS: 1})
	sub.NoMsg(t, 300*time.Millisecond)
}

// MQTT-3.1.3-6 (3.1.1): a server that allows a zero-byte client id (with
// Clean Session 1, MQTT-3.1.3-7) assigns a unique one and processes the
// CONNECT as usual.
func TestConnectEmptyClientID311Accepted(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	got := make(chan mqtt.Message, 10)
	a, present := connect311(t, addr, "", true, got)
	testutil.Equal(t, present, false, "session present")
	b, _ := connect311(t, addr, "", true, nil)
	// Two anonymous clients are two sessions: the second does not take over
	// the first.
	waitToken(t, a.Subscribe("anon/#", 1, nil), "subscribe")
	waitToken(t, b.Publish("anon/x", 1, false, "to a"), "publish")
	testutil.Equal(t, string(recv311(t, got).Payload()), "to a", "payload")
	if !a.IsConnected() {
		t.Fatal("first anonymous client was disconnected by the second")
	}
}

// MQTT-3.2.2-16, MQTT-3.1.3-6, MQTT-3.1.3-7: a 5.0 client with a zero-length
// client id gets a unique Assigned Client Identifier in CONNACK, and the
// session is kept under that id as if the client had sent it.
func TestConnectAssignedClientID5(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	a := testutil.ConnectV5(t, addr, v5("", true, 60))
	b := testutil.ConnectV5(t, addr, v5("", true, 0))
	if a.Connack.Properties == nil || a.Connack.Properties.AssignedClientID == "" {
		t.Fatal("CONNACK has no Assigned Client Identifier")
	}
	idA, idB := a.Connack.Properties.AssignedClientID, b.Connack.Properties.AssignedClientID
	if idA == idB {
		t.Fatalf("two clients were assigned the same id %q", idA)
	}
	subscribe(t, a, paho.SubscribeOptions{Topic: "assigned/#", QoS: 1})
	disconnect(t, a)

	again := testutil.ConnectV5(t, addr, v5(idA, false, 60))
	testutil.Equal(t, again.Connack.SessionPresent, true, "session present under the assigned id")
	if again.Connack.Properties != nil && again.Connack.Properties.AssignedClientID != "" {
		t.Fatalf("assigned a client id to a client that sent one: %q", again.Connack.Properties.AssignedClientID)
	}
	publish(t, b, "assigned/x", "kept", 1)
	recvPayload(t, again, "kept")
}

// MQTT-3.1.2-4 and MQTT-3.1.2-5 (3.1.1), MQTT-3.2.2-2 and -3 (3.1.1): a
// Clean Session 0 session keeps its subscriptions across a reconnect,
// reported with Session Present 1, and stores the QoS 1 messages that arrive
// while it is offline; Clean Session 1 discards it (MQTT-3.1.2-6 (3.1.1),
// MQTT-3.2.2-1 (3.1.1)).
func TestPersistentSession311(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	got := make(chan mqtt.Message, 10)
	pub := testutil.ConnectV5(t, addr, v5("ps-pub", true, 0))

	c, present := connect311(t, addr, "ps311", false, got)
	testutil.Equal(t, present, false, "session present on the first connect")
	waitToken(t, c.Subscribe("ps/#", 1, nil), "subscribe")
	c.Disconnect(100)

	publish(t, pub, "ps/offline", "stored while offline", 1) // MQTT-3.1.2-5 (3.1.1)
	c, present = connect311(t, addr, "ps311", false, got)
	testutil.Equal(t, present, true, "session present on resuming") // MQTT-3.2.2-2 (3.1.1)
	m := recv311(t, got)
	testutil.Equal(t, string(m.Payload()), "stored while offline", "queued payload")
	testutil.Equal(t, m.Qos(), byte(1), "queued QoS")
	publish(t, pub, "ps/online", "subscription kept", 1) // MQTT-3.1.2-4 (3.1.1)
	testutil.Equal(t, string(recv311(t, got).Payload()), "subscription kept", "payload")
	c.Disconnect(100)

	// A raw client for the Clean Session 1 connection: its DISCONNECT is
	// complete when the broker closes the socket.
	r := testutil.DialRaw(t, addr)
	ack := r.Connect(raw311("ps311", 30))
	testutil.Equal(t, ack.SessionPresent, false, "session present with Clean Session 1") // MQTT-3.2.2-1 (3.1.1)
	publish(t, pub, "ps/after-clean", "old subscription gone", 1)                        // MQTT-3.1.2-6 (3.1.1)
	r.ExpectSilence(300 * time.Millisecond)
	r.Disconnect()

	// The Clean Session 1 session ended at that disconnect: nothing left to
	// resume (MQTT-3.2.2-3 (3.1.1)).
	_, present = connect311(t, addr, "ps311", false, got)
	testutil.Equal(t, present, false, "session present after a Clean Session 1 session")
	noMsg311(t, got, 100*time.Millisecond)
}

// MQTT-3.1.2-4, MQTT-3.2.2-2: Clean Start 1 discards the existing session:
// Session Present 0 and the old subscriptions are gone. MQTT-3.1.2-5,
// MQTT-3.2.2-3: Clean Start 0 resumes it with Session Present 1.
func TestCleanStart5(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub := testutil.ConnectV5(t, addr, v5("cs-pub", true, 0))

	c := testutil.ConnectV5(t, addr, v5("cs5", true, 60))
	subscribe(t, c, paho.SubscribeOptions{Topic: "cs/#", QoS: 1})
	disconnect(t, c)

	c = testutil.ConnectV5(t, addr, v5("cs5", false, 60))
	testutil.Equal(t, c.Connack.SessionPresent, true, "session present with Clean Start 0")
	publish(t, pub, "cs/a", "resumed", 1)
	recvPayload(t, c, "resumed")
	disconnect(t, c)

	c = testutil.ConnectV5(t, addr, v5("cs5", true, 60))
	testutil.Equal(t, c.Connack.SessionPresent, false, "session present with Clean Start 1")
	publish(t, pub, "cs/b", "old subscription gone", 1)
	c.NoMsg(t, 300*time.Millisecond)
}

// 3.1.2.11.2: a Session Expiry Interval of 0 (or absent) ends the session when
// the connection closes, so a later Clean Start 0 finds none (MQTT-3.2.2-3:
// Session Present 0) and the subscriptions are gone.
func TestSessionExpiryZero(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub := testutil.ConnectV5(t, addr, v5("se0-pub", true, 0))
	// Raw, so that the test knows when the broker has closed the connection.
	r := testutil.DialRaw(t, addr)
	r.Connect(persistent5("se0", false, 0))
	r.Send(subPacket("se0/#", 1, 1))
	r.Expect(codec.SUBACK, 2*time.Second)
	r.Disconnect()

	c := testutil.ConnectV5(t, addr, v5("se0", false, 0))
	testutil.Equal(t, c.Connack.SessionPresent, false, "session present after expiry 0")
	publish(t, pub, "se0/x", "no subscriber", 1)
	c.NoMsg(t, 300*time.Millisecond)
}

// MQTT-3.1.2-23: with a Session Expiry Interval of 2 s the session outlives
// the connection: resumed within 1 s it is present. MQTT-4.1.0-2: once the
// interval has passed with no connection the server discards it.
func TestSessionExpiryInterval(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub := testutil.ConnectV5(t, addr, v5("se2-pub", true, 0))
	c := testutil.ConnectV5(t, addr, v5("se2", true, 2))
	subscribe(t, c, paho.SubscribeOptions{Topic: "se2/#", QoS: 1})
	disconnect(t, c)

	time.Sleep(500 * time.Millisecond)
	c = testutil.ConnectV5(t, addr, v5("se2", false, 2))
	testutil.Equal(t, c.Connack.SessionPresent, true, "session present 0.5 s after the close")
	publish(t, pub, "se2/a", "kept", 1)
	recvPayload(t, c, "kept")
	disconnect(t, c)

	time.Sleep(3 * time.Second)
	c = testutil.ConnectV5(t, addr, v5("se2", false, 2))
	testutil.Equal(t, c.Connack.SessionPresent, false, "session present 3 s after the close")
	publish(t, pub, "se2/b", "expired", 1)
	c.NoMsg(t, 300*time.Millisecond)
}

// MQTT-3.1.2-23, 4.1: the QoS 1 messages that match a stored session's
// subscriptions while it is offline are part of its state and are delivered,
// in order (4.6), when it resumes.
func TestSessionExpiryQueuesOffline(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub := testutil.ConnectV5(t, addr, v5("q-pub", true, 0))
	// Raw, so that the messages are published only once the broker has
	// closed the connection: sent to a connection still closing they would
	// be in flight and come back as redeliveries.
	r := testutil.DialRaw(t, addr)
	r.Connect(persistent5("q-sub", true, 10))
	r.Send(subPacket("q/#", 1, 1))
	r.Expect(codec.SUBACK, 2*time.Second)
	r.Disconnect()

	for _, p := range []string{"one", "two", "three"} {
		publish(t, pub, "q/"+p, p, 1)
	}
	// A raw client shows the order on the wire: CONNACK first (MQTT-3.2.0-1),
	// then the queued messages.
	r = testutil.DialRaw(t, addr)
	ack := r.Connect(persistent5("q-sub", false, 10))
	testutil.Equal(t, ack.SessionPresent, true, "session present")
	for _, want := range []string{"one", "two", "three"} {
		p := r.Expect(codec.PUBLISH, 2*time.Second).Publish
		testutil.Equal(t, string(p.Payload), want, "payload")
		testutil.Equal(t, string(p.Topic), "q/"+want, "topic")
		testutil.Equal(t, p.QoS, byte(1), "QoS of a queued message")
		testutil.Equal(t, p.Dup, false, "DUP of a first delivery") // MQTT-3.3.1-1
		r.Send(&codec.Packet{Type: codec.PUBACK, Ack: codec.Ack{Type: codec.PUBACK, PacketID: p.PacketID}})
	}
	r.ExpectSilence(200 * time.Millisecond)
}

// 3.14.2.2.2: a client may change the Session Expiry Interval on DISCONNECT;
// set to 0 the session ends with the connection (Session Present 0 after).
// From 0 on CONNECT to non-zero on DISCONNECT is a Protocol Error (0x82).
func TestDisconnectSessionExpiry(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	r := testutil.DialRaw(t, addr)
	r.Connect(persistent5("dse", true, 60))
	d := &codec.Packet{Type: codec.DISCONNECT}
	d.Disconnect.Props.SetSessionExpiry(0)
	r.Send(d)
	r.ExpectClosed(2 * time.Second)
	r = testutil.DialRaw(t, addr)
	ack := r.Connect(persistent5("dse", false, 60))
	testutil.Equal(t, ack.SessionPresent, false, "session present after DISCONNECT with expiry 0")

	r = testutil.DialRaw(t, addr)
	r.Connect(raw5("dse0", 30))
	d = &codec.Packet{Type: codec.DISCONNECT}
	d.Disconnect.Props.SetSessionExpiry(60)
	r.Send(d)
	r.ExpectDisconnect(codec.ProtocolError, 2*time.Second)
}

// 3.2.2.3.2: a server that uses another Session Expiry Interval than the
// client asked for says so in CONNACK, and that value is the one applied:
// capped at 1 s, the session is gone 2 s after the close (MQTT-4.1.0-2).
func TestSessionExpiryCapped(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{MaxSessionExpiry: 1})
	addr := srv.Addr().String()
	r := testutil.DialRaw(t, addr)
	ack := r.Connect(persistent5("capped", true, 60))
	if !ack.Props.Has(codec.PropSessionExpiry) {
		t.Fatal("CONNACK has no Session Expiry Interval although the server capped it")
	}
	testutil.Equal(t, ack.Props.SessionExpiry, uint32(1), "Session Expiry Interval")
	r.Close()
	time.Sleep(2 * time.Second)
	r = testutil.DialRaw(t, addr)
	ack = r.Connect(persistent5("capped", false, 60))
	testutil.Equal(t, ack.SessionPresent, false, "session present 2 s after the close")
}

// MQTT-3.1.4-3: a CONNECT with the client id of a connected client makes the
// server send the existing 5.0 connection DISCONNECT 0x8E (session taken over)
// and close it; with Clean Start 0 the new connection continues the session
// (MQTT-3.1.2-5), subscriptions included.
// The session exists while its connection is open, so it is taken over even
// with a Session Expiry Interval of 0 (4.1).
func TestSessionTakeover5(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub := testutil.ConnectV5(t, addr, v5("tk-pub", true, 0))
	f := func(id string, expiry uint32) {
		t.Helper()
		old := testutil.ConnectV5(t, addr, v5(id, true, expiry))
		subscribe(t, old, paho.SubscribeOptions{Topic: id + "/#", QoS: 1})

		cur := testutil.ConnectV5(t, addr, v5(id, false, expiry))
		testutil.Equal(t, cur.Connack.SessionPresent, true, "session present for the new connection")
		expectServerDisconnect(t, old, codec.SessionTakenOver)
		publish(t, pub, id+"/a", "to the new connection", 1)
		recvPayload(t, cur, "to the new connection")
		old.NoMsg(t, 200*time.Millisecond)
	}
	f("tk", 60)
	f("tk0", 0)
}

// MQTT-3.1.4-3, MQTT-3.1.4-4: the existing connection is disconnected with
// 0x8E whatever the new CONNECT's Clean Start; with Clean Start 1 the new
// connection starts a new session (MQTT-3.1.2-4).
func TestSessionTakeoverCleanStart5(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub := testutil.ConnectV5(t, addr, v5("tkc-pub", true, 0))
	old := testutil.ConnectV5(t, addr, v5("tkc", true, 60))
	subscribe(t, old, paho.SubscribeOptions{Topic: "tkc/#", QoS: 1})

	cur := testutil.ConnectV5(t, addr, v5("tkc", true, 60))
	testutil.Equal(t, cur.Connack.SessionPresent, false, "session present with Clean Start 1")
	expectServerDisconnect(t, old, codec.SessionTakenOver)
	publish(t, pub, "tkc/a", "nobody", 1)
	cur.NoMsg(t, 300*time.Millisecond)
}

// MQTT-3.1.4-2 (3.1.1): a 3.1.1 CONNECT with the client id of a connected
// client disconnects the existing client (3.1.1 has no server DISCONNECT, so
// the connection just closes).
func TestSessionTakeover311(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	old := testutil.DialRaw(t, addr)
	old.Connect(raw311("tk311", 30))
	cur := testutil.DialRaw(t, addr)
	ack := cur.Connect(raw311("tk311", 30))
	testutil.Equal(t, ack.ReasonCode, codec.Success, "CONNACK of the new connection")
	old.ExpectClosed(2 * time.Second)
	cur.Send(&codec.Packet{Type: codec.PINGREQ})
	cur.Expect(codec.PINGRESP, 2*time.Second)
}

func expectServerDisconnect(t *testing.T, c *testutil.V5, reason codec.ReasonCode) {
	t.Helper()
	select {
	case d := <-c.Disconnects:
		testutil.Equal(t, codec.ReasonCode(d.ReasonCode), reason, "DISCONNECT reason code")
	case <-time.After(3 * time.Second):
		t.Fatalf("no DISCONNECT %s within 3s", reason)
	}
	select {
	case <-c.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("client connection still open after the DISCONNECT")
	}
}

// 3.2.2.3.3, 3.2.2.3.6, 3.2.2.3.8: CONNACK announces the Receive Maximum,
// Maximum Packet Size and Topic Alias Maximum the server was configured
// with; a Topic Alias Maximum absent or 0 means no aliases (MQTT-3.2.2-18).
func TestConnackAnnouncesLimits(t *testing.T) {
	f := func(o engine.Options, recvMax uint16, maxPacket uint32, aliasMax uint16) {
		t.Helper()
		srv := testutil.StartBroker(t, o)
		c := testutil.ConnectV5(t, srv.Addr().String(), v5("limits", true, 0))
		p := c.Connack.Properties
		if p == nil {
			t.Fatal("CONNACK has no properties")
		}
		got := func(v *uint16) uint16 {
			if v == nil {
				return 0
			}
			return *v
		}
		testutil.Equal(t, got(p.ReceiveMaximum), recvMax, "Receive Maximum")
		if p.MaximumPacketSize == nil {
			t.Fatal("CONNACK has no Maximum Packet Size")
		}
		testutil.Equal(t, *p.MaximumPacketSize, maxPacket, "Maximum Packet Size")
		testutil.Equal(t, got(p.TopicAliasMaximum), aliasMax, "Topic Alias Maximum")
	}
	f(engine.Options{MaxInflight: 7, MaxPacketSize: 4096, TopicAliasMax: 3}, 7, 4096, 3)
	f(engine.Options{MaxInflight: 1, MaxPacketSize: 128, NoTopicAlias: true}, 1, 128, 0)
	f(engine.Options{}, 1024, 1<<20, 1024)
}

// MQTT-3.3.4-7: a client must not have more than the server's Receive
// Maximum QoS 2 PUBLISHes unacknowledged (no PUBCOMP yet); the server answers
// one over it with DISCONNECT 0x93 (Receive Maximum exceeded, 3.3.4) and
// closes the connection.
func TestReceiveMaximumExceeded(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxInflight: 2})
	r := testutil.DialRaw(t, srv.Addr().String())
	ack := r.Connect(raw5("rm", 30))
	testutil.Equal(t, ack.Props.ReceiveMaximum, uint16(2), "Receive Maximum")
	for id := uint16(1); id <= 2; id++ {
		r.Send(pubPacket("rm/x", "q2", 2, id))
		rec := r.Expect(codec.PUBREC, 2*time.Second).Ack
		testutil.Equal(t, rec.PacketID, id, "PUBREC packet id")
	}
	r.Send(pubPacket("rm/x", "one too many", 2, 3))
	r.ExpectDisconnect(codec.ReceiveMaximumExceeded, 2*time.Second)
}

// MQTT-3.3.4-7: the quota counts only unacknowledged QoS 2 PUBLISHes: one
// completed with PUBREL/PUBCOMP frees its slot.
func TestReceiveMaximumReleased(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxInflight: 2})
	r := testutil.DialRaw(t, srv.Addr().String())
	r.Connect(raw5("rm-ok", 30))
	for id := uint16(1); id <= 5; id++ {
		r.Send(pubPacket("rm/x", "q2", 2, id))
		r.Expect(codec.PUBREC, 2*time.Second)
		r.Send(&codec.Packet{Type: codec.PUBREL, Ack: codec.Ack{Type: codec.PUBREL, PacketID: id}})
		comp := r.Expect(codec.PUBCOMP, 2*time.Second).Ack
		testutil.Equal(t, comp.ReasonCode, codec.Success, "PUBCOMP reason")
	}
	// Two open at once is within the maximum.
	r.Send(pubPacket("rm/x", "q2", 2, 6))
	r.Expect(codec.PUBREC, 2*time.Second)
	r.Send(pubPacket("rm/x", "q2", 2, 7))
	r.Expect(codec.PUBREC, 2*time.Second)
}

// bigPublish returns a QoS 1 PUBLISH whose encoded size at level v is
// exactly size bytes.
func bigPublish(t *testing.T, v byte, topic string, size int) *codec.Packet {
	t.Helper()
	p := pubPacket(topic, "", 1, 1)
	n := size - p.Publish.Size(v)
	for range 3 { // the remaining length may take one more byte
		p.Publish.Payload = make([]byte, n)
		if d := p.Publish.Size(v) - size; d != 0 {
			n -= d
			continue
		}
		return p
	}
	t.Fatalf("BUG: cannot make a PUBLISH of %d bytes", size)
	return nil
}

// MQTT-3.2.2-15 and 4.13: a packet larger than the Maximum Packet Size the
// server announced is a Protocol Error; the server sends DISCONNECT 0x95
// (Packet too large) and closes. A packet of exactly that size is accepted.
func TestMaxPacketSizeInbound5(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxPacketSize: 256})
	addr := srv.Addr().String()
	r := testutil.DialRaw(t, addr)
	ack := r.Connect(raw5("mps5", 30))
	testutil.Equal(t, ack.Props.MaximumPacketSize, uint32(256), "Maximum Packet Size")
	r.Send(bigPublish(t, codec.Version5, "mps/x", 256))
	r.Expect(codec.PUBACK, 2*time.Second)
	r.Send(bigPublish(t, codec.Version5, "mps/x", 257))
	r.ExpectDisconnect(codec.PacketTooLarge, 2*time.Second)

	r = testutil.DialRaw(t, addr)
	r.Connect(raw5("mps5b", 30))
	r.Send(bigPublish(t, codec.Version5, "mps/x", 1000))
	r.ExpectDisconnect(codec.PacketTooLarge, 2*time.Second)
}

// 3.1.1 has neither Maximum Packet Size nor a server DISCONNECT: a packet
// over the server's own limit can only close the connection (3.1.1 section
// 4.8); one within it is processed as usual.
func TestMaxPacketSizeInbound311(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxPacketSize: 256})
	r := testutil.DialRaw(t, srv.Addr().String())
	r.Connect(raw311("mps311", 30))
	r.Send(bigPublish(t, codec.Version311, "mps/x", 256))
	r.Expect(codec.PUBACK, 2*time.Second)
	r.Send(bigPublish(t, codec.Version311, "mps/x", 1000))
	r.ExpectClosed(2 * time.Second)
}

// MQTT-3.1.2-24, MQTT-3.1.2-25: the server does not send a packet larger
// than the client's Maximum Packet Size; it discards it and behaves as if
// it had completed sending it, so with a Receive Maximum of 1 the next QoS 1
// message is not held behind it.
func TestMaxPacketSizeOutbound(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	maxSize, recvMax := uint32(100), uint16(1)
	cp := v5("mps-out", true, 0)
	cp.Properties = &paho.ConnectProperties{MaximumPacketSize: &maxSize, ReceiveMaximum: &recvMax}
	sub := testutil.ConnectV5(t, addr, cp)
	subscribe(t, sub, paho.SubscribeOptions{Topic: "big/#", QoS: 1})

	// Both PUBLISHes in one segment, so that the small one is routed while
	// the large one may still be in the subscriber's window.
	r := testutil.DialRaw(t, addr)
	r.Connect(raw5("mps-out-pub", 30))
	b := r.Encode(pubPacket("big/x", strings.Repeat("x", 500), 1, 1))
	b = append(b, r.Encode(pubPacket("big/x", "small", 1, 2))...)
	r.Write(b)
	r.Expect(codec.PUBACK, 2*time.Second)
	r.Expect(codec.PUBACK, 2*time.Second)

	m := sub.Recv(t)
	testutil.Equal(t, string(m.Payload), "small", "payload (the 500-byte message must be dropped)")
	sub.NoMsg(t, 200*time.Millisecond)
}

// MQTT-3.1.2-25 with topic aliases: a discarded PUBLISH counts as sent for
// the Application Message only; it must not leave behind a topic alias the
// client never learnt. A later PUBLISH on the topic must carry the topic name
// (or an alias the client was given together with the name), else the client
// sees an unknown Topic Alias, a Protocol Error (3.3.2.3.4).
func TestMaxPacketSizeOutboundTopicAlias(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := testutil.DialRaw(t, addr)
	c := raw5("alias-sub", 30)
	c.Props.SetMaximumPacketSize(100)
	c.Props.SetTopicAliasMaximum(5)
	sub.Connect(c)
	sub.Send(subPacket("alias/t", 0, 1))
	sub.Expect(codec.SUBACK, 2*time.Second)

	pub := testutil.ConnectV5(t, addr, v5("alias-pub", true, 0))
	publish(t, pub, "alias/t", strings.Repeat("x", 500), 0)
	publish(t, pub, "alias/t", "small", 0)
	p := sub.Expect(codec.PUBLISH, 2*time.Second).Publish
	testutil.Equal(t, string(p.Payload), "small", "payload (the 500-byte message must be dropped)")
	if len(p.Topic) == 0 {
		t.Fatalf("first PUBLISH the client receives has no topic name, only Topic Alias %d it never learnt", p.Props.TopicAlias)
	}
	testutil.Equal(t, string(p.Topic), "alias/t", "topic")
}

// MQTT-3.1.0-2: a second CONNECT is a Protocol Error: a 5.0 client gets
// DISCONNECT 0x82 and the connection closes; a 3.1.1 client's connection
// closes.
func TestSecondConnect(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	r := testutil.DialRaw(t, addr)
	r.Connect(raw5("twice5", 30))
	r.Send(&codec.Packet{Type: codec.CONNECT, Connect: *raw5("twice5", 30)})
	r.ExpectDisconnect(codec.ProtocolError, 2*time.Second)

	r = testutil.DialRaw(t, addr)
	r.Connect(raw311("twice311", 30))
	r.Send(&codec.Packet{Type: codec.CONNECT, Connect: *raw311("twice311", 30)})
	r.ExpectClosed(2 * time.Second)
}

// MQTT-3.1.0-1: the first packet must be CONNECT; anything else closes the
// connection, with no DISCONNECT before a CONNACK (MQTT-3.14.0-1).
func TestFirstPacketNotConnect(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(p *codec.Packet) {
		t.Helper()
		r := testutil.DialRaw(t, addr)
		r.Dec.Version = codec.Version5
		r.Send(p)
		r.ExpectClosed(2 * time.Second)
	}
	f(&codec.Packet{Type: codec.PINGREQ})
	f(pubPacket("first/x", "no connect", 0, 0))
	f(pubPacket("first/x", "no connect", 1, 1))
	f(subPacket("first/#", 0, 1))
	f(&codec.Packet{Type: codec.DISCONNECT})
}

// 3.1.4 (server behaviour, item 1): a socket that sends no CONNECT within a
// reasonable time is closed; here ConnectTimeout is 500 ms. A partial CONNECT
// does not count as one.
func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{ConnectTimeout: 500 * time.Millisecond})
	addr := srv.Addr().String()
	f := func(prefix []byte) {
		t.Helper()
		r := testutil.DialRaw(t, addr)
		start := time.Now()
		if len(prefix) > 0 {
			r.Write(prefix)
		}
		r.ExpectClosed(1500 * time.Millisecond)
		if d := time.Since(start); d < 450*time.Millisecond {
			t.Fatalf("closed after %v, before the 500 ms CONNECT timeout", d)
		}
	}
	f(nil)
	full, err := raw5("slow", 30).Append(nil)
	testutil.Require(t, err, "encode CONNECT")
	f(full[:len(full)/2])
}

// Shutdown (3.14.2.1, reason 0x8B): Stop sends every 5.0 client DISCONNECT
// 0x8B (Server shutting down) before closing; 3.1.1 connections just close.
func TestStopSendsServerShuttingDown(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	c := testutil.ConnectV5(t, addr, v5("stop-paho", true, 0))
	r5 := testutil.DialRaw(t, addr)
	r5.Connect(raw5("stop-raw5", 30))
	r311 := testutil.DialRaw(t, addr)
	r311.Connect(raw311("stop-raw311", 30))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	testutil.Require(t, srv.Stop(ctx), "stop")
	r5.ExpectDisconnect(codec.ServerShuttingDown, 2*time.Second)
	r311.ExpectClosed(2 * time.Second)
	expectServerDisconnect(t, c, codec.ServerShuttingDown)
}
