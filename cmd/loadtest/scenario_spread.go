package main

import (
	"context"
	"net/http"
	"time"

	"github.com/ledgerd/ledgerd/money"
)

// writeAmounts are the amounts of the spread and mixed writes, a deposit
// and a withdrawal of 1.00, small enough that a start of 10000 is never
// exhausted.
var writeAmounts = [2]money.Cents{1_00, -1_00}

// userPaths are the PUT …/balance paths and bodies of ids, built once.
type userPaths struct {
	balance []string
	bodies  [2][]byte
}

func newUserPaths(ids []int64) userPaths {
	p := userPaths{balance: make([]string, len(ids)), bodies: [2][]byte{amountBody(writeAmounts[0]), amountBody(writeAmounts[1])}}
	for i, id := range ids {
		p.balance[i] = userPath(id, "/balance")
	}
	return p
}

// write sends a deposit or a withdrawal of 1.00 to a random user and
// books it when accepted. It returns the amount accepted (0 if refused).
func (p userPaths) write(ctx context.Context, w *worker, bk *book) (money.Cents, time.Duration) {
	u, s := w.rng.IntN(len(p.balance)), w.rng.IntN(2)
	a, d := w.send(ctx, http.MethodPut, p.balance[u], p.bodies[s])
	if a.Status != http.StatusOK {
		return 0, d
	}
	bk.add(u, writeAmounts[s])
	return writeAmounts[s], d
}

// runSpread creates -users users holding 10000 each, then sends deposits
// and withdrawals of 1.00 to users picked uniformly at random. Every
// user's balance must end at the start plus what was accepted for it.
func runSpread(ctx context.Context, e *env) (*result, error) {
	ids, err := e.createUsers(ctx, e.opts.Users, startBalance)
	if err != nil {
		return nil, err
	}
	paths, bk := newUserPaths(ids), newBook(len(ids))
	b := e.opts.countBound()
	p := e.drive(ctx, b, func(ctx context.Context, w *worker, _ int64) {
		paths.write(ctx, w, bk)
	})
	_, checks, err := e.checkBook(ctx, ids, bk)
	if err != nil {
		return nil, err
	}
	return &result{Bound: b, Phase: p, Invariants: checks}, nil
}
