package main

import (
	"bufio"
	"io"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are counted in HDR histograms, with HdrHistogram's own Go
// implementation (github.com/HdrHistogram/hdrhistogram-go). It is the
// reference algorithm that load-testing tools share (wrk2, Gatling, k6's
// HDR output), kept up under the HdrHistogram organisation, and it writes
// the .hgrm percentile distribution that HdrHistogram's plotter and other
// tools read; the hand-written log-linear histogram it replaces did the
// same counting without that format or that review.
//
// Values are whole microseconds from 1 µs to an hour with three
// significant digits: a quantile is within 0.1% of the true sample. A
// value past an hour is counted as an hour, and the exact maximum is kept
// aside.
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

// hgrmTicksPerHalfDistance is the number of percentile lines the .hgrm
// output prints per halving of the distance to 100%, as HdrHistogram's
// Java outputPercentileDistribution does by default.
const hgrmTicksPerHalfDistance = 5

// histogram counts latencies. Its methods are safe for concurrent use: the
// HDR histogram itself is not, so a mutex guards it (one short critical
// section per request, far below what a run of any rate contends on).
type histogram struct {
	mu  sync.Mutex
	h   *hdrhistogram.Histogram
	max time.Duration // exact
}

func newHistogram() *histogram {
	return &histogram{h: hdrhistogram.New(histLowest, histHighest, histDigits)}
}

// toMicros is d in whole microseconds, clamped to the histogram's range.
func toMicros(d time.Duration) int64 {
	return min(max(d.Microseconds(), 0), histHighest)
}

// Record adds one latency; a negative one counts as 0.
func (h *histogram) Record(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	_ = h.h.RecordValue(toMicros(d)) // in range by construction
	h.max = max(h.max, d)
}

// Count is the number of recorded values.
func (h *histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Max is the largest recorded value, exactly; 0 when empty.
func (h *histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.max
}

// Mean is the mean of the recorded values, to the histogram's precision.
func (h *histogram) Mean() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// Quantile is the value at quantile q (0 < q ≤ 1): the smallest recorded
// value v such that at least q of the values are ≤ v, up to the
// histogram's precision (never above the exact maximum). It is 0 when the
// histogram is empty.
func (h *histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h.TotalCount() == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	v := time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
	return min(v, h.max)
}

// WriteHgrm writes the distribution in HdrHistogram's percentile
// distribution text format (.hgrm), values in milliseconds: the columns
// Value, Percentile, TotalCount and 1/(1-Percentile), then the summary
// lines that start with "#".
func (h *histogram) WriteHgrm(w io.Writer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	bw := bufio.NewWriter(w)
	if _, err := h.h.PercentilesPrint(bw, hgrmTicksPerHalfDistance, float64(time.Millisecond/time.Microsecond)); err != nil {
		return err
	}
	return bw.Flush()
}
