// Package engine is the broker's network side: listeners, the per-connection
// MQTT state machine, packet handlers, delivery to subscribers, keep-alive,
// limits and back-pressure. TCP connections are served by gnet event loops,
// one per core by default, with no goroutine per connection.
//
// Lock order: a session's lock is taken before a connection's outbound queue
// lock (conn.outMu); neither is held across I/O.
package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/retain"
	"github.com/tern-mqtt/tern/router"
	"github.com/tern-mqtt/tern/sessions"
	"github.com/tern-mqtt/tern/wal"
)

// Options configures a Server. Zero fields take the defaults documented on
// each field; EnsureDefaults fills them.
type Options struct {
	Listen            string        // TCP address; default "127.0.0.1:1883"
	EventLoops        int           // gnet event loops; default one per core
	MaxConnections    int           // concurrent connections; default 1,000,000
	MaxPacketSize     int           // largest packet accepted, in bytes; default 1 MiB; 0..MaxPacketSize of the wire
	MaxInflight       int           // Receive Maximum announced, and the cap on the outbound window; default 1024
	MaxQueuedMessages int           // per session queue length; default 1000; negative: no limit, MaxQueuedBytes still applies
	MaxQueuedBytes    int           // per session queue bytes; default 64 MiB
	MaxSessionExpiry  uint32        // cap on Session Expiry Interval, seconds; default 0xFFFFFFFF (no cap)
	NoSessionExpiry   bool          // cap Session Expiry Interval at 0: every session ends with its connection
	TopicAliasMax     uint16        // Topic Alias Maximum announced to 5.0 clients; default 1024; negative not possible, set NoTopicAlias
	NoTopicAlias      bool          // announce no topic aliases (Topic Alias Maximum 0)
	MaxKeepAlive      uint16        // 5.0 clients asking more (or 0) get this as Server Keep Alive; default 65535
	MaxOutboundBytes  int           // per connection unsent bytes before QoS 0 is dropped; default 4 MiB
	SlowConsumerAfter time.Duration // a connection over MaxOutboundBytes this long is disconnected; default 30 s
	ConnectTimeout    time.Duration // a socket that sends no CONNECT in this time is closed; default 10 s
	RetainAvailable   *bool         // whether retained messages are supported; default true
	// BrokerVersion is published as $SYS/broker/version; default "tern".
	BrokerVersion string
	// SysInterval is how often the $SYS/broker/... topics are published
	// (retained); default 10 s; negative: never.
	SysInterval time.Duration
	Logger      *slog.Logger // default slog.Default()

	// Store makes sessions, subscriptions, retained messages and QoS 1/2
	// deliveries durable (package wal); nil keeps everything in memory. The
	// server reads it back (Load) in Start and submits to it from then on;
	// the caller closes it after Stop.
	Store *wal.Store

	// Retained messages: the most kept and their bytes (topic, payload and
	// properties); a retained PUBLISH beyond them is refused (5.0: 0x97).
	// 0: no limit. With a Store the bodies live on disk behind a cache of
	// RetainedCacheBytes (default 64 MiB).
	MaxRetainedMessages int
	MaxRetainedBytes    int64
	RetainedCacheBytes  int64

	// TLSListen, with TLS, is a second listener whose clients speak TLS
	// (1.2 at least, whatever TLS says); served by the standard library on
	// goroutines rather than the event loops, with the same protocol code.
	TLSListen string
	TLS       *tls.Config
	// WSListen and WSSListen serve MQTT over WebSocket at /mqtt
	// (subprotocol mqtt), WSS with the TLS settings; on goroutines too.
	WSListen  string
	WSSListen string

	// Limits; 0 means none. A client over MaxSubscriptions gets SUBACK 0x97
	// for a new filter; a topic over MaxTopicLength bytes or MaxTopicLevels
	// levels is refused (PUBACK/PUBREC 0x90, SUBACK 0x8F; 3.1.1: dropped
	// or 0x80); a client publishing faster than PublishRate messages or
	// PublishByteRate bytes per second (a second's burst) is disconnected
	// with 0x96; an address with MaxConnectionsPerIP open connections, or
	// more than ConnectRatePerIP new ones within a second, is refused at
	// CONNECT with 0x97 or 0x9F.
	MaxSubscriptions int
	// ListenerMaxConnections bounds each listener (TCP, TLS, WebSocket,
	// WSS) on its own, within MaxConnections; 0: only MaxConnections.
	ListenerMaxConnections int
	// ProxyProtocol: every connection on the TCP listener starts with a
	// PROXY protocol header (v1 or v2) from a load balancer; the client
	// address it names is used. A connection without one is closed.
	ProxyProtocol       bool
	MaxTopicLength      int
	MaxTopicLevels      int
	PublishRate         float64
	PublishByteRate     float64
	MaxConnectionsPerIP int
	ConnectRatePerIP    float64

	// EnhancedAuth offers 5.0 enhanced authentication: it returns a new
	// exchange for an Authentication Method, nil for one not offered
	// (CONNACK 0x8C). A client it authenticates skips Authenticate and takes
	// the exchange's user name for Authorize. Runs on an event loop.
	EnhancedAuth func(method string) AuthExchange

	// Authenticate decides a CONNECT; nil accepts every client. It returns
	// Success or the CONNACK reason code to refuse with. It runs on an event
	// loop and must not block.
	Authenticate func(c *ConnectInfo) codec.ReasonCode

	// Authorize returns the rules of a client whose CONNECT was accepted
	// (an ACL); nil, or a nil Rules, lets it do everything. It runs on an
	// event loop and must not block.
	Authorize func(c *ConnectInfo) Rules
}

// Rules are what one client may do. Their methods run on the client's event
// loop only, one call at a time, and must not block.
type Rules interface {
	// CanPublish: PUBLISH and the will message to topic.
	CanPublish(topic []byte) bool
	// CanSubscribe: a SUBSCRIBE to filter (without any $share/ prefix).
	CanSubscribe(filter []byte) bool
	// CanReceive: each delivery on topic, retained ones included.
	CanReceive(topic []byte) bool
}

// ConnectInfo is what an Authenticate hook sees of a CONNECT. Byte slices are
// valid only during the call.
type ConnectInfo struct {
	ClientID       string
	Username       []byte
	Password       []byte
	HasUsername    bool
	HasPassword    bool
	Remote         net.Addr
	ProtocolLevel  byte
	AuthMethod     []byte
	AuthData       []byte
	ListenerSecure bool   // the client came over TLS
	CertName       string // common name of its verified client certificate; empty without one
	// ExpiresAt, set by Authenticate, ends the connection then with
	// DISCONNECT 0xA0 (maximum connect time; 3.1.1: closed): say, when
	// the token it logged in with expires.
	ExpiresAt time.Time
	// HookData is Authenticate's to leave for Authorize, which sees the
	// same ConnectInfo (say, the claims of a verified token).
	HookData any
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:1883"
	}
	if o.EventLoops <= 0 {
		o.EventLoops = runtime.NumCPU()
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1_000_000
	}
	if o.MaxPacketSize <= 0 || o.MaxPacketSize > codec.MaxPacketSize {
		o.MaxPacketSize = 1 << 20
	}
	if o.MaxInflight <= 0 || o.MaxInflight > 65535 {
		o.MaxInflight = 1024
	}
	if o.MaxQueuedMessages == 0 {
		o.MaxQueuedMessages = 1000
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 64 << 20
	}
	if o.MaxSessionExpiry == 0 {
		o.MaxSessionExpiry = 0xFFFFFFFF
	}
	if o.NoSessionExpiry {
		o.MaxSessionExpiry = 0
	}
	if o.TopicAliasMax == 0 && !o.NoTopicAlias {
		o.TopicAliasMax = 1024
	}
	if o.NoTopicAlias {
		o.TopicAliasMax = 0
	}
	if o.MaxKeepAlive == 0 {
		o.MaxKeepAlive = 65535
	}
	if o.MaxOutboundBytes <= 0 {
		o.MaxOutboundBytes = 4 << 20
	}
	if o.SlowConsumerAfter <= 0 {
		o.SlowConsumerAfter = 30 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.RetainAvailable == nil {
		t := true
		o.RetainAvailable = &t
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BrokerVersion == "" {
		o.BrokerVersion = "tern"
	}
	if o.SysInterval == 0 {
		o.SysInterval = 10 * time.Second
	}
}

// Server is one broker node.
type Server struct {
	opts     Options
	log      *slog.Logger
	sessions *sessions.Table
	router   *router.Router[*sessions.Session]
	retained *retain.Index
	sys      *retain.Index // the $SYS topics' retained values (sys.go)

	cli    *gnet.Client
	ln     net.Listener
	conns  connRegistry
	nconns atomic.Int64
	// pacedRetained counts retained messages waiting for their
	// subscriber's room, across connections (maxPacedRetained).
	pacedRetained atomic.Int64
	acceptor      *acceptor
	perListener   [listenerKinds]atomic.Int64 // connections per listener
	ips           ipLimits
	tlsLn         net.Listener
	wsLns         []*wsListener
	tlsDone       chan struct{} // closed when the TLS accept loop has returned
	noReadPause   atomic.Bool   // gnet cannot pause reading here: QoS 0 over the bound is dropped
	stopping      atomic.Bool
	done          chan struct{}
	wg            sync.WaitGroup // housekeeping
	// acceptDone is closed when the accept loop has returned.
	acceptDone chan struct{}
	started    atomic.Int64 // unix nanoseconds of Start; 0 before
	stats      Stats
	store      *wal.Store

	// retainedReaders bounds the goroutines reading retained messages from
	// the store for new subscriptions.
	retainedReaders chan struct{}
}

// New returns a server that is not listening yet.
func New(o Options) *Server {
	o.EnsureDefaults()
	s := &Server{
		opts: o,
		log:  o.Logger,
		sessions: sessions.NewTable(sessions.Options{
			MaxQueuedMessages: o.MaxQueuedMessages,
			MaxQueuedBytes:    o.MaxQueuedBytes,
		}),
		router: router.New[*sessions.Session](router.Options{}),
		done:   make(chan struct{}),
		store:  o.Store,

		retainedReaders: make(chan struct{}, 16),
	}
	s.conns.init()
	s.stats.hot = new([statStripes]hotStats)
	s.sys = retain.NewMemory(retain.Options{Logger: o.Logger})
	if s.store == nil {
		s.retained = retain.NewMemory(s.retainOptions())
	}
	return s
}

func (s *Server) retainOptions() retain.Options {
	return retain.Options{MaxMessages: s.opts.MaxRetainedMessages, MaxBytes: s.opts.MaxRetainedBytes,
		CacheBytes: s.opts.RetainedCacheBytes, Logger: s.log}
}

// Start starts the event loops and the listener and returns once the broker
// accepts connections.
func (s *Server) Start() error {
	if s.store != nil {
		if err := s.recover(); err != nil {
			return err
		}
	}
	cli, err := gnet.NewClient(&handler{s: s},
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(s.opts.EventLoops),
		// Accepted sockets inherit TCP_NODELAY from the listener
		// (listenConfig); TCPDelay stops gnet from setting it again.
		gnet.WithTCPNoDelay(gnet.TCPDelay),
		gnet.WithLogger(gnetLogger{s.log}),
	)
	if err != nil {
		return fmt.Errorf("engine: cannot create event loops: %w", err)
	}
	if err := cli.Start(); err != nil {
		return fmt.Errorf("engine: cannot start event loops: %w", err)
	}
	ln, err := listenConfig.Listen(context.Background(), "tcp", s.opts.Listen)
	if err != nil {
		_ = cli.Stop()
		return fmt.Errorf("engine: cannot listen on %q: %w", s.opts.Listen, err)
	}
	acc, err := newAcceptor(ln)
	if err != nil {
		_ = ln.Close()
		_ = cli.Stop()
		return fmt.Errorf("engine: cannot accept on %q: %w", s.opts.Listen, err)
	}
	if s.opts.TLS != nil { // TLS 1.2 at least, whatever the caller's settings say
		tcfg := s.opts.TLS.Clone()
		tcfg.MinVersion = max(tcfg.MinVersion, tls.VersionTLS12)
		s.opts.TLS = tcfg
	}
	if s.opts.TLSListen != "" {
		if s.opts.TLS == nil {
			_ = acc.close()
			_ = ln.Close()
			_ = cli.Stop()
			return errors.New("engine: TLSListen without TLS settings")
		}
		tln, err := listenConfig.Listen(context.Background(), "tcp", s.opts.TLSListen)
		if err != nil {
			_ = acc.close()
			_ = ln.Close()
			_ = cli.Stop()
			return fmt.Errorf("engine: cannot listen on %q: %w", s.opts.TLSListen, err)
		}
		s.tlsLn, s.tlsDone = tln, make(chan struct{})
		go s.acceptTLS(tln, s.tlsDone)
		s.log.Info("listening for TLS", "addr", tln.Addr().String())
	}
	for _, l := range []struct {
		addr   string
		secure bool
	}{{s.opts.WSListen, false}, {s.opts.WSSListen, true}} {
		if l.addr == "" {
			continue
		}
		var tcfg *tls.Config
		if l.secure {
			tcfg = s.opts.TLS
		}
		if l.secure && tcfg == nil {
			err = errors.New("engine: WSSListen without TLS settings")
		} else {
			var w *wsListener
			if w, err = s.listenWebSocket(l.addr, tcfg); err == nil {
				s.wsLns = append(s.wsLns, w)
				s.log.Info("listening for WebSocket", "addr", w.ln.Addr().String(), "path", WebSocketPath, "tls", l.secure)
				continue
			}
		}
		for _, w := range s.wsLns {
			w.close(context.Background())
		}
		if s.tlsLn != nil {
			_ = s.tlsLn.Close()
		}
		_ = acc.close()
		_ = ln.Close()
		_ = cli.Stop()
		return fmt.Errorf("engine: WebSocket listener %q: %w", l.addr, err)
	}
	s.cli, s.ln, s.acceptor = cli, ln, acc
	s.started.Store(time.Now().UnixNano())
	s.acceptDone = make(chan struct{})
	s.wg.Add(1)
	go s.acceptLoop()
	go s.housekeeping()
	if s.opts.SysInterval > 0 {
		s.wg.Add(1)
		go s.sysLoop()
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "event_loops", s.opts.EventLoops)
	return nil
}

// TLSAddr returns the TLS listener's address, nil without one.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// WSAddr returns the WebSocket listener's address, WSSAddr the WSS one's;
// nil without one.
func (s *Server) WSAddr() net.Addr  { return s.wsAddr(false) }
func (s *Server) WSSAddr() net.Addr { return s.wsAddr(true) }

func (s *Server) wsAddr(secure bool) net.Addr {
	for _, w := range s.wsLns {
		if w.secure == secure {
			return w.ln.Addr()
		}
	}
	return nil
}

// Addr returns the listener's address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// acceptLoop accepts TCP connections and hands each to an event loop. It
// owns accepting, rather than gnet, so that a temporary error such as EMFILE
// (out of file descriptors) backs off and retries instead of stopping the
// listener.
func (s *Server) acceptLoop() {
	defer close(s.acceptDone)
	var backoff time.Duration
	for {
		err := s.acceptor.each(func(fd int, remote netip.AddrPort) {
			backoff = 0
			s.enroll(fd, remote)
		})
		if s.acceptFailed("", err, &backoff) {
			return
		}
	}
}

// acceptFailed handles a failed accept on a listener: true once the
// listener is closed; otherwise it counts, logs and sleeps a backoff that
// doubles up to a second (EMFILE and friends pass).
func (s *Server) acceptFailed(listener string, err error, backoff *time.Duration) (closed bool) {
	if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
		return true
	}
	*backoff = min(max(2**backoff, 5*time.Millisecond), time.Second)
	s.stats.acceptErrors.Add(1)
	s.log.Warn("accept failed; backing off", "listener", listener, "err", err, "backoff", *backoff)
	time.Sleep(*backoff)
	return false
}

// enroll hands an accepted descriptor to an event loop, or closes it when the
// server is at MaxConnections. The connection counts from here, so that a
// burst still on its way to the loops cannot overshoot the limit.
func (s *Server) enroll(fd int, remote netip.AddrPort) {
	if !s.takeSlot(listenTCP) {
		_ = unix.Close(fd)
		return
	}
	c := s.newConn(remote, listenTCP)
	if s.opts.ProxyProtocol {
		c.awaitingProxy = true // admitted once the header names the client
	} else {
		s.admitConn(c)
	}
	if err := s.cli.EnrollFD(fd, c, s.enrollFailed); err != nil {
		s.enrollFailed(c, err)
	}
}

// newConn makes the connection of a client accepted on listener l, which
// takeSlot counted.
func (s *Server) newConn(remote netip.AddrPort, l listenerKind) *conn {
	return &conn{id: connIDs.Add(1), srv: s, remote: remote, opened: time.Now().UnixNano(), listener: l}
}

// uncount undoes takeSlot and admitConn for a connection that goes.
func (s *Server) uncount(c *conn) {
	s.giveSlot(c.listener)
	if c.ipCounted {
		s.release(c.remote.Addr())
	}
}

// enrollFailed undoes enroll for a descriptor no event loop took (the loop
// closed it).
func (s *Server) enrollFailed(ctx any, err error) {
	c, _ := ctx.(*conn)
	s.uncount(c)
	s.log.Warn("cannot hand connection to an event loop", "remote", c.remote.String(), "err", err)
}

// Stop stops accepting, tells connected 5.0 clients the server is shutting
// down (DISCONNECT 0x8B), closes every connection and stops the event loops,
// waiting at most until ctx is done.
func (s *Server) Stop(ctx context.Context) error {
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	close(s.done)
	_ = s.acceptor.close()
	_ = s.ln.Close()
	if s.tlsLn != nil {
		_ = s.tlsLn.Close()
		select {
		case <-s.tlsDone:
		case <-ctx.Done():
		}
	}
	for _, w := range s.wsLns {
		w.close(ctx)
	}
	// The accept loop ends once the listener is closed; a connection it is
	// handing to an event loop at that moment gets there while the loops
	// still run (handing it to a stopped loop would block for ever), and is
	// told to go below with the others.
	select {
	case <-s.acceptDone:
	case <-ctx.Done():
		s.log.Warn("stop: accept loop did not finish in time")
	}
	s.conns.each(func(c *conn) { c.kick(codec.ServerShuttingDown) })
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
wait:
	for s.nconns.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	err := s.cli.Stop()
	s.wg.Wait() // housekeeping, which ends with s.done
	s.retained.Close()
	s.sys.Close()
	s.log.Info("stopped")
	return err
}

// connRegistry tracks open connections for keep-alive checks and shutdown.
type connRegistry struct {
	shards [64]struct {
		mu sync.Mutex
		m  map[*conn]struct{}
	}
}

func (r *connRegistry) init() {
	for i := range r.shards {
		r.shards[i].m = make(map[*conn]struct{})
	}
}

func (r *connRegistry) shard(c *conn) int { return int(c.id % uint64(len(r.shards))) }

func (r *connRegistry) add(c *conn) {
	sh := &r.shards[r.shard(c)]
	sh.mu.Lock()
	sh.m[c] = struct{}{}
	sh.mu.Unlock()
}

func (r *connRegistry) remove(c *conn) {
	sh := &r.shards[r.shard(c)]
	sh.mu.Lock()
	delete(sh.m, c)
	sh.mu.Unlock()
}

func (r *connRegistry) each(fn func(*conn)) {
	var batch []*conn
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		batch = batch[:0]
		for c := range sh.m {
			batch = append(batch, c)
		}
		sh.mu.Unlock()
		for _, c := range batch {
			fn(c)
		}
	}
}

// gnetLogger routes gnet's own log lines into slog.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...), "component", "gnet") }
