package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/tern-mqtt/tern/codec"
)

// v5Client is an MQTT 5.0 connection, by paho.golang over a connection we
// dial ourselves.
type v5Client struct {
	pc      *paho.Client
	nc      net.Conn // the connection under paho (the wire)
	o       *clientOpts
	lostc   chan error
	closing atomic.Bool // disconnect was called: the errors that follow are ours
}

func connectV5(ctx context.Context, o *clientOpts, dial func() (net.Conn, error), onMessage func(*message)) (*v5Client, error) {
	nc, err := dial()
	if err != nil {
		return nil, err
	}
	c := &v5Client{o: o, nc: nc, lostc: make(chan error, 1)}
	c.pc = paho.NewClient(paho.ClientConfig{
		Conn: nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			if onMessage != nil {
				onMessage(messageFromV5(pr.Packet))
			}
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			e := &refusedError{what: "disconnected by the broker", code: d.ReasonCode, name: codec.ReasonCode(d.ReasonCode).String()}
			if d.Properties != nil {
				e.reason = d.Properties.ReasonString
			}
			c.lose(e)
		},
		OnClientError: func(err error) { c.lose(fmt.Errorf("connection lost: %w", err)) },
	})
	cp := &paho.Connect{
		ClientID:     o.id,
		KeepAlive:    o.keepAlive,
		CleanStart:   !o.persistent,
		Username:     o.user,
		UsernameFlag: o.userSet,
		Password:     []byte(o.password),
		PasswordFlag: o.passwordSet,
		Properties:   connectProps(o.props[propConnect], o.sessionExpiry),
	}
	if o.willTopic != "" {
		cp.WillMessage = &paho.WillMessage{Topic: o.willTopic, Payload: o.willPayload, QoS: o.willQoS, Retain: o.willRetain}
		if p := o.props[propWill]; p != nil {
			cp.WillProperties = &paho.WillProperties{WillDelayInterval: p.willDelay, PayloadFormat: p.payloadFormat,
				MessageExpiry: p.messageExpiry, ContentType: p.contentType, ResponseTopic: p.responseTopic,
				CorrelationData: p.correlationData, User: userProps(p)}
		}
	}
	ack, err := c.pc.Connect(ctx, cp)
	if err != nil {
		if ack != nil && ack.ReasonCode >= 0x80 {
			e := &refusedError{what: "connection refused", code: ack.ReasonCode, name: codec.ReasonCode(ack.ReasonCode).String()}
			if ack.Properties != nil {
				e.reason = ack.Properties.ReasonString
			}
			return nil, e
		}
		nc.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

func (c *v5Client) lose(err error) {
	if c.closing.Load() {
		return
	}
	select {
	case c.lostc <- err:
	default: // the first reason is the one
	}
}

func (c *v5Client) lost() <-chan error { return c.lostc }

func (c *v5Client) publish(ctx context.Context, m *message) error {
	p := &paho.Publish{Topic: m.topic, QoS: m.qos, Retain: m.retain, Payload: m.payload}
	if pp := m.props; pp != nil {
		p.Properties = &paho.PublishProperties{ContentType: pp.contentType, ResponseTopic: pp.responseTopic,
			CorrelationData: pp.correlationData, PayloadFormat: pp.payloadFormat, MessageExpiry: pp.messageExpiry,
			User: userProps(pp)}
	}
	resp, err := c.pc.Publish(ctx, p)
	if resp != nil && resp.ReasonCode >= 0x80 { // PUBACK, or PUBREC at QoS 2
		e := &refusedError{what: "publish refused", code: resp.ReasonCode, name: codec.ReasonCode(resp.ReasonCode).String()}
		if resp.Properties != nil {
			e.reason = resp.Properties.ReasonString
		}
		return e
	}
	return err
}

func (c *v5Client) subscribe(ctx context.Context, filters []string, qos byte, p *props) ([]byte, error) {
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: qos})
	}
	if p != nil {
		s.Properties = &paho.SubscribeProperties{SubscriptionIdentifier: p.subID, User: userProps(p)}
	}
	ack, err := c.pc.Subscribe(ctx, s)
	if ack != nil && len(ack.Reasons) == len(filters) {
		return ack.Reasons, nil // refusals are the caller's to report, filter by filter
	}
	if err == nil {
		err = errors.New("SUBACK without a reason code per filter")
	}
	return nil, err
}

func (c *v5Client) disconnect() {
	c.closing.Store(true)
	d := &paho.Disconnect{ReasonCode: byte(codec.NormalDisconnection)}
	if p := c.o.props[propDisconnect]; p != nil {
		d.Properties = &paho.DisconnectProperties{ReasonString: p.reasonString, SessionExpiryInterval: p.sessionExpiry, User: userProps(p)}
	}
	// paho's Disconnect writes DISCONNECT with no deadline, then closes the
	// connection and waits, with no bound, for its goroutines to end. Bound
	// both: the write by a deadline, the whole by disconnectTimeout, after
	// which closing the connection ourselves ends any read or write paho is
	// stuck in. Should it still not return, sub and pub end anyway; the
	// process exits soon after.
	_ = c.nc.SetWriteDeadline(time.Now().Add(disconnectTimeout))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.pc.Disconnect(d)
	}()
	t := time.NewTimer(disconnectTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	_ = c.nc.Close()
	t.Reset(disconnectTimeout)
	select {
	case <-done:
	case <-t.C:
	}
}

// connectProps is the CONNECT's properties: -D connect and -x.
func connectProps(p *props, sessionExpiry *uint32) *paho.ConnectProperties {
	cp := &paho.ConnectProperties{SessionExpiryInterval: sessionExpiry, RequestProblemInfo: true}
	if p == nil {
		return cp
	}
	if p.sessionExpiry != nil {
		cp.SessionExpiryInterval = p.sessionExpiry
	}
	cp.ReceiveMaximum = p.receiveMax
	cp.MaximumPacketSize = p.maxPacketSize
	cp.TopicAliasMaximum = p.topicAliasMax
	if p.reqProblem != nil {
		cp.RequestProblemInfo = *p.reqProblem == 1
	}
	if p.reqResponse != nil {
		cp.RequestResponseInfo = *p.reqResponse == 1
	}
	cp.User = userProps(p)
	return cp
}

func userProps(p *props) paho.UserProperties {
	var u paho.UserProperties
	for _, kv := range p.user {
		u = append(u, paho.UserProperty{Key: kv[0], Value: kv[1]})
	}
	return u
}

func messageFromV5(p *paho.Publish) *message {
	m := &message{topic: p.Topic, payload: p.Payload, qos: p.QoS, retain: p.Retain, id: p.PacketID}
	if pp := p.Properties; pp != nil {
		m.props = &props{contentType: pp.ContentType, responseTopic: pp.ResponseTopic, correlationData: pp.CorrelationData,
			payloadFormat: pp.PayloadFormat, messageExpiry: pp.MessageExpiry, subID: pp.SubscriptionIdentifier}
		for _, u := range pp.User {
			m.props.user = append(m.props.user, [2]string{u.Key, u.Value})
		}
	}
	return m
}
