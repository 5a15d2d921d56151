package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The plots are drawn with gonum.org/v1/plot, the plotting library of the
// Gonum project (numeric Go, maintained since 2013), through its SVG
// back end vg/vgsvg: pure Go, no cgo and no browser, so `make bench` runs
// it wherever Go builds, and its axes take a log scale and fixed ticks,
// which HdrHistogram's percentile plots need.

// plotWidth and plotHeight are the size of every plot.
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 4.5 * vg.Inch
)

// series is one line of a plot.
type series struct {
	name string
	run  string // the run it comes from, which picks its colour and dashes
	xys  plotter.XYs
}

// runColors give each run the same colour on every plot; the colours are
// Okabe and Ito's, told apart with any kind of colour vision.
var runColors = map[string]color.Color{
	"batched-hot-sustained":   color.RGBA{0x00, 0x72, 0xB2, 0xFF}, // blue
	"batched-hot-open":        color.RGBA{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	"batched-spread":          color.RGBA{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	"batched-hot":             color.RGBA{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
	"unbatched-hot-sustained": color.RGBA{0xE6, 0x9F, 0x00, 0xFF}, // orange
	"unbatched-spread":        color.RGBA{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	"trivial-hot-sustained":   color.Black,
}

// runStyle is the line of a run: its colour, dashed for group commit
// off, dotted for the trivial handler.
func runStyle(run string) draw.LineStyle {
	sty := draw.LineStyle{Color: runColors[run], Width: vg.Points(1.5)}
	if sty.Color == nil {
		sty.Color = color.Gray{Y: 128}
	}
	switch {
	case strings.HasPrefix(run, "unbatched-"):
		sty.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	case strings.HasPrefix(run, "trivial-"):
		sty.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	}
	return sty
}

// readHgrm reads the percentile curve of a .hgrm file (HdrHistogram's
// percentile distribution, values in milliseconds) as points (x, y) with
// x = 1/(1−percentile) and y = the value; the last line, at percentile 1
// (x infinite), is left out, as HdrHistogram's plotter does.
func readHgrm(path string) (plotter.XYs, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the bench script's own result files
	if err != nil {
		return nil, err
	}
	var xys plotter.XYs
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || strings.HasPrefix(f[0], "#") || f[0] == "Value" {
			continue
		}
		v, errV := strconv.ParseFloat(f[0], 64)
		p, errP := strconv.ParseFloat(f[1], 64)
		if errV != nil || errP != nil {
			return nil, fmt.Errorf("%s: not a .hgrm line: %q", path, sc.Text())
		}
		if p >= 1 {
			continue
		}
		xys = append(xys, plotter.XY{X: 1 / (1 - p), Y: max(v, minPlotMS)})
	}
	if len(xys) == 0 {
		return nil, fmt.Errorf("%s: no percentile lines", path)
	}
	return xys, nil
}

// minPlotMS is the least latency drawn: a log axis has no 0.
const minPlotMS = 0.001

// readTimeline reads a timeline CSV of the load tool (t, seconds,
// requests, rps, p99_ms) as points (middle of the interval, rps). An
// interval shorter than half a second (the tail of a run, when the
// requests still in flight are answered) is left out: its rate says
// little.
func readTimeline(path string) (plotter.XYs, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the bench script's own result files
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 0 || lines[0] != "t,seconds,requests,rps,p99_ms" {
		return nil, fmt.Errorf("%s: not a load tool timeline", path)
	}
	var xys plotter.XYs
	for _, line := range lines[1:] {
		f := strings.Split(line, ",")
		if len(f) != 5 {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		var v [5]float64
		for i, s := range f {
			if v[i], err = strconv.ParseFloat(s, 64); err != nil {
				return nil, fmt.Errorf("%s: bad line %q", path, line)
			}
		}
		if v[1] >= 0.5 {
			xys = append(xys, plotter.XY{X: v[0] + v[1]/2, Y: v[3]})
		}
	}
	return xys, nil
}

// percentileTicks label the x axis of a latency plot, 1/(1−p), with the
// percentile p.
var percentileTicks = plot.ConstantTicks{
	{Value: 1, Label: "0%"}, {Value: 2, Label: "50%"}, {Value: 10, Label: "90%"}, {Value: 100, Label: "99%"},
	{Value: 1000, Label: "99.9%"}, {Value: 10000, Label: "99.99%"}, {Value: 100000, Label: "99.999%"},
}

// figure is a plot with its legend, which is drawn under the plot rather
// than over the lines.
type figure struct {
	plot    *plot.Plot
	legend  plot.Legend
	entries int
}

func newFigure(title, xLabel, yLabel string) *figure {
	// Liberation Sans has the metrics of Arial and Helvetica, so a viewer
	// without it lays the text out as it was measured here.
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	f := &figure{plot: plot.New(), legend: plot.NewLegend()}
	f.plot.Title.Text = title
	f.plot.X.Label.Text = xLabel
	f.plot.Y.Label.Text = yLabel
	f.legend.Top, f.legend.Left = true, true
	f.legend.TextStyle.Font.Size = legendFontSize
	f.legend.Padding = legendPadding
	f.plot.Add(plotter.NewGrid())
	return f
}

// Legend layout: the size of its text, the space between entries, and the
// height an entry takes with it.
const (
	legendFontSize = vg.Length(10)
	legendPadding  = vg.Length(4)
	legendEntry    = legendFontSize + legendPadding
)

// add adds a thing to plot with its name in the legend.
func (f *figure) add(name string, p plot.Plotter, thumb plot.Thumbnailer) {
	f.plot.Add(p)
	f.legend.Add(name, thumb)
	f.entries++
}

// latencyPlot draws the percentile curves of runs on one plot, as
// HdrHistogram's plotter does: the x axis is 1/(1−percentile) on a log
// scale, so that the tail has room; the latency axis is logarithmic too,
// for runs that differ by orders of magnitude.
func latencyPlot(title string, runs []series) (*figure, error) {
	f := newFigure(title, "percentile", "latency (ms)")
	p := f.plot
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = percentileTicks
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	if err := f.addLines(runs); err != nil {
		return nil, err
	}
	p.X.Min, p.X.Max = 1, max(p.X.Max, 1000)
	return f, nil
}

// reference is a horizontal line for a target.
type reference struct {
	name  string
	value float64
}

// throughputPlot draws the requests per second of runs over time, with
// dashed grey lines at the references.
func throughputPlot(title string, runs []series, refs []reference) (*figure, error) {
	f := newFigure(title, "seconds into the run", "requests per second")
	if err := f.addLines(runs); err != nil {
		return nil, err
	}
	f.plot.Y.Tick.Marker = plainTicks{}
	f.plot.X.Min, f.plot.X.Max = 0, math.Ceil(f.plot.X.Max)
	f.plot.Y.Min, f.plot.Y.Max = 0, f.plot.Y.Max*1.08
	for i, r := range refs {
		fn := plotter.NewFunction(func(float64) float64 { return r.value })
		fn.Color = color.Gray{Y: uint8(90 + 60*(i%2))}
		fn.Dashes = []vg.Length{vg.Points(10), vg.Points(4 + 4*float64(i%2))}
		fn.Width = vg.Points(1)
		f.add(r.name, fn, fn)
		f.plot.Y.Max = max(f.plot.Y.Max, r.value*1.05)
	}
	return f, nil
}

// plainTicks are the default ticks labelled without trailing zeros
// ("7500", not "7500.00").
type plainTicks struct{}

func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i, t := range ticks {
		if t.Label != "" {
			ticks[i].Label = strconv.FormatFloat(t.Value, 'f', -1, 64)
		}
	}
	return ticks
}

// addLines adds one line per run, in the run's style.
func (f *figure) addLines(runs []series) error {
	if len(runs) == 0 {
		return errors.New("no data to plot")
	}
	for _, r := range runs {
		l, err := plotter.NewLine(r.xys)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		l.LineStyle = runStyle(r.run)
		f.add(r.name, l, l)
	}
	return nil
}

// saveSVG writes f to path as SVG: the plot, and its legend under it.
func saveSVG(f *figure, path string) (err error) {
	legendHeight := legendEntry*vg.Length(f.entries) + legendFontSize
	c := vgsvg.New(plotWidth, plotHeight+legendHeight)
	dc := draw.New(c)
	f.plot.Draw(draw.Crop(dc, 0, 0, legendHeight, 0))
	f.legend.Draw(draw.Crop(dc, 5*legendFontSize, 0, 0, -plotHeight))
	out, err := os.Create(path) //nolint:gosec // a path of the bench script
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = c.WriteTo(out)
	return err
}

// plotRef is a plot written for the page.
type plotRef struct {
	file    string // in the plots' directory
	title   string // the image's alternative text
	caption string // the paragraph above it
}

// plotRun names a run in a plot's legend.
type plotRun struct{ run, label string }

// writePlots draws the plots of the runs in c.dir into c.plotsDir and
// returns those it wrote; a plot with none of its runs' files is left out.
func writePlots(c config, rs runs) ([]plotRef, error) {
	if err := os.MkdirAll(c.plotsDir, 0o750); err != nil {
		return nil, err
	}
	openLabel := fmt.Sprintf("group commit on, hot, open loop at %.0f/s", rs["batched-hot-open"].Settings.Rate)
	var refs []plotRef
	latency := []plotRun{
		{"batched-hot", "group commit on, seed burst"}, {"batched-hot-sustained", "group commit on, hot"},
		{"batched-hot-open", openLabel}, {"batched-spread", "group commit on, spread"},
		{"unbatched-hot-sustained", "group commit off, hot"}, {"unbatched-spread", "group commit off, spread"},
		{"trivial-hot-sustained", "trivial handler, hot"},
	}
	if runs := collect(c.dir, latency, ".hgrm", readHgrm); len(runs) > 0 {
		p, err := latencyPlot("Latency by percentile (HdrHistogram)", runs)
		if err := save(p, err, c.plotsDir, "latency.svg"); err != nil {
			return nil, err
		}
		refs = append(refs, plotRef{"latency.svg", "Latency by percentile of each run",
			"Latency by percentile of each run, from the load tool's HDR histograms (`-hgrm`): the x axis is 1/(1−percentile) on a log scale, as HdrHistogram's plotter draws it, so the tail has room. Closed-loop runs with 1,000 in flight sit near Little's law (1,000 / throughput); the open-loop run measures from each request's due time."})
	}
	pgHot, pgSpread := rs["pg-hot"], rs["pg-spread"]
	for _, t := range []struct {
		file, title string
		runs        []plotRun
		refs        []reference
	}{
		{"throughput-hot.svg", "Hot user: requests per second", []plotRun{
			{"batched-hot-sustained", "group commit on, hot"}, {"batched-hot-open", openLabel}, {"unbatched-hot-sustained", "group commit off, hot"},
		}, []reference{{"target: 8 × pgbench hot row", 8 * pgHot.RPS}, {"pgbench hot row", pgHot.RPS}}},
		{"throughput-spread.svg", "Spread over many users: requests per second", []plotRun{
			{"batched-spread", "group commit on, spread"}, {"unbatched-spread", "group commit off, spread"},
		}, []reference{{"target: 1.5 × pgbench spread", 1.5 * pgSpread.RPS}, {"pgbench spread", pgSpread.RPS}}},
	} {
		runs := collect(c.dir, t.runs, ".timeline.csv", readTimeline)
		if len(runs) == 0 {
			continue
		}
		var lines []reference
		for _, r := range t.refs {
			if r.value > 0 {
				lines = append(lines, r)
			}
		}
		p, err := throughputPlot(t.title, runs, lines)
		if err := save(p, err, c.plotsDir, t.file); err != nil {
			return nil, err
		}
		refs = append(refs, plotRef{t.file, t.title + " over time",
			t.title + ", second by second (`-timeline`), with the targets as dashed lines."})
	}
	return refs, nil
}

// collect reads the file NAME+ext of each run in dir with read; runs
// whose file is missing or unreadable are left out.
func collect(dir string, want []plotRun, ext string, read func(string) (plotter.XYs, error)) []series {
	var out []series
	for _, r := range want {
		xys, err := read(filepath.Join(dir, r.run+ext))
		if err == nil && len(xys) > 0 {
			out = append(out, series{name: r.label, run: r.run, xys: xys})
		}
	}
	return out
}

// save writes p (unless making it failed with err) to dir/file.
func save(p *figure, err error, dir, file string) error {
	if err == nil {
		err = saveSVG(p, filepath.Join(dir, file))
	}
	if err != nil {
		return fmt.Errorf("plot %s: %w", file, err)
	}
	return nil
}
