package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// summary is what a run found; it is also the -out JSON.
type summary struct {
	Broker      string    `json:"broker"`
	Version     string    `json:"version"`
	Config      config    `json:"config"`
	Started     time.Time `json:"started"`
	Connections int       `json:"max_connections"` // client connections at most, by the knobs
	LoadAvg     float64   `json:"loadavg"`         // the machine's 1-minute load average at the start
	Ran         float64   `json:"ran_s"`           // seconds of load
	Idle        sample    `json:"idle"`            // the broker before any client connected
	Samples     []sample  `json:"samples"`         // the first at t=0, with the long-lived clients connected
	After       sample    `json:"after"`           // 2 s after every client left
	Trends      []trend   `json:"trends"`
	Drain       struct {
		Settled  bool    `json:"settled"`  // every publisher's messages acknowledged
		Complete bool    `json:"complete"` // every acknowledged message delivered
		Seconds  float64 `json:"seconds"`
	} `json:"drain"`
	Tracked    trackedTotals    `json:"tracked"`
	Streams    []streamResult   `json:"streams"`
	Fanout     fanoutResult     `json:"fanout"`
	Topics     topicsResult     `json:"topics"`
	Churn      churnResult      `json:"churn"`
	Errors     map[string]int64 `json:"errors"` // client errors by kind
	ErrorLines []string         `json:"error_lines"`
	BrokerDied bool             `json:"broker_died"`
	BrokerExit string           `json:"broker_exit,omitempty"`
	Failures   []string         `json:"failures"`
	Pass       bool             `json:"pass"`
}

// trackedTotals sums the tracked streams.
type trackedTotals struct {
	Streams     int     `json:"streams"`
	QoS1        verdict `json:"qos1"`
	QoS2        verdict `json:"qos2"`
	Reconnects  int64   `json:"reconnects"`
	Takeovers   int64   `json:"takeovers"`
	NotClosed   int64   `json:"takeover_not_closed"`
	SessionLost int64   `json:"session_lost"`
	MaxCloseMS  float64 `json:"max_takeover_close_ms"`
}

// judge fills the trends, the totals and the failures, and passes the run
// if there are none.
func (s *summary) judge() {
	s.Trends = trends(s.Samples, s.Config.Warmup.Seconds(), s.Config.TrendPct)
	t := trackedTotals{Streams: len(s.Streams)}
	for _, r := range s.Streams {
		if r.QoS == 1 {
			t.QoS1.addUp(r.verdict)
		} else {
			t.QoS2.addUp(r.verdict)
		}
		t.Reconnects += r.Reconnects
		t.Takeovers += r.Takeovers
		t.NotClosed += r.NotClosed
		t.SessionLost += r.SessionLost
		t.MaxCloseMS = max(t.MaxCloseMS, r.MaxCloseMS)
	}
	s.Tracked = t
	fail := func(format string, args ...any) { s.Failures = append(s.Failures, fmt.Sprintf(format, args...)) }
	if s.BrokerDied {
		fail("the broker died: %s", s.BrokerExit)
	}
	for _, tr := range s.Trends {
		switch {
		case !tr.Judged && !s.BrokerDied:
			fail("%s: %d samples after the warm-up, too few to judge a trend (at least %d)", tr.Series, tr.Samples, minTrendSamples)
		case tr.Upward:
			fail("%s: upward trend, fitted rise %s over the window > limit %s, still rising at the end (late rise %s)",
				tr.Series, tr.format(tr.Rise), tr.format(tr.Limit), tr.format(tr.LateRise))
		}
	}
	lost := t.QoS1.Lost + t.QoS2.Lost + s.Fanout.QoS1.Lost
	if lost > 0 {
		fail("%d acknowledged QoS 1/2 messages lost (tracked QoS 1 %d, QoS 2 %d, fan-out QoS 1 %d)",
			lost, t.QoS1.Lost, t.QoS2.Lost, s.Fanout.QoS1.Lost)
	}
	if d := t.QoS2.Duplicates + s.Churn.QoS2Duplicates; d > 0 {
		fail("%d QoS 2 messages delivered twice (tracked %d, churn %d)", d, t.QoS2.Duplicates, s.Churn.QoS2Duplicates)
	}
	if u := t.QoS1.Unexpected + t.QoS2.Unexpected + s.Fanout.QoS1.Unexpected; u > 0 {
		fail("%d deliveries of messages never sent or wrongly tagged", u)
	}
	if t.NotClosed > 0 {
		fail("%d takeovers left the old connection open", t.NotClosed)
	}
	if t.SessionLost > 0 {
		fail("%d resumed sessions came back without their state", t.SessionLost)
	}
	if n := sumErrors(s.Errors); n > 0 {
		fail("%d client errors: %s", n, formatKinds(s.Errors))
	}
	s.Pass = len(s.Failures) == 0
}

func sumErrors(m map[string]int64) int64 {
	n := int64(0)
	for _, v := range m {
		n += v
	}
	return n
}

func formatKinds(m map[string]int64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// format writes a value of the trend's series: MiB for RSS.
func (t trend) format(v float64) string {
	if t.Series == "rss_bytes" {
		return fmt.Sprintf("%.2f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func goroutinesText(n int) string {
	if n < 0 {
		return "–"
	}
	return fmt.Sprint(n)
}

// progressLine is the line printed per sample.
func progressLine(s sample) string {
	return fmt.Sprintf("soak: t=%4.0fs rss %s MiB fds %d goroutines %s cpu %.2f | churn %.0f/s takeovers %d reconnects %d | topics %.0f/s fan-out %.0f/s tracked %.0f/s | errors %d",
		s.T, mib(s.RSS), s.FDs, goroutinesText(s.Goroutines), s.CPU, s.Churn, s.Takeovers, s.Reconnects, s.Topics, s.Fanout, s.Tracked, s.Errors)
}

// print writes the report: the samples, the trends, the accounting and the
// verdict.
func (s *summary) print(w io.Writer) {
	c := s.Config
	fmt.Fprintf(w, "\nsoak: %s (%s), %.0f s of load (-duration %v), a sample every %v, warm-up %v; machine load average %.1f at the start\n",
		s.Broker, s.Version, s.Ran, c.Duration, c.Sample, c.Warmup, s.LoadAvg)
	fmt.Fprintf(w, "load: churn %d workers at %.0f cycles/s over %d client ids; %d topics, %d publishers at %.0f msg/s, %d wildcard subscribers; fan-out %.0f msg/s to %d subscribers (%d at QoS 1); %d tracked streams at %.0f msg/s each, a reconnect or takeover every ~%v; %d source addresses; at most %d connections\n\n",
		c.ChurnWorkers, c.ChurnRate, c.ChurnIDs, c.Topics, c.TopicPubs, c.TopicRate, c.TopicSubs,
		c.FanoutRate, c.FanoutSubs, c.FanoutQoS1, c.Streams, c.StreamRate, c.Change, c.SourceAddrs, s.Connections)

	fmt.Fprintln(w, "| t (s) | RSS MiB | fds | goroutines | CPU cores | churn/s | topic deliveries/s | fan-out deliveries/s | tracked acked/s | takeovers | reconnects | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	row := func(label string, x sample) {
		fmt.Fprintf(w, "| %s | %s | %d | %s | %.2f | %.0f | %.0f | %.0f | %.0f | %d | %d | %d |\n",
			label, mib(x.RSS), x.FDs, goroutinesText(x.Goroutines), x.CPU, x.Churn, x.Topics, x.Fanout, x.Tracked, x.Takeovers, x.Reconnects, x.Errors)
	}
	row("idle", s.Idle)
	for _, x := range s.Samples {
		label := fmt.Sprintf("%.0f", x.T)
		if x.T < c.Warmup.Seconds() {
			label += " (warm-up)"
		}
		row(label, x)
	}
	row("after", s.After)

	fmt.Fprintf(w, "\nTrends over the samples at t ≥ %v (least-squares lines): upward when the fitted rise over the window exceeds the limit, the larger of %.0f%% of the mean and the floor (RSS 4 MiB, fds 16, goroutines 16), and the second half of the window alone still climbs at a rate of more than half the limit over the window (late rise).\n\n", c.Warmup, c.TrendPct)
	fmt.Fprintln(w, "| series | samples | first | last | mean | slope/min | fitted rise | late rise | limit | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, t := range s.Trends {
		verdict := "flat"
		switch {
		case !t.Judged:
			verdict = "too few samples"
		case t.Upward:
			verdict = "UPWARD"
		case t.Rise > t.Limit:
			verdict = "rose, then settled"
		case t.Rise < -t.Limit:
			verdict = "downward"
		}
		f := t.format
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			t.Series, t.Samples, f(t.First), f(t.Last), f(t.Mean), f(t.Slope), f(t.Rise), f(t.LateRise), f(t.Limit), verdict)
	}

	t := s.Tracked
	fmt.Fprintf(w, "\nTracked streams (%d; persistent subscribers, steady / reconnecting / taken over): drain %s in %.1f s\n",
		t.Streams, drainText(s), s.Drain.Seconds)
	fmt.Fprintf(w, "  QoS 1: %d acknowledged, %d lost, %d duplicates (allowed), %d unexpected\n", t.QoS1.Acked, t.QoS1.Lost, t.QoS1.Duplicates, t.QoS1.Unexpected)
	fmt.Fprintf(w, "  QoS 2: %d acknowledged, %d lost, %d duplicates, %d unexpected\n", t.QoS2.Acked, t.QoS2.Lost, t.QoS2.Duplicates, t.QoS2.Unexpected)
	fmt.Fprintf(w, "  %d reconnects, %d takeovers (old connection not closed: %d; longest close after the new CONNACK %.1f ms), %d sessions lost\n",
		t.Reconnects, t.Takeovers, t.NotClosed, t.MaxCloseMS, t.SessionLost)
	fo := s.Fanout
	fmt.Fprintf(w, "Fan-out: %d subscribers (%d QoS 1, %d dropped by the broker), %d sent: QoS 1 %d acknowledged × subscriber, %d lost, %d duplicates; QoS 0 %d of %d delivered\n",
		fo.Subscribers, fo.QoS1Subs, fo.Dropped, fo.Sent, fo.QoS1.Acked, fo.QoS1.Lost, fo.QoS1.Duplicates, fo.QoS0Received, fo.QoS0Expected)
	tp := s.Topics
	fmt.Fprintf(w, "Topics: %d topics (%d retained), %d sent at QoS 0, %d of %d matching deliveries made (filters %s)\n",
		tp.Topics, tp.Retained, tp.Sent, tp.Received, tp.Expected, strings.Join(tp.Filters, " "))
	ch := s.Churn
	fmt.Fprintf(w, "Churn: %d cycles, %d failed, %d abrupt closes, wills %d received of %d due, %d QoS 2 duplicates\n",
		ch.Cycles, ch.Failed, ch.Abrupt, ch.WillsGot, ch.WillsDue, ch.QoS2Duplicates)
	fmt.Fprintf(w, "Broker: idle %s MiB, %d fds, %s goroutines; after the load (every client gone, persistent sessions kept) %s MiB, %d fds, %s goroutines\n",
		mib(s.Idle.RSS), s.Idle.FDs, goroutinesText(s.Idle.Goroutines), mib(s.After.RSS), s.After.FDs, goroutinesText(s.After.Goroutines))
	if len(s.ErrorLines) > 0 {
		fmt.Fprintf(w, "Client errors (%s), the first %d:\n", formatKinds(s.Errors), len(s.ErrorLines))
		for _, l := range s.ErrorLines {
			fmt.Fprintln(w, "  "+l)
		}
	}
	if s.Pass {
		fmt.Fprintln(w, "\nVerdict: PASS")
		return
	}
	fmt.Fprintln(w, "\nVerdict: FAIL")
	for _, f := range s.Failures {
		fmt.Fprintln(w, "  - "+f)
	}
}

func drainText(s *summary) string {
	switch {
	case s.Drain.Complete:
		return "complete"
	case !s.Drain.Settled:
		return "incomplete (publishers still had messages unacknowledged)"
	}
	return "incomplete (acknowledged messages still missing)"
}
