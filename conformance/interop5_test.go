package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// Ports of the MQTT 5.0 tests of the Paho interoperability suite
// (interoperability/client_test5.py), driven with paho.golang, and with the
// raw client where the test needs what paho.golang will not do or show:
// silence past the keep-alive, an abrupt close, packets read one by one
// without acknowledging them, Topic Alias 0 or an unknown alias, a packet
// over the server's limit, several Subscription Identifiers on one message,
// the exact topic name and alias of each PUBLISH. Statement numbers are those
// of MQTT 5.0.

// connect5 connects a paho.golang client with cp and fails the test unless
// the server accepts it. Unlike testutil.ConnectV5 it keeps a Keep Alive of
// 0, which some Paho tests ask for. The client is disconnected when the test
// ends.
func connect5(t *testing.T, addr string, cp *paho.Connect) *testutil.V5 {
	t.Helper()
	c, err := dial5(addr, cp)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c
}

// dial5 is connect5 without the test: the error is that of the CONNECT.
func dial5(addr string, cp *paho.Connect) (*testutil.V5, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	v := &testutil.V5{Msgs: make(chan *paho.Publish, 1000), Disconnects: make(chan *paho.Disconnect, 4)}
	v.Client = paho.NewClient(paho.ClientConfig{
		Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			v.Msgs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) { v.Disconnects <- d },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v.Connack, err = v.Connect(ctx, cp)
	return v, err
}

// cp returns a CONNECT for id with Clean Start clean and the Python
// client's default Keep Alive of 0 (no keep-alive).
func cp(id string, clean bool) *paho.Connect {
	return &paho.Connect{ClientID: id, CleanStart: clean}
}

// withExpiry sets the Session Expiry Interval of c.
func withExpiry(c *paho.Connect, seconds uint32) *paho.Connect {
	if c.Properties == nil {
		c.Properties = &paho.ConnectProperties{}
	}
	c.Properties.SessionExpiryInterval = &seconds
	return c
}

// sub5 subscribes c with opts in one SUBSCRIBE and returns the SUBACK; a
// refused subscription fails the test.
func sub5(t *testing.T, c *testutil.V5, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	ack, err := c.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: opts})
	testutil.Require(t, err, "subscribe")
	return ack
}

// pub5 publishes p and waits for the acknowledgement of QoS 1 and 2.
func pub5(t *testing.T, c *testutil.V5, p *paho.Publish) {
	t.Helper()
	_, err := c.Publish(testutil.Ctx(t), p)
	testutil.Require(t, err, "publish "+p.Topic)
}

// disc5 sends DISCONNECT (with props, if not nil) and waits until the broker
// has closed the connection, want connections being left (see settle).
func disc5(t *testing.T, srv *engine.Server, c *testutil.V5, want int64, props *paho.DisconnectProperties) {
	t.Helper()
	testutil.Require(t, c.Disconnect(&paho.Disconnect{Properties: props}), "disconnect")
	settle(t, srv, want)
}

// collect5 returns the messages c receives until none comes for d.
func collect5(c *testutil.V5, d time.Duration) []*paho.Publish {
	var got []*paho.Publish
	for {
		select {
		case m := <-c.Msgs:
			got = append(got, m)
		case <-time.After(d):
			return got
		}
	}
}

func describe5(ms []*paho.Publish) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "[%s %q qos %d retain %v] ", m.Topic, m.Payload, m.QoS, m.Retain)
	}
	return b.String()
}

func qosSet(qs []byte) string {
	qs = slices.Clone(qs)
	slices.Sort(qs)
	return fmt.Sprint(qs)
}

// userProps are the User Properties the Paho tests publish with.
var userProps = paho.UserProperties{{Key: "a", Value: "2"}, {Key: "c", Value: "3"}}

// checkUserProps applies the Paho assertion on the User Properties of a
// message: both pairs, in either order. The specification is stricter: the
// order is kept (MQTT-3.3.2-18), which is checked after.
func checkUserProps(t *testing.T, m *paho.Publish) {
	t.Helper()
	var got paho.UserProperties
	if m.Properties != nil {
		got = m.Properties.User
	}
	reversed := paho.UserProperties{userProps[1], userProps[0]}
	if !slices.Equal(got, userProps) && !slices.Equal(got, reversed) {
		t.Fatalf("User Properties of %s: %v, want %v in either order", m.Topic, got, userProps)
	}
	if !slices.Equal(got, userProps) {
		t.Fatalf("User Properties of %s out of order: %v, want %v (MQTT-3.3.2-18)", m.Topic, got, userProps)
	}
}

// wire is a raw 5.0 (or 3.1.1) client with the bookkeeping of the Python
// test client: it completes the acknowledgement flows of what it publishes
// and, unless noAck is set, of what it receives, and keeps the PUBLISHes that
// arrive while it waits for something else. It belongs to one test goroutine.
type wire struct {
	*testutil.Raw
	t       *testing.T
	lastID  uint16
	pending []*codec.Publish
	noAck   bool // received PUBLISHes are not acknowledged (the Python client's pause)
	// unreleased holds the QoS 2 deliveries acknowledged with PUBREC and
	// not released yet: the Python client counts a QoS 2 message only when
	// the PUBREL comes.
	unreleased map[uint16]bool
}

// conn5 is a raw 5.0 CONNECT.
func conn5(id string, clean bool, keepAlive uint16) *codec.Connect {
	return &codec.Connect{ProtocolVersion: codec.Version5, CleanStart: clean, KeepAlive: keepAlive, ClientID: []byte(id)}
}

// dialWire connects a raw client with c and returns it and the CONNACK,
// accepted or not.
func dialWire(t *testing.T, addr string, c *codec.Connect) (*wire, *codec.Connack) {
	t.Helper()
	w := &wire{Raw: testutil.DialRaw(t, addr), t: t}
	return w, w.Connect(c)
}

// connectWire is dialWire for a connection that must be accepted.
func connectWire(t *testing.T, addr string, c *codec.Connect) (*wire, *codec.Connack) {
	t.Helper()
	w, ack := dialWire(t, addr, c)
	if ack.ReasonCode != codec.Success {
		t.Fatalf("connect %q: CONNACK %#x (%v)", c.ClientID, byte(ack.ReasonCode), ack.ReasonCode)
	}
	return w, ack
}

func (w *wire) nextID() uint16 {
	w.lastID++
	if w.lastID == 0 {
		w.lastID = 1
	}
	return w.lastID
}

// read returns the next packet within d, acknowledging a PUBLISH (unless
// noAck) and answering a PUBREL.
func (w *wire) read(d time.Duration) (*codec.Packet, error) {
	p, err := w.Read(d)
	if err != nil {
		return nil, err
	}
	switch p.Type {
	case codec.PUBLISH:
		if !w.noAck {
			switch p.Publish.QoS {
			case 1:
				w.ack(codec.PUBACK, p.Publish.PacketID)
			case 2:
				w.ack(codec.PUBREC, p.Publish.PacketID)
				if w.unreleased == nil {
					w.unreleased = make(map[uint16]bool)
				}
				w.unreleased[p.Publish.PacketID] = true
			}
		}
	case codec.PUBREL:
		w.ack(codec.PUBCOMP, p.Ack.PacketID)
		delete(w.unreleased, p.Ack.PacketID)
	}
	return p, nil
}

func (w *wire) ack(t codec.PacketType, id uint16) {
	w.t.Helper()
	w.Send(&codec.Packet{Type: t, Ack: codec.Ack{Type: t, PacketID: id}})
}

// await returns the first packet for which match is true, within 5 s;
// PUBLISHes before it are kept for recv and collect.
func (w *wire) await(what string, match func(*codec.Packet) bool) *codec.Packet {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := w.read(time.Until(deadline))
		if err != nil {
			w.t.Fatalf("waiting for %s: %v", what, err)
		}
		if match(p) {
			return p
		}
		switch p.Type {
		case codec.PUBLISH:
			w.pending = append(w.pending, &p.Publish)
		case codec.PUBREL:
		default:
			w.t.Fatalf("waiting for %s: got %s", what, describePacket(p))
		}
	}
}

func isAck(t codec.PacketType, id uint16) func(*codec.Packet) bool {
	return func(p *codec.Packet) bool { return p.Type == t && p.Ack.PacketID == id }
}

// publish sends a PUBLISH (props, if not nil, sets its properties) and for
// QoS 1 and 2 completes the flow. It returns the reason code of the PUBACK
// or PUBREC.
func (w *wire) publish(topic string, qos byte, retain bool, payload string, props func(*codec.Properties)) codec.ReasonCode {
	w.t.Helper()
	p := codec.Publish{Topic: []byte(topic), QoS: qos, Retain: retain, Payload: []byte(payload)}
	if props != nil {
		props(&p.Props)
	}
	if qos > 0 {
		p.PacketID = w.nextID()
	}
	w.Send(&codec.Packet{Type: codec.PUBLISH, Publish: p})
	switch qos {
	case 1:
		return w.await("PUBACK", isAck(codec.PUBACK, p.PacketID)).Ack.ReasonCode
	case 2:
		rec := w.await("PUBREC", isAck(codec.PUBREC, p.PacketID)).Ack.ReasonCode
		if !rec.IsError() {
			w.ack(codec.PUBREL, p.PacketID)
			w.await("PUBCOMP", isAck(codec.PUBCOMP, p.PacketID))
		}
		return rec
	}
	return codec.Success
}

// subscribe sends one SUBSCRIBE with subs (and Subscription Identifier subID
// unless 0) and returns the reason codes of the SUBACK.
func (w *wire) subscribe(subID uint32, subs ...codec.Subscription) []byte {
	w.t.Helper()
	id := w.nextID()
	p := &codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: id, Subscriptions: subs}}
	if subID != 0 {
		p.Subscribe.Props.AddSubscriptionID(subID)
	}
	w.Send(p)
	return w.await("SUBACK", func(p *codec.Packet) bool { return p.Type == codec.SUBACK && p.Suback.PacketID == id }).Suback.ReasonCodes
}

// sub is a subscription to filter at qos, for wire.subscribe.
func sub(filter string, qos byte) codec.Subscription {
	return codec.Subscription{Filter: []byte(filter), QoS: qos}
}

// recv returns the next PUBLISH, failing after 5 s.
func (w *wire) recv() *codec.Publish {
	w.t.Helper()
	if len(w.pending) > 0 {
		m := w.pending[0]
		w.pending = w.pending[1:]
		return m
	}
	return &w.await("PUBLISH", func(p *codec.Packet) bool { return p.Type == codec.PUBLISH }).Publish
}

// collect returns the PUBLISHes that arrive until nothing comes for d.
func (w *wire) collect(d time.Duration) []*codec.Publish {
	w.t.Helper()
	got := w.pending
	w.pending = nil
	for {
		p, err := w.read(d)
		switch {
		case isTimeout(err):
			for id := range w.unreleased {
				w.t.Fatalf("QoS 2 delivery %d acknowledged with PUBREC and never released", id)
			}
			return got
		case err != nil:
			w.t.Fatalf("collecting messages: %v", err)
		case p.Type == codec.PUBLISH:
			got = append(got, &p.Publish)
		case p.Type == codec.PUBREL:
		default:
			w.t.Fatalf("collecting messages: got %s", describePacket(p))
		}
	}
}

// expectGone waits at most d for the server to close the connection and
// returns the reason code of the DISCONNECT it sent before, if any. Other
// packets on the way (acknowledgements) are skipped.
func (w *wire) expectGone(d time.Duration) (codec.ReasonCode, bool) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	var reason codec.ReasonCode
	got := false
	for {
		p, err := w.Read(time.Until(deadline))
		switch {
		case errors.Is(err, io.EOF):
			return reason, got
		case err != nil:
			w.t.Fatalf("waiting for the server to close the connection: %v", err)
		case p.Type == codec.DISCONNECT:
			reason, got = p.Disconnect.ReasonCode, true
		}
	}
}

// disconnect sends a DISCONNECT with props (if not nil) and waits for the
// server to close the connection; what it sends meanwhile is skipped.
func (w *wire) disconnect(props func(*codec.Properties)) {
	w.t.Helper()
	p := &codec.Packet{Type: codec.DISCONNECT}
	if props != nil {
		props(&p.Disconnect.Props)
	}
	w.Send(p)
	if r, ok := w.expectGone(2 * time.Second); ok {
		w.t.Fatalf("server answered DISCONNECT with DISCONNECT %v", r)
	}
}

func describePacket(p *codec.Packet) string {
	switch p.Type {
	case codec.PUBLISH:
		return fmt.Sprintf("PUBLISH (topic %q qos %d id %d payload %q)", p.Publish.Topic, p.Publish.QoS, p.Publish.PacketID, p.Publish.Payload)
	case codec.PUBACK, codec.PUBREC, codec.PUBREL, codec.PUBCOMP:
		return fmt.Sprintf("%s (id %d reason %#x)", p.Type, p.Ack.PacketID, byte(p.Ack.ReasonCode))
	case codec.DISCONNECT:
		return fmt.Sprintf("DISCONNECT (reason %#x %v)", byte(p.Disconnect.ReasonCode), p.Disconnect.ReasonCode)
	}
	return p.Type.String()
}

// cleanRetained ports the suite's cleanRetained(): a client subscribes to
// "#" and publishes an empty retained message to the topic of every message
// it gets (MQTT-3.3.1-6). The store is then checked empty.
func cleanRetained(t *testing.T, srv *engine.Server, addr string) {
	t.Helper()
	c := connect5(t, addr, cp("clean retained", true))
	sub5(t, c, paho.SubscribeOptions{Topic: "#", QoS: 0})
	for _, m := range collect5(c, quiet) {
		pub5(t, c, &paho.Publish{Topic: m.Topic, QoS: 0, Retain: true})
	}
	// The empty messages themselves are delivered to "#" as usual
	// (3.3.1.3), not retained (MQTT-3.3.1-7).
	for _, m := range collect5(c, quiet) {
		if len(m.Payload) != 0 || m.Retain {
			t.Fatalf("after clearing: %s", describe5([]*paho.Publish{m}))
		}
	}
	testutil.Equal(t, srv.Snapshot().Retained, 0, "retained messages left")
}

// TestInterop5Basic ports test_basic: connect and disconnect, reconnect
// (reason code Success), subscribe and receive one's own messages at QoS 0,
// 1 and 2; then a second CONNECT on a socket is a Protocol Error that closes
// the connection (MQTT-3.1.0-2), and so is a wrong protocol name
// (MQTT-3.1.2-1: CONNACK 0x84 may be sent first).
func TestInterop5Basic(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, cp(clientA, true))
	disc5(t, srv, a, 0, nil)

	a = connect5(t, addr, cp(clientA, true))
	testutil.Equal(t, a.Connack.ReasonCode, byte(codec.Success), "CONNACK reason code")
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	for qos := byte(0); qos <= 2; qos++ {
		pub5(t, a, &paho.Publish{Topic: topics[0], QoS: qos, Payload: fmt.Appendf(nil, "qos %d", qos)})
	}
	got := collect5(a, quiet)
	disc5(t, srv, a, 0, nil)
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3: %s", len(got), describe5(got))
	}
	for i, m := range got {
		testutil.Equal(t, string(m.Payload), fmt.Sprintf("qos %d", i), "payload") // one topic, one publisher: in order
		testutil.Equal(t, m.QoS, byte(i), "QoS")
	}

	// Second CONNECT on the same socket.
	w, _ := connectWire(t, addr, conn5(clientA, true, 0))
	w.Send(&codec.Packet{Type: codec.CONNECT, Connect: *conn5(clientA, true, 0)})
	if r, ok := w.expectGone(2 * time.Second); ok && r != codec.ProtocolError {
		t.Fatalf("second CONNECT answered with DISCONNECT %v, want Protocol Error", r)
	}

	// Wrong protocol name.
	r := testutil.DialRaw(t, addr)
	c := conn5(clientA, true, 0)
	c.ProtocolName = []byte("hj")
	r.Send(&codec.Packet{Type: codec.CONNECT, Connect: *c})
	expectRefusedOrClosed(t, r)
}

// TestInterop5RetainedMessage ports test_retained_message: retained messages
// of QoS 0, 1 and 2 with User Properties are sent to a new subscription at
// the QoS they were published with (granted 2), their User Properties
// forwarded (MQTT-3.3.2-17, MQTT-3.3.2-18); the suite's cleanRetained then
// removes them.
func TestInterop5RetainedMessage(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, cp(clientA, true))
	props := func() *paho.PublishProperties { return &paho.PublishProperties{User: slices.Clone(userProps)} }
	pub5(t, a, &paho.Publish{Topic: topics[1], QoS: 0, Retain: true, Payload: []byte("qos 0"), Properties: props()})
	pub5(t, a, &paho.Publish{Topic: topics[2], QoS: 1, Retain: true, Payload: []byte("qos 1"), Properties: props()})
	pub5(t, a, &paho.Publish{Topic: topics[3], QoS: 2, Retain: true, Payload: []byte("qos 2"), Properties: props()})
	sub5(t, a, paho.SubscribeOptions{Topic: wildtopics[5], QoS: 2})
	got := collect5(a, quiet)
	disc5(t, srv, a, 0, nil)
	if len(got) != 3 {
		t.Fatalf("got %d retained messages, want 3: %s", len(got), describe5(got))
	}
	var qs []byte
	for _, m := range got {
		checkUserProps(t, m)
		testutil.Equal(t, m.Retain, true, "RETAIN of "+m.Topic) // MQTT-3.3.1-9
		qs = append(qs, m.QoS)
	}
	testutil.Equal(t, qosSet(qs), "[0 1 2]", "QoS of the retained messages")

	cleanRetained(t, srv, addr)
}

// TestInterop5WillMessage ports test_will_message: a client that sends
// nothing is disconnected when its keep-alive lapses (MQTT-3.1.2-22), and its
// will, with Will Delay 0, is published (MQTT-3.1.2-8) with its User
// Properties in order (MQTT-3.1.3-10). The client is raw: paho.golang pings,
// the Python test client does not.
func TestInterop5WillMessage(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	c := conn5(clientA, true, 2)
	c.Will, c.WillQoS, c.WillTopic, c.WillPayload = true, 2, []byte(topics[2]), []byte("will message")
	c.WillProps.SetWillDelay(0)
	c.WillProps.AddUser([]byte("a"), []byte("2"))
	c.WillProps.AddUser([]byte("c"), []byte("3"))
	a, _ := connectWire(t, addr, c)

	b := connect5(t, addr, cp(clientB, false))
	sub5(t, b, paho.SubscribeOptions{Topic: topics[2], QoS: 2})
	var m *paho.Publish
	select {
	case m = <-b.Msgs:
	case <-time.After(10 * time.Second):
		t.Fatal("no will within 10s")
	}
	testutil.Equal(t, m.Topic, topics[2], "will topic")
	testutil.Equal(t, string(m.Payload), "will message", "will payload")
	testutil.Equal(t, m.QoS, byte(2), "will QoS") // MQTT-3.1.2-12
	var got paho.UserProperties
	if m.Properties != nil {
		got = m.Properties.User
	}
	if !slices.Equal(got, userProps) {
		t.Fatalf("User Properties of the will: %v, want %v", got, userProps)
	}
	a.expectGone(time.Second)
	b.NoMsg(t, quiet)
}

// TestInterop5ZeroLengthClientID ports test_zero_length_clientid: in 5.0 a
// zero-length client identifier is accepted with Clean Start 0 as with 1, the
// server assigning one (MQTT-3.1.3-6, MQTT-3.1.3-7).
func TestInterop5ZeroLengthClientID(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	c := connect5(t, addr, cp("", false))
	disc5(t, srv, c, 0, nil)
	c = connect5(t, addr, cp("", true))
	disc5(t, srv, c, 0, nil)
}

// TestInterop5OfflineMessageQueueing ports test_offline_message_queueing: a
// session with an expiry interval keeps its subscriptions while
// disconnected and gets, on reconnection with Clean Start 0 (Session Present
// 1, MQTT-3.2.2-3), the QoS 1 and 2 messages published meanwhile; QoS 0 ones
// may be queued too (3.1.2.4).
func TestInterop5OfflineMessageQueueing(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, withExpiry(cp(clientA, true), 99999))
	sub5(t, a, paho.SubscribeOptions{Topic: wildtopics[5], QoS: 2})
	disc5(t, srv, a, 0, nil)

	b := connect5(t, addr, cp(clientB, true))
	pub5(t, b, &paho.Publish{Topic: topics[1], QoS: 0, Payload: []byte("qos 0")})
	pub5(t, b, &paho.Publish{Topic: topics[2], QoS: 1, Payload: []byte("qos 1")})
	pub5(t, b, &paho.Publish{Topic: topics[3], QoS: 2, Payload: []byte("qos 2")})
	disc5(t, srv, b, 0, nil)

	a = connect5(t, addr, cp(clientA, false))
	testutil.Equal(t, a.Connack.SessionPresent, true, "Session Present")
	got := collect5(a, quiet)
	disc5(t, srv, a, 0, nil)
	if len(got) != 2 && len(got) != 3 {
		t.Fatalf("got %d messages, want 2 or 3: %s", len(got), describe5(got))
	}
	for _, want := range []string{"qos 1", "qos 2"} {
		if !slices.ContainsFunc(got, func(m *paho.Publish) bool { return string(m.Payload) == want }) {
			t.Fatalf("message %q not queued: %s", want, describe5(got))
		}
	}
	t.Logf("this server %s QoS 0 messages for offline clients", map[bool]string{true: "queues", false: "does not queue"}[len(got) == 3])
}

// TestInterop5OverlappingSubscriptions ports test_overlapping_subscriptions:
// a message matching two subscriptions of one client arrives once at the
// highest QoS (MQTT-3.3.4-2), or once per subscription (the server MAY send
// copies), which the suite accepts too.
func TestInterop5OverlappingSubscriptions(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, cp(clientA, true))
	sub5(t, a, paho.SubscribeOptions{Topic: wildtopics[6], QoS: 2}, paho.SubscribeOptions{Topic: wildtopics[0], QoS: 1})
	pub5(t, a, &paho.Publish{Topic: topics[3], QoS: 2, Payload: []byte("overlapping topic filters")})
	got := collect5(a, quiet)
	disc5(t, srv, a, 0, nil)
	switch len(got) {
	case 1:
		t.Log("this server publishes one message for all matching overlapping subscriptions")
		testutil.Equal(t, got[0].QoS, byte(2), "QoS")
	case 2:
		t.Log("this server publishes one message per matching overlapping subscription")
		testutil.Equal(t, qosSet([]byte{got[0].QoS, got[1].QoS}), "[1 2]", "QoS of the two copies")
	default:
		t.Fatalf("got %d messages, want 1 or 2: %s", len(got), describe5(got))
	}
}

// TestInterop5KeepAlive ports test_keepalive: a client that sends nothing
// for one and a half times its keep-alive is disconnected (MQTT-3.1.2-22)
// and its will published (MQTT-3.1.2-8) to a subscriber with keep-alive 0.
// The keep-alive is scaled from 5 s to 2 s; the suite waits three times it.
func TestInterop5KeepAlive(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	c := conn5(clientA, true, keepAliveScaled)
	c.Will, c.WillQoS, c.WillTopic, c.WillPayload = true, 2, []byte(topics[4]), []byte("keepalive expiry")
	a, _ := connectWire(t, addr, c)
	began := time.Now()
	b := connect5(t, addr, cp(clientB, true)) // keep-alive 0
	sub5(t, b, paho.SubscribeOptions{Topic: topics[4], QoS: 2})

	m := b.Recv(t)
	took := time.Since(began)
	testutil.Equal(t, m.Topic, topics[4], "will topic")
	testutil.Equal(t, string(m.Payload), "keepalive expiry", "will payload")
	testutil.Equal(t, m.QoS, byte(2), "will QoS")
	if lo, hi := keepAliveScaled*time.Second, 3*keepAliveScaled*time.Second; took < lo || took > hi {
		t.Fatalf("will published %v after connecting, want between %v and %v", took, lo, hi)
	}
	if r, ok := a.expectGone(time.Second); ok && r != codec.KeepAliveTimeout {
		t.Fatalf("DISCONNECT %v, want Keep Alive timeout", r)
	}
	b.NoMsg(t, quiet)
}

// TestInterop5RedeliveryOnReconnect ports test_redelivery_on_reconnect: a
// client with a session that outlives the connection receives its own QoS 1
// and 2 messages and acknowledges neither (the Python client's pause),
// disconnects, and on reconnection the server sends both again with their
// original packet identifiers (MQTT-4.4.0-1), in order (MQTT-4.6.0-1), with
// DUP set (MQTT-3.3.1-1).
func TestInterop5RedeliveryOnReconnect(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	connect := func() *wire {
		c := conn5(clientB, false, 0)
		c.Props.SetSessionExpiry(99999)
		b, _ := connectWire(t, addr, c)
		return b
	}
	b := connect()
	b.subscribe(0, sub(wildtopics[6], 2))
	b.noAck = true
	b.publish(topics[1], 1, false, "", nil)
	b.publish(topics[3], 2, false, "", nil)
	first := b.collect(quiet) // the two deliveries, unacknowledged; nothing more
	if len(first) != 2 {
		t.Fatalf("got %d deliveries, want 2", len(first))
	}
	b.disconnect(nil)

	b = connect()
	got := b.collect(quiet)
	b.disconnect(nil)
	if len(got) != 2 {
		t.Fatalf("got %d messages after reconnecting, want 2", len(got))
	}
	for i, m := range got {
		testutil.Equal(t, string(m.Topic), string(first[i].Topic), "topic, in the original order")
		testutil.Equal(t, m.PacketID, first[i].PacketID, "packet id")
		testutil.Equal(t, m.QoS, first[i].QoS, "QoS")
		testutil.Equal(t, m.Dup, true, "DUP of "+string(m.Topic))
	}
}

// TestInterop5SubscribeFailure ports test_subscribe_failure. The Paho test
// broker refuses subscriptions to "test/nosubscribe" by configuration and the
// test expects reason code 0x80; that is its policy, not the
// specification's, and Tern has no subscription policy. A granted QoS no
// higher than asked or a reason code of 0x80 or more are both conforming
// (MQTT-3.8.4-6, 3.9.3), so both are accepted, and a granted subscription
// must work. A filter that is not valid (MQTT-4.7.1-1: "#" must be last) then
// checks the failure path: a SUBACK failure code, or DISCONNECT and close.
func TestInterop5SubscribeFailure(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, cp(clientA, true))
	ack, err := a.Subscribe(testutil.Ctx(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: nosubscribeTopics[0], QoS: 2}}})
	if ack == nil {
		t.Fatalf("subscribe: %v", err)
	}
	switch rc := ack.Reasons[0]; {
	case rc >= 0x80:
		t.Logf("this server refuses the subscription: %#x", rc)
	case rc <= 2:
		t.Logf("this server grants the subscription at QoS %d", rc)
		pub5(t, a, &paho.Publish{Topic: nosubscribeTopics[0], QoS: rc, Payload: []byte("granted")})
		testutil.Equal(t, string(a.Recv(t).Payload), "granted", "payload")
	default:
		t.Fatalf("SUBACK reason code %#x", rc)
	}
	disc5(t, srv, a, 0, nil)

	w, _ := connectWire(t, addr, conn5(clientA, true, 0))
	id := w.nextID()
	w.Send(&codec.Packet{Type: codec.SUBSCRIBE, Subscribe: codec.Subscribe{PacketID: id,
		Subscriptions: []codec.Subscription{sub("test/#/nosubscribe", 2)}}})
	p, err := w.Read(5 * time.Second)
	switch {
	case err != nil:
		t.Fatalf("waiting for SUBACK: %v", err)
	case p.Type == codec.DISCONNECT && p.Disconnect.ReasonCode.IsError():
		t.Logf("this server disconnects on an invalid topic filter: %v", p.Disconnect.ReasonCode)
	case p.Type != codec.SUBACK:
		t.Fatalf("got %s, want SUBACK", describePacket(p))
	case len(p.Suback.ReasonCodes) != 1 || p.Suback.ReasonCodes[0] < 0x80:
		t.Fatalf("SUBACK reason codes % x, want one failure", p.Suback.ReasonCodes)
	}
}

// TestInterop5DollarTopics ports test_dollar_topics: a filter starting with
// a wildcard does not match a topic name starting with "$" (MQTT-4.7.2-1).
func TestInterop5DollarTopics(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	b := connect5(t, addr, cp(clientB, true)) // keep-alive 0
	sub5(t, b, paho.SubscribeOptions{Topic: wildtopics[5], QoS: 2})
	pub5(t, b, &paho.Publish{Topic: "$" + topics[1], QoS: 1})
	b.NoMsg(t, quiet)
	disc5(t, srv, b, 0, nil)
}

// TestInterop5Unsubscribe ports test_unsubscribe: after UNSUBSCRIBE of one
// of three subscriptions the server stops sending its messages
// (MQTT-3.10.4-2) and goes on with the others.
func TestInterop5Unsubscribe(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	b := connect5(t, addr, cp(clientB, true))
	for _, topic := range topics[:3] {
		sub5(t, b, paho.SubscribeOptions{Topic: topic, QoS: 2})
	}
	ack, err := b.Unsubscribe(testutil.Ctx(t), &paho.Unsubscribe{Topics: []string{topics[0]}})
	testutil.Require(t, err, "unsubscribe")
	testutil.Equal(t, ack.Reasons[0], byte(codec.Success), "UNSUBACK reason code") // MQTT-3.11.3-1

	a := connect5(t, addr, cp(clientA, true))
	pub5(t, a, &paho.Publish{Topic: topics[0], QoS: 1, Payload: []byte("topic 0 - unsubscribed")})
	pub5(t, a, &paho.Publish{Topic: topics[1], QoS: 1, Payload: []byte("topic 1")})
	pub5(t, a, &paho.Publish{Topic: topics[2], QoS: 1, Payload: []byte("topic 2")})
	got := collect5(b, quiet)
	disc5(t, srv, b, 1, nil)
	disc5(t, srv, a, 0, nil)
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2: %s", len(got), describe5(got))
	}
	for _, m := range got {
		if m.Topic == topics[0] {
			t.Fatalf("message for the removed subscription: %s", describe5(got))
		}
	}
}

// TestInterop5SessionExpiry ports test_session_expiry with the intervals
// scaled down (5 s to 2 s, 1 s stays, the DISCONNECT's 5 s to 3 s, and the
// sleeps in proportion). A session with expiry 0 ends with the connection
// (3.1.2.11.2); one with an expiry is present before it
// lapses and gone after (MQTT-3.2.2-3 Session Present); a Session Expiry
// Interval on DISCONNECT replaces that of the CONNECT (3.14.2.2.2), 0
// included.
func TestInterop5SessionExpiry(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	connect := func(clean bool, expiry uint32, wantPresent bool) *testutil.V5 {
		t.Helper()
		a := connect5(t, addr, withExpiry(cp(clientA, clean), expiry))
		testutil.Equal(t, a.Connack.ReasonCode, byte(codec.Success), "CONNACK reason code")
		testutil.Equal(t, a.Connack.SessionPresent, wantPresent, "Session Present")
		return a
	}
	expiry := func(v uint32) *paho.DisconnectProperties {
		return &paho.DisconnectProperties{SessionExpiryInterval: &v}
	}

	a := connect(true, 0, false)
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	disc5(t, srv, a, 0, nil)
	a = connect(false, 0, false) // the session ended with the connection
	disc5(t, srv, a, 0, nil)

	a = connect(true, 2, false)
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	disc5(t, srv, a, 0, nil)
	time.Sleep(time.Second)
	a = connect(false, 2, true) // still there
	disc5(t, srv, a, 0, nil)
	time.Sleep(3 * time.Second)
	a = connect(false, 2, false) // expired
	disc5(t, srv, a, 0, nil)

	a = connect(true, 1, false)
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	disc5(t, srv, a, 0, expiry(3))
	time.Sleep(1500 * time.Millisecond)
	a = connect(false, 1, true) // kept by the DISCONNECT's longer interval
	disc5(t, srv, a, 0, expiry(0))
	a = connect(false, 1, false) // ended at once by the DISCONNECT's 0
	disc5(t, srv, a, 0, nil)
}

// TestInterop5UserProperties ports test_user_properties: User Properties are
// forwarded at every QoS (MQTT-3.3.2-17), in order (MQTT-3.3.2-18).
func TestInterop5UserProperties(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, cp(clientA, true))
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	for qos := byte(0); qos <= 2; qos++ {
		pub5(t, a, &paho.Publish{Topic: topics[0], QoS: qos, Properties: &paho.PublishProperties{User: slices.Clone(userProps)}})
	}
	got := []*paho.Publish{a.Recv(t), a.Recv(t), a.Recv(t)}
	disc5(t, srv, a, 0, nil)
	var qs []byte
	for _, m := range got {
		checkUserProps(t, m)
		qs = append(qs, m.QoS)
	}
	testutil.Equal(t, qosSet(qs), "[0 1 2]", "QoS")
}

// TestInterop5PayloadFormat ports test_payload_format: the Payload Format
// Indicator (MQTT-3.3.2-4) and Content Type (MQTT-3.3.2-20) are forwarded
// unaltered at every QoS.
func TestInterop5PayloadFormat(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, cp(clientA, true))
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	for qos := byte(0); qos <= 2; qos++ {
		utf8 := byte(1)
		pub5(t, a, &paho.Publish{Topic: topics[0], QoS: qos, Properties: &paho.PublishProperties{PayloadFormat: &utf8, ContentType: "My name"}})
	}
	got := []*paho.Publish{a.Recv(t), a.Recv(t), a.Recv(t)}
	disc5(t, srv, a, 0, nil)
	var qs []byte
	for _, m := range got {
		if m.Properties == nil || m.Properties.PayloadFormat == nil || *m.Properties.PayloadFormat != 1 {
			t.Fatalf("Payload Format Indicator of a QoS %d message not forwarded", m.QoS)
		}
		testutil.Equal(t, m.Properties.ContentType, "My name", "Content Type")
		qs = append(qs, m.QoS)
	}
	testutil.Equal(t, qosSet(qs), "[0 1 2]", "QoS")
}

// TestInterop5PublicationExpiry ports test_publication_expiry: messages
// queued for an offline session are dropped once their Message Expiry
// Interval has passed (MQTT-3.3.2-5), and the others are sent with the
// interval reduced by the time they waited (MQTT-3.3.2-6). Intervals scaled:
// 1 s stays, 6 s becomes 4 s, the 3 s wait 1.5 s.
func TestInterop5PublicationExpiry(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	b := connect5(t, addr, withExpiry(cp(clientB, true), 99999))
	sub5(t, b, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	long := uint32(999999999)
	disc5(t, srv, b, 0, &paho.DisconnectProperties{SessionExpiryInterval: &long})

	a := connect5(t, addr, cp(clientA, true))
	const keep = 4
	pubExp := func(qos byte, expiry uint32, payload string) {
		pub5(t, a, &paho.Publish{Topic: topics[0], QoS: qos, Payload: []byte(payload),
			Properties: &paho.PublishProperties{MessageExpiry: &expiry}})
	}
	pubExp(1, 1, "qos 1 - expire")
	pubExp(2, 1, "qos 2 - expire")
	pubExp(1, keep, "qos 1 - don't expire")
	pubExp(2, keep, "qos 2 - don't expire")
	time.Sleep(1500 * time.Millisecond)

	b = connect5(t, addr, cp(clientB, false))
	got := collect5(b, quiet)
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2: %s", len(got), describe5(got))
	}
	for _, m := range got {
		if !strings.HasSuffix(string(m.Payload), "don't expire") {
			t.Fatalf("expired message delivered: %s", describe5(got))
		}
		if m.Properties == nil || m.Properties.MessageExpiry == nil {
			t.Fatalf("%q sent without its Message Expiry Interval", m.Payload)
		}
		if e := *m.Properties.MessageExpiry; e >= keep {
			t.Fatalf("%q sent with Message Expiry Interval %d, want less than %d", m.Payload, e, keep)
		}
	}
	disc5(t, srv, a, 1, nil)
}

// TestInterop5SubscribeOptions ports test_subscribe_options: No Local
// (MQTT-3.8.3-3), Retain As Published (MQTT-3.3.1-12, -13) and Retain
// Handling 1 (only for a new subscription, MQTT-3.3.1-10), 2 (never,
// MQTT-3.3.1-11) and 0 (on every SUBSCRIBE, replacement included,
// MQTT-3.3.1-9, MQTT-3.8.4-4).
func TestInterop5SubscribeOptions(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})

	// No Local.
	a := connect5(t, addr, cp(clientA, true))
	b := connect5(t, addr, cp(clientB, true))
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2, NoLocal: true})
	sub5(t, b, paho.SubscribeOptions{Topic: topics[0], QoS: 2, NoLocal: true})
	pub5(t, a, &paho.Publish{Topic: topics[0], QoS: 1, Payload: []byte("noLocal test")})
	testutil.Equal(t, string(b.Recv(t).Payload), "noLocal test", "payload")
	b.NoMsg(t, quiet)
	a.NoMsg(t, 50*time.Millisecond) // a had the same quiet period
	disc5(t, srv, a, 1, nil)
	disc5(t, srv, b, 0, nil)

	// Retain As Published.
	a = connect5(t, addr, cp(clientA, true))
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2, RetainAsPublished: true})
	pub5(t, a, &paho.Publish{Topic: topics[0], QoS: 1, Payload: []byte("retain as published false")})
	pub5(t, a, &paho.Publish{Topic: topics[0], QoS: 1, Retain: true, Payload: []byte("retain as published true")})
	got := collect5(a, quiet)
	disc5(t, srv, a, 0, nil)
	if len(got) != 2 {
		t.Fatalf("got %d messages, want 2: %s", len(got), describe5(got))
	}
	testutil.Equal(t, got[0].Retain, false, "RETAIN of the first")
	testutil.Equal(t, got[1].Retain, true, "RETAIN of the second")

	// Retain Handling.
	retained := func(c *testutil.V5, rh byte, want int) {
		t.Helper()
		sub5(t, c, paho.SubscribeOptions{Topic: wildtopics[5], QoS: 2, RetainHandling: rh})
		got := collect5(c, quiet)
		if len(got) != want {
			t.Fatalf("Retain Handling %d: got %d messages, want %d: %s", rh, len(got), want, describe5(got))
		}
		if want == 3 {
			testutil.Equal(t, qosSet([]byte{got[0].QoS, got[1].QoS, got[2].QoS}), "[0 1 2]", "QoS")
		}
	}
	a = connect5(t, addr, cp(clientA, true))
	pub5(t, a, &paho.Publish{Topic: topics[1], QoS: 0, Retain: true, Payload: []byte("qos 0")})
	pub5(t, a, &paho.Publish{Topic: topics[2], QoS: 1, Retain: true, Payload: []byte("qos 1")})
	pub5(t, a, &paho.Publish{Topic: topics[3], QoS: 2, Retain: true, Payload: []byte("qos 2")})
	retained(a, 1, 3)
	retained(a, 1, 0)
	disc5(t, srv, a, 0, nil)

	a = connect5(t, addr, cp(clientA, true))
	retained(a, 2, 0)
	retained(a, 2, 0)
	disc5(t, srv, a, 0, nil)

	a = connect5(t, addr, cp(clientA, true))
	retained(a, 0, 3)
	retained(a, 0, 3)
	disc5(t, srv, a, 0, nil)

	cleanRetained(t, srv, addr)
}

// TestInterop5AssignedClientID ports test_assigned_clientid: a client that
// connects with a zero-length identifier is told the one the server assigned
// (MQTT-3.2.2-16).
func TestInterop5AssignedClientID(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	c := connect5(t, addr, cp("", true))
	disc5(t, srv, c, 0, nil)
	if c.Connack.Properties == nil || c.Connack.Properties.AssignedClientID == "" {
		t.Fatal("no Assigned Client Identifier")
	}
	t.Logf("assigned client identifier %s", c.Connack.Properties.AssignedClientID)
}

// TestInterop5SubscribeIdentifiers ports test_subscribe_identifiers: a
// message carries the Subscription Identifier of the matching subscription
// (MQTT-3.3.4-3), and a single copy sent for two matching subscriptions
// carries both (MQTT-3.3.4-4). Raw clients, as paho.golang keeps only one
// identifier per message.
func TestInterop5SubscribeIdentifiers(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	a, _ := connectWire(t, addr, conn5(clientA, true, 0))
	a.subscribe(456789, sub(topics[0], 2))
	b, _ := connectWire(t, addr, conn5(clientB, true, 0))
	b.subscribe(2, sub(topics[0], 2))
	b.subscribe(3, sub(topics[0]+"/#", 2))
	b.publish(topics[0], 1, false, "sub identifier test", nil)

	got := a.collect(quiet)
	if len(got) != 1 {
		t.Fatalf("client a: got %d messages, want 1", len(got))
	}
	testutil.Equal(t, fmt.Sprint(got[0].Props.SubscriptionIDs), "[456789]", "subscription identifiers")
	a.disconnect(nil)

	got = b.collect(quiet)
	if len(got) != 1 {
		t.Fatalf("client b: got %d messages, want 1", len(got))
	}
	ids := slices.Clone(got[0].Props.SubscriptionIDs)
	slices.Sort(ids)
	testutil.Equal(t, fmt.Sprint(ids), "[2 3]", "subscription identifiers")
	b.disconnect(nil)
}

// TestInterop5RequestResponse ports test_request_response: the Response
// Topic (MQTT-3.3.2-15) and Correlation Data (MQTT-3.3.2-16) of a request
// reach the responder unaltered, whose response published to the Response
// Topic reaches the requester; No Local keeps each from its own messages.
func TestInterop5RequestResponse(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	a := connect5(t, addr, cp(clientA, true))
	b := connect5(t, addr, cp(clientB, true))
	sub5(t, a, paho.SubscribeOptions{Topic: topics[0], QoS: 2, NoLocal: true})
	sub5(t, b, paho.SubscribeOptions{Topic: topics[0], QoS: 2, NoLocal: true})

	pub5(t, a, &paho.Publish{Topic: topics[0], QoS: 1, Payload: []byte("request"),
		Properties: &paho.PublishProperties{ResponseTopic: topics[0], CorrelationData: []byte("334")}})
	req := b.Recv(t)
	b.NoMsg(t, quiet)
	if req.Properties == nil {
		t.Fatal("request without properties")
	}
	testutil.Equal(t, req.Properties.ResponseTopic, topics[0], "Response Topic")
	testutil.Equal(t, string(req.Properties.CorrelationData), "334", "Correlation Data")

	// The Python responder publishes with the properties it received.
	pub5(t, b, &paho.Publish{Topic: req.Properties.ResponseTopic, QoS: 1, Payload: []byte("response"),
		Properties: &paho.PublishProperties{ResponseTopic: req.Properties.ResponseTopic,
			CorrelationData: req.Properties.CorrelationData, User: req.Properties.User}})
	resp := a.Recv(t)
	a.NoMsg(t, quiet)
	testutil.Equal(t, string(resp.Payload), "response", "payload")
	testutil.Equal(t, string(resp.Properties.CorrelationData), "334", "Correlation Data of the response")
	disc5(t, srv, a, 1, nil)
	disc5(t, srv, b, 0, nil)
}

// TestInterop5ClientTopicAlias ports test_client_topic_alias: Topic Alias 0
// is refused with a DISCONNECT (MQTT-3.3.2-8; the suite asserts a DISCONNECT
// and names 0x94 Topic Alias invalid in a comment); an alias within the
// server's Topic Alias Maximum is accepted (MQTT-3.3.2-12) and then stands
// for its topic; aliases do not outlive the connection while subscriptions
// do, so after reconnecting the same alias without a topic is refused with a
// DISCONNECT (MQTT-3.3.2-7). The client is raw, to send what paho.golang
// would not.
func TestInterop5ClientTopicAlias(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	alias := func(v uint16) func(*codec.Properties) { return func(p *codec.Properties) { p.SetTopicAlias(v) } }
	expectDisconnect := func(w *wire) {
		t.Helper()
		r, ok := w.expectGone(2 * time.Second)
		if !ok {
			t.Fatal("connection closed without DISCONNECT")
		}
		if !r.IsError() {
			t.Fatalf("DISCONNECT %v, want an error", r)
		}
		t.Logf("DISCONNECT %v (%#x)", r, byte(r))
	}

	a, _ := connectWire(t, addr, conn5(clientA, true, 0))
	p := &codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{Topic: []byte(topics[0]), QoS: 1, PacketID: a.nextID(),
		Payload: []byte("topic alias 0")}}
	alias(0)(&p.Publish.Props)
	a.Send(p)
	expectDisconnect(a)

	c := conn5(clientA, true, 0)
	c.Props.SetTopicAliasMaximum(0) // no server-to-client aliases
	c.Props.SetSessionExpiry(99999)
	a, ack := connectWire(t, addr, c)
	if !ack.Props.Has(codec.PropTopicAliasMaximum) || ack.Props.TopicAliasMaximum == 0 {
		t.Log("the server accepts no topic aliases; the suite stops here")
		a.disconnect(nil)
		return
	}
	a.subscribe(0, sub(topics[0], 2))
	a.publish(topics[0], 1, false, "topic alias 1", alias(1))
	testutil.Equal(t, string(a.recv().Payload), "topic alias 1", "payload")
	a.publish("", 1, false, "topic alias 2", alias(1))
	m := a.recv()
	testutil.Equal(t, string(m.Payload), "topic alias 2", "payload")
	testutil.Equal(t, string(m.Topic), topics[0], "topic of a message published with an alias")
	a.disconnect(nil)

	a, ack = connectWire(t, addr, conn5(clientA, false, 0))
	testutil.Equal(t, ack.SessionPresent, true, "Session Present")
	a.publish(topics[0], 1, false, "topic alias 3", nil)
	testutil.Equal(t, string(a.recv().Payload), "topic alias 3", "payload") // the subscription survived
	p = &codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{QoS: 1, PacketID: a.nextID(), Payload: []byte("topic alias 4")}}
	alias(1)(&p.Publish.Props)
	a.Send(p)
	expectDisconnect(a)
}

// TestInterop5ServerTopicAlias ports test_server_topic_alias. With a Topic
// Alias Maximum of 1 from the client, the suite expects the server to use an
// alias: the first message carries the topic and alias, the next two the
// alias alone. The specification lets the server choose whether to use
// aliases (3.3.2.3.4); Tern does, and the test keeps the suite's assertion.
// Without Topic Alias Maximum, or with 0, the server must send none
// (MQTT-3.1.2-27); and never one above the client's maximum (MQTT-3.3.2-11).
// Raw client, to see the topic names and aliases on the wire.
func TestInterop5ServerTopicAlias(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	run := func(max *uint16) []*codec.Publish {
		t.Helper()
		c := conn5(clientA, true, 0)
		if max != nil {
			c.Props.SetTopicAliasMaximum(*max)
		}
		a, _ := connectWire(t, addr, c)
		a.subscribe(0, sub(topics[0], 2))
		for qos := byte(0); qos <= 2; qos++ {
			a.publish(topics[0], qos, false, "topic alias 1", nil)
		}
		got := a.collect(quiet)
		a.disconnect(nil)
		if len(got) != 3 {
			t.Fatalf("got %d messages, want 3", len(got))
		}
		return got
	}

	one := uint16(1)
	got := run(&one)
	if !got[0].Props.Has(codec.PropTopicAlias) {
		t.Fatal("first message without a Topic Alias")
	}
	a := got[0].Props.TopicAlias
	if a == 0 || a > one {
		t.Fatalf("Topic Alias %d, want 1..%d", a, one)
	}
	testutil.Equal(t, string(got[0].Topic), topics[0], "topic name of the first message")
	for _, m := range got[1:] {
		testutil.Equal(t, m.Props.TopicAlias, a, "Topic Alias")
		testutil.Equal(t, string(m.Topic), "", "topic name with an established alias")
	}

	zero := uint16(0)
	for _, max := range []*uint16{nil, &zero} {
		for _, m := range run(max) {
			if m.Props.Has(codec.PropTopicAlias) {
				t.Fatalf("Topic Alias %d sent to a client that allows none", m.Props.TopicAlias)
			}
			testutil.Equal(t, string(m.Topic), topics[0], "topic name")
		}
	}
}

// TestInterop5MaximumPacketSize ports test_maximum_packet_size. A client
// that sends a packet over the server's Maximum Packet Size is disconnected
// with 0x95 Packet too large (3.2.2.3.6); the suite tries it only when the
// server announces less than 65535, so it runs against the default broker
// (1 MiB, the branch skipped) and one limited to 1024 bytes. Then a client
// with a Maximum Packet Size of 64 gets a message that fits and not one that
// does not, which the server discards (MQTT-3.1.2-24, MQTT-3.1.2-25). Raw
// client, as paho.golang will not send a packet over the server's limit.
func TestInterop5MaximumPacketSize(t *testing.T) {
	t.Parallel()
	f := func(t *testing.T, o engine.Options) {
		_, addr := start(t, o)
		a, ack := connectWire(t, addr, conn5(clientA, true, 0))
		serverMax := uint32(1<<28 - 1)
		if ack.Props.Has(codec.PropMaximumPacketSize) {
			serverMax = ack.Props.MaximumPacketSize
		}
		if serverMax < 65535 {
			a.Send(&codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{Topic: []byte(topics[0]),
				Payload: bytes.Repeat([]byte("."), int(serverMax))}})
			r, ok := a.expectGone(2 * time.Second)
			if !ok || r != codec.PacketTooLarge {
				t.Fatalf("DISCONNECT %v (sent: %v), want Packet too large", r, ok)
			}
		} else {
			a.disconnect(nil)
		}

		const maximumPacketSize = 64
		c := conn5(clientA, true, 0)
		c.Props.SetMaximumPacketSize(maximumPacketSize)
		a, _ = connectWire(t, addr, c)
		a.subscribe(0, sub(topics[0], 2))
		a.publish(topics[0], 0, false, strings.Repeat(".", maximumPacketSize/2), nil)
		got := a.collect(quiet)
		if len(got) != 1 {
			t.Fatalf("got %d messages that fit, want 1", len(got))
		}
		a.publish(topics[0], 1, false, strings.Repeat(".", maximumPacketSize), nil)
		if got := a.collect(quiet); len(got) != 0 {
			t.Fatalf("got a message of %d bytes over the client's Maximum Packet Size", len(got[0].Payload))
		}
		a.disconnect(nil)
	}
	t.Run("default", func(t *testing.T) { f(t, engine.Options{}) })
	t.Run("server limit 1024", func(t *testing.T) { f(t, engine.Options{MaxPacketSize: 1024}) })
}

// TestInterop5ServerKeepAlive ports test_server_keep_alive, which connects
// with Keep Alive 120 and expects Server Keep Alive 60: the setting of the
// Paho test broker. Sending a Server Keep Alive is the server's choice
// (3.2.2.3.14); when it does, the client must use it (MQTT-3.1.2-21). So the
// suite's expectation is checked against a broker configured like Paho's
// (MaxKeepAlive 60), and the default broker may answer either way.
func TestInterop5ServerKeepAlive(t *testing.T) {
	t.Parallel()
	connect := func(t *testing.T, o engine.Options) *paho.Connack {
		srv, addr := start(t, o)
		c := cp(clientA, true)
		c.KeepAlive = 120
		a := connect5(t, addr, c)
		disc5(t, srv, a, 0, nil)
		return a.Connack
	}
	t.Run("configured 60", func(t *testing.T) {
		ack := connect(t, engine.Options{MaxKeepAlive: 60})
		if ack.Properties == nil || ack.Properties.ServerKeepAlive == nil {
			t.Fatal("no Server Keep Alive")
		}
		testutil.Equal(t, *ack.Properties.ServerKeepAlive, uint16(60), "Server Keep Alive")
	})
	t.Run("default", func(t *testing.T) {
		ack := connect(t, engine.Options{})
		if ack.Properties != nil && ack.Properties.ServerKeepAlive != nil {
			t.Logf("Server Keep Alive %d", *ack.Properties.ServerKeepAlive)
		} else {
			t.Log("no Server Keep Alive: the client's 120 s stands")
		}
	})
}

// TestInterop5FlowControl1 ports test_flow_control1: with a client Receive
// Maximum of 2 the server has at most two QoS 1 messages unacknowledged
// towards it (MQTT-3.3.4-9) while still sending the PUBACKs for the client's
// own publishes (MQTT-3.3.4-10); acknowledging one lets the third out.
func TestInterop5FlowControl1(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	const clientReceiveMaximum = 2
	c := conn5(clientA, true, 0)
	c.Props.SetReceiveMaximum(clientReceiveMaximum)
	c.Props.SetSessionExpiry(0)
	w, _ := connectWire(t, addr, c)
	w.subscribe(0, sub(topics[0], 2))

	// Publish without waiting, as the Python test does, then read packet by
	// packet without acknowledging anything.
	var out []byte
	pubs := 0
	for i := 1; i <= clientReceiveMaximum+1; i++ {
		out = append(out, w.Encode(&codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{Topic: []byte(topics[0]),
			QoS: 1, PacketID: uint16(i), Payload: fmt.Appendf(nil, "message %d", i)}})...)
		pubs++
	}
	w.Write(out)
	var publishes []*codec.Publish
	acks := 0
	for acks < pubs || len(publishes) < clientReceiveMaximum {
		p, err := w.Read(5 * time.Second)
		if err != nil {
			t.Fatalf("after %d PUBACKs and %d PUBLISHes: %v", acks, len(publishes), err)
		}
		switch p.Type {
		case codec.PUBACK:
			acks++
		case codec.PUBLISH:
			testutil.Equal(t, p.Publish.QoS, byte(1), "QoS")
			publishes = append(publishes, &p.Publish)
		default:
			t.Fatalf("got %s", describePacket(p))
		}
	}
	if len(publishes) > clientReceiveMaximum {
		t.Fatalf("%d PUBLISHes unacknowledged, over the Receive Maximum of %d", len(publishes), clientReceiveMaximum)
	}
	w.ExpectSilence(500 * time.Millisecond) // the first is not acknowledged yet

	w.ack(codec.PUBACK, publishes[0].PacketID)
	p := w.Expect(codec.PUBLISH, 5*time.Second)
	testutil.Equal(t, p.Publish.QoS, byte(1), "QoS")
	testutil.Equal(t, string(p.Publish.Payload), "message 3", "payload")
	w.ack(codec.PUBACK, publishes[1].PacketID)
	w.ack(codec.PUBACK, p.Publish.PacketID)
	w.disconnect(nil)
}

// TestInterop5FlowControl2 ports test_flow_control2: a client that sends
// more QoS 2 PUBLISHes than the server's Receive Maximum without completing
// them (MQTT-3.3.4-7 forbids it) is disconnected with 0x93 Receive Maximum
// exceeded (3.3.4).
func TestInterop5FlowControl2(t *testing.T) {
	t.Parallel()
	_, addr := start(t, engine.Options{})
	w, ack := connectWire(t, addr, conn5(clientA, true, 0))
	serverReceiveMaximum := 65535
	if ack.Props.Has(codec.PropReceiveMaximum) {
		serverReceiveMaximum = int(ack.Props.ReceiveMaximum)
	}
	var out []byte
	for i := 1; i <= serverReceiveMaximum+1; i++ {
		out = append(out, w.Encode(&codec.Packet{Type: codec.PUBLISH, Publish: codec.Publish{Topic: []byte(topics[0]),
			QoS: 2, PacketID: uint16(i), Payload: fmt.Appendf(nil, "message %d", i)}})...)
	}
	w.Write(out)
	r, ok := w.expectGone(10 * time.Second)
	if !ok {
		t.Fatal("connection closed without DISCONNECT")
	}
	testutil.Equal(t, byte(r), byte(codec.ReceiveMaximumExceeded), "DISCONNECT reason code") // 147
}

// TestInterop5WillDelay ports test_will_delay: a will with a Will Delay
// Interval is published when the delay or the session ends, whichever is
// first (MQTT-3.1.3-9, 3.1.3.2.2). Scaled: delay 3 s and session 5 s (the
// will after about 4 s, ±1) become 1 s and 2 s; delay 5 s and session 0 (at
// once) become 3 s and 0; delay 5 s and session 2 s (after about 3 s, ±1)
// become 3 s and 1 s. The client that leaves is raw, for the abrupt close.
func TestInterop5WillDelay(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	f := func(delay, expiry uint32, lo, hi time.Duration) {
		t.Helper()
		c := conn5(clientA, true, 0)
		c.Props.SetSessionExpiry(expiry)
		c.Will, c.WillQoS, c.WillTopic, c.WillPayload = true, 2, []byte(topics[0]), []byte("test_will_delay will message")
		c.WillProps.SetWillDelay(delay)
		a, ack := connectWire(t, addr, c)
		testutil.Equal(t, ack.SessionPresent, false, "Session Present")
		b := connect5(t, addr, cp(clientB, true))
		sub5(t, b, paho.SubscribeOptions{Topic: topics[0], QoS: 2})

		// The clock starts before the close: the broker may see it, and
		// start the delay, before this goroutine runs again.
		began := time.Now()
		a.Close() // terminate
		var m *paho.Publish
		select {
		case m = <-b.Msgs:
		case <-time.After(hi + 2*time.Second):
			t.Fatalf("delay %d s, session %d s: no will", delay, expiry)
		}
		took := time.Since(began)
		if took < lo || took > hi {
			t.Fatalf("delay %d s, session %d s: will after %v, want between %v and %v", delay, expiry, took, lo, hi)
		}
		testutil.Equal(t, m.Topic, topics[0], "will topic")
		testutil.Equal(t, string(m.Payload), "test_will_delay will message", "will payload")
		testutil.Equal(t, m.QoS, byte(2), "will QoS")
		disc5(t, srv, b, 0, nil)
	}
	f(1, 2, time.Second, 2*time.Second)
	f(3, 0, 0, time.Second)
	f(3, 1, time.Second, 2*time.Second)
}

// TestInterop5SharedSubscriptions ports test_shared_subscriptions: two
// clients each subscribed to a shared subscription and to an ordinary one
// each get a message on the ordinary topic, while a message on the shared
// topic goes to one member of the group only (4.8.2).
func TestInterop5SharedSubscriptions(t *testing.T) {
	t.Parallel()
	srv, addr := start(t, engine.Options{})
	const topicPrefix = "client_test5/"
	sharedSubTopic := "$share/sharename/" + topicPrefix + "x"
	sharedPubTopic := topicPrefix + "x"

	a := connect5(t, addr, cp(clientA, true))
	testutil.Equal(t, a.Connack.SessionPresent, false, "Session Present")
	sub5(t, a, paho.SubscribeOptions{Topic: sharedSubTopic, QoS: 2}, paho.SubscribeOptions{Topic: topics[0], QoS: 2})
	b := connect5(t, addr, cp(clientB, true))
	testutil.Equal(t, b.Connack.SessionPresent, false, "Session Present")
	sub5(t, b, paho.SubscribeOptions{Topic: sharedSubTopic, QoS: 2}, paho.SubscribeOptions{Topic: topics[0], QoS: 2})

	const count = 1
	for i := range count {
		pub5(t, b, &paho.Publish{Topic: topics[0], QoS: 0, Payload: fmt.Appendf(nil, "message %d", i)})
	}
	testutil.Equal(t, len(collect5(a, quiet)), count, "messages to a")
	testutil.Equal(t, len(collect5(b, 50*time.Millisecond)), count, "messages to b")

	for i := range count {
		pub5(t, b, &paho.Publish{Topic: sharedPubTopic, QoS: 0, Payload: fmt.Appendf(nil, "message %d", i)})
	}
	ga := collect5(a, quiet)
	gb := collect5(b, 50*time.Millisecond)
	if len(ga)+len(gb) != count {
		t.Fatalf("shared message received %d times, want %d: a %s b %s", len(ga)+len(gb), count, describe5(ga), describe5(gb))
	}
	disc5(t, srv, a, 1, nil)
	disc5(t, srv, b, 0, nil)
}
