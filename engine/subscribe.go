package engine

import (
	"bytes"
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/router"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
)

// retainedReq is a subscription that receives the matching retained
// messages once its SUBACK is out.
type retainedReq struct {
	filter string
	opts   sessions.SubOptions
}

// aclFilter is the filter a SUBSCRIBE's ACL check looks at: a shared
// subscription's without "$share/<group>/".
func aclFilter(f []byte) []byte {
	if rest, ok := bytes.CutPrefix(f, []byte("$share/")); ok {
		if i := bytes.IndexByte(rest, '/'); i >= 0 {
			return rest[i+1:]
		}
	}
	return f
}

// handleSubscribe adds each subscription, answers with one reason code per
// filter (MQTT-3.8.4-6), then sends the matching retained messages according
// to each subscription's retain handling. A durable session's subscriptions
// are stored first: SUBACK and the retained messages wait for the store.
func (c *conn) handleSubscribe(p *codec.Subscribe) error {
	s := c.srv
	v5 := c.version >= codec.Version5
	var subID uint32
	if v5 && len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]byte, len(p.Subscriptions))
	var tx *storeTx
	if c.sess.Durable() {
		if err := s.storeErr(); err != nil {
			// Nothing is subscribed that could not be kept.
			for i := range codes {
				codes[i] = byte(codec.UnspecifiedError)
				if v5 {
					codes[i] = byte(storeReason(err))
				}
			}
			s.log.Warn("subscriptions refused: store unavailable", "client_id", c.clientID, "err", err.Error())
			ack := codec.Suback{PacketID: p.PacketID, ReasonCodes: codes}
			c.appendRaw(func(b []byte) []byte { b, _ = ack.Append(b, c.version); return b })
			return nil
		}
		tx = s.newTx(wal.KindSubscribe, c.clientID)
	}
	var wantRetained []retainedReq
	var undo []subUndo
	for i := range p.Subscriptions {
		sub := &p.Subscriptions[i]
		// Shared subscriptions are offered at every level, as Mosquitto and
		// EMQX do, so "$share/" filters follow the 5.0 rules everywhere.
		if err := codec.ValidateFilter(sub.Filter, codec.Version5); err != nil {
			codes[i] = byte(codec.TopicFilterInvalid)
			if !v5 {
				codes[i] = 0x80
			}
			s.log.Info("subscription refused", "client_id", c.clientID, "filter", string(sub.Filter), "err", err.Error())
			continue
		}
		if r := c.rules(); r != nil && !r.CanSubscribe(aclFilter(sub.Filter)) {
			codes[i] = byte(codec.NotAuthorized)
			if !v5 {
				codes[i] = 0x80
			}
			s.stats.aclDenied.Add(1)
			s.log.Info("subscription refused: not allowed", "client_id", c.clientID, "filter", string(sub.Filter))
			continue
		}
		if !s.topicAccepted(aclFilter(sub.Filter)) {
			codes[i] = byte(codec.TopicFilterInvalid)
			if !v5 {
				codes[i] = 0x80
			}
			s.stats.limited.Add(1)
			s.log.Info("subscription refused: filter over --max-topic-length or --max-topic-levels", "client_id", c.clientID,
				"filter", string(sub.Filter))
			continue
		}
		filter := string(sub.Filter)
		if max := s.opts.MaxSubscriptions; max > 0 {
			c.sess.Lock()
			_, had := c.sess.Subs()[filter]
			full := !had && len(c.sess.Subs()) >= max
			c.sess.Unlock()
			if full {
				codes[i] = byte(codec.QuotaExceeded)
				if !v5 {
					codes[i] = 0x80
				}
				s.stats.limited.Add(1)
				s.log.Info("subscription refused: too many subscriptions", "client_id", c.clientID, "max", max)
				continue
			}
		}
		opts := sessions.SubOptions{QoS: sub.QoS, NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished,
			RetainHandling: sub.RetainHandling, SubID: subID}
		// The router changes under the session lock, so that a session being
		// ended (takeover with Clean Start) cannot leave a subscription
		// behind in the router; the router never takes session locks.
		c.sess.Lock()
		if c.sess.Ended() {
			c.sess.Unlock()
			if tx != nil {
				tx.abort()
			}
			return errProtocol // taken over meanwhile: this connection is closing
		}
		if tx != nil {
			prev, had := c.sess.Subs()[filter]
			undo = append(undo, subUndo{filter, prev, had})
		}
		existed := c.sess.SetSub(filter, opts)
		s.router.Subscribe(router.Sub[*sessions.Session]{Key: c.sess, Filter: filter, QoS: sub.QoS,
			NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished, SubID: subID})
		if tx != nil {
			tx.b.SubPut([]byte(c.clientID), sub.Filter, subRecord(opts))
		}
		c.sess.Unlock()
		codes[i] = sub.QoS // granted QoS: the broker supports 2
		_, _, shared := codec.SplitShared(sub.Filter)
		// Retained messages: not for shared subscriptions (4.8.2); per retain
		// handling 0 always, 1 only for a new subscription, 2 never (3.8.3.1).
		if !shared && (sub.RetainHandling == 0 || sub.RetainHandling == 1 && !existed) {
			wantRetained = append(wantRetained, retainedReq{filter, opts})
		}
	}
	ack := codec.Suback{PacketID: p.PacketID, ReasonCodes: codes}
	if tx == nil {
		c.appendRaw(func(b []byte) []byte { b, _ = ack.Append(b, c.version); return b })
		c.retainedAfterSuback(wantRetained)
		return nil
	}
	if len(p.Subscriptions) == 1 {
		tx.b.SetTopic(p.Subscriptions[0].Filter, p.Subscriptions[0].QoS, 0)
	}
	raw, _ := ack.Append(nil, c.version)
	tx.submit(c.gateRaw(raw, len(raw)-len(codes), func() { c.retainedAfterSuback(wantRetained) }, func() { c.undoSubs(undo) }))
	return nil
}

// subUndo is what a subscription change replaced, to restore when the store
// could not record the change (the client was told it failed).
type subUndo struct {
	filter string
	prev   sessions.SubOptions
	had    bool
}

// undoSubs restores the subscriptions before a change that was not stored.
// Loop only.
func (c *conn) undoSubs(undo []subUndo) {
	s := c.srv
	c.sess.Lock()
	defer c.sess.Unlock()
	if c.sess.Ended() {
		return
	}
	for i := len(undo) - 1; i >= 0; i-- {
		u := undo[i]
		if u.had {
			c.sess.SetSub(u.filter, u.prev)
			s.router.Subscribe(router.Sub[*sessions.Session]{Key: c.sess, Filter: u.filter, QoS: u.prev.QoS,
				NoLocal: u.prev.NoLocal, RetainAsPublished: u.prev.RetainAsPublished, SubID: u.prev.SubID})
		} else if c.sess.DeleteSub(u.filter) {
			s.router.Unsubscribe(u.filter, c.sess)
		}
	}
}

// appendRaw appends an encoded control packet to the batch, behind gated
// packets when some wait.
func (c *conn) appendRaw(enc func([]byte) []byte) {
	if c.gatedPending() {
		c.gate(&gated{raw: enc(nil), ready: true})
		return
	}
	c.wbuf = enc(c.wbuf)
}

func subRecord(o sessions.SubOptions) *wal.Subscription {
	return &wal.Subscription{QoS: o.QoS, NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished,
		RetainHandling: o.RetainHandling, SubID: o.SubID}
}

// retainedAfterSuback sends the retained messages for new subscriptions once
// the SUBACK is in this batch. From memory, as many as the subscriber has
// room for go at once, in this batch; from the store, a wildcard filter may
// read many topics from disk, which must not hold up the other connections
// of this loop (DESIGN invariant 3): the read runs on its own goroutine, a
// few at a time, and the deliveries reach the connection through its queue,
// after the SUBACK. Either way, what does not fit follows as it drains
// (paceRetained).
func (c *conn) retainedAfterSuback(reqs []retainedReq) {
	if len(reqs) == 0 {
		return
	}
	if c.srv.store == nil {
		if rest := c.sendRetained(c.collectRetained(reqs), false, false); len(rest) > 0 {
			go c.paceRetained(rest)
		}
		return
	}
	go func() {
		c.srv.retainedReaders <- struct{}{}
		items := c.collectRetained(reqs)
		<-c.srv.retainedReaders
		c.paceRetained(c.sendRetained(items, false, false))
	}()
}

// retainedItem is one retained message for one new subscription.
type retainedItem struct {
	m      *message.Message // a reference of its own
	subQoS byte             // the subscription's
	ids    []uint32         // the subscription identifier, if any
	again  bool             // going round a second time with a newer value
}

// collectRetained returns the unexpired retained messages matching each
// request, in request order. They are collected under the index's lock and
// delivered after it: delivery takes session locks and must not hold up
// writers of retained messages.
func (c *conn) collectRetained(reqs []retainedReq) []retainedItem {
	s := c.srv
	now := time.Now().UnixNano()
	var items []retainedItem
	for _, r := range reqs {
		var ids []uint32
		if r.opts.SubID != 0 {
			ids = []uint32{r.opts.SubID}
		}
		x := s.retained
		if sysFilter(r.filter) {
			x = s.sys
		}
		if err := x.Match(r.filter, func(m *message.Message) bool {
			if !m.Expired(now) {
				items = append(items, retainedItem{m: m.Ref(), subQoS: r.opts.QoS, ids: ids})
			}
			return true
		}); err != nil {
			s.log.Warn("cannot read retained messages", "filter", r.filter, "err", err.Error())
		}
	}
	return items
}

// sendRetained delivers retained messages (with RETAIN set, MQTT-3.3.1-8)
// while the subscriber has room for them (all of them with force), and
// returns the rest. Room means
// its connection's unsent bytes and its session's queue are within half
// their bounds: a subscription to "#" over a hundred thousand retained
// topics must reach the subscriber whole, not overflow the bounds that drop
// QoS 0 and refuse QoS 1/2. A durable session's QoS 1/2 deliveries are
// stored; a message without a store id is copied to get one, since the
// retained index shares it.
func (c *conn) sendRetained(items []retainedItem, force, recheck bool) []retainedItem {
	s := c.srv
	var tx *storeTx
	durable := c.sess.Durable()
	now := time.Now().UnixNano()
	i := 0
	for i < len(items) && (force || c.retainedRoom()) {
		if durable && tx == nil {
			tx = s.newTx(wal.KindSubscribe, c.clientID)
		}
		it := &items[i]
		m := it.m
		it.m = nil
		if recheck {
			if m = c.retainedNow(m); m == nil || m.Expired(now) {
				if m != nil {
					m.Release()
				}
				i++
				continue // cleared or expired meanwhile
			}
		}
		qos := min(it.subQoS, m.QoS)
		// A retained message still waiting for its store change is held;
		// its publisher wakes only the sessions it routed to, so this
		// subscriber gets a copy of its own.
		if m.Held() || tx != nil && qos > 0 && m.StoreID == 0 {
			cp := message.Restore(m.Topic, m.Payload, m.Props, m.QoS, m.Retain, m.Origin, m.Created, m.ExpireAt)
			s.messageID(cp)
			m.Release()
			m = cp
		}
		if s.deliverTo(c.sess, m, qos, true, it.ids, now, tx, nil, nil) == sessions.DroppedQueueQoS0 && !force {
			it.m = m // live messages filled the bound since the room check: again later
			break
		}
		if recheck {
			// A newer value set between the look-up and the delivery may
			// have gone out live before it: the item goes round again with
			// it, so that the subscriber ends on it. (Set precedes the live
			// routing, so one more look-up closes the race.)
			// Once only: a topic rewritten without pause gets its later
			// values live.
			if cur := c.retainedNow(m.Ref()); cur != nil && cur != m && !it.again {
				m.Release()
				it.m, it.again = cur, true
				continue
			} else if cur != nil {
				cur.Release()
			}
		}
		m.Release()
		i++
	}
	if tx != nil {
		// Submitted before any wait for room: the deliveries are held until
		// then, and a held delivery never drains.
		tx.submit(nil)
	}
	return items[i:]
}

// retainedNow returns what a retained message that waited for room should
// be sent as: itself while it is still its topic's retained message, the
// newer one its topic got meanwhile (so that the subscriber does not end on
// a stale value after the live delivery of the newer one, which its full
// queue may have dropped), or nil when the topic was cleared. It takes over
// m's reference.
func (c *conn) retainedNow(m *message.Message) *message.Message {
	cur, ok, err := c.srv.retainedFor(m.Topic).Get(string(m.Topic))
	switch {
	case err != nil: // unreadable now: send what we have
		return m
	case !ok:
		m.Release()
		return nil
	case cur == m || cur.Created == m.Created && cur.Origin == m.Origin:
		cur.Release()
		return m
	}
	m.Release()
	return cur
}

// retainedRoom reports whether the subscriber takes more retained messages
// now: its unsent bytes and its session queue within half their bounds.
func (c *conn) retainedRoom() bool {
	if c.outBytes.Load() > int64(c.srv.opts.MaxOutboundBytes)/2 {
		return false
	}
	c.sess.Lock()
	defer c.sess.Unlock()
	return c.sess.QueueHalfFree()
}

// maxPacedRetained bounds the retained messages waiting for their
// subscribers' room across the server: about 40 bytes each, 160 MiB in all.
const maxPacedRetained = 4 << 20

// paceRetained delivers the retained messages that did not fit as the
// subscriber drains, polling its room. Once the connection is gone they are
// offered to the session at once (a persistent one queues them within its
// bounds); a subscriber that takes nothing for the slow-consumer timeout
// gets the rest at once too, and the usual bounds apply, so that a client
// that stopped reading does not pin them for ever.
func (c *conn) paceRetained(items []retainedItem) {
	if len(items) == 0 {
		return
	}
	// What waits holds a reference per message: bound it to
	// maxPacedRetained across the server, so that subscribing to "#" again
	// and again cannot pin memory; beyond it the rest goes at once and the
	// subscriber's bounds apply, as for live messages. One pacer per
	// connection at a time: several would only compete for the same room.
	n := int64(len(items))
	if c.srv.pacedRetained.Add(n) > maxPacedRetained {
		c.srv.pacedRetained.Add(-n)
		c.srv.log.Warn("retained messages not paced: too many waiting on the server", "client_id", c.clientIDShared(), "messages", n)
		c.sendRetained(items, true, true)
		return
	}
	defer c.srv.pacedRetained.Add(-n)
	for !c.pacingRetained.CompareAndSwap(false, true) {
		if c.closed.Load() {
			c.sendRetained(items, true, true)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer c.pacingRetained.Store(false)
	defer func() {
		for i := range items {
			if items[i].m != nil {
				items[i].m.Release()
			}
		}
	}()
	wait, lastMove := time.Millisecond, time.Now()
	for len(items) > 0 {
		if c.closed.Load() || time.Since(lastMove) > c.srv.opts.SlowConsumerAfter {
			c.srv.log.Info("retained messages delivered without waiting for room", "client_id", c.clientIDShared(),
				"remaining", len(items), "connection_closed", c.closed.Load())
			items = c.sendRetained(items, true, true)
			return
		}
		rest := c.sendRetained(items, false, true)
		if len(rest) < len(items) {
			wait, lastMove = time.Millisecond, time.Now()
		} else {
			time.Sleep(wait)
			wait = min(2*wait, 50*time.Millisecond)
		}
		items = rest
	}
}

// handleUnsubscribe removes each subscription and answers with a reason
// code per filter (5.0) or a bare UNSUBACK (MQTT-3.10.4-4, -5); a durable
// session's UNSUBACK waits for the store.
func (c *conn) handleUnsubscribe(p *codec.Unsubscribe) error {
	s := c.srv
	codes := make([]byte, len(p.Filters))
	var tx *storeTx
	if c.sess.Durable() {
		tx = s.newTx(wal.KindUnsubscribe, c.clientID)
	}
	var undo []subUndo
	for i, f := range p.Filters {
		filter := string(f)
		c.sess.Lock()
		if prev, had := c.sess.Subs()[filter]; had && tx != nil {
			undo = append(undo, subUndo{filter, prev, true})
		}
		existed := c.sess.DeleteSub(filter)
		if existed {
			s.router.Unsubscribe(filter, c.sess)
			if tx != nil {
				tx.b.SubDelete([]byte(c.clientID), f)
			}
		} else {
			codes[i] = byte(codec.NoSubscriptionExisted)
		}
		c.sess.Unlock()
	}
	ack := codec.Unsuback{PacketID: p.PacketID, ReasonCodes: codes}
	if tx == nil {
		c.appendRaw(func(b []byte) []byte { b, _ = ack.Append(b, c.version); return b })
		return nil
	}
	raw, _ := ack.Append(nil, c.version)
	failAt := 0
	if c.version >= codec.Version5 {
		failAt = len(raw) - len(codes)
	}
	tx.submit(c.gateRaw(raw, failAt, nil, func() { c.undoSubs(undo) }))
	return nil
}
