package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// historyProbes is how many point-in-time balances history-reads asks for.
const historyProbes = 20

// runHistoryReads measures the reads of an existing user's history, however
// long: -n first pages of 50 entries with -c in flight (the report's rate
// and latency), then balances at an instant early in its history, one at a
// time, and one /verify of its whole history, each timed.
func runHistoryReads(ctx context.Context, e *env) (*result, error) {
	id := e.opts.User
	var u userState
	if err := e.client.call(ctx, http.MethodGet, userPath(id, ""), nil, http.StatusOK, &u); err != nil {
		return nil, err
	}
	created, err := time.Parse(time.RFC3339Nano, u.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("user %d: createdAt %q: %w", id, u.CreatedAt, err)
	}
	page := userPath(id, "/transactions?limit=50")
	b := e.opts.countBound()
	p := e.drive(ctx, b, func(ctx context.Context, w *worker, _ int64) {
		w.send(ctx, http.MethodGet, page, nil)
	})

	// An instant one second into the user's life: deep in a long history.
	at := "?at=" + url.QueryEscape(created.Add(time.Second).Format(time.RFC3339Nano))
	probes := make([]time.Duration, historyProbes)
	var early balanceState
	for i := range probes {
		t0 := time.Now()
		if early, err = e.getBalance(ctx, id, at); err != nil {
			return nil, err
		}
		probes[i] = time.Since(t0)
	}
	slices.Sort(probes)
	t0 := time.Now()
	v, err := e.verifyUser(ctx, id)
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
		check("early_balance", early.Seq < v.Entries, "the balance at %s is at seq %d of %d", at, early.Seq, v.Entries),
		verifyCheck(v),
	}}, nil
}
