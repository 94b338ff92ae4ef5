package engine_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/tern-mqtt/tern/auth"
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/internal/testutil"
)

// 5.0 enhanced authentication with SCRAM-SHA-256 (MQTT 5.0 section 4.12):
// CONNECT → AUTH 0x18 → AUTH 0x18 → CONNACK, and re-authentication
// AUTH 0x19 → AUTH 0x18 → AUTH 0x18 → AUTH 0x00.

// startScramBroker returns the address and the user names Authorize saw.
func startScramBroker(t *testing.T) (string, func() []string) {
	t.Helper()
	p, err := auth.ParsePasswords(strings.NewReader("sam:" + auth.ScramHash([]byte("pw"), 4096) + "\n"))
	testutil.Require(t, err, "passwords")
	var mu sync.Mutex
	var users []string
	srv := testutil.StartBroker(t, engine.Options{
		EnhancedAuth: func(method string) engine.AuthExchange {
			if method != auth.ScramMethod {
				return nil
			}
			return p.StartScram()
		},
		Authorize: func(c *engine.ConnectInfo) engine.Rules {
			mu.Lock()
			users = append(users, string(c.Username))
			mu.Unlock()
			return nil
		},
	})
	return srv.Addr().String(), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), users...) }
}

func authPacket(reason codec.ReasonCode, method string, data []byte) *codec.Packet {
	p := &codec.Packet{Type: codec.AUTH, Auth: codec.Auth{ReasonCode: reason}}
	p.Auth.Props.SetAuthMethod([]byte(method))
	p.Auth.Props.SetAuthData(data)
	return p
}

func scramConnect(t *testing.T, addr, password string) (*wireClient, *testutil.ScramClient, *codec.Packet) {
	t.Helper()
	sc := &testutil.ScramClient{User: "sam", Password: password}
	c := dialWire(t, addr, codec.Version5)
	p := &codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, KeepAlive: 30, ClientID: []byte("scram")}}
	p.Connect.Props.SetAuthMethod([]byte(auth.ScramMethod))
	p.Connect.Props.SetAuthData(sc.First())
	c.send(p)
	a := c.expect(codec.AUTH)
	if a.Auth.ReasonCode != codec.ContinueAuthentication || string(a.Auth.Props.AuthMethod) != auth.ScramMethod {
		t.Fatalf("AUTH %v %q, want continue authentication", a.Auth.ReasonCode, a.Auth.Props.AuthMethod)
	}
	final, err := sc.Final(a.Auth.Props.AuthData)
	testutil.Require(t, err, "client-final")
	c.send(authPacket(codec.ContinueAuthentication, auth.ScramMethod, final))
	next, err := c.next(wireTimeout)
	testutil.Require(t, err, "after client-final")
	return c, sc, next
}

func TestScramConnectAndReauthenticate(t *testing.T) {
	addr, users := startScramBroker(t)
	c, sc, p := scramConnect(t, addr, "pw")
	if p.Type != codec.CONNACK || p.Connack.ReasonCode != codec.Success {
		t.Fatalf("got %v %v, want CONNACK success", p.Type, p.Connack.ReasonCode)
	}
	if string(p.Connack.Props.AuthMethod) != auth.ScramMethod || !sc.Verify(p.Connack.Props.AuthData) {
		t.Fatalf("CONNACK method %q, server-final %q: the server did not prove it knows the password", p.Connack.Props.AuthMethod, p.Connack.Props.AuthData)
	}
	if u := users(); len(u) != 1 || u[0] != "sam" {
		t.Fatalf("Authorize saw %q, want the SCRAM user sam", u)
	}
	// Traffic works, and goes on during re-authentication.
	c.subscribe(1, 0, subscription("s/#", 0))
	re := &testutil.ScramClient{User: "sam", Password: "pw"}
	c.send(authPacket(codec.ReAuthenticate, auth.ScramMethod, re.First()))
	a := c.expect(codec.AUTH)
	c.publish("s/x", 0, 0, false, "during")
	final, err := re.Final(a.Auth.Props.AuthData)
	testutil.Require(t, err, "client-final")
	c.send(authPacket(codec.ContinueAuthentication, auth.ScramMethod, final))
	var done *codec.Packet
	gotPublish := false
	for done == nil || !gotPublish { // either order: the delivery is not tied to the exchange
		p, err := c.next(wireTimeout)
		testutil.Require(t, err, "during re-authentication")
		switch {
		case p.Type == codec.PUBLISH && string(p.Publish.Payload) == "during":
			gotPublish = true
		case p.Type == codec.AUTH:
			done = p
		default:
			t.Fatalf("got %v", p.Type)
		}
	}
	if done.Auth.ReasonCode != codec.Success || !re.Verify(done.Auth.Props.AuthData) {
		t.Fatalf("re-authentication ended with %v", done.Auth.ReasonCode)
	}
	// A failed re-authentication disconnects with 0x87.
	bad := &testutil.ScramClient{User: "sam", Password: "wrong"}
	c.send(authPacket(codec.ReAuthenticate, auth.ScramMethod, bad.First()))
	a = c.expect(codec.AUTH)
	final, _ = bad.Final(a.Auth.Props.AuthData)
	c.send(authPacket(codec.ContinueAuthentication, auth.ScramMethod, final))
	if r, ok := disconnectReason(c.expectClosed(wireTimeout)); !ok || r != codec.NotAuthorized {
		t.Fatalf("failed re-authentication: DISCONNECT %v (%v), want 0x87", r, ok)
	}
}

func TestScramRefusals(t *testing.T) {
	addr, _ := startScramBroker(t)
	_, _, p := scramConnect(t, addr, "wrong")
	if p.Type != codec.CONNACK || p.Connack.ReasonCode != codec.NotAuthorized {
		t.Fatalf("wrong password: %v %v, want CONNACK 0x87", p.Type, p.Connack.ReasonCode)
	}
	// A method not offered: 0x8C.
	c := dialWire(t, addr, codec.Version5)
	pk := &codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, ClientID: []byte("kerberos")}}
	pk.Connect.Props.SetAuthMethod([]byte("GSSAPI"))
	c.send(pk)
	if ack := c.expect(codec.CONNACK).Connack; ack.ReasonCode != codec.BadAuthenticationMethod {
		t.Fatalf("unknown method: CONNACK %v, want 0x8C", ack.ReasonCode)
	}
	// AUTH from a client that connected without a method: protocol error.
	plain, _ := connectWire(t, addr, codec.Version5, "plain", nil)
	plain.send(authPacket(codec.ReAuthenticate, auth.ScramMethod, []byte("n,,n=sam,r=x")))
	if r, ok := disconnectReason(plain.expectClosed(wireTimeout)); !ok || r != codec.ProtocolError {
		t.Fatalf("AUTH without a method in CONNECT: DISCONNECT %v (%v), want 0x82", r, ok)
	}
}

// During the CONNECT's exchange only AUTH may come: a client that gives up
// with DISCONNECT is closed without an answer (4.12), any other packet gets
// CONNACK 0x82.
func TestScramExchangeInterrupted(t *testing.T) {
	addr, _ := startScramBroker(t)
	for _, next := range []*codec.Packet{{Type: codec.DISCONNECT}, {Type: codec.PINGREQ}} {
		sc := &testutil.ScramClient{User: "sam", Password: "pw"}
		c := dialWire(t, addr, codec.Version5)
		p := &codec.Packet{Type: codec.CONNECT, Connect: codec.Connect{ProtocolVersion: codec.Version5, CleanStart: true, KeepAlive: 30, ClientID: []byte("scram-x")}}
		p.Connect.Props.SetAuthMethod([]byte(auth.ScramMethod))
		p.Connect.Props.SetAuthData(sc.First())
		c.send(p)
		c.expect(codec.AUTH)
		c.send(next)
		pkts := c.expectClosed(wireTimeout)
		switch {
		case next.Type == codec.DISCONNECT && len(pkts) != 0:
			t.Fatalf("DISCONNECT mid-exchange answered with %v", pkts[0].Type)
		case next.Type == codec.PINGREQ && (len(pkts) != 1 || pkts[0].Type != codec.CONNACK || pkts[0].Connack.ReasonCode != codec.ProtocolError):
			t.Fatalf("PINGREQ mid-exchange: %d packets, want CONNACK 0x82", len(pkts))
		}
	}
}
