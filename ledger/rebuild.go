package ledger

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/projection"
)

// ProjectionChange is one user's row corrected by RebuildProjection.
type ProjectionChange = projection.Change

// entryHeads reads, per user, the last entry and the sum of the pending
// holds: what the projection must say.
const entryHeads = `SELECT e.user_id, e.balance_after, e.seq, e.created_at, coalesce(h.held, 0)
FROM (SELECT DISTINCT ON (user_id) user_id, balance_after, seq, created_at
      FROM entries ORDER BY user_id, seq DESC) e
LEFT JOIN (SELECT user_id, sum(amount)::bigint AS held FROM holds WHERE status = 'pending' GROUP BY user_id) h
    ON h.user_id = e.user_id`

// Rebuilt is what RebuildProjection had to correct: users rows, and the
// holds that disagreed with their record (changed, or deleted when no
// change records them).
type Rebuilt struct {
	Users []ProjectionChange
	Holds []uuid.UUID
}

// RebuildProjection recomputes the holds from their recorded changes, then
// every user's balance, seq and updated_at from the entries and its held
// from the pending holds, in one transaction that blocks writes meanwhile,
// and returns what it had to change (nothing when the projections were
// right).
func (l *Ledger) RebuildProjection(ctx context.Context) (Rebuilt, error) {
	var r Rebuilt
	err := l.withTx(ctx, 0, func(ctx context.Context, tx pgx.Tx) error {
		// Writers lock users rows before holds, so the same order here.
		if err := projection.LockForRebuildTx(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE holds IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock holds: %w", err)
		}
		var err error
		if r.Holds, err = rebuildHoldsTx(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, entryHeads)
		if err != nil {
			return fmt.Errorf("read entry heads: %w", err)
		}
		heads, err := pgx.CollectRows(rows, pgx.RowToStructByPos[projection.Head])
		if err != nil {
			return fmt.Errorf("read entry heads: %w", err)
		}
		r.Users, err = projection.ReplaceTx(ctx, tx, heads)
		return err
	})
	if err != nil {
		return Rebuilt{}, fmt.Errorf("rebuild projection: %w", err)
	}
	return r, nil
}
