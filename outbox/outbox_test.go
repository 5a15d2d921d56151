package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/outbox"
)

// TestEnqueueKeepsOrderAndBytes: messages enqueued together keep their
// order and their body byte for byte, and exist only if the transaction
// commits.
func TestEnqueueKeepsOrderAndBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t, 2)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	msgs := make([]outbox.Message, 5)
	for i := range msgs {
		msgs[i] = outbox.Message{
			EventID: uuid.New(), RoutingKey: "ledger.entry.deposit",
			Headers:   map[string]any{"ledger-seq": i + 1},
			Body:      []byte(`{"b": 1,  "a": [` + string(rune('0'+i)) + `]}`), // spacing and key order kept
			CreatedAt: at,
		}
	}
	for _, commit := range []bool{false, true} {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		b := &pgx.Batch{}
		require.NoError(t, outbox.QueueEnqueue(b, msgs))
		require.NoError(t, tx.SendBatch(ctx, b).Close())
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Rollback(ctx))
		}
	}
	rows, err := pool.Query(ctx, `SELECT event_id, body::text, headers->>'ledger-seq' FROM outbox ORDER BY id`)
	require.NoError(t, err)
	type row struct {
		ID   uuid.UUID
		Body string
		Seq  string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	require.Len(t, got, len(msgs), "the rolled-back messages are gone")
	for i, m := range msgs {
		require.Equal(t, m.EventID, got[i].ID)
		require.Equal(t, string(m.Body), got[i].Body)
		require.Equal(t, string(rune('1'+i)), got[i].Seq)
	}
}
