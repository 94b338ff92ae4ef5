package engine_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// recvTopic returns the next message on topic, skipping others.
func recvTopic(t *testing.T, c *testutil.V5, topic string) *paho.Publish {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-c.Msgs:
			if m.Topic == topic {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on %s", topic)
		}
	}
}

func TestSysTopics(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{SysInterval: 100 * time.Millisecond, BrokerVersion: "tern test"})
	addr := srv.Addr().String()
	// "#" does not match topics starting with '$' (MQTT-4.7.2-1).
	all := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "all", CleanStart: true})
	_, err := all.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "#"}, {Topic: "+/broker/#"}}})
	testutil.Require(t, err, "subscribe #")

	time.Sleep(150 * time.Millisecond) // a round published before the $SYS subscriber comes
	sys := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "sys", CleanStart: true})
	_, err = sys.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$SYS/#"}}})
	testutil.Require(t, err, "subscribe $SYS/#")
	// Retained: the current values arrive on subscribing.
	v := recvTopic(t, sys, "$SYS/broker/version")
	testutil.Equal(t, string(v.Payload), "tern test", "version")
	testutil.Equal(t, v.Retain, true, "retained")
	m := recvTopic(t, sys, "$SYS/broker/uptime")
	if !strings.HasSuffix(string(m.Payload), " seconds") {
		t.Errorf("uptime %q", m.Payload)
	}
	// Live: the client count follows connections.
	testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "third", CleanStart: true})
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := recvTopic(t, sys, "$SYS/broker/clients/connected")
		if n, _ := strconv.Atoi(string(m.Payload)); n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("clients/connected never said 3")
		}
	}
	// Readable through the admin API, but not counted as clients' retained
	// messages.
	for _, topic := range []string{"$SYS/broker/messages/received", "$SYS/broker/bytes/received",
		"$SYS/broker/subscriptions/count", "$SYS/broker/retained messages/count", "$SYS/broker/clients/total"} {
		_, err := srv.RetainedMessage(topic)
		testutil.Require(t, err, "admin read of "+topic)
	}
	all.NoMsg(t, 300*time.Millisecond)
	testutil.Equal(t, srv.Snapshot().Retained, 0, "$SYS values are not counted as retained messages")
}

func TestClientsCannotPublishSys(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{SysInterval: -1})
	addr := srv.Addr().String()
	sub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
	_, err := sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$SYS/#"}}})
	testutil.Require(t, err, "subscribe")
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	res, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "$SYS/broker/version", QoS: 1, Payload: []byte("fake")})
	if err == nil || res == nil {
		t.Fatalf("publish to $SYS: err %v, res %v", err, res)
	}
	testutil.Equal(t, res.ReasonCode, byte(codec.NotAuthorized), "PUBACK reason")
	sub.NoMsg(t, 200*time.Millisecond)
	// A will under $SYS is refused at CONNECT.
	_, ack, err := testutil.DialV5(addr, &paho.Connect{ClientID: "w", CleanStart: true,
		WillMessage: &paho.WillMessage{Topic: "$SYS/x", Payload: []byte("x")}, WillProperties: &paho.WillProperties{}})
	if err == nil || ack == nil || ack.ReasonCode != byte(codec.NotAuthorized) {
		t.Fatalf("will under $SYS: err %v, connack %+v", err, ack)
	}
}
