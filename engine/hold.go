package engine

import "slices"

// QoS 0 flow control. A QoS 0 message for a subscriber over its outbound
// bound used to be dropped; now, while the subscriber keeps draining, it is
// written anyway and its publisher stops reading (gnet's PauseRead) until
// the subscriber is back within half its bound. TCP then holds the publisher
// back, as it would a slow network, and nothing is lost. A subscriber that
// has not drained within stalledAfter of the first hold is stalled: its
// publishers go on and its QoS 0 messages are dropped (MQTT allows it;
// DESIGN invariant 5) until it catches up, so a client that stops reading
// slows nobody down for longer than that.

// holdQoS0 decides a QoS 0 delivery to c, which is over its outbound bound,
// published by pub: true means write it anyway and pause pub after its
// current read; false means drop it. Runs on pub's loop.
func (c *conn) holdQoS0(pub *conn, now int64) bool {
	s := c.srv
	// Each holding publisher adds at most one read (64 KiB) before it
	// pauses; the cap is a guard should thousands do so at once.
	if pub == nil || pub == c || s.noReadPause.Load() || c.outBytes.Load() > 2*int64(s.opts.MaxOutboundBytes)+1<<20 {
		return false
	}
	if since := c.holdSince.Load(); since == 0 {
		c.holdSince.CompareAndSwap(0, now)
	} else if now-since > int64(stalledAfter) {
		return false
	}
	if !slices.Contains(pub.holdOn, c) {
		pub.holdOn = append(pub.holdOn, c)
	}
	return true
}

// pauseForHolds stops reading from a publisher whose read just sent QoS 0
// messages over subscribers' bounds, until every one of them has drained.
// Runs on the publisher's loop, after the read's packets are handled.
func (c *conn) pauseForHolds() {
	subs := c.holdOn
	c.holdOn = c.holdOn[:0]
	defer clear(subs)
	if err := c.gc.PauseRead(); err != nil {
		c.srv.noReadPause.Store(true) // not on this platform: drop over the bound as before
		c.srv.log.Warn("cannot pause reading; QoS 0 messages over --max-outbound-bytes will be dropped", "err", err)
		return
	}
	c.srv.stats.pausedQoS0.Add(1)
	c.holdCount.Add(int32(len(subs)))
	for _, sub := range subs {
		if !sub.addWaiter(c) {
			c.unhold()
		}
	}
}

// unhold counts one subscriber the publisher no longer waits for; after the
// last, its loop resumes reading (resumeIfReleased, from OnTraffic).
func (c *conn) unhold() {
	if c.holdCount.Add(-1) == 0 {
		_ = c.gc.Wake(nil)
	}
}

// resumeIfReleased undoes pauseForHolds once no subscriber holds the
// publisher any more. Runs on its loop.
func (c *conn) resumeIfReleased() {
	if c.holdCount.Load() == 0 && c.gc.ReadPaused() {
		_ = c.gc.ResumeRead()
	}
}

// addWaiter makes pub wait until c drains to half its bound; false if it
// already has (or is closed).
func (c *conn) addWaiter(pub *conn) bool {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.outClosed || c.outBytes.Load() <= int64(c.srv.opts.MaxOutboundBytes)/2 {
		return false
	}
	c.waiters = append(c.waiters, pub)
	return true
}

// releaseWaiters lets every publisher waiting for c go on.
func (c *conn) releaseWaiters() {
	c.outMu.Lock()
	w := c.waiters
	c.waiters = nil
	c.outMu.Unlock()
	for _, pub := range w {
		pub.unhold()
	}
}
