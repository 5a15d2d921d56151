package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// HoldStatus is the state of a hold.
type HoldStatus string

// The states of a hold: pending until captured, voided or expired.
const (
	HoldPending  HoldStatus = "pending"
	HoldCaptured HoldStatus = "captured"
	HoldVoided   HoldStatus = "voided"
	HoldExpired  HoldStatus = "expired"
)

// Limits of a hold's expiry.
const (
	DefaultHoldTTL = 7 * 24 * time.Hour
	MaxHoldTTL     = 30 * 24 * time.Hour
)

// Hold is money of a user's balance reserved for a later withdrawal.
type Hold struct {
	ID     uuid.UUID
	UserID int64
	Amount money.Cents
	// CapturedAmount is what the capture withdrew; 0 before.
	CapturedAmount money.Cents
	Status         HoldStatus
	ExpiresAt      time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Description    string
	Reference      string
	// CaptureEntry is the withdrawal of the capture; zero before.
	CaptureEntry EntryRef
}

// EntryRef names an entry.
type EntryRef struct {
	ID  uuid.UUID `json:"id"`
	Seq int64     `json:"seq"`
}

// holdJSON is a hold as the API and the events show it.
type holdJSON struct {
	ID             uuid.UUID    `json:"id"`
	UserID         int64        `json:"userId"`
	Amount         money.Cents  `json:"amount"`
	CapturedAmount *money.Cents `json:"capturedAmount"`
	Status         HoldStatus   `json:"status"`
	ExpiresAt      string       `json:"expiresAt"`
	CreatedAt      string       `json:"createdAt"`
	UpdatedAt      string       `json:"updatedAt"`
	Description    *string      `json:"description"`
	Reference      *string      `json:"reference"`
	CaptureEntry   *EntryRef    `json:"captureEntry"`
}

// MarshalJSON writes the hold as the contract shows it.
func (h Hold) MarshalJSON() ([]byte, error) {
	j := holdJSON{
		ID: h.ID, UserID: h.UserID, Amount: h.Amount, Status: h.Status,
		ExpiresAt: FormatTime(h.ExpiresAt), CreatedAt: FormatTime(h.CreatedAt), UpdatedAt: FormatTime(h.UpdatedAt),
		Description: nullable(h.Description), Reference: nullable(h.Reference),
	}
	if h.Status == HoldCaptured {
		j.CapturedAmount, j.CaptureEntry = &h.CapturedAmount, &h.CaptureEntry
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode hold: %w", err)
	}
	return b, nil
}

// ErrHoldNotFound means no hold has the given id.
var ErrHoldNotFound = errors.New("hold not found")

// ErrHoldNotPending means the hold was captured, voided or has expired:
// it cannot be captured or voided (a *HoldStateError says which).
var ErrHoldNotPending = errors.New("hold is not pending")

// HoldStateError is ErrHoldNotPending with the hold's status.
type HoldStateError struct{ Status HoldStatus }

func (e *HoldStateError) Error() string { return "the hold is " + string(e.Status) }

// Is makes errors.Is(err, ErrHoldNotPending) hold for a *HoldStateError.
func (e *HoldStateError) Is(target error) bool { return target == ErrHoldNotPending }

// holdKind is what a hold op does.
type holdKind int

const (
	holdPlace holdKind = iota + 1
	holdCapture
	holdVoid
	holdRelease // nothing but the release of the user's expired holds (the sweep)
)

// holdAction is the hold part of an op.
type holdAction struct {
	kind   holdKind
	holdID uuid.UUID
	userID int64 // 0 when the hold is unknown
	// amount is the hold's amount (place), or the amount to capture (0:
	// the whole hold).
	amount    money.Cents
	expiresAt time.Time
	desc, ref string
}

// holdState is one hold's running state while a batch is evaluated.
type holdState struct {
	hold   Hold
	change string // "" unchanged; placed, captured, voided or expired
	new    bool
}

const holdColumns = `id, user_id, status, amount, coalesce(captured_amount, 0), expires_at, created_at, updated_at,
    coalesce(description, ''), coalesce(reference, ''), capture_entry_id, coalesce(capture_seq, 0)`

func scanHold(row pgx.CollectableRow) (Hold, error) {
	var (
		h           Hold
		status      string
		amount, cap int64
		entry       uuid.NullUUID
	)
	if err := row.Scan(&h.ID, &h.UserID, &status, &amount, &cap, &h.ExpiresAt, &h.CreatedAt, &h.UpdatedAt,
		&h.Description, &h.Reference, &entry, &h.CaptureEntry.Seq); err != nil {
		return Hold{}, err
	}
	h.Status, h.Amount, h.CapturedAmount, h.CaptureEntry.ID = HoldStatus(status), money.Cents(amount), money.Cents(cap), entry.UUID
	return h, nil
}

// holdsLock locks the holds the ops name and the pending holds of the
// locked users that have expired (which the batch releases), after the
// users' rows: a hold is only ever locked by a transaction that holds its
// user's row lock, so this cannot deadlock.
const holdsLock = `SELECT ` + holdColumns + ` FROM holds
WHERE id = ANY($1) OR (user_id = ANY($2) AND status = 'pending' AND expires_at <= now())
ORDER BY id FOR UPDATE`

func queueHoldsLock(b *pgx.Batch, ids []uuid.UUID, users []int64, out map[uuid.UUID]*holdState) {
	if ids == nil {
		ids = []uuid.UUID{}
	}
	if users == nil {
		users = []int64{}
	}
	b.Queue(holdsLock, ids, users).Query(func(rows pgx.Rows) error {
		hs, err := pgx.CollectRows(rows, scanHold)
		if err != nil {
			return fmt.Errorf("lock holds: %w", err)
		}
		for _, h := range hs {
			out[h.ID] = &holdState{hold: h}
		}
		return nil
	})
}

const (
	holdInsert = `INSERT INTO holds (id, user_id, status, amount, expires_at, created_at, updated_at, description, reference)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[],
    $7::timestamptz[], $8::text[], $9::text[])`
	holdUpdate = `UPDATE holds h SET status = c.status, captured_amount = nullif(c.captured, 0), updated_at = c.updated_at,
    capture_entry_id = c.entry, capture_seq = nullif(c.seq, 0)
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::timestamptz[], $5::uuid[], $6::bigint[])
    AS c(id, status, captured, updated_at, entry, seq)
WHERE h.id = c.id AND h.status = 'pending'`
	holdChangeInsert = `INSERT INTO hold_changes (id, hold_id, user_id, change, status, amount, captured_amount, expires_at,
    created_at, at, description, reference, capture_entry_id, capture_seq)
SELECT c.id, c.hold_id, c.user_id, c.change, c.status, c.amount, nullif(c.captured, 0), c.expires_at,
    c.created_at, c.at, c.description, c.reference, c.entry, nullif(c.seq, 0)
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::timestamptz[],
    $9::timestamptz[], $10::timestamptz[], $11::text[], $12::text[], $13::uuid[], $14::bigint[])
    AS c(id, hold_id, user_id, change, status, amount, captured, expires_at, created_at, at, description, reference, entry, seq)`
)

// holdsRebuild makes every hold what its last recorded change says (the
// end when there is one, else the placement), deletes holds no change
// records, and returns the ids of the holds it changed, in order. Take
// the table locks of RebuildProjection first.
const holdsRebuild = `WITH last AS (
    SELECT DISTINCT ON (hold_id) hold_id, user_id, status, amount, captured_amount, expires_at,
        created_at, at, description, reference, capture_entry_id, capture_seq
    FROM hold_changes ORDER BY hold_id, change = 'placed'
), gone AS (
    DELETE FROM holds h WHERE NOT EXISTS (SELECT 1 FROM hold_changes c WHERE c.hold_id = h.id)
    RETURNING h.id
), fixed AS (
    INSERT INTO holds AS h (id, user_id, status, amount, captured_amount, expires_at, created_at, updated_at,
        description, reference, capture_entry_id, capture_seq)
    SELECT * FROM last
    ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, status = excluded.status, amount = excluded.amount,
        captured_amount = excluded.captured_amount, expires_at = excluded.expires_at, created_at = excluded.created_at,
        updated_at = excluded.updated_at, description = excluded.description, reference = excluded.reference,
        capture_entry_id = excluded.capture_entry_id, capture_seq = excluded.capture_seq
    WHERE (h.user_id, h.status, h.amount, h.captured_amount, h.expires_at, h.created_at, h.updated_at,
           h.description, h.reference, h.capture_entry_id, h.capture_seq)
        IS DISTINCT FROM (excluded.user_id, excluded.status, excluded.amount, excluded.captured_amount,
           excluded.expires_at, excluded.created_at, excluded.updated_at, excluded.description,
           excluded.reference, excluded.capture_entry_id, excluded.capture_seq)
    RETURNING h.id
)
SELECT id FROM gone UNION ALL SELECT id FROM fixed ORDER BY id`

// rebuildHoldsTx runs holdsRebuild in tx.
func rebuildHoldsTx(ctx context.Context, tx pgx.Tx) ([]uuid.UUID, error) {
	rows, err := tx.Query(ctx, holdsRebuild)
	if err != nil {
		return nil, fmt.Errorf("rebuild holds: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("rebuild holds: %w", err)
	}
	return ids, nil
}

// holdChange is one recorded change: the hold after it.
type holdChange struct {
	id     uuid.UUID
	change string
	hold   Hold
}

// queueHoldWrites queues the new holds, the changed ones and the record of
// every change.
func queueHoldWrites(b *pgx.Batch, changes []holdChange, created []Hold) {
	if len(created) > 0 {
		n := len(created)
		ids, users, statuses, amounts := make([]uuid.UUID, n), make([]int64, n), make([]string, n), make([]int64, n)
		expires, createdAt, updated := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		descs, refs := make([]*string, n), make([]*string, n)
		for i, h := range created {
			ids[i], users[i], statuses[i], amounts[i] = h.ID, h.UserID, string(h.Status), int64(h.Amount)
			expires[i], createdAt[i], updated[i] = h.ExpiresAt, h.CreatedAt, h.UpdatedAt
			descs[i], refs[i] = nullable(h.Description), nullable(h.Reference)
		}
		b.Queue(holdInsert, ids, users, statuses, amounts, expires, createdAt, updated, descs, refs)
	}
	var updates []Hold
	for _, c := range changes {
		if c.change != "placed" {
			updates = append(updates, c.hold)
		}
	}
	if len(updates) > 0 {
		n := len(updates)
		ids, statuses, captured, updated := make([]uuid.UUID, n), make([]string, n), make([]int64, n), make([]time.Time, n)
		entries, seqs := make([]uuid.NullUUID, n), make([]int64, n)
		for i, h := range updates {
			ids[i], statuses[i], captured[i], updated[i] = h.ID, string(h.Status), int64(h.CapturedAmount), h.UpdatedAt
			entries[i] = uuid.NullUUID{UUID: h.CaptureEntry.ID, Valid: h.CaptureEntry.ID != uuid.Nil}
			seqs[i] = h.CaptureEntry.Seq
		}
		b.Queue(holdUpdate, ids, statuses, captured, updated, entries, seqs).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != int64(n) {
				return fmt.Errorf("update holds: %d of %d were not pending", int64(n)-tag.RowsAffected(), n)
			}
			return nil
		})
	}
	if len(changes) == 0 {
		return
	}
	n := len(changes)
	ids, holds, users := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]int64, n)
	kinds, statuses, amounts, captured := make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
	expires, createdAt, at := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	descs, refs, entries, seqs := make([]*string, n), make([]*string, n), make([]uuid.NullUUID, n), make([]int64, n)
	for i, c := range changes {
		h := c.hold
		ids[i], holds[i], users[i], kinds[i], statuses[i] = c.id, h.ID, h.UserID, c.change, string(h.Status)
		amounts[i], captured[i], expires[i], createdAt[i], at[i] = int64(h.Amount), int64(h.CapturedAmount), h.ExpiresAt, h.CreatedAt, h.UpdatedAt
		descs[i], refs[i] = nullable(h.Description), nullable(h.Reference)
		entries[i] = uuid.NullUUID{UUID: h.CaptureEntry.ID, Valid: h.CaptureEntry.ID != uuid.Nil}
		seqs[i] = h.CaptureEntry.Seq
	}
	b.Queue(holdChangeInsert, ids, holds, users, kinds, statuses, amounts, captured, expires, createdAt, at, descs, refs, entries, seqs)
}

// HoldRoutingKey is the routing key, and CloudEvents type, of a hold
// change: "ledger.hold.<change>".
func HoldRoutingKey(change string) string { return "ledger.hold." + change }

const holdChangesByID = `SELECT id, change, hold_id, user_id, status, amount, coalesce(captured_amount, 0), expires_at, created_at, at,
    coalesce(description, ''), coalesce(reference, ''), capture_entry_id, coalesce(capture_seq, 0)
FROM hold_changes WHERE id = ANY($1)`

// readHoldChanges reads recorded changes by id.
func readHoldChanges(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, ids []uuid.UUID) (map[uuid.UUID]holdChange, error) {
	rows, err := q.Query(ctx, holdChangesByID, ids)
	if err != nil {
		return nil, fmt.Errorf("read hold changes: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID]holdChange{}
	for rows.Next() {
		var (
			c           holdChange
			status      string
			amount, cap int64
			entry       uuid.NullUUID
		)
		if err := rows.Scan(&c.id, &c.change, &c.hold.ID, &c.hold.UserID, &status, &amount, &cap, &c.hold.ExpiresAt,
			&c.hold.CreatedAt, &c.hold.UpdatedAt, &c.hold.Description, &c.hold.Reference, &entry, &c.hold.CaptureEntry.Seq); err != nil {
			return nil, fmt.Errorf("read hold changes: %w", err)
		}
		c.hold.Status, c.hold.Amount, c.hold.CapturedAmount, c.hold.CaptureEntry.ID = HoldStatus(status), money.Cents(amount), money.Cents(cap), entry.UUID
		out[c.id] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read hold changes: %w", err)
	}
	return out, nil
}

// holdFind reads a hold; a pending hold past its expiry reads expired,
// whether or not a write has released it yet.
const holdFind = `SELECT id, user_id, CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END AS status,
    amount, coalesce(captured_amount, 0) AS captured_amount, expires_at, created_at,
    CASE WHEN status = 'pending' AND expires_at <= now() THEN expires_at ELSE updated_at END AS updated_at,
    coalesce(description, '') AS description, coalesce(reference, '') AS reference, capture_entry_id,
    coalesce(capture_seq, 0) AS capture_seq
FROM holds`

// FindHold returns a hold, or ErrHoldNotFound or ErrUnavailable.
func (l *Ledger) FindHold(ctx context.Context, id uuid.UUID) (Hold, error) {
	var h Hold
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, holdFind+` WHERE id = $1`, id)
		if err != nil {
			return err
		}
		h, err = pgx.CollectExactlyOneRow(rows, scanHold)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrHoldNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrHoldNotFound) {
		return Hold{}, fmt.Errorf("find hold %s: %w", id, err)
	}
	return h, err
}

// NewHold asks to reserve Amount of a user's balance until ExpiresAt.
type NewHold struct {
	UserID      int64
	Amount      money.Cents
	ExpiresAt   *time.Time // nil: DefaultHoldTTL from now
	Description string
	Reference   string
	Idempotency *Idempotency[Hold]
}

// PlaceHold reserves the amount, in one transaction with its record and
// its ledger.hold.placed event, when the user's available balance (balance
// − held) covers it. It returns a *ValidationError, ErrNotFound,
// ErrInsufficientFunds, ErrBusy or ErrUnavailable; with a key also a
// *ReplayError or ErrIdempotencyConflict.
func (l *Ledger) PlaceHold(ctx context.Context, n NewHold) (Hold, error) {
	now := time.Now()
	expires := now.Add(DefaultHoldTTL)
	if n.ExpiresAt != nil {
		expires = *n.ExpiresAt
	}
	switch {
	case n.UserID <= 0:
		return Hold{}, invalid("id", "user id must be a positive integer")
	case n.Amount <= 0 || n.Amount > money.MaxAmount:
		return Hold{}, invalid("amount", "a hold's amount must be greater than zero and at most %s", money.Format(money.MaxAmount))
	case !expires.After(now):
		return Hold{}, invalid("expiresAt", "expiresAt must be in the future")
	case expires.After(now.Add(MaxHoldTTL)):
		return Hold{}, invalid("expiresAt", "expiresAt must be at most 30 days ahead")
	}
	if err := validateText(n.Description, n.Reference); err != nil {
		return Hold{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Hold{}, fmt.Errorf("new hold id: %w", err)
	}
	return l.submitHold(ctx, &holdAction{kind: holdPlace, holdID: id, userID: n.UserID, amount: n.Amount,
		expiresAt: expires.Truncate(time.Microsecond), desc: n.Description, ref: n.Reference}, n.Idempotency, "place hold")
}

// CaptureHold withdraws amount (0: the whole hold) of a pending hold, in
// one transaction: a withdrawal entry carrying the hold's id, the rest of
// the hold released, the record and the events. It returns ErrHoldNotFound,
// a *HoldStateError (ErrHoldNotPending: captured, voided, or expired, also
// when expiresAt passed before the capture), a *ValidationError (more than
// the hold), ErrBusy or ErrUnavailable; with a key also a *ReplayError or
// ErrIdempotencyConflict.
func (l *Ledger) CaptureHold(ctx context.Context, id uuid.UUID, amount money.Cents, idem *Idempotency[Hold]) (Hold, error) {
	if amount < 0 || amount > money.MaxAmount {
		return Hold{}, invalid("amount", "amount must be greater than zero and at most the hold's amount")
	}
	user, err := l.holdUser(ctx, id)
	if err != nil {
		return Hold{}, fmt.Errorf("capture hold: %w", err)
	}
	return l.submitHold(ctx, &holdAction{kind: holdCapture, holdID: id, userID: user, amount: amount}, idem, "capture hold")
}

// VoidHold releases a pending hold. It returns what CaptureHold returns,
// but never a *ValidationError.
func (l *Ledger) VoidHold(ctx context.Context, id uuid.UUID, idem *Idempotency[Hold]) (Hold, error) {
	user, err := l.holdUser(ctx, id)
	if err != nil {
		return Hold{}, fmt.Errorf("void hold: %w", err)
	}
	return l.submitHold(ctx, &holdAction{kind: holdVoid, holdID: id, userID: user}, idem, "void hold")
}

func (l *Ledger) submitHold(ctx context.Context, h *holdAction, idem *Idempotency[Hold], what string) (Hold, error) {
	hold := func(r opResult) Hold { return *r.hold }
	res := l.submit(ctx, &op{hold: h, claim: claimOf(idem, hold)})
	if res.err != nil {
		return Hold{}, fmt.Errorf("%s: %w", what, res.err)
	}
	return hold(res), nil
}

// holdUser returns the user of a hold (a hold never changes user), or 0
// when no hold has that id: the op then answers ErrHoldNotFound, stored
// with its key like any decided refusal.
func (l *Ledger) holdUser(ctx context.Context, id uuid.UUID) (int64, error) {
	var user int64
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		err := conn.QueryRow(ctx, `SELECT user_id FROM holds WHERE id = $1`, id).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return user, err
}

// ReleaseExpiredHolds records the expiry of up to limit users' holds whose
// expiresAt has passed (each user's in one transaction, through the write
// path, which releases every locked user's expired holds): their
// ledger.hold.expired events, once, whichever replica runs it. It returns
// how many users it visited. Their available balance came back at
// expiresAt whether or not this ran.
func (l *Ledger) ReleaseExpiredHolds(ctx context.Context, limit int) (int, error) {
	var users []int64
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, `SELECT DISTINCT user_id FROM holds WHERE status = 'pending' AND expires_at <= now() LIMIT $1`, limit)
		if err != nil {
			return err
		}
		users, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("find expired holds: %w", err)
	}
	for _, u := range users {
		if res := l.submit(ctx, &op{hold: &holdAction{kind: holdRelease, userID: u}}); res.err != nil {
			return 0, fmt.Errorf("release expired holds of user %d: %w", u, res.err)
		}
	}
	return len(users), nil
}

// PendingHolds returns how many holds are pending (not past their expiry)
// and their sum, or ErrUnavailable: one scan of the pending holds' index.
func (l *Ledger) PendingHolds(ctx context.Context) (int64, money.Cents, error) {
	var n, sum int64
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(amount), 0)::bigint FROM holds
WHERE status = 'pending' AND expires_at > now()`).Scan(&n, &sum)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count pending holds: %w", err)
	}
	return n, money.Cents(sum), nil
}

// HoldFilter selects a page of a user's holds, newest first.
type HoldFilter struct {
	UserID int64
	// Status, when set, keeps only holds in it (an expired hold reads
	// expired whether or not its expiry was recorded).
	Status HoldStatus
	// Before, when set, starts the page after this hold (the cursor).
	Before *Hold
	Limit  int
}

// FindHolds returns a page of a user's holds, newest first, and whether
// more follow. It returns a *ValidationError, ErrNotFound or
// ErrUnavailable.
func (l *Ledger) FindHolds(ctx context.Context, f HoldFilter) ([]Hold, bool, error) {
	switch f.Status {
	case "", HoldPending, HoldCaptured, HoldVoided, HoldExpired:
	default:
		return nil, false, invalid("status", "status must be one of pending, captured, voided, expired")
	}
	if f.Limit < 1 || f.Limit > MaxPageSize {
		return nil, false, invalid("limit", "limit must be between 1 and %d", MaxPageSize)
	}
	var (
		holds []Hold
		more  bool
	)
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		var beforeAt *time.Time
		var beforeID *uuid.UUID
		if f.Before != nil {
			beforeAt, beforeID = &f.Before.CreatedAt, &f.Before.ID
		}
		rows, err := conn.Query(ctx, `SELECT * FROM (`+holdFind+` WHERE user_id = $1
  AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
ORDER BY created_at DESC, id DESC) h WHERE ($4::text = '' OR h.status = $4)
ORDER BY h.created_at DESC, h.id DESC
LIMIT $5`, f.UserID, beforeAt, beforeID, string(f.Status), f.Limit+1)
		if err != nil {
			return err
		}
		if holds, err = pgx.CollectRows(rows, scanHold); err != nil {
			return err
		}
		if len(holds) == 0 {
			ok, err := projection.UserExists(ctx, conn, f.UserID)
			if err != nil {
				return err
			}
			if !ok {
				return ErrNotFound
			}
		}
		if len(holds) > f.Limit {
			holds, more = holds[:f.Limit], true
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, false, fmt.Errorf("find holds of user %d: %w", f.UserID, err)
	}
	return holds, more, err
}
