package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// VerifySummary is the result of verifying every user.
type VerifySummary struct {
	Users   int64
	Entries int64
	// Failed lists the users whose check failed, at most MaxReported.
	Failed []Verification
	// FailedCount counts every failed user.
	FailedCount int64
}

// MaxReported bounds VerifySummary.Failed.
const MaxReported = 100

// userEntries streams every user with its entries, in user then seq order.
// PostgreSQL merges the users' primary key with entries (user_id, seq), so
// the ledger streams through in one pass, whatever its size.
const userEntries = `SELECT u.id, u.balance, u.seq, u.held, coalesce(h.pending, 0), e.id, e.user_id, e.seq, e.type, e.amount,
    e.balance_after, e.transfer_id, e.description, e.reference, e.idempotency_key, e.created_at,
    e.prev_hash, e.hash, e.transaction_id, e.hold_id, e.reversal_of, e.canonical_version
FROM users u
LEFT JOIN (` + recordedPending + ` GROUP BY p.user_id) h ON h.user_id = u.id
LEFT JOIN entries e ON e.user_id = u.id
ORDER BY u.id, e.seq`

// VerifyAll runs VerifyUser's checks on every user in one consistent
// snapshot, streaming. progress, when set, is called about every second
// with the users and entries checked so far. A failed check is not an
// error: it is in the summary.
func (l *Ledger) VerifyAll(ctx context.Context, progress func(users, entries int64)) (VerifySummary, error) {
	var sum VerifySummary
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return sum, fmt.Errorf("verify: %w", classify(ctx, err))
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return sum, fmt.Errorf("verify: %w", classify(ctx, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	rows, err := tx.Query(ctx, userEntries)
	if err != nil {
		return sum, fmt.Errorf("verify: %w", classify(ctx, err))
	}
	defer rows.Close()

	var (
		cur      *Verification
		check    chainCheck
		projSeq  int64
		lastTick = time.Now()
	)
	finish := func() {
		if cur == nil {
			return
		}
		cur.Entries, cur.LedgerBalance, cur.ChainValid, cur.FirstBadSeq = check.n, check.balance, check.chainOK, check.firstBad
		cur.OK = check.firstBad == 0 && check.chainOK && cur.ProjectedBalance == check.balance && projSeq == check.n &&
			cur.ProjectedHeld == cur.PendingHolds
		sum.Users++
		sum.Entries += check.n
		if !cur.OK {
			sum.FailedCount++
			if len(sum.Failed) < MaxReported {
				sum.Failed = append(sum.Failed, *cur)
			}
		}
	}
	for rows.Next() {
		var (
			userID             int64
			balance, seq       int64
			held, pendingHolds int64
			row                entryRow
		)
		if err := rows.Scan(append([]any{&userID, &balance, &seq, &held, &pendingHolds}, row.dest()...)...); err != nil {
			return sum, fmt.Errorf("verify: %w", err)
		}
		if cur == nil || cur.UserID != userID {
			finish()
			cur = &Verification{UserID: userID, ProjectedBalance: money.Cents(balance),
				ProjectedHeld: money.Cents(held), PendingHolds: money.Cents(pendingHolds)}
			check = chainCheck{chainOK: true}
			projSeq = seq
		}
		if e, ok := row.entry(); ok {
			check.add(e)
		}
		if progress != nil && time.Since(lastTick) >= time.Second {
			lastTick = time.Now()
			progress(sum.Users, sum.Entries+check.n)
		}
	}
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("verify: %w", classify(ctx, err))
	}
	finish()
	return sum, nil
}

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
