package engine_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

func TestSmokeV5PubSubEveryQoS(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
	pub := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	_, err := sub.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "a/+", QoS: 2}}})
	testutil.Require(t, err, "subscribe")
	for qos := byte(0); qos <= 2; qos++ {
		_, err := pub.Publish(testutil.Ctx(t), &paho.Publish{Topic: "a/b", QoS: qos, Payload: []byte{'0' + qos}})
		testutil.Require(t, err, "publish")
		m := sub.Recv(t)
		testutil.Equal(t, string(m.Payload), string([]byte{'0' + qos}), "payload")
		testutil.Equal(t, m.QoS, qos, "qos")
		testutil.Equal(t, m.Topic, "a/b", "topic")
	}
}

func TestSmoke311PubSub(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := "tcp://" + srv.Addr().String()
	got := make(chan mqtt.Message, 10)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(addr).SetClientID("s311").SetProtocolVersion(4))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("x/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(addr).SetClientID("p311").SetProtocolVersion(4))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	if tok := pub.Publish("x/y/z", 1, false, "hi"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		testutil.Equal(t, string(m.Payload()), "hi", "payload")
		testutil.Equal(t, m.Qos(), byte(1), "qos")
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
}
