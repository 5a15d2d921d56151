package projection_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// newPool is a fresh database whose users rows may disagree with the
// ledger: these tests check the projection's statements alone, without
// entries, so the deferred users_match_ledger trigger (which the ledger's
// tests exercise) is off here.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := dbtest.NewPool(t, 4)
	_, err := pool.Exec(context.Background(), `ALTER TABLE users DISABLE TRIGGER users_match_ledger`)
	require.NoError(t, err)
	return pool
}

func lock(ctx context.Context, tx pgx.Tx, ids ...int64) (projection.Locked, error) {
	var out projection.Locked
	b := &pgx.Batch{}
	projection.QueueLock(b, ids, &out)
	err := tx.SendBatch(ctx, b).Close()
	return out, err
}

func set(ctx context.Context, tx pgx.Tx, sets ...projection.Set) error {
	b := &pgx.Batch{}
	projection.QueueSet(b, sets)
	return tx.SendBatch(ctx, b).Close()
}

// TestLockBlocksAndRereads proves the lock with two transactions: the
// second waits for the first's row lock and then reads the committed row,
// not the one it would have read before.
func TestLockBlocksAndRereads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	_, err := pool.Exec(ctx, `INSERT INTO users (id, balance) VALUES (1, 100), (2, 5)`)
	require.NoError(t, err)

	tx1, err := pool.Begin(ctx)
	require.NoError(t, err)
	got, err := lock(ctx, tx1, 1, 2, 3)
	require.NoError(t, err)
	require.Len(t, got.Users, 2, "user 3 does not exist")
	u := got.Users[1]
	require.Equal(t, money.Cents(100), u.Balance)
	u.Balance, u.Seq, u.UpdatedAt = 40, 1, got.ChangeTime(u)
	require.NoError(t, set(ctx, tx1, projection.Set{User: u, PrevSeq: 0}))

	tx2, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx2.Rollback(ctx) }()
	done := make(chan projection.Locked, 1)
	go func() {
		l, err := lock(ctx, tx2, 1)
		assert.NoError(t, err)
		done <- l
	}()
	select {
	case <-done:
		t.Fatal("the second lock did not wait for the first")
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, tx1.Commit(ctx))
	l := <-done
	require.Equal(t, money.Cents(40), l.Users[1].Balance, "read after the first committed")
	require.Equal(t, int64(1), l.Users[1].Seq)

	// A set whose row moved since it was read writes nothing and fails.
	stale := l.Users[1]
	stale.Balance = 1
	require.ErrorContains(t, set(ctx, tx2, projection.Set{User: stale, PrevSeq: 0}), "not at the seq")
}

func TestInsertAndRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	now := time.Now()
	insert := func(users ...projection.User) error {
		b := &pgx.Batch{}
		projection.QueueInsert(b, users)
		return pool.SendBatch(ctx, b).Close()
	}
	require.NoError(t, insert(projection.User{ID: 7, Balance: 3, Seq: 1, CreatedAt: now, UpdatedAt: now}))
	require.Error(t, insert(projection.User{ID: 7, CreatedAt: now, UpdatedAt: now}), "a taken id")
	require.Error(t, insert(projection.User{ID: 8, Balance: money.MaxBalance + 1, CreatedAt: now, UpdatedAt: now}), "the CHECK holds the upper bound")
	require.Error(t, insert(projection.User{ID: 9, Balance: -1, CreatedAt: now, UpdatedAt: now}), "the CHECK holds the lower bound")
	u, err := projection.FindUser(ctx, pool, 7)
	require.NoError(t, err)
	require.Equal(t, money.Cents(3), u.Balance)
	_, err = projection.FindUser(ctx, pool, 8)
	require.ErrorIs(t, err, projection.ErrNotFound)
}

// TestAssignIDSkipsChosenIDs: clients that take the ids the sequence would
// hand out next do not exhaust it; the next assigned id is the first free
// one, and the sequence continues after it.
func TestAssignIDSkipsChosenIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	first, err := projection.AssignID(ctx, pool)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO users (id) SELECT generate_series($1::bigint + 1, $1::bigint + 500)`, first)
	require.NoError(t, err)
	next, err := projection.AssignID(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, first+501, next)
	after, err := projection.AssignID(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, first+502, after, "the sequence continues after the skipped run")
}
