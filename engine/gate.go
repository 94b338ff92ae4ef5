package engine

import (
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/sessions"
)

// Gated packets: what a connection may send only once a store change is
// durable (an acknowledgement, a durable session's QoS 2 PUBLISH or PUBREL)
// waits in the connection's gate queue until the store completes the change.
// Packets that need no store but must keep their order with gated ones (any
// acknowledgement while the queue is not empty) join the queue as ready. The
// loop writes the ready head of the queue with every flush.

// gated is one packet in the gate queue.
type gated struct {
	ack      codec.Ack         // PUBACK, PUBREC, PUBREL, PUBCOMP
	raw      []byte            // an encoded SUBACK or UNSUBACK, with failure codes at failAt
	failAt   int               // offset of the reason codes in raw, 0 when none
	then     func()            // runs on the loop right after a successful raw packet
	onFail   func()            // runs on the loop when the store change failed, to undo it in memory
	delivery sessions.Delivery // a PUBLISH (Msg non-nil)
	resend   []resendItem      // in-flight deliveries sent again on a new connection
	ready    bool              // the store change completed
	wait     int               // gateAckN: completions still to come
	err      error             // it failed
}

// gateAck queues an acknowledgement that goes out once the store completes
// the change; the returned function is the store completion.
func (c *conn) gateAck(t codec.PacketType, id uint16, reason codec.ReasonCode) func(error) {
	return c.gate(&gated{ack: codec.Ack{Type: t, PacketID: id, ReasonCode: reason}})
}

// gateAckN queues an acknowledgement that goes out once the returned
// function has been called n times (a store change, subscribers' queues
// draining); the first error wins.
func (c *conn) gateAckN(t codec.PacketType, id uint16, reason codec.ReasonCode, n int) func(error) {
	g := &gated{ack: codec.Ack{Type: t, PacketID: id, ReasonCode: reason}, wait: n}
	c.gate(g)
	return func(err error) {
		c.gmu.Lock()
		if g.err == nil {
			g.err = err
		}
		g.wait--
		last := g.wait == 0
		err = g.err
		c.gmu.Unlock()
		if last {
			c.complete(g, err)
		}
	}
}

// gateRaw queues an encoded packet (SUBACK, UNSUBACK) behind the store;
// failAt is where its reason codes start, for the failure answer.
func (c *conn) gateRaw(raw []byte, failAt int, then, onFail func()) func(error) {
	return c.gate(&gated{raw: raw, failAt: failAt, then: then, onFail: onFail})
}

// gateResend queues, behind every store change of the session submitted
// before it, the in-flight deliveries a resumed durable session sends again.
func (c *conn) gateResend(list []resendItem) func(error) {
	return c.gate(&gated{resend: list})
}

// gateDelivery queues a PUBLISH (its reference passes to the queue).
func (c *conn) gateDelivery(d sessions.Delivery) func(error) {
	return c.gate(&gated{delivery: d})
}

func (c *conn) gate(g *gated) func(error) {
	c.gmu.Lock()
	if c.gclosed {
		c.gmu.Unlock()
		if g.delivery.Msg != nil {
			g.delivery.Msg.Release()
		}
		releaseResend(g.resend)
		return func(error) {}
	}
	c.gq = append(c.gq, g)
	c.gn.Store(int32(len(c.gq)))
	c.gmu.Unlock()
	return func(err error) { c.complete(g, err) }
}

// complete marks g ready (from the committer) and wakes the loop.
func (c *conn) complete(g *gated, err error) {
	c.gmu.Lock()
	if c.gclosed {
		c.gmu.Unlock() // closeGate released what the entry held
		return
	}
	g.ready, g.err = true, err
	wake := !c.gwake && len(c.gq) > 0 && c.gq[0].ready
	if wake {
		c.gwake = true
	}
	c.gmu.Unlock()
	if wake {
		c.wakeDrain()
	}
}

// appendAck queues a PUBACK, PUBREC, PUBREL or PUBCOMP that needs no store
// change: written with this batch, or behind gated packets to keep the order.
func (c *conn) appendAck(t codec.PacketType, id uint16, reason codec.ReasonCode) {
	if c.gatedPending() {
		c.gate(&gated{ack: codec.Ack{Type: t, PacketID: id, ReasonCode: reason}, ready: true})
		return
	}
	a := codec.Ack{Type: t, PacketID: id, ReasonCode: reason}
	c.wbuf, _ = a.Append(c.wbuf, c.version)
}

// gatedPending reports whether gated packets wait. Loop only.
func (c *conn) gatedPending() bool { return c.gn.Load() > 0 }

// appendGated moves the ready head of the gate queue into the batch. A
// failed store change turns an acknowledgement into a refusal: a reason code
// for 5.0, closing the connection for 3.1.1 PUBACK/PUBREC (they carry no
// reason code, and the publisher must not believe the message stored).
func (c *conn) appendGated(now int64) {
	if c.gn.Load() == 0 {
		return // the common case: nothing gated
	}
	c.gmu.Lock()
	n := 0
	for n < len(c.gq) && c.gq[n].ready {
		n++
	}
	if n == 0 {
		c.gwake = false
		c.gmu.Unlock()
		return
	}
	ready := append(c.gready[:0], c.gq[:n]...)
	m := copy(c.gq, c.gq[n:])
	clear(c.gq[m:])
	c.gq = c.gq[:m]
	c.gn.Store(int32(m))
	c.gwake = false
	c.gmu.Unlock()
	for i, g := range ready {
		ready[i] = nil
		c.writeGated(g, now)
	}
	c.gready = ready[:0]
}

func (c *conn) writeGated(g *gated, now int64) {
	if g.err != nil && g.onFail != nil {
		g.onFail()
	}
	switch {
	case g.err != nil && g.delivery.Msg != nil:
		// Its in-flight record is not stored: not sent now; it stays in the
		// window and goes out again on the client's next connection.
		g.delivery.Msg.Release()
		c.storeFailed(g.err)
	case g.delivery.Msg != nil:
		d := g.delivery
		if !c.appendDelivery(&d, now) && c.sess != nil {
			c.sess.Lock()
			if c.sess.Owner() == c {
				c.srv.completeUnsent(c.sess, &d)
			}
			c.sess.Unlock()
		}
	case g.resend != nil && g.err != nil:
		releaseResend(g.resend)
		c.storeFailed(g.err)
	case g.resend != nil:
		c.writeResend(g.resend, now)
	case g.raw != nil && g.err != nil && g.failAt == 0:
		c.storeFailed(g.err) // a 3.1.1 UNSUBACK cannot say it failed
	case g.raw != nil:
		if g.err != nil && g.failAt > 0 {
			for i := g.failAt; i < len(g.raw); i++ {
				g.raw[i] = byte(codec.UnspecifiedError) // 0x80 is also 3.1.1's SUBACK failure
			}
		}
		c.wbuf = append(c.wbuf, g.raw...)
		if g.err == nil && g.then != nil {
			g.then()
		}
	default:
		a := g.ack
		if g.err != nil {
			if a.Type == codec.PUBREC && c.sess != nil { // not accepted: the id is free again
				c.sess.Lock()
				c.sess.ReleaseQoS2(a.PacketID)
				c.sess.Unlock()
			}
			if c.version < codec.Version5 || (a.Type != codec.PUBACK && a.Type != codec.PUBREC) {
				// No reason code can say it (3.1.1; PUBREL and PUBCOMP
				// ending a step the store did not record): the client
				// repeats the step on its next connection.
				c.storeFailed(g.err)
				return
			}
			a.ReasonCode = storeReason(g.err)
		}
		c.wbuf, _ = a.Append(c.wbuf, c.version)
	}
}

// storeFailed closes the connection after a store change it waited for
// failed, leaving its acknowledgement unsent.
func (c *conn) storeFailed(err error) {
	c.srv.log.Warn("closing connection: the store could not record a change", "client_id", c.clientID,
		"err", err.Error())
	c.kick(codec.UnspecifiedError)
}

// closeGate releases what waits in the gate queue when the connection closes.
func (c *conn) closeGate() {
	c.gmu.Lock()
	c.gclosed = true
	q := c.gq
	c.gq = nil
	c.gn.Store(0)
	for _, g := range q {
		// Pending entries are completed later by the store: the reference
		// goes now, and complete must not release it again.
		if g.delivery.Msg != nil {
			g.delivery.Msg.Release()
			g.delivery.Msg = nil
		}
		releaseResend(g.resend)
		g.resend = nil
	}
	c.gmu.Unlock()
}

// wakeDrain wakes the connection's loop to write what became sendable.
func (c *conn) wakeDrain() { _ = c.gc.Wake(nil) }
