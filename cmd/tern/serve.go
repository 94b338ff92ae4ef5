package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/auth"
	"github.com/tern-mqtt/tern/codec"
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/wal"
)

// serveSettings holds what the serve flags set: the engine's options and
// the settings serve acts on itself.
type serveSettings struct {
	o               engine.Options
	topicAliasMax   uint
	maxKeepAlive    uint
	maxSessionExp   uint
	retainAvailable bool
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	dataDir         string
	durability      string
	syncInterval    time.Duration
	minFreeBytes    int64
	adminListen     string
	pprofListen     string
	adminTokenFile  string
	allowAnonymous  bool
	passwordFile    string
	aclFile         string
	tlsCert         string
	tlsKey          string
	tlsClientCA     string
	tlsClientAuth   string
	certAsUsername  bool
	jwtKey          string
	jwtAudience     string
	configFile      string
	printConfig     bool
}

// newServeFlags defines the flags of tern serve on a FlagSet that sets s.
// It is the one list of serve settings: loadConfig fills the same flags from
// TERN_* variables and the --config file, and gendocs documents them in
// docs/configuration.md.
func newServeFlags() (*flag.FlagSet, *serveSettings) {
	fs := flag.NewFlagSet("tern serve", flag.ContinueOnError)
	s := new(serveSettings)
	o := &s.o
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:1883", "TCP address to accept MQTT connections on")
	fs.IntVar(&o.EventLoops, "event-loops", runtime.NumCPU(), "number of event loops (default: one per core)")
	fs.IntVar(&o.MaxConnections, "max-connections", 1_000_000, "maximum concurrent connections; more are closed on accept")
	fs.IntVar(&o.MaxPacketSize, "max-packet-size", 1<<20, "largest packet accepted, in bytes (announced to 5.0 clients as Maximum Packet Size)")
	fs.IntVar(&o.MaxInflight, "max-inflight", 1024, "Receive Maximum: QoS 1/2 messages in flight per direction per client (1-65535)")
	fs.IntVar(&o.MaxQueuedMessages, "max-queued-messages", 1000, "messages queued per session while offline or over the in-flight window (0: no limit, as Mosquitto's max_queued_messages 0; --max-queued-bytes still applies)")
	fs.IntVar(&o.MaxQueuedBytes, "max-queued-bytes", 64<<20, "bytes queued per session")
	fs.UintVar(&s.maxSessionExp, "max-session-expiry", 0xFFFFFFFF, "cap on Session Expiry Interval in seconds (4294967295: no cap; 0: every session ends with its connection, as if clean)")
	fs.UintVar(&s.topicAliasMax, "topic-alias-max", 1024, "Topic Alias Maximum announced to 5.0 clients (0: no aliases)")
	fs.UintVar(&s.maxKeepAlive, "max-keepalive", 65535, "largest keep-alive in seconds; 5.0 clients asking more, or 0, are told this as Server Keep Alive")
	fs.IntVar(&o.MaxOutboundBytes, "max-outbound-bytes", 4<<20, "unsent bytes per connection; over it, QoS 0 publishers sending to it stop being read until it drains to half, or, once it has not drained for a second, its QoS 0 messages are dropped")
	fs.DurationVar(&o.SlowConsumerAfter, "slow-consumer-timeout", 30*time.Second, "disconnect a client that stays over --max-outbound-bytes this long")
	fs.DurationVar(&o.ConnectTimeout, "connect-timeout", 10*time.Second, "close sockets that send no CONNECT within this time")
	fs.BoolVar(&s.retainAvailable, "retain-available", true, "support retained messages")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&s.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&s.dataDir, "data-dir", "", "directory of the write-ahead log (Pebble): sessions, subscriptions, retained and queued messages survive restarts and crashes; empty: memory only")
	fs.StringVar(&s.durability, "durability", "sync", "with --data-dir: sync (acknowledge QoS 1/2, SUBSCRIBE, UNSUBSCRIBE after fsync; group commit), batch (fsync at most every --sync-interval, acknowledge after it), none (write without fsync)")
	fs.DurationVar(&s.syncInterval, "sync-interval", 5*time.Millisecond, "longest time between fsyncs under --durability batch")
	fs.Int64Var(&s.minFreeBytes, "min-free-bytes", 256<<20, "free disk space below which new QoS 1/2 work is refused (0x97) until space returns; -1 disables the check")
	fs.IntVar(&o.MaxRetainedMessages, "max-retained-messages", 0, "most retained messages kept; a retained PUBLISH for a new topic beyond it is refused (5.0: 0x97; 3.1.1: delivered, not retained); 0: no limit")
	fs.Int64Var(&o.MaxRetainedBytes, "max-retained-bytes", 0, "most bytes (topic+payload+properties) of retained messages kept, refused as --max-retained-messages; 0: no limit")
	fs.Int64Var(&o.RetainedCacheBytes, "retained-cache-bytes", 64<<20, "with --data-dir: memory for the cache of retained messages read from disk (the rest stay on disk); negative: no cache")
	fs.StringVar(&s.pprofListen, "pprof-listen", "", "`address` (host:port) serving Go's CPU, heap and allocation profiles at /debug/pprof/, without authentication (loopback only, for profiling a load test); empty: off")
	fs.StringVar(&s.adminListen, "admin-listen", "", "`address` (host:port) of the HTTP admin endpoint: /healthz, /readyz, /metrics (Prometheus), /debug/pprof/, the admin API under /v1/ (tern ctl; docs/admin-api.md) and /v1/wal/tail (tern wal tail --follow); not set: a random loopback port when --data-dir is set (written to DIR/admin.addr), else off; \"\" turns it off")
	fs.StringVar(&s.adminTokenFile, "admin-token-file", "", "`file` holding a bearer token the admin endpoint requires of every request but the health probes /healthz and /readyz; an empty file is an error")
	fs.BoolVar(&s.allowAnonymous, "allow-anonymous", false, "let clients connect without a user name (and, without --password-file, with any user name); make run turns it on")
	fs.StringVar(&s.passwordFile, "password-file", "", "password `file` of user:hash lines: Mosquitto's $7$ (PBKDF2-SHA512) and $6$ (SHA-512) hashes, bcrypt, and $scram-sha-256$ keys (which also offer 5.0 SCRAM-SHA-256 authentication); tern passwd writes it; reloaded on SIGHUP")
	fs.StringVar(&s.aclFile, "acl-file", "", "access-control `file` in Mosquitto's acl_file format (topic, user, pattern lines; plus clientid sections); without it every client may publish and subscribe to everything; reloaded on SIGHUP")
	fs.StringVar(&o.TLSListen, "tls-listen", "", "`address` (host:port) of a TLS listener (TLS 1.2 or later), besides --listen; needs --tls-cert and --tls-key")
	fs.StringVar(&o.WSListen, "ws-listen", "", "`address` (host:port) serving MQTT over WebSocket at /mqtt (subprotocol mqtt)")
	fs.StringVar(&o.WSSListen, "wss-listen", "", "`address` (host:port) serving MQTT over WebSocket over TLS at /mqtt, with the --tls-* settings")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "PEM certificate `file` (chain) of the TLS listener; reloaded with the key on SIGHUP")
	fs.StringVar(&s.tlsKey, "tls-key", "", "PEM private key `file` of the TLS listener")
	fs.StringVar(&s.tlsClientCA, "tls-client-ca", "", "PEM `file` of the CAs that sign client certificates (mTLS); read at start only")
	fs.StringVar(&s.tlsClientAuth, "tls-client-auth", "none", "client certificates: none, request (verified when given) or require")
	fs.StringVar(&s.jwtKey, "jwt-key", "", "`file` with the key that verifies JSON Web Tokens sent as the CONNECT password: a PEM RSA or EC P-256 public key (RS256, ES256) or an HS256 secret of 32 bytes or more; tokens need \"exp\", may restrict topics with \"publish\"/\"subscribe\" claims; reloaded on SIGHUP")
	fs.StringVar(&s.jwtAudience, "jwt-audience", "", "with --jwt-key, the \"aud\" a token must name")
	fs.BoolVar(&s.certAsUsername, "tls-cert-as-username", false, "a client with a verified certificate is authenticated by it and takes its common name as user name (for --acl-file), whatever its CONNECT says")
	fs.BoolVar(&o.ProxyProtocol, "proxy-protocol", false, "connections on --listen start with a PROXY protocol header (v1 or v2, as HAProxy, AWS NLB and others send) naming the real client address; connections without one are closed")
	fs.IntVar(&o.ListenerMaxConnections, "listener-max-connections", 0, "concurrent connections on each listener (TCP, TLS, WebSocket, WSS) on its own, within --max-connections; 0: only --max-connections")
	fs.IntVar(&o.MaxSubscriptions, "max-subscriptions", 0, "subscriptions per client; a new filter beyond it gets SUBACK 0x97 (3.1.1: 0x80); 0: no limit")
	fs.IntVar(&o.MaxTopicLength, "max-topic-length", 0, "longest topic name or filter in bytes; longer: PUBACK/PUBREC 0x90 (dropped), SUBACK 0x8F; 0: the protocol's 65535")
	fs.IntVar(&o.MaxTopicLevels, "max-topic-levels", 0, "most levels in a topic name or filter, refused as --max-topic-length; 0: no limit")
	fs.Float64Var(&o.PublishRate, "max-publish-rate", 0, "PUBLISH packets per second per client (a second's burst); faster clients are disconnected with 0x96; 0: no limit")
	fs.Float64Var(&o.PublishByteRate, "max-publish-bytes-rate", 0, "PUBLISH topic and payload bytes per second per client, as --max-publish-rate; 0: no limit")
	fs.IntVar(&o.MaxConnectionsPerIP, "max-connections-per-ip", 0, "open connections per client address; more are refused at CONNECT with 0x97 (3.1.1: return code 3); 0: no limit")
	fs.Float64Var(&o.ConnectRatePerIP, "max-connect-rate-per-ip", 0, "new connections per second per client address; more are refused at CONNECT with 0x9F (3.1.1: return code 3); 0: no limit")
	fs.DurationVar(&s.shutdownTimeout, "shutdown-timeout", 10*time.Second, "time allowed for a clean shutdown on SIGINT/SIGTERM")
	fs.DurationVar(&o.SysInterval, "sys-interval", 10*time.Second, "how often the retained $SYS/broker/... topics are published; 0: the default 10s; negative (-1s): never")
	fs.StringVar(&s.configFile, configFlag, "", "TOML `file` of settings, one key per flag (max-connections = 5000); flags and TERN_* variables override it")
	fs.BoolVar(&s.printConfig, printConfigFlag, false, "print the effective settings as TOML, each with its source, and exit without starting")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	return fs, s
}

const serveUsage = `usage: tern serve [flags]

Every flag can also be set as TERN_<NAME> in the environment (TERN_MAX_CONNECTIONS=5000)
or as a key of the --config file (max-connections = 5000). Flags win over the environment,
the environment over the file. docs/configuration.md describes each setting.

flags:
`

// check refuses settings serve cannot run with, and zeros that the engine
// would otherwise quietly replace by its defaults.
func (s *serveSettings) check() error {
	o := &s.o
	switch {
	case s.topicAliasMax > 65535:
		return errors.New("--topic-alias-max must be 0-65535")
	case s.maxKeepAlive < 1 || s.maxKeepAlive > 65535:
		return errors.New("--max-keepalive must be 1-65535")
	case o.MaxInflight < 1 || o.MaxInflight > 65535:
		return errors.New("--max-inflight must be 1-65535")
	case s.maxSessionExp > 0xFFFFFFFF:
		return errors.New("--max-session-expiry must be 0-4294967295")
	case o.MaxQueuedMessages < 0:
		return errors.New("--max-queued-messages must be 0 (no limit) or positive")
	case o.MaxPacketSize < 1 || o.MaxPacketSize > codec.MaxPacketSize:
		return fmt.Errorf("--max-packet-size must be 1-%d", codec.MaxPacketSize)
	case o.MaxQueuedBytes < 1:
		return errors.New("--max-queued-bytes must be positive")
	case o.MaxOutboundBytes < 1:
		return errors.New("--max-outbound-bytes must be positive")
	case o.ConnectTimeout <= 0:
		return errors.New("--connect-timeout must be positive")
	case o.SlowConsumerAfter <= 0:
		return errors.New("--slow-consumer-timeout must be positive")
	case o.MaxConnections < 1:
		return errors.New("--max-connections must be positive")
	case s.shutdownTimeout <= 0:
		return errors.New("--shutdown-timeout must be positive")
	case s.minFreeBytes == 0 || s.minFreeBytes < -1: // the store reads 0 as its 256 MiB default
		return errors.New("--min-free-bytes must be positive, or -1 to turn the check off")
	}
	if _, err := newLogger(s.logLevel, s.logFormat); err != nil {
		return err
	}
	if _, err := wal.ParseDurability(s.durability); err != nil {
		return err
	}
	switch s.tlsClientAuth {
	case "none", "request", "require":
	default:
		return fmt.Errorf("bad --tls-client-auth %q: want none, request or require", s.tlsClientAuth)
	}
	return nil
}

// serve parses the serve flags, runs the broker until SIGINT or SIGTERM and
// returns the exit code.
func serve(args []string) int {
	fs, s := newServeFlags()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tern serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := loadConfig(fs, os.Environ())
	if err != nil {
		return configErr(err)
	}
	// Checked before --print-config too: what it prints must be what serve
	// would run with.
	if err := s.check(); err != nil {
		return usageErr(err.Error())
	}
	if s.printConfig {
		if err := printConfig(os.Stdout, fs, cfg); err != nil {
			fmt.Fprintln(os.Stderr, "tern serve:", err)
			return 1
		}
		return 0
	}
	// Locals from here on: the rest of serve reads them by these names.
	o := s.o
	topicAliasMax, maxKeepAlive, maxSessionExp := s.topicAliasMax, s.maxKeepAlive, s.maxSessionExp
	retainAvailable, shutdownTimeout := s.retainAvailable, s.shutdownTimeout
	dataDir, durability, syncInterval, minFreeBytes := s.dataDir, s.durability, s.syncInterval, s.minFreeBytes
	adminListen, adminTokenFile, pprofListen := s.adminListen, s.adminTokenFile, s.pprofListen
	allowAnonymous, passwordFile, aclFile := s.allowAnonymous, s.passwordFile, s.aclFile
	tlsCert, tlsKey, tlsClientCA, tlsClientAuth := s.tlsCert, s.tlsKey, s.tlsClientCA, s.tlsClientAuth
	certAsUsername, jwtKey, jwtAudience := s.certAsUsername, s.jwtKey, s.jwtAudience
	logger, err := newLogger(s.logLevel, s.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tern serve:", err)
		return 2
	}
	cfg.warnUnknownEnv(logger)
	if o.MaxQueuedMessages == 0 {
		o.MaxQueuedMessages = -1 // engine: negative means no limit
	}
	o.NoSessionExpiry = maxSessionExp == 0
	o.TopicAliasMax = uint16(topicAliasMax)
	o.NoTopicAlias = topicAliasMax == 0
	o.MaxKeepAlive = uint16(maxKeepAlive)
	o.MaxSessionExpiry = uint32(maxSessionExp)
	o.RetainAvailable = &retainAvailable
	o.Logger = logger
	o.BrokerVersion = "tern " + version
	// Signals are caught from here on: a SIGHUP (systemd's reload) or
	// SIGTERM during a long recovery would otherwise kill the process with
	// the default action. They wait in the channel until the broker runs.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	acc, err := newAccess(allowAnonymous, passwordFile, aclFile, logger)
	if err != nil {
		logger.Error("cannot load access settings", "err", err)
		return 1
	}
	acc.certAsUsername = certAsUsername
	if jwtKey != "" {
		if acc.jwt, err = auth.LoadJWT(jwtKey, jwtAudience); err != nil {
			logger.Error("cannot load the JWT key", "err", err)
			return 1
		}
	}
	if !allowAnonymous && passwordFile == "" && jwtKey == "" && !certAsUsername {
		logger.Warn("no client can connect: --allow-anonymous is false and there is no --password-file, --jwt-key or --tls-cert-as-username")
	}
	if o.TLSListen != "" || o.WSSListen != "" {
		ts, cfg, err := newTLSSettings(tlsCert, tlsKey, tlsClientCA, tlsClientAuth)
		if err != nil {
			logger.Error("cannot set up TLS", "err", err)
			return 1
		}
		o.TLS = cfg
		acc.tls = ts
	}
	acc.install(&o)

	var store *wal.Store
	if dataDir != "" {
		d, err := wal.ParseDurability(durability)
		if err != nil {
			return usageErr(err.Error())
		}
		store, err = wal.Open(wal.Options{Dir: dataDir, Durability: d, SyncInterval: syncInterval,
			MinFreeBytes: minFreeBytes, Logger: logger})
		if err != nil {
			logger.Error("cannot open the data directory", "dir", dataDir, "err", err)
			return 1
		}
		logger.Info("data directory open", "dir", dataDir, "durability", d.String())
		o.Store = store
	}
	defer func() {
		if store == nil {
			return
		}
		// Close writes back and syncs what the log holds (under --durability
		// batch or none, the changes since the last sync).
		if err := store.Close(); err != nil {
			logger.Error("closing the data directory", "err", err)
			return
		}
		logger.Info("data directory flushed and closed", "dir", dataDir)
	}()

	adminSet := false
	fs.Visit(func(f *flag.Flag) { adminSet = adminSet || f.Name == "admin-listen" })
	if !adminSet && dataDir != "" {
		adminListen = "127.0.0.1:0"
	}
	// The admin endpoint holds the server before it starts: /readyz says
	// 503 while the data directory is recovered.
	srv := engine.New(o)
	var admin *adminServer
	if adminListen != "" {
		token := ""
		if adminTokenFile != "" {
			b, err := os.ReadFile(adminTokenFile)
			if err != nil {
				logger.Error("cannot read the admin token", "err", err)
				return 1
			}
			token = strings.TrimSpace(string(b))
			if token == "" { // an open endpoint by accident: it can delete sessions
				logger.Error("the admin token file is empty", "file", adminTokenFile)
				return 1
			}
		}
		var err error
		admin, err = startAdmin(adminOptions{Addr: adminListen, DataDir: dataDir, Token: token,
			Server: srv, Store: store, Logger: logger})
		if err != nil {
			logger.Error("cannot start the admin endpoint", "err", err)
			return 1
		}
	} else if dataDir != "" {
		_ = os.Remove(filepath.Join(dataDir, adminAddrFile)) // left by a broker that was killed
	}

	if pprofListen != "" {
		prof, err := startProfiles(pprofListen, logger)
		if err != nil {
			logger.Error("cannot start the profile endpoint", "err", err)
			if admin != nil {
				_ = admin.Close(context.Background())
			}
			return 1
		}
		defer prof.Close()
		logger.Info("profile endpoint listening", "addr", prof.addr)
	}

	if err := srv.Start(); err != nil {
		logger.Error("cannot start", "err", err)
		if admin != nil {
			_ = admin.Close(context.Background())
		}
		return 1
	}
	got := <-sig
	for got == syscall.SIGHUP {
		if err := acc.reload(); err != nil {
			logger.Error("reload failed; the previous settings stay", "err", err)
		}
		got = <-sig
	}
	logger.Info("shutting down", "signal", got.String(), "timeout", shutdownTimeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// The broker first, so that /readyz answers 503 while it stops; then the
	// admin endpoint; the data directory last (deferred above).
	err = srv.Stop(ctx)
	if admin != nil {
		_ = admin.Close(ctx)
	}
	if err != nil {
		logger.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func usageErr(msg string) int {
	fmt.Fprintln(os.Stderr, "tern serve:", msg)
	return 2
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: %w", level, err)
	}
	ho := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, ho)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
}
