package projection

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ledgerd/ledgerd/money"
)

// User is one row of the projection.
type User struct {
	ID        int64       `db:"id"`
	Balance   money.Cents `db:"balance"`
	Seq       int64       `db:"seq"`
	CreatedAt time.Time   `db:"created_at"`
	UpdatedAt time.Time   `db:"updated_at"`
}

// Querier runs read queries; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const userColumns = `id, balance, seq, created_at, updated_at`

const userFind = `SELECT ` + userColumns + ` FROM users WHERE id = $1`

// FindUser returns the user with the given id, or ErrNotFound.
func FindUser(ctx context.Context, q Querier, id int64) (User, error) {
	rows, err := q.Query(ctx, userFind, id)
	if err != nil {
		return User{}, fmt.Errorf("find user: %w", err)
	}
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("find user: %w", err)
	}
	return u, nil
}

const userExists = `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`

// UserExists reports whether a user with the given id exists.
func UserExists(ctx context.Context, q Querier, id int64) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, userExists, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("user exists: %w", err)
	}
	return ok, nil
}

const (
	userInsert = `INSERT INTO users (id, created_at, updated_at) VALUES ($1, now(), now())
ON CONFLICT (id) DO NOTHING
RETURNING ` + userColumns

	userInsertAssigned = `INSERT INTO users (id, created_at, updated_at) VALUES (nextval('users_id_seq'), now(), now())
ON CONFLICT (id) DO NOTHING
RETURNING ` + userColumns

	// maxAssignAttempts bounds the search for a free id when clients also
	// choose ids themselves: each attempt skips one id that a client took.
	maxAssignAttempts = 100
)

// InsertTx creates a user with a zero balance inside tx. An id of 0 asks for
// an assigned id (the next free one from a sequence). It returns ErrExists
// when the chosen id is taken.
func InsertTx(ctx context.Context, tx pgx.Tx, id int64) (User, error) {
	if id != 0 {
		u, err := insertOne(ctx, tx, userInsert, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return User{}, ErrExists
		}
		return u, err
	}
	for range maxAssignAttempts {
		u, err := insertOne(ctx, tx, userInsertAssigned)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // a client chose this id; take the next one
		}
		return u, err
	}
	return User{}, fmt.Errorf("insert user: no free id after %d attempts", maxAssignAttempts)
}

func insertOne(ctx context.Context, tx pgx.Tx, sql string, args ...any) (User, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("insert user: %w", translate(err))
	}
	return u, err
}

// Applied is the outcome of a guarded change.
type Applied struct {
	// User is the row after the change.
	User User
	// PrevSeq is the seq the row had before the change; the change's entries
	// are PrevSeq+1 .. User.Seq.
	PrevSeq int64
}

// balanceApply is the guarded change: one statement that adds delta to the
// balance and entries to seq only when the result stays in range. The new
// updated_at, the time of the change's entries, never goes back: a user's
// entry times rise with seq, so "the balance at instant T" is the balance
// after a prefix of the chain. Under READ
// COMMITTED a concurrent change to the same row makes this statement wait
// for the row lock and then re-evaluate the guard against the committed
// balance, so no change can ever be applied against a stale balance. When
// the guard misses, the second branch reports whether the user exists, so a
// refusal costs no extra round trip.
const balanceApply = `WITH applied AS (
    UPDATE users
    SET balance = balance + $2, seq = seq + $3, updated_at = greatest(now(), updated_at)
    WHERE id = $1 AND balance + $2 BETWEEN 0 AND 9000000000000000
    RETURNING ` + userColumns + `
)
SELECT true AS applied, ` + userColumns + ` FROM applied
UNION ALL
SELECT false, ` + userColumns + ` FROM users
WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM applied)`

// QueueApply queues onto b the guarded change of user id's balance by delta,
// counting entries new ledger entries. Send b inside the caller's
// transaction; when the batch runs, *out holds the outcome, or the batch
// reports ErrNotFound, ErrInsufficientFunds (delta < 0) or ErrBalanceLimit
// (delta > 0) and nothing was changed. The row stays locked until the
// transaction ends.
//
// It queues rather than runs so that the ledger sends the change and the
// read of the previous entry in one round trip.
func QueueApply(b *pgx.Batch, id int64, delta money.Cents, entries int64, out *Applied) {
	b.Queue(balanceApply, id, delta, entries).QueryRow(func(row pgx.Row) error {
		var applied bool
		var u User
		err := row.Scan(&applied, &u.ID, &u.Balance, &u.Seq, &u.CreatedAt, &u.UpdatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return fmt.Errorf("apply balance change: %w", translate(err))
		case !applied && delta < 0:
			return ErrInsufficientFunds
		case !applied:
			return ErrBalanceLimit
		}
		*out = Applied{User: u, PrevSeq: u.Seq - entries}
		return nil
	})
}

// translate turns constraint violations of the users table into package
// errors, by constraint name.
func translate(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.ConstraintName {
		case "users_balance_range":
			return fmt.Errorf("%w: %s", ErrBalanceLimit, pgErr.Message)
		case "users_pkey":
			return ErrExists
		}
	}
	return err
}

// Locked is a user's row read under its row lock, with the transaction's
// timestamp.
type Locked struct {
	User User
	// Now is the transaction's timestamp (now()).
	Now time.Time
}

// ChangeTime is the time of the changes made under this lock: the
// transaction's timestamp, or the user's last change time if that is later,
// so that a user's entry times never go back.
func (l Locked) ChangeTime() time.Time {
	if l.User.UpdatedAt.After(l.Now) {
		return l.User.UpdatedAt
	}
	return l.Now
}

const userLock = `SELECT ` + userColumns + `, now() FROM users WHERE id = $1 FOR UPDATE`

// QueueLock queues onto b the read of user id's row under a row lock (FOR
// UPDATE), held until the caller's transaction ends. The batch reports
// ErrNotFound when no such user exists. Used by the ledger's batched path,
// which evaluates many changes against the locked balance and then writes
// the result with QueueSet.
func QueueLock(b *pgx.Batch, id int64, out *Locked) {
	b.Queue(userLock, id).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&out.User.ID, &out.User.Balance, &out.User.Seq, &out.User.CreatedAt, &out.User.UpdatedAt, &out.Now)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		return nil
	})
}

// balanceSet writes the outcome of a batch of changes. The seq guard makes
// it a no-op, and the batch fail, if the row is not as the batch read it.
const balanceSet = `UPDATE users SET balance = $2, seq = $3, updated_at = $5
WHERE id = $1 AND seq = $4
RETURNING ` + userColumns

// QueueSet queues onto b the write of user id's new balance, seq and
// updated_at (the time of the batch's entries, Locked.ChangeTime), which
// must follow prevSeq (the seq read by QueueLock in the same transaction).
// *out holds the row after the write. The batch reports an error if the row
// moved meanwhile, which cannot happen while the lock is held, or if the
// balance is out of range (the CHECK constraint).
func QueueSet(b *pgx.Batch, id int64, balance money.Cents, seq, prevSeq int64, at time.Time, out *User) {
	b.Queue(balanceSet, id, balance, seq, prevSeq, at).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&out.ID, &out.Balance, &out.Seq, &out.CreatedAt, &out.UpdatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("set balance of user %d: row is not at seq %d", id, prevSeq)
		}
		if err != nil {
			return fmt.Errorf("set balance: %w", translate(err))
		}
		return nil
	})
}

// Head is what the ledger says a user's row must hold: the last entry's
// balance_after, seq and time.
type Head struct {
	UserID    int64
	Balance   money.Cents
	Seq       int64
	UpdatedAt time.Time
}

// Change is one row corrected by ReplaceTx.
type Change struct {
	UserID                 int64
	OldBalance, NewBalance money.Cents
	OldSeq, NewSeq         int64
}

// LockForRebuildTx blocks every write to the users table until tx ends;
// reads go on.
func LockForRebuildTx(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `LOCK TABLE users IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock users: %w", err)
	}
	return nil
}

// usersRebuild sets every row to its head (users without entries to 0 and
// seq 0) where it differs, and returns the old and new values. The FROM
// list reads the old row (a self-join), which UPDATE ... RETURNING alone
// cannot show before PostgreSQL 18.
const usersRebuild = `WITH heads AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[])
        AS h(user_id, balance, seq, updated_at)
), target AS (
    SELECT u.id, u.balance AS old_balance, u.seq AS old_seq,
        coalesce(h.balance, 0) AS balance, coalesce(h.seq, 0) AS seq,
        coalesce(h.updated_at, u.updated_at) AS updated_at
    FROM users u LEFT JOIN heads h ON h.user_id = u.id
    WHERE (u.balance, u.seq) IS DISTINCT FROM (coalesce(h.balance, 0), coalesce(h.seq, 0))
)
UPDATE users u SET balance = t.balance, seq = t.seq, updated_at = t.updated_at
FROM target t WHERE u.id = t.id
RETURNING u.id, t.old_balance, t.balance, t.old_seq, t.seq`

// ReplaceTx makes the projection equal to heads inside tx (take
// LockForRebuildTx first) and returns the rows it changed, in id order.
func ReplaceTx(ctx context.Context, tx pgx.Tx, heads []Head) ([]Change, error) {
	ids, balances, seqs, times := make([]int64, len(heads)), make([]int64, len(heads)), make([]int64, len(heads)), make([]time.Time, len(heads))
	for i, h := range heads {
		ids[i], balances[i], seqs[i], times[i] = h.UserID, int64(h.Balance), h.Seq, h.UpdatedAt
	}
	rows, err := tx.Query(ctx, usersRebuild, ids, balances, seqs, times)
	if err != nil {
		return nil, fmt.Errorf("rebuild users: %w", err)
	}
	changes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Change])
	if err != nil {
		return nil, fmt.Errorf("rebuild users: %w", translate(err))
	}
	slices.SortFunc(changes, func(a, b Change) int { return cmp.Compare(a.UserID, b.UserID) })
	return changes, nil
}
