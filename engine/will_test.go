package engine_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// Will message tests. The client that leaves a will is a raw client where
// the test needs an abnormal close (the socket just closed) or properties a
// library does not send; subscribers are paho clients.

// withWill returns c with a will on topic.
func withWill(c *codec.Connect, topic, payload string, qos byte, retain bool) *codec.Connect {
	c.Will, c.WillTopic, c.WillPayload, c.WillQoS, c.WillRetain = true, []byte(topic), []byte(payload), qos, retain
	return c
}

// persistent5 is a raw 5.0 CONNECT with a Session Expiry Interval.
func persistent5(id string, clean bool, expiry uint32) *codec.Connect {
	c := raw5(id, 30)
	c.CleanStart = clean
	c.Props.SetSessionExpiry(expiry)
	return c
}

// watch connects a 5.0 subscriber to filter at QoS 2 with Retain As
// Published, so that the RETAIN flag of a will shows.
func watch(t *testing.T, addr, id, filter string) *testutil.V5 {
	t.Helper()
	sub := testutil.ConnectV5(t, addr, v5(id, true, 0))
	subscribe(t, sub, paho.SubscribeOptions{Topic: filter, QoS: 2, RetainAsPublished: true})
	return sub
}

// MQTT-3.1.2-8: the will is published after the network connection closes
// without a DISCONNECT, not before; MQTT-3.1.2-12 and -14: at its Will QoS,
// not retained. Its properties are forwarded: Content Type (MQTT-3.3.2-20),
// Payload Format Indicator (MQTT-3.3.2-4), Response Topic and Correlation
// Data (MQTT-3.3.2-16), and the User Properties unaltered and in order
// (MQTT-3.1.3-10, MQTT-3.3.2-17, -18).
func TestWillOnAbnormalClose5(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wa-sub", "will/#")

	r := testutil.DialRaw(t, addr)
	c := withWill(raw5("wa", 30), "will/a", "gone", 1, false)
	c.WillProps.SetContentType([]byte("text/plain"))
	c.WillProps.SetPayloadFormat(1)
	c.WillProps.SetResponseTopic([]byte("will/reply"))
	c.WillProps.SetCorrelationData([]byte{1, 2, 3})
	c.WillProps.AddUser([]byte("k"), []byte("v1"))
	c.WillProps.AddUser([]byte("a"), []byte("b"))
	c.WillProps.AddUser([]byte("k"), []byte("v2"))
	r.Connect(c)
	sub.NoMsg(t, 200*time.Millisecond) // not while the connection is open
	r.Close()

	m := sub.Recv(t)
	testutil.Equal(t, m.Topic, "will/a", "topic")
	testutil.Equal(t, string(m.Payload), "gone", "payload")
	testutil.Equal(t, m.QoS, byte(1), "QoS")
	testutil.Equal(t, m.Retain, false, "RETAIN")
	p := m.Properties
	if p == nil {
		t.Fatal("will forwarded without properties")
	}
	testutil.Equal(t, p.ContentType, "text/plain", "Content Type")
	if p.PayloadFormat == nil || *p.PayloadFormat != 1 {
		t.Fatalf("Payload Format Indicator: got %v, want 1", p.PayloadFormat)
	}
	testutil.Equal(t, p.ResponseTopic, "will/reply", "Response Topic")
	if !bytes.Equal(p.CorrelationData, []byte{1, 2, 3}) {
		t.Fatalf("Correlation Data: got %v, want [1 2 3]", p.CorrelationData)
	}
	want := paho.UserProperties{{Key: "k", Value: "v1"}, {Key: "a", Value: "b"}, {Key: "k", Value: "v2"}}
	testutil.Equal(t, len(p.User), len(want), "number of User Properties")
	for i := range want {
		testutil.Equal(t, p.User[i], want[i], "User Property in order")
	}
	sub.NoMsg(t, 200*time.Millisecond) // published once (MQTT-3.1.2-10)
}

// MQTT-3.1.2-8 (3.1.1): a 3.1.1 will is published when the connection
// closes without DISCONNECT, at its Will QoS.
func TestWillOnAbnormalClose311(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	got := make(chan mqtt.Message, 10)
	sub, _ := connect311(t, addr, "wa311-sub", true, got)
	waitToken(t, sub.Subscribe("will311/#", 2, nil), "subscribe")

	r := testutil.DialRaw(t, addr)
	r.Connect(withWill(raw311("wa311", 30), "will311/a", "gone 3.1.1", 2, false))
	r.Close()
	m := recv311(t, got)
	testutil.Equal(t, m.Topic(), "will311/a", "topic")
	testutil.Equal(t, string(m.Payload()), "gone 3.1.1", "payload")
	testutil.Equal(t, m.Qos(), byte(2), "QoS")
}

// MQTT-3.1.2-15: a will with Will Retain 1 is published as a retained
// message: a subscriber with Retain As Published sees RETAIN 1
// (MQTT-3.3.1-13) and a later subscriber receives it as retained. MQTT-3.1.2-14:
// with Will Retain 0 nothing is retained.
func TestWillRetained(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(topic string, retain bool) {
		t.Helper()
		sub := watch(t, addr, topic+"-sub", topic)
		r := testutil.DialRaw(t, addr)
		r.Connect(withWill(raw5(topic+"-client", 30), topic, "last words", 1, retain))
		r.Close()
		m := sub.Recv(t)
		testutil.Equal(t, m.Retain, retain, "RETAIN as published")

		late := testutil.ConnectV5(t, addr, v5(topic+"-late", true, 0))
		subscribe(t, late, paho.SubscribeOptions{Topic: topic, QoS: 1})
		if !retain {
			late.NoMsg(t, 300*time.Millisecond)
			return
		}
		m = recvPayload(t, late, "last words")
		testutil.Equal(t, m.Retain, true, "RETAIN of a retained message sent on subscribe")
		testutil.Equal(t, m.QoS, byte(1), "QoS")
	}
	f("wr/retained", true)
	f("wr/plain", false)
}

// MQTT-3.14.4-3, MQTT-3.1.2-10: a DISCONNECT with reason 0x00 discards the
// will without publishing it, for 5.0 and (MQTT-3.1.2-10 (3.1.1)) 3.1.1.
func TestWillNotPublishedAfterDisconnect(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wn-sub", "wn/#")

	cp := v5("wn5", true, 0)
	cp.WillMessage = &paho.WillMessage{Topic: "wn/5", Payload: []byte("must not appear"), QoS: 1}
	c := testutil.ConnectV5(t, addr, cp)
	disconnect(t, c)

	c311, _ := connect311(t, addr, "wn311", true, nil, func(o *mqtt.ClientOptions) {
		o.SetWill("wn/311", "must not appear", 1, false)
	})
	c311.Disconnect(100)

	r := testutil.DialRaw(t, addr)
	r.Connect(withWill(raw5("wn-raw", 30), "wn/raw", "must not appear", 1, false))
	r.Send(&codec.Packet{Type: codec.DISCONNECT, Disconnect: codec.Disconnect{ReasonCode: codec.NormalDisconnection}})
	r.ExpectClosed(2 * time.Second)

	sub.NoMsg(t, 500*time.Millisecond)
}

// 3.14.2.1: DISCONNECT with reason 0x04 (Disconnect with Will Message) ends
// the connection and still publishes the will.
func TestWillPublishedAfterDisconnectWithWill(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "ww-sub", "ww/#")
	cp := v5("ww", true, 0)
	cp.WillMessage = &paho.WillMessage{Topic: "ww/a", Payload: []byte("asked for"), QoS: 1}
	c := testutil.ConnectV5(t, addr, cp)
	testutil.Require(t, c.Disconnect(&paho.Disconnect{ReasonCode: byte(codec.DisconnectWithWill)}), "disconnect with will")
	m := recvPayload(t, sub, "asked for")
	testutil.Equal(t, m.Topic, "ww/a", "topic")
}

// MQTT-3.1.2-8: with a Will Delay Interval the will is published when the
// delay has passed after the close (here 1 s: not at 0.5 s, by 2 s).
func TestWillDelay(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wd-sub", "wd/#")
	r := testutil.DialRaw(t, addr)
	c := withWill(persistent5("wd", true, 10), "wd/a", "delayed", 1, false)
	c.WillProps.SetWillDelay(1)
	r.Connect(c)
	r.Close()
	start := time.Now()
	sub.NoMsg(t, 500*time.Millisecond)
	recvPayload(t, sub, "delayed")
	if d := time.Since(start); d < 900*time.Millisecond || d > 2*time.Second {
		t.Fatalf("will published %v after the close, want about 1 s", d)
	}
}

// MQTT-3.1.3-9: a new connection to the session before the Will Delay
// Interval has passed cancels the will.
func TestWillDelayCancelledByReconnect(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wdc-sub", "wdc/#")
	r := testutil.DialRaw(t, addr)
	c := withWill(persistent5("wdc", true, 10), "wdc/a", "must not appear", 1, false)
	c.WillProps.SetWillDelay(1)
	r.Connect(c)
	r.Close()
	time.Sleep(300 * time.Millisecond)

	again := testutil.DialRaw(t, addr)
	ack := again.Connect(persistent5("wdc", false, 10))
	testutil.Equal(t, ack.SessionPresent, true, "session present")
	sub.NoMsg(t, 1500*time.Millisecond)
}

// MQTT-3.1.2-8: the will is published when the Will Delay Interval passes or
// the session ends, whichever is first: a session that expires after 1 s
// publishes a will delayed by 10 s then.
func TestWillDelayLongerThanSession(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wds-sub", "wds/#")
	r := testutil.DialRaw(t, addr)
	c := withWill(persistent5("wds", true, 1), "wds/a", "session ended", 1, false)
	c.WillProps.SetWillDelay(10)
	r.Connect(c)
	r.Close()
	start := time.Now()
	recvPayload(t, sub, "session ended")
	if d := time.Since(start); d < 800*time.Millisecond || d > 3*time.Second {
		t.Fatalf("will published %v after the close, want about 1 s (the session expiry)", d)
	}
}

// MQTT-3.1.2-8: with a Session Expiry Interval of 0 the session ends with
// the connection, so a delayed will is published at once.
func TestWillDelayWithoutSession(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wd0-sub", "wd0/#")
	r := testutil.DialRaw(t, addr)
	c := withWill(raw5("wd0", 30), "wd0/a", "no session to wait in", 1, false)
	c.WillProps.SetWillDelay(10)
	r.Connect(c)
	r.Close()
	start := time.Now()
	recvPayload(t, sub, "no session to wait in")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("will published %v after the close, want at once", d)
	}
}

// MQTT-3.1.2-8, MQTT-3.1.2-4: reconnecting with Clean Start 1 within the
// Will Delay Interval ends the old session, which publishes its will then.
func TestWillDelayCleanStartEndsSession(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wdx-sub", "wdx/#")
	r := testutil.DialRaw(t, addr)
	c := withWill(persistent5("wdx", true, 60), "wdx/a", "old session ended", 1, false)
	c.WillProps.SetWillDelay(60)
	r.Connect(c)
	r.Close()
	sub.NoMsg(t, 200*time.Millisecond) // delayed

	again := testutil.DialRaw(t, addr)
	ack := again.Connect(persistent5("wdx", true, 60))
	testutil.Equal(t, ack.SessionPresent, false, "session present with Clean Start 1")
	recvPayload(t, sub, "old session ended")
}

// MQTT-3.1.4-3 with MQTT-3.1.2-8 (3.1.3.2.2): when a connection is taken
// over, its will is published unless the new connection has Clean Start 0
// and the will has a Will Delay Interval (MQTT-3.1.3-9).
func TestWillOnSessionTakeover(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(id string, delay uint32, published bool) {
		t.Helper()
		sub := watch(t, addr, id+"-sub", id+"/#")
		old := testutil.DialRaw(t, addr)
		c := withWill(persistent5(id, true, 60), id+"/a", "taken over", 1, false)
		if delay > 0 {
			c.WillProps.SetWillDelay(delay)
		}
		old.Connect(c)
		cur := testutil.DialRaw(t, addr)
		cur.Connect(persistent5(id, false, 60))
		old.ExpectDisconnect(codec.SessionTakenOver, 2*time.Second)
		if published {
			recvPayload(t, sub, "taken over")
		} else {
			sub.NoMsg(t, time.Duration(delay)*time.Second+500*time.Millisecond)
		}
	}
	f("wto", 0, true)
	f("wtd", 1, false)
}

// 3.1.3.2.4: the will's Message Expiry Interval is its lifetime from when
// the server publishes it (it "is sent as the Publication Expiry Interval
// when the Server publishes the Will Message"), not from the CONNECT. A
// connection that lived longer than the interval still leaves a will.
func TestWillMessageExpiryFromPublication(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wme-sub", "wme/#")
	r := testutil.DialRaw(t, addr)
	c := withWill(raw5("wme", 0), "wme/a", "expires later", 1, false)
	c.WillProps.SetMessageExpiry(1)
	r.Connect(c)
	time.Sleep(1500 * time.Millisecond)
	r.Close()
	var m *paho.Publish
	select {
	case m = <-sub.Msgs:
	case <-time.After(2 * time.Second):
		t.Fatal("no will within 2 s of the close: was its Message Expiry Interval counted from the CONNECT?")
	}
	testutil.Equal(t, string(m.Payload), "expires later", "payload")
	if m.Properties == nil || m.Properties.MessageExpiry == nil {
		t.Fatal("will forwarded without its Message Expiry Interval")
	}
	testutil.Equal(t, *m.Properties.MessageExpiry, uint32(1), "Message Expiry Interval")
}

// MQTT-3.1.2-22 with MQTT-3.1.2-8: a keep-alive timeout closes the connection
// as if the network had failed, so the will is published.
func TestWillOnKeepAliveTimeout(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	sub := watch(t, addr, "wk-sub", "wk/#")
	r := testutil.DialRaw(t, addr)
	r.Connect(withWill(raw5("wk", 1), "wk/a", "timed out", 1, false))
	r.ExpectDisconnect(codec.KeepAliveTimeout, 3*time.Second)
	recvPayload(t, sub, "timed out")
}
