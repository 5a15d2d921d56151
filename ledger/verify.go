package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

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
	var v Verification
	err := l.readSnapshotRouted(ctx, l.opts.VerifyTimeout, func(ctx context.Context, tx pgx.Tx) error {
		u, err := projection.FindUser(ctx, tx, id)
		if err != nil {
			return err
		}
		var pending int64
		if err := tx.QueryRow(ctx, pendingHolds, id).Scan(&pending); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, entryStream, id)
		if err != nil {
			return err
		}
		c := chainCheck{chainOK: true}
		var row entryRow
		if _, err := pgx.ForEachRow(rows, row.dest(), func() error {
			e, _ := row.entry()
			c.add(e)
			return nil
		}); err != nil {
			return err
		}
		v = c.verification(id, u.Balance, u.Seq, u.Held, money.Cents(pending))
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

// verification is the outcome of the entries c has read for user id,
// against its projection (balance, seq, held) and the held amount its
// pending holds add up to.
func (c *chainCheck) verification(id int64, balance money.Cents, seq int64, held, pending money.Cents) Verification {
	return Verification{
		UserID: id, Entries: c.n, LedgerBalance: c.balance, ProjectedBalance: balance,
		ChainValid: c.chainOK, FirstBadSeq: c.firstBad, ProjectedHeld: held, PendingHolds: pending,
		OK: c.firstBad == 0 && c.chainOK && balance == c.balance && seq == c.n && held == pending,
	}
}

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
	err := l.readSnapshot(ctx, l.opts.VerifyTimeout, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, userEntries)
		if err != nil {
			return err
		}
		var (
			user     projectedUser
			cur      projectedUser
			check    chainCheck
			row      entryRow
			started  bool
			lastTick = time.Now()
		)
		finish := func() {
			if !started {
				return
			}
			v := check.verification(cur.id, money.Cents(cur.balance), cur.seq, money.Cents(cur.held), money.Cents(cur.pending))
			sum.add(v)
		}
		dest := append([]any{&user.id, &user.balance, &user.seq, &user.held, &user.pending}, row.dest()...)
		_, err = pgx.ForEachRow(rows, dest, func() error {
			if !started || cur.id != user.id {
				finish()
				started, cur, check = true, user, chainCheck{chainOK: true}
			}
			if e, ok := row.entry(); ok {
				check.add(e)
			}
			if progress != nil && time.Since(lastTick) >= time.Second {
				lastTick = time.Now()
				progress(sum.Users, sum.Entries+check.n)
			}
			return nil
		})
		if err != nil {
			return err
		}
		finish()
		return nil
	})
	if err != nil {
		return VerifySummary{}, fmt.Errorf("verify: %w", err)
	}
	return sum, nil
}

// projectedUser is a users row as userEntries reads it, with the held
// amount its pending holds add up to.
type projectedUser struct {
	id, balance, seq, held, pending int64
}

// add counts v in the summary.
func (s *VerifySummary) add(v Verification) {
	s.Users++
	s.Entries += v.Entries
	if !v.OK {
		s.FailedCount++
		if len(s.Failed) < MaxReported {
			s.Failed = append(s.Failed, v)
		}
	}
}
