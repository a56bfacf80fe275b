package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartW     = 600
	chartH     = 160
	chartLeft  = 56 // room for the y labels
	chartRight = 592
	chartTop   = 8
	chartBot   = 136 // room for the x labels below
)

// point is one value of a series at a time; NaN is a gap.
type point struct {
	At time.Time
	V  float64
}

// chartView is an SVG line chart, drawn on the server: the template only
// writes out these numbers.
type chartView struct {
	ID      string
	Title   string
	Latest  string // the newest value, formatted
	Empty   bool
	Lines   []string // polyline points, one per run of points without gaps
	Dots    []dot    // runs of one point, drawn as circles
	Grid    []gridLine
	XLabels []axisLabel
}

// dot is a point with no neighbour to draw a line to.
type dot struct {
	X, Y string
}

type gridLine struct {
	Y    string
	Text string
}

type axisLabel struct {
	X, Anchor, Text string
}

// newChart draws points over [end-span, end]. yMax, when above zero, fixes
// the scale (a ratio's 100 %); otherwise it is the data's maximum rounded
// up to a round number. format writes a value for the labels.
func newChart(id, title string, pts []point, end time.Time, span time.Duration, yMax float64, format func(float64) string) chartView {
	c := chartView{ID: id, Title: title, Latest: "no data yet"}
	start := end.Add(-span)
	top := yMax
	if top <= 0 {
		for _, p := range pts {
			if !math.IsNaN(p.V) && p.V > top {
				top = p.V
			}
		}
		top = niceCeil(top)
	}
	x := func(t time.Time) float64 {
		return chartLeft + float64(t.Sub(start))/float64(span)*(chartRight-chartLeft)
	}
	y := func(v float64) float64 {
		return chartBot - v/top*(chartBot-chartTop)
	}
	var run []dot
	flush := func() {
		switch len(run) {
		case 0:
		case 1: // a lone point: a polyline of one point draws nothing
			c.Dots = append(c.Dots, run[0])
		default:
			parts := make([]string, len(run))
			for i, d := range run {
				parts[i] = d.X + "," + d.Y
			}
			c.Lines = append(c.Lines, strings.Join(parts, " "))
		}
		run = nil
	}
	for _, p := range pts {
		if math.IsNaN(p.V) || p.At.Before(start) {
			flush()
			continue
		}
		run = append(run, dot{X: coord(x(p.At)), Y: coord(y(math.Min(p.V, top)))})
		c.Latest = format(p.V)
	}
	flush()
	c.Empty = len(c.Lines) == 0 && len(c.Dots) == 0
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		c.Grid = append(c.Grid, gridLine{Y: coord(y(v)), Text: format(v)})
	}
	c.XLabels = []axisLabel{
		{X: coord(chartLeft), Anchor: "start", Text: "−" + spanLabel(span)},
		{X: coord((chartLeft + chartRight) / 2), Anchor: "middle", Text: "−" + spanLabel(span/2)},
		{X: coord(chartRight), Anchor: "end", Text: "now"},
	}
	return c
}

// spanLabel writes a span in whole hours or minutes.
func spanLabel(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dm", int(d.Minutes()))
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*exp {
			return m * exp
		}
	}
	return 10 * exp
}

// formatNumber writes a value with a precision that suits its size.
func formatNumber(v float64) string {
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
	default:
		s := strconv.FormatFloat(v, 'f', 2, 64)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		if s == "" || s == "-" {
			return "0"
		}
		return s
	}
}

func formatRate(v float64) string    { return formatNumber(v) + "/s" }
func formatPercent(v float64) string { return formatNumber(v) + " %" }

// formatAge writes seconds as a short duration.
func formatAge(v float64) string {
	d := time.Duration(v * float64(time.Second))
	switch {
	case d < time.Minute:
		return formatNumber(d.Seconds()) + "s"
	case d < time.Hour:
		// 90 s is 1m30s, not "1m": axis labels at half a scale must not
		// read as the scale's lower line.
		if sec := int(d.Seconds()) % 60; sec != 0 {
			return fmt.Sprintf("%dm%02ds", int(d.Minutes()), sec)
		}
		return fmt.Sprintf("%dm", int(d.Minutes()))
	default:
		return fmt.Sprintf("%.1fh", d.Hours())
	}
}
