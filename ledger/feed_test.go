package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
)

// TestEventLogMigration: migration 10 gives a ledger with a history its
// event log: every entry and hold change once, each user's in seq order,
// those already published (gone from outbox) first and before the relay's
// offset, those still waiting in outbox after it, with the ids they were
// waiting with; outbox is left empty.
func TestEventLogMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	m, err := migrations.New(url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, m.Down(int(migrations.Latest())-9)) // as before migration 10: no event log

	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	// Today's write path fills outbox.user_id (migration 13): the column
	// is lent to the old schema while the history is written, and taken
	// back before the migrations run, which fill it again themselves.
	_, err = pool.Exec(ctx, `ALTER TABLE outbox ADD COLUMN user_id bigint`)
	require.NoError(t, err)
	l := ledger.New(pool, ledger.Options{})
	for id := int64(1); id <= 3; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: 1000})
		require.NoError(t, err)
	}
	for i := range 10 {
		_, err := l.PostTransfer(ctx, ledger.TransferRequest{FromUserID: int64(1 + i%3), ToUserID: int64(1 + (i+1)%3), Amount: 7})
		require.NoError(t, err)
	}
	h, err := l.PlaceHold(ctx, ledger.NewHold{UserID: 1, Amount: 3})
	require.NoError(t, err)
	_, err = l.CaptureHold(ctx, h.ID, 0, nil)
	require.NoError(t, err)
	// The relay of the time had published (and deleted) the older half.
	var total, published int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&total))
	tag, err := pool.Exec(ctx, `DELETE FROM outbox WHERE id <= (SELECT min(id) + count(*) / 2 FROM outbox)`)
	require.NoError(t, err)
	published = tag.RowsAffected()
	type waiting struct{ eventID, sourceID string }
	rows, err := pool.Query(ctx, `SELECT event_id::text, source_id::text FROM outbox ORDER BY id`)
	require.NoError(t, err)
	var pending []waiting
	for rows.Next() {
		var w waiting
		require.NoError(t, rows.Scan(&w.eventID, &w.sourceID))
		pending = append(pending, w)
	}
	require.NoError(t, rows.Err())
	_, err = pool.Exec(ctx, `ALTER TABLE outbox DROP COLUMN user_id`)
	require.NoError(t, err)

	require.NoError(t, m.Up())
	var logRows, offset, outboxRows, maxPos, waitingWithoutUser int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM event_log), (SELECT position FROM relay_partitions WHERE partition = 0),
    (SELECT count(*) FROM outbox), (SELECT max(position) FROM event_log),
    (SELECT count(*) FROM event_log WHERE position > (SELECT position FROM relay_partitions WHERE partition = 0) AND user_id IS NULL)`).Scan(&logRows, &offset, &outboxRows, &maxPos, &waitingWithoutUser))
	require.Zero(t, waitingWithoutUser, "migration 13 gives every waiting event its user")
	require.Equal(t, total, logRows, "every event once")
	require.Equal(t, logRows, maxPos, "consecutive positions")
	require.Equal(t, published, offset, "the published ones before the offset")
	require.Zero(t, outboxRows)
	after, err := pool.Query(ctx, `SELECT coalesce(event_id, source_id)::text, source_id::text FROM event_log WHERE position > $1 ORDER BY position`, offset)
	require.NoError(t, err)
	var got []waiting
	for after.Next() {
		var w waiting
		require.NoError(t, after.Scan(&w.eventID, &w.sourceID))
		got = append(got, w)
	}
	require.NoError(t, after.Err())
	require.Equal(t, pending, got, "the waiting ones after it, in outbox order, with their ids")
	// Each user's entry events in seq order.
	var disordered int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM (
    SELECT e.user_id, e.seq, lag(e.seq) OVER (PARTITION BY e.user_id ORDER BY l.position) AS prev
    FROM event_log l JOIN entries e ON e.id = l.source_id) x WHERE prev IS NOT NULL AND seq <> prev + 1`).Scan(&disordered))
	require.Zero(t, disordered)
}

// TestPreviousVersionDuringRollingUpdate: after migration 13, the previous
// version's statements, which keep running until a rolling update ends,
// still work: its writers' outbox rows and its sequencer's event-log rows
// come without user_id, and get their user from their entry (or 0).
func TestPreviousVersionDuringRollingUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbtest.NewURL(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Options{})
	u, err := l.CreateUser(ctx, ledger.NewUser{ID: 42, Balance: 1000})
	require.NoError(t, err)
	var entryID uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT id FROM entries WHERE user_id = $1`, u.ID).Scan(&entryID))

	// The previous version's outbox insert (8b054a1), with a slim row
	// naming the entry and a whole message naming no known source.
	const previousOutboxInsert = `INSERT INTO outbox (event_id, routing_key, headers, body, source_id, created_at)
SELECT m.event_id, m.routing_key, m.headers::jsonb, m.body::json, m.source_id, m.created_at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::timestamptz[])
    WITH ORDINALITY AS m(event_id, routing_key, headers, body, source_id, created_at, ord)
ORDER BY m.ord`
	slim, whole := uuid.New(), uuid.New()
	_, err = pool.Exec(ctx, previousOutboxInsert,
		[]uuid.UUID{slim, whole}, []string{"ledger.entry.deposit", "ledger.entry.deposit"},
		[]string{"{}", `{"ledger-user-id": 7}`}, []*string{nil, ptr(`{}`)}, []*uuid.UUID{&entryID, nil},
		[]time.Time{time.Now(), time.Now()})
	require.NoError(t, err, "the previous version's writers still commit")
	rows, err := pool.Query(ctx, `SELECT user_id FROM outbox WHERE event_id = ANY($1) ORDER BY id`, []uuid.UUID{slim, whole})
	require.NoError(t, err)
	users, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	require.Equal(t, []int64{42, 7}, users)

	// The previous version's sequencer run.
	const previousSequenceRun = `WITH moved AS (
    DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT $2)
    RETURNING id, event_id, routing_key, source_id, headers, body, created_at)
INSERT INTO event_log (position, event_id, routing_key, source_id, headers, body, created_at)
SELECT $1::bigint + row_number() OVER (ORDER BY id),
    CASE WHEN event_id IS DISTINCT FROM source_id THEN event_id END, routing_key, source_id,
    CASE WHEN body IS NOT NULL THEN headers END, body, created_at
FROM moved`
	var last int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM event_log`).Scan(&last))
	_, err = pool.Exec(ctx, previousSequenceRun, last, 1000)
	require.NoError(t, err, "the previous version's sequencer still appends")
	var missing int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM event_log WHERE user_id IS NULL`).Scan(&missing))
	require.Zero(t, missing, "every appended event has its user")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM event_log WHERE source_id = $1 AND user_id = 42`, entryID).Scan(&missing))
	require.Equal(t, 2, missing, "the opening entry's own event and the previous version's")
}

func ptr[T any](v T) *T { return &v }
