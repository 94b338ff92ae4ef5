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
	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/wal"
)

// serve parses the serve flags, runs the broker until SIGINT or SIGTERM and
// returns the exit code.
func serve(args []string) int {
	fs := flag.NewFlagSet("tern serve", flag.ContinueOnError)
	var (
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
	)
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:1883", "TCP address to accept MQTT connections on")
	fs.IntVar(&o.EventLoops, "event-loops", runtime.NumCPU(), "number of event loops (default: one per core)")
	fs.IntVar(&o.MaxConnections, "max-connections", 1_000_000, "maximum concurrent connections; more are closed on accept")
	fs.IntVar(&o.MaxPacketSize, "max-packet-size", 1<<20, "largest packet accepted, in bytes (announced to 5.0 clients as Maximum Packet Size)")
	fs.IntVar(&o.MaxInflight, "max-inflight", 1024, "Receive Maximum: QoS 1/2 messages in flight per direction per client (1-65535)")
	fs.IntVar(&o.MaxQueuedMessages, "max-queued-messages", 1000, "messages queued per session while offline or over the in-flight window (0: no limit, as Mosquitto's max_queued_messages 0; --max-queued-bytes still applies)")
	fs.IntVar(&o.MaxQueuedBytes, "max-queued-bytes", 64<<20, "bytes queued per session")
	fs.UintVar(&maxSessionExp, "max-session-expiry", 0xFFFFFFFF, "cap on Session Expiry Interval in seconds (4294967295: no cap)")
	fs.UintVar(&topicAliasMax, "topic-alias-max", 1024, "Topic Alias Maximum announced to 5.0 clients (0: no aliases)")
	fs.UintVar(&maxKeepAlive, "max-keepalive", 65535, "largest keep-alive in seconds; 5.0 clients asking more, or 0, are told this as Server Keep Alive")
	fs.IntVar(&o.MaxOutboundBytes, "max-outbound-bytes", 4<<20, "unsent bytes per connection; over it, QoS 0 publishers sending to it stop being read until it drains to half, or, once it has not drained for a second, its QoS 0 messages are dropped")
	fs.DurationVar(&o.SlowConsumerAfter, "slow-consumer-timeout", 30*time.Second, "disconnect a client that stays over --max-outbound-bytes this long")
	fs.DurationVar(&o.ConnectTimeout, "connect-timeout", 10*time.Second, "close sockets that send no CONNECT within this time")
	fs.BoolVar(&retainAvailable, "retain-available", true, "support retained messages")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&dataDir, "data-dir", "", "directory of the write-ahead log (Pebble): sessions, subscriptions, retained and queued messages survive restarts and crashes; empty: memory only")
	fs.StringVar(&durability, "durability", "sync", "with --data-dir: sync (acknowledge QoS 1/2, SUBSCRIBE, UNSUBSCRIBE after fsync; group commit), batch (fsync at most every --sync-interval, acknowledge after it), none (write without fsync)")
	fs.DurationVar(&syncInterval, "sync-interval", 5*time.Millisecond, "longest time between fsyncs under --durability batch")
	fs.Int64Var(&minFreeBytes, "min-free-bytes", 256<<20, "free disk space below which new QoS 1/2 work is refused (0x97) until space returns; -1 disables the check")
	fs.IntVar(&o.MaxRetainedMessages, "max-retained-messages", 0, "most retained messages kept; a retained PUBLISH for a new topic beyond it is refused (5.0: 0x97; 3.1.1: delivered, not retained); 0: no limit")
	fs.Int64Var(&o.MaxRetainedBytes, "max-retained-bytes", 0, "most bytes (topic+payload+properties) of retained messages kept, refused as --max-retained-messages; 0: no limit")
	fs.Int64Var(&o.RetainedCacheBytes, "retained-cache-bytes", 64<<20, "with --data-dir: memory for the cache of retained messages read from disk (the rest stay on disk); negative: no cache")
	fs.StringVar(&pprofListen, "pprof-listen", "", "`address` (host:port) serving Go's CPU, heap and allocation profiles at /debug/pprof/, without authentication (loopback only, for profiling a load test); empty: off")
	fs.StringVar(&adminListen, "admin-listen", "", "`address` (host:port) of the HTTP admin endpoint (/healthz, /v1/wal/tail for tern wal tail --follow); not set: a random loopback port when --data-dir is set (written to DIR/admin.addr), else off; \"\" turns it off")
	fs.StringVar(&adminTokenFile, "admin-token-file", "", "file holding a bearer token the admin endpoint requires")
	fs.BoolVar(&allowAnonymous, "allow-anonymous", false, "let clients connect without a user name (and, without --password-file, with any user name); make run turns it on")
	fs.StringVar(&passwordFile, "password-file", "", "password `file` of user:hash lines: Mosquitto's $7$ (PBKDF2-SHA512) and $6$ (SHA-512) hashes, bcrypt, and $scram-sha-256$ keys (which also offer 5.0 SCRAM-SHA-256 authentication); tern passwd writes it; reloaded on SIGHUP")
	fs.StringVar(&aclFile, "acl-file", "", "access-control `file` in Mosquitto's acl_file format (topic, user, pattern lines; plus clientid sections); without it every client may publish and subscribe to everything; reloaded on SIGHUP")
	fs.StringVar(&o.TLSListen, "tls-listen", "", "`address` (host:port) of a TLS listener (TLS 1.2 or later), besides --listen; needs --tls-cert and --tls-key")
	fs.StringVar(&o.WSListen, "ws-listen", "", "`address` (host:port) serving MQTT over WebSocket at /mqtt (subprotocol mqtt)")
	fs.StringVar(&o.WSSListen, "wss-listen", "", "`address` (host:port) serving MQTT over WebSocket over TLS at /mqtt, with the --tls-* settings")
	fs.StringVar(&tlsCert, "tls-cert", "", "PEM certificate `file` (chain) of the TLS listener; reloaded with the key on SIGHUP")
	fs.StringVar(&tlsKey, "tls-key", "", "PEM private key `file` of the TLS listener")
	fs.StringVar(&tlsClientCA, "tls-client-ca", "", "PEM `file` of the CAs that sign client certificates (mTLS); read at start only")
	fs.StringVar(&tlsClientAuth, "tls-client-auth", "none", "client certificates: none, request (verified when given) or require")
	fs.StringVar(&jwtKey, "jwt-key", "", "`file` with the key that verifies JSON Web Tokens sent as the CONNECT password: a PEM RSA or EC P-256 public key (RS256, ES256) or an HS256 secret of 32 bytes or more; tokens need \"exp\", may restrict topics with \"publish\"/\"subscribe\" claims; reloaded on SIGHUP")
	fs.StringVar(&jwtAudience, "jwt-audience", "", "with --jwt-key, the \"aud\" a token must name")
	fs.BoolVar(&certAsUsername, "tls-cert-as-username", false, "a client with a verified certificate is authenticated by it and takes its common name as user name (for --acl-file), whatever its CONNECT says")
	fs.BoolVar(&o.ProxyProtocol, "proxy-protocol", false, "connections on --listen start with a PROXY protocol header (v1 or v2, as HAProxy, AWS NLB and others send) naming the real client address; connections without one are closed")
	fs.IntVar(&o.ListenerMaxConnections, "listener-max-connections", 0, "concurrent connections on each listener (TCP, TLS, WebSocket, WSS) on its own, within --max-connections; 0: only --max-connections")
	fs.IntVar(&o.MaxSubscriptions, "max-subscriptions", 0, "subscriptions per client; a new filter beyond it gets SUBACK 0x97 (3.1.1: 0x80); 0: no limit")
	fs.IntVar(&o.MaxTopicLength, "max-topic-length", 0, "longest topic name or filter in bytes; longer: PUBACK/PUBREC 0x90 (dropped), SUBACK 0x8F; 0: the protocol's 65535")
	fs.IntVar(&o.MaxTopicLevels, "max-topic-levels", 0, "most levels in a topic name or filter, refused as --max-topic-length; 0: no limit")
	fs.Float64Var(&o.PublishRate, "max-publish-rate", 0, "PUBLISH packets per second per client (a second's burst); faster clients are disconnected with 0x96; 0: no limit")
	fs.Float64Var(&o.PublishByteRate, "max-publish-bytes-rate", 0, "PUBLISH topic and payload bytes per second per client, as --max-publish-rate; 0: no limit")
	fs.IntVar(&o.MaxConnectionsPerIP, "max-connections-per-ip", 0, "open connections per client address; more are refused at CONNECT with 0x97 (3.1.1: return code 3); 0: no limit")
	fs.Float64Var(&o.ConnectRatePerIP, "max-connect-rate-per-ip", 0, "new connections per second per client address; more are refused at CONNECT with 0x9F (3.1.1: return code 3); 0: no limit")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 10*time.Second, "time allowed for a clean shutdown on SIGINT/SIGTERM")
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
	logger, err := newLogger(logLevel, logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tern serve:", err)
		return 2
	}
	switch {
	case topicAliasMax > 65535:
		return usageErr("--topic-alias-max must be 0-65535")
	case maxKeepAlive < 1 || maxKeepAlive > 65535:
		return usageErr("--max-keepalive must be 1-65535")
	case o.MaxInflight < 1 || o.MaxInflight > 65535:
		return usageErr("--max-inflight must be 1-65535")
	case maxSessionExp > 0xFFFFFFFF:
		return usageErr("--max-session-expiry must fit 32 bits")
	}
	if o.MaxQueuedMessages == 0 {
		o.MaxQueuedMessages = -1 // engine: negative means no limit
	} else if o.MaxQueuedMessages < 0 {
		return usageErr("--max-queued-messages must be 0 (no limit) or positive")
	}
	o.TopicAliasMax = uint16(topicAliasMax)
	o.NoTopicAlias = topicAliasMax == 0
	o.MaxKeepAlive = uint16(maxKeepAlive)
	o.MaxSessionExpiry = uint32(maxSessionExp)
	o.RetainAvailable = &retainAvailable
	o.Logger = logger
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
	closeStore := func() {
		if store != nil {
			if err := store.Close(); err != nil {
				logger.Error("closing the data directory", "err", err)
			}
		}
	}
	defer closeStore()

	adminSet := false
	fs.Visit(func(f *flag.Flag) { adminSet = adminSet || f.Name == "admin-listen" })
	if !adminSet && dataDir != "" {
		adminListen = "127.0.0.1:0"
	}
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
		}
		var err error
		if admin, err = startAdmin(adminListen, dataDir, token, store, logger); err != nil {
			logger.Error("cannot start the admin endpoint", "err", err)
			return 1
		}
		logger.Info("admin endpoint listening", "addr", admin.Addr())
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

	srv := engine.New(o)
	if err := srv.Start(); err != nil {
		logger.Error("cannot start", "err", err)
		if admin != nil {
			_ = admin.Close(context.Background())
		}
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	got := <-sig
	for got == syscall.SIGHUP {
		if err := acc.reload(); err != nil {
			logger.Error("reload failed; the previous settings stay", "err", err)
		}
		got = <-sig
	}
	logger.Info("shutting down", "signal", got.String())
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if admin != nil {
		_ = admin.Close(ctx)
	}
	if err := srv.Stop(ctx); err != nil {
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
