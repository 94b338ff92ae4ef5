package report

import (
	"bytes"
	"cmp"
	"errors"
	"image/color"
	"math"
	"slices"
	"strconv"

	"github.com/tern-mqtt/tern/perf/stats"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// errNoData is returned by BarChart.SVG when no bar has a positive value.
var errNoData = errors.New("report: no data to chart")

// chart is a chart of the report and the file it is drawn in.
type chart struct {
	file   string
	format func(float64) string // for the table of its values beside it
	BarChart
}

// point is one group of a chart: a field of a table.
type point struct {
	label string
	t     *Table
	field string
}

// charts returns the report's charts: delivered msg/s and broker CPU per
// message of every throughput scenario, and the latency percentiles per QoS.
func charts(tables []*Table) []chart {
	var rate, cpu, lat []point
	for _, t := range tables {
		if t.kind.rate != "" {
			rate = append(rate, point{t.Scenario, t, t.kind.rate})
		}
		if t.kind.cpu != "" {
			cpu = append(cpu, point{t.Scenario, t, t.kind.cpu})
		}
		if t.Command == "latency" {
			for _, p := range []struct{ name, field string }{{"p50", "p50_us"}, {"p99", "p99_us"}, {"p99.9", "p999_us"}} {
				lat = append(lat, point{t.Split + " " + p.name, t, p.field})
			}
		}
	}
	cs := []chart{
		{"throughput.svg", stats.SI, chartOf("Delivered messages per second (median)", "msg/s, log scale", rate)},
		{"cpu.svg", f2, chartOf("Broker CPU per delivered message (median)", "µs/msg, log scale", cpu)},
		{"latency.svg", f0, chartOf("Latency at a fixed rate (median of each percentile)", "µs, log scale", lat)},
	}
	// A broker keeps its colour from chart to chart.
	var all []string
	for _, t := range tables {
		for _, b := range t.Brokers {
			if !slices.Contains(all, b) {
				all = append(all, b)
			}
		}
	}
	for _, c := range cs {
		for i := range c.Series {
			c.Series[i].Color = plotutil.Color(slices.Index(all, c.Series[i].Name))
		}
	}
	return cs
}

// chartOf makes a bar chart of pts with a series per broker that ran in any
// of them; a broker missing from a group gets no bar there.
func chartOf(title, yLabel string, pts []point) BarChart {
	c := BarChart{Title: title, YLabel: yLabel}
	var brokers []string
	for _, p := range pts {
		c.Groups = append(c.Groups, p.label)
		for _, b := range p.t.Brokers {
			if !slices.Contains(brokers, b) {
				brokers = append(brokers, b)
			}
		}
	}
	for _, b := range brokers {
		s := Series{Name: b}
		for _, p := range pts {
			v, ok := p.t.Median(b, p.field)
			if !ok {
				v = math.NaN()
			}
			s.Values = append(s.Values, v)
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// BarChart is a grouped bar chart on a log scale: one group per label in
// Groups, a bar per series that has a value there, side by side and centred,
// so that a broker missing from a scenario leaves no hole. The values of the
// rates, CPU costs and latencies it shows span decades across scenarios and
// brokers (the relay delivers 100 times what a broker does in fan-out),
// which a linear axis would flatten to nothing.
type BarChart struct {
	Title, YLabel string
	Groups        []string
	Series        []Series
}

// Series is one broker's bars, a value per group; NaN, 0 or less draws
// no bar (a log scale has no 0).
type Series struct {
	Name   string
	Values []float64
	Color  color.Color // nil: the i-th of plotutil's colours for the i-th series
}

// Chart sizes: groups as wide as their fullest one and a bar apart.
const (
	barWidth    = 7 * vg.Millimeter / 2
	chartHeight = 11 * vg.Centimeter
	minWidth    = 16 * vg.Centimeter
	axisWidth   = 3 * vg.Centimeter // the Y axis and its label, roughly
)

// SVG draws the chart as a new SVG document, with the legend to the right
// of the plot so that it never hides a bar.
func (c BarChart) SVG() ([]byte, error) {
	lo, hi := math.Inf(1), math.Inf(-1)
	fullest := 0
	for g := range c.Groups {
		n := 0
		for _, s := range c.Series {
			if v := s.Values[g]; v > 0 {
				lo, hi = min(lo, v), max(hi, v)
				n++
			}
		}
		fullest = max(fullest, n)
	}
	if fullest == 0 {
		return nil, errNoData
	}

	p := plot.New()
	p.Title.Text = c.Title
	p.Y.Label.Text = c.YLabel
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = siLogTicks{}
	p.NominalX(c.Groups...)
	// Slanted, so that long scenario names do not run into each other.
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)
	p.Add(groupedBars{c})
	p.X.Min, p.X.Max = -0.5, float64(len(c.Groups))-0.5
	// Whole decades, so that the axis starts and ends on a labelled tick.
	p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Min == p.Y.Max {
		p.Y.Max *= 10
	}

	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	for i, s := range c.Series {
		legend.Add(s.Name, swatch{c.color(i)})
	}
	legendWidth := legend.Rectangle(draw.Canvas{}).Size().X + 5*vg.Millimeter

	plotWidth := vg.Length(len(c.Groups)*(fullest+1))*barWidth + axisWidth
	width := max(minWidth, plotWidth+legendWidth)
	canvas := vgsvg.New(width, chartHeight)
	dc := draw.New(canvas)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, width-legendWidth+2*vg.Millimeter, 0, 0, -vg.Centimeter))

	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (c BarChart) color(i int) color.Color {
	return cmp.Or[color.Color](c.Series[i].Color, plotutil.Color(i))
}

// groupedBars draws the bars of a BarChart. plotter.BarChart draws every bar
// up from 0, which a log axis cannot place, and leaves a gap for a missing
// value; these start at the axis' minimum and close up.
type groupedBars struct{ c BarChart }

// Plot implements plot.Plotter.
func (b groupedBars) Plot(dc draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&dc)
	for g := range b.c.Groups {
		var present []int
		for i, s := range b.c.Series {
			if s.Values[g] > 0 {
				present = append(present, i)
			}
		}
		x := trX(float64(g)) - vg.Length(len(present))*barWidth/2
		for _, i := range present {
			top := trY(b.c.Series[i].Values[g])
			rect := []vg.Point{
				{X: x, Y: trY(p.Y.Min)}, {X: x, Y: top},
				{X: x + barWidth, Y: top}, {X: x + barWidth, Y: trY(p.Y.Min)},
			}
			dc.FillPolygon(b.c.color(i), dc.ClipPolygonY(rect))
			x += barWidth
		}
	}
}

// swatch is a legend entry's colour.
type swatch struct{ color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.Color, []vg.Point{
		{X: c.Min.X, Y: c.Min.Y}, {X: c.Min.X, Y: c.Max.Y},
		{X: c.Max.X, Y: c.Max.Y}, {X: c.Max.X, Y: c.Min.Y},
	})
}

// siLogTicks labels the decades of a log axis as 1, 10, 100, 1k, …, 1M.
type siLogTicks struct{}

func (siLogTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.LogTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = siTick(ticks[i].Value)
		}
	}
	return ticks
}

func siTick(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

// trimFloat formats v with as few digits as it needs: 0.01, 1, 100.
func trimFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
