package main

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// env is what a scenario runs with.
type env struct {
	opts     options
	client   *client
	stderr   io.Writer
	progress bool // draw a progress bar on stderr
}

func newEnv(o options, stderr io.Writer) *env {
	return &env{opts: o, client: newClient(o), stderr: stderr, progress: isTerminal(stderr)}
}

func (e *env) close() { e.client.close() }

// phase is the measured part of a run: the load loop.
type phase struct {
	Requests int64
	Elapsed  time.Duration
	// CPU is the user+system time of this process during the phase.
	CPU      time.Duration
	Outcomes map[string]int64
	Latency  *histogram
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
// and random source, so the hot path takes no lock.
type worker struct {
	id      int
	rng     *rand.Rand
	client  *client
	latency *histogram
	meter   *meter
	tally   map[string]int64
}

// send sends one measured request and records its latency and outcome.
func (w *worker) send(ctx context.Context, method, path string, body []byte) (answer, time.Duration) {
	start := time.Now()
	a := w.client.do(ctx, method, path, body)
	d := time.Since(start)
	w.latency.Record(d)
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

// newRand is a worker's random source. The load pattern needs no
// unpredictability, only independence between workers.
func newRand(seed uint64, id int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(id))) //nolint:gosec // a load pattern, not a secret
}

// drive runs op(w, i) for i = 0, 1, 2… on -c workers until b.n operations
// have started, b.d has passed (operations in flight then finish), or ctx
// ends. Every request that op sends with w.send is measured.
func (e *env) drive(ctx context.Context, b bound, op func(ctx context.Context, w *worker, i int64)) *phase {
	var (
		m       meter
		next    atomic.Int64
		mu      sync.Mutex
		wg      sync.WaitGroup
		latency = newHistogram()
		total   = map[string]int64{}
		seed    = uint64(time.Now().UnixNano()) //nolint:gosec // a seed, not a size
	)
	cpu0, start := cpuTime(), time.Now()
	var deadline time.Time
	if b.d > 0 {
		deadline = start.Add(b.d)
	}
	stopProgress := e.startProgress(&m, b, start)
	for id := range e.opts.C {
		wg.Go(func() {
			w := &worker{id: id, rng: newRand(seed, id), client: e.client, latency: latency, meter: &m, tally: map[string]int64{}}
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if (b.n > 0 && i >= b.n) || (!deadline.IsZero() && time.Now().After(deadline)) {
					break
				}
				op(ctx, w, i)
			}
			mu.Lock()
			for k, v := range w.tally {
				total[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	stopProgress()
	return &phase{Requests: m.done.Load(), Elapsed: elapsed, CPU: cpu, Outcomes: total, Latency: latency}
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
