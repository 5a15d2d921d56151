package ledger_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/outbox"
)

func newLedger(t *testing.T) (*ledger.Ledger, *pgxpool.Pool) {
	t.Helper()
	pool := newPool(t, 8)
	return ledger.New(pool, ledger.Options{}), pool
}

func newPool(tb testing.TB, maxConns int32) *pgxpool.Pool {
	tb.Helper()
	return dbtest.NewPool(tb, maxConns)
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestPostEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)

	u, err := l.CreateUser(ctx, ledger.NewUser{ID: 7, Balance: 1_000_000})
	require.NoError(t, err)
	require.Equal(t, int64(7), u.ID)
	require.Equal(t, money.Cents(1_000_000), u.Balance)
	require.Equal(t, int64(1), u.Seq)

	p, err := l.PostEntry(ctx, ledger.Change{UserID: 7, Amount: -200, Description: "coffee", Reference: "r-1"})
	require.NoError(t, err)
	require.Equal(t, money.Cents(999_800), p.User.Balance)
	require.Equal(t, int64(2), p.Entry.Seq)
	require.Equal(t, ledger.Withdrawal, p.Entry.Type)
	require.Equal(t, money.Cents(999_800), p.Entry.BalanceAfter)
	require.Equal(t, p.User.UpdatedAt, p.Entry.CreatedAt, "one timestamp per transaction")

	got, err := l.FindEntryByID(ctx, p.Entry.ID)
	require.NoError(t, err)
	require.Equal(t, p.Entry.Hash, got.Hash)
	require.Equal(t, p.Entry.ComputeHash(), got.ComputeHash(), "the stored entry hashes as written")
	require.Equal(t, "coffee", got.Description)

	// The outbox names the entry; the relay builds its CloudEvent, with the
	// entry as its data.
	var eventID uuid.UUID
	var key string
	require.NoError(t, pool.QueryRow(ctx, `SELECT routing_key, event_id FROM outbox WHERE source_id = $1 AND body IS NULL`, p.Entry.ID).Scan(&key, &eventID))
	require.Equal(t, "ledger.entry.withdrawal", key)
	built, err := ledger.ExpandEvents(ctx, pool, []outbox.SourceRef{{SourceID: p.Entry.ID, EventID: eventID}})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"ledger-user-id": int64(7), "ledger-seq": p.Entry.Seq}, built[0].Headers)
	body := built[0].Body
	var ev map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &ev))
	require.JSONEq(t, `"1.0"`, string(ev["specversion"]))
	require.JSONEq(t, `"users/7"`, string(ev["subject"]))
	want, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(ev["data"]))

	v, err := l.VerifyUser(ctx, 7)
	require.NoError(t, err)
	require.True(t, v.OK, "%+v", v)
	require.Equal(t, int64(2), v.Entries)
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM outbox`))
}

func TestPostEntryRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 500})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2})
	require.NoError(t, err)

	cases := []struct {
		name   string
		change ledger.Change
		err    error
	}{
		{"overdraw", ledger.Change{UserID: 1, Amount: -501}, ledger.ErrInsufficientFunds},
		{"overdraw empty", ledger.Change{UserID: 2, Amount: -1}, ledger.ErrInsufficientFunds},
		{"unknown user", ledger.Change{UserID: 3, Amount: 5}, ledger.ErrNotFound},
		{"unknown user withdrawal", ledger.Change{UserID: 3, Amount: -5}, ledger.ErrNotFound},
	}
	for _, tc := range cases {
		_, err := l.PostEntry(ctx, tc.change)
		require.ErrorIs(t, err, tc.err, tc.name)
	}
	var verr *ledger.ValidationError
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 0})
	require.ErrorAs(t, err, &verr)
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: money.MaxAmount + 1})
	require.ErrorAs(t, err, &verr)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 1})
	require.ErrorIs(t, err, ledger.ErrUserExists)

	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM entries`), "only the opening entry")
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM outbox`))
	require.Equal(t, int64(500), count(t, pool, `SELECT balance FROM users WHERE id = 1`))
}

func TestBalanceLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1})
	require.NoError(t, err)
	// Bring the balance to the maximum by deposits of the largest amount.
	for range money.MaxBalance / money.MaxAmount {
		_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: money.MaxAmount})
		require.NoError(t, err)
	}
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1})
	require.ErrorIs(t, err, ledger.ErrBalanceLimit)
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -1})
	require.NoError(t, err, "a withdrawal at the maximum is fine")
	_, err = pool.Exec(ctx, `UPDATE users SET balance = $1 WHERE id = 1`, int64(money.MaxBalance)+1)
	requirePgConstraint(t, err, "users_balance_range")
	_, err = pool.Exec(ctx, `UPDATE users SET balance = -1 WHERE id = 1`)
	requirePgConstraint(t, err, "users_balance_range")
}

func TestAssignedIDsSkipChosenOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1})
	require.NoError(t, err)
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 2})
	require.NoError(t, err)
	u, err := l.CreateUser(ctx, ledger.NewUser{})
	require.NoError(t, err)
	require.Equal(t, int64(3), u.ID)
}

// requireAllVerify runs the whole ledger's verification: every user passes.
func requireAllVerify(t *testing.T, l *ledger.Ledger) {
	t.Helper()
	sum, err := l.VerifyAll(context.Background(), nil)
	require.NoError(t, err)
	require.Zero(t, sum.FailedCount, "%+v", sum.Failed)
}

func requirePgConstraint(t *testing.T, err error, name string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, name, pgErr.ConstraintName, pgErr.Message)
}

// TestEntriesAreAppendOnly shows the database itself refuses to rewrite
// history, and refuses an entry that does not continue the chain.
func TestEntriesAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)

	for _, sql := range []string{
		`UPDATE entries SET amount = 1`,
		`DELETE FROM entries`,
		`TRUNCATE entries CASCADE`,
	} {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, sql)
		require.Equal(t, "42501", pgErr.Code, sql)
		require.Contains(t, pgErr.Message, "append-only")
	}

	insert := `INSERT INTO entries (id, user_id, seq, type, amount, balance_after, created_at, prev_hash, hash)
SELECT gen_random_uuid(), 1, $1, 'deposit', 5, $2, now(), $3, '\x` + zeros + `'`
	head := func() []byte {
		var h []byte
		require.NoError(t, pool.QueryRow(ctx, `SELECT hash FROM entries WHERE user_id = 1 AND seq = 1`).Scan(&h))
		return h
	}()
	_, err = pool.Exec(ctx, insert, 3, 10500, head)
	requirePgConstraint(t, err, "entries_seq_contiguous")
	_, err = pool.Exec(ctx, insert, 2, 10600, head)
	requirePgConstraint(t, err, "entries_running_sum")
	_, err = pool.Exec(ctx, insert, 2, 105, make([]byte, 32))
	requirePgConstraint(t, err, "entries_hash_chain")
	_, err = pool.Exec(ctx, insert, 1, 5, make([]byte, 32))
	requirePgConstraint(t, err, "entries_user_seq_key")
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"

// TestCommitFailureReachesCaller forces the commit itself to fail (a
// deferred constraint trigger) and checks the caller sees the error and
// nothing is written.
func TestCommitFailureReachesCaller(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `
CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'P0001'; END $$;
CREATE CONSTRAINT TRIGGER fail_at_commit AFTER INSERT ON entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_at_commit();`)
	require.NoError(t, err)

	_, err = l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 5})
	require.Error(t, err)
	require.Contains(t, err.Error(), "commit")
	require.Contains(t, err.Error(), "refused at commit")
	require.Equal(t, int64(100), count(t, pool, `SELECT balance FROM users WHERE id = 1`))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM entries`))
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM outbox`))
}

// TestConcurrentWithdrawals is the hot-account guard at the ledger level:
// more withdrawals than the balance covers, all at once, with group commit
// on and off.
func TestConcurrentWithdrawals(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]ledger.Options{"batched": {}, "unbatched": {MaxBatch: 1}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := newPool(t, 8)
			l := ledger.New(pool, opts)
			_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 100_000}) // 1000.00
			require.NoError(t, err)

			const n = 800 // 800 × 2.00 against 1000.00: 500 succeed
			var wg sync.WaitGroup
			var mu sync.Mutex
			outcomes := map[string]int{}
			for range n {
				wg.Go(func() {
					_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: -200})
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
			require.Equal(t, map[string]int{"ok": 500, "post entry: insufficient funds": 300}, outcomes)
			v, err := l.VerifyUser(ctx, 1)
			require.NoError(t, err)
			require.True(t, v.OK, "%+v", v)
			require.Equal(t, int64(501), v.Entries)
			require.Zero(t, v.ProjectedBalance)
			require.Equal(t, int64(501), count(t, pool, `SELECT count(*) FROM outbox`))
		})
	}
}

// Two processes creating the same ids at once: for each id exactly one
// creates it and the other is told it exists (409), never an internal error
// from the losing insert's unique violation.
func TestConcurrentCreateAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 16)
	a, b := ledger.New(pool, ledger.Options{}), ledger.New(pool, ledger.Options{})
	const ids = 40
	errs := make([]error, 2*ids)
	var wg sync.WaitGroup
	for i := range 2 * ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := a
			if i%2 == 1 {
				l = b
			}
			_, errs[i] = l.CreateUser(ctx, ledger.NewUser{ID: int64(i/2 + 1), Balance: 100})
		}()
	}
	wg.Wait()
	for id := range ids {
		first, second := errs[2*id], errs[2*id+1]
		if first != nil {
			first, second = second, first
		}
		require.NoError(t, first, "user %d", id+1)
		require.ErrorIs(t, second, ledger.ErrUserExists, "user %d", id+1)
	}
	require.Equal(t, int64(ids), count(t, pool, `SELECT count(*) FROM entries WHERE type = 'opening'`))
}
