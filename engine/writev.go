package engine

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// iovecs are the kernel's view of a batch for writevDirect, pooled: gnet's
// Writev goes through unix.Writev, which allocates a fresh iovec array on
// every call, the last allocation per write on the publish path.
var iovecs = sync.Pool{New: func() any {
	v := make([]unix.Iovec, 0, maxIovecs)
	return &v
}}

// writevDirect writes as much of bufs as the socket takes now, in writev
// calls of at most maxIovecs buffers, and returns what it did not write,
// the first buffer cut where the socket stopped. The caller hands that rest
// to gnet, which buffers it, watches for writability and handles any error
// (a dead peer closes the connection there), so that nothing here has to.
// It is only correct while gnet's own outbound buffer is empty, or the bytes
// would overtake it, and only on the event loop that owns fd.
func writevDirect(fd int, bufs [][]byte) [][]byte {
	vp := iovecs.Get().(*[]unix.Iovec)
	used := 0
	defer func() {
		clear((*vp)[:used]) // a pooled array must not keep payloads alive
		iovecs.Put(vp)
	}()
	for len(bufs) > 0 {
		v, total := (*vp)[:0], 0
		for _, b := range bufs[:min(len(bufs), maxIovecs)] {
			if len(b) == 0 {
				continue
			}
			iv := unix.Iovec{Base: &b[0]}
			iv.SetLen(len(b))
			v = append(v, iv)
			total += len(b)
		}
		*vp, used = v, max(used, len(v))
		var n uintptr
		var errno unix.Errno
		if len(v) > 0 {
			n, _, errno = unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
		}
		if errno != 0 {
			return bufs
		}
		sent := int(n)
		if sent < total { // the socket is full: cut where it stopped
			for sent >= len(bufs[0]) {
				sent -= len(bufs[0])
				bufs = bufs[1:]
			}
			bufs[0] = bufs[0][sent:]
			return bufs
		}
		bufs = bufs[min(len(bufs), maxIovecs):]
	}
	return nil
}
