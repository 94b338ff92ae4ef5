package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tern-mqtt/tern/perf/mqttwire"

	"github.com/tern-mqtt/tern/perf/loadgen"
)

const (
	// closeTimeout bounds the wait for the broker to close a connection
	// after DISCONNECT.
	closeTimeout = time.Second
	// fdMargin is the number of descriptors under the open-files limit that
	// openIdle leaves for everything else, in this process and the broker's.
	fdMargin = 500
	// settle is the pause before each RSS reading.
	settle = time.Second
)

// rateResult is the connect-rate measurement.
type rateResult struct {
	Workers     int     `json:"workers"`
	Connections int64   `json:"connections"` // complete cycles
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	NotClosed   int64   `json:"not_closed"` // the broker had not closed within closeTimeout of DISCONNECT
	PerSec      float64 `json:"conn_per_s"`
	CPUPerConn  float64 `json:"cpu_us_per_conn"`
}

// connectRate runs workers that each repeatedly dial addr (spread over
// sources source addresses), CONNECT with a clean session, wait for the
// CONNACK, send DISCONNECT, wait for the broker to close and close, for
// duration. The broker closes first, so the TIME_WAIT sockets are its own and
// the client never runs out of local ports.
func connectRate(ctx context.Context, addr string, pid, workers, sources int, duration time.Duration) (rateResult, error) {
	res := rateResult{Workers: workers}
	var conns, errs, notClosed atomic.Int64
	var firstErr atomic.Value
	cpu0, err := loadgen.ProcCPU(pid)
	if err != nil {
		return res, err
	}
	start := time.Now()
	end := start.Add(duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				closed, err := cycle(ctx, addr, fmt.Sprintf("cr%d-%d", w, i), 1+(w+i)%sources)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(10 * time.Millisecond) // do not spin on, say, a refused dial
					continue
				}
				conns.Add(1)
				if !closed {
					notClosed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := loadgen.ProcCPU(pid)
	if err != nil {
		return res, err
	}
	res.Connections, res.Errors, res.NotClosed = conns.Load(), errs.Load(), notClosed.Load()
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	res.PerSec = float64(res.Connections) / elapsed.Seconds()
	if res.Connections > 0 {
		res.CPUPerConn = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(res.Connections)
	}
	return res, ctx.Err()
}

// cycle connects, disconnects and reports whether the broker closed the
// connection within closeTimeout of the DISCONNECT.
func cycle(ctx context.Context, addr, clientID string, src int) (bool, error) {
	c, err := mqttwire.Dial(ctx, addr, clientID, 0, src)
	if err != nil {
		return false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(closeTimeout))
	if _, err := c.Write([]byte{0xe0, 0}); err != nil { // DISCONNECT
		return false, fmt.Errorf("disconnect: %w", err)
	}
	var b [64]byte
	for {
		_, err := c.Read(b[:])
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return true, nil
		}
		if err != nil {
			return false, nil
		}
	}
}

// idleResult is the idle-connections measurement.
type idleResult struct {
	Idle         int     `json:"idle"` // connections opened
	KeepAlive    int     `json:"keepalive_s"`
	Subs         int     `json:"subs_per_conn"` // distinct filters each idle connection subscribed to
	Dropped      int     `json:"dropped"`       // closed by the broker before the second RSS reading
	OpenSecs     float64 `json:"open_s"`
	RSSBefore    int64   `json:"rss_before"` // bytes
	RSSAfter     int64   `json:"rss_after"`
	BytesPerConn float64 `json:"bytes_per_conn"`
}

// openWorkers is how many connections openIdle opens at once.
const openWorkers = 32

// openIdle reads the broker's RSS, opens n connections (CONNECT with
// keepAlive seconds, spread over sources source addresses) within timeout,
// and subs distinct filters each, reads the RSS again after settle and closes them all. It writes a progress
// line to progress every 1,000 connections.
func openIdle(ctx context.Context, addr string, pid, n, subs, sources int, keepAlive uint16, timeout time.Duration, progress io.Writer) (idleResult, error) {
	res := idleResult{KeepAlive: int(keepAlive), Subs: subs}
	time.Sleep(settle)
	var err error
	if res.RSSBefore, err = loadgen.ProcRSS(pid); err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	start := time.Now()
	var opened atomic.Int64
	err = loadgen.Parallel(ctx, n, openWorkers, func(ctx context.Context, i int) error {
		c, err := mqttwire.Dial(ctx, addr, "idle-"+strconv.Itoa(i), keepAlive, 1+i%sources)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		conns[i] = c
		for j := range subs {
			if err := mqttwire.Subscribe(c, "idle/"+strconv.Itoa(i)+"/"+strconv.Itoa(j), 0); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
		if k := opened.Add(1); k%1000 == 0 {
			fmt.Fprintf(progress, "connrate: %d/%d idle connections open (%.1f s)\n", k, n, time.Since(start).Seconds())
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Idle = n
	res.OpenSecs = time.Since(start).Seconds()
	time.Sleep(settle)
	if res.RSSAfter, err = loadgen.ProcRSS(pid); err != nil {
		return res, err
	}
	res.BytesPerConn = float64(res.RSSAfter-res.RSSBefore) / float64(n)
	// A connection the broker closed reads EOF at once; a live one times out.
	var b [1]byte
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Microsecond))
		if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			res.Dropped++
		}
	}
	return res, nil
}
