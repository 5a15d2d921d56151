package main

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// The operations of the mixed scenario, and their share in percent.
const (
	opWrite = iota
	opTransfer
	opHistory
	opGetUser
	numOps
)

var (
	opNames  = [numOps]string{"write", "transfer", "history", "get_user"}
	opShares = [numOps]int{40, 20, 20, 20}
)

// pickOp draws an operation with the weights of opShares.
func pickOp(w *worker) int {
	r := w.rng.IntN(100)
	for op, share := range opShares {
		if r < share {
			return op
		}
		r -= share
	}
	return opGetUser
}

// runMixed creates -users users, then sends 40% writes (±1.00), 20%
// transfers of 1.00 between two random users, 20% history reads (the last
// 20 entries) and 20% user reads. Transfers conserve money, so the sum of
// the balances must end at the starting sum plus the accepted writes, and
// each user at its start plus its writes and transfers.
func runMixed(ctx context.Context, e *env) (*result, error) {
	ids, err := e.createUsers(ctx, e.opts.Users, startBalance)
	if err != nil {
		return nil, err
	}
	paths, bk := newUserPaths(ids), newBook(len(ids))
	var (
		writesSum, badReads atomic.Int64
		latency             [numOps]*histogram
	)
	for i := range latency {
		latency[i] = newHistogram()
	}
	b := e.opts.countBound()
	p := e.drive(ctx, b, func(ctx context.Context, w *worker, _ int64) {
		op := pickOp(w)
		var d time.Duration
		switch op {
		case opWrite:
			var amount money.Cents
			amount, d = paths.write(ctx, w, bk)
			writesSum.Add(int64(amount))
		case opTransfer:
			from, to := w.rng.IntN(len(ids)), w.rng.IntN(len(ids)-1)
			if to >= from {
				to++
			}
			body := []byte(`{"fromUserId":` + strconv.FormatInt(ids[from], 10) + `,"toUserId":` +
				strconv.FormatInt(ids[to], 10) + `,"amount":1}`)
			var a answer
			if a, d = w.send(ctx, http.MethodPost, "/api/transfers", body); a.Status == http.StatusCreated {
				bk.add(from, -1_00)
				bk.add(to, 1_00)
			}
		case opHistory, opGetUser:
			path := userPath(ids[w.rng.IntN(len(ids))], "")
			if op == opHistory {
				path += "/transactions?limit=20"
			}
			var a answer
			if a, d = w.send(ctx, http.MethodGet, path, nil); a.Status != http.StatusOK {
				badReads.Add(1)
			}
		}
		latency[op].Record(d)
	})

	balances, checks, err := e.checkBook(ctx, ids, bk)
	if err != nil {
		return nil, err
	}
	var sum money.Cents
	for _, bal := range balances {
		sum += bal
	}
	want := startBalance*money.Cents(len(ids)) + money.Cents(writesSum.Load())
	checks = append([]invariant{
		check("balance_sum", sum == want, "sum of balances %s, want %d × %s + accepted writes %s = %s",
			sum, len(ids), startBalance, money.Cents(writesSum.Load()), want),
		check("reads_ok", badReads.Load() == 0, "%d history and user reads not answered 200", badReads.Load()),
	}, checks...)
	var details []detail
	for op, h := range latency {
		details = append(details,
			detail{opNames[op] + "_requests", h.Count()},
			detail{opNames[op] + "_p99_ms", ms(h.Quantile(0.99))})
	}
	return &result{Bound: b, Phase: p, Invariants: checks, Details: details}, nil
}
