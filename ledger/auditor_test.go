package ledger_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// TestAuditor: a pass checks what changed at bounded cost and leaves a
// checkpoint; a rewritten entry is found, whether its user changes again or
// not (the sweep), and the violation stays counted until it is gone.
func TestAuditor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	for id := int64(1); id <= 3; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 1_000})
		require.NoError(t, err)
		for range 5 {
			_, err := l.PostEntry(ctx, ledger.Change{UserID: id, Amount: -10})
			require.NoError(t, err)
		}
	}
	var passes []ledger.AuditPass
	a := ledger.NewAuditor(l, ledger.AuditorConfig{MaxEntries: 1_000, Logger: slog.New(slog.DiscardHandler)})
	pass := func() ledger.AuditPass {
		p, err := a.Pass(ctx)
		require.NoError(t, err)
		passes = append(passes, p)
		return p
	}

	p := pass()
	require.Empty(t, p.Failing)
	require.GreaterOrEqual(t, p.Users, int64(3))
	require.Equal(t, int64(3), count(t, pool, `SELECT count(*) FROM audit_progress WHERE seq = 6`))

	// A new entry is checked from the checkpoint: only what changed.
	_, err := l.PostEntry(ctx, ledger.Change{UserID: 2, Amount: 5})
	require.NoError(t, err)
	require.Empty(t, pass().Failing)
	require.Equal(t, int64(7), count(t, pool, `SELECT seq FROM audit_progress WHERE user_id = 2`))

	// A rewritten new entry is found at once.
	_, err = l.PostEntry(ctx, ledger.Change{UserID: 3, Amount: 5})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET description = 'forged' WHERE user_id = 3 AND seq = 7;
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;`)
	require.NoError(t, err)
	p = pass()
	require.Len(t, p.Failing, 1)
	require.Equal(t, int64(3), p.Failing[0].UserID)
	require.Equal(t, int64(7), p.Failing[0].FirstBadSeq)
	require.Len(t, pass().Failing, 1, "stays failing")

	// An old entry of a user who never changes again is found by the sweep.
	_, err = pool.Exec(ctx, `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET amount = -11, balance_after = balance_after - 1 WHERE user_id = 1 AND seq = 2;
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(pass().Failing) == 2 }, 10*time.Second, time.Millisecond)

	// A projection ahead of its ledger (a balance change with no entry),
	// of a user with no new entry, is found by the next pass; so is one
	// behind it.
	for _, id := range []int64{4, 5} {
		_, err = l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 100})
		require.NoError(t, err)
	}
	require.Len(t, pass().Failing, 2)
	_, err = pool.Exec(ctx, `ALTER TABLE users DISABLE TRIGGER users_match_ledger;
UPDATE users SET balance = balance + 1000, seq = seq + 1 WHERE id = 4;
UPDATE users SET balance = 0, seq = 0 WHERE id = 5;
ALTER TABLE users ENABLE TRIGGER users_match_ledger;`)
	require.NoError(t, err)
	p = pass()
	require.Len(t, p.Failing, 4)
	require.Equal(t, []int64{4, 5}, []int64{p.Failing[2].UserID, p.Failing[3].UserID})
	require.Equal(t, money.Cents(1100), p.Failing[2].ProjectedBalance)

	// Metrics see every pass.
	var seen []int
	b := ledger.NewAuditor(l, ledger.AuditorConfig{Logger: slog.New(slog.DiscardHandler), OnPass: func(users, entries int64, violations int, at time.Time) {
		seen = append(seen, violations)
	}})
	_, err = b.Pass(ctx)
	require.NoError(t, err)
	require.Len(t, seen, 1)
}
