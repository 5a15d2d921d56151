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
	ID      int64       `db:"id"`
	Balance money.Cents `db:"balance"`
	// Held is the sum of the user's pending holds as last written: holds
	// past their expiry still count here until a write releases them (the
	// ledger subtracts them when it reads a user).
	Held      money.Cents `db:"held"`
	Seq       int64       `db:"seq"`
	CreatedAt time.Time   `db:"created_at"`
	UpdatedAt time.Time   `db:"updated_at"`
}

// Querier runs read queries; *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const userColumns = `id, balance, held, seq, created_at, updated_at`

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

// userAssign returns an id for a user created without one: the sequence's
// next value, or, when a client chose that id already, the first free id
// after it. It reads no more of the users' index than the run of taken ids
// that follows the sequence, so choosing ids on purpose cannot exhaust it.
const userAssign = `WITH n AS (SELECT nextval('users_id_seq') AS id)
SELECT n.id, CASE WHEN NOT EXISTS (SELECT 1 FROM users WHERE id = n.id) THEN n.id ELSE (
    SELECT u.id + 1 FROM users u
    WHERE u.id >= n.id AND u.id < 9223372036854775807
      AND NOT EXISTS (SELECT 1 FROM users v WHERE v.id = u.id + 1)
    ORDER BY u.id LIMIT 1) END
FROM n`

// userAssignSkip moves the sequence past a run of ids that clients chose.
const userAssignSkip = `SELECT setval('users_id_seq', $1)`

// AssignID returns an id that no user has now, for a user created without
// one. The id is not reserved: creating the user can still find it taken by
// a client that chose it meanwhile (then ask again).
func AssignID(ctx context.Context, q Querier) (int64, error) {
	var next int64
	var free *int64
	if err := q.QueryRow(ctx, userAssign).Scan(&next, &free); err != nil {
		return 0, fmt.Errorf("assign user id: %w", err)
	}
	if free == nil {
		return 0, errors.New("assign user id: no free id after the sequence")
	}
	if *free != next {
		if err := q.QueryRow(ctx, userAssignSkip, *free).Scan(new(int64)); err != nil {
			return 0, fmt.Errorf("assign user id: skip taken ids: %w", err)
		}
	}
	return *free, nil
}

// Locked is the state of the rows read under their row locks, with the
// transaction's timestamp.
type Locked struct {
	// Users holds the rows that exist, by id.
	Users map[int64]User
	// Now is the transaction's timestamp (now()).
	Now time.Time
}

// ChangeTime is the time of the changes made to u under this lock: the
// transaction's timestamp, or u's last change time if that is later, so
// that a user's entry times never go back.
func (l Locked) ChangeTime(u User) time.Time {
	if u.UpdatedAt.After(l.Now) {
		return u.UpdatedAt
	}
	return l.Now
}

// usersLock locks the rows in id order, so that two transactions that lock
// overlapping sets never deadlock.
const usersLock = `SELECT ` + userColumns + ` FROM users WHERE id = ANY($1) ORDER BY id FOR UPDATE`

const transactionNow = `SELECT now()`

// QueueLock queues onto b the read of the rows of ids under their row
// locks (FOR UPDATE, taken in id order and held until the caller's
// transaction ends). Ids with no row are missing from out.Users. The ledger
// decides its changes against these rows and writes the outcome with
// QueueInsert and QueueSet.
func QueueLock(b *pgx.Batch, ids []int64, out *Locked) {
	out.Users = make(map[int64]User, len(ids))
	b.Queue(usersLock, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var u User
			if err := rows.Scan(&u.ID, &u.Balance, &u.Held, &u.Seq, &u.CreatedAt, &u.UpdatedAt); err != nil {
				return fmt.Errorf("lock users: %w", err)
			}
			out.Users[u.ID] = u
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("lock users: %w", err)
		}
		return nil
	})
	b.Queue(transactionNow).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&out.Now); err != nil {
			return fmt.Errorf("read transaction time: %w", err)
		}
		return nil
	})
}

// usersInsert creates users with their state after the transaction's
// changes. A taken id fails the statement (users_pkey).
const usersInsert = `INSERT INTO users (id, balance, held, seq, created_at, updated_at)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::timestamptz[])`

// QueueInsert queues onto b the creation of users, each with its final
// balance, seq and times. A taken id fails the batch with a unique
// violation of users_pkey.
func QueueInsert(b *pgx.Batch, users []User) {
	if len(users) == 0 {
		return
	}
	ids, balances, held, seqs := make([]int64, len(users)), make([]int64, len(users)), make([]int64, len(users)), make([]int64, len(users))
	created, updated := make([]time.Time, len(users)), make([]time.Time, len(users))
	for i, u := range users {
		ids[i], balances[i], held[i], seqs[i], created[i], updated[i] = u.ID, int64(u.Balance), int64(u.Held), u.Seq, u.CreatedAt, u.UpdatedAt
	}
	b.Queue(usersInsert, ids, balances, held, seqs, created, updated).Exec(func(pgconn.CommandTag) error { return nil })
}

// Set is the new state of a row, which must still be at PrevSeq.
type Set struct {
	User    User
	PrevSeq int64
}

// usersSet writes the outcome of a transaction's changes. The seq guard
// makes a row that is not as the ledger read it a no-op, which QueueSet
// reports.
const usersSet = `UPDATE users u SET balance = s.balance, held = s.held, seq = s.seq, updated_at = s.updated_at
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[], $6::bigint[])
    AS s(id, balance, seq, prev_seq, updated_at, held)
WHERE u.id = s.id AND u.seq = s.prev_seq`

// QueueSet queues onto b the write of the rows' new balance, seq and
// updated_at (the time of the changes' entries, Locked.ChangeTime). The
// batch reports an error if a row moved since QueueLock read it, which
// cannot happen while the lock is held, or if a balance is out of range
// (the CHECK constraint).
func QueueSet(b *pgx.Batch, sets []Set) {
	if len(sets) == 0 {
		return
	}
	n := len(sets)
	ids, balances, seqs, prevs, times := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]time.Time, n)
	held := make([]int64, n)
	for i, s := range sets {
		ids[i], balances[i], seqs[i], prevs[i], times[i] = s.User.ID, int64(s.User.Balance), s.User.Seq, s.PrevSeq, s.User.UpdatedAt
		held[i] = int64(s.User.Held)
	}
	b.Queue(usersSet, ids, balances, seqs, prevs, times, held).Exec(func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() != int64(n) {
			return fmt.Errorf("set balances: %d of %d rows were not at the seq read under their lock", int64(n)-tag.RowsAffected(), n)
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
	Held      money.Cents
}

// Change is one row corrected by ReplaceTx.
type Change struct {
	UserID                 int64
	OldBalance, NewBalance money.Cents
	OldSeq, NewSeq         int64
	OldHeld, NewHeld       money.Cents
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
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::bigint[])
        AS h(user_id, balance, seq, updated_at, held)
), target AS (
    SELECT u.id, u.balance AS old_balance, u.seq AS old_seq, u.held AS old_held,
        coalesce(h.balance, 0) AS balance, coalesce(h.seq, 0) AS seq, coalesce(h.held, 0) AS held,
        coalesce(h.updated_at, u.updated_at) AS updated_at
    FROM users u LEFT JOIN heads h ON h.user_id = u.id
    WHERE (u.balance, u.seq, u.held) IS DISTINCT FROM (coalesce(h.balance, 0), coalesce(h.seq, 0), coalesce(h.held, 0))
)
UPDATE users u SET balance = t.balance, seq = t.seq, held = t.held, updated_at = t.updated_at
FROM target t WHERE u.id = t.id
RETURNING u.id, t.old_balance, t.balance, t.old_seq, t.seq, t.old_held, t.held`

// ReplaceTx makes the projection equal to heads inside tx (take
// LockForRebuildTx first) and returns the rows it changed, in id order.
func ReplaceTx(ctx context.Context, tx pgx.Tx, heads []Head) ([]Change, error) {
	ids, balances, seqs, times := make([]int64, len(heads)), make([]int64, len(heads)), make([]int64, len(heads)), make([]time.Time, len(heads))
	held := make([]int64, len(heads))
	for i, h := range heads {
		ids[i], balances[i], seqs[i], times[i], held[i] = h.UserID, int64(h.Balance), h.Seq, h.UpdatedAt, int64(h.Held)
	}
	rows, err := tx.Query(ctx, usersRebuild, ids, balances, seqs, times, held)
	if err != nil {
		return nil, fmt.Errorf("rebuild users: %w", err)
	}
	changes, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Change])
	if err != nil {
		return nil, fmt.Errorf("rebuild users: %w", err)
	}
	slices.SortFunc(changes, func(a, b Change) int { return cmp.Compare(a.UserID, b.UserID) })
	return changes, nil
}
