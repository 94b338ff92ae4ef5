package fuzz

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
	"github.com/tern-mqtt/tern/message"
)

// FuzzBrokerSession connects a client at a level chosen by the input, sends
// the rest of the input as its packet stream, and then checks that the broker
// still serves a healthy client. When fuzzing ends it checks that every
// connection, session and message was released: nothing the input did may
// leak. The input is interpreted as: byte 0 picks the protocol level, the
// rest is sent as is, so the corpus holds both valid packet sequences (seeded
// below) and arbitrary bytes.
func FuzzBrokerSession(f *testing.F) {
	srv := testutil.StartBroker(f, engine.Options{ConnectTimeout: 2 * time.Second, MaxPacketSize: 64 << 10, SysInterval: -1,
		MaxQueuedMessages: 100, TopicAliasMax: 8})
	addr := srv.Addr().String()
	for _, s := range seeds() {
		f.Add(s)
	}
	// Messages are counted process-wide: other brokers of this test binary
	// (earlier runs with -count) may still hold theirs.
	baseline, _ := message.Live()
	f.Cleanup(func() { checkNoLeaks(f, srv, baseline) })
	fuzzAddr = addr
	f.Fuzz(func(t *testing.T, data []byte) { runOne(t, data) })
}

var fuzzAddr string

func runOne(t *testing.T, data []byte) {
	addr := fuzzAddr
	{
		if len(data) == 0 {
			return
		}
		version := []byte{codec.Version31, codec.Version311, codec.Version5}[int(data[0])%3]
		nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		connect := codec.Connect{ProtocolVersion: version, CleanStart: true, KeepAlive: 30, ClientID: []byte("fuzz")}
		stream, _ := connect.Append(nil)
		stream = append(stream, data[1:]...)
		_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := nc.Write(stream); err != nil {
			return // the broker closed early: fine, as long as it survives
		}
		// Half-close: the broker sees the end of the stream after the input
		// and closes; read what it answers until then.
		_ = nc.(*net.TCPConn).CloseWrite()
		_ = nc.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, nc)
		nc.Close()
		healthCheck(t, addr)
	}
}

// healthCheck connects a fresh 3.1.1 client and expects CONNACK and a PINGRESP.
func healthCheck(t *testing.T, addr string) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("broker stopped accepting: %v", err)
	}
	defer nc.Close()
	c := codec.Connect{ProtocolVersion: codec.Version311, CleanStart: true, ClientID: []byte("health")}
	b, _ := c.Append(nil)
	b = codec.AppendPingreq(b)
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := nc.Write(b); err != nil {
		t.Fatalf("write to broker: %v", err)
	}
	d := codec.Decoder{Version: codec.Version311}
	var p codec.Packet
	var buf []byte
	want := []codec.PacketType{codec.CONNACK, codec.PINGRESP}
	tmp := make([]byte, 512)
	for len(want) > 0 {
		n, err := d.Decode(buf, &p)
		if errors.Is(err, codec.ErrNeedMore) {
			m, rerr := nc.Read(tmp)
			if rerr != nil {
				t.Fatalf("broker did not answer a healthy client: %v", rerr)
			}
			buf = append(buf, tmp[:m]...)
			continue
		}
		if err != nil {
			t.Fatalf("broker sent a bad packet: %v", err)
		}
		if p.Type != want[0] {
			t.Fatalf("got %v, want %v", p.Type, want[0])
		}
		buf, want = buf[n:], want[1:]
	}
}

// checkNoLeaks waits for every connection to close and checks that no
// session survives (every fuzz session is clean) and that the only messages
// alive are the retained ones (none with a store: they live on disk).
func checkNoLeaks(t testing.TB, srv *engine.Server, baseline int64) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := srv.Snapshot()
		live, counting := message.Live()
		live -= baseline
		want := int64(s.Retained)
		if os.Getenv("TERN_TEST_STORE") != "" {
			want = 0
		}
		ok := s.Connections == 0 && s.Sessions == 0 && s.Subscriptions == 0 && (!counting || live == want)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("leak after fuzzing: %+v, live messages %d (counted: %v)", s, live, counting)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// seeds are packet sequences that reach deep into the state machine.
func seeds() [][]byte {
	var out [][]byte
	for _, v := range []byte{codec.Version311, codec.Version5} {
		lvl := byte(1)
		if v == codec.Version5 {
			lvl = 2
		}
		var b []byte
		sub := codec.Subscribe{PacketID: 1, Subscriptions: []codec.Subscription{{Filter: []byte("a/#"), QoS: 2}, {Filter: []byte("+/b"), QoS: 1}}}
		b, _ = sub.Append(b, v)
		for qos := byte(0); qos <= 2; qos++ {
			p := codec.Publish{QoS: qos, Topic: []byte("a/b"), PacketID: uint16(qos) + 10, Payload: []byte("x"), Retain: qos == 1}
			if v == codec.Version5 {
				p.Props.SetMessageExpiry(60)
				p.Props.SetTopicAlias(1)
				p.Props.AddUser([]byte("k"), []byte("v"))
			}
			b, _ = p.Append(b, v)
		}
		rel := codec.Ack{Type: codec.PUBREL, PacketID: 12}
		b, _ = rel.Append(b, v)
		ack := codec.Ack{Type: codec.PUBACK, PacketID: 1}
		b, _ = ack.Append(b, v)
		rec := codec.Ack{Type: codec.PUBREC, PacketID: 2}
		b, _ = rec.Append(b, v)
		comp := codec.Ack{Type: codec.PUBCOMP, PacketID: 2}
		b, _ = comp.Append(b, v)
		uns := codec.Unsubscribe{PacketID: 3, Filters: [][]byte{[]byte("a/#"), []byte("nope")}}
		b, _ = uns.Append(b, v)
		b = codec.AppendPingreq(b)
		out = append(out, append([]byte{lvl}, b...))
		dis := codec.Disconnect{ReasonCode: codec.DisconnectWithWill}
		d, _ := dis.Append(nil, v)
		out = append(out, append(append([]byte{lvl}, b...), d...))
	}
	out = append(out, []byte{0, 0xff, 0xff, 0xff, 0xff, 0x7f}, []byte{2, 0x30, 0x03, 0x00, 0x01, '#'})
	return out
}
