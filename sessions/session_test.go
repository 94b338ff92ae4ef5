package sessions

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/message"
)

func newTestSession(t *testing.T, o Options) (*Table, *Session) {
	t.Helper()
	tb := NewTable(o)
	s, resumed, old := tb.Acquire("c1", false)
	if resumed || old != nil {
		t.Fatal("fresh table returned an existing session")
	}
	return tb, s
}

func msg(topic string, qos byte, payload int) *message.Message {
	return message.New([]byte(topic), make([]byte, payload), nil, qos, false, 0, time.Now())
}

func TestAcquireResumeAndCleanStart(t *testing.T) {
	tb, s := newTestSession(t, Options{})
	if s2, resumed, old := tb.Acquire("c1", false); s2 != s || !resumed || old != nil {
		t.Fatal("Acquire without clean start must resume the session")
	}
	s3, resumed, old := tb.Acquire("c1", true)
	if s3 == s || resumed || old != s || !s.Ended() {
		t.Fatal("clean start must replace the session and hand back the old one ended")
	}
	if tb.Len() != 1 || tb.Get("c1") != s3 {
		t.Fatalf("table holds %d sessions", tb.Len())
	}
	if tb.Remove(s) {
		t.Fatal("removing a replaced session must not remove its successor")
	}
	if !tb.Remove(s3) || tb.Len() != 0 || tb.Get("c1") != nil {
		t.Fatal("Remove")
	}
	if s.Seq == s3.Seq {
		t.Fatal("sessions share a Seq")
	}
}

func TestRangeSeesEverySession(t *testing.T) {
	tb := NewTable(Options{Shards: 4})
	for i := 0; i < 100; i++ {
		tb.Acquire(fmt.Sprint("c", i), false)
	}
	n := 0
	tb.Range(func(*Session) bool { n++; return true })
	if n != 100 {
		t.Fatalf("Range saw %d of 100", n)
	}
	n = 0
	tb.Range(func(*Session) bool { n++; return n < 10 })
	if n != 10 {
		t.Fatalf("Range did not stop: %d", n)
	}
}

func TestOfferOnlineOfflineAndWindow(t *testing.T) {
	_, s := newTestSession(t, Options{})
	now := time.Now().UnixNano()
	// Offline: queued.
	if _, send, drop := s.Offer(Delivery{Msg: msg("t", 1, 1), QoS: 1}, now, true); send || drop != Accepted {
		t.Fatal("offline delivery must be queued")
	}
	if n, _ := s.Queued(); n != 1 {
		t.Fatalf("queued %d", n)
	}
	s.Attach("conn", 2)
	// Online, but the queue is not empty: new messages queue behind it to keep order.
	if _, send, _ := s.Offer(Delivery{Msg: msg("t", 1, 1), QoS: 1}, now, true); send {
		t.Fatal("must not overtake the queue")
	}
	var ids []uint16
	for {
		d, ok, _ := s.Next(now)
		if !ok {
			break
		}
		ids = append(ids, d.PacketID)
	}
	if len(ids) != 2 || ids[0] == ids[1] || ids[0] == 0 {
		t.Fatalf("drained ids %v", ids)
	}
	// Window of 2 is full: a third QoS 1 message waits; QoS 0 passes.
	if _, send, _ := s.Offer(Delivery{Msg: msg("t", 1, 1), QoS: 1}, now, true); send {
		t.Fatal("window full: must queue")
	}
	if !s.Ack(ids[0], 'a') || s.Ack(ids[0], 'a') {
		t.Fatal("PUBACK must complete once")
	}
	d, ok, _ := s.Next(now)
	if !ok || d.QoS != 1 || d.PacketID == 0 {
		t.Fatal("window freed: next must go")
	}
	if _, send, _ := s.Offer(Delivery{Msg: msg("t", 0, 1), QoS: 0}, now, false); send {
		t.Fatal("no room: must not send")
	}
	s.Clear()
}

func TestQoS2OutboundFlowAndRedeliveryOrder(t *testing.T) {
	_, s := newTestSession(t, Options{})
	s.Attach("conn", 10)
	now := time.Now().UnixNano()
	var sent []Delivery
	for i := 0; i < 3; i++ {
		d, send, _ := s.Offer(Delivery{Msg: msg("t", 2, 1), QoS: 2}, now, true)
		if !send {
			t.Fatal("must send")
		}
		sent = append(sent, d)
	}
	if s.Ack(sent[0].PacketID, 'c') {
		t.Fatal("PUBCOMP before PUBREC must not complete")
	}
	if !s.Ack(sent[1].PacketID, 'r') || !s.Ack(sent[1].PacketID, 'r') {
		t.Fatal("PUBREC, and a repeated PUBREC, must be accepted")
	}
	infl := s.InflightInOrder()
	if len(infl) != 3 || infl[0].PacketID != sent[0].PacketID || !infl[1].Released || infl[1].Msg != nil {
		t.Fatalf("in-flight order/state wrong: %+v", infl)
	}
	if !s.Ack(sent[1].PacketID, 'c') || s.InflightLen() != 2 {
		t.Fatal("PUBCOMP must complete")
	}
	if s.Ack(sent[0].PacketID, 'a') {
		t.Fatal("PUBACK for a QoS 2 delivery")
	}
	if s.Ack(9999, 'a') || s.Ack(sent[0].PacketID, 'x') {
		t.Fatal("unknown id or kind")
	}
	s.Clear()
}

func TestQueueBoundsDropOldestQoS0First(t *testing.T) {
	tb, s := newTestSession(t, Options{MaxQueuedMessages: 3, MaxQueuedBytes: 1 << 20})
	now := time.Now().UnixNano()
	s.Offer(Delivery{Msg: msg("q0-old", 0, 1), QoS: 0}, now, true)
	s.Offer(Delivery{Msg: msg("q1-a", 1, 1), QoS: 1}, now, true)
	s.Offer(Delivery{Msg: msg("q1-b", 1, 1), QoS: 1}, now, true)
	// Full: the oldest QoS 0 makes room, and that loss is counted.
	if _, _, drop := s.Offer(Delivery{Msg: msg("q1-c", 1, 1), QoS: 1}, now, true); drop != Accepted {
		t.Fatalf("drop = %v", drop)
	}
	if n := tb.EvictedQoS0(); n != 1 {
		t.Fatalf("evicted = %d, want 1", n)
	}
	// Full of QoS 1: a new QoS 1 is refused, a new QoS 0 dropped.
	if _, _, drop := s.Offer(Delivery{Msg: msg("q1-d", 1, 1), QoS: 1}, now, true); drop != RefusedQueueFull {
		t.Fatalf("drop = %v, want refused", drop)
	}
	if _, _, drop := s.Offer(Delivery{Msg: msg("q0-new", 0, 1), QoS: 0}, now, true); drop != DroppedQueueQoS0 {
		t.Fatalf("drop = %v, want dropped", drop)
	}
	s.Attach("conn", 10)
	var topics []string
	for {
		d, ok, _ := s.Next(now)
		if !ok {
			break
		}
		topics = append(topics, string(d.Msg.Topic))
	}
	if fmt.Sprint(topics) != "[q1-a q1-b q1-c]" {
		t.Fatalf("queue order %v", topics)
	}
	s.Clear()

	// Byte bound.
	_, s = newTestSession(t, Options{MaxQueuedMessages: 100, MaxQueuedBytes: 100})
	if _, _, drop := s.Offer(Delivery{Msg: msg("big", 1, 200), QoS: 1}, now, true); drop != RefusedQueueFull {
		t.Fatalf("over the byte bound: %v", drop)
	}
}

func TestExpiredMessagesAreNeverDelivered(t *testing.T) {
	_, s := newTestSession(t, Options{})
	start := time.Now()
	m := message.New([]byte("t"), []byte("x"), nil, 1, false, 0, start)
	m.ExpireAt = start.Add(time.Second).UnixNano()
	s.Offer(Delivery{Msg: m, QoS: 1}, start.UnixNano(), true)
	s.Attach("conn", 10)
	if _, ok, expired := s.Next(start.Add(2 * time.Second).UnixNano()); ok || expired != 1 {
		t.Fatalf("expired message delivered (ok=%v expired=%d)", ok, expired)
	}
	m2 := message.New([]byte("t"), []byte("x"), nil, 1, false, 0, start)
	m2.ExpireAt = start.UnixNano() - 1
	if _, _, drop := s.Offer(Delivery{Msg: m2, QoS: 1}, start.UnixNano(), true); drop != DroppedExpired {
		t.Fatal("already expired on offer")
	}
}

func TestInboundQoS2AndSubs(t *testing.T) {
	_, s := newTestSession(t, Options{})
	if !s.ReceiveQoS2(7) || s.ReceiveQoS2(7) || !s.HasQoS2(7) || s.InboundQoS2Len() != 1 {
		t.Fatal("inbound QoS 2 dedup")
	}
	if !s.ReleaseQoS2(7) || s.ReleaseQoS2(7) {
		t.Fatal("PUBREL")
	}
	if s.SetSub("a/#", SubOptions{QoS: 1}) || !s.SetSub("a/#", SubOptions{QoS: 2}) {
		t.Fatal("SetSub existed")
	}
	if s.Subs()["a/#"].QoS != 2 || !s.DeleteSub("a/#") || s.DeleteSub("a/#") {
		t.Fatal("subs")
	}
	if s.Attach("c1", 0) != nil || s.Attach("c2", 5) != "c1" || s.Detach("c1") || !s.Detach("c2") || s.Owner() != nil {
		t.Fatal("attach/detach")
	}
}

func TestPacketIDsSkipInUse(t *testing.T) {
	_, s := newTestSession(t, Options{})
	s.Attach("conn", 65535)
	now := time.Now().UnixNano()
	seen := map[uint16]bool{}
	m := msg("t", 1, 0)
	for i := 0; i < 70000; i++ {
		d, send, _ := s.Offer(Delivery{Msg: m.Ref(), QoS: 1}, now, true)
		if i < 65535 {
			if !send || d.PacketID == 0 || seen[d.PacketID] {
				t.Fatalf("delivery %d: id %d reused or zero", i, d.PacketID)
			}
			seen[d.PacketID] = true
		} else if send {
			t.Fatal("window of 65535 exceeded")
		}
	}
	s.Clear()
	m.Release()
}

func TestConcurrentAcquire(t *testing.T) {
	tb := NewTable(Options{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				s, _, _ := tb.Acquire(fmt.Sprint("c", i%50), i%7 == 0)
				s.Lock()
				s.SetSub("x", SubOptions{})
				s.Unlock()
			}
		}()
	}
	wg.Wait()
	if tb.Len() != 50 {
		t.Fatalf("%d sessions, want 50", tb.Len())
	}
}

// On a new connection with a smaller Receive Maximum only that many
// in-flight deliveries are resent at once (MQTT-3.3.4-9); the rest follow as
// acknowledgements arrive, in order, before anything new.
func TestResendWithinReceiveMaximum(t *testing.T) {
	_, s := newTestSession(t, Options{})
	s.Attach("c1", 10)
	now := time.Now().UnixNano()
	var ids []uint16
	for i := 0; i < 5; i++ {
		d, send, _ := s.Offer(Delivery{Msg: msg(fmt.Sprint("m", i), 1, 1), QoS: 1}, now, true)
		if !send {
			t.Fatal("must send")
		}
		ids = append(ids, d.PacketID)
	}
	s.Detach("c1")
	s.Attach("c2", 2)
	first := s.Resend()
	if len(first) != 2 || first[0].PacketID != ids[0] || first[1].PacketID != ids[1] {
		t.Fatalf("resent %d first", len(first))
	}
	if _, ok := s.ResendPending(); ok {
		t.Fatal("window full: nothing more yet")
	}
	if _, send, _ := s.Offer(Delivery{Msg: msg("new", 1, 1), QoS: 1}, now, true); send {
		t.Fatal("a new message must wait behind pending resends")
	}
	s.Ack(ids[0], 'a')
	in, ok := s.ResendPending()
	if !ok || in.PacketID != ids[2] {
		t.Fatal("next pending resend in order")
	}
	s.Ack(ids[3], 'a') // acknowledged although not resent yet on this connection
	s.Ack(ids[1], 'a')
	if in, ok := s.ResendPending(); !ok || in.PacketID != ids[4] {
		t.Fatal("last pending resend")
	}
	if _, ok := s.ResendPending(); ok {
		t.Fatal("nothing pending")
	}
	s.Clear()
}

func TestUnlimitedQueueKeepsByteBound(t *testing.T) {
	_, s := newTestSession(t, Options{MaxQueuedMessages: -1, MaxQueuedBytes: 10000})
	now := time.Now().UnixNano()
	for i := 0; i < 5000; i++ {
		if _, _, drop := s.Offer(Delivery{Msg: msg("t", 1, 0), QoS: 1}, now, true); drop != Accepted {
			t.Fatalf("message %d refused with no message limit", i)
		}
	}
	if _, _, drop := s.Offer(Delivery{Msg: msg("t", 1, 6000), QoS: 1}, now, true); drop != RefusedQueueFull {
		t.Fatal("the byte bound must still apply")
	}
	s.Clear()
}

// The count of queued QoS 0 deliveries follows every way into and out of the
// queue, so a full queue of QoS 1/2 is refused without a scan for QoS 0.
func TestQueuedQoS0Count(t *testing.T) {
	_, s := newTestSession(t, Options{MaxQueuedMessages: 4, MaxQueuedBytes: 1 << 20})
	count := func() int {
		n := 0
		s.EachQueued(func(d *Delivery) {
			if d.QoS == 0 {
				n++
			}
		})
		return n
	}
	now := time.Now().UnixNano()
	held := msg("t", 0, 1)
	held.Hold()
	for i, qos := range []byte{0, 1, 0, 2, 1, 1} {
		m := msg("t", qos, 1)
		if i == 2 {
			m.Release()
			m = held.Ref()
		}
		s.Offer(Delivery{Msg: m, QoS: qos}, now, true)
		if s.queueQoS0 != count() {
			t.Fatalf("after offer %d: counted %d, queued %d", i, s.queueQoS0, count())
		}
	}
	s.Withdraw(held)
	if s.queueQoS0 != count() {
		t.Fatalf("after withdraw: counted %d, queued %d", s.queueQoS0, count())
	}
	held.Release()
	s.RestoreQueued(Delivery{Msg: msg("t", 0, 1)})
	for {
		if _, ok, _ := s.Next(now); !ok {
			break
		}
		if s.queueQoS0 != count() {
			t.Fatalf("after next: counted %d, queued %d", s.queueQoS0, count())
		}
	}
	s.Clear()
	if s.queueQoS0 != 0 {
		t.Fatalf("after clear: %d", s.queueQoS0)
	}
}
