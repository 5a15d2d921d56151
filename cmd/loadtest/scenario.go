package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	apiclient "github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// scenario is one kind of load with the checks that go with it.
type scenario struct {
	about string
	run   func(ctx context.Context, e *env) (*result, error)
}

// scenarios are the values of -scenario.
var scenarios = map[string]scenario{
	"hot":           {"withdrawals of 2 from one user holding 10000: exactly 5000 succeed", runHot},
	"hot-sustained": {"deposits and withdrawals of 1.00 on one user (a fresh one, or -user) for -duration", runHotSustained},
	"history-reads": {"the reads of -user's history: -n first pages, balances deep in its past, one /verify of it all", runHistoryReads},
	"spread":        {"deposits and withdrawals of 1.00 spread over -users users", runSpread},
	"mixed":         {"writes, transfers, history reads and user reads over -users users", runMixed},
	"relay":         {"a burst of writes, then the time for the relay to publish every event", runRelay},
}

func scenarioNames() string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// startBalance is the balance every user a scenario creates starts with.
const startBalance money.Cents = 10000_00

// checkWorkers bounds the concurrency of set-up and checks.
const checkWorkers = 32

// verifySample is the most users whose ledger a scenario verifies.
const verifySample = 100

func userPath(id int64, suffix string) string {
	return "/api/users/" + strconv.FormatInt(id, 10) + suffix
}

// amountBody is the body of PUT /api/users/{id}/balance for amount.
func amountBody(amount money.Cents) []byte {
	return []byte(`{"amount":` + money.Format(amount) + `}`)
}

// createUsers creates n users holding balance each; the server assigns
// their ids, so runs never collide.
func (e *env) createUsers(ctx context.Context, n int, balance money.Cents) ([]int64, error) {
	ids := make([]int64, n)
	err := parallel(ctx, min(e.opts.C, checkWorkers), n, func(ctx context.Context, i int) error {
		u, err := e.api.CreateUser(ctx, apiclient.NewUser{Balance: balance})
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		ids[i] = u.ID
		return nil
	})
	return ids, err
}

// book is what the client saw accepted, per user (by index in the
// scenario's id list): the sum of the accepted amounts and the number of
// entries they wrote.
type book struct {
	delta   []atomic.Int64
	entries []atomic.Int64
}

func newBook(users int) *book {
	return &book{delta: make([]atomic.Int64, users), entries: make([]atomic.Int64, users)}
}

// add records an accepted change of user u.
func (b *book) add(u int, amount money.Cents) {
	b.delta[u].Add(int64(amount))
	b.entries[u].Add(1)
}

// sampleIndexes are up to k indexes spread evenly over [0, n).
func sampleIndexes(n, k int) []int {
	step := max((n+k-1)/k, 1)
	var out []int
	for i := 0; i < n; i += step {
		out = append(out, i)
	}
	return out
}

// checkBook reads every user's balance and compares it with startBalance
// plus what b saw accepted, then verifies a sample of the users' ledgers
// (ok, and one entry per accepted change plus the opening one). It
// returns the balances read, by index.
func (e *env) checkBook(ctx context.Context, ids []int64, b *book) ([]money.Cents, []invariant, error) {
	balances := make([]money.Cents, len(ids))
	var wrong atomic.Int64
	err := parallel(ctx, checkWorkers, len(ids), func(ctx context.Context, i int) error {
		u, err := e.api.GetUser(ctx, ids[i])
		if err != nil {
			return err
		}
		balances[i] = u.Balance
		if u.Balance != startBalance+money.Cents(b.delta[i].Load()) {
			wrong.Add(1)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	sample := sampleIndexes(len(ids), verifySample)
	var badEntries, notOK atomic.Int64
	err = parallel(ctx, checkWorkers, len(sample), func(ctx context.Context, j int) error {
		i := sample[j]
		v, err := e.api.VerifyUser(ctx, ids[i])
		if err != nil {
			return err
		}
		if !v.OK {
			notOK.Add(1)
		}
		if v.Entries != b.entries[i].Load()+1 {
			badEntries.Add(1)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return balances, []invariant{
		check("balances", wrong.Load() == 0, "%d of %d users hold start + accepted amounts", int64(len(ids))-wrong.Load(), len(ids)),
		check("entries", badEntries.Load() == 0, "%d of %d sampled users have accepted changes + 1 entries", int64(len(sample))-badEntries.Load(), len(sample)),
		check("verify_ok", notOK.Load() == 0, "%d of %d sampled users verify ok", int64(len(sample))-notOK.Load(), len(sample)),
	}, nil
}
