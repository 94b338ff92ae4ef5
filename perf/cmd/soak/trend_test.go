package main

import (
	"math"
	"testing"

	"github.com/tern-mqtt/tern/internal/testutil"
)

func TestFitLine(t *testing.T) {
	f := func(ts, vs []float64, wantSlope, wantMean float64) {
		t.Helper()
		slope, mean := fitLine(ts, vs)
		if math.Abs(slope-wantSlope) > 1e-9 || math.Abs(mean-wantMean) > 1e-9 {
			t.Fatalf("fitLine(%v, %v) = %v, %v; want %v, %v", ts, vs, slope, mean, wantSlope, wantMean)
		}
	}
	f([]float64{0, 1, 2, 3}, []float64{5, 7, 9, 11}, 2, 8)  // exact line
	f([]float64{0, 1, 2, 3}, []float64{1, 3, 1, 3}, 0.4, 2) // zigzag: a slight slope
	f([]float64{10, 20, 30}, []float64{4, 4, 4}, 0, 4)      // flat
	f([]float64{7}, []float64{3}, 0, 3)                     // one point: no slope
	f(nil, nil, 0, 0)                                       // nothing
	f([]float64{0, 10, 20}, []float64{30, 20, 10}, -1, 20)  // falling
	f([]float64{1, 1, 1}, []float64{1, 2, 3}, 0, 2)         // one instant
}

// series returns n samples 10 s apart of v(i).
func series(n int, v func(i int) float64) (ts, vs []float64) {
	for i := range n {
		ts = append(ts, float64(i*10))
		vs = append(vs, v(i))
	}
	return ts, vs
}

func TestJudgeTrend(t *testing.T) {
	f := func(name string, n int, v func(int) float64, floor float64, wantUp, wantJudged bool) {
		t.Helper()
		ts, vs := series(n, v)
		tr := judgeTrend(name, ts, vs, 10, floor)
		if tr.Upward != wantUp || tr.Judged != wantJudged {
			t.Fatalf("%s: upward %v judged %v (rise %.1f, limit %.1f, mean %.1f); want upward %v judged %v",
				name, tr.Upward, tr.Judged, tr.Rise, tr.Limit, tr.Mean, wantUp, wantJudged)
		}
	}
	flat := func(int) float64 { return 1000 }
	f("flat", 54, flat, 16, false, true)
	// 1000 → 1530 over the window: 53% of the mean, far above 10%.
	f("leak", 54, func(i int) float64 { return 1000 + 10*float64(i) }, 16, true, true)
	// 1000 → 1053: 5% of the mean, under 10%.
	f("slight rise", 54, func(i int) float64 { return 1000 + float64(i) }, 16, false, true)
	// 15 → 68 is 350% of a small mean, but under a floor of 64.
	f("under the floor", 54, func(i int) float64 { return 15 + float64(i) }, 64, false, true)
	// The same rise above a floor of 16 is a trend.
	f("over the floor", 54, func(i int) float64 { return 15 + float64(i) }, 16, true, true)
	// A GC sawtooth of ±20% around a flat mean.
	f("sawtooth", 54, func(i int) float64 { return 1000 + 200*float64(i%5-2) }, 16, false, true)
	// A step of 30% of the mean in the middle of the window, flat after:
	// the fitted rise is over the limit, but it has stopped.
	step := func(at int) func(int) float64 {
		return func(i int) float64 {
			if i < at {
				return 1000
			}
			return 1300
		}
	}
	f("step, then flat", 54, step(27), 16, false, true)
	// The same step late in the window may be the start of a climb.
	f("late step", 54, step(45), 16, true, true)
	// Climbs over the first third, then flat: warm-up that outlasted -warmup.
	f("rise, then plateau", 54, func(i int) float64 { return 1000 + 20*float64(min(i, 18)) }, 16, false, true)
	// Slows down but still climbs in the second half at over half the rate.
	f("decelerating leak", 54, func(i int) float64 { return 1000 + 60*math.Sqrt(float64(i)) }, 16, true, true)
	f("falling", 54, func(i int) float64 { return 2000 - 10*float64(i) }, 16, false, true)
	f("too few", minTrendSamples-1, func(i int) float64 { return 1000 * float64(i+1) }, 16, false, false)
	f("just enough", minTrendSamples, func(i int) float64 { return 1000 * float64(i+1) }, 16, true, true)
}

func TestTrendsSkipWarmupAndMissingGoroutines(t *testing.T) {
	var samples []sample
	for i := range 10 {
		// The warm-up (t < 30) climbs steeply; after it RSS is flat.
		rss := int64(100 << 20)
		if i < 3 {
			rss = int64(i) * 30 << 20
		}
		samples = append(samples, sample{T: float64(i * 10), RSS: rss, FDs: 50, Goroutines: -1})
	}
	tr := trends(samples, 30, 10)
	testutil.Equal(t, len(tr), 2, "series judged without goroutines")
	testutil.Equal(t, tr[0].Series, "rss_bytes", "first series")
	testutil.Equal(t, tr[0].Samples, 7, "samples after the warm-up")
	testutil.Equal(t, tr[0].Upward, false, "RSS flat after the warm-up")
	for i := range samples {
		samples[i].Goroutines = 12 + 10*i
	}
	tr = trends(samples, 30, 10)
	testutil.Equal(t, len(tr), 3, "series judged with goroutines")
	testutil.Equal(t, tr[2].Upward, true, "goroutines climbing 10 per sample")
}
