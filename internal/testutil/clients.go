package testutil

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// V5 is a paho.golang MQTT 5.0 client connected to a test broker, with every
// PUBLISH it receives on Msgs.
type V5 struct {
	*paho.Client
	Msgs        chan *paho.Publish
	Disconnects chan *paho.Disconnect
	Connack     *paho.Connack
}

// ConnectV5 dials addr and connects with cp (ClientID, CleanStart, ...). The
// connection is closed when the test ends.
func ConnectV5(t testing.TB, addr string, cp *paho.Connect) *V5 {
	t.Helper()
	c, ack, err := DialV5(addr, cp)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	c.Connack = ack
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return c
}

// DialV5 is ConnectV5 without the test: it returns the CONNACK even when it
// refuses.
func DialV5(addr string, cp *paho.Connect) (*V5, *paho.Connack, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	v := &V5{Msgs: make(chan *paho.Publish, 1000), Disconnects: make(chan *paho.Disconnect, 4)}
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
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	ack, err := v.Connect(ctx, cp)
	return v, ack, err
}

// Ctx returns a context that ends in 5 seconds.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Recv returns the next message of c, failing after 5 seconds.
func (c *V5) Recv(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case m := <-c.Msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

// NoMsg fails when c receives a message within d.
func (c *V5) NoMsg(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-c.Msgs:
		t.Fatalf("unexpected message on %q: %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}
