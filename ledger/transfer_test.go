package ledger_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// TestConcurrentTransfers: 20 users, 10,000 random concurrent transfers,
// some overdrawing. The sum of balances never changes, no balance goes
// below 0, no deadlock reaches a caller, and every user verifies.
func TestConcurrentTransfers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 16)
	l := ledger.New(pool, ledger.Options{})
	const users = 20
	var total money.Cents
	for id := int64(1); id <= users; id++ {
		b := money.Cents(id * 1000)
		total += b
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: b})
		require.NoError(t, err)
	}

	const n = 10_000
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes = map[string]int{}
	)
	sem := make(chan struct{}, 64)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			from := 1 + rng.Int64N(users)
			to := 1 + rng.Int64N(users-1)
			if to >= from {
				to++
			}
			_, err := l.PostTransfer(ctx, ledger.TransferRequest{
				FromUserID: from, ToUserID: to, Amount: money.Cents(1 + rng.IntN(3000)),
			})
			key := "ok"
			if err != nil {
				key = err.Error()
			}
			mu.Lock()
			outcomes[key]++
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Len(t, outcomes, 2, "only successes and insufficient funds: %v", outcomes)
	require.Positive(t, outcomes["ok"])
	require.Positive(t, outcomes["post transfer: insufficient funds"])

	var sum, negative int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT sum(balance), count(*) FILTER (WHERE balance < 0) FROM users`).Scan(&sum, &negative))
	require.Equal(t, int64(total), sum, "money is neither made nor lost")
	require.Zero(t, negative)
	require.Equal(t, int64(2*outcomes["ok"]+users), count(t, pool, `SELECT count(*) FROM entries`))
	require.Equal(t, int64(outcomes["ok"]), count(t, pool, `SELECT count(DISTINCT transfer_id) FROM entries`))
	sumAll, err := l.VerifyAll(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, sumAll.FailedCount, "%+v", sumAll.Failed)
	require.Equal(t, int64(users), sumAll.Users)
}

func TestTransferRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for _, id := range []int64{1, 2} {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100})
		require.NoError(t, err)
	}
	var verr *ledger.ValidationError
	for _, r := range []ledger.TransferRequest{
		{FromUserID: 1, ToUserID: 1, Amount: 1},
		{FromUserID: 1, ToUserID: 2, Amount: 0},
		{FromUserID: 1, ToUserID: 2, Amount: -5},
		{FromUserID: 0, ToUserID: 2, Amount: 5},
		{FromUserID: 1, ToUserID: 2, Amount: money.MaxAmount + 1},
	} {
		_, err := l.PostTransfer(ctx, r)
		require.ErrorAs(t, err, &verr, "%+v", r)
	}
	_, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 3, Amount: 5})
	require.ErrorIs(t, err, ledger.ErrNotFound)
	_, err = l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 3, ToUserID: 1, Amount: 5})
	require.ErrorIs(t, err, ledger.ErrNotFound)
	_, err = l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 2, ToUserID: 1, Amount: 101})
	require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM entries`), "refusals write nothing")

	tr, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 2, ToUserID: 1, Amount: 40, Description: "rent"})
	require.NoError(t, err)
	require.Equal(t, ledger.TransferOut, tr.Entries[0].Type)
	require.Equal(t, int64(2), tr.Entries[0].UserID)
	require.Equal(t, money.Cents(-40), tr.Entries[0].Amount)
	require.Equal(t, ledger.TransferIn, tr.Entries[1].Type)
	require.Equal(t, money.Cents(140), tr.Entries[1].BalanceAfter)
	require.Equal(t, tr.ID, tr.Entries[0].TransferID.UUID)
	require.Equal(t, tr.ID, tr.Entries[1].TransferID.UUID)
	require.Equal(t, int64(4), count(t, pool, `SELECT count(*) FROM outbox`), "two events")
}
