package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// second is one interval of a run's timeline: the requests that completed
// in [T, T+Seconds) after the load began, and the p99 of their latencies.
// Seconds is 1 except for the last interval, which ends with the run.
type second struct {
	T        int     `json:"t"`
	Seconds  float64 `json:"seconds"`
	Requests int64   `json:"requests"`
	RPS      float64 `json:"rps"`
	P99MS    float64 `json:"p99_ms"`
}

// timeline counts completed requests per second of a run. Only the
// current second's histogram is kept: a second is summed up when the first
// request of a later one completes, so memory does not grow with the
// run's length. Its methods are safe for concurrent use.
type timeline struct {
	mu    sync.Mutex
	start time.Time
	cur   int // the second being counted
	count int64
	hist  *hdrhistogram.Histogram // latencies completed in second cur
	done  []second
}

func newTimeline(start time.Time) *timeline {
	return &timeline{start: start, hist: hdrhistogram.New(histLowest, histHighest, histDigits)}
}

// Record counts a request that completed at `at` after latency d. A
// request that reaches the lock after a later second was opened (they
// race by microseconds) is counted in the open one.
func (t *timeline) Record(at time.Time, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := int(at.Sub(t.start) / time.Second); s > t.cur {
		t.closeSecond(1)
		for t.cur++; t.cur < s; t.cur++ {
			t.done = append(t.done, second{T: t.cur, Seconds: 1})
		}
	}
	t.count++
	_ = t.hist.RecordValue(toMicros(d)) // in range by construction
}

// closeSecond sums up second cur, which lasted width seconds, and resets
// the counters.
func (t *timeline) closeSecond(width float64) {
	s := second{T: t.cur, Seconds: width, Requests: t.count}
	if width > 0 {
		s.RPS = float64(t.count) / width
	}
	if t.count > 0 {
		s.P99MS = float64(t.hist.ValueAtQuantile(99)) / 1000
	}
	t.done = append(t.done, s)
	t.count = 0
	t.hist.Reset()
}

// Finish closes the intervals up to end and returns them all, in order.
// A last interval shorter than a second is left out when nothing
// completed in it. Record must not be called after Finish.
func (t *timeline) Finish(end time.Time) []second {
	t.mu.Lock()
	defer t.mu.Unlock()
	total := end.Sub(t.start)
	for {
		left := (total - time.Duration(t.cur)*time.Second).Round(time.Millisecond)
		width := max(min(left.Seconds(), 1), 0)
		if t.count == 0 && width < 1 {
			return t.done
		}
		t.closeSecond(width)
		t.cur++
	}
}

// writeTimelineCSV writes the timeline as CSV with a header line.
func writeTimelineCSV(w io.Writer, secs []second) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "t,seconds,requests,rps,p99_ms")
	for _, s := range secs {
		fmt.Fprintf(bw, "%d,%s,%d,%s,%s\n", s.T, strconv.FormatFloat(s.Seconds, 'f', -1, 64), s.Requests,
			strconv.FormatFloat(s.RPS, 'f', 1, 64), strconv.FormatFloat(s.P99MS, 'f', 3, 64))
	}
	return bw.Flush()
}
