package engine

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/sessions"
)

var connIDs atomic.Uint64

// conn is one client connection. Everything but the fields documented as
// shared is touched only by the connection's own event loop.
type conn struct {
	id     uint64
	srv    *Server
	gc     transport
	remote netip.AddrPort
	opened int64 // unix nanoseconds of the accept

	dec       codec.Decoder
	connected bool
	version   byte
	// pacingRetained: a goroutine is delivering retained messages to this
	// connection as it drains (paceRetained); at most one at a time.
	pacingRetained atomic.Bool
	clientID       string
	sess           *sessions.Session
	keepAlive      time.Duration // 0: no keep-alive

	// Limits the client announced in its 5.0 CONNECT.
	maxPacketOut  int    // Maximum Packet Size, 0 = the wire limit
	aliasMaxOut   uint16 // Topic Alias Maximum
	problemInfo   bool   // Request Problem Information
	aliasesOut    map[string]uint16
	aliasesIn     map[uint16][]byte
	expiryAtStart uint32 // Session Expiry Interval of the CONNECT, for the DISCONNECT rule

	needBytes     int              // bytes the next packet needs in the inbound buffer before decoding is worth it
	readAt        int64            // unix nanoseconds of the read being handled: one clock read per read
	windowFreed   bool             // a delivery of this batch was dropped, not written
	ipCounted     bool             // admitted by the per-address limits: release it on close
	awaitingProxy bool             // the PROXY protocol header has not come yet
	listener      listenerKind     // which listener it came in on
	refuse        codec.ReasonCode // a per-address limit refuses this connection at CONNECT
	detached      bool             // the session was let go on DISCONNECT, before the close
	gracefulClose bool             // DISCONNECT received without will
	closeReason   codec.ReasonCode // why the server closes, for the log and the will
	closeErr      error

	// The write batch, only while a callback runs (see batch).
	*batch
	// extra holds what few connections need (rate limits, enhanced
	// authentication, a login that expires): one pointer, nil for most,
	// keeps the connection in the 384-byte size class.
	extra *connExtra

	// Shared with other goroutines.
	session     atomic.Pointer[connSession] // set once CONNECT is accepted
	lastRecv    atomic.Int64                // unix nanoseconds of the last packet received
	overSince   atomic.Int64                // unix nanoseconds since the outbound bytes are over the bound; 0 when under
	outBytes    atomic.Int64                // unsent bytes: queued deliveries plus gnet's outbound buffer
	kicked      atomic.Uint32               // reason code+1 of a pending server-side close
	closed      atomic.Bool
	sessMoved   atomic.Bool // the session was taken over by a newer connection
	outMu       sync.Mutex
	outq        []sessions.Delivery
	wakePending bool
	outClosed   bool // OnClose ran: push releases instead of queueing

	// QoS 0 flow control (hold.go).
	holdCount atomic.Int32 // subscribers this publisher waits for, paused
	holdSince atomic.Int64 // unix nanoseconds a publisher first waited for this subscriber; 0: none since it drained
	waiters   []*conn      // under outMu: publishers paused until this subscriber drains

	// The gate queue (gate.go): packets waiting for the store.
	gmu     sync.Mutex
	gq      []*gated
	gwake   bool // a wake for the ready head is pending
	gclosed bool
	gn      atomic.Int32 // len(gq), readable without gmu
}

// connSession is what other goroutines may read of a connected connection.
type connSession struct {
	clientID  string
	keepAlive time.Duration
	rules     Rules // nil: everything allowed
}

// rules returns the client's ACL, nil when it may do everything.
func (c *conn) rules() Rules {
	if cs := c.session.Load(); cs != nil {
		return cs.rules
	}
	return nil
}

func (c *conn) connectedShared() bool { return c.session.Load() != nil }

func (c *conn) keepAliveShared() time.Duration {
	if cs := c.session.Load(); cs != nil {
		return cs.keepAlive
	}
	return 0
}

func (c *conn) clientIDShared() string {
	if cs := c.session.Load(); cs != nil {
		return cs.clientID
	}
	return ""
}

type connExtra struct {
	limits *connLimits   // publish rate limits; nil without
	enh    *enhancedAuth // 5.0 enhanced authentication; nil without
	expiry *time.Timer   // ends the connection at ConnectInfo.ExpiresAt; nil without
}

func (c *conn) ext() *connExtra {
	if c.extra == nil {
		c.extra = new(connExtra)
	}
	return c.extra
}

func (c *conn) enhOf() *enhancedAuth {
	if c.extra == nil {
		return nil
	}
	return c.extra.enh
}

func (c *conn) limitsOf() *connLimits {
	if c.extra == nil {
		return nil
	}
	return c.extra.limits
}

// batch is a connection's scratch for one event-loop callback: what the
// callback writes, and buffers reused from one callback to the next. It is
// empty between callbacks, so connections share batches through a pool
// rather than each keeping one: an idle connection holds none (issue 5's
// memory per connection).
type batch struct {
	// wbuf collects control packets and delivery headers; cuts record where
	// a shared payload goes between them.
	wbuf   []byte
	cuts   []cut
	iov    [][]byte
	sent   []sessions.Delivery // deliveries in this batch, released after the write
	spare  []sessions.Delivery // the next outq (appendPushed swaps them)
	gready []*gated            // reused by appendGated
	holdOn []*conn             // subscribers this read went over the bound of (hold.go)
	curRaw []byte              // the bytes of the CONNECT being handled (enhauth.go keeps them)

	// counts are this callback's traffic, added to the server's counters
	// once when it ends (traffic): per message they would be atomic adds
	// on lines other loops write too.
	counts trafficCounts
}

type trafficCounts struct {
	packetsIn, bytesIn, bytesOut int64
	msgsIn, msgsOut              [3]int64 // PUBLISH by QoS
	pubIn, pubOut                [3]int64 // their topic and payload bytes
}

// addTo adds the counts to h and clears them.
func (t *trafficCounts) addTo(h *hotStats) {
	if t.packetsIn != 0 {
		h.packetsIn.Add(t.packetsIn)
		h.bytesIn.Add(t.bytesIn)
	}
	if t.bytesOut != 0 {
		h.bytesOut.Add(t.bytesOut)
	}
	for q := range 3 {
		if t.msgsIn[q] != 0 {
			h.msgsIn[q].Add(t.msgsIn[q])
			h.pubBytesIn[q].Add(t.pubIn[q])
		}
		if t.msgsOut[q] != 0 {
			h.msgsOut[q].Add(t.msgsOut[q])
			h.pubBytesOut[q].Add(t.pubOut[q])
		}
	}
	*t = trafficCounts{}
}

var batchPool = sync.Pool{New: func() any { return new(batch) }}

// takeBatch gives the connection a batch for the callback that begins.
func (c *conn) takeBatch() {
	if c.batch == nil {
		c.batch = batchPool.Get().(*batch)
	}
}

// returnBatch gives the batch back once the callback has written
// everything (a closing connection keeps it for OnClose).
func (c *conn) returnBatch() {
	b := c.batch
	if b == nil || len(b.wbuf) > 0 || len(b.cuts) > 0 || len(b.sent) > 0 || len(b.holdOn) > 0 {
		return
	}
	c.batch = nil
	batchPool.Put(b)
}

type cut struct {
	at      int // offset in wbuf after which payload is written
	payload []byte
}

// push hands a delivery to the connection from any goroutine; the
// connection's loop writes it on its next wake. One wake is requested per
// batch. The delivery's message reference passes to the connection.
func (c *conn) push(d sessions.Delivery) {
	c.outMu.Lock()
	if c.outClosed { // closed meanwhile: QoS 1/2 stay in the session's window for redelivery
		c.outMu.Unlock()
		d.Msg.Release()
		return
	}
	c.outq = append(c.outq, d)
	wake := !c.wakePending
	c.wakePending = true
	// Counted under the lock, so that updateOutbound, which sums the queue
	// under the same lock, never counts this delivery twice.
	c.outBytes.Add(int64(d.Msg.Size() + 16))
	c.outMu.Unlock()
	if wake {
		if err := c.gc.Wake(nil); err != nil {
			c.outMu.Lock()
			c.wakePending = false
			c.outMu.Unlock()
		}
	}
}

// sessionQueued reports whether the session holds deliveries waiting for room.
func (c *conn) sessionQueued() bool {
	if c.sess == nil {
		return false
	}
	c.sess.Lock()
	n, _ := c.sess.Queued()
	c.sess.Unlock()
	return n > 0
}

// overBound reports whether the connection has more unsent bytes than
// MaxOutboundBytes.
func (c *conn) overBound() bool { return c.outBytes.Load() > int64(c.srv.opts.MaxOutboundBytes) }

// kick asks the connection's loop to close it, sending a 5.0 client a
// DISCONNECT with reason. Safe from any goroutine; the first reason wins.
func (c *conn) kick(reason codec.ReasonCode) {
	if c.kicked.CompareAndSwap(0, uint32(reason)+1) {
		_ = c.gc.Wake(nil)
	}
}

// handler adapts gnet's callbacks to connections.
type handler struct {
	gnet.BuiltinEventEngine
	s *Server
}

var packetPool = sync.Pool{New: func() any { return new(codec.Packet) }}

func (h *handler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c, ok := gc.Context().(*conn) // made by enroll, which counted it in nconns
	if !ok {
		return nil, gnet.Close
	}
	return nil, c.open(gc)
}

// open starts a connection on its transport. The server counted it in
// nconns already.
func (c *conn) open(t transport) gnet.Action {
	s := c.srv
	c.gc = t
	c.dec.MaxPacketSize = s.opts.MaxPacketSize
	c.lastRecv.Store(c.opened)
	s.conns.add(c)
	if s.stopping.Load() {
		return gnet.Close
	}
	return gnet.None
}

func (h *handler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.Close
	}
	return c.traffic()
}

// traffic handles what was read and what was pushed to the connection: one
// callback of its event loop (or of its stream's lock).
func (c *conn) traffic() gnet.Action {
	start := time.Now()
	c.readAt = start.UnixNano() // the read's clock reading, for every packet of it
	c.takeBatch()
	action := c.onTraffic()
	h := c.srv.hot(c)
	c.counts.addTo(h) // the batch stays with a closing connection: still there
	h.busy.Add(int64(time.Since(start)))
	if action == gnet.None {
		c.returnBatch()
	}
	return action
}

func (c *conn) onTraffic() gnet.Action {
	gc := c.gc
	if r := c.kicked.Load(); r != 0 {
		c.closeReason = codec.ReasonCode(r - 1)
		c.sendDisconnect(c.closeReason)
		c.flush()
		return gnet.Close
	}
	c.resumeIfReleased()
	action := gnet.None
	// Peek(-1) copies a packet split across reads out of gnet's ring buffer:
	// wait until the whole packet is there rather than copying it again on
	// every read of a large, slowly arriving packet.
	if n := gc.InboundBuffered(); n > 0 && n >= c.needBytes {
		buf, _ := gc.Peek(-1)
		if c.awaitingProxy {
			hn, err := c.readProxyHeader(buf)
			if err != nil {
				c.closeErr = err
				return gnet.Close
			}
			if hn == 0 {
				c.needBytes = len(buf) + 1
				return gnet.None
			}
			_, _ = gc.Discard(hn)
			buf = buf[hn:]
			c.needBytes = 0
		}
		used, err := c.readPackets(buf)
		c.counts.bytesIn += int64(used)
		if used > 0 { // gnet's Discard(0) would drop everything buffered
			_, _ = gc.Discard(used)
			c.lastRecv.Store(c.readAt) // once per read, not per packet
		}
		c.needBytes = pendingPacketLen(buf[used:])
		if err != nil {
			c.closeErr = err
			action = gnet.Close
		}
	}
	if len(c.holdOn) > 0 && action == gnet.None {
		c.pauseForHolds()
	}
	// A delivery dropped while writing (expired, too large) frees room in
	// the in-flight window: drain again, a bounded number of times.
	for range 4 {
		c.windowFreed = false
		c.updateOutbound() // gnet drains its buffer without telling us: look before deciding
		if action == gnet.None && c.connected {
			c.appendGated(time.Now().UnixNano()) // a SUBACK before the retained messages it releases
			c.drainSession()
		}
		c.flush()
		if !c.windowFreed && !(action == gnet.None && c.connected && !c.overBound() && c.sessionQueued()) {
			break
		}
	}
	return action
}

// readPackets decodes and handles every whole packet in buf and returns the
// bytes used. A non-nil error closes the connection (after whatever the
// handlers queued, such as a DISCONNECT or CONNACK, is written).
func (c *conn) readPackets(buf []byte) (int, error) {
	p := packetPool.Get().(*codec.Packet)
	defer packetPool.Put(p)
	used := 0
	for used < len(buf) {
		n, err := c.dec.Decode(buf[used:], p)
		if errors.Is(err, codec.ErrNeedMore) {
			break
		}
		if err != nil {
			return used, c.protocolFailure(packetTypeOf(buf[used]), p, err)
		}
		raw := buf[used : used+n]
		used += n
		c.counts.packetsIn++
		if p.Type == codec.CONNECT {
			c.curRaw = raw // kept by enhauth.go if an AUTH exchange begins
			err = c.handle(p)
			c.curRaw = nil // a pooled batch must not pin the read buffer
		} else {
			err = c.handle(p)
		}
		if err != nil {
			return used, err
		}
	}
	return used, nil
}

// protocolFailure answers a packet that could not be decoded: a CONNACK
// refusal for a bad CONNECT, a DISCONNECT with the reason code for a 5.0
// client, nothing for 3.1.1 (the spec says close), and a log line.
func (c *conn) protocolFailure(t codec.PacketType, p *codec.Packet, err error) error {
	reason := codec.ReasonOf(err)
	c.closeReason = reason
	if !c.connected {
		// Only a CONNECT is answered, with a CONNACK in the level it
		// announced; anything else before CONNECT is just closed.
		if t == codec.CONNECT {
			level := byte(0)
			if !errors.Is(err, codec.ErrPacketTooLarge) {
				level = p.Connect.ProtocolVersion // set as far as decoding got
			}
			c.refuseConnect(level, reason)
		}
	} else {
		c.sendDisconnect(reason)
	}
	c.srv.log.Info("closing connection: bad packet", "remote", c.remote.String(), "client_id", c.clientID,
		"reason", reason.String(), "err", err.Error())
	return err
}

// pendingPacketLen returns the full length of the incomplete packet at the
// start of rest once its fixed header is readable, else 0.
func pendingPacketLen(rest []byte) int {
	if len(rest) < 2 {
		return 0
	}
	rl, n, err := codec.ReadVarint(rest[1:])
	if err != nil {
		return 0
	}
	return 1 + n + rl
}

// packetTypeOf returns the type of the packet whose first byte is b.
func packetTypeOf(b byte) codec.PacketType { return codec.PacketType(b >> 4) }

func (c *conn) handle(p *codec.Packet) error {
	if !c.connected {
		if c.enhOf() != nil && !c.enhOf().done { // the CONNECT's exchange: AUTH only (4.12)
			if p.Type == codec.DISCONNECT { // the client gives up the exchange
				c.gracefulClose = true
				return errDisconnect
			}
			if p.Type != codec.AUTH {
				c.refuseConnect(c.version, codec.ProtocolError)
				return errProtocol
			}
			return c.continueConnectAuth(&p.Auth)
		}
		if p.Type != codec.CONNECT { // MQTT-3.1.0-1
			c.srv.log.Info("closing connection: first packet is not CONNECT", "remote", c.remote.String(), "type", p.Type.String())
			c.closeReason = codec.ProtocolError
			return errProtocol
		}
		return c.handleConnect(&p.Connect)
	}
	switch p.Type {
	case codec.PUBLISH:
		return c.handlePublish(&p.Publish)
	case codec.PUBACK, codec.PUBREC, codec.PUBREL, codec.PUBCOMP:
		return c.handleAck(&p.Ack)
	case codec.SUBSCRIBE:
		return c.handleSubscribe(&p.Subscribe)
	case codec.UNSUBSCRIBE:
		return c.handleUnsubscribe(&p.Unsubscribe)
	case codec.PINGREQ:
		c.wbuf = codec.AppendPingresp(c.wbuf)
		return nil
	case codec.DISCONNECT:
		return c.handleDisconnect(&p.Disconnect)
	case codec.CONNECT: // MQTT-3.1.0-2
		return c.fail(codec.ProtocolError, "second CONNECT")
	case codec.AUTH:
		return c.handleAuth(&p.Auth)
	}
	// CONNACK, SUBACK, UNSUBACK, PINGRESP are sent by servers only.
	return c.fail(codec.ProtocolError, "packet a client must not send: "+p.Type.String())
}

var (
	errProtocol   = errors.New("engine: protocol violation")
	errDisconnect = errors.New("engine: client disconnected")
	errStore      = errors.New("engine: the store cannot take the change")
)

// fail closes the connection for a protocol violation found after decoding:
// DISCONNECT with reason to a 5.0 client, and a log line.
func (c *conn) fail(reason codec.ReasonCode, why string) error {
	c.closeReason = reason
	c.sendDisconnect(reason)
	c.srv.log.Info("closing connection: protocol violation", "remote", c.remote.String(), "client_id", c.clientID,
		"reason", reason.String(), "detail", why)
	return errProtocol
}

// sendDisconnect queues a server DISCONNECT for a connected 5.0 client;
// earlier levels have no server DISCONNECT.
func (c *conn) sendDisconnect(reason codec.ReasonCode) {
	if !c.connected || c.version < codec.Version5 {
		return
	}
	d := codec.Disconnect{ReasonCode: reason}
	c.wbuf, _ = d.Append(c.wbuf, c.version)
}

// appendPushed moves the deliveries other loops pushed for this connection
// into the batch. They are older than anything still queued in the session
// (Offer only sends directly while that queue is empty), so drainSession
// calls this first, under the session lock, to keep the session's order
// (MQTT-4.6.0-6).
func (c *conn) appendPushed(sessLocked bool, now int64) {
	c.outMu.Lock()
	batch := c.outq
	c.outq = c.spare[:0]
	c.wakePending = false
	c.outMu.Unlock()
	for i := range batch {
		d := batch[i]
		if c.appendDelivery(&d, now) || d.QoS == 0 || c.sess == nil {
			continue
		}
		if !sessLocked {
			c.sess.Lock()
		}
		if c.sess.Owner() == c { // a taken-over connection must not touch the new owner's window
			c.srv.completeUnsent(c.sess, &d)
		}
		if !sessLocked {
			c.sess.Unlock()
		}
	}
	clear(batch)
	c.spare = batch[:0]
}

// maxIovecs is the most buffers one writev takes on Linux (IOV_MAX); gnet
// passes a longer list to the kernel as is, which fails with EINVAL.
const maxIovecs = 1024

// flush writes everything the batch collected, in as few writev calls as
// IOV_MAX allows (one for a batch of up to about 500 deliveries).
func (c *conn) flush() {
	now := time.Now().UnixNano()
	c.appendGated(now)
	c.appendPushed(false, now)
	if len(c.wbuf) == 0 && len(c.cuts) == 0 {
		c.updateOutbound()
		return
	}
	c.iov = c.iov[:0]
	start, total := 0, len(c.wbuf)
	for _, ct := range c.cuts {
		if ct.at > start {
			c.iov = append(c.iov, c.wbuf[start:ct.at])
		}
		if len(ct.payload) > 0 {
			c.iov = append(c.iov, ct.payload)
			total += len(ct.payload)
		}
		start = ct.at
	}
	c.counts.bytesOut += int64(total)
	if start < len(c.wbuf) {
		c.iov = append(c.iov, c.wbuf[start:])
	}
	iov := c.iov
	if fd := c.gc.Fd(); fd >= 0 && c.gc.OutboundBuffered() == 0 && !c.closed.Load() {
		iov = writevDirect(fd, iov)
	}
	for len(iov) > 0 && !c.closed.Load() {
		n := min(len(iov), maxIovecs)
		if n == 1 {
			_, _ = c.gc.Write(iov[0])
		} else {
			_, _ = c.gc.Writev(iov[:n])
		}
		iov = iov[n:]
	}
	// gnet copied whatever the socket did not take: the payloads can go.
	// (A failed write closes the connection inside Writev; OnClose then
	// released c.sent already and left it empty.)
	for i := range c.sent {
		c.sent[i].Msg.Release()
		c.sent[i] = sessions.Delivery{}
	}
	clear(c.iov)
	clear(c.cuts)
	c.sent, c.cuts, c.wbuf = c.sent[:0], c.cuts[:0], c.wbuf[:0]
	if cap(c.wbuf) > 1<<20 { // do not keep a huge buffer after a burst
		c.wbuf = nil
	}
	c.updateOutbound()
}

// updateOutbound records how many bytes wait in gnet's outbound buffer, for
// the back-pressure decisions of other loops.
func (c *conn) updateOutbound() {
	n := int64(c.gc.OutboundBuffered())
	c.outMu.Lock() // push adds to outBytes under this lock too: no delivery counted twice or lost
	for i := range c.outq {
		n += int64(c.outq[i].Msg.Size() + 16)
	}
	c.outBytes.Store(n)
	var release []*conn
	if n <= int64(c.srv.opts.MaxOutboundBytes)/2 {
		release, c.waiters = c.waiters, nil
		if c.holdSince.Load() != 0 { // a store is a fence, and other loops read this line
			c.holdSince.Store(0)
		}
	}
	c.outMu.Unlock()
	for _, pub := range release {
		pub.unhold()
	}
	if n > int64(c.srv.opts.MaxOutboundBytes) {
		if c.overSince.Load() == 0 {
			c.overSince.Store(time.Now().UnixNano())
		}
	} else if c.overSince.Load() != 0 {
		c.overSince.Store(0)
	}
}

// OnOutboundDrained runs when gnet has written out what a connection's
// outbound buffer held: room for the session's queue, the rest of paced
// retained messages, and for publishers paused by this subscriber.
func (h *handler) OnOutboundDrained(gc gnet.Conn) gnet.Action { return h.OnTraffic(gc) }

// transport is what a connection's protocol code needs of its socket:
// gnet's connections (plain TCP on the event loops) and streamConn (TLS, on a
// pair of goroutines) both provide it, so every feature works the same on
// every listener. The methods other than Wake run only inside the
// connection's callbacks.
type transport interface {
	Wake(cb gnet.AsyncCallback) error // concurrency-safe: run the connection's traffic callback soon
	Write(b []byte) (int, error)
	Writev(bs [][]byte) (int, error)
	OutboundBuffered() int
	InboundBuffered() int
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Fd() int // -1: no socket to write to directly (writevDirect)
	PauseRead() error
	ResumeRead() error
	ReadPaused() bool
}

func (h *handler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	c.onClose(err)
	return gnet.None
}

// onClose releases what the connection held, once its transport is closed.
func (c *conn) onClose(err error) {
	c.closed.Store(true)
	s := c.srv
	s.uncount(c)
	s.conns.remove(c)
	if c.session.Load() != nil {
		s.countClient(c, -1)
	}
	if c.extra != nil && c.extra.expiry != nil {
		c.extra.expiry.Stop()
	}
	c.outMu.Lock()
	c.outClosed = true
	for i := range c.outq {
		c.outq[i].Msg.Release()
	}
	c.outq = nil
	c.outMu.Unlock()
	c.releaseWaiters()
	c.closeGate()
	if b := c.batch; b != nil {
		// Closed in the middle of a callback (a failed write inside flush
		// closes the connection): what was not written is released here,
		// and the batch stays, emptied, for the rest of that callback, which
		// goes on using it. It is not pooled again: it goes with the
		// connection.
		for i := range b.sent {
			b.sent[i].Msg.Release()
			b.sent[i] = sessions.Delivery{}
		}
		b.sent = b.sent[:0]
	}
	if c.connected && !c.detached {
		s.detach(c)
	}
	reason := c.closeReason.String()
	if c.gracefulClose {
		reason = "client disconnected"
	} else if c.closeReason == 0 {
		switch {
		case c.closeErr != nil: // closed by the server without a reason code (a bad PROXY header)
			reason = c.closeErr.Error()
		case err != nil:
			reason = "connection lost: " + err.Error()
		default:
			reason = "connection lost"
		}
	}
	s.log.Info("connection closed", "client_id", c.clientID, "remote", c.remote.String(),
		"protocol", c.version, "listener", ListenerNames[c.listener], "reason", reason, "duration", time.Duration(time.Now().UnixNano()-c.opened).Round(time.Millisecond).String())
}
