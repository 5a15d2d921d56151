package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

const entryColumns = `id, user_id, seq, type, amount, balance_after, transfer_id,
    description, reference, idempotency_key, created_at, prev_hash, hash,
    transaction_id, hold_id, reversal_of, canonical_version`

// entryInsert appends many entries in one statement, in slice order.
const entryInsert = `INSERT INTO entries (` + entryColumns + `)
SELECT e.id, e.user_id, e.seq, e.type, e.amount, e.balance_after, e.transfer_id,
    e.description, e.reference, e.idempotency_key, e.created_at, e.prev_hash, e.hash,
    e.transaction_id, e.hold_id, e.reversal_of, e.canonical_version
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[],
    $7::uuid[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::bytea[], $13::bytea[],
    $14::uuid[], $15::uuid[], $16::uuid[], $17::smallint[])
    WITH ORDINALITY AS e(id, user_id, seq, type, amount, balance_after, transfer_id,
        description, reference, idempotency_key, created_at, prev_hash, hash,
        transaction_id, hold_id, reversal_of, canonical_version, ord)
ORDER BY e.ord`

func queueInsertEntries(b *pgx.Batch, es []Entry) {
	n := len(es)
	var (
		ids, types                    = make([]string, n), make([]string, n)
		users, seqs, amounts, afters  = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		transfers, descs, refs, idems = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		times                         = make([]time.Time, n)
		prevs, hashes                 = make([][]byte, n), make([][]byte, n)
		txs, holds, reversals         = make([]*string, n), make([]*string, n), make([]*string, n)
		versions                      = make([]int16, n)
	)
	for i, e := range es {
		ids[i], users[i], seqs[i], types[i] = e.ID.String(), e.UserID, e.Seq, string(e.Type)
		amounts[i], afters[i] = int64(e.Amount), int64(e.BalanceAfter)
		transfers[i] = uuidText(e.TransferID)
		descs[i], refs[i], idems[i] = nullable(e.Description), nullable(e.Reference), nullable(e.IdempotencyKey)
		times[i] = e.CreatedAt
		prevs[i], hashes[i] = e.PrevHash[:], e.Hash[:]
		txs[i], holds[i], reversals[i], versions[i] = uuidText(e.TransactionID), uuidText(e.HoldID), uuidText(e.ReversalOf), int16(e.Version) //nolint:gosec // 1 or 2
	}
	b.Queue(entryInsert, ids, users, seqs, types, amounts, afters, transfers, descs, refs, idems, times, prevs, hashes,
		txs, holds, reversals, versions)
}

// entryRow is one row of entryColumns as scanned: every column nullable,
// so that it also reads the entry side of an outer join.
type entryRow struct {
	id, transfer, tx, hold, reversal uuid.NullUUID
	userID, seq, amount, after       *int64
	typ, desc, ref, idem             *string
	createdAt                        *time.Time
	prevHash, hash                   []byte
	version                          *int16
}

// dest returns the scan destinations of entryColumns.
func (r *entryRow) dest() []any {
	return []any{&r.id, &r.userID, &r.seq, &r.typ, &r.amount, &r.after, &r.transfer,
		&r.desc, &r.ref, &r.idem, &r.createdAt, &r.prevHash, &r.hash,
		&r.tx, &r.hold, &r.reversal, &r.version}
}

// entry builds the entry; ok is false when the row has none (an outer
// join's empty side).
func (r *entryRow) entry() (e Entry, ok bool) {
	if !r.id.Valid {
		return Entry{}, false
	}
	e = Entry{
		ID: r.id.UUID, UserID: deref64(r.userID), Seq: deref64(r.seq), Type: EntryType(deref(r.typ)),
		Amount: money.Cents(deref64(r.amount)), BalanceAfter: money.Cents(deref64(r.after)), TransferID: r.transfer,
		Description: deref(r.desc), Reference: deref(r.ref), IdempotencyKey: deref(r.idem),
		TransactionID: r.tx, HoldID: r.hold, ReversalOf: r.reversal, Version: 1,
	}
	if r.createdAt != nil {
		e.CreatedAt = *r.createdAt
	}
	if r.version != nil {
		e.Version = int(*r.version)
	}
	copy(e.PrevHash[:], r.prevHash)
	copy(e.Hash[:], r.hash)
	return e, true
}

// scanEntry reads one row of entryColumns.
func scanEntry(row pgx.CollectableRow) (Entry, error) {
	var r entryRow
	if err := row.Scan(r.dest()...); err != nil {
		return Entry{}, err
	}
	e, _ := r.entry()
	return e, nil
}

// uuidText is id as text, nil when null: pgx encodes a text array faster
// than an array of nullable UUID values.
func uuidText(id uuid.NullUUID) *string {
	if !id.Valid {
		return nil
	}
	s := id.UUID.String()
	return &s
}

func deref64(n *int64) int64 {
	if n == nil {
		return 0
	}
	return *n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

const entryFindByID = `SELECT ` + entryColumns + ` FROM entries WHERE id = $1`

// FindEntryByID returns one entry, or ErrEntryNotFound or ErrUnavailable.
func (l *Ledger) FindEntryByID(ctx context.Context, id uuid.UUID) (Entry, error) {
	var e Entry
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, entryFindByID, id.String())
		if err != nil {
			return err
		}
		e, err = pgx.CollectExactlyOneRow(rows, scanEntry)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrEntryNotFound
		}
		return err
	})
	if err != nil && !errors.Is(err, ErrEntryNotFound) {
		return Entry{}, fmt.Errorf("find entry %s: %w", id, err)
	}
	return e, err
}

// EntryFilter selects a page of one user's entries, newest first.
type EntryFilter struct {
	UserID int64
	// BeforeSeq, when positive, starts the page after the entry with this
	// seq (keyset pagination: only entries with a smaller seq).
	BeforeSeq int64
	// From (inclusive) and To (exclusive) bound created_at; nil is open.
	From, To *time.Time
	// Type, when set, keeps only entries of this type.
	Type EntryType
	// Limit is the page size, 1..1000.
	Limit int
}

// MaxPageSize bounds EntryFilter.Limit.
const MaxPageSize = 1000

// EntryPage is one page of entries.
type EntryPage struct {
	Entries []Entry
	// HasMore reports whether entries beyond this page match the filter;
	// the next page starts before the last entry's seq.
	HasMore bool
}

const entryFind = `SELECT ` + entryColumns + ` FROM entries
WHERE user_id = $1
  AND ($2::bigint = 0 OR seq < $2)
  AND ($3::timestamptz IS NULL OR created_at >= $3)
  AND ($4::timestamptz IS NULL OR created_at < $4)
  AND ($5::text = '' OR type = $5)
ORDER BY seq DESC
LIMIT $6`

// FindEntries returns a page of the user's entries, newest first. It
// returns a *ValidationError for a bad filter, ErrNotFound when the user
// does not exist, or ErrUnavailable.
func (l *Ledger) FindEntries(ctx context.Context, f EntryFilter) (EntryPage, error) {
	switch {
	case f.Limit < 1 || f.Limit > MaxPageSize:
		return EntryPage{}, invalid("limit", "limit must be between 1 and %d", MaxPageSize)
	case f.BeforeSeq < 0:
		return EntryPage{}, invalid("cursor", "cursor is not valid")
	case f.Type != "" && !f.Type.Valid():
		names := make([]string, len(EntryTypes))
		for i, t := range EntryTypes {
			names[i] = string(t)
		}
		return EntryPage{}, invalid("type", "type must be one of %s", strings.Join(names, ", "))
	case f.From != nil && f.To != nil && !f.From.Before(*f.To):
		return EntryPage{}, invalid("from", "from must be before to")
	}
	var page EntryPage
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, entryFind, f.UserID, f.BeforeSeq, f.From, f.To, string(f.Type), f.Limit+1)
		if err != nil {
			return err
		}
		entries, err := pgx.CollectRows(rows, scanEntry)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			// An empty page of an unknown user is a 404, not an empty list.
			exists, err := projection.UserExists(ctx, conn, f.UserID)
			if err != nil {
				return err
			}
			if !exists {
				return ErrNotFound
			}
		}
		if len(entries) > f.Limit {
			page.HasMore = true
			entries = entries[:f.Limit]
		}
		page.Entries = entries
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return EntryPage{}, fmt.Errorf("find entries of user %d: %w", f.UserID, err)
	}
	return page, err
}
