package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTimeline checks the per-second count: requests land in the second
// they completed in, a second with none is there with 0, the last
// interval is as long as what is left of the run, and each second has the
// p99 of its own latencies.
func TestTimeline(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	tl := newTimeline(start)
	for i := range 100 {
		tl.Record(at(time.Duration(i)*5*time.Millisecond), time.Duration(i+1)*time.Millisecond) // 100 in [0, 0.5 s): 1..100 ms
	}
	tl.Record(at(999*time.Millisecond), 7*time.Millisecond)
	tl.Record(at(2100*time.Millisecond), 40*time.Millisecond) // second 1 gets none
	tl.Record(at(2200*time.Millisecond), 40*time.Millisecond)
	tl.Record(at(1900*time.Millisecond), 3*time.Millisecond) // late to the lock: counted in second 2
	secs := tl.Finish(at(2500 * time.Millisecond))
	require.Len(t, secs, 3)
	require.InEpsilon(t, 99, secs[0].P99MS, 0.002, "the 100th of 101 latencies")
	require.InEpsilon(t, 40, secs[2].P99MS, 0.002)
	var csv bytes.Buffer
	require.NoError(t, writeTimelineCSV(&csv, secs))
	secs[0].P99MS, secs[2].P99MS = 99, 40 // to three significant digits
	require.Equal(t, []second{
		{T: 0, Seconds: 1, Requests: 101, RPS: 101, P99MS: 99},
		{T: 1, Seconds: 1},
		{T: 2, Seconds: 0.5, Requests: 3, RPS: 6, P99MS: 40},
	}, secs)
	require.Regexp(t, `^t,seconds,requests,rps,p99_ms\n0,1,101,101\.0,99\.\d{3}\n1,1,0,0\.0,0\.000\n2,0\.5,3,6\.0,40\.\d{3}\n$`, csv.String())
}

// TestTimelineEnds checks the intervals at the end of a run: an empty
// tail shorter than a second is left out, whole empty seconds are kept,
// and a run with no request has no interval.
func TestTimelineEnds(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	tl := newTimeline(start)
	tl.Record(start.Add(100*time.Millisecond), time.Millisecond)
	require.Equal(t, []second{
		{T: 0, Seconds: 1, Requests: 1, RPS: 1, P99MS: 1},
		{T: 1, Seconds: 1},
		{T: 2, Seconds: 1},
	}, tl.Finish(start.Add(3400*time.Millisecond)))

	require.Empty(t, newTimeline(start).Finish(start.Add(300*time.Millisecond)))
}
