package engine

import (
	"net"
	"syscall"
)

// listenConfig sets TCP keep-alive once on the listening socket, which Linux
// copies to every accepted one, instead of Go's default of four setsockopt
// calls per accepted connection: a fifth of the broker's CPU per connection
// at high connect rates. Keep-alive stays on (15 s idle, 15 s between 9
// probes, Go's defaults) so that a peer that vanished without a FIN is found
// even when its MQTT keep-alive is 0.
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
