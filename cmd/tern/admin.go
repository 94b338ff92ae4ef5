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
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tern-mqtt/tern/wal"
)

const (
	// adminAddrFile is the file in the data directory where a running broker
	// publishes the address of its admin endpoint, for `tern wal tail`.
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

// adminServer is the broker's HTTP endpoint (loopback by default). It serves
// /healthz and /v1/wal/tail; later issues add /metrics, the admin API and
// pprof.
type adminServer struct {
	srv      *http.Server
	addr     string // bound address, dialable (an unspecified IP replaced by loopback)
	addrFile string // "" when no data directory
	store    *wal.Store
	token    []byte
	log      *slog.Logger

	// base is the context of every request; Close cancels it (stop), which
	// ends the tail streams: http.Server.Shutdown waits for handlers but
	// does not cancel them.
	base   context.Context
	stop   context.CancelFunc
	served chan struct{} // closed when Serve returns

	closeOnce sync.Once
	closeErr  error
}

// startAdmin listens on addr and serves, in its own goroutine:
//
//	GET /healthz      200 "ok"
//	GET /v1/wal/tail?from=N&follow=1&format=text|json
//	                  streams store.Tail, flushing after every write, until
//	                  the log is printed (without follow), the client goes
//	                  away, the store closes or Close is called; 404 when
//	                  store is nil (a broker without --data-dir), 400 on bad
//	                  parameters
//
// Errors are JSON: {"error": "..."}. A tail stream that ends early (store
// error, shutdown) says why in the Tern-Tail-Error trailer.
//
// When token is not empty every request needs "Authorization: Bearer
// <token>" (401 otherwise). When dataDir is not empty the bound address is
// written to dataDir/admin.addr, which `tern wal tail` reads to find the
// running broker; Close removes it. store may be nil.
func startAdmin(addr, dataDir, token string, store *wal.Store, logger *slog.Logger) (*adminServer, error) {
	if logger == nil {
		logger = slog.Default()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for the admin endpoint on %q: %w", addr, err)
	}
	base, stop := context.WithCancel(context.Background())
	a := &adminServer{
		addr:   dialAddr(l.Addr()),
		store:  store,
		log:    logger.With("component", "admin"),
		base:   base,
		stop:   stop,
		served: make(chan struct{}),
	}
	if token != "" {
		a.token = []byte(token)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", a.healthz)
	mux.HandleFunc("/v1/wal/tail", a.tail)
	// Profiles of a running broker, behind the same token as the rest.
	handleProfiles(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	a.srv = &http.Server{
		Handler:           a.authorize(mux),
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	if dataDir != "" {
		a.addrFile = filepath.Join(dataDir, adminAddrFile)
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
		got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tern"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *adminServer) healthz(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok"))
}

func (a *adminServer) tail(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
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

// allow answers 405 to a method not in methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
	return false
}

// writeError answers {"error": msg} with the status code.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
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
