package main

import (
	"context"
	"net/http"
	"slices"
	"time"

	apiclient "github.com/ledgerd/ledgerd/client"
)

// historyProbes is how many point-in-time balances history-reads asks for.
const historyProbes = 20

// runHistoryReads measures the reads of an existing user's history, however
// long: -n first pages of 50 entries with -c in flight (the report's rate
// and latency), then balances at an instant early in its history, one at a
// time, and one /verify of its whole history, each timed.
func runHistoryReads(ctx context.Context, e *env) (*result, error) {
	id := e.opts.User
	u, err := e.api.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	page := userPath(id, "/transactions?limit=50")
	b := e.opts.countBound()
	p := e.drive(ctx, b, func(ctx context.Context, w *worker, _ int64) {
		w.send(ctx, http.MethodGet, page, nil)
	})

	// An instant one second into the user's life: deep in a long history.
	// These calls are timed: they go without retries (e.timed).
	at := u.CreatedAt.Add(time.Second)
	probes := make([]time.Duration, historyProbes)
	var early apiclient.BalanceAt
	for i := range probes {
		t0 := time.Now()
		if early, err = e.timed.GetBalanceAt(ctx, id, at); err != nil {
			return nil, err
		}
		probes[i] = time.Since(t0)
	}
	slices.Sort(probes)
	t0 := time.Now()
	v, err := e.timed.VerifyUser(ctx, id)
	if err != nil {
		return nil, err
	}
	verifyTook := time.Since(t0)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	ok := p.count("200")
	return &result{Bound: b, Phase: p, Details: []detail{
		{"user_id", id},
		{"entries", v.Entries},
		{"balance_at_early_seq", early.Seq},
		{"balance_at_p50_ms", ms(probes[len(probes)/2])},
		{"balance_at_max_ms", ms(probes[len(probes)-1])},
		{"verify_ms", ms(verifyTook)},
	}, Invariants: []invariant{
		check("pages", ok == p.Requests, "%d of %d first pages answered 200", ok, p.Requests),
		check("early_balance", early.Seq < v.Entries, "the balance at %s is at seq %d of %d", at.UTC().Format(time.RFC3339Nano), early.Seq, v.Entries),
		verifyCheck(v),
	}}, nil
}
