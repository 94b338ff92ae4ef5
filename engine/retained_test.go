package engine_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// retainedOn connects a new 5.0 client, subscribes it to filter at QoS 2
// (edit, if not nil, changes the subscription) and returns the messages it
// gets until none comes for 300 ms, sorted by topic.
func retainedOn(t *testing.T, addr, clientID, filter string, edit func(*codec.Subscription)) []*codec.Publish {
	t.Helper()
	c, _ := connectWire(t, addr, codec.Version5, clientID, nil)
	s := subscription(filter, 2)
	if edit != nil {
		edit(&s)
	}
	c.subscribe(1, 0, s)
	var got []*codec.Publish
	for {
		p, err := c.next(300 * time.Millisecond)
		if err != nil {
			break
		}
		switch {
		case p.Type == codec.PUBREL:
			c.ack(codec.PUBCOMP, p.Ack.PacketID)
			continue
		case p.Type != codec.PUBLISH:
			t.Fatalf("unexpected %v%s", p.Type, describe(p))
		}
		m := &p.Publish
		switch m.QoS {
		case 1:
			c.ack(codec.PUBACK, m.PacketID)
		case 2:
			c.ack(codec.PUBREC, m.PacketID)
		}
		got = append(got, m)
	}
	slices.SortFunc(got, func(a, b *codec.Publish) int { return strings.Compare(string(a.Topic), string(b.Topic)) })
	return got
}

func topicsOf(ms []*codec.Publish) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", m.Topic, m.Payload)
	}
	return b.String()
}

// TestRetainedStoreReplaceClear: a retained PUBLISH replaces the topic's
// retained message (MQTT-3.3.1-5), a non-retained one leaves it alone
// (MQTT-3.3.1-8), and a retained one with an empty payload is delivered as
// usual but removes it, and is itself not stored (MQTT-3.3.1-6,
// MQTT-3.3.1-7).
func TestRetainedStoreReplaceClear(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub, _ := connectWire(t, addr, codec.Version5, "ret-pub", nil)
	pub.publish("rt/a", 1, 1, true, "v1")
	pub.expectAck(codec.PUBACK, 1)
	pub.publish("rt/a", 1, 2, true, "v2")
	pub.expectAck(codec.PUBACK, 2)
	pub.publish("rt/a", 1, 3, false, "v3")
	pub.expectAck(codec.PUBACK, 3)

	got := retainedOn(t, addr, "ret-1", "rt/a", nil)
	testutil.Equal(t, topicsOf(got), "rt/a=v2", "retained after replace and a non-retained publish")
	testutil.Equal(t, got[0].Retain, true, "RETAIN of a retained message sent on subscribe") // 3.3.1.3
	testutil.Equal(t, got[0].QoS, byte(1), "QoS of the retained message")

	live, _ := connectWire(t, addr, codec.Version5, "ret-live", nil)
	live.subscribe(1, 0, subscription("rt/a", 0))
	live.expect(codec.PUBLISH) // v2, retained
	pub.publish("rt/a", 1, 4, true, "")
	pub.expectAck(codec.PUBACK, 4)
	m := live.expectPublish()
	testutil.Equal(t, len(m.Payload), 0, "payload of the clearing message") // processed normally (MQTT-3.3.1-6)

	testutil.Equal(t, topicsOf(retainedOn(t, addr, "ret-2", "rt/a", nil)), "", "retained after clearing")
	testutil.Equal(t, topicsOf(retainedOn(t, addr, "ret-3", "rt/#", nil)), "", "retained after clearing, by wildcard")
}

// TestRetainedOnSubscribeByWildcards: a new subscription gets the retained
// messages of every topic its filter matches, '+' and '#' included, with
// RETAIN set (3.3.1.3; 3.1.1 MQTT-3.3.1-8) at the lower of the message's and
// the subscription's QoS (MQTT-3.8.4-8).
func TestRetainedOnSubscribeByWildcards(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub, _ := connectWire(t, addr, codec.Version5, "rw-pub", nil)
	for i, m := range []struct {
		topic string
		qos   byte
	}{{"rw/a/b", 1}, {"rw/a/c", 0}, {"rw/x", 2}, {"other/x", 1}, {"rw", 1}} {
		id := uint16(i + 1)
		pub.publish(m.topic, m.qos, id, true, fmt.Sprint(m.qos))
		switch m.qos {
		case 1:
			pub.expectAck(codec.PUBACK, id)
		case 2:
			pub.expectAck(codec.PUBREC, id)
			pub.ack(codec.PUBREL, id)
			pub.expectAck(codec.PUBCOMP, id)
		}
	}
	pub.ping()

	f := func(filter string, subQoS byte, want string) {
		t.Helper()
		got := retainedOn(t, addr, "rw-"+strings.NewReplacer("/", "_", "+", "p", "#", "h").Replace(filter), filter,
			func(s *codec.Subscription) { s.QoS = subQoS })
		testutil.Equal(t, topicsOf(got), want, "retained messages for "+filter)
		for _, m := range got {
			testutil.Equal(t, m.Retain, true, "RETAIN of "+string(m.Topic))
			testutil.Equal(t, m.QoS, min(subQoS, m.Payload[0]-'0'), "QoS of "+string(m.Topic))
		}
	}
	f("rw/+/b", 2, "rw/a/b=1")
	f("rw/#", 1, "rw=1 rw/a/b=1 rw/a/c=0 rw/x=2") // '#' includes the parent level (4.7.1.2)
	f("+/x", 2, "other/x=1 rw/x=2")
	f("+/+/+", 0, "rw/a/b=1 rw/a/c=0")
	f("#", 2, "other/x=1 rw=1 rw/a/b=1 rw/a/c=0 rw/x=2")
	f("rw/x", 1, "rw/x=2")
	f("rw/none/#", 2, "")
}

// TestDollarTopicsNotMatchedByWildcards: filters starting with a wildcard do
// not match topics starting with '$', neither for retained messages nor for
// live ones (MQTT-4.7.2-1); a filter starting with the "$" level does. ($app/ itself is the
// broker's: see sys_test.go.)
func TestDollarTopicsNotMatchedByWildcards(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{SysInterval: -1})
	addr := srv.Addr().String()
	pub, _ := connectWire(t, addr, codec.Version5, "dollar-pub", nil)
	pub.publish("$app/x", 1, 1, true, "sys")
	pub.expectAck(codec.PUBACK, 1)
	pub.publish("$other", 1, 2, true, "other")
	pub.expectAck(codec.PUBACK, 2)
	pub.publish("plain/x", 1, 3, true, "plain")
	pub.expectAck(codec.PUBACK, 3)

	testutil.Equal(t, topicsOf(retainedOn(t, addr, "dollar-1", "#", nil)), "plain/x=plain", "retained for #")
	testutil.Equal(t, topicsOf(retainedOn(t, addr, "dollar-2", "+/x", nil)), "plain/x=plain", "retained for +/x")
	testutil.Equal(t, topicsOf(retainedOn(t, addr, "dollar-3", "+", nil)), "", "retained for +")
	testutil.Equal(t, topicsOf(retainedOn(t, addr, "dollar-4", "$app/#", nil)), "$app/x=sys", "retained for $app/#")
	testutil.Equal(t, topicsOf(retainedOn(t, addr, "dollar-5", "$app/+", nil)), "$app/x=sys", "retained for $app/+")

	wild, _ := connectWire(t, addr, codec.Version5, "dollar-wild", nil)
	wild.subscribe(1, 0, codec.Subscription{Filter: []byte("#"), RetainHandling: 2}, codec.Subscription{Filter: []byte("+/live"), RetainHandling: 2})
	sys, _ := connectWire(t, addr, codec.Version5, "dollar-app", nil)
	sys.subscribe(1, 0, codec.Subscription{Filter: []byte("$app/+"), RetainHandling: 2})
	pub.publish("$app/live", 0, 0, false, "live")
	pub.publish("plain/live", 0, 0, false, "plain")
	testutil.Equal(t, string(sys.expectPublish().Topic), "$app/live", "topic for $app/+")
	testutil.Equal(t, string(wild.expectPublish().Topic), "plain/live", "first topic for # and +/live")
	wild.expectNone(200 * time.Millisecond)
}

// TestRetainedMessageExpiry: a retained message whose Message Expiry
// Interval passed is not sent to new subscribers (MQTT-3.3.2-5); one still
// alive is sent with the interval lowered by the time it was retained
// (MQTT-3.3.2-6).
func TestRetainedMessageExpiry(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub, _ := connectWire(t, addr, codec.Version5, "rexp-pub", nil)
	for i, m := range []struct {
		topic  string
		expiry uint32
	}{{"re/short", 1}, {"re/long", 60}} {
		p := publishPacket(m.topic, 1, uint16(i+1), true, m.topic)
		p.Publish.Props.SetMessageExpiry(m.expiry)
		pub.send(p)
		pub.expectAck(codec.PUBACK, uint16(i+1))
	}
	fresh := retainedOn(t, addr, "rexp-0", "re/#", nil)
	testutil.Equal(t, topicsOf(fresh), "re/long=re/long re/short=re/short", "retained messages before expiry")

	time.Sleep(2 * time.Second)
	got := retainedOn(t, addr, "rexp-1", "re/#", nil)
	testutil.Equal(t, topicsOf(got), "re/long=re/long", "retained messages after 2 s")
	if !got[0].Props.Has(codec.PropMessageExpiry) || got[0].Props.MessageExpiry > 58 || got[0].Props.MessageExpiry == 0 {
		t.Fatalf("re/long: message expiry %d (present %v) after 2 s, want 1..58",
			got[0].Props.MessageExpiry, got[0].Props.Has(codec.PropMessageExpiry))
	}
}

// TestRetainHandling: 0 sends the retained messages on every SUBSCRIBE
// (MQTT-3.3.1-9, MQTT-3.8.4-4), 1 only when the subscription is new
// (MQTT-3.3.1-10), 2 never (MQTT-3.3.1-11).
func TestRetainHandling(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	pub, _ := connectWire(t, addr, codec.Version5, "rh-pub", nil)
	pub.publish("rh/t", 1, 1, true, "kept")
	pub.expectAck(codec.PUBACK, 1)

	c, _ := connectWire(t, addr, codec.Version5, "rh", nil)
	id := uint16(0)
	f := func(filter string, handling byte, want bool) {
		t.Helper()
		id++
		c.subscribe(id, 0, codec.Subscription{Filter: []byte(filter), RetainHandling: handling})
		if !want {
			c.expectNone(250 * time.Millisecond)
			return
		}
		m := c.expectPublish()
		testutil.Equal(t, string(m.Topic)+" "+string(m.Payload), "rh/t kept", "retained message")
		testutil.Equal(t, m.Retain, true, "RETAIN")
		c.expectNone(100 * time.Millisecond)
	}
	f("rh/t", 0, true)
	f("rh/t", 0, true) // existing subscription, handling 0: sent again
	f("rh/#", 1, true) // new subscription
	f("rh/#", 1, false)
	f("rh/+", 2, false)
	f("rh/+", 0, true)
}

// TestRetainAsPublished: on live delivery RETAIN is cleared unless the
// subscription has Retain As Published (MQTT-3.3.1-12), with which it is
// kept as published (MQTT-3.3.1-13).
func TestRetainAsPublished(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	plain, _ := connectWire(t, addr, codec.Version5, "rap-0", nil)
	plain.subscribe(1, 0, subscription("rap/t", 0))
	asPub, _ := connectWire(t, addr, codec.Version5, "rap-1", nil)
	s := subscription("rap/t", 0)
	s.RetainAsPublished = true
	asPub.subscribe(1, 0, s)
	pub, _ := connectWire(t, addr, codec.Version5, "rap-pub", nil)

	pub.publish("rap/t", 0, 0, true, "retained")
	pub.publish("rap/t", 0, 0, false, "plain")
	for _, want := range []struct {
		payload       string
		plain, asPubd bool
	}{{"retained", false, true}, {"plain", false, false}} {
		m := plain.expectPublish()
		testutil.Equal(t, string(m.Payload), want.payload, "payload")
		testutil.Equal(t, m.Retain, want.plain, "RETAIN without Retain As Published of "+want.payload)
		m = asPub.expectPublish()
		testutil.Equal(t, string(m.Payload), want.payload, "payload")
		testutil.Equal(t, m.Retain, want.asPubd, "RETAIN with Retain As Published of "+want.payload)
	}
}

// TestRetainFlag311: a 3.1.1 subscriber gets a retained message with RETAIN
// set when it subscribes (3.1.1 MQTT-3.3.1-8) and with RETAIN cleared when
// the message matches its established subscription (3.1.1 MQTT-3.3.1-9).
func TestRetainFlag311(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := "tcp://" + srv.Addr().String()
	connect := func(id string) mqtt.Client {
		t.Helper()
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(addr).SetClientID(id).SetProtocolVersion(4).SetAutoReconnect(false))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	wait := func(tok mqtt.Token, what string) {
		t.Helper()
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: %v", what, tok.Error())
		}
	}
	pub := connect("r311-pub")
	wait(pub.Publish("r311/t", 1, true, "first"), "publish")

	got := make(chan mqtt.Message, 10)
	sub := connect("r311-sub")
	wait(sub.Subscribe("r311/t", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }), "subscribe")
	recv := func() mqtt.Message {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message within 5 s")
			return nil
		}
	}
	m := recv()
	testutil.Equal(t, string(m.Payload()), "first", "payload")
	testutil.Equal(t, m.Retained(), true, "RETAIN of a message sent for a new subscription")

	wait(pub.Publish("r311/t", 1, true, "second"), "publish")
	m = recv()
	testutil.Equal(t, string(m.Payload()), "second", "payload")
	testutil.Equal(t, m.Retained(), false, "RETAIN of a message matching an established subscription")
}
