package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// TestBalanceAt replays a scripted history and asks for the balance at
// instants between its steps.
func TestBalanceAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	beforeAll := time.Now().Add(-time.Second)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 10_000})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2})
	require.NoError(t, err)

	type step struct {
		change func() error
		after  money.Cents // user 1's balance after the step
	}
	steps := []step{
		{func() error { _, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 550}); return err }, 10_550},
		{func() error { _, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -1_050}); return err }, 9_500},
		{func() error {
			_, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 1, ToUserID: 2, Amount: 2_500})
			return err
		}, 7_000},
		{func() error { _, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1}); return err }, 7_001},
	}
	var instants []time.Time
	var want []money.Cents
	instants = append(instants, time.Now())
	want = append(want, 10_000)
	for _, s := range steps {
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, s.change())
		time.Sleep(10 * time.Millisecond)
		instants = append(instants, time.Now())
		want = append(want, s.after)
	}
	for i, at := range instants {
		b, err := l.FindBalanceAt(ctx, 1, &at)
		require.NoError(t, err)
		require.Equal(t, want[i], b.Balance, "at step %d", i)
		require.Equal(t, int64(i+1), b.Seq)
	}
	b, err := l.FindBalanceAt(ctx, 1, &beforeAll)
	require.NoError(t, err)
	require.Zero(t, b.Balance, "before the first entry")
	require.Zero(t, b.Seq)
	var zero time.Time
	b, err = l.FindBalanceAt(ctx, 1, &zero)
	require.NoError(t, err)
	require.Zero(t, b.Balance, "the zero instant is an instant, before every entry")
	require.Zero(t, b.Seq)
	b, err = l.FindBalanceAt(ctx, 1, nil)
	require.NoError(t, err)
	require.Equal(t, money.Cents(7_001), b.Balance, "no instant: the latest")
	b, err = l.FindBalanceAt(ctx, 2, &instants[3])
	require.NoError(t, err)
	require.Equal(t, money.Cents(2_500), b.Balance)
	_, err = l.FindBalanceAt(ctx, 3, nil)
	require.ErrorIs(t, err, ledger.ErrNotFound)
}

// TestTamperingIsDetected: an entry changed behind the ledger's back fails
// verification at its seq, and the projection rebuild puts the balances
// back in line with whatever the entries say.
func TestTamperingIsDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 1_000})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2, Balance: 500})
	require.NoError(t, err)
	for _, a := range []money.Cents{-100, 250, -50} {
		_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: a})
		require.NoError(t, err)
	}
	v, err := l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.True(t, v.OK)

	_, err = pool.Exec(ctx, `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET amount = -10 WHERE user_id = 1 AND seq = 2;
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;`)
	require.NoError(t, err)

	v, err = l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.False(t, v.OK)
	require.False(t, v.ChainValid)
	require.Equal(t, int64(2), v.FirstBadSeq)
	require.Equal(t, money.Cents(1_190), v.LedgerBalance, "the sum of the (tampered) amounts")
	require.Equal(t, money.Cents(1_100), v.ProjectedBalance)

	sum, err := l.VerifyAll(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, int64(2), sum.Users)
	require.Equal(t, int64(1), sum.FailedCount)
	require.Equal(t, int64(1), sum.Failed[0].UserID)

	// The database refuses a projection row that disagrees with its
	// ledger; one changed behind the guard's back (by an owner who turned
	// it off) is found, and the rebuild restores it from the entries.
	_, err = pool.Exec(ctx, `UPDATE users SET balance = 7 WHERE id = 2`)
	requirePgConstraint(t, err, "users_match_ledger")
	_, err = pool.Exec(ctx, `ALTER TABLE users DISABLE TRIGGER users_match_ledger;
UPDATE users SET balance = 7 WHERE id = 2;
ALTER TABLE users ENABLE TRIGGER users_match_ledger`)
	require.NoError(t, err)
	v, err = l.VerifyUser(ctx, 2)
	require.NoError(t, err)
	require.False(t, v.OK)
	require.True(t, v.ChainValid, "the chain itself is intact")
	r, err := l.RebuildProjection(ctx)
	require.NoError(t, err)
	require.Equal(t, []ledger.ProjectionChange{{UserID: 2, OldBalance: 7, NewBalance: 500, OldSeq: 1, NewSeq: 1}}, r.Users)
	require.Empty(t, r.Holds)
	v, err = l.VerifyUser(ctx, 2)
	require.NoError(t, err)
	require.True(t, v.OK)
	r, err = l.RebuildProjection(ctx)
	require.NoError(t, err)
	require.Empty(t, r.Users, "a rebuild of a right projection changes nothing")
	require.Empty(t, r.Holds)
}
