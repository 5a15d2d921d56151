package ledger_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
)

// searchHistory is the length of the long history the search plans are
// checked on: long enough that a plan filtering it newest first reads a
// hundred times more rows than searchPlanWork allows.
const searchHistory = 100_000

// searchPlanWork bounds the rows one search may touch on that history:
// every plan node's actual rows plus the rows its filters removed. The
// selective values below match about a hundred entries each.
const searchPlanWork = 1_500

// TestSearchPlansUseTheFilterIndexes: on a long history with statistics,
// every filter of FindEntries, alone and in combinations, in both orders,
// with custom and with generic plans (pgx prepares its statements, and
// PostgreSQL moves to a generic plan after five runs), is read through an
// index whose Index Cond holds the filter, and reads about as many rows as
// match, never the user's history.
func TestSearchPlansUseTheFilterIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	pool := newSearchHistory(t, url)

	var v1Entry uuid.UUID
	var window [3]time.Time // created_at of seq 100, 50_000 and 50_200
	require.NoError(t, pool.QueryRow(ctx, `SELECT id FROM entries WHERE user_id = 1 AND seq = 5001`).Scan(&v1Entry))
	for i, seq := range []int64{100, 50_000, 50_200} {
		require.NoError(t, pool.QueryRow(ctx, `SELECT created_at FROM entries WHERE user_id = 1 AND seq = $1`, seq).Scan(&window[i]))
	}
	recent := window[1].Add(time.Duration(searchHistory/2-149) * time.Second) // the last 150 entries
	cents := func(c money.Cents) *money.Cents { return &c }
	seq := func(n int64) *int64 { return &n }
	tx := uuid.NullUUID{UUID: v1Entry, Valid: true}

	// want lists what must show in an Index Cond of the plan (the main
	// scan's or a from/to probe's).
	cases := []struct {
		name    string
		f       ledger.EntryFilter
		want    []string
		ascOnly bool
		// size is the number of entries that match, when known.
		size int
	}{
		{name: "no filter", want: []string{"(user_id = "}},
		{name: "type", f: ledger.EntryFilter{Type: ledger.Withdrawal}, want: []string{"(type = "}},
		{name: "reference", f: ledger.EntryFilter{Reference: "rare-ref"}, want: []string{"(reference = "}},
		{name: "transactionId of a version-1 entry", f: ledger.EntryFilter{TransactionID: tx}, want: []string{"(COALESCE(transaction_id, transfer_id, id) = "}, size: 1},
		{name: "minAmount", f: ledger.EntryFilter{MinAmount: cents(700_000)}, want: []string{"(amount >= "}},
		{name: "maxAmount", f: ledger.EntryFilter{MaxAmount: cents(-1)}, want: []string{"(amount <= "}},
		{name: "amount range", f: ledger.EntryFilter{MinAmount: cents(700_000), MaxAmount: cents(800_000)}, want: []string{"(amount >= ", "(amount <= "}},
		{name: "one amount", f: ledger.EntryFilter{MinAmount: cents(777_777), MaxAmount: cents(777_777)}, want: []string{"(amount = "}},
		{name: "from", f: ledger.EntryFilter{From: &recent}, want: []string{"(created_at >= "}, size: 150},
		{name: "to", f: ledger.EntryFilter{To: &window[0]}, want: []string{"(created_at < "}, size: 99},
		{name: "from to", f: ledger.EntryFilter{From: &window[1], To: &window[2]}, want: []string{"(created_at >= ", "(created_at < "}, size: 200},
		{name: "type and amount", f: ledger.EntryFilter{Type: ledger.Deposit, MinAmount: cents(700_000)}, want: []string{"(amount >= "}},
		{name: "type and reference", f: ledger.EntryFilter{Type: ledger.Deposit, Reference: "rare-ref"}, want: []string{"(reference = "}},
		{name: "reference from to", f: ledger.EntryFilter{Reference: "common-ref", From: &window[1], To: &window[2]},
			want: []string{"(reference = ", "(created_at >= ", "(created_at < "}, size: 20},
		{name: "transactionId and type", f: ledger.EntryFilter{TransactionID: tx, Type: ledger.Deposit}, want: []string{"(COALESCE(transaction_id, transfer_id, id) = "}, size: 1},
		{name: "amount from", f: ledger.EntryFilter{MaxAmount: cents(0), From: &window[1]}, want: []string{"(amount <= ", "(created_at >= "}},
		{name: "type to", f: ledger.EntryFilter{Type: ledger.Withdrawal, To: &window[1]}, want: []string{"(type = ", "(created_at < "}},
		{name: "afterSeq", f: ledger.EntryFilter{AfterSeq: seq(searchHistory - 30)}, want: []string{"(seq > "}, ascOnly: true, size: 30},
		{name: "afterSeq and type", f: ledger.EntryFilter{AfterSeq: seq(searchHistory / 2), Type: ledger.Withdrawal}, want: []string{"(type = ", "(seq > "}, ascOnly: true},
		{name: "deep cursor and reference", f: ledger.EntryFilter{CursorSeq: 60_000, Reference: "rare-ref"}, want: []string{"(reference = "}},
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		epool, plans := newExplainingPool(t, url, "SET plan_cache_mode = "+mode, "SET auto_explain.log_analyze = on", "SET auto_explain.log_timing = off")
		l := ledger.New(epool, ledger.Options{})
		for _, tc := range cases {
			orders := []ledger.Order{ledger.Descending, ledger.Ascending}
			if tc.ascOnly {
				orders = orders[1:]
			}
			for _, order := range orders {
				what := mode + ", " + tc.name + ", " + string(order)
				f := tc.f
				f.UserID, f.Order, f.Limit = 1, order, 50
				plans.take()
				page, err := l.FindEntries(ctx, f)
				require.NoError(t, err, what)
				require.NotEmpty(t, page.Entries, "%s: the case matches entries", what)
				if tc.size > 0 {
					require.Len(t, page.Entries, min(tc.size, f.Limit), what)
					require.Equal(t, tc.size > f.Limit, page.HasMore, what)
				}
				var plan string
				for _, p := range plans.take() {
					if strings.Contains(p, "FROM entries WHERE user_id = $1") {
						require.Empty(t, plan, "%s: one search statement", what)
						plan = p
					}
				}
				require.NotEmpty(t, plan, "%s: the search was explained", what)
				t.Logf("%s:\n%s", what, plan)
				require.NotContains(t, plan, "Seq Scan on entries", what)
				conds := indexConds(plan)
				for _, w := range tc.want {
					require.Contains(t, conds, w, "%s: %q is an index condition:\n%s", what, w, plan)
				}
				require.LessOrEqual(t, planWork(plan), searchPlanWork, "%s: reads only about the matching entries:\n%s", what, plan)
			}
		}
	}
}

// newSearchHistory fills user 1 with searchHistory entries and user 2
// with a thousand, written in SQL for speed: version-1 entries (no
// transaction_id) with a valid chain of links (not canonical hashes, which
// reads do not recompute), one second apart, with the projection in the
// same transaction; then ANALYZE. Rare values for the filters: a
// withdrawal (type and a negative amount) every 1000th entry, an amount
// of 7777.77 every 1009th, the reference "rare-ref" every 997th;
// "common-ref" is on every 10th.
func newSearchHistory(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	_, err = tx.Exec(ctx, `
CREATE TEMP TABLE history ON COMMIT DROP AS
SELECT u, s, sum(amount) OVER (PARTITION BY u ORDER BY s) AS balance_after, type, amount, reference, created_at
FROM (
    SELECT u, s,
        CASE WHEN s = 1 THEN 'opening' WHEN s % 1000 = 0 THEN 'withdrawal' ELSE 'deposit' END AS type,
        CASE WHEN s = 1 THEN 100000 WHEN s % 1000 = 0 THEN -1 WHEN s % 1009 = 0 THEN 777777 ELSE 1 + s % 10 END AS amount,
        CASE WHEN s % 997 = 0 THEN 'rare-ref' WHEN s % 10 = 0 THEN 'common-ref' END AS reference,
        now() - make_interval(days => 30) + make_interval(secs => s) AS created_at
    FROM (VALUES (1, $1::bigint), (2, 1000)) AS n(u, len), generate_series(1, n.len) AS s
) g`, searchHistory)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `
INSERT INTO users (id, balance, seq, created_at, updated_at)
SELECT DISTINCT ON (u) u, balance_after, s, now(), created_at FROM history ORDER BY u, s DESC`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `
INSERT INTO entries (id, user_id, seq, type, amount, balance_after, reference, created_at, prev_hash, hash)
SELECT gen_random_uuid(), u, s, type, amount, balance_after, reference, created_at,
    CASE WHEN s = 1 THEN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
        ELSE sha256(int8send(u::bigint * 1000000000 + s - 1)) END,
    sha256(int8send(u::bigint * 1000000000 + s))
FROM history ORDER BY u, s`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	_, err = pool.Exec(ctx, `ANALYZE entries`)
	require.NoError(t, err)
	return pool
}

var (
	indexCondLine = regexp.MustCompile(`(?m)^\s*Index Cond: (.*)$`)
	actualRows    = regexp.MustCompile(`actual rows=(\d+) loops=(\d+)`)
	removedRows   = regexp.MustCompile(`Rows Removed by (?:Filter|Index Recheck): (\d+)`)
)

// indexConds joins the Index Cond lines of an auto_explain plan.
func indexConds(plan string) string {
	var out []string
	for _, m := range indexCondLine.FindAllStringSubmatch(plan, -1) {
		out = append(out, m[1])
	}
	return strings.Join(out, "\n")
}

// planWork is the rows an analyzed plan touched: the sum of every node's
// actual rows times its loops, plus the rows its filters removed.
func planWork(plan string) int {
	n := 0
	for _, m := range actualRows.FindAllStringSubmatch(plan, -1) {
		rows, _ := strconv.Atoi(m[1])
		loops, _ := strconv.Atoi(m[2])
		n += rows * loops
	}
	for _, m := range removedRows.FindAllStringSubmatch(plan, -1) {
		rows, _ := strconv.Atoi(m[1])
		n += rows
	}
	return n
}
