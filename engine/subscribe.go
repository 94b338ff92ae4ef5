package engine

import (
	"time"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/message"
	"github.com/tern-mqtt/tern/router"
	"github.com/tern-mqtt/tern/sessions"
)

// handleSubscribe adds each subscription, answers with one reason code per
// filter (MQTT-3.8.4-6), then sends the matching retained messages according
// to each subscription's retain handling.
func (c *conn) handleSubscribe(p *codec.Subscribe) error {
	s := c.srv
	v5 := c.version >= codec.Version5
	var subID uint32
	if v5 && len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	codes := make([]byte, len(p.Subscriptions))
	type retainedReq struct {
		filter string
		opts   sessions.SubOptions
	}
	var wantRetained []retainedReq
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
		filter := string(sub.Filter)
		opts := sessions.SubOptions{QoS: sub.QoS, NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished,
			RetainHandling: sub.RetainHandling, SubID: subID}
		// The router changes under the session lock, so that a session being
		// ended (takeover with Clean Start) cannot leave a subscription
		// behind in the router; the router never takes session locks.
		c.sess.Lock()
		if c.sess.Ended() {
			c.sess.Unlock()
			return errProtocol // taken over meanwhile: this connection is closing
		}
		existed := c.sess.SetSub(filter, opts)
		s.router.Subscribe(router.Sub[*sessions.Session]{Key: c.sess, Filter: filter, QoS: sub.QoS,
			NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished, SubID: subID})
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
	c.wbuf, _ = ack.Append(c.wbuf, c.version)
	now := time.Now().UnixNano()
	var found []*message.Message
	for _, r := range wantRetained {
		// Collect under the index's lock, deliver after it: delivery takes
		// session locks and must not hold up writers of retained messages.
		found = found[:0]
		s.retained.Match(r.filter, func(_ string, m *message.Message) bool {
			if !m.Expired(now) {
				found = append(found, m.Ref())
			}
			return true
		})
		var ids []uint32
		if r.opts.SubID != 0 {
			ids = []uint32{r.opts.SubID}
		}
		for _, m := range found {
			// Retained messages go out with RETAIN set (MQTT-3.3.1-8).
			s.deliverTo(c.sess, m, min(r.opts.QoS, m.QoS), true, ids, now)
			m.Release()
		}
	}
	return nil
}

// handleUnsubscribe removes each subscription and answers with a reason
// code per filter (5.0) or a bare UNSUBACK (MQTT-3.10.4-4, -5).
func (c *conn) handleUnsubscribe(p *codec.Unsubscribe) error {
	s := c.srv
	codes := make([]byte, len(p.Filters))
	for i, f := range p.Filters {
		filter := string(f)
		c.sess.Lock()
		existed := c.sess.DeleteSub(filter)
		if existed {
			s.router.Unsubscribe(filter, c.sess)
		} else {
			codes[i] = byte(codec.NoSubscriptionExisted)
		}
		c.sess.Unlock()
	}
	ack := codec.Unsuback{PacketID: p.PacketID, ReasonCodes: codes}
	c.wbuf, _ = ack.Append(c.wbuf, c.version)
	return nil
}
