package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/coder/websocket"
)

// WebSocketPath is where the WebSocket listeners serve MQTT.
const WebSocketPath = "/mqtt"

// webSocketSubprotocols are the subprotocols offered: "mqtt" is the one MQTT
// 3.1.1 and 5.0 name (MQTT-6.0.0-3, -4); "mqttv3.1" is what 3.1 clients
// (and some libraries still) ask for.
var webSocketSubprotocols = []string{"mqtt", "mqttv3.1"}

// wsListener serves MQTT over WebSocket (or, with TLS, over WSS) on ln. Each
// connection runs on the stream transport, with the same protocol code as
// every other listener.
type wsListener struct {
	srv    *http.Server
	ln     net.Listener
	secure bool
	done   chan struct{}
}

func (s *Server) listenWebSocket(addr string, tlsConfig *tls.Config) (*wsListener, error) {
	ln, err := listenConfig.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	secure := tlsConfig != nil
	if secure {
		ln = tls.NewListener(ln, tlsConfig)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(WebSocketPath, func(w http.ResponseWriter, r *http.Request) { s.acceptWebSocket(w, r, secure) })
	w := &wsListener{ln: ln, secure: secure, done: make(chan struct{}), srv: &http.Server{
		Handler: mux,
		// The HTTP upgrade must come as fast as a CONNECT would.
		ReadHeaderTimeout: s.opts.ConnectTimeout,
		// A request that is no upgrade must not keep its socket for ever.
		IdleTimeout: s.opts.ConnectTimeout,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug), // failed handshakes and upgrades
	}}
	go func() {
		defer close(w.done)
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("WebSocket listener stopped", "addr", addr, "err", err)
		}
	}()
	return w, nil
}

func (w *wsListener) close(ctx context.Context) {
	_ = w.srv.Close() // hijacked WebSocket connections are not the server's any more
	select {
	case <-w.done:
	case <-ctx.Done():
	}
}

func (s *Server) acceptWebSocket(w http.ResponseWriter, r *http.Request, secure bool) {
	if s.stopping.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	kind := listenWS
	if secure {
		kind = listenWSS
	}
	if !s.takeSlot(kind) {
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: webSocketSubprotocols,
		// Browsers on any page may connect, as to any MQTT broker; who may
		// do what is for authentication and the ACL to say. Not when the
		// browser's client certificate would log in: then any page could
		// act as its user (cross-site WebSocket hijacking), so the page
		// must come from the broker's own origin.
		InsecureSkipVerify: !(secure && s.opts.TLS.ClientAuth != tls.NoClientCert),
	})
	if err != nil {
		s.giveSlot(kind)
		s.log.Info("closing connection: WebSocket upgrade failed", "remote", r.RemoteAddr, "err", err.Error())
		return // Accept answered the request
	}
	if wc.Subprotocol() == "" { // MQTT-6.0.0-3: the client must offer "mqtt"
		s.giveSlot(kind)
		s.log.Info("closing connection: WebSocket without the mqtt subprotocol", "remote", r.RemoteAddr)
		_ = wc.Close(websocket.StatusPolicyViolation, "subprotocol mqtt required")
		return
	}
	// MQTT goes in binary messages only (MQTT-6.0.0-1): NetConn fails the
	// read of a text message, which closes the connection. Messages and
	// their frames are a byte stream to MQTT (MQTT-6.0.0-2).
	// NetConn streams a message's bytes as they come, so a long message
	// (many packets, or one over the limit, which the decoder refuses)
	// costs no memory: no message limit.
	wc.SetReadLimit(-1)
	nc := websocket.NetConn(context.Background(), wc, websocket.MessageBinary)
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	c := s.newConn(remote, kind)
	s.admitConn(c)
	sc := newStreamConn(c, nc)
	sc.secure = secure
	if secure {
		if st := r.TLS; st != nil && len(st.VerifiedChains) > 0 {
			sc.certName = st.PeerCertificates[0].Subject.CommonName
		}
	}
	sc.start()
}
