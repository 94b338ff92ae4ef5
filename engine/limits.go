package engine

import (
	"bytes"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tern-mqtt/tern/codec"
)

// Per-client and per-address limits (Options.MaxSubscriptions and the rest):
// what a client that asks too much gets is a 5.0 reason code it can act on
// (0x96 message rate too high, 0x97 quota exceeded, 0x9F connection rate
// exceeded, 0x90/0x8F topic not accepted), a log line and a counter.

// listenerKind says which listener a connection came in on.
type listenerKind uint8

const (
	listenTCP listenerKind = iota
	listenTLS
	listenWS
	listenWSS
	listenerKinds
)

// takeSlot counts a new connection on listener l, or refuses it (false)
// when the broker is at MaxConnections or the listener at
// ListenerMaxConnections.
func (s *Server) takeSlot(l listenerKind) bool {
	if s.nconns.Load() >= int64(s.opts.MaxConnections) ||
		s.opts.ListenerMaxConnections > 0 && s.perListener[l].Load() >= int64(s.opts.ListenerMaxConnections) {
		s.stats.refusedConns.Add(1)
		return false
	}
	s.nconns.Add(1)
	s.perListener[l].Add(1)
	return true
}

// giveSlot uncounts a connection of listener l.
func (s *Server) giveSlot(l listenerKind) {
	s.nconns.Add(-1)
	s.perListener[l].Add(-1)
}

// connLimits are a connection's rate limiters, nil without publish limits.
type connLimits struct {
	msgs, bytes *rate.Limiter
}

func (s *Server) newConnLimits() *connLimits {
	o := &s.opts
	if o.PublishRate <= 0 && o.PublishByteRate <= 0 {
		return nil
	}
	l := &connLimits{}
	if o.PublishRate > 0 {
		l.msgs = rate.NewLimiter(rate.Limit(o.PublishRate), max(1, int(o.PublishRate))) // a second's worth of burst
	}
	if o.PublishByteRate > 0 {
		l.bytes = rate.NewLimiter(rate.Limit(o.PublishByteRate), max(int(o.PublishByteRate), o.MaxPacketSize))
	}
	return l
}

// allowPublish spends a PUBLISH of size bytes from the client's budget.
func (l *connLimits) allowPublish(now time.Time, size int) bool {
	if l == nil {
		return true
	}
	if l.msgs != nil && !l.msgs.AllowN(now, 1) {
		return false
	}
	return l.bytes == nil || l.bytes.AllowN(now, size)
}

// topicAccepted reports whether a topic name or filter is within
// MaxTopicLength and MaxTopicLevels.
func (s *Server) topicAccepted(t []byte) bool {
	o := &s.opts
	if o.MaxTopicLength > 0 && len(t) > o.MaxTopicLength {
		return false
	}
	return o.MaxTopicLevels <= 0 || bytes.Count(t, []byte{'/'})+1 <= o.MaxTopicLevels
}

// ipLimits counts connections and connection attempts per client address.
type ipLimits struct {
	mu      sync.Mutex
	entries map[netip.Addr]*ipEntry
}

type ipEntry struct {
	open        int   // connections counted and not closed
	windowStart int64 // unix nanoseconds of the current one-second window
	attempts    int   // connections accepted in that window
}

// admitConn applies the per-address limits to a new connection: a refused
// one is told why at its CONNECT, an admitted one is uncounted at its close.
func (s *Server) admitConn(c *conn) {
	o := &s.opts
	if o.MaxConnectionsPerIP <= 0 && o.ConnectRatePerIP <= 0 {
		return
	}
	if r := s.admit(c.remote.Addr(), time.Now().UnixNano()); r != 0 {
		c.refuse = r
		s.stats.limited.Add(1)
	} else {
		c.ipCounted = true
	}
}

// admit counts a new connection from addr and says why it must be refused:
// 0, QuotaExceeded (too many open) or ConnectionRateExceeded. A refused
// connection is not counted.
func (s *Server) admit(addr netip.Addr, now int64) codec.ReasonCode {
	o := &s.opts
	l := &s.ips
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = make(map[netip.Addr]*ipEntry)
	}
	e := l.entries[addr]
	if e == nil {
		e = &ipEntry{}
		l.entries[addr] = e
	}
	if now-e.windowStart >= int64(time.Second) {
		e.windowStart, e.attempts = now, 0
	}
	e.attempts++
	switch {
	case o.ConnectRatePerIP > 0 && float64(e.attempts) > o.ConnectRatePerIP:
		return codec.ConnectionRateExceeded
	case o.MaxConnectionsPerIP > 0 && e.open >= o.MaxConnectionsPerIP:
		return codec.QuotaExceeded
	}
	e.open++
	return 0
}

// release uncounts a closed connection admitted from addr.
func (s *Server) release(addr netip.Addr) {
	l := &s.ips
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[addr]; e != nil {
		e.open--
		s.forgetIfIdle(addr, e, time.Now().UnixNano())
	}
}

// sweepIPs forgets every address with nothing open whose rate window is
// over: a client that connected and left within one window is otherwise
// never looked at again. Housekeeping calls it.
func (s *Server) sweepIPs(now int64) {
	l := &s.ips
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr, e := range l.entries {
		s.forgetIfIdle(addr, e, now)
	}
}

// forgetIfIdle drops an address with nothing open whose rate window is
// over, so the table holds only addresses with connections or recent
// attempts. l.mu held.
func (s *Server) forgetIfIdle(addr netip.Addr, e *ipEntry, now int64) {
	if e.open <= 0 && now-e.windowStart >= int64(time.Second) {
		delete(s.ips.entries, addr)
	}
}
