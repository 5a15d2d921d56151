package main

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// idleBuilds is what the builds on the idle database measured.
type idleBuilds struct {
	users   int64
	seconds []float64 // each build's BuildTime
	// heapBaseline is HeapInuse after a GC before the first build;
	// heapPeak the highest HeapInuse sampled during the builds.
	heapBaseline, heapPeak uint64
	// allocated is the bytes allocated per build (garbage included).
	allocated uint64
}

// heapSampleEvery is how often the heap is sampled during the builds.
const heapSampleEvery = 50 * time.Millisecond

// buildIdle makes n checkpoints one after the other on the idle database,
// sampling the Go heap (runtime.MemStats.HeapInuse) every 50 ms meanwhile.
func buildIdle(ctx context.Context, l *ledger.Ledger, n int) (idleBuilds, error) {
	var b idleBuilds
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.heapBaseline, b.heapPeak = ms.HeapInuse, ms.HeapInuse
	allocBefore := ms.TotalAlloc

	var peak atomic.Uint64
	peak.Store(ms.HeapInuse)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(heapSampleEvery)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	})
	var err error
	for range n {
		var c ledger.Checkpoint
		if c, err = l.MakeCheckpoint(ctx); err != nil {
			break
		}
		b.users = c.Users
		b.seconds = append(b.seconds, c.BuildTime.Seconds())
	}
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	b.heapPeak = max(peak.Load(), ms.HeapInuse)
	if len(b.seconds) > 0 {
		b.allocated = (ms.TotalAlloc - allocBefore) / uint64(len(b.seconds))
	}
	return b, err
}

// writeLoad is what a write load measured.
type writeLoad struct {
	writes, errors int64
	seconds        float64
	latencies      []time.Duration // every write's, sorted
	firstErr       error
}

func (w writeLoad) perSecond() float64 { return float64(w.writes) / w.seconds }

// quantile is the latency at q (0..1) in milliseconds; 0 without writes.
func (w writeLoad) quantile(q float64) float64 {
	if len(w.latencies) == 0 {
		return 0
	}
	i := min(int(q*float64(len(w.latencies))), len(w.latencies)-1)
	return float64(w.latencies[i].Microseconds()) / 1000
}

// load runs writers goroutines for d, each posting deposits of 0.01 to a
// random user of 1..users through l (group commit), one at a time.
func load(ctx context.Context, l *ledger.Ledger, users int64, writers int, d time.Duration) writeLoad {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		out writeLoad
		wg  sync.WaitGroup
	)
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(w))) //nolint:gosec // a load pattern, not a secret
			var lat []time.Duration
			var errs int64
			var firstErr error
			for ctx.Err() == nil {
				t0 := time.Now()
				_, err := l.PostEntry(ctx, ledger.Change{UserID: 1 + rng.Int64N(users), Amount: money.Cents(1)})
				switch {
				case err == nil:
					lat = append(lat, time.Since(t0))
				case ctx.Err() == nil: // a write cut off by the end of the run is not a failure
					errs++
					firstErr = firstOf(firstErr, err)
				}
			}
			mu.Lock()
			out.latencies = append(out.latencies, lat...)
			out.errors += errs
			out.firstErr = firstOf(out.firstErr, firstErr)
			mu.Unlock()
		})
	}
	wg.Wait()
	out.seconds = time.Since(start).Seconds()
	out.writes = int64(len(out.latencies))
	slices.Sort(out.latencies)
	return out
}

// firstOf is a if set, else b.
func firstOf(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// loadedBuilds is what builds run back to back under a write load measured.
type loadedBuilds struct {
	load    writeLoad
	seconds []float64 // each build's BuildTime
	// coverage is the share of the load's time during which a build ran.
	coverage float64
	err      error
}

// buildUnderLoad starts building checkpoints back to back, then, once the
// first build has had a moment to take its snapshot, runs the write load
// for d; the builds go on until the load ends (the last one is let
// finish).
func buildUnderLoad(ctx context.Context, l *ledger.Ledger, users int64, writers int, d time.Duration) loadedBuilds {
	var (
		out        loadedBuilds
		loadDone   atomic.Bool
		wg         sync.WaitGroup
		intervals  [][2]time.Time // read after wg.Wait
		loadWindow [2]time.Time
	)
	wg.Go(func() {
		for !loadDone.Load() && ctx.Err() == nil {
			t0 := time.Now()
			c, err := l.MakeCheckpoint(ctx)
			if err != nil {
				out.err = err
				return
			}
			out.seconds = append(out.seconds, c.BuildTime.Seconds())
			intervals = append(intervals, [2]time.Time{t0, time.Now()})
		}
	})
	time.Sleep(100 * time.Millisecond)
	loadWindow[0] = time.Now()
	out.load = load(ctx, l, users, writers, d)
	loadWindow[1] = time.Now()
	loadDone.Store(true)
	wg.Wait()
	var covered time.Duration
	for _, iv := range intervals {
		from, to := later(iv[0], loadWindow[0]), earlier(iv[1], loadWindow[1])
		if to.After(from) {
			covered += to.Sub(from)
		}
	}
	out.coverage = covered.Seconds() / loadWindow[1].Sub(loadWindow[0]).Seconds()
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
