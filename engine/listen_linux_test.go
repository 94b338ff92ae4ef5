package engine

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// TestAcceptedSocketsInheritOptions checks what listenConfig relies on: an
// accepted socket carries the listener's keep-alive settings and
// TCP_NODELAY, without per-connection setsockopt calls, and the acceptor hands
// over the descriptor and the peer's address.
func TestAcceptedSocketsInheritOptions(t *testing.T) {
	ln, err := listenConfig.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fds := make(chan int, 1)
	a, err := newAcceptor(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	go func() {
		_ = a.each(func(fd int, remote netip.AddrPort) {
			if remote != c.LocalAddr().(*net.TCPAddr).AddrPort() {
				t.Errorf("remote %v, want %v", remote, c.LocalAddr())
			}
			fds <- fd
		})
	}()
	fd := <-fds
	defer syscall.Close(fd)
	rc := rawFD(fd)
	want := map[string]struct{ level, opt, v int }{
		"SO_KEEPALIVE":  {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":  {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 15},
		"TCP_KEEPINTVL": {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 15},
		"TCP_KEEPCNT":   {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
		"TCP_NODELAY":   {syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
	}
	for name, o := range want {
		var got int
		var gerr error
		if err := rc.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), o.level, o.opt) }); err != nil {
			t.Fatal(err)
		}
		if gerr != nil || got != o.v {
			t.Errorf("%s = %d (%v), want %d", name, got, gerr, o.v)
		}
	}
}

// rawFD lets the check above use the same Control call on a bare descriptor.
type rawFD int

func (r rawFD) Control(f func(fd uintptr)) error { f(uintptr(r)); return nil }

// The peer address comes from accept4's raw sockaddr: IPv6 too.
func TestAcceptorIPv6PeerAddress(t *testing.T) {
	ln, err := listenConfig.Listen(context.Background(), "tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer ln.Close()
	a, err := newAcceptor(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan netip.AddrPort, 1)
	go func() {
		_ = a.each(func(fd int, remote netip.AddrPort) {
			_ = syscall.Close(fd)
			got <- remote
		})
	}()
	if remote, want := <-got, c.LocalAddr().(*net.TCPAddr).AddrPort(); remote != want {
		t.Fatalf("remote %v, want %v", remote, want)
	}
}
