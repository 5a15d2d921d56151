package main

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	apiclient "github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// hotWithdrawal is the amount of each withdrawal of the hot scenario.
const hotWithdrawal money.Cents = -2_00

// runHot is the original requirement: one fresh user holding 10000, -n
// withdrawals of 2 with -c in flight. Exactly min(n, 5000) succeed, the
// rest are 400 insufficient_funds, and the ledger adds up.
func runHot(ctx context.Context, e *env) (*result, error) {
	ids, err := e.createUsers(ctx, 1, startBalance)
	if err != nil {
		return nil, err
	}
	id := ids[0]
	path, body := userPath(id, "/balance"), amountBody(hotWithdrawal)
	b := e.opts.countBound()
	p := e.drive(ctx, b, func(ctx context.Context, w *worker, _ int64) {
		w.send(ctx, http.MethodPut, path, body)
	})

	ok, refused := p.count("200"), p.count("400:insufficient_funds")
	want := min(p.Requests, int64(startBalance/-hotWithdrawal))
	u, err := e.api.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := e.api.VerifyUser(ctx, id)
	if err != nil {
		return nil, err
	}
	wantBalance := startBalance + money.Cents(ok)*hotWithdrawal
	return &result{Bound: b, Phase: p, Details: []detail{{"user_id", id}}, Invariants: []invariant{
		check("successes", ok == want, "%d × 200, want min(%d, %d) = %d", ok, p.Requests, startBalance/-hotWithdrawal, want),
		check("refusals", refused == p.Requests-want, "%d × 400 insufficient_funds, want %d", refused, p.Requests-want),
		check("final_balance", u.Balance == wantBalance, "balance %s, want %s − %s × %d = %s",
			u.Balance, startBalance, -hotWithdrawal, ok, wantBalance),
		check("entries", v.Entries == ok+1, "%d entries, want %d successes + 1 opening", v.Entries, ok),
		verifyCheck(v),
	}}, nil
}

// runHotSustained alternates deposits and withdrawals of 1.00 on one user
// holding 10000 (or on the existing -user) for -duration, so that nothing
// is refused and the rate is sustained; the balance must end at the start
// plus the accepted amounts.
func runHotSustained(ctx context.Context, e *env) (*result, error) {
	if e.opts.User != 0 {
		return runHotSustainedOn(ctx, e, e.opts.User)
	}
	ids, err := e.createUsers(ctx, 1, startBalance)
	if err != nil {
		return nil, err
	}
	id := ids[0]
	b := e.opts.timeBound()
	p, accepted, sum := e.alternate(ctx, b, id)

	u, err := e.api.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	v, err := e.api.VerifyUser(ctx, id)
	if err != nil {
		return nil, err
	}
	wantBalance := startBalance + sum
	return &result{Bound: b, Phase: p, Details: []detail{{"user_id", id}}, Invariants: []invariant{
		check("final_balance", u.Balance == wantBalance, "balance %s, want %s + accepted %s = %s",
			u.Balance, startBalance, sum, wantBalance),
		check("entries", v.Entries == accepted+1, "%d entries, want %d accepted + 1 opening", v.Entries, accepted),
		verifyCheck(v),
	}}, nil
}

// runHotSustainedOn is hot-sustained on an existing user, whatever its
// history: the balance and seq must end at the start plus what was
// accepted. (history-reads verifies such a user's whole history.)
func runHotSustainedOn(ctx context.Context, e *env, id int64) (*result, error) {
	start, err := e.api.GetBalanceAt(ctx, id, time.Time{})
	if err != nil {
		return nil, err
	}
	b := e.opts.timeBound()
	p, accepted, sum := e.alternate(ctx, b, id)
	end, err := e.api.GetBalanceAt(ctx, id, time.Time{})
	if err != nil {
		return nil, err
	}
	wantBalance := start.Balance + sum
	return &result{Bound: b, Phase: p, Details: []detail{{"user_id", id}, {"prior_entries", start.Seq}}, Invariants: []invariant{
		check("final_balance", end.Balance == wantBalance, "balance %s, want %s + accepted %s = %s",
			end.Balance, start.Balance, sum, wantBalance),
		check("entries", end.Seq == start.Seq+accepted, "seq %d, want %d + %d accepted", end.Seq, start.Seq, accepted),
	}}, nil
}

// alternate sends deposits and withdrawals of 1.00 to user id, in turn,
// within b, and returns the phase, how many were accepted and their sum.
func (e *env) alternate(ctx context.Context, b bound, id int64) (*phase, int64, money.Cents) {
	path := userPath(id, "/balance")
	bodies := [2][]byte{amountBody(1_00), amountBody(-1_00)}
	var accepted, sum atomic.Int64
	p := e.drive(ctx, b, func(ctx context.Context, w *worker, i int64) {
		if a, _ := w.send(ctx, http.MethodPut, path, bodies[i%2]); a.Status == http.StatusOK {
			accepted.Add(1)
			sum.Add(1_00 - 2_00*(i%2))
		}
	})
	return p, accepted.Load(), money.Cents(sum.Load())
}

// verifyCheck is the invariant of one user's /verify answer.
func verifyCheck(v apiclient.Verification) invariant {
	return check("verify_ok", v.OK && v.ChainValid && v.LedgerBalance == v.ProjectedBalance,
		"ok=%t chainValid=%t ledgerBalance=%s projectedBalance=%s", v.OK, v.ChainValid, v.LedgerBalance, v.ProjectedBalance)
}
