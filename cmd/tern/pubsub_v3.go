package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tern-mqtt/tern/codec"
)

// v3Client is an MQTT 3.1.1 or 3.1 connection, by paho.mqtt.golang over a
// connection we dial ourselves. It neither reconnects nor retries: a CLI
// reports a lost connection and exits.
type v3Client struct {
	mc      mqtt.Client
	lostc   chan error
	closing atomic.Bool // disconnect was called
}

func connectV3(ctx context.Context, o *clientOpts, dial func() (net.Conn, error), onMessage func(*message)) (*v3Client, error) {
	c := &v3Client{lostc: make(chan error, 1)}
	var dialErr error // the library would only say "network Error"
	mo := mqtt.NewClientOptions().
		AddBroker("tcp://" + net.JoinHostPort(o.host, fmt.Sprint(o.port))). // dial below does the connecting
		SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
			nc, err := dial()
			dialErr = err
			return nc, err
		}).
		SetProtocolVersion(uint(o.version)).
		SetClientID(o.id).
		SetUsername(o.user).
		SetPassword(o.password).
		SetCleanSession(!o.persistent).
		SetKeepAlive(time.Duration(o.keepAlive) * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetConnectTimeout(connectTimeout).
		SetOrderMatters(true). // one message at a time, in order, acknowledged after the handler
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			if onMessage != nil {
				onMessage(&message{topic: m.Topic(), payload: m.Payload(), qos: m.Qos(), retain: m.Retained(), id: m.MessageID()})
			}
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { c.lose(fmt.Errorf("connection lost: %w", err)) })
	if o.willTopic != "" {
		mo.SetBinaryWill(o.willTopic, o.willPayload, o.willQoS, o.willRetain)
	}
	c.mc = mqtt.NewClient(mo)
	t := c.mc.Connect()
	select {
	case <-t.Done():
	case <-ctx.Done():
		c.closing.Store(true)
		c.mc.Disconnect(0)
		return nil, fmt.Errorf("connect: %w", ctx.Err())
	}
	if err := t.Error(); err != nil {
		if dialErr != nil {
			return nil, dialErr
		}
		if rc := t.(*mqtt.ConnectToken).ReturnCode(); rc >= codec.ConnRefusedProtocolVersion && rc <= codec.ConnRefusedNotAuthorized {
			return nil, &refusedError{what: "connection refused", code: rc, name: reasonName(o.version, codec.CONNACK, rc)}
		}
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

func (c *v3Client) lose(err error) {
	if c.closing.Load() {
		return
	}
	select {
	case c.lostc <- err:
	default:
	}
}

func (c *v3Client) lost() <-chan error { return c.lostc }

func (c *v3Client) publish(ctx context.Context, m *message) error {
	return wait(ctx, c.mc.Publish(m.topic, m.qos, m.retain, m.payload))
}

func (c *v3Client) subscribe(ctx context.Context, filters []string, qos byte, _ *props) ([]byte, error) {
	req := make(map[string]byte, len(filters))
	for _, f := range filters {
		req[f] = qos
	}
	t := c.mc.SubscribeMultiple(req, nil) // messages go to the default handler
	if err := wait(ctx, t); err != nil {
		return nil, err
	}
	granted := t.(*mqtt.SubscribeToken).Result()
	codes := make([]byte, len(filters))
	for i, f := range filters {
		code, ok := granted[f]
		if !ok {
			return nil, errors.New("SUBACK without a return code per filter")
		}
		codes[i] = code
	}
	return codes, nil
}

func (c *v3Client) disconnect() {
	c.closing.Store(true)
	// Returns once DISCONNECT is sent and the connection closed, or after
	// disconnectTimeout at most.
	c.mc.Disconnect(uint(disconnectTimeout / time.Millisecond))
}

// wait waits for t or ctx.
func wait(ctx context.Context, t mqtt.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
