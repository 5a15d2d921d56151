package ledger_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
)

// planCollector is a pool whose sessions log, as notices, the plan of every
// statement they run, nested ones too (the triggers' queries): PostgreSQL's
// auto_explain at log level NOTICE.
type planCollector struct {
	mu    sync.Mutex
	plans []string
}

func (c *planCollector) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.plans
	c.plans = nil
	return out
}

// newExplainingPool returns a pool on url whose sessions log their plans
// to the collector; settings are statements each session runs after
// loading auto_explain (SET plan_cache_mode = …, say).
func newExplainingPool(t *testing.T, url string, settings ...string) (*pgxpool.Pool, *planCollector) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	c := &planCollector{}
	cfg.MaxConns = 4
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "Query Text:") {
			c.mu.Lock()
			c.plans = append(c.plans, n.Message)
			c.mu.Unlock()
		}
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;`)
		for _, set := range settings {
			if err != nil {
				break
			}
			_, err = conn.Exec(ctx, set)
		}
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, c
}

// TestWritePathPlansAreFlatInHistory: every statement the write path runs
// on entries, the triggers' included, reaches a user's history through a
// one-row probe of entries_user_seq_key, whatever the history's length and
// whether or not the table has statistics; none scans the user's entries.
func TestWritePathPlansAreFlatInHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	pool, plans := newExplainingPool(t, url)
	l := ledger.New(pool, ledger.Options{})
	_, err := l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 1})
	require.NoError(t, err)

	// A long history for user 1, written in SQL for speed: a valid chain
	// of links (the hashes are not canonical, which the write path does not
	// recompute), with the projection moved in the same transaction.
	const history = 200_000
	var openingHash []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT hash FROM entries WHERE user_id = 1 AND seq = 1`).Scan(&openingHash))
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `
INSERT INTO entries (id, user_id, seq, type, amount, balance_after, created_at, prev_hash, hash)
SELECT gen_random_uuid(), 1, s, 'deposit', 1, s, now(),
    CASE WHEN s = 2 THEN $2::bytea ELSE sha256(int8send(s - 1)) END, sha256(int8send(s))
FROM generate_series(2, $1::bigint) s`, history, openingHash)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE users SET balance = $1, seq = $1 WHERE id = 1`, history)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))

	check := func(when string) {
		plans.take()
		var wg sync.WaitGroup
		for i := range 20 { // a lone change, then batches of the ones that waited
			wg.Go(func() {
				_, err := l.PostEntry(ctx, ledger.Change{UserID: 1, Amount: 1 + money.Cents(i%3)})
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		got := plans.take()
		require.NotEmpty(t, got, "auto_explain logged the plans")
		var probes int
		for _, p := range got {
			if !strings.Contains(p, "entries") {
				continue
			}
			require.NotContains(t, p, "Seq Scan on entries", "%s: %s", when, p)
			require.NotContains(t, p, "entries_user_created_idx", "%s: %s", when, p)
			if strings.Contains(p, "entries_user_seq_key") {
				probes++
			}
		}
		require.Positive(t, probes, "%s: the history is reached through entries_user_seq_key", when)
	}
	// The reads a long history is asked for: the first page, and a
	// point-in-time balance deep in its past, each a bounded probe of one
	// index in its order (no Sort of the user's entries).
	reads := func(when string) {
		var at time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT created_at FROM entries WHERE user_id = 1 AND seq = 10`).Scan(&at))
		plans.take()
		page, err := l.FindEntries(ctx, ledger.EntryFilter{UserID: 1, Limit: 50})
		require.NoError(t, err)
		require.Len(t, page.Entries, 50)
		b, err := l.FindBalanceAt(ctx, 1, &at)
		require.NoError(t, err)
		require.GreaterOrEqual(t, b.Seq, int64(10))
		var checked int
		for _, p := range plans.take() {
			if !strings.Contains(p, "FROM entries") {
				continue
			}
			checked++
			require.NotContains(t, p, "Seq Scan on entries", "%s: %s", when, p)
			require.NotContains(t, p, "Sort", "%s: %s", when, p)
			require.Contains(t, p, "Index Scan Backward", "%s: %s", when, p)
		}
		require.Equal(t, 2, checked, "%s: the page and the balance were explained", when)
	}
	check("without statistics")
	reads("without statistics")
	_, err = pool.Exec(ctx, `ANALYZE entries`)
	require.NoError(t, err)
	check("with statistics")
	reads("with statistics")
}

// TestProofPlansAreFlatInHistory: a checkpoint reads one entry per user
// (a probe of entries_user_seq_key each, however long the histories), a
// proof one per leaf of the user's chunk, and a statement reaches its
// range through entries_user_created_idx; none scans the entries.
func TestProofPlansAreFlatInHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	pool, plans := newExplainingPool(t, url)
	l := ledger.New(pool, ledger.Options{})
	const users, history = 3, 30_000
	for id := int64(1); id <= users; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 1})
		require.NoError(t, err)
		var openingHash []byte
		require.NoError(t, pool.QueryRow(ctx, `SELECT hash FROM entries WHERE user_id = $1 AND seq = 1`, id).Scan(&openingHash))
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		// A chain of links (not canonical hashes: nothing here recomputes them).
		_, err = tx.Exec(ctx, `
INSERT INTO entries (id, user_id, seq, type, amount, balance_after, created_at, prev_hash, hash)
SELECT gen_random_uuid(), $3::bigint, s, 'deposit', 1, s, now(),
    CASE WHEN s = 2 THEN $2::bytea ELSE sha256(int8send($3::bigint * 1000000 + s - 1)) END, sha256(int8send($3::bigint * 1000000 + s))
FROM generate_series(2, $1::bigint) s`, history, openingHash, id)
		if err != nil {
			_ = tx.Rollback(ctx)
		}
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `UPDATE users SET balance = $1, seq = $1 WHERE id = $2`, history, id)
		require.NoError(t, err)
		require.NoError(t, tx.Commit(ctx))
	}
	check := func(when string) {
		plans.take()
		c, err := l.MakeCheckpoint(ctx)
		require.NoError(t, err)
		_, err = l.FindCheckpointProof(ctx, 2, c.ID)
		require.NoError(t, err)
		since := time.Now().Add(-time.Minute)
		s, err := l.FindStatement(ctx, 2, &since, nil)
		require.NoError(t, err)
		require.Len(t, s.Entries, history)
		var checked int
		for _, p := range plans.take() {
			if !strings.Contains(p, "entries") || strings.Contains(p, "INSERT") {
				continue
			}
			checked++
			require.NotContains(t, p, "Seq Scan on entries", "%s: %s", when, p)
			require.NotContains(t, p, "Merge", "%s: %s", when, p)
			require.NotContains(t, p, "Hash Join", "%s: %s", when, p)
			switch {
			case strings.Contains(p, "users u"): // the heads
				require.Contains(t, p, "Nested Loop", "%s: %s", when, p)
				require.Contains(t, p, "Index Cond: ((user_id = u.id) AND (seq = u.seq))", "%s: %s", when, p)
			case strings.Contains(p, "unnest"): // a proof's leaves
				require.Contains(t, p, "entries_user_seq_key", "%s: %s", when, p)
			case strings.Contains(p, "created_at"): // a statement
				require.Contains(t, p, "entries_user_created_idx", "%s: %s", when, p)
			}
		}
		require.GreaterOrEqual(t, checked, 4, "%s: the heads, the proof, and the statement's opening and range were explained", when)
	}
	check("without statistics")
	_, err := pool.Exec(ctx, `ANALYZE entries`)
	require.NoError(t, err)
	check("with statistics")
}
