package main

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	apiclient "github.com/ledgerd/ledgerd/client"
)

// env is what a scenario runs with.
type env struct {
	opts options
	// client sends the measured load: one request per operation, as is,
	// each answer counted (see client.go).
	client *client
	// api makes the set-up and check calls through ledgerd's Go client,
	// which retries transport errors, 429 and 503 with the same
	// Idempotency-Key: none of them is measured. timed is the same client
	// without retries, for the few calls whose time is reported, so that a
	// retry never hides in a figure.
	api, timed *apiclient.Client
	stderr     io.Writer
	clock      clock
	// widthFunc is the width of the terminal on stderr, in columns; nil
	// when stderr is not a terminal, and then no progress is drawn.
	widthFunc func() int
	// backlogEvery is how often the relay's backlog is sampled during a
	// load loop.
	backlogEvery time.Duration
}

func newEnv(o options, stderr io.Writer) (*env, error) {
	c := newClient(o)
	api, err := newAPIClient(o, c.http, apiclient.DefaultRetryPolicy)
	if err != nil {
		return nil, err
	}
	timed, err := newAPIClient(o, c.http, apiclient.RetryPolicy{MaxAttempts: 1})
	if err != nil {
		return nil, err
	}
	return &env{opts: o, client: c, api: api, timed: timed, stderr: stderr, clock: wallClock{},
		widthFunc: terminalWidthFunc(stderr), backlogEvery: time.Second}, nil
}

func (e *env) close() { e.client.close() }

// progress reports whether progress is drawn on stderr.
func (e *env) progress() bool { return e.widthFunc != nil }

// phase is the measured part of a run: the load loop.
type phase struct {
	Requests int64
	Elapsed  time.Duration
	// CPU is the user+system time of this process during the phase.
	CPU      time.Duration
	Outcomes map[string]int64
	Latency  *histogram
	// Rate is -rate, the open loop's requests per second; 0 for a closed
	// loop.
	Rate float64
	// StartDelay is, in the open loop, how long after its due time each
	// request was sent; nil in a closed loop.
	StartDelay *histogram
	Timeline   []second
	// Backlog is the relay's backlog seen during the phase; nil when the
	// server did not show one.
	Backlog *backlogStats
}

// count is how many requests got exactly this outcome key.
func (p *phase) count(outcome string) int64 { return p.Outcomes[outcome] }

// meter follows a phase while it runs, for the progress bar.
type meter struct {
	done    atomic.Int64 // requests answered
	failed  atomic.Int64 // 5xx and transport errors
	refused atomic.Int64 // 4xx
}

// worker runs operations one after the other; each worker owns its tally
// and random source, so the hot path takes no lock but the histograms'.
type worker struct {
	id         int
	rng        *rand.Rand
	client     *client
	clock      clock
	latency    *histogram
	startDelay *histogram // open loop only
	timeline   *timeline
	meter      *meter
	tally      map[string]int64
	// due is the due time of the operation being run, in the open loop;
	// its first request is measured from it. Zero in a closed loop.
	due time.Time
}

// send sends one measured request and records its latency and outcome.
func (w *worker) send(ctx context.Context, method, path string, body []byte) (answer, time.Duration) {
	return w.timed(func() answer { return w.client.doTo(ctx, w.client.target(w.id), method, path, body) })
}

// timed runs one measured request, do, and records its latency and
// outcome. The latency runs from now in a closed loop; in the open loop,
// the operation's first request is measured from its due time, so that a
// late start (every worker was busy) counts as waiting, as a user sees it.
func (w *worker) timed(do func() answer) (answer, time.Duration) {
	start := w.clock.Now()
	if !w.due.IsZero() {
		w.startDelay.Record(start.Sub(w.due))
		start, w.due = w.due, time.Time{}
	}
	a := do()
	end := w.clock.Now()
	d := end.Sub(start)
	w.latency.Record(d)
	w.timeline.Record(end, d)
	w.tally[a.outcome()]++
	switch {
	case a.Err != nil || a.Status >= 500:
		w.meter.failed.Add(1)
	case a.Status >= 400:
		w.meter.refused.Add(1)
	}
	w.meter.done.Add(1)
	return a, d
}

// loop runs op for every index f hands out, until f is done or ctx ends.
func (w *worker) loop(ctx context.Context, f *feed, op func(ctx context.Context, w *worker, i int64)) {
	for {
		i, due, ok := f.take(ctx, w.clock)
		if !ok {
			return
		}
		w.due = due
		op(ctx, w, i)
	}
}

// newRand is a worker's random source. The load pattern needs no
// unpredictability, only independence between workers.
func newRand(seed uint64, id int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(id))) //nolint:gosec // a load pattern, not a secret
}

// drive runs op(w, i) for i = 0, 1, 2… on -c workers until b.n operations
// have started, b.d has passed (operations in flight then finish), or ctx
// ends. With -rate, operation i is due at i/rate after the start (the open
// loop; see feed), and b.d bounds the due times. Every request that op
// sends with w.send is measured. Meanwhile the relay's backlog is sampled
// from /readyz.
func (e *env) drive(ctx context.Context, b bound, op func(ctx context.Context, w *worker, i int64)) *phase {
	var (
		m       meter
		mu      sync.Mutex
		wg      sync.WaitGroup
		latency = newHistogram()
		total   = map[string]int64{}
		seed    = uint64(time.Now().UnixNano()) //nolint:gosec // a seed, not a size
		delay   *histogram
	)
	if e.opts.Rate > 0 {
		delay = newHistogram()
	}
	stopBacklog := e.watchBacklog(ctx)
	cpu0, start := cpuTime(), e.clock.Now()
	f := newFeed(b, start, float64(e.opts.Rate))
	tl := newTimeline(start)
	stopProgress := e.startProgress(&m, b, start)
	for id := range e.opts.C {
		wg.Go(func() {
			w := &worker{id: id, rng: newRand(seed, id), client: e.client, clock: e.clock, latency: latency,
				startDelay: delay, timeline: tl, meter: &m, tally: map[string]int64{}}
			w.loop(ctx, f, op)
			mu.Lock()
			for k, v := range w.tally {
				total[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	end := e.clock.Now()
	elapsed, cpu := end.Sub(start), cpuTime()-cpu0
	stopProgress()
	return &phase{Requests: m.done.Load(), Elapsed: elapsed, CPU: cpu, Outcomes: total, Latency: latency,
		Rate: float64(e.opts.Rate), StartDelay: delay, Timeline: tl.Finish(end), Backlog: stopBacklog()}
}

// parallel runs fn(i) for i in [0, n) on at most workers goroutines and
// returns the first error; it stops starting new calls after an error.
// Set-up and checks use it, outside the measured load.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
