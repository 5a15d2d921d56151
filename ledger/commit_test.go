package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// holdRowLock locks user id's row in a transaction of its own until the
// returned function is called, so that the changes submitted meanwhile
// queue up in the process and then go in one batch.
func holdRowLock(t *testing.T, pool *pgxpool.Pool, id int64) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, id)
	require.NoError(t, err)
	return func() { require.NoError(t, tx.Rollback(ctx)) }
}

// waitLockWaiters waits until n backends wait for a lock: a way to know the
// first change is in flight.
func waitLockWaiters(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		var waiting int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting >= n
	}, 10*time.Second, 5*time.Millisecond)
}

type outcome struct {
	p   ledger.Posted
	err error
}

// postInOrder submits changes of one user while its row lock is held
// elsewhere: the first goes in flight and waits for the lock, each next one
// is submitted only once the previous is in the queue, so the queue holds
// them in exactly this order. It returns a function that waits for all
// answers.
func postInOrder(t *testing.T, l *ledger.Ledger, pool *pgxpool.Pool, changes []ledger.Change) func() []outcome {
	t.Helper()
	out := make([]outcome, len(changes))
	var wg sync.WaitGroup
	for i, c := range changes {
		wg.Go(func() {
			p, err := l.PostEntry(context.Background(), c)
			out[i] = outcome{p, err}
		})
		if i == 0 {
			waitLockWaiters(t, pool, 1)
			continue
		}
		require.Eventually(t, func() bool { return l.Pending(c.UserID) == i }, 10*time.Second, time.Millisecond)
	}
	return func() []outcome { wg.Wait(); return out }
}

// TestBatchMatchesOneByOne is the group commit's property: for random
// changes near zero, the answers of one batch equal those of applying the
// same changes one at a time. (The upper bound, out of reach of real
// entries in a test, is covered by TestEvaluateUpperBound.)
func TestBatchMatchesOneByOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for round := range 4 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			t.Parallel()
			pool := newPool(t, 4)
			batched := ledger.New(pool, ledger.Options{})
			single := ledger.New(pool, ledger.Options{MaxBatch: 1})
			start := money.Cents(round * 37) // near zero, so that some withdrawals are refused
			for _, id := range []int64{1, 2} {
				_, err := batched.CreateUser(ctx, ledger.NewUser{ID: id, Balance: start})
				require.NoError(t, err)
			}
			changes := make([]int64, 40)
			for i := range changes {
				changes[i] = int64((i*7919+round*104729)%400) - 200
				if changes[i] == 0 {
					changes[i] = 1
				}
			}
			// A deposit goes first and waits for the held row lock; the
			// random changes queue behind it and then form one batch.
			changes = append([]int64{1}, changes...)
			batch := make([]ledger.Change, len(changes))
			for i, a := range changes {
				batch[i] = ledger.Change{UserID: 1, Amount: money.Cents(a)}
			}
			release := holdRowLock(t, pool, 1)
			wait := postInOrder(t, batched, pool, batch)
			release()
			got := wait()

			for i, a := range changes {
				p, err := single.PostEntry(ctx, ledger.Change{UserID: 2, Amount: money.Cents(a)})
				if err != nil {
					require.ErrorIs(t, err, ledger.ErrInsufficientFunds)
					require.ErrorIs(t, got[i].err, ledger.ErrInsufficientFunds, "change %d (%d)", i, a)
					continue
				}
				require.NoError(t, got[i].err, "change %d (%d)", i, a)
				require.Equal(t, p.Entry.BalanceAfter, got[i].p.Entry.BalanceAfter, "change %d", i)
				require.Equal(t, p.Entry.Seq, got[i].p.Entry.Seq, "change %d", i)
				require.Equal(t, p.Entry.BalanceAfter, got[i].p.User.Balance, "each caller sees its own balance")
			}
			var n int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT created_at) FROM entries WHERE user_id = 1 AND seq > $1`, got[0].p.Entry.Seq).Scan(&n))
			require.Equal(t, 1, n, "the changes after the first went in one transaction")
		})
	}
}

// TestBatchIsolatesTheFailingRequest forces a database error on one change
// in the middle of a batch: that change alone fails, and every other
// change of the batch gets the answer it would have had on its own.
func TestBatchIsolatesTheFailingRequest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	l := ledger.New(pool, ledger.Options{})
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 1000})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.description = 'poison' THEN RAISE EXCEPTION 'poisoned entry'; END IF; RETURN NEW; END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION refuse_poison();`)
	require.NoError(t, err)

	changes := []ledger.Change{
		{UserID: 1, Amount: 1, Description: "first, alone"},
		{UserID: 1, Amount: 2}, {UserID: 1, Amount: -5000}, // accepted, refused
		{UserID: 1, Amount: 3, Description: "poison"},
		{UserID: 1, Amount: 4}, {UserID: 1, Amount: -1010},
	}
	release := holdRowLock(t, pool, 1)
	wait := postInOrder(t, l, pool, changes)
	release()
	got := wait()

	require.NoError(t, got[0].err)
	require.NoError(t, got[1].err)
	require.ErrorIs(t, got[2].err, ledger.ErrInsufficientFunds)
	require.ErrorContains(t, got[3].err, "poisoned entry")
	require.NoError(t, got[4].err)
	require.Equal(t, money.Cents(1007), got[4].p.User.Balance, "decided as if the poisoned change never came")
	require.ErrorIs(t, got[5].err, ledger.ErrInsufficientFunds)
	v, err := l.VerifyUser(ctx, 1)
	require.NoError(t, err)
	require.True(t, v.OK)
	require.Equal(t, int64(4), v.Entries, "the opening and three changes")
	require.Equal(t, money.Cents(1007), v.ProjectedBalance)
	require.Equal(t, int64(4), count(t, pool, `SELECT count(*) FROM outbox`))
}

// TestGroupCommitAcrossUsers: requests of several users that wait together
// go in one transaction, and a refusal of one user's request does not touch
// the others'.
func TestGroupCommitAcrossUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	l := ledger.New(pool, ledger.Options{MaxInflight: 1})
	for id := int64(1); id <= 4; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100})
		require.NoError(t, err)
	}
	release := holdRowLock(t, pool, 1)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	post := func(i int, c ledger.Change) {
		wg.Go(func() { _, errs[i] = l.PostEntry(ctx, c) })
	}
	post(0, ledger.Change{UserID: 1, Amount: 1}) // in flight, waits for the lock
	waitLockWaiters(t, pool, 1)
	post(1, ledger.Change{UserID: 2, Amount: 5})
	post(2, ledger.Change{UserID: 3, Amount: -500}) // refused
	post(3, ledger.Change{UserID: 4, Amount: -50})
	post(4, ledger.Change{UserID: 9, Amount: 1}) // no such user
	wg.Go(func() {
		_, errs[5] = l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: 3, ToUserID: 2, Amount: 25})
	})
	require.Eventually(t, func() bool { return l.Pending(2) == 2 && l.Pending(3) == 2 && l.Pending(9) == 1 }, 10*time.Second, time.Millisecond)
	release()
	wg.Wait()

	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], ledger.ErrInsufficientFunds)
	require.NoError(t, errs[3])
	require.ErrorIs(t, errs[4], ledger.ErrNotFound)
	require.NoError(t, errs[5])
	for id, want := range map[int64]int64{1: 101, 2: 130, 3: 75, 4: 50} {
		require.Equal(t, want, count(t, pool, `SELECT balance FROM users WHERE id = $1`, id), "user %d", id)
	}
	require.Equal(t, int64(1), count(t, pool, `SELECT count(DISTINCT created_at) FROM entries WHERE user_id > 1 AND seq > 1`),
		"the waiting requests of users 2, 3 and 4 went in one transaction")
	requireAllVerify(t, l)
}

// TestUserQueueLimit: past the limit of waiting changes, PostEntry fails at
// once with ErrBusy and writes nothing; other users are not affected.
func TestUserQueueLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	l := ledger.New(pool, ledger.Options{UserQueueLimit: 2})
	for _, id := range []int64{1, 2} {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100})
		require.NoError(t, err)
	}
	release := holdRowLock(t, pool, 1)
	// One in flight, waiting for the lock, and two in the queue.
	wait := postInOrder(t, l, pool, []ledger.Change{{UserID: 1, Amount: 1}, {UserID: 1, Amount: 1}, {UserID: 1, Amount: 1}})
	_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1})
	require.ErrorIs(t, err, ledger.ErrBusy)
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 2, Amount: 1})
	require.NoError(t, err, "another user is not affected")
	release()
	for _, o := range wait() {
		require.NoError(t, o.err)
	}
	u, err := l.FindUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(103), u.Balance)
}

// keyFor is an Idempotency for tests: the request hash stands for the
// amount, and the stored answer names the outcome.
func keyFor(key string, amount money.Cents) *ledger.Idempotency[ledger.Posted] {
	idem := &ledger.Idempotency[ledger.Posted]{Key: key, AnswerFunc: func(p ledger.Posted, err error) ledger.Answer {
		if err != nil {
			return ledger.Answer{Code: 400, Body: []byte(err.Error())}
		}
		return ledger.Answer{Code: 200, Body: fmt.Appendf(nil, "seq %d balance %s", p.Entry.Seq, p.Entry.BalanceAfter)}
	}}
	idem.RequestHash[0] = byte(amount)
	idem.RequestHash[1] = byte(amount >> 8)
	return idem
}

// TestBatchDuplicateKeys: within one batch, a repeated key with the same
// request is answered from its first use (one entry), and with another
// request is a conflict; a refusal is stored and replayed like a success.
func TestBatchDuplicateKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	l := ledger.New(pool, ledger.Options{})
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)

	changes := []ledger.Change{
		{UserID: 1, Amount: 1}, // in flight alone
		{UserID: 1, Amount: -30, Idempotency: keyFor("a", -30)},
		{UserID: 1, Amount: -30, Idempotency: keyFor("a", -30)}, // same request: replay
		{UserID: 1, Amount: -31, Idempotency: keyFor("a", -31)}, // same key, other request
		{UserID: 1, Amount: -500, Idempotency: keyFor("b", -500)},
		{UserID: 1, Amount: -500, Idempotency: keyFor("b", -500)}, // a refusal replays too
		{UserID: 1, Amount: -30},
	}
	release := holdRowLock(t, pool, 1)
	wait := postInOrder(t, l, pool, changes)
	release()
	got := wait()

	require.NoError(t, got[0].err)
	require.NoError(t, got[1].err)
	require.Equal(t, money.Cents(71), got[1].p.Entry.BalanceAfter) // 100 + 1 - 30
	var replay *ledger.ReplayError
	require.ErrorAs(t, got[2].err, &replay)
	require.Equal(t, 200, replay.Answer.Code)
	require.Equal(t, "seq 3 balance 0.71", string(replay.Answer.Body))
	require.ErrorIs(t, got[3].err, ledger.ErrIdempotencyConflict)
	require.ErrorIs(t, got[4].err, ledger.ErrInsufficientFunds)
	require.ErrorAs(t, got[5].err, &replay)
	require.Equal(t, 400, replay.Answer.Code)
	require.NoError(t, got[6].err)
	require.Equal(t, money.Cents(41), got[6].p.Entry.BalanceAfter, "one -30 for key a, one unkeyed")
	require.Equal(t, int64(4), count(t, pool, `SELECT count(*) FROM entries`))
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM idempotency_keys WHERE status <> 0`))

	// Later, outside any batch, the keys still answer the same way.
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -30, Idempotency: keyFor("a", -30)})
	require.ErrorAs(t, err, &replay)
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -31, Idempotency: keyFor("a", -31)})
	require.ErrorIs(t, err, ledger.ErrIdempotencyConflict)
}

// TestPurgeKeys: keys older than the retention go, younger ones stay and
// still replay.
func TestPurgeKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	l := ledger.New(pool, ledger.Options{})
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)
	for _, k := range []string{"old", "new"} {
		_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1, Idempotency: keyFor(k, 1)})
		require.NoError(t, err)
	}
	_, err = pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'`)
	require.NoError(t, err)
	n, err := l.PurgeKeys(ctx, 24*time.Hour, 100)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	var replay *ledger.ReplayError
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1, Idempotency: keyFor("new", 1)})
	require.ErrorAs(t, err, &replay, "a key within its retention still replays")
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1, Idempotency: keyFor("old", 1)})
	require.NoError(t, err, "a purged key runs afresh")
}
