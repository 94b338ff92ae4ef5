package engine

import (
	"fmt"
	"time"

	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/retain"
	"github.com/tern-mqtt/tern/router"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
)

// recover rebuilds the broker's state from the store before it accepts
// connections: durable sessions with their subscriptions, queued and
// in-flight deliveries, inbound QoS 2 packet ids and wills, and the retained
// messages. Time spent down counts against session expiry, will delays and
// message expiry. Sessions that expired meanwhile end (their wills are
// published, to the sessions restored before them), after everything is
// restored.
func (s *Server) recover() error {
	start := time.Now()
	st, err := s.store.Load()
	if err != nil {
		return fmt.Errorf("engine: cannot recover from %s: %w", s.store.Dir(), err)
	}
	now := time.Now()
	downSince := st.LastCommit
	if downSince == 0 || downSince > now.UnixNano() {
		downSince = now.UnixNano()
	}
	type offlineSession struct {
		sess    *sessions.Session
		offline int64
	}
	var ends []*sessions.Session
	var willsNow []offlineSession
	bodies := make(map[uint64]*message.Message)
	var queued, inflight, expired int
	drops := s.newTx(wal.KindDrop, "")
	lastLog := start
	for i, ss := range st.Sessions {
		if time.Since(lastLog) >= time.Second {
			lastLog = time.Now()
			s.log.Info("recovering sessions", "done", i, "total", len(st.Sessions))
		}
		sess, _, _ := s.sessions.Acquire(ss.ClientID, false)
		sess.Lock()
		sess.SetDurable(true)
		sess.Expiry = ss.Session.Expiry
		sess.Version = ss.Session.Version
		for _, sub := range ss.Subs {
			o := sessions.SubOptions{QoS: sub.Sub.QoS, NoLocal: sub.Sub.NoLocal,
				RetainAsPublished: sub.Sub.RetainAsPublished, RetainHandling: sub.Sub.RetainHandling, SubID: sub.Sub.SubID}
			sess.SetSub(sub.Filter, o)
			s.router.Subscribe(router.Sub[*sessions.Session]{Key: sess, Filter: sub.Filter, QoS: o.QoS,
				NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished, SubID: o.SubID})
		}
		for _, q := range ss.Queue {
			e := &q.Entry
			d := sessions.Delivery{QoS: e.QoS, Retain: e.Retain, SubIDs: e.SubIDs, PacketID: e.PacketID,
				StoreSeq: q.Seq, StoreMsg: e.MsgID}
			if e.State == wal.PubrecReceived {
				sess.RestoreInflight(d, true)
				inflight++
				continue
			}
			m := bodies[e.MsgID]
			if m == nil {
				w := q.Msg
				// Origin 0: the publisher's session number is not the one it
				// has in this process; No Local was applied when it was routed.
				m = message.Restore(w.Topic, w.Payload, w.Props, w.QoS, w.Retain, 0, w.Created, w.ExpireAt)
				m.StoreID = e.MsgID
				bodies[e.MsgID] = m
			}
			if e.State == wal.Queued && m.Expired(now.UnixNano()) {
				drops.queueDelete(sess, q.Seq, e.MsgID)
				expired++
				continue
			}
			d.Msg = m.Ref()
			if e.State == wal.InFlight {
				sess.RestoreInflight(d, false)
				inflight++
			} else {
				sess.RestoreQueued(d)
				queued++
			}
		}
		for _, id := range ss.InboundQoS2 {
			sess.ReceiveQoS2(id)
		}
		if w := ss.Will; w != nil {
			m := message.Restore(w.Msg.Topic, w.Msg.Payload, w.Msg.Props, w.Msg.QoS, w.Msg.Retain, sess.Seq,
				w.Msg.Created, w.Msg.ExpireAt)
			sess.Will = &sessions.Will{Msg: m, Delay: w.Delay}
		}
		// The session is offline: it went down when its client left, or
		// when the broker last wrote anything.
		offline := ss.Session.DisconnectedAt
		if offline == 0 {
			offline = downSince
		}
		down := time.Duration(now.UnixNano() - offline)
		gen := sess.NextTimer()
		expiry := sess.Expiry
		switch {
		case expiry != 0xFFFFFFFF && down >= expiryDuration(expiry):
			sess.End()
			ends = append(ends, sess)
		case sess.Will != nil && down >= time.Duration(sess.Will.Delay)*time.Second:
			willsNow = append(willsNow, offlineSession{sess, offline})
		case sess.Will != nil:
			delay := min(time.Duration(sess.Will.Delay)*time.Second, expiryDuration(expiry))
			s.armWill(sess, gen, delay-down, delay)
		case expiry != 0xFFFFFFFF:
			sess.Timer = time.AfterFunc(expiryDuration(expiry)-down, func() { s.expireSession(sess, gen) })
		}
		sess.Unlock()
	}
	for _, m := range bodies {
		m.Release()
	}
	drops.submit(nil)

	// Retained messages stay on disk; the index reads them on demand.
	s.retained = retain.NewDisk(s.store, st.Retained, st.RetainedBytes, s.retainOptions())
	n := st.Retained

	// Wills whose delay passed while the broker was down, and sessions that
	// expired meanwhile, now that every subscriber is back.
	for _, w := range willsNow {
		sess := w.sess
		sess.Lock()
		will := sess.Will
		sess.Will = nil
		gen := sess.NextTimer()
		if sess.Expiry != 0xFFFFFFFF {
			left := expiryDuration(sess.Expiry) - time.Duration(now.UnixNano()-w.offline)
			sess.Timer = time.AfterFunc(max(left, 0), func() { s.expireSession(sess, gen) })
		}
		tx := s.newTx(wal.KindWillPublish, sess.ID)
		tx.b.WillDelete([]byte(sess.ID))
		sess.Unlock()
		s.publishWillTx(will.Msg, tx)
	}
	for _, sess := range ends {
		s.endSession(sess, "session expired while the broker was down")
	}
	s.log.Info("recovered", "sessions", len(st.Sessions)-len(ends), "expired_sessions", len(ends),
		"queued", queued, "in_flight", inflight, "expired_messages", expired, "retained", n,
		"orphans_deleted", st.Orphans, "dangling_records", st.Dangling,
		"took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// armWill sets the timer of a restored session's delayed will: it fires in
// left, delay after the session went offline.
func (s *Server) armWill(sess *sessions.Session, gen uint64, left, delay time.Duration) {
	sess.Timer = time.AfterFunc(max(left, 0), func() { s.fireWill(sess, gen, delay) })
}
