package conformance_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// Ports of the MQTT 3.1.1 tests of the Paho interoperability suite
// (interoperability/client_test.py), driven with paho.mqtt.golang, the raw
// client standing in where the Python test client does what a library will
// not (stay silent past its keep-alive, send a second CONNECT). Statement
// numbers in this file are those of MQTT 3.1.1. Helpers shared with the 5.0
// ports are here too.

// The data of the Paho suite (setData in client_test5.py, the globals of
// client_test.py).
var (
	topics            = [...]string{"TopicA", "TopicA/B", "Topic/C", "TopicA/C", "/TopicA"}
	wildtopics        = [...]string{"TopicA/+", "+/C", "#", "/#", "/+", "+/+", "TopicA/#"}
	nosubscribeTopics = [...]string{"test/nosubscribe"}
)

// The client identifiers of the suite's aclient and bclient.
const (
	clientA = "myclientid"
	clientB = "myclientid2"
)

// quiet is how long a test waits to conclude that nothing more is coming,
// where the Python suite sleeps a second or two.
const quiet = 300 * time.Millisecond

// start starts a broker with o for the test and returns it and its address.
// Every test has its own broker, which stands for the suite's cleanup() of
// client state and retained messages between tests.
func start(t *testing.T, o engine.Options) (*engine.Server, string) {
	t.Helper()
	srv := testutil.StartBroker(t, o)
	return srv, srv.Addr().String()
}

// settle waits until the broker has exactly n connections open. A client
// library closes its socket right after writing DISCONNECT, so a test that
// reconnects the same client id waits for the broker to have processed the
// DISCONNECT (the broker detaches the session before it counts the
// connection closed); otherwise the reconnection may race it and be a
// session takeover instead.
func settle(t testing.TB, srv *engine.Server, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Snapshot().Connections != n {
		if time.Now().After(deadline) {
			t.Fatalf("broker has %d connections, want %d", srv.Snapshot().Connections, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// client311 is a paho.mqtt.golang 3.1.1 client; every message it receives,
// subscribed in this connection or not, goes to msgs.
type client311 struct {
	mqtt.Client
	msgs chan mqtt.Message

	mu   sync.Mutex
	conn net.Conn // the client's socket, for terminate
}

// dial311 connects a 3.1.1 client as id with Clean Session clean and
// returns it with its CONNECT token, refused or not. configure changes the
// options before connecting. The client is disconnected when the test ends.
func dial311(t *testing.T, addr, id string, clean bool, configure ...func(*mqtt.ClientOptions)) (*client311, *mqtt.ConnectToken) {
	t.Helper()
	c := &client311{msgs: make(chan mqtt.Message, 1000)}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(clean).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second).SetKeepAlive(0). // the Python client's default
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { c.msgs <- m }).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
			c.mu.Lock()
			c.conn = nc
			c.mu.Unlock()
			return nc, err
		})
	for _, f := range configure {
		f(o)
	}
	c.Client = mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("connect %q: no CONNACK within 10s", id)
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(50)
		}
	})
	return c, tok.(*mqtt.ConnectToken)
}

// connect311 is dial311 for a connection that must succeed; it returns the
// client and the Session Present flag of the CONNACK.
func connect311(t *testing.T, addr, id string, clean bool, configure ...func(*mqtt.ClientOptions)) (*client311, bool) {
	t.Helper()
	c, tok := dial311(t, addr, id, clean, configure...)
	testutil.Require(t, tok.Error(), "connect "+id)
	return c, tok.SessionPresent()
}

func wait311(t *testing.T, tok mqtt.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(5 * time.Second) {
		t.Fatalf("%s: no answer within 5s", what)
	}
	testutil.Require(t, tok.Error(), what)
}

// subscribe subscribes to filter at qos and returns the SUBACK return code.
func (c *client311) subscribe(t *testing.T, filter string, qos byte) byte {
	t.Helper()
	tok := c.Subscribe(filter, qos, nil)
	wait311(t, tok, "subscribe "+filter)
	return tok.(*mqtt.SubscribeToken).Result()[filter]
}

// publish publishes and, for QoS 1 and 2, waits for the flow to complete.
func (c *client311) publish(t *testing.T, topic string, qos byte, retained bool, payload string) {
	t.Helper()
	wait311(t, c.Publish(topic, qos, retained, []byte(payload)), "publish "+topic)
}

// disconnect sends DISCONNECT and waits until the broker has closed the
// connection (with want connections left, see settle).
func (c *client311) disconnect(t *testing.T, srv *engine.Server, want int64) {
	t.Helper()
	c.Disconnect(250)
	settle(t, srv, want)
}

// terminate closes the client's socket without DISCONNECT, as the Python
// client's terminate() does.
func (c *client311) terminate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.conn.Close()
}

// recv returns the next message, failing after 5 seconds.
func (c *client311) recv(t *testing.T) mqtt.Message {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

// collect returns the messages that arrive until none comes for d.
func (c *client311) collect(d time.Duration) []mqtt.Message {
	var got []mqtt.Message
	for {
		select {
		case m := <-c.msgs:
			got = append(got, m)
		case <-time.After(d):
			return got
		}
	}
}

func describe311(ms []mqtt.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "[%s %q qos %d retained %v dup %v] ", m.Topic(), m.Payload(), m.Qos(), m.Retained(), m.Duplicate())
	}
	return b.String()
}

func topicSet311(ms []mqtt.Message) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Topic())
	}
	slices.Sort(s)
	return s
}

// raw311 is a raw 3.1.1 CONNECT with Clean Session.
func raw311(id string, keepAlive uint16) *codec.Connect {
	return &codec.Connect{ProtocolVersion: codec.Version311, CleanStart: true, KeepAlive: keepAlive, ClientID: []byte(id)}
}

// expectRefusedOrClosed reads what the broker sends after a CONNECT it must
// not accept: either nothing before it closes the connection, or a CONNACK
// with a refusal followed by the close. Both end the connection, which is what
// the Paho test checks (its connect raises).
func expectRefusedOrClosed(t *testing.T, r *testutil.Raw) {
	t.Helper()
	p, err := r.Read(5 * time.Second)
	switch {
	case errors.Is(err, io.EOF):
		return
	case err != nil:
		t.Fatalf("want a refusal or the connection closed: %v", err)
	case p.Type == codec.CONNACK && p.Connack.ReasonCode != codec.Success:
		r.ExpectClosed(2 * time.Second) // MQTT-3.2.2-5 (5.0: MQTT-3.2.2-7)
	case p.Type == codec.CONNACK:
		t.Fatal("CONNECT accepted")
	default:
		t.Fatalf("got %s before CONNACK", describePacket(p)) // MQTT-3.2.0-1
	}
}

// TestInterop311Basic ports testBasic: connect and disconnect, reconnect
// with a clean session (Session Present 0, MQTT-3.2.2-1), subscribe and
// receive one's own messages at QoS 0, 1 and 2; then a second CONNECT on the
// same socket is a protocol violation that ends the connection (MQTT-3.1.0-2),
// and so is a wrong protocol name (MQTT-3.1.2-1: the server may refuse or
// close, but must not go on under this specification).
func TestInterop311Basic(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a, _ := connect311(t, addr, clientA, true)
	a.disconnect(t, srv, 0)

	a, present := connect311(t, addr, clientA, true)
	testutil.Equal(t, present, false, "Session Present") // connack.flags == 0x00
	a.subscribe(t, topics[0], 2)
	a.publish(t, topics[0], 0, false, "qos 0")
	a.publish(t, topics[0], 1, false, "qos 1")
	a.publish(t, topics[0], 2, false, "qos 2")
	got := a.collect(quiet)
	a.disconnect(t, srv, 0)
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3: %s", len(got), describe311(got))
	}
	for i, m := range got {
		testutil.Equal(t, m.Qos(), byte(i), "QoS of message "+string(m.Payload())) // one topic, one publisher: in order
		testutil.Equal(t, string(m.Payload()), fmt.Sprintf("qos %d", i), "payload")
	}

	// Second CONNECT on the same socket.
	r := testutil.DialRaw(t, addr)
	testutil.Equal(t, r.Connect(raw311(clientA, 0)).ReasonCode, codec.Success, "CONNACK")
	r.Send(&codec.Packet{Type: codec.CONNECT, Connect: *raw311(clientA, 0)})
	r.ExpectClosed(2 * time.Second) // 3.1.1 has no server DISCONNECT

	// Wrong protocol name.
	r = testutil.DialRaw(t, addr)
	c := raw311(clientA, 0)
	c.ProtocolName = []byte("hj")
	r.Send(&codec.Packet{Type: codec.CONNECT, Connect: *c})
	expectRefusedOrClosed(t, r)
}

// TestInterop311RetainedMessages ports test_retained_messages: retained
// messages of QoS 0, 1 and 2 are sent to a new subscription with RETAIN set
// (MQTT-3.3.1-5, MQTT-3.3.1-8); retained PUBLISHes with a zero-length payload
// remove them, and no retained message is then sent (MQTT-3.3.1-10,
// MQTT-3.3.1-11).
func TestInterop311RetainedMessages(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a, present := connect311(t, addr, clientA, true)
	testutil.Equal(t, present, false, "Session Present")
	a.publish(t, topics[1], 0, true, "qos 0")
	a.publish(t, topics[2], 1, true, "qos 1")
	a.publish(t, topics[3], 2, true, "qos 2")
	a.subscribe(t, wildtopics[5], 2)
	got := a.collect(quiet)
	a.disconnect(t, srv, 0)
	if len(got) != 3 {
		t.Fatalf("got %d retained messages, want 3: %s", len(got), describe311(got))
	}
	testutil.Equal(t, fmt.Sprint(topicSet311(got)), fmt.Sprint([]string{topics[2], topics[1], topics[3]}), "topics")
	for _, m := range got {
		testutil.Equal(t, m.Retained(), true, "RETAIN of "+m.Topic())
	}

	// Clear the retained messages.
	a, present = connect311(t, addr, clientA, true)
	testutil.Equal(t, present, false, "Session Present")
	a.publish(t, topics[1], 0, true, "")
	a.publish(t, topics[2], 1, true, "")
	a.publish(t, topics[3], 2, true, "")
	a.subscribe(t, wildtopics[5], 2)
	got = a.collect(quiet)
	a.disconnect(t, srv, 0)
	if len(got) != 0 {
		t.Fatalf("retained messages left after clearing: %s", describe311(got))
	}
}

// TestInterop311WillMessage ports will_message_test (in the 3.1.1 script but
// not named test_*, so unittest skips it): a client whose connection drops
// without DISCONNECT has its will published (MQTT-3.1.2-8) to a subscriber of
// the will topic.
func TestInterop311WillMessage(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	a, present := connect311(t, addr, clientA, true, func(o *mqtt.ClientOptions) {
		o.SetWill(topics[2], "client not disconnected", 2, false).SetKeepAlive(2 * time.Second) // will QoS 2: the Python default
	})
	testutil.Equal(t, present, false, "Session Present")
	b, _ := connect311(t, addr, clientB, false)
	b.subscribe(t, topics[2], 2)
	a.terminate()
	m := b.recv(t)
	testutil.Equal(t, m.Topic(), topics[2], "will topic")
	testutil.Equal(t, string(m.Payload()), "client not disconnected", "will payload")
	testutil.Equal(t, m.Qos(), byte(2), "will QoS") // MQTT-3.1.2-14
	if more := b.collect(quiet); len(more) != 0 {
		t.Fatalf("more than the will: %s", describe311(more))
	}
}

// TestInterop311ZeroLengthClientID ports test_zero_length_clientid: a
// zero-length client identifier with Clean Session 0 is refused with return
// code 0x02 (MQTT-3.1.3-8); with Clean Session 1 it is accepted and the
// server assigns an identifier (MQTT-3.1.3-6, MQTT-3.1.3-7).
func TestInterop311ZeroLengthClientID(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	_, tok := dial311(t, addr, "", false)
	if tok.Error() == nil {
		t.Fatal("zero-length client id with Clean Session 0 accepted")
	}
	testutil.Equal(t, tok.ReturnCode(), byte(0x02), "CONNACK return code") // identifier rejected
	settle(t, srv, 0)                                                      // the server closes the connection (MQTT-3.2.2-5)

	c, _ := connect311(t, addr, "", true)
	c.disconnect(t, srv, 0)
}

// TestInterop311OfflineMessageQueueing ports test_offline_message_queueing:
// a persistent session keeps its subscriptions while disconnected and gets,
// on reconnection (Session Present 1, MQTT-3.2.2-2), the QoS 1 and 2
// messages published meanwhile (MQTT-3.1.2-5); QoS 0 ones may be queued too.
func TestInterop311OfflineMessageQueueing(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a, _ := connect311(t, addr, clientA, false)
	a.subscribe(t, wildtopics[5], 2)
	a.disconnect(t, srv, 0)

	b, present := connect311(t, addr, clientB, true)
	testutil.Equal(t, present, false, "Session Present")
	b.publish(t, topics[1], 0, false, "qos 0")
	b.publish(t, topics[2], 1, false, "qos 1")
	b.publish(t, topics[3], 2, false, "qos 2")
	b.disconnect(t, srv, 0)

	a, present = connect311(t, addr, clientA, false)
	testutil.Equal(t, present, true, "Session Present") // connack.flags == 0x01
	got := a.collect(quiet)
	a.disconnect(t, srv, 0)
	if len(got) != 2 && len(got) != 3 {
		t.Fatalf("got %d messages, want 2 or 3: %s", len(got), describe311(got))
	}
	for _, want := range []string{topics[2], topics[3]} {
		if !slices.Contains(topicSet311(got), want) {
			t.Fatalf("QoS > 0 message on %q not queued: %s", want, describe311(got))
		}
	}
	t.Logf("this server %s QoS 0 messages for offline clients", map[bool]string{true: "queues", false: "does not queue"}[len(got) == 3])
}

// TestInterop311OverlappingSubscriptions ports
// test_overlapping_subscriptions: a message matching two subscriptions of one
// client ("TopicA/#" at QoS 2, "TopicA/+" at QoS 1) arrives once at the
// highest QoS (MQTT-3.3.5-1), or once per subscription at each one's QoS,
// which the suite accepts too.
func TestInterop311OverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a, _ := connect311(t, addr, clientA, true)
	wait311(t, a.SubscribeMultiple(map[string]byte{wildtopics[6]: 2, wildtopics[0]: 1}, nil), "subscribe")
	a.publish(t, topics[3], 2, false, "overlapping topic filters")
	got := a.collect(quiet)
	a.disconnect(t, srv, 0)
	switch len(got) {
	case 1:
		t.Log("this server publishes one message for all matching overlapping subscriptions")
		testutil.Equal(t, got[0].Qos(), byte(2), "QoS")
	case 2:
		t.Log("this server publishes one message per matching overlapping subscription")
		qs := []byte{got[0].Qos(), got[1].Qos()}
		slices.Sort(qs)
		testutil.Equal(t, string(qs), "\x01\x02", "QoS of the two copies")
	default:
		t.Fatalf("got %d messages, want 1 or 2: %s", len(got), describe311(got))
	}
}

// keepAliveScaled replaces the keep-alive of 5 seconds of the Paho
// test_keepalive tests, which then wait 15 seconds (three times it).
const keepAliveScaled = 2

// TestInterop311KeepAlive ports test_keepalive: a client that sends nothing
// for one and a half times its keep-alive is disconnected by the server
// (MQTT-3.1.2-24), which publishes its will (MQTT-3.1.2-8) to a subscriber
// that itself has keep-alive 0, which turns the mechanism off (3.1.2.10).
// The silent client is raw: paho.mqtt.golang always pings, the Python test
// client does not.
func TestInterop311KeepAlive(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	a := testutil.DialRaw(t, addr)
	c := raw311(clientA, keepAliveScaled)
	c.Will, c.WillQoS, c.WillTopic, c.WillPayload = true, 2, []byte(topics[4]), []byte("keepalive expiry")
	testutil.Equal(t, a.Connect(c).ReasonCode, codec.Success, "CONNACK")
	began := time.Now()
	b, _ := connect311(t, addr, clientB, true) // keep-alive 0
	b.subscribe(t, topics[4], 2)

	m := b.recv(t)
	took := time.Since(began)
	testutil.Equal(t, m.Topic(), topics[4], "will topic")
	testutil.Equal(t, string(m.Payload()), "keepalive expiry", "will payload")
	testutil.Equal(t, m.Qos(), byte(2), "will QoS")
	if lo, hi := keepAliveScaled*time.Second, 3*keepAliveScaled*time.Second; took < lo || took > hi {
		t.Fatalf("will published %v after connecting, want between %v and %v", took, lo, hi)
	}
	a.ExpectClosed(time.Second)
	if more := b.collect(quiet); len(more) != 0 {
		t.Fatalf("more than the will: %s", describe311(more))
	}
}

// TestInterop311RedeliveryOnReconnect ports test_redelivery_on_reconnect: a
// client with a persistent session receives its own QoS 1 and 2 messages and
// acknowledges neither (the Python client is paused; here auto-ack is off),
// disconnects, and on reconnection the server sends both again
// (MQTT-4.4.0-1) with DUP set (MQTT-3.3.1-1).
func TestInterop311RedeliveryOnReconnect(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	b, _ := connect311(t, addr, clientB, false, func(o *mqtt.ClientOptions) { o.SetAutoAckDisabled(true) })
	b.subscribe(t, wildtopics[6], 2)
	b.publish(t, topics[1], 1, false, "")
	b.publish(t, topics[3], 2, false, "")
	unacked := []mqtt.Message{b.recv(t), b.recv(t)} // delivered, never acknowledged
	b.disconnect(t, srv, 0)

	b, present := connect311(t, addr, clientB, false)
	testutil.Equal(t, present, true, "Session Present")
	got := b.collect(quiet)
	b.disconnect(t, srv, 0)
	if len(got) != 2 {
		t.Fatalf("got %d messages after reconnecting, want 2: %s", len(got), describe311(got))
	}
	for i, m := range got {
		testutil.Equal(t, m.Topic(), unacked[i].Topic(), "topic, in the original order") // MQTT-4.6.0-1
		testutil.Equal(t, m.MessageID(), unacked[i].MessageID(), "packet id")            // MQTT-4.4.0-1: original ids
		testutil.Equal(t, m.Duplicate(), true, "DUP of "+m.Topic())
	}
}

// TestInterop311SubscribeFailure ports test_subscribe_failure. The Paho test
// broker is configured to refuse subscriptions to "test/nosubscribe" and the
// test expects return code 0x80 for it; that is the broker's policy, not the
// specification's, and Tern has no subscription policy. The specification
// allows either a granted QoS no higher than asked or 0x80 (MQTT-3.9.3-2,
// MQTT-3.8.4-5), so either is accepted, and a granted subscription must work.
// A subscription that must fail, to a filter that is not valid
// (MQTT-4.7.1-2: "#" must be last), then checks the failure path: 0x80, or
// the connection closed as for any protocol violation (4.8).
func TestInterop311SubscribeFailure(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a, _ := connect311(t, addr, clientA, true)
	switch rc := a.subscribe(t, nosubscribeTopics[0], 2); {
	case rc == 0x80:
		t.Log("this server refuses the subscription")
	case rc <= 2:
		t.Logf("this server grants the subscription at QoS %d", rc)
		a.publish(t, nosubscribeTopics[0], rc, false, "granted")
		testutil.Equal(t, string(a.recv(t).Payload()), "granted", "payload")
	default:
		t.Fatalf("SUBACK return code %#x, want 0x00-0x02 or 0x80", rc)
	}
	a.disconnect(t, srv, 0)

	r := testutil.DialRaw(t, addr)
	testutil.Equal(t, r.Connect(raw311(clientA, 0)).ReasonCode, codec.Success, "CONNACK")
	r.Send(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: 1,
		Subscriptions: []codec.Subscription{{Filter: []byte("test/#/nosubscribe"), QoS: 2}}}})
	p, err := r.Read(5 * time.Second)
	switch {
	case errors.Is(err, io.EOF):
		t.Log("this server closes the connection on an invalid topic filter")
	case err != nil:
		t.Fatalf("waiting for SUBACK: %v", err)
	case p.Type != codec.SUBACK:
		t.Fatalf("got %s, want SUBACK", p.Type)
	default:
		testutil.Equal(t, string(p.Suback.ReasonCodes), "\x80", "SUBACK return codes")
	}
}

// TestInterop311DollarTopics ports test_dollar_topics: a filter starting with
// a wildcard ("+/+") does not match a topic name starting with "$"
// (MQTT-4.7.2-1).
func TestInterop311DollarTopics(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	b, _ := connect311(t, addr, clientB, true) // keep-alive 0
	b.subscribe(t, wildtopics[5], 2)
	b.publish(t, "$"+topics[1], 1, false, "")
	if got := b.collect(quiet); len(got) != 0 {
		t.Fatalf("wildcard subscription got a $ topic: %s", describe311(got))
	}
	b.disconnect(t, srv, 0)
}

// TestInterop311Unsubscribe ports test_unsubscribe: after UNSUBSCRIBE of one
// of three subscriptions the server stops sending messages for it
// (MQTT-3.10.4-2) and goes on with the others.
func TestInterop311Unsubscribe(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	b, _ := connect311(t, addr, clientB, true)
	b.subscribe(t, topics[0], 2)
	b.subscribe(t, topics[1], 2)
	b.subscribe(t, topics[2], 2)
	wait311(t, b.Unsubscribe(topics[0]), "unsubscribe") // UNSUBACK: MQTT-3.10.4-4

	a, _ := connect311(t, addr, clientA, true)
	a.publish(t, topics[0], 1, false, "")
	a.publish(t, topics[1], 1, false, "")
	a.publish(t, topics[2], 1, false, "")
	got := b.collect(quiet)
	b.disconnect(t, srv, 1)
	a.disconnect(t, srv, 0)
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2: %s", len(got), describe311(got))
	}
	testutil.Equal(t, fmt.Sprint(topicSet311(got)), fmt.Sprint([]string{topics[2], topics[1]}), "topics")
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
