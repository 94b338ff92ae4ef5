package main

import "math"

// minTrendSamples is the fewest samples a line is fitted to.
const minTrendSamples = 4

// Floors of the trend rule, per series.
const (
	rssFloor        = 4 << 20
	fdFloor         = 16
	goroutinesFloor = 16
)

// trend is the verdict on one series.
type trend struct {
	Series  string  `json:"series"`
	Samples int     `json:"samples"` // after the warm-up
	First   float64 `json:"first"`   // the first and last of those samples
	Last    float64 `json:"last"`
	Mean    float64 `json:"mean"`
	Slope   float64 `json:"slope_per_min"` // of the line fitted to the window
	Rise    float64 `json:"fitted_rise"`   // Slope × the window
	// LateRise is the slope of the line fitted to the window's second half
	// alone, times the whole window: how much the series would rise over
	// the window at the rate it still climbs at the end.
	LateRise float64 `json:"late_rise"`
	Limit    float64 `json:"limit"`  // the rise above which it is a trend: max(pct × mean, floor)
	Judged   bool    `json:"judged"` // false: too few samples
	Upward   bool    `json:"upward"`
}

// fitLine returns the least-squares slope of vs over ts, and the mean of
// vs. A series of one instant has slope 0.
func fitLine(ts, vs []float64) (slope, mean float64) {
	n := float64(len(ts))
	if n == 0 {
		return 0, 0
	}
	var st, sv float64
	for i := range ts {
		st += ts[i]
		sv += vs[i]
	}
	mt, mv := st/n, sv/n
	var num, den float64
	for i := range ts {
		num += (ts[i] - mt) * (vs[i] - mv)
		den += (ts[i] - mt) * (ts[i] - mt)
	}
	if den == 0 {
		return 0, mv
	}
	return num / den, mv
}

// judgeTrend applies the trend rule to the series vs sampled at ts
// (seconds), both already cut to the window after the warm-up.
//
// The rule: the samples after the warm-up are fitted with a least-squares
// line v = a + b·t. The series has an upward trend when the fitted rise
// over the window, b·(t_last − t_first), exceeds the limit, and the line
// fitted to the second half of the window alone still climbs at least half
// as fast as that limit needs (its slope × the window > limit ÷ 2). The
// limit is the larger of -trend-pct (default 10%) of the series' mean over
// the window and the series' floor: 4 MiB of RSS, 16 fds, 16 goroutines.
//
// The floors keep a small broker's noise (a GC cycle's worth of heap, the
// churn's connections open at the instant of a sample) from reading as a
// leak. The second half keeps a rise that has stopped from reading as one:
// Go's heap and RSS grow in steps for minutes before they settle, longer
// than a warm-up worth waiting for, while a leak goes on climbing. A step
// late in the window still counts. Fewer than minTrendSamples samples after
// the warm-up give no verdict.
func judgeTrend(series string, ts, vs []float64, pct, floor float64) trend {
	t := trend{Series: series, Samples: len(ts)}
	if len(ts) == 0 {
		return t
	}
	t.First, t.Last = vs[0], vs[len(vs)-1]
	slope, mean := fitLine(ts, vs)
	span := ts[len(ts)-1] - ts[0]
	t.Mean, t.Slope, t.Rise = mean, slope*60, slope*span
	half := len(ts) / 2
	late, _ := fitLine(ts[half:], vs[half:])
	t.LateRise = late * span
	t.Limit = math.Max(pct/100*math.Abs(mean), floor)
	t.Judged = len(ts) >= minTrendSamples
	t.Upward = t.Judged && t.Rise > t.Limit && t.LateRise > t.Limit/2
	return t
}

// trends judges RSS, fds and, for a broker whose goroutines were read,
// goroutines, over the samples taken at or after warmup seconds. A sample
// whose goroutines could not be read is left out of that series only.
func trends(samples []sample, warmup, pct float64) []trend {
	var ts, rss, fds, gts, gor []float64
	for _, s := range samples {
		if s.T < warmup {
			continue
		}
		ts = append(ts, s.T)
		rss = append(rss, float64(s.RSS))
		fds = append(fds, float64(s.FDs))
		if s.Goroutines >= 0 {
			gts = append(gts, s.T)
			gor = append(gor, float64(s.Goroutines))
		}
	}
	out := []trend{
		judgeTrend("rss_bytes", ts, rss, pct, rssFloor),
		judgeTrend("fds", ts, fds, pct, fdFloor),
	}
	if len(gts) > 0 {
		out = append(out, judgeTrend("goroutines", gts, gor, pct, goroutinesFloor))
	}
	return out
}
