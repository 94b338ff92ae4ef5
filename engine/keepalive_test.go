package engine_test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// Keep-alive tests. They wait for real timeouts of 1 to 3 seconds, so they
// run in parallel.

// MQTT-3.1.2-22 (3.1.1: MQTT-3.1.2-24): with a non-zero Keep Alive, a
// client that sends nothing for one and a half times the interval is
// disconnected as if the network had failed: a 5.0 client gets DISCONNECT
// 0x8D (Keep Alive timeout) first, earlier levels see the close.
func TestKeepAliveTimeout(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(name string, c *codec.Connect) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := testutil.DialRaw(t, addr)
			start := time.Now()
			ack := r.Connect(c)
			testutil.Equal(t, ack.ReasonCode, codec.Success, "CONNACK")
			if c.ProtocolVersion == codec.Version5 {
				r.ExpectDisconnect(codec.KeepAliveTimeout, 3*time.Second)
			} else {
				r.ExpectClosed(3 * time.Second)
			}
			// The broker saw the CONNECT after start, so a correct
			// broker cannot close before 1.5 s have passed here.
			if d := time.Since(start); d < 1500*time.Millisecond {
				t.Fatalf("disconnected after %v, before 1.5 times the 1 s Keep Alive", d)
			}
		})
	}
	f("5.0", raw5("ka5", 1))
	f("3.1.1", raw311("ka311", 1))
	f("3.1", &codec.Connect{ProtocolVersion: codec.Version31, CleanStart: true, KeepAlive: 1, ClientID: []byte("ka31")})
}

// MQTT-3.12.4-1: every PINGREQ is answered with PINGRESP. MQTT-3.1.2-22:
// any control packet within the interval keeps the connection, PINGREQ or
// other.
func TestKeepAliveKeptByTraffic(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	addr := srv.Addr().String()
	f := func(name string, p *codec.Packet, answer codec.PacketType) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := testutil.DialRaw(t, addr)
			r.Connect(raw5("kk-"+name, 1))
			for range 6 { // 3 s, twice the 1.5 s bound
				time.Sleep(500 * time.Millisecond)
				r.Send(p)
				if answer != 0 {
					r.Expect(answer, time.Second)
				}
			}
			r.Send(&codec.Packet{Type: codec.PINGREQ})
			r.Expect(codec.PINGRESP, time.Second)
		})
	}
	f("pingreq", &codec.Packet{Type: codec.PINGREQ}, codec.PINGRESP)
	f("publish", pubPacket("kk/x", "alive", 0, 0), 0)
}

// 3.1.2.10: a Keep Alive of 0 turns the mechanism off: a silent client stays
// connected.
func TestKeepAliveZero(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{})
	r := testutil.DialRaw(t, srv.Addr().String())
	ack := r.Connect(raw5("ka0", 0))
	if ack.Props.Has(codec.PropServerKeepAlive) {
		t.Fatalf("Server Keep Alive %d sent with no MaxKeepAlive configured", ack.Props.ServerKeepAlive)
	}
	r.ExpectSilence(2 * time.Second)
	r.Send(&codec.Packet{Type: codec.PINGREQ})
	r.Expect(codec.PINGRESP, time.Second)
}

// MQTT-3.2.2-21: a server that wants another Keep Alive than the client asked
// for sends Server Keep Alive in CONNACK; here the broker caps Keep Alive at 2
// s, also for a client that asked for none. MQTT-3.2.2-22: without a Server
// Keep Alive the client's value stands, so none is sent for values within
// the cap.
func TestServerKeepAlive(t *testing.T) {
	srv := testutil.StartBroker(t, engine.Options{MaxKeepAlive: 2})
	addr := srv.Addr().String()
	c := testutil.ConnectV5(t, addr, &paho.Connect{ClientID: "ska-paho", CleanStart: true, KeepAlive: 60})
	if c.Connack.Properties == nil || c.Connack.Properties.ServerKeepAlive == nil {
		t.Fatal("no Server Keep Alive for a client asking 60 s with a 2 s cap")
	}
	testutil.Equal(t, *c.Connack.Properties.ServerKeepAlive, uint16(2), "Server Keep Alive")

	f := func(asked uint16, want uint16, sent bool) {
		t.Helper()
		r := testutil.DialRaw(t, addr)
		ack := r.Connect(raw5("ska-raw", asked))
		testutil.Equal(t, ack.Props.Has(codec.PropServerKeepAlive), sent, "Server Keep Alive present")
		if sent {
			testutil.Equal(t, ack.Props.ServerKeepAlive, want, "Server Keep Alive")
		}
	}
	f(60, 2, true)
	f(0, 2, true)
	f(3, 2, true)
	f(2, 0, false)
	f(1, 0, false)
}

// MQTT-3.2.2-21, MQTT-3.1.2-22: once the server announced a Server Keep
// Alive, that value is the one enforced: a client that asked for 60 s and
// got 2 s is disconnected with 0x8D after 3 s of silence.
func TestServerKeepAliveEnforced(t *testing.T) {
	t.Parallel()
	srv := testutil.StartBroker(t, engine.Options{MaxKeepAlive: 2})
	r := testutil.DialRaw(t, srv.Addr().String())
	start := time.Now()
	ack := r.Connect(raw5("ska-enforced", 60))
	testutil.Equal(t, ack.Props.ServerKeepAlive, uint16(2), "Server Keep Alive")
	r.ExpectDisconnect(codec.KeepAliveTimeout, 5*time.Second)
	if d := time.Since(start); d < 3*time.Second {
		t.Fatalf("disconnected after %v, before 1.5 times the 2 s Server Keep Alive", d)
	}
}
