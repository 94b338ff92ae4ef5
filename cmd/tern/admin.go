package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/engine"
	"github.com/tern-mqtt/tern/wal"
)

const (
	// adminAddrFile is the file in the data directory where a running broker
	// publishes the address of its admin endpoint, for `tern wal tail` and
	// `tern ctl`.
	adminAddrFile = "admin.addr"
	// tailErrorTrailer is the HTTP trailer of a /v1/wal/tail response that
	// says why the stream ended early: a store error, or the broker shutting
	// down. A stream that ends without it is complete.
	tailErrorTrailer = "Tern-Tail-Error"
	// tailWriteTimeout is how long one write of a tail stream may take: a
	// reader that accepts no bytes for this long is cut off rather than
	// holding its goroutine and buffer until shutdown.
	tailWriteTimeout = 30 * time.Second
)

// adminServer is the broker's HTTP endpoint (loopback by default): health,
// metrics, profiles, the change log and the admin API. Its routes are listed
// on startAdmin and in docs/admin-api.md.
type adminServer struct {
	srv      *http.Server
	addr     string // bound address, dialable (an unspecified IP replaced by loopback)
	addrFile string // "" when no data directory
	broker   *engine.Server
	store    *wal.Store
	metrics  *metricsWriter
	token    []byte
	log      *slog.Logger
	// actionTimeout is adminOptions.ActionTimeout.
	actionTimeout time.Duration

	// base is the context of every request; Close cancels it (stop), which
	// ends the tail streams: http.Server.Shutdown waits for handlers but
	// does not cancel them.
	base   context.Context
	stop   context.CancelFunc
	served chan struct{} // closed when Serve returns

	closeOnce sync.Once
	closeErr  error
}

// adminOptions configures the admin endpoint.
type adminOptions struct {
	// Addr is the host:port to listen on; port 0 picks a free one.
	Addr string
	// DataDir, when set, gets the bound address in DataDir/admin.addr while
	// the endpoint runs, which `tern wal tail` and `tern ctl` read to find
	// the running broker.
	DataDir string
	// Token, when set, is the bearer token every request must carry
	// ("Authorization: Bearer <token>"); 401 otherwise.
	Token string
	// Server is the broker the endpoint reports on and acts on; required.
	// It may be not started yet: /readyz then answers 503, and so do
	// /metrics and the /v1 routes that read the engine.
	Server *engine.Server
	// Store is the broker's store, nil without --data-dir.
	Store *wal.Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ActionTimeout bounds the actions that wait (deleting a session whose
	// client must leave first, deleting a retained message until the store
	// commits); default apiTimeout.
	ActionTimeout time.Duration
}

// startAdmin listens on o.Addr and serves, in its own goroutine:
//
//	GET  /healthz     200 "ok" while the process serves HTTP
//	GET  /readyz      200 "ok" when o.Server is ready (engine.Server.Ready),
//	                  else 503 with the reason
//	GET  /metrics     Prometheus text format (metrics.go, docs/metrics.md)
//	GET  /debug/pprof/...  Go's profiles (pprof.go)
//	GET  /v1/wal/tail?from=N&follow=1&format=text|json
//	                  streams store.Tail, flushing after every write, until
//	                  the log is printed (without follow), the client goes
//	                  away, the store closes or Close is called; 404 when
//	                  there is no store (a broker without --data-dir), 400 on
//	                  bad parameters
//	     /v1/...      the admin API (admin_api.go, docs/admin-api.md)
//
// Errors are JSON: {"error": "..."}, 404 and 405 included. A tail stream that
// ends early (store error, shutdown) says why in the Tern-Tail-Error trailer.
func startAdmin(o adminOptions) (*adminServer, error) {
	if o.Server == nil {
		return nil, errors.New("admin endpoint: no broker")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = apiTimeout
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the admin endpoint on %q: %w", o.Addr, err)
	}
	base, stop := context.WithCancel(context.Background())
	a := &adminServer{
		addr:    dialAddr(l.Addr()),
		broker:  o.Server,
		store:   o.Store,
		metrics: &metricsWriter{srv: o.Server, store: o.Store},
		log:     o.Logger.With("component", "admin"),
		base:    base,
		stop:    stop,
		served:  make(chan struct{}),
	}
	a.actionTimeout = o.ActionTimeout
	if o.Token != "" {
		a.token = []byte(o.Token)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", a.whenStarted(a.metrics.ServeHTTP))
	mux.HandleFunc("GET /v1/wal/tail", a.tail)
	a.handleAPI(mux)
	// Profiles of a running broker, behind the same token as the rest.
	handleProfiles(mux)
	a.srv = &http.Server{
		Handler:           a.authorize(jsonFallback(mux)),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if o.DataDir != "" {
		a.addrFile = filepath.Join(o.DataDir, adminAddrFile)
		if err := writeFileAtomic(a.addrFile, []byte(a.addr+"\n")); err != nil {
			stop()
			_ = l.Close()
			return nil, fmt.Errorf("cannot publish the admin address in %q: %w", a.addrFile, err)
		}
	}
	go func() {
		defer close(a.served)
		if err := a.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin endpoint stopped", "err", err)
		}
	}()
	a.log.Info("admin endpoint listening", "addr", a.addr)
	return a, nil
}

// Addr returns the bound address as host:port, with an unspecified IP
// (0.0.0.0, ::) replaced by loopback so that it can be dialled.
func (a *adminServer) Addr() string { return a.addr }

// Close removes admin.addr, ends the tail streams and shuts the HTTP server
// down, waiting for the handlers to return until ctx is done; then it closes
// the connections that are left and returns ctx's error. Calls after the
// first return the first one's result.
func (a *adminServer) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		// First, so that no client finds an endpoint that is going away.
		if a.addrFile != "" {
			if err := os.Remove(a.addrFile); err != nil && !errors.Is(err, os.ErrNotExist) {
				a.log.Warn("cannot remove the admin address file", "path", a.addrFile, "err", err)
			}
		}
		a.stop()
		if err := a.srv.Shutdown(ctx); err != nil {
			_ = a.srv.Close()
			a.closeErr = fmt.Errorf("admin endpoint shutdown: %w", err)
		}
		<-a.served
	})
	return a.closeErr
}

// authorize requires the bearer token, when there is one, on every request.
func (a *adminServer) authorize(next http.Handler) http.Handler {
	if a.token == nil {
		return next
	}
	// Comparing digests in constant time leaks neither the token nor its
	// length.
	want := sha256.Sum256(append([]byte("Bearer "), a.token...))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Health probes (load balancers, systemd, Kubernetes) often cannot
		// send a header, and up/down tells nobody anything.
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tern"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *adminServer) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

// readyz answers 200 while the broker serves: started, not stopping, its
// store healthy; 503 with the reason otherwise, for a load balancer or a
// Kubernetes readiness probe.
func (a *adminServer) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.broker.Ready(); err != nil {
		writeError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	a.healthz(w, r)
}

// whenStarted answers 503 until the broker has started. Before Start the
// engine is recovering its tables from the store, and reading them then
// would race with it (with a store, the retained messages are not even
// there yet); Ready's load of the started flag orders those writes before
// the handler's reads.
func (a *adminServer) whenStarted(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.broker.Ready(); errors.Is(err, engine.ErrNotStarted) {
			writeError(w, http.StatusServiceUnavailable, "the broker has not started yet")
			return
		}
		h(w, r)
	}
}

func (a *adminServer) tail(w http.ResponseWriter, r *http.Request) {
	if a.store == nil {
		writeError(w, http.StatusNotFound, "this broker keeps no change log: it runs without --data-dir")
		return
	}
	q := r.URL.Query()
	var from uint64
	if s := q.Get("from"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad from %q: want a sequence number", s))
			return
		}
		from = n
	}
	follow := false
	if s := q.Get("follow"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad follow %q: want 1 or 0", s))
			return
		}
		follow = b
	}
	format := q.Get("format")
	contentType := "text/plain; charset=utf-8"
	switch format {
	case "", "text":
		format = "text"
	case "json":
		contentType = "application/x-ndjson"
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad format %q: want text or json", format))
		return
	}

	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Trailer", tailErrorTrailer)
	// The per-write deadlines below stay on the connection after the
	// handler; a fresh connection per stream keeps them from reaching
	// another request.
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	// Send the header now: a follower of a quiet broker learns at once that
	// the stream is open.
	if err := rc.Flush(); err != nil {
		return
	}
	log := a.log.With("remote", r.RemoteAddr, "from", from, "follow", follow)
	log.Debug("tail stream started")
	fw := &flushWriter{w: w, rc: rc}
	err := a.store.Tail(r.Context(), from, follow, format, fw)
	switch {
	case fw.err != nil:
		// The client went away or stopped reading: nobody reads a trailer.
		log.Debug("tail stream cut", "err", fw.err)
		return
	case err != nil:
		if !errors.Is(err, wal.ErrClosed) {
			log.Warn("tail stream failed", "err", err)
		}
		h.Set(tailErrorTrailer, err.Error())
	case follow && a.base.Err() != nil:
		h.Set(tailErrorTrailer, "the broker's admin endpoint is shutting down")
	}
	_ = rc.SetWriteDeadline(time.Now().Add(tailWriteTimeout)) // for the last chunk and the trailer
	log.Debug("tail stream ended")
}

// flushWriter writes a tail stream to the response and flushes every write,
// so that a follower sees each record as it commits.
type flushWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error // the first write or flush error: the client is gone or stuck
}

func (f *flushWriter) Write(p []byte) (int, error) {
	// ErrNotSupported (a ResponseWriter without deadlines) only loses the
	// bound on a stuck reader.
	_ = f.rc.SetWriteDeadline(time.Now().Add(tailWriteTimeout))
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}

// jsonFallback answers what mux has no route for as JSON errors, as the
// rest of the endpoint does: 404 for an unknown path, 405 (with Allow) for a
// path whose route takes other methods; ServeMux's own answers are text.
// It also refuses, under /v1/, a path that ServeMux would redirect to its
// cleaned form (an empty, "." or ".." element): the redirect would name
// another client id or topic, and a client following it with DELETE would
// delete that one.
func jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.EscapedPath(); strings.HasPrefix(p, "/v1/") && !cleanPath(p) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("path %q has an empty, \".\" or \"..\" element: "+
				"percent-encode '/' in a client id or topic as %%2F", p))
			return
		}
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // again, to set the request's path values
			return
		}
		// ServeMux's 404 or 405: keep its status and Allow, not its body.
		rec := &statusRecorder{header: w.Header()}
		h.ServeHTTP(rec, r)
		if rec.code == http.StatusMethodNotAllowed {
			writeError(w, rec.code, fmt.Sprintf("method %s not allowed on %s (allowed: %s)",
				r.Method, r.URL.Path, w.Header().Get("Allow")))
			return
		}
		msg := "no such endpoint: " + r.URL.Path
		if strings.HasPrefix(r.URL.Path, "/v1/sessions/") {
			// Most likely a client id with an unencoded '/'.
			msg += " (a client id with '/' goes in the path with '/' percent-encoded as %2F)"
		}
		writeError(w, http.StatusNotFound, msg)
	})
}

// cleanPath reports whether ServeMux leaves p as it is: no empty, "." or
// ".." element (a trailing slash is fine).
func cleanPath(p string) bool {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// statusRecorder keeps the status of a response and drops its body.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.code = code }

// writeError answers {"error": msg} with the status code.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}

// writeJSON answers v as JSON with the status code. HTML characters stay as
// they are: topics and client ids read better that way, and the content
// type keeps a browser from taking the answer for a page.
func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// dialAddr returns a bound address as host:port for clients: a listener on
// the unspecified address (0.0.0.0, ::) is reached through loopback.
func dialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// writeFileAtomic writes b to path through a rename, so that a reader sees
// the old content or the new, never a part.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
