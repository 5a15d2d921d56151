package ledger

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// oneByOne is the model of the guarded UPDATE: each change alone, in order.
func oneByOne(balance money.Cents, amounts []money.Cents) []error {
	out := make([]error, len(amounts))
	for i, a := range amounts {
		switch next := balance + a; {
		case next < 0:
			out[i] = ErrInsufficientFunds
		case next > money.MaxBalance:
			out[i] = ErrBalanceLimit
		default:
			balance = next
		}
	}
	return out
}

// TestEvaluateMatchesOneByOne checks evaluate, the heart of group commit,
// against the one-by-one model for random batches near both bounds, and
// that the entries it builds form a valid chain.
func TestEvaluateMatchesOneByOne(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	for round := range 500 {
		start := money.Cents(rng.IntN(1000))
		if round%2 == 1 {
			start = money.MaxBalance - money.Cents(rng.IntN(1000))
		}
		n := 1 + rng.IntN(64)
		amounts := make([]money.Cents, n)
		batch := make([]*request, n)
		for i := range amounts {
			for amounts[i] == 0 {
				amounts[i] = money.Cents(rng.IntN(801) - 400)
			}
			typ := Deposit
			if amounts[i] < 0 {
				typ = Withdrawal
			}
			batch[i] = &request{draft: draft{Type: typ, Amount: amounts[i]}}
		}
		u := projection.User{ID: 3, Balance: start, Seq: 10}
		head := chainHead{Seq: 10, Hash: Hash{1, 2, 3}}
		got, entries, err := evaluate(u, head, now, batch)
		require.NoError(t, err)

		want := oneByOne(start, amounts)
		c := chainCheck{chainOK: true, n: 10, balance: start, prevHash: head.Hash}
		k := 0
		for i := range batch {
			require.ErrorIs(t, got[i].err, want[i], "round %d change %d", round, i)
			if want[i] != nil {
				continue
			}
			require.Equal(t, entries[k], got[i].posted.Entry)
			c.add(entries[k])
			k++
		}
		require.Len(t, entries, k)
		require.True(t, c.chainOK, "round %d", round)
		require.Zero(t, c.firstBad, "round %d", round)
	}
}
