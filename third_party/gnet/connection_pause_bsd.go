// Tern patch: pausing reads is implemented for epoll only.

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnet

import "github.com/panjf2000/gnet/v2/pkg/errors"

func (c *conn) PauseRead() error  { return errors.ErrUnsupportedOp }
func (c *conn) ResumeRead() error { return nil }
func (c *conn) ReadPaused() bool  { return false }

func (c *conn) armWrite(isET bool) error {
	return c.loop.poller.ModReadWrite(&c.pollAttachment, isET)
}

func (c *conn) armRead() error { return c.loop.poller.ModRead(&c.pollAttachment, false) }
