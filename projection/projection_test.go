package projection_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// apply runs the guarded change in tx, as the ledger does.
func apply(ctx context.Context, tx pgx.Tx, id int64, delta money.Cents) (projection.Applied, error) {
	var out projection.Applied
	b := &pgx.Batch{}
	projection.QueueApply(b, id, delta, 1, &out)
	err := tx.SendBatch(ctx, b).Close()
	return out, err
}

// TestGuardBlocksAndRechecks proves the guard with two transactions: the
// second change waits for the first's row lock and is then decided against
// the committed balance, not the one it would have read before.
func TestGuardBlocksAndRechecks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t, 4)
	_, err := pool.Exec(ctx, `INSERT INTO users (id, balance) VALUES (1, 100)`)
	require.NoError(t, err)

	tx1, err := pool.Begin(ctx)
	require.NoError(t, err)
	got, err := apply(ctx, tx1, 1, -60)
	require.NoError(t, err)
	require.Equal(t, money.Cents(40), got.User.Balance)
	require.Equal(t, int64(0), got.PrevSeq)

	tx2, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx2.Rollback(ctx) }()
	done := make(chan error, 1)
	go func() {
		_, err := apply(ctx, tx2, 1, -60)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the second change did not wait for the row lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, tx1.Commit(ctx))
	require.ErrorIs(t, <-done, projection.ErrInsufficientFunds, "re-checked against the committed 40")

	u, err := projection.FindUser(ctx, pool, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(40), u.Balance)
	require.Equal(t, int64(1), u.Seq)
}

func TestApplyOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t, 2)
	_, err := pool.Exec(ctx, `INSERT INTO users (id, balance) VALUES (1, $1)`, int64(money.MaxBalance-10))
	require.NoError(t, err)
	for _, c := range []struct {
		id    int64
		delta money.Cents
		err   error
	}{
		{1, 11, projection.ErrBalanceLimit},
		{1, -money.MaxBalance, projection.ErrInsufficientFunds},
		{2, 5, projection.ErrNotFound},
		{1, 10, nil},
	} {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		_, err = apply(ctx, tx, c.id, c.delta)
		if c.err != nil {
			require.ErrorIs(t, err, c.err)
		} else {
			require.NoError(t, err)
		}
		require.NoError(t, tx.Rollback(ctx))
	}
	_, err = projection.FindUser(ctx, pool, 2)
	require.ErrorIs(t, err, projection.ErrNotFound)
}
