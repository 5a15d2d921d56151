package main

import (
	"bufio"
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHistogramQuantiles compares the histogram's quantiles with the exact
// ones of a sorted slice, for latencies spread log-uniformly from 1 µs to
// 60 s: each must be within 0.2% (three significant digits).
func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200_000
	h := newHistogram()
	values := make([]time.Duration, n)
	for i := range values {
		us := math.Exp(rng.Float64() * math.Log(60e6)) // 1 µs .. 60 s
		values[i] = time.Duration(us) * time.Microsecond
		h.Record(values[i])
	}
	slices.Sort(values)
	require.Equal(t, int64(n), h.Count())
	for _, q := range []float64{0.0001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		want := values[int(math.Ceil(q*n))-1]
		got := h.Quantile(q)
		require.InEpsilon(t, float64(want), float64(got), 0.002, "q=%v: want %v, got %v", q, want, got)
	}
	require.Equal(t, values[n-1], h.Max())
	var sum time.Duration
	for _, v := range values {
		sum += v
	}
	require.InEpsilon(t, float64(sum/n), float64(h.Mean()), 0.002)
}

// TestHistogramEdges covers the empty histogram, values out of range and
// concurrent recording.
func TestHistogramEdges(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	require.Zero(t, h.Quantile(0.5))
	require.Zero(t, h.Max())

	h.Record(-time.Second)   // counted as 0
	h.Record(10 * time.Hour) // past the range: counted as an hour, exact max
	require.Equal(t, 10*time.Hour, h.Max())
	require.Equal(t, time.Duration(0), h.Quantile(0.5))
	require.Equal(t, 10*time.Hour, h.Quantile(1))
	require.InEpsilon(t, float64(time.Hour), float64(h.Quantile(0.99)), 0.002)

	c := newHistogram()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Record(3 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(8000), c.Count())
	require.Equal(t, 3*time.Millisecond, c.Quantile(0.99))
}

// hgrmLine is one data line of a .hgrm file.
type hgrmLine struct {
	valueMS, percentile float64
	count               int64
	inverse             string
}

// parseHgrm reads a .hgrm file as HdrHistogram's plotter does: a header,
// data lines of four columns, and "#[" summary lines.
func parseHgrm(tb testing.TB, b []byte) (header string, lines []hgrmLine, summary []string) {
	tb.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case header == "":
			header = line
		case strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, "#["):
			summary = append(summary, line)
		default:
			f := strings.Fields(line)
			require.Len(tb, f, 4, "line %q", line)
			v, err := strconv.ParseFloat(f[0], 64)
			require.NoError(tb, err)
			p, err := strconv.ParseFloat(f[1], 64)
			require.NoError(tb, err)
			n, err := strconv.ParseInt(f[2], 10, 64)
			require.NoError(tb, err)
			lines = append(lines, hgrmLine{v, p, n, f[3]})
		}
	}
	return header, lines, summary
}

// TestHgrm checks the .hgrm output: the classic columns, values in
// milliseconds, percentiles and counts that only grow, the last line at
// percentile 1 with every value counted, and the summary.
func TestHgrm(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond) // 1 ms .. 1 s
	}
	var buf bytes.Buffer
	require.NoError(t, h.WriteHgrm(&buf))
	header, lines, summary := parseHgrm(t, buf.Bytes())
	require.Equal(t, []string{"Value", "Percentile", "TotalCount", "1/(1-Percentile)"}, strings.Fields(header))
	require.Greater(t, len(lines), 20)
	for i := 1; i < len(lines); i++ {
		require.GreaterOrEqual(t, lines[i].valueMS, lines[i-1].valueMS)
		require.Greater(t, lines[i].percentile, lines[i-1].percentile)
		require.GreaterOrEqual(t, lines[i].count, lines[i-1].count)
	}
	for _, l := range lines {
		if l.percentile < 1 {
			inv, err := strconv.ParseFloat(l.inverse, 64)
			require.NoError(t, err)
			// Both columns are rounded: inv to 0.005, the percentile to 5e-7.
			require.InDelta(t, 1/(1-l.percentile), inv, 0.0051+1e-6*inv*inv, "1/(1-Percentile) of %v", l.percentile)
		}
		if l.percentile == 0.5 {
			require.InEpsilon(t, 500, l.valueMS, 0.002, "the median, in milliseconds")
		}
	}
	last := lines[len(lines)-1]
	require.Equal(t, "inf", last.inverse)
	require.InDelta(t, 1.0, last.percentile, 0)
	require.Equal(t, int64(1000), last.count)
	require.InEpsilon(t, 1000, last.valueMS, 0.002)
	require.Len(t, summary, 3)
	require.Contains(t, summary[0], "Mean")
	require.Contains(t, summary[1], "Total count    =         1000")
}
