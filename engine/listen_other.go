//go:build !linux

package engine

import (
	"errors"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// listenConfig keeps Go's per-connection keep-alive where the kernel does not
// copy the listening socket's to accepted ones (see listen_linux.go).
var listenConfig net.ListenConfig

// acceptor passes accepted connections on as non-blocking descriptors.
// Off Linux it goes through net.Conn (see listen_linux.go for the direct way).
type acceptor struct{ ln net.Listener }

func newAcceptor(ln net.Listener) (*acceptor, error) { return &acceptor{ln: ln}, nil }

func (a *acceptor) close() error { return nil } // the listener's Close ends each

func (a *acceptor) each(fn func(fd int, remote netip.AddrPort)) error {
	for {
		nc, err := a.ln.Accept()
		if err != nil {
			return err
		}
		tc, ok := nc.(*net.TCPConn)
		if !ok {
			_ = nc.Close()
			return errors.New("engine: not a TCP connection")
		}
		f, err := tc.File()
		remote := tc.RemoteAddr().(*net.TCPAddr).AddrPort()
		_ = nc.Close()
		if err != nil {
			continue
		}
		nfd, err := unix.Dup(int(f.Fd()))
		_ = f.Close()
		if err != nil {
			continue
		}
		if err := unix.SetNonblock(nfd, true); err != nil {
			_ = unix.Close(nfd)
			continue
		}
		fn(nfd, remote)
	}
}
