package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// profileServer serves Go's profiles (/debug/pprof/) on an address of its
// own, for --pprof-listen: a benchmark run or a load test profiles the broker
// without an admin token and without turning the admin endpoint on. It has
// no authentication, so the flag's default is off and loopback is the place
// for it.
type profileServer struct {
	srv    *http.Server
	addr   string
	served chan struct{}
}

// handleProfiles serves Go's profiles under /debug/pprof/ on mux.
func handleProfiles(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

func startProfiles(addr string, logger *slog.Logger) (*profileServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for profiles on %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	handleProfiles(mux)
	p := &profileServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
		addr:   dialAddr(l.Addr()),
		served: make(chan struct{}),
	}
	go func() {
		defer close(p.served)
		if err := p.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("profile endpoint stopped", "err", err)
		}
	}()
	return p, nil
}

// Close stops serving; a CPU profile being taken is cut short.
func (p *profileServer) Close() {
	_ = p.srv.Close()
	<-p.served
}
