package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// Verification is the result of recomputing one user's ledger.
type Verification struct {
	UserID int64
	// OK is true when every check passed.
	OK bool
	// Entries is the number of entries read.
	Entries int64
	// LedgerBalance is the sum of the entries' amounts.
	LedgerBalance money.Cents
	// ProjectedBalance is the balance in the projection.
	ProjectedBalance money.Cents
	// ChainValid is true when every entry's prev_hash is the previous
	// entry's hash and every hash recomputes from the canonical encoding.
	ChainValid bool
	// FirstBadSeq is the first seq at which any check failed, 0 if none
	// (or when only the projection disagrees).
	FirstBadSeq int64
	// ProjectedHeld is the user's held amount in the projection;
	// PendingHolds the sum of its pending holds as their record
	// (hold_changes) says, which it must equal.
	ProjectedHeld, PendingHolds money.Cents
}

// recordedPending sums, per user, the holds whose record is a placement
// and no end: the pending holds by hold_changes, not by its projection.
const recordedPending = `SELECT p.user_id, sum(p.amount)::bigint AS pending FROM hold_changes p
WHERE p.change = 'placed' AND NOT EXISTS (
    SELECT 1 FROM hold_changes e WHERE e.hold_id = p.hold_id AND e.change <> 'placed')`

const pendingHolds = `SELECT coalesce(sum(pending), 0)::bigint FROM (` + recordedPending + `
    AND p.user_id = $1 GROUP BY p.user_id) r`

const entryStream = `SELECT ` + entryColumns + ` FROM entries WHERE user_id = $1 ORDER BY seq`

// VerifyUser recomputes user id's ledger from its entries: seq runs 1..n
// with no gap, every balance_after is the running sum, the hash chain is
// intact, the projection's balance and seq equal the ledger's, and its
// held equals the holds the record (hold_changes) leaves pending. It reads
// in one repeatable-read snapshot, streaming the entries (memory does not
// grow with the history), within VerifyTimeout. It returns ErrNotFound or
// ErrUnavailable; a failed check is not an error but Verification.OK ==
// false.
func (l *Ledger) VerifyUser(ctx context.Context, id int64) (Verification, error) {
	v := Verification{UserID: id, ChainValid: true}
	err := l.withConnFor(ctx, l.opts.VerifyTimeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

		u, err := projection.FindUser(ctx, tx, id)
		if err != nil {
			return err
		}
		v.ProjectedBalance, v.ProjectedHeld = u.Balance, u.Held
		var pending int64
		if err := tx.QueryRow(ctx, pendingHolds, id).Scan(&pending); err != nil {
			return err
		}
		v.PendingHolds = money.Cents(pending)
		rows, err := tx.Query(ctx, entryStream, id)
		if err != nil {
			return err
		}
		c := chainCheck{chainOK: true}
		for rows.Next() {
			e, err := scanEntry(rows)
			if err != nil {
				rows.Close()
				return err
			}
			c.add(e)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		v.Entries, v.LedgerBalance, v.ChainValid, v.FirstBadSeq = c.n, c.balance, c.chainOK, c.firstBad
		v.OK = c.firstBad == 0 && c.chainOK && u.Balance == c.balance && u.Seq == c.n && v.ProjectedHeld == v.PendingHolds
		return nil
	})
	if err != nil {
		return Verification{}, fmt.Errorf("verify user %d: %w", id, err)
	}
	return v, nil
}

// chainCheck folds one user's entries, in seq order, into the checks of
// VerifyUser.
type chainCheck struct {
	n        int64
	balance  money.Cents
	prevHash Hash
	chainOK  bool
	firstBad int64
}

func (c *chainCheck) add(e Entry) {
	c.n++
	c.balance += e.Amount
	bad := e.Seq != c.n || e.BalanceAfter != c.balance
	if e.PrevHash != c.prevHash || e.ComputeHash() != e.Hash {
		c.chainOK = false
		bad = true
	}
	if bad && c.firstBad == 0 {
		c.firstBad = e.Seq
	}
	c.prevHash = e.Hash
}
