package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear, in the manner of HdrHistogram: values are
// whole microseconds; below 2^(subBits+1) every value has its own bucket,
// and above, each power-of-two range is split into 2^subBits equal buckets.
// A bucket is then at most 1/128 of its lower bound wide, and a quantile,
// reported as its bucket's midpoint, is within 0.4% of the true sample.
const (
	subBits    = 7
	subBuckets = 1 << subBits // 128
	// maxTrackable is the largest value with its own bucket, 2^26−1 µs
	// (about 67 s); larger values are counted in the last bucket, and the
	// exact maximum is kept aside.
	maxTrackable = 1<<26 - 1
	numBuckets   = (26-subBits-1)*subBuckets + 2*subBuckets // index(maxTrackable)+1 = 2560
)

// histogram counts latencies from 1 µs to about 67 s with at most 1%
// relative error. Record is safe for concurrent use and lock-free.
type histogram struct {
	counts [numBuckets]atomic.Int64
	total  atomic.Int64
	max    atomic.Int64 // µs, exact
	min    atomic.Int64 // µs, exact; valid when total > 0
}

func newHistogram() *histogram {
	h := &histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketIndex is the bucket of v µs, 0 ≤ v ≤ maxTrackable.
func bucketIndex(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1) // ≥ 0 for v ≥ 128
	return shift*subBuckets + int(v>>shift)        // v>>shift is in [128, 255]
}

// bucketBounds is the lowest value of bucket i and the bucket's width.
func bucketBounds(i int) (lower, width int64) {
	if i < 2*subBuckets {
		return int64(i), 1
	}
	shift := i/subBuckets - 1
	mantissa := int64(i%subBuckets + subBuckets)
	return mantissa << shift, 1 << shift
}

// Record adds one latency.
func (h *histogram) Record(d time.Duration) {
	v := max(d.Microseconds(), 0)
	h.counts[bucketIndex(min(v, maxTrackable))].Add(1)
	h.total.Add(1)
	for m := h.max.Load(); v > m && !h.max.CompareAndSwap(m, v); m = h.max.Load() {
	}
	for m := h.min.Load(); v < m && !h.min.CompareAndSwap(m, v); m = h.min.Load() {
	}
}

// Count is the number of recorded values.
func (h *histogram) Count() int64 { return h.total.Load() }

// Max is the largest recorded value, exactly; 0 when empty.
func (h *histogram) Max() time.Duration {
	return time.Duration(h.max.Load()) * time.Microsecond
}

// Quantile is the value at quantile q (0 < q ≤ 1): the smallest recorded
// value v such that at least q of the values are ≤ v, up to the bucket's
// resolution. It is 0 when the histogram is empty.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := max(int64(math.Ceil(q*float64(n))), 1)
	if rank >= n {
		return h.Max()
	}
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lower, width := bucketBounds(i)
			v := lower + width/2
			v = min(max(v, h.min.Load()), h.max.Load())
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}
