package engine

import (
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/router"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
)

// route delivers m to every matching subscription: once per subscriber with
// the highest granted QoS and every matching subscription identifier
// (MQTT-3.3.4-2, -3, -4), and to one member of each matching shared group. It
// returns how many sessions took the message and whether any refused it for
// a full queue (the publisher then hears 0x97 if nobody took it). Durable
// sessions' deliveries go into tx (nil without a store). The caller keeps
// its reference to m.
func (s *Server) route(m *message.Message, now int64, tx *storeTx) (matched int, refused bool) {
	return s.routeMatched(m, s.router.Match(m.Topic), now, tx, nil, nil)
}

// needsStore reports whether routing m to res stores a delivery: a QoS 1/2
// message matching a durable session (any shared group counts, its pick is
// not known yet).
func needsStore(m *message.Message, res *router.Result[*sessions.Session]) bool {
	if m.QoS == 0 {
		return false
	}
	if len(res.Shared) > 0 {
		return true
	}
	for i := range res.Subs {
		if res.Subs[i].QoS > 0 && res.Subs[i].Key.Durable() {
			return true
		}
	}
	return false
}

// routeMatched routes m to res. from is the publishing connection, which a
// QoS 0 subscriber over its outbound bound may pause (hold.go); nil for
// messages no client is sending now (wills, recovery). With overs non-nil
// (a QoS 1/2 PUBLISH whose publisher can be held back), online sessions
// whose queues are full take the message anyway and are listed in *overs
// instead of refusing it.
func (s *Server) routeMatched(m *message.Message, res *router.Result[*sessions.Session], now int64, tx *storeTx, overs *[]*sessions.Session, from *conn) (matched int, refused bool) {
	subs := res.Subs
	for i := 0; i < len(subs); {
		sess := subs[i].Key
		j := i
		var qos byte
		var ids []uint32
		retain, any := false, false
		for ; j < len(subs) && subs[j].Key == sess; j++ {
			sub := &subs[j]
			if sub.NoLocal && m.Origin == sess.Seq { // MQTT-3.8.3-3
				continue
			}
			any = true
			qos = max(qos, sub.QoS)
			retain = retain || sub.RetainAsPublished
			if sub.SubID != 0 {
				ids = append(ids, sub.SubID)
			}
		}
		i = j
		if !any {
			continue
		}
		// RETAIN is kept only for Retain As Published (MQTT-3.3.1-12, -13).
		switch s.deliverTo(sess, m, min(qos, m.QoS), retain && m.Retain, ids, now, tx, overs, from) {
		case sessions.Accepted:
			matched++
		case sessions.RefusedQueueFull:
			refused = true
		}
	}
	for _, g := range res.Shared {
		sub, ok := g.Pick(online)
		if !ok {
			continue
		}
		var ids []uint32
		if sub.SubID != 0 {
			ids = []uint32{sub.SubID}
		}
		switch s.deliverTo(sub.Key, m, min(sub.QoS, m.QoS), sub.RetainAsPublished && m.Retain, ids, now, tx, overs, from) {
		case sessions.Accepted:
			matched++
		case sessions.RefusedQueueFull:
			refused = true
		}
	}
	return matched, refused
}

// stalledAfter is how long a subscriber may go without acknowledging
// anything before a full queue stops holding its publishers back: a client
// that stopped reading must not slow everybody who publishes to it; its
// messages are refused instead (and it is disconnected as a slow consumer
// if it stays over its outbound bound).
const stalledAfter = time.Second

// online reports whether a session has a connection; shared groups prefer
// online members.
func online(sess *sessions.Session) bool {
	sess.Lock()
	defer sess.Unlock()
	return sess.Owner() != nil
}

// deliverTo offers m to one session. Online, with room, it goes straight to
// the connection's outbound queue; otherwise the session queues it. QoS 0
// over the outbound bound holds the publisher back (hold.go) while the
// subscriber drains, and is dropped once it stalls (DESIGN invariant 5). A durable
// session's QoS 1/2 delivery is added to tx. It returns what became of the
// delivery.
func (s *Server) deliverTo(sess *sessions.Session, m *message.Message, qos byte, retain bool, ids []uint32, now int64, tx *storeTx, overs *[]*sessions.Session, from *conn) sessions.Drop {
	sess.Lock()
	c, _ := sess.Owner().(*conn)
	held := false
	if c != nil && qos == 0 && c.overBound() {
		if !c.holdQoS0(from, now) {
			sess.Unlock()
			s.stats.droppedSlow.Add(1)
			return sessions.DroppedQueueQoS0
		}
		held = true
	}
	room := c == nil || held || !c.overBound()
	in := sessions.Delivery{Msg: m.Ref(), QoS: qos, Retain: retain, SubIDs: ids}
	stored := tx != nil && qos > 0 && sess.Durable() && m.StoreID != 0
	if stored {
		s.nextStoreSeq(&in)
	}
	var (
		d    sessions.Delivery
		send bool
		drop sessions.Drop
		over bool
	)
	if overs != nil && qos > 0 && now-sess.Progress < int64(stalledAfter) {
		d, send, drop, over = sess.OfferOverflow(in, now, room)
		if over {
			*overs = append(*overs, sess)
		}
	} else {
		d, send, drop = sess.Offer(in, now, room)
	}
	if !room && drop == sessions.Accepted {
		// Queued behind the outbound bound: make sure housekeeping looks at
		// this connection again even if no flush sees it over the bound.
		c.overSince.CompareAndSwap(0, now)
	}
	if drop == sessions.Accepted {
		if stored {
			tx.queuePut(sess, &d, send)
		}
		if tx != nil && tx.held == m && !send {
			tx.wake = append(tx.wake, sess)
		}
	}
	if send {
		if d.QoS > 0 {
			d.Msg.Ref() // one for the in-flight window, one for the write
		}
		c.push(d)
	}
	sess.Unlock()
	switch drop {
	case sessions.RefusedQueueFull:
		s.stats.refused.Add(1)
	case sessions.DroppedExpired:
		s.stats.expired.Add(1)
	case sessions.DroppedQueueQoS0:
		s.stats.droppedQueue.Add(1)
	}
	return drop
}

// drainSession moves queued deliveries into this batch while the in-flight
// window and the outbound bound allow. Runs on the connection's loop.
func (c *conn) drainSession() {
	sess := c.sess
	if sess == nil || c.overBound() {
		return
	}
	now := time.Now().UnixNano()
	sess.Lock()
	var drained []func()
	defer func() {
		if sess.Owner() == c {
			drained = sess.TakeDrained(false)
		}
		sess.Unlock()
		for _, fn := range drained { // publishers held back by this queue go on
			fn()
		}
	}()
	if sess.Owner() != c {
		return
	}
	c.appendPushed(true, now)
	for in, ok := sess.ResendPending(); ok; in, ok = sess.ResendPending() {
		c.resendOne(in, now)
	}
	// Behind a delivery that waits for the store, the rest wait their turn
	// too, so that the client gets the session's messages in order.
	viaGate := c.gatedPending()
	for budget := 512; budget > 0; budget-- {
		d, ok, expired := sess.Next(now)
		if expired > 0 {
			c.srv.stats.expired.Add(int64(expired))
			c.srv.deleteExpired(sess)
		}
		if !ok {
			return
		}
		if d.QoS > 0 {
			d.Msg.Ref()
		}
		if d.QoS == 2 && d.StoreSeq != 0 {
			// The receiver must see it again under the same packet id after
			// a restart: the store learns the id before the client does.
			tx := c.srv.newTx(wal.KindSend, sess.ID)
			e := queueEntry(&d, wal.InFlight)
			tx.b.QueueUpdate([]byte(sess.ID), d.StoreSeq, &e)
			tx.submit(c.gateDelivery(d))
			viaGate = true
			continue
		}
		if viaGate {
			c.gate(&gated{delivery: d, ready: true})
			continue
		}
		if !c.appendDelivery(&d, now) {
			c.srv.completeUnsent(sess, &d)
		}
	}
	_ = c.gc.Wake(nil) // more is queued: continue on the next turn of the loop
}

// appendDelivery encodes the PUBLISH header of d for this connection into the
// batch and schedules its payload after it; the payload is written from the
// message's shared buffer (DESIGN invariant 7). The batch takes over d's
// message reference. It returns false when the message is not sent (expired,
// or too large for the client): the reference is released, and the caller
// ends the in-flight state with completeUnsent.
func (c *conn) appendDelivery(d *sessions.Delivery, now int64) bool {
	// Expiry is checked where a message waits (Offer, Next): once handed to
	// the connection its onward delivery has started (MQTT-3.3.2-5).
	m := d.Msg
	if r := c.rules(); r != nil && !r.CanReceive(m.Topic) {
		// Not for this client (ACL), retained or not: discarded as if
		// sent, as a packet too large is.
		c.srv.stats.aclDenied.Add(1)
		c.windowFreed = true
		m.Release()
		return false
	}
	h := codec.PublishHeader{Dup: d.Dup, QoS: d.QoS, Retain: d.Retain, Topic: m.Topic, PacketID: d.PacketID,
		PayloadLen: len(m.Payload)}
	if c.version >= codec.Version5 {
		h.MessageExpiry, h.HasExpiry = m.RemainingExpiry(now) // MQTT-3.3.2-6
		h.SubIDs = d.SubIDs
		h.RawProps = m.Props
		newAlias := c.aliasMaxOut > 0 && c.outboundAlias(&h)
		if c.maxPacketOut > 0 && h.Size(c.version) > c.maxPacketOut {
			// Too large for the client: discarded as if sent (MQTT-3.1.2-25),
			// and an alias it would have introduced is not kept.
			if newAlias {
				delete(c.aliasesOut, string(m.Topic))
			}
			c.srv.stats.droppedLarge.Add(1)
			c.windowFreed = true
			m.Release()
			return false
		}
	}
	var err error
	if c.wbuf, err = h.Append(c.wbuf, c.version); err != nil {
		if h.TopicAlias != 0 && h.Topic != nil { // an alias introduced by a packet never sent
			delete(c.aliasesOut, string(m.Topic))
		}
		m.Release()
		return false
	}
	c.cuts = append(c.cuts, cut{at: len(c.wbuf), payload: m.Payload})
	c.sent = append(c.sent, *d)
	q := min(d.QoS, 2)
	c.counts.msgsOut[q]++
	c.counts.pubOut[q] += int64(len(m.Topic) + len(m.Payload))
	return true
}

// outboundAlias uses or assigns a topic alias towards the client, within the
// Topic Alias Maximum it announced (MQTT-3.3.2-10). Aliases are assigned to
// the first topics seen and kept for the connection; it reports whether it
// assigned a new one (sent together with the topic name).
func (c *conn) outboundAlias(h *codec.PublishHeader) (assigned bool) {
	if a, ok := c.aliasesOut[string(h.Topic)]; ok {
		h.TopicAlias = a
		h.Topic = nil
		return false
	}
	if len(c.aliasesOut) >= int(c.aliasMaxOut) {
		return false
	}
	if c.aliasesOut == nil {
		c.aliasesOut = make(map[string]uint16)
	}
	a := uint16(len(c.aliasesOut) + 1)
	c.aliasesOut[string(h.Topic)] = a
	h.TopicAlias = a
	return true
}

// completeUnsent ends the in-flight state of a delivery that will never be
// sent, so that it does not hold the window, and deletes its stored entry.
// The session must be locked.
func (s *Server) completeUnsent(sess *sessions.Session, d *sessions.Delivery) {
	var seq, msgID uint64
	if in := sess.InflightOf(d.PacketID); in != nil && d.QoS > 0 {
		seq, msgID = in.StoreSeq, in.StoreMsg
	}
	switch d.QoS {
	case 1:
		sess.Ack(d.PacketID, 'a')
	case 2:
		sess.Ack(d.PacketID, 'r')
		sess.Ack(d.PacketID, 'c')
	}
	if seq != 0 && sess.Durable() {
		tx := s.newTx(wal.KindDrop, sess.ID)
		tx.queueDelete(sess, seq, msgID)
		tx.submit(nil)
	}
}

// detach runs when a connected client's connection closes (or it sent
// DISCONNECT): the session goes offline, its will is published now or after
// its delay, and a session with expiry 0 ends while one with an expiry gets a
// timer. A durable session records when it went offline (its expiry counts
// from then, across restarts) and loses its will when it was published or
// discarded.
func (s *Server) detach(c *conn) {
	sess := c.sess
	sess.Lock()
	if c.sessMoved.Load() || !sess.Detach(c) {
		sess.Unlock() // taken over: the session lives on with the new connection
		return
	}
	drained := sess.TakeDrained(true) // nobody drains an offline queue soon: publishers go on
	will := sess.Will
	sess.Will = nil
	expiry := sess.Expiry
	gen := sess.NextTimer()
	switch {
	case expiry == 0:
		sess.End() // decided under the lock, so no CONNECT resumes it meanwhile
	case will != nil && will.Delay > 0:
		// Published when the delay or the session ends, whichever is first
		// (MQTT-3.1.3-9); a returning client cancels it.
		sess.Will = will
		will = nil
		delay := min(time.Duration(sess.Will.Delay)*time.Second, expiryDuration(expiry))
		sess.Timer = time.AfterFunc(delay, func() { s.fireWill(sess, gen, delay) })
	case expiry != 0xFFFFFFFF:
		sess.Timer = time.AfterFunc(expiryDuration(expiry), func() { s.expireSession(sess, gen) })
	}
	var tx *storeTx
	if expiry != 0 && sess.Durable() {
		tx = s.newTx(wal.KindDisconnect, sess.ID)
		tx.storeSession(sess, c.opened, unixNano(), sess.Will == nil)
	}
	sess.Unlock()
	for _, fn := range drained {
		fn()
	}
	switch {
	case will != nil && !c.gracefulClose:
		if tx == nil {
			tx = s.newTx(wal.KindWillPublish, sess.ID)
		}
		s.publishWillTx(will.Msg, tx) // in the batch that deletes the stored will
	default:
		if will != nil {
			will.Msg.Release()
		}
		if tx != nil {
			tx.submit(nil)
		}
	}
	if expiry == 0 {
		s.endSession(sess, "session expiry 0")
	}
}

func expiryDuration(expiry uint32) time.Duration { return time.Duration(expiry) * time.Second }

// fireWill publishes a delayed will whose client did not return in time, then
// lets the session expire at the end of its interval, which started when the
// connection closed (waited ago).
func (s *Server) fireWill(sess *sessions.Session, gen uint64, waited time.Duration) {
	sess.Lock()
	if !sess.TimerCurrent(gen) || sess.Owner() != nil || sess.Ended() {
		sess.Unlock()
		return
	}
	will := sess.Will
	sess.Will = nil
	sess.Timer = nil
	end := false
	if sess.Expiry != 0xFFFFFFFF {
		left := expiryDuration(sess.Expiry) - waited
		if left <= 0 {
			// The session ends with its will: endSession publishes it in
			// the batch that deletes the session.
			sess.End()
			end = true
			sess.Will, will = will, nil
		} else {
			gen := sess.NextTimer()
			sess.Timer = time.AfterFunc(left, func() { s.expireSession(sess, gen) })
		}
	}
	var tx *storeTx
	if !end && sess.Durable() {
		tx = s.newTx(wal.KindWillPublish, sess.ID)
		tx.b.WillDelete([]byte(sess.ID))
	}
	sess.Unlock()
	if will != nil {
		s.publishWillTx(will.Msg, tx)
	} else if tx != nil {
		tx.submit(nil)
	}
	if end {
		s.endSession(sess, "session expired")
	}
}

func (s *Server) expireSession(sess *sessions.Session, gen uint64) {
	sess.Lock()
	stale := !sess.TimerCurrent(gen) || sess.Owner() != nil || sess.Ended()
	if !stale {
		sess.End()
	}
	sess.Unlock()
	if !stale {
		s.endSession(sess, "session expired")
	}
}

// endSession removes a session: its subscriptions leave the router, a pending
// will is published (the session ended before the delay), everything it held
// is released, and a durable session is deleted from the store, in the same
// batch as the will's deliveries.
func (s *Server) endSession(sess *sessions.Session, why string) {
	s.sessions.Remove(sess)
	sess.Lock()
	if sess.Timer != nil {
		sess.Timer.Stop()
		sess.Timer = nil
	}
	for f := range sess.Subs() {
		s.router.Unsubscribe(f, sess)
	}
	will := sess.Will
	sess.Will = nil
	var tx *storeTx
	if sess.Durable() {
		tx = s.newTx(wal.KindSessionEnd, sess.ID)
		tx.b.SessionDelete([]byte(sess.ID))
		sess.SetDurable(false)
	}
	drained := sess.TakeDrained(true)
	sess.Clear()
	sess.Unlock()
	for _, fn := range drained {
		fn()
	}
	if will != nil {
		s.publishWillTx(will.Msg, tx)
	} else if tx != nil {
		tx.submit(nil)
	}
	s.log.Debug("session ended", "client_id", sess.ID, "why", why)
}

// publishWill publishes a will message (retained if it asks) and releases it.
func (s *Server) publishWill(m *message.Message) {
	s.publishWillTx(m, s.newTx(wal.KindWillPublish, ""))
}

// publishWillTx publishes a will within tx (which may already hold the
// deletion of the will or of its session), submits tx and releases m. The
// will is held until tx is durable, so that a will is never both delivered
// and, after a crash, published again.
func (s *Server) publishWillTx(m *message.Message, tx *storeTx) {
	now := time.Now()
	// The will's Message Expiry Interval counts from its publication
	// (3.1.3.2.4), not from the CONNECT that carried it. Nobody else holds
	// the message yet, so it can be restamped.
	if m.ExpireAt != 0 {
		m.ExpireAt = now.UnixNano() + (m.ExpireAt - m.Created)
	}
	m.Created = now.UnixNano()
	if tx != nil {
		s.messageID(m)
		tx.b.SetTopic(m.Topic, m.QoS, len(m.Payload))
		tx.hold(m, true)
	}
	if m.Retain {
		s.storeRetained(m, tx)
	}
	s.route(m, now.UnixNano(), tx)
	if tx != nil {
		tx.submit(nil)
	}
	m.Release()
}

// housekeeping closes connections whose keep-alive lapsed (1.5 times the
// interval, MQTT-3.1.2-24), sockets that sent no CONNECT in time, and slow
// consumers that stayed over the outbound bound.
func (s *Server) housekeeping() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var tick int
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		if tick++; tick%4 == 0 {
			s.sweepIPs(now)
		}
		s.conns.each(func(c *conn) {
			if c.closed.Load() || c.kicked.Load() != 0 {
				return
			}
			if since := c.holdSince.Load(); since != 0 && now-since > int64(stalledAfter) {
				c.releaseWaiters() // stalled: its publishers go on (hold.go)
			}
			idle := time.Duration(now - c.lastRecv.Load())
			switch {
			case !c.connectedShared() && time.Duration(now-c.opened) > s.opts.ConnectTimeout:
				// From the accept, not the last read: a CONNECT trickled in
				// or an AUTH exchange drawn out must not hold a socket for ever.
				s.log.Info("closing connection: no CONNECT in time", "remote", c.remote.String())
				c.kick(codec.KeepAliveTimeout)
			case c.connectedShared() && c.keepAliveShared() > 0 && idle > c.keepAliveShared()*3/2:
				c.kick(codec.KeepAliveTimeout)
			case c.overSince.Load() != 0 && time.Duration(now-c.overSince.Load()) > s.opts.SlowConsumerAfter:
				s.log.Warn("disconnecting slow consumer", "client_id", c.clientIDShared(), "remote", c.remote.String())
				c.kick(codec.QuotaExceeded)
			case c.overSince.Load() != 0:
				// gnet does not tell when a connection's outbound buffer
				// drains: look again, and send what waits in the session,
				// once the client has caught up.
				_ = c.gc.Wake(nil)
			}
		})
	}
}
