// Tern patch: a connection can stop reading so that TCP flow control pushes
// back on a sender the application cannot keep up with. Linux (epoll,
// level-triggered) only.

//go:build linux

package gnet

import "github.com/panjf2000/gnet/v2/pkg/errors"

// PauseRead stops reading from the connection: its readable event leaves the
// poller, the socket's receive buffer fills and the peer's sends block.
// Bytes already read stay in the inbound buffer; OnTraffic is not called for
// them until the next read after ResumeRead. It must be called on the
// connection's event loop (in a handler callback) and needs level-triggered
// I/O.
func (c *conn) PauseRead() error {
	if c.loop.engine.opts.EdgeTriggeredIO {
		return errors.ErrUnsupportedOp
	}
	if c.readPaused || !c.opened {
		return nil
	}
	c.readPaused = true
	return c.loop.poller.ModLevel(&c.pollAttachment, false, !c.outboundBuffer.IsEmpty())
}

// ResumeRead undoes PauseRead. It must be called on the connection's event
// loop, for instance from OnTraffic after a Wake.
func (c *conn) ResumeRead() error {
	if !c.readPaused || !c.opened {
		return nil
	}
	c.readPaused = false
	return c.loop.poller.ModLevel(&c.pollAttachment, true, !c.outboundBuffer.IsEmpty())
}

// ReadPaused reports whether PauseRead is in effect.
func (c *conn) ReadPaused() bool { return c.readPaused }

// armWrite asks the poller for the writable event, after a write left data in
// the outbound buffer, keeping the readable event only while not paused.
func (c *conn) armWrite(isET bool) error {
	if c.readPaused {
		return c.loop.poller.ModLevel(&c.pollAttachment, false, true)
	}
	return c.loop.poller.ModReadWrite(&c.pollAttachment, isET)
}

// armRead drops the writable event once the outbound buffer is empty
// (level-triggered mode), keeping the readable event only while not paused.
func (c *conn) armRead() error {
	return c.loop.poller.ModLevel(&c.pollAttachment, !c.readPaused, false)
}
