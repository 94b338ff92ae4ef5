package engine

import (
	"errors"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/retain"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
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
	q := min(p.QoS, 2) // counted as received, whatever becomes of it below
	c.counts.msgsIn[q]++
	c.counts.pubIn[q] += int64(len(topic) + len(p.Payload))
	if r := c.rules(); r != nil && !r.CanPublish(topic) {
		c.srv.stats.aclDenied.Add(1)
		return c.publishDenied(p, topic, codec.NotAuthorized, "not allowed")
	}
	if isSysTopic(topic) {
		c.srv.stats.aclDenied.Add(1)
		return c.publishDenied(p, topic, codec.NotAuthorized, "$SYS is the broker's")
	}
	if !s.topicAccepted(topic) {
		s.stats.limited.Add(1)
		return c.publishDenied(p, topic, codec.TopicNameInvalid, "topic over --max-topic-length or --max-topic-levels")
	}
	if !c.limitsOf().allowPublish(time.Unix(0, c.readAt), len(topic)+len(p.Payload)) {
		s.stats.limited.Add(1)
		c.closeReason = codec.MessageRateTooHigh
		c.sendDisconnect(codec.MessageRateTooHigh)
		s.log.Info("closing connection: publishing over the rate limit", "client_id", c.clientID, "remote", c.remote.String())
		return errProtocol
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
			if sess.Durable() {
				// Its first PUBREC may still wait for the store (on a
				// connection now closed): this one waits for the same.
				s.newTx(wal.KindNone, "").barrier(c.gateAck(codec.PUBREC, p.PacketID, codec.Success))
				return nil
			}
			c.appendAck(codec.PUBREC, p.PacketID, codec.Success)
			return nil
		}
	}
	// The read's clock reading, not one per PUBLISH: a read carries up to
	// hundreds of them, and time.Now was a tenth of the fan-in CPU profile.
	now := time.Unix(0, c.readAt)
	var props *codec.Properties
	if c.version >= codec.Version5 {
		props = &p.Props
	}
	m := message.New(topic, p.Payload, props, p.QoS, p.Retain, sess.Seq, now)
	res := s.router.Match(m.Topic)

	// A publish that changes durable state goes to the store as one batch;
	// its acknowledgement waits for it, and the message is held until then.
	var tx *storeTx
	storeQoS2 := p.QoS == 2 && sess.Durable()
	if s.store != nil && (p.Retain || storeQoS2 || needsStore(m, res)) {
		err := s.store.Err()
		if err != nil && p.QoS > 0 {
			m.Release()
			return c.refusePublish(p, storeReason(err), err)
		}
		if err == nil {
			tx = s.newTx(wal.KindPublish, c.clientID)
			tx.b.SetTopic(m.Topic, p.QoS, len(m.Payload))
			if p.QoS > 0 {
				s.messageID(m)
				tx.hold(m, p.QoS == 2)
			}
		}
	}
	if p.Retain {
		if err := s.storeRetained(m, tx); err != nil {
			if c.version >= codec.Version5 && p.QoS > 0 {
				if tx != nil {
					tx.submit(nil) // releases the hold; nothing was added
				}
				m.Release()
				reason := codec.QuotaExceeded
				if !errors.Is(err, retain.ErrFull) {
					reason = codec.UnspecifiedError
				}
				return c.refusePublish(p, reason, err)
			}
			// 3.1.1 and QoS 0 have no way to say it: delivered, not retained.
			s.log.Warn("retained message not kept", "client_id", c.clientID, "topic", string(m.Topic), "err", err.Error())
		}
	}
	var overs []*sessions.Session
	var holdBack *[]*sessions.Session
	if p.QoS > 0 {
		holdBack = &overs
	}
	matched, refused := s.routeMatched(m, res, now.UnixNano(), tx, holdBack, c)
	m.Release()

	reason := codec.Success
	switch {
	case refused && matched == 0:
		reason = codec.QuotaExceeded
	case matched == 0 && c.version >= codec.Version5:
		reason = codec.NoMatchingSubscribers
	}
	if p.QoS == 2 && reason == codec.QuotaExceeded { // not accepted: the client may send it again later
		sess.Lock()
		sess.ReleaseQoS2(p.PacketID)
		sess.Unlock()
	} else if storeQoS2 && tx != nil {
		tx.b.InboundQoS2Put([]byte(c.clientID), p.PacketID, now.UnixNano())
	}
	var ackType codec.PacketType
	switch p.QoS {
	case 1:
		ackType = codec.PUBACK
	case 2:
		ackType = codec.PUBREC
	}
	switch {
	case len(overs) > 0:
		// Subscribers' queues are full: the acknowledgement waits until they
		// drain (or holdBackMax), which holds back a publisher that keeps a
		// window of unacknowledged messages, instead of dropping what it
		// sends (a 3.1.1 PUBACK cannot refuse).
		n := len(overs)
		if tx != nil {
			n++
		}
		done := c.gateAckN(ackType, p.PacketID, reason, n)
		s.holdBackUntilDrained(overs, done)
		if tx != nil {
			tx.submit(done)
		}
	case tx != nil && p.QoS > 0:
		tx.submit(c.gateAck(ackType, p.PacketID, reason))
	case tx != nil:
		tx.submit(nil)
	case p.QoS > 0:
		c.appendAck(ackType, p.PacketID, reason)
	}
	return nil
}

// holdBackMax bounds how long a publisher's acknowledgement waits for a
// subscriber's queue to drain.
const holdBackMax = time.Second

// holdBackUntilDrained calls done once per session, when its queue is within
// its bounds again (or it goes offline or ends), or after holdBackMax.
func (s *Server) holdBackUntilDrained(list []*sessions.Session, done func(error)) {
	s.stats.heldBack.Add(1)
	for _, sess := range list {
		var once sync.Once
		fn := func() { once.Do(func() { done(nil) }) }
		sess.Lock()
		waiting := sess.WhenDrained(fn)
		sess.Unlock()
		if !waiting {
			fn()
			continue
		}
		time.AfterFunc(holdBackMax, fn)
	}
}

// publishDenied answers a PUBLISH the client's ACL (reason 0x87) or the
// topic limits (0x90) do not allow: it is dropped, and not retained. A 5.0
// client hears the reason in its PUBACK or PUBREC; 3.1.1 has no way to say
// it, so its QoS 1/2 flow completes as if the message had been accepted (as
// Mosquitto does), and the client does not send it again.
func (c *conn) publishDenied(p *codec.Publish, topic []byte, reason codec.ReasonCode, why string) error {
	c.srv.log.Info("publish refused: "+why, "client_id", c.clientID, "topic", string(topic), "reason", reason.String())
	if c.version < codec.Version5 {
		reason = codec.Success
	}
	switch p.QoS {
	case 1:
		c.appendAck(codec.PUBACK, p.PacketID, reason)
	case 2:
		c.appendAck(codec.PUBREC, p.PacketID, reason)
	}
	return nil
}

// refusePublish answers a QoS 1/2 PUBLISH that cannot be accepted: PUBACK or
// PUBREC with reason for 5.0; 3.1.1 has no such answer, so the connection
// closes unacknowledged (the client sends the message again later).
func (c *conn) refusePublish(p *codec.Publish, reason codec.ReasonCode, err error) error {
	if p.QoS == 2 {
		c.sess.Lock()
		c.sess.ReleaseQoS2(p.PacketID)
		c.sess.Unlock()
	}
	if c.version < codec.Version5 {
		c.closeReason = reason
		c.srv.log.Warn("closing connection: cannot accept a message", "client_id", c.clientID, "err", err.Error())
		return errStore
	}
	t := codec.PUBACK
	if p.QoS == 2 {
		t = codec.PUBREC
	}
	c.appendAck(t, p.PacketID, reason)
	return nil
}

// storeRetained keeps m as the retained message of its topic, or clears the
// topic when the payload is empty (MQTT-3.3.1-6, -7); with a store, in tx,
// which completes the index's change when it is durable. It fails when the
// retained store is full (retain.ErrFull) or cannot be read.
func (s *Server) storeRetained(m *message.Message, tx *storeTx) error {
	var b *wal.Batch
	if tx != nil {
		b = tx.b
	} else if s.store != nil {
		return wal.ErrUnavailable // the store refused the publish: nothing can be retained
	}
	commit, err := s.retained.Set(m, b)
	if err != nil {
		s.stats.retainRefused.Add(1)
		return err
	}
	if tx != nil {
		tx.after = append(tx.after, commit)
	}
	return nil
}

// handleAck takes the acknowledgements of the QoS 1 and 2 flows. For a
// durable session each step is recorded; PUBREL and PUBCOMP, which end a
// step the client relies on, wait for their record.
func (c *conn) handleAck(a *codec.Ack) error {
	sess := c.sess
	durable := sess.Durable()
	switch a.Type {
	case codec.PUBREL: // inbound QoS 2, step 3
		sess.Lock()
		known := sess.ReleaseQoS2(a.PacketID)
		sess.Unlock()
		reason := codec.Success
		if !known {
			reason = codec.PacketIdentifierNotFound
		}
		if durable {
			// An unknown id may have been released by a change the store
			// does not have yet: PUBCOMP waits for it either way.
			tx := c.srv.newTx(wal.KindPubrel, c.clientID)
			if known {
				tx.b.InboundQoS2Delete([]byte(c.clientID), a.PacketID)
			}
			id := a.PacketID // a is reused for the next packet
			done := c.gate(&gated{ack: codec.Ack{Type: codec.PUBCOMP, PacketID: id, ReasonCode: reason},
				onFail: func() {
					if known { // not forgotten on disk: not in memory either, until the PUBREL comes again
						sess.Lock()
						sess.ReceiveQoS2(id)
						sess.Unlock()
					}
				}})
			tx.barrier(done)
			return nil
		}
		c.appendAck(codec.PUBCOMP, a.PacketID, reason)
	case codec.PUBACK:
		sess.Lock()
		seq, msgID, _ := storedInflight(sess, a.PacketID)
		if sess.Ack(a.PacketID, 'a') {
			sess.Progress = c.readAt
			if seq != 0 && durable {
				c.storeDone(wal.KindPuback, seq, msgID)
			}
		}
		sess.Unlock()
	case codec.PUBREC:
		sess.Lock()
		seq, msgID, released := storedInflight(sess, a.PacketID)
		in := sess.InflightOf(a.PacketID)
		var e wal.QueueEntry
		if in != nil {
			e = queueEntry(&in.Delivery, wal.PubrecReceived)
		}
		ok := sess.Ack(a.PacketID, 'r')
		if ok {
			sess.Progress = c.readAt
		}
		if a.ReasonCode.IsError() { // the receiver refused: the flow ends here (4.3.3)
			if sess.Ack(a.PacketID, 'c') && seq != 0 && durable {
				c.storeDone(wal.KindPubcomp, seq, msgID)
			}
			sess.Unlock()
			return nil
		}
		reason := codec.Success
		if !ok {
			reason = codec.PacketIdentifierNotFound
		}
		if ok && !released && seq != 0 && durable {
			// Submitted under the lock, so no session end can be submitted
			// between this change and the state it changes.
			tx := c.srv.newTx(wal.KindPubrec, c.clientID)
			tx.b.QueueUpdate([]byte(c.clientID), seq, &e)
			tx.submit(c.gateAck(codec.PUBREL, a.PacketID, reason))
			sess.Unlock()
			return nil
		}
		sess.Unlock()
		c.appendAck(codec.PUBREL, a.PacketID, reason)
	case codec.PUBCOMP:
		sess.Lock()
		seq, msgID, _ := storedInflight(sess, a.PacketID)
		if sess.Ack(a.PacketID, 'c') && seq != 0 && durable {
			c.storeDone(wal.KindPubcomp, seq, msgID)
		}
		sess.Unlock()
	}
	return nil
}

// storedInflight returns the store position of an in-flight delivery and
// whether it is a released QoS 2 one. Locked.
func storedInflight(sess *sessions.Session, id uint16) (seq, msgID uint64, released bool) {
	if in := sess.InflightOf(id); in != nil {
		return in.StoreSeq, in.StoreMsg, in.Released
	}
	return 0, 0, false
}

// storeDone deletes the queue entry of a completed delivery.
func (c *conn) storeDone(kind wal.Kind, seq, msgID uint64) {
	tx := c.srv.newTx(kind, c.clientID)
	tx.queueDelete(c.sess, seq, msgID)
	tx.submit(nil)
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
