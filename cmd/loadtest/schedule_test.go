package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestParseRate checks the forms -rate takes and the ones it refuses.
func TestParseRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"5000": 5000, "5000/s": 5000, "0.5/s": 0.5, " 12/s": 12, "1e3": 1000} {
		got, err := parseRate(in)
		require.NoError(t, err, in)
		require.InDelta(t, want, got, 0, in)
	}
	for _, in := range []string{"", "/s", "0", "0/s", "-5", "abc", "5000/m", "5000 /s/s", "NaN", "inf", "2000000"} {
		_, err := parseRate(in)
		require.ErrorIs(t, err, errRate, "%q", in)
	}
	var r rateFlag
	require.Empty(t, r.String())
	require.NoError(t, r.Set("250/s"))
	require.Equal(t, "250/s", r.String())
}

// TestScheduleDue checks the due times of the open loop: i/rate after the
// start, computed from the start (no drift over a million requests), and
// bounded by the count and by the duration.
func TestScheduleDue(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	s := newSchedule(start, 3, bound{})
	for i, want := range []time.Duration{0, 333_333_333, 666_666_666, time.Second, 1_333_333_333} {
		due, ok := s.due(int64(i))
		require.True(t, ok)
		require.Equal(t, start.Add(want), due, "request %d", i)
	}
	due, ok := s.due(3_000_000)
	require.True(t, ok)
	require.Equal(t, start.Add(1_000_000*time.Second), due, "no drift")

	byCount := newSchedule(start, 1000, bound{n: 5})
	_, ok = byCount.due(4)
	require.True(t, ok)
	_, ok = byCount.due(5)
	require.False(t, ok)

	byTime := newSchedule(start, 1000, bound{d: 200 * time.Millisecond})
	due, ok = byTime.due(199)
	require.True(t, ok)
	require.Equal(t, start.Add(199*time.Millisecond), due)
	_, ok = byTime.due(200)
	require.False(t, ok, "nothing is due at the end")

	both := newSchedule(start, 1000, bound{n: 50, d: time.Second})
	_, ok = both.due(50)
	require.False(t, ok, "the first bound reached wins")
}

// fakeClock is a clock that moves only when told to, or when a worker
// sleeps until a later time; for one goroutine.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) bool {
	if t.After(c.now) {
		c.now = t
	}
	return ctx.Err() == nil
}

// simulate runs one worker (-c 1) over the feed of b at rate (0: closed
// loop) on a fake clock, each request taking service. It returns, per
// request, when it was sent (from the start), its latency and its start
// delay.
func simulate(t *testing.T, b bound, rate float64, service time.Duration) (sent, latency []time.Duration, w *worker) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)}
	start := clk.now
	w = &worker{clock: clk, latency: newHistogram(), timeline: newTimeline(start), meter: &meter{}, tally: map[string]int64{}}
	if rate > 0 {
		w.startDelay = newHistogram()
	}
	w.loop(context.Background(), newFeed(b, start, rate), func(_ context.Context, w *worker, _ int64) {
		sent = append(sent, clk.now.Sub(start))
		_, d := w.timed(func() answer {
			clk.now = clk.now.Add(service)
			return answer{Status: 200}
		})
		latency = append(latency, d)
	})
	return sent, latency, w
}

func millis(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

// TestOpenLoop checks coordinated omission on a fake clock with one
// worker: in the open loop a request waits for its due time, and when the
// worker is still busy it starts late and its latency counts from its due
// time; the closed loop measures each request from its own send.
func TestOpenLoop(t *testing.T) {
	t.Parallel()
	t.Run("under capacity: sent on schedule", func(t *testing.T) {
		t.Parallel()
		sent, latency, w := simulate(t, bound{n: 5}, 10, 30*time.Millisecond)
		require.Equal(t, millis(0, 100, 200, 300, 400), sent)
		require.Equal(t, millis(30, 30, 30, 30, 30), latency)
		require.Zero(t, w.startDelay.Max())
	})
	t.Run("over capacity: late starts count", func(t *testing.T) {
		t.Parallel()
		sent, latency, w := simulate(t, bound{n: 5}, 10, 250*time.Millisecond)
		require.Equal(t, millis(0, 250, 500, 750, 1000), sent, "the next request goes as soon as the worker is free")
		require.Equal(t, millis(250, 400, 550, 700, 850), latency, "due every 100 ms, measured from the due time")
		require.Equal(t, 600*time.Millisecond, w.startDelay.Max())
		require.Equal(t, 850*time.Millisecond, w.latency.Max())
	})
	t.Run("closed loop hides the wait", func(t *testing.T) {
		t.Parallel()
		sent, latency, w := simulate(t, bound{n: 5}, 0, 250*time.Millisecond)
		require.Equal(t, millis(0, 250, 500, 750, 1000), sent)
		require.Equal(t, millis(250, 250, 250, 250, 250), latency)
		require.Nil(t, w.startDelay)
	})
	t.Run("bounded by duration", func(t *testing.T) {
		t.Parallel()
		sent, _, w := simulate(t, bound{d: time.Second}, 10, 0)
		require.Equal(t, millis(0, 100, 200, 300, 400, 500, 600, 700, 800, 900), sent)
		require.Equal(t, int64(10), w.meter.done.Load())
		require.Equal(t, map[string]int64{"200": 10}, w.tally)
	})
	t.Run("closed loop bounded by duration", func(t *testing.T) {
		t.Parallel()
		sent, _, _ := simulate(t, bound{d: time.Second}, 0, 300*time.Millisecond)
		require.Equal(t, millis(0, 300, 600, 900), sent, "a request may start until the deadline")
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, ok := newFeed(bound{n: 5}, time.Now(), 10).take(ctx, &fakeClock{})
		require.False(t, ok)
	})
}

// TestOpenLoopCap runs the open loop for real against a server that holds
// every write until the test lets them go: -c caps the requests in flight,
// and the requests due while the cap was reached report a latency that
// counts their wait, as the schedule says (a closed loop would report
// them as fast). The bounds follow from causality, not from timing: the
// last request was due at most 19 ms after the first one arrived, and it
// could not be answered before the gate opened.
func TestOpenLoopCap(t *testing.T) {
	t.Parallel()
	var (
		mu            sync.Mutex
		inFlight, top int
		arrived       = make(chan time.Time, 100)
		gate          = make(chan struct{})
	)
	url := startTrivial(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPut {
				next.ServeHTTP(w, r)
				return
			}
			mu.Lock()
			inFlight++
			top = max(top, inFlight)
			mu.Unlock()
			arrived <- time.Now()
			<-gate
			next.ServeHTTP(w, r)
			mu.Lock()
			inFlight--
			mu.Unlock()
		})
	})
	type outcome struct {
		rep jsonReport
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		rep, err := runJSON(t, url, "-scenario", "hot-sustained", "-rate", "1000/s", "-n", "20", "-c", "4")
		done <- outcome{rep, err}
	}()
	first := <-arrived
	for range 3 {
		<-arrived
	}
	time.Sleep(200 * time.Millisecond) // a wait long enough to see; the assertions below do not depend on its length
	opened := time.Now()
	close(gate)
	o := <-done
	require.NoError(t, o.err)
	requireAllHold(t, o.rep)
	require.Equal(t, int64(20), o.rep.Requests)
	require.Equal(t, 4, top, "no more than -c in flight")

	held := float64(opened.Sub(first)-19*time.Millisecond) / float64(time.Millisecond)
	require.Greater(t, held, 150.0)
	// Every request was due before the gate opened and answered after it,
	// so even the median counts the wait; a closed loop would have sent 16
	// of the 20 after the gate opened and measured them as fast.
	require.GreaterOrEqual(t, o.rep.LatencyMS["p50"], held)
	require.GreaterOrEqual(t, o.rep.StartDelayMS["max"], held)
}
