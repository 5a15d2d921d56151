package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHistogramQuantiles compares the histogram's quantiles with the exact
// ones of a sorted slice, for latencies spread log-uniformly from 1 µs to
// 60 s: each must be within 1%.
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
		require.InEpsilon(t, float64(want), float64(got), 0.01, "q=%v: want %v, got %v", q, want, got)
	}
	require.Equal(t, values[n-1].Truncate(time.Microsecond), h.Max())
}

// TestHistogramBuckets checks that the buckets tile the range with no gap
// or overlap and are at most 1/128 of their lower bound wide.
func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	prev := -1
	for v := int64(0); v <= maxTrackable; v += 1 + v/1000 {
		i := bucketIndex(v)
		require.GreaterOrEqual(t, i, prev, "v=%d", v)
		require.Less(t, i, numBuckets)
		lower, width := bucketBounds(i)
		require.True(t, lower <= v && v < lower+width, "v=%d not in bucket %d [%d, %d)", v, i, lower, lower+width)
		if lower >= subBuckets {
			require.LessOrEqual(t, float64(width)/float64(lower), 1.0/subBuckets)
		}
		prev = i
	}
	for i := 1; i < numBuckets; i++ {
		lower, _ := bucketBounds(i)
		prevLower, prevWidth := bucketBounds(i - 1)
		require.Equal(t, prevLower+prevWidth, lower, "bucket %d", i)
	}
	require.Equal(t, numBuckets-1, bucketIndex(maxTrackable))
}

// TestHistogramEdges covers the empty histogram, values out of range and
// concurrent recording.
func TestHistogramEdges(t *testing.T) {
	t.Parallel()
	h := newHistogram()
	require.Zero(t, h.Quantile(0.5))
	require.Zero(t, h.Max())

	h.Record(-time.Second)   // counted as 0
	h.Record(10 * time.Hour) // past the range: last bucket, exact max
	require.Equal(t, 10*time.Hour, h.Max())
	require.Equal(t, time.Duration(0), h.Quantile(0.5))
	require.Equal(t, 10*time.Hour, h.Quantile(1))

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
