package main

import (
	"context"
	"sync"
	"time"
)

// backlogSampleTimeout bounds one /readyz read of the backlog sampler; a
// read still waiting then is skipped, not counted.
const backlogSampleTimeout = 2 * time.Second

// backlogStats is what the backlog sampler saw of the relay's outbox
// backlog during a load loop: the most rows waiting and the oldest
// waiting row's greatest age, over Samples reads of /readyz.
type backlogStats struct {
	Samples          int     `json:"samples"`
	MaxPending       int64   `json:"max_pending"`
	MaxOldestAgeSecs float64 `json:"max_oldest_pending_age_seconds"`
}

// add counts one reading of the backlog; it reports whether the reading
// had one: a relay that is enabled and has read its backlog at least once
// (backlogAt set).
func (s *backlogStats) add(r relayState) bool {
	if !r.Enabled || r.OldestPendingAgeSeconds == nil || r.BacklogAt == nil || r.BacklogAt.IsZero() {
		return false
	}
	s.Samples++
	s.MaxPending = max(s.MaxPending, r.Pending)
	s.MaxOldestAgeSecs = max(s.MaxOldestAgeSecs, *r.OldestPendingAgeSeconds)
	return true
}

// watchBacklog reads GET /readyz once before it returns, then every
// e.backlogEvery, until the returned function is called; that function
// reads it once more (the backlog tends to peak as the load ends) and
// returns what was seen, or nil when no reading showed a backlog (the
// relay is off in the server under test, or the server shows none). The
// reads are not part of the measured load; one that fails is skipped.
func (e *env) watchBacklog(ctx context.Context) (stop func() *backlogStats) {
	var (
		mu    sync.Mutex
		stats backlogStats
		wg    sync.WaitGroup
	)
	sample := func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, backlogSampleTimeout)
		defer cancel()
		if r, err := e.readRelay(ctx); err == nil {
			mu.Lock()
			stats.add(r)
			mu.Unlock()
		}
	}
	sample(ctx)
	bctx, cancel := context.WithCancel(ctx)
	wg.Go(func() {
		t := time.NewTicker(e.backlogEvery)
		defer t.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-t.C:
				sample(bctx)
			}
		}
	})
	return func() *backlogStats {
		cancel()
		wg.Wait()
		sample(ctx)
		if stats.Samples == 0 {
			return nil
		}
		return &stats
	}
}
