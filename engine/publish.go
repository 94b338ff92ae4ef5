package engine

import (
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
)

// handlePublish takes an inbound PUBLISH: resolves a topic alias, enforces
// the receive maximum, keeps QoS 2 exactly-once state, stores or clears a
// retained message, routes the message and acknowledges it.
func (c *conn) handlePublish(p *codec.Publish) error {
	s := c.srv
	topic := p.Topic
	if c.version >= codec.Version5 {
		if len(p.Props.SubscriptionIDs) > 0 { // MQTT-3.3.4-6
			return c.fail(codec.ProtocolError, "PUBLISH from a client with a subscription identifier")
		}
		if p.Props.Has(codec.PropTopicAlias) {
			alias := p.Props.TopicAlias
			if alias > s.opts.TopicAliasMax { // MQTT-3.3.2-9
				return c.fail(codec.TopicAliasInvalid, "topic alias above the maximum")
			}
			if len(topic) == 0 {
				t, ok := c.aliasesIn[alias]
				if !ok { // 3.3.2.3.4: an unknown alias is a Protocol Error
					return c.fail(codec.ProtocolError, "unknown topic alias")
				}
				topic = t
			} else {
				if c.aliasesIn == nil {
					c.aliasesIn = make(map[uint16][]byte)
				}
				c.aliasesIn[alias] = append(c.aliasesIn[alias][:0], topic...)
			}
		}
	}
	if p.Retain && !*s.opts.RetainAvailable {
		return c.fail(codec.RetainNotSupported, "retain not available") // MQTT-3.3.1-... 0x9A
	}
	sess := c.sess
	if p.QoS == 2 {
		sess.Lock()
		if sess.InboundQoS2Len() >= s.opts.MaxInflight && !sess.HasQoS2(p.PacketID) {
			sess.Unlock()
			return c.fail(codec.ReceiveMaximumExceeded, "more QoS 2 messages in flight than Receive Maximum") // MQTT-3.3.4-8
		}
		isNew := sess.ReceiveQoS2(p.PacketID)
		sess.Unlock()
		if !isNew { // a redelivery: acknowledge again, do not forward again (4.3.3)
			c.appendAck(codec.PUBREC, p.PacketID, codec.Success)
			return nil
		}
	}
	now := time.Now()
	var props *codec.Properties
	if c.version >= codec.Version5 {
		props = &p.Props
	}
	m := message.New(topic, p.Payload, props, p.QoS, p.Retain, sess.Seq, now)
	if p.Retain {
		s.storeRetained(m)
	}
	matched, refused := s.route(m, now.UnixNano())
	m.Release()

	reason := codec.Success
	switch {
	case refused && matched == 0:
		reason = codec.QuotaExceeded
	case matched == 0 && c.version >= codec.Version5:
		reason = codec.NoMatchingSubscribers
	}
	switch p.QoS {
	case 1:
		c.appendAck(codec.PUBACK, p.PacketID, reason)
	case 2:
		if reason == codec.QuotaExceeded { // not accepted: the client may send it again later
			sess.Lock()
			sess.ReleaseQoS2(p.PacketID)
			sess.Unlock()
		}
		c.appendAck(codec.PUBREC, p.PacketID, reason)
	}
	return nil
}

// storeRetained keeps m as the retained message of its topic, or clears the
// topic when the payload is empty (MQTT-3.3.1-6, -7).
func (s *Server) storeRetained(m *message.Message) {
	if len(m.Payload) == 0 {
		if old, ok := s.retained.Delete(string(m.Topic)); ok {
			old.Release()
		}
		return
	}
	if old, replaced := s.retained.Set(string(m.Topic), m.Ref()); replaced {
		old.Release()
	}
}

// appendAck queues a PUBACK, PUBREC, PUBREL or PUBCOMP.
func (c *conn) appendAck(t codec.PacketType, id uint16, reason codec.ReasonCode) {
	a := codec.Ack{Type: t, PacketID: id, ReasonCode: reason}
	c.wbuf, _ = a.Append(c.wbuf, c.version)
}

// handleAck takes the acknowledgements of the QoS 1 and 2 flows.
func (c *conn) handleAck(a *codec.Ack) error {
	sess := c.sess
	switch a.Type {
	case codec.PUBREL: // inbound QoS 2, step 3
		sess.Lock()
		known := sess.ReleaseQoS2(a.PacketID)
		sess.Unlock()
		reason := codec.Success
		if !known {
			reason = codec.PacketIdentifierNotFound
		}
		c.appendAck(codec.PUBCOMP, a.PacketID, reason)
	case codec.PUBACK:
		sess.Lock()
		sess.Ack(a.PacketID, 'a')
		sess.Unlock()
	case codec.PUBREC:
		sess.Lock()
		ok := sess.Ack(a.PacketID, 'r')
		sess.Unlock()
		if a.ReasonCode.IsError() { // the receiver refused: the flow ends here (4.3.3)
			sess.Lock()
			sess.Ack(a.PacketID, 'c')
			sess.Unlock()
			return nil
		}
		reason := codec.Success
		if !ok {
			reason = codec.PacketIdentifierNotFound
		}
		c.appendAck(codec.PUBREL, a.PacketID, reason)
	case codec.PUBCOMP:
		sess.Lock()
		sess.Ack(a.PacketID, 'c')
		sess.Unlock()
	}
	return nil
}

// handleDisconnect takes a client's DISCONNECT: the will is discarded unless
// a 5.0 client asks for it (0x04), and a 5.0 client may change its session
// expiry, but not from 0 (MQTT-3.14.2-2).
func (c *conn) handleDisconnect(d *codec.Disconnect) error {
	c.sess.Lock()
	owner := c.sess.Owner() == c
	c.sess.Unlock()
	if !owner { // taken over: the session belongs to the new connection now
		c.gracefulClose = true
		return errDisconnect
	}
	if c.version >= codec.Version5 && d.Props.Has(codec.PropSessionExpiry) {
		if c.expiryAtStart == 0 && d.Props.SessionExpiry != 0 {
			return c.fail(codec.ProtocolError, "session expiry set on DISCONNECT after 0 on CONNECT")
		}
		exp := min(d.Props.SessionExpiry, c.srv.opts.MaxSessionExpiry)
		c.sess.Lock()
		c.sess.Expiry = exp
		c.sess.Unlock()
	}
	if d.ReasonCode != codec.DisconnectWithWill {
		c.gracefulClose = true
		c.sess.Lock()
		if c.sess.Owner() == c && c.sess.Will != nil { // MQTT-3.1.2-10
			c.sess.Will.Msg.Release()
			c.sess.Will = nil
		}
		c.sess.Unlock()
	}
	c.closeReason = d.ReasonCode
	// Let the session go now rather than when the close is noticed, so that
	// a reconnect racing the close already sees the session's end (a clean
	// session is gone, MQTT-3.1.2-6 of 3.1.1).
	c.srv.detach(c)
	c.detached = true
	return errDisconnect
}
