package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/tern-mqtt/tern/perf/loadgen"
	"github.com/tern-mqtt/tern/perf/mqttwire"
)

// endpoints are the requests measured, in order.
var endpoints = []string{
	"/metrics",
	"/v1/stats",
	"/v1/sessions?limit=100",
	"/v1/sessions?prefix=dev-1&limit=100",
	"/v1/subscriptions?topic=dev/5/cmd",
}

const (
	// coldEndpoint names the row of the cold /metrics scrapes.
	coldEndpoint = "/metrics (cold: walks every session)"
	// coldWait is the pause before each cold scrape: longer than the 5 s
	// for which /metrics keeps the queue totals (cmd/tern/metrics.go,
	// queueTotalsMaxAge).
	coldWait = 5500 * time.Millisecond
	// idleEndpoint names the control row: a scrape after an idle pause as
	// long as the cold one's (4.5 s and 5.5 s are alike), but with the
	// totals still cached (the cold scrape filled them 4.5 s before). Any
	// request after an idle pause is slower than one of a back-to-back
	// batch, so cold minus this, not cold minus the batch, is the walk.
	idleEndpoint = "/metrics (after 4.5 s idle, cached)"
	// warmWait is the pause before the control scrape.
	warmWait = 4500 * time.Millisecond
	// requestTimeout bounds one HTTP request.
	requestTimeout = 30 * time.Second
	// readyTimeout bounds the wait for /readyz after the broker accepts
	// MQTT connections.
	readyTimeout = 10 * time.Second
	// openWorkers is how many connections openSessions opens at once.
	openWorkers = 32
)

// result is one row: an endpoint at a number of open sessions.
type result struct {
	Endpoint    string  `json:"endpoint"`
	Conns       int     `json:"conns"`
	Requests    int     `json:"requests"` // timed
	MedianMs    float64 `json:"median_ms"`
	P90Ms       float64 `json:"p90_ms"`
	MaxMs       float64 `json:"max_ms"`
	CPUMsPerReq float64 `json:"cpu_ms_per_request"` // broker utime + stime over the timed requests, per request
	Bytes       int     `json:"bytes"`              // body of the last response
}

// idleCPU is the broker's CPU time over the waits before the cold and
// control scrapes, when nothing asked it anything.
type idleCPU struct {
	Conns    int
	Seconds  float64
	MsPerSec float64
}

// measurer requests the admin endpoint of one broker, over one kept-alive
// HTTP connection.
type measurer struct {
	admin    string // http://host:port
	pid      int    // the broker's, for its CPU time
	requests int
	cold     int
	progress io.Writer
	client   *http.Client
}

func (m *measurer) http() *http.Client {
	if m.client == nil {
		m.client = &http.Client{
			Timeout: requestTimeout,
			// No gzip: the bytes reported are the body as served.
			Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1},
		}
	}
	return m.client
}

func (m *measurer) close() {
	if m.client != nil {
		m.client.CloseIdleConnections()
	}
}

// get requests path, reads the whole body and returns its size; an answer
// other than 200 is an error.
func (m *measurer) get(ctx context.Context, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.admin+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := m.http().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET %s: reading the body: %w", path, err)
	}
	return int(n), nil
}

// waitReady polls /readyz until it answers 200, for at most readyTimeout.
func (m *measurer) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		_, err := m.get(ctx, "/readyz")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("admin endpoint not ready after %v: %w", readyTimeout, err)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// all measures every endpoint, then the cold /metrics scrapes, each
// followed by its control, with conns sessions open.
func (m *measurer) all(ctx context.Context, conns int) ([]result, idleCPU, error) {
	var rows []result
	idle := idleCPU{Conns: conns}
	for _, e := range endpoints {
		r, err := m.batch(ctx, e, conns)
		if err != nil {
			return rows, idle, err
		}
		rows = append(rows, r)
		fmt.Fprintf(m.progress, "scrape: %d conns: %s: median %.2f ms, p90 %.2f ms, max %.2f ms, CPU %.2f ms/request, %d B\n",
			conns, e, r.MedianMs, r.P90Ms, r.MaxMs, r.CPUMsPerReq, r.Bytes)
	}
	if m.cold == 0 {
		return rows, idle, nil
	}
	cold := result{Endpoint: coldEndpoint, Conns: conns, Requests: m.cold}
	warm := result{Endpoint: idleEndpoint, Conns: conns, Requests: m.cold}
	var coldLat, warmLat []time.Duration
	var idleTime, idleCPUTime, coldCPU, warmCPU time.Duration
	for range m.cold {
		for _, s := range []struct {
			wait time.Duration
			lat  *[]time.Duration
			cpu  *time.Duration
			r    *result
		}{{coldWait, &coldLat, &coldCPU, &cold}, {warmWait, &warmLat, &warmCPU, &warm}} {
			d, cpuIdle, cpuReq, n, err := m.afterIdle(ctx, s.wait)
			if err != nil {
				return rows, idle, err
			}
			*s.lat = append(*s.lat, d)
			*s.cpu += cpuReq
			s.r.Bytes = n
			idleTime += s.wait
			idleCPUTime += cpuIdle
		}
	}
	summarize(&cold, coldLat, coldCPU)
	summarize(&warm, warmLat, warmCPU)
	rows = append(rows, cold, warm)
	idle.Seconds = idleTime.Seconds()
	idle.MsPerSec = ms(idleCPUTime) / idle.Seconds
	for _, r := range []result{cold, warm} {
		fmt.Fprintf(m.progress, "scrape: %d conns: %s: median %.2f ms, max %.2f ms, CPU %.2f ms/request\n",
			conns, r.Endpoint, r.MedianMs, r.MaxMs, r.CPUMsPerReq)
	}
	fmt.Fprintf(m.progress, "scrape: %d conns: broker CPU while idle %.2f ms/s\n", conns, idle.MsPerSec)
	return rows, idle, nil
}

// afterIdle waits for wait, then scrapes /metrics once. It returns the
// scrape's latency, the broker's CPU time over the wait and over the
// scrape, and the size of the body.
func (m *measurer) afterIdle(ctx context.Context, wait time.Duration) (lat, cpuIdle, cpuReq time.Duration, n int, err error) {
	c0, err := loadgen.ProcCPU(m.pid)
	if err != nil {
		return
	}
	if err = sleep(ctx, wait); err != nil {
		return
	}
	c1, err := loadgen.ProcCPU(m.pid)
	if err != nil {
		return
	}
	t := time.Now()
	if n, err = m.get(ctx, "/metrics"); err != nil {
		return
	}
	lat = time.Since(t)
	c2, err := loadgen.ProcCPU(m.pid)
	return lat, c1 - c0, c2 - c1, n, err
}

// batch makes one untimed request to path (it opens the HTTP connection and
// fills /metrics' cache), then m.requests timed ones, and reads the broker's
// CPU time around those.
func (m *measurer) batch(ctx context.Context, path string, conns int) (result, error) {
	r := result{Endpoint: path, Conns: conns, Requests: m.requests}
	if _, err := m.get(ctx, path); err != nil {
		return r, err
	}
	lat := make([]time.Duration, 0, m.requests)
	cpu0, err := loadgen.ProcCPU(m.pid)
	if err != nil {
		return r, err
	}
	for range m.requests {
		t := time.Now()
		n, err := m.get(ctx, path)
		if err != nil {
			return r, err
		}
		lat = append(lat, time.Since(t))
		r.Bytes = n
	}
	cpu1, err := loadgen.ProcCPU(m.pid)
	if err != nil {
		return r, err
	}
	summarize(&r, lat, cpu1-cpu0)
	return r, nil
}

// summarize fills r's latencies from lat and its CPU per request from cpu.
func summarize(r *result, lat []time.Duration, cpu time.Duration) {
	slices.Sort(lat)
	r.MedianMs = ms(median(lat))
	r.P90Ms = ms(percentile(lat, 0.9))
	r.MaxMs = ms(lat[len(lat)-1])
	r.CPUMsPerReq = ms(cpu) / float64(len(lat))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median of sorted s: the mean of the middle two for an even count.
func median(s []time.Duration) time.Duration {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile of sorted s by nearest rank.
func percentile(s []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkCounts reads /v1/stats and checks that the broker has n sessions
// online and n subscriptions.
func (m *measurer) checkCounts(ctx context.Context, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.admin+"/v1/stats", nil)
	if err != nil {
		return err
	}
	resp, err := m.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var st struct {
		Online        int `json:"online"`
		Sessions      int `json:"sessions"`
		Subscriptions int `json:"subscriptions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("/v1/stats: %w", err)
	}
	if st.Online != n || st.Sessions != n || st.Subscriptions != n {
		return fmt.Errorf("/v1/stats counts %d online, %d sessions, %d subscriptions; want %d of each", st.Online, st.Sessions, st.Subscriptions, n)
	}
	return nil
}

// sessionSet is the open MQTT connections.
type sessionSet struct{ conns []net.Conn }

func (s *sessionSet) close() {
	for _, c := range s.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// dropped returns an error when the broker closed any of the connections:
// such a connection reads EOF at once, a live one times out.
func (s *sessionSet) dropped() error {
	n := 0
	var b [1]byte
	for _, c := range s.conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Microsecond))
		if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("the broker closed %d of the %d connections during the measurement", n, len(s.conns))
	}
	return nil
}

// openSessions opens n connections to addr, spread over sources source
// addresses, each CONNECTing as dev-<i> with Clean Session 0 and
// SUBSCRIBEing to dev/<i>/cmd at QoS 1. It writes a progress line every
// 5,000 connections. The set is valid, to close, even with an error.
func openSessions(ctx context.Context, addr string, n, sources int, keepAlive uint16, progress io.Writer) (*sessionSet, error) {
	s := &sessionSet{conns: make([]net.Conn, n)}
	start := time.Now()
	var opened atomic.Int64
	err := loadgen.Parallel(ctx, n, openWorkers, func(ctx context.Context, i int) error {
		c, err := mqttwire.DialPersistent(ctx, addr, "dev-"+strconv.Itoa(i), keepAlive, 1+i%sources)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		s.conns[i] = c
		if err := mqttwire.Subscribe(c, "dev/"+strconv.Itoa(i)+"/cmd", 1); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		if k := opened.Add(1); k%5000 == 0 || int(k) == n {
			fmt.Fprintf(progress, "scrape: %d/%d sessions open (%.1f s)\n", k, n, time.Since(start).Seconds())
		}
		return nil
	})
	return s, err
}
