package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// streamConn runs a connection over a net.Conn, for listeners gnet cannot
// serve (TLS): a reader goroutine hands what it reads to the connection's
// callbacks, a writer goroutine writes what they queue, and mu serialises
// the callbacks as an event loop does for gnet's connections. The
// connection's protocol code is the same on both.
type streamConn struct {
	c        *conn
	nc       net.Conn
	certName string // common name of the verified client certificate (mTLS)
	secure   bool   // over TLS (the TLS listener, WSS)

	mu    sync.Mutex // held while the connection's callbacks run
	inBuf []byte     // under mu: read bytes; inBuf[inOff:] are not consumed yet
	inOff int
	dead  bool // under mu: closed; no callback runs any more

	outMu   sync.Mutex
	out     []*[]byte // queued for the writer: chunks from chunkPool (pointers, so that putting one back allocates nothing), only the last one partly full
	outN    int       // bytes in out
	writing int       // bytes the writer took and has not finished writing
	outSig  chan struct{}

	waking  atomic.Bool
	paused  atomic.Bool
	resume  chan struct{}
	closing atomic.Bool // a callback asked to close: the writer closes after flushing
	done    chan struct{}
	once    sync.Once
}

// streamReadSize is a TLS record's largest plaintext.
const streamReadSize = 16 << 10

// closeFlushTimeout bounds the flush of what a closing connection still has
// to send (a DISCONNECT, a refusing CONNACK) to a client that does not read.
const closeFlushTimeout = 5 * time.Second

func newStreamConn(c *conn, nc net.Conn) *streamConn {
	return &streamConn{c: c, nc: nc, outSig: make(chan struct{}, 1), resume: make(chan struct{}, 1), done: make(chan struct{})}
}

// start opens the connection and runs its goroutines.
func (sc *streamConn) start() {
	sc.mu.Lock()
	act := sc.c.open(sc)
	sc.mu.Unlock()
	if act == gnet.Close {
		sc.finish(nil)
		return
	}
	go sc.readLoop()
	go sc.writeLoop()
}

func (sc *streamConn) readLoop() {
	buf := make([]byte, streamReadSize)
	for {
		for sc.paused.Load() {
			select {
			case <-sc.resume:
			case <-sc.done:
				return
			}
		}
		n, err := sc.nc.Read(buf)
		if n > 0 {
			sc.mu.Lock()
			if sc.dead || sc.closing.Load() {
				sc.mu.Unlock()
				return
			}
			sc.inBuf = append(sc.inBuf, buf[:n]...)
			act := sc.c.traffic()
			sc.compactLocked()
			sc.mu.Unlock()
			if act == gnet.Close {
				sc.closeGracefully()
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			sc.finish(err)
			return
		}
	}
}

// compactLocked moves unconsumed bytes to the front of the buffer.
func (sc *streamConn) compactLocked() {
	rest := len(sc.inBuf) - sc.inOff
	switch {
	case rest == 0:
		sc.inBuf, sc.inOff = sc.inBuf[:0], 0
		if cap(sc.inBuf) > 4*streamReadSize {
			sc.inBuf = nil // a large packet passed: do not keep its buffer
		}
	case sc.inOff > 0:
		copy(sc.inBuf, sc.inBuf[sc.inOff:])
		sc.inBuf, sc.inOff = sc.inBuf[:rest], 0
	}
}

// chunkSize is the unit of a stream's outbound queue: chunks are pooled,
// so queueing megabytes for a slow reader copies each byte once and never
// regrows a buffer (a growing slice was most of a TLS subscriber's CPU).
const chunkSize = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

func (sc *streamConn) writeLoop() {
	var chunks []*[]byte
	for {
		select {
		case <-sc.outSig:
		case <-sc.done:
			return
		}
		wrote := false
		for {
			sc.outMu.Lock()
			chunks, sc.out = sc.out, chunks[:0]
			sc.writing, sc.outN = sc.outN, 0
			sc.outMu.Unlock()
			if len(chunks) == 0 {
				break
			}
			var err error
			for i, p := range chunks {
				if err == nil {
					_, err = sc.nc.Write(*p)
				}
				sc.outMu.Lock()
				sc.writing -= len(*p) // OutboundBuffered falls as chunks go out
				sc.outMu.Unlock()
				*p = (*p)[:0]
				chunkPool.Put(p)
				chunks[i] = nil
			}
			sc.outMu.Lock()
			sc.writing = 0
			sc.outMu.Unlock()
			if err != nil {
				sc.finish(err)
				return
			}
			wrote = true
		}
		if sc.closing.Load() {
			sc.finish(nil)
			return
		}
		if wrote {
			// As gnet's OnOutboundDrained: room for queued deliveries and
			// for publishers paused by this subscriber.
			sc.callback()
		}
	}
}

// callback runs the connection's traffic callback (after a Wake, or once
// the writer caught up).
func (sc *streamConn) callback() {
	sc.mu.Lock()
	sc.callbackLocked()
}

// callbackLocked is callback with mu held; it unlocks.
func (sc *streamConn) callbackLocked() {
	if sc.dead || sc.closing.Load() {
		sc.mu.Unlock()
		return
	}
	act := sc.c.traffic()
	sc.compactLocked()
	sc.mu.Unlock()
	if act == gnet.Close {
		sc.closeGracefully()
	}
}

// closeGracefully closes once what the callbacks queued is written (at most
// closeFlushTimeout).
func (sc *streamConn) closeGracefully() {
	if sc.closing.Swap(true) {
		return
	}
	_ = sc.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	select {
	case sc.outSig <- struct{}{}:
	default:
	}
}

// finish closes the connection once: no callback runs after it, and the
// connection's close callback runs.
func (sc *streamConn) finish(err error) {
	sc.once.Do(func() {
		sc.mu.Lock()
		sc.dead = true
		sc.c.onClose(err)
		sc.mu.Unlock()
		_ = sc.nc.Close()
		close(sc.done)
	})
}

// transport

func (sc *streamConn) Wake(gnet.AsyncCallback) error {
	select {
	case <-sc.done:
		return net.ErrClosed
	default:
	}
	if sc.waking.CompareAndSwap(false, true) {
		go func() {
			// Wakes that come while this one waits for the lock merge into
			// it; only those after it has the lock start another.
			sc.mu.Lock()
			sc.waking.Store(false)
			sc.callbackLocked()
		}()
	}
	return nil
}

func (sc *streamConn) Write(b []byte) (int, error) { return sc.Writev([][]byte{b}) }

func (sc *streamConn) Writev(bs [][]byte) (int, error) {
	n := 0
	sc.outMu.Lock()
	for _, b := range bs {
		n += len(b)
		for len(b) > 0 {
			last := len(sc.out) - 1
			if last < 0 || len(*sc.out[last]) == chunkSize {
				p := chunkPool.Get().(*[]byte)
				*p = (*p)[:0]
				sc.out = append(sc.out, p)
				last++
			}
			c := sc.out[last]
			k := copy((*c)[len(*c):chunkSize], b)
			*c = (*c)[:len(*c)+k]
			b = b[k:]
		}
	}
	sc.outN += n
	sc.outMu.Unlock()
	select {
	case sc.outSig <- struct{}{}:
	default:
	}
	return n, nil
}

func (sc *streamConn) OutboundBuffered() int {
	sc.outMu.Lock()
	defer sc.outMu.Unlock()
	return sc.outN + sc.writing
}

func (sc *streamConn) InboundBuffered() int { return len(sc.inBuf) - sc.inOff }

func (sc *streamConn) Peek(n int) ([]byte, error) {
	in := sc.inBuf[sc.inOff:]
	if n < 0 {
		return in, nil
	}
	if n > len(in) {
		return in, io.ErrShortBuffer
	}
	return in[:n], nil
}

func (sc *streamConn) Discard(n int) (int, error) {
	n = min(n, len(sc.inBuf)-sc.inOff)
	sc.inOff += n
	return n, nil
}

func (sc *streamConn) Fd() int { return -1 }

func (sc *streamConn) PauseRead() error { sc.paused.Store(true); return nil }

func (sc *streamConn) ResumeRead() error {
	sc.paused.Store(false)
	select {
	case sc.resume <- struct{}{}:
	default:
	}
	return nil
}

func (sc *streamConn) ReadPaused() bool { return sc.paused.Load() }

// TLS listener

// acceptTLS accepts TLS connections on ln until it is closed. Each
// handshake runs on its own goroutine, bounded by ConnectTimeout, so a
// client that never finishes one holds nobody up.
func (s *Server) acceptTLS(ln net.Listener, done chan<- struct{}) {
	defer close(done)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.acceptFailed("tls", err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
		if !s.takeSlot(listenTLS) {
			_ = nc.Close()
			continue
		}
		go s.startTLS(nc)
	}
}

func (s *Server) startTLS(nc net.Conn) {
	c := s.newConn(addrPortOfNet(nc.RemoteAddr()), listenTLS)
	// Admitted before the handshake, which is the costly part: the
	// per-address limits bound handshakes too.
	s.admitConn(c)
	tc := tls.Server(nc, s.opts.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnectTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		s.uncount(c)
		_ = nc.Close()
		s.stats.tlsHandshakeFailures.Add(1)
		s.log.Info("closing connection: TLS handshake failed", "remote", c.remote.String(), "err", err.Error())
		return
	}
	sc := newStreamConn(c, tc)
	sc.secure = true
	if st := tc.ConnectionState(); len(st.VerifiedChains) > 0 {
		sc.certName = st.PeerCertificates[0].Subject.CommonName
	}
	sc.start()
}

// addrPortOfNet is a peer address as the per-address limits key it: an
// IPv4 client of a dual-stack listener is 1.2.3.4, not ::ffff:1.2.3.4.
func addrPortOfNet(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// streamOf returns the connection's stream transport, nil for gnet's.
func (c *conn) streamOf() *streamConn {
	sc, _ := c.gc.(*streamConn)
	return sc
}
