package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listenConfig sets TCP keep-alive and TCP_NODELAY once on the listening
// socket, which Linux copies to every accepted one, instead of Go's five
// setsockopt calls per accepted connection: a fifth of the broker's CPU per
// connection at high connect rates. Keep-alive stays on (15 s idle, 15 s
// between 9 probes, Go's defaults) so that a peer that vanished without a FIN
// is found even when its MQTT keep-alive is 0.
var listenConfig = net.ListenConfig{
	KeepAlive: -1,
	Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			for _, o := range [...]struct{ level, opt, v int }{
				{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
				{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
				{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
				{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
				{syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
			} {
				if err == nil {
					err = syscall.SetsockoptInt(int(fd), o.level, o.opt, o.v)
				}
			}
		}); cerr != nil {
			return cerr
		}
		return err
	},
}

// acceptor accepts connections with accept4 directly rather than
// ln.Accept: a net.Conn would register the socket with Go's poller only for
// the event loop to take it over, a dup, a close and two epoll_ctl calls per
// connection for nothing. It works on a duplicate of the listening
// descriptor, since Go's listener does not let callers wait on its own.
type acceptor struct {
	f *os.File
	// The peer address of the latest accept4: reused, since x/sys/unix's
	// Accept4 allocates a quarter of a kilobyte of garbage per connection.
	rsa    unix.RawSockaddrAny
	rsaLen uint32
}

func newAcceptor(ln net.Listener) (*acceptor, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, errors.New("engine: listener has no descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	dup := -1
	if cerr := rc.Control(func(fd uintptr) {
		dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("engine: dup listener: %w", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		_ = unix.Close(dup)
		return nil, err
	}
	return &acceptor{f: os.NewFile(uintptr(dup), "listener")}, nil // non-blocking: Go's poller waits on it
}

// each accepts connections and passes each, as a non-blocking descriptor the
// callee owns, to fn, until accepting fails; it returns that error
// (net.ErrClosed once the acceptor is closed).
func (a *acceptor) each(fn func(fd int, remote netip.AddrPort)) error {
	rc, err := a.f.SyscallConn()
	if err != nil {
		return err
	}
	var acceptErr error
	err = rc.Read(func(lfd uintptr) bool {
		for {
			a.rsaLen = unix.SizeofSockaddrAny
			fd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, lfd, uintptr(unsafe.Pointer(&a.rsa)),
				uintptr(unsafe.Pointer(&a.rsaLen)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
			var err error
			if errno != 0 {
				err = errno
			}
			switch err {
			case nil:
				fn(int(fd), addrPortOf(&a.rsa))
			case unix.EAGAIN:
				return false // Go's poller waits for the next connection
			case unix.EINTR, unix.ECONNABORTED:
				// A connection reset while in the backlog: take the next.
			default:
				acceptErr = err
				return true
			}
		}
	})
	if errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	if err != nil {
		return err
	}
	return acceptErr
}

func (a *acceptor) close() error { return a.f.Close() }

func addrPortOf(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), binary.BigEndian.Uint16(port[:]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), binary.BigEndian.Uint16(port[:]))
	}
	return netip.AddrPort{}
}
