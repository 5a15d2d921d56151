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
)

const entryColumns = `id, user_id, seq, type, amount, balance_after, transfer_id,
    description, reference, idempotency_key, created_at, prev_hash, hash,
    transaction_id, hold_id, reversal_of, canonical_version`

// entryColumnsOf is entryColumns, each qualified with alias.
func entryColumnsOf(alias string) string {
	cols := strings.Split(entryColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

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
	if !e.TransactionID.Valid {
		e.TransactionID = uuid.NullUUID{UUID: TransactionOf(e), Valid: true}
	}
	copy(e.PrevHash[:], r.prevHash)
	copy(e.Hash[:], r.hash)
	return e, true
}

// TransactionOf is the transaction id of an entry written before version 2,
// which did not store one: its transfer's id for a transfer's leg, its own
// id for any other entry (each was the only entry of its request). The
// migration 000009 indexes the same expression,
// coalesce(transaction_id, transfer_id, id), as transactionIDExpr.
func TransactionOf(e Entry) uuid.UUID {
	switch {
	case e.TransactionID.Valid:
		return e.TransactionID.UUID
	case e.TransferID.Valid:
		return e.TransferID.UUID
	}
	return e.ID
}

// transactionIDExpr is the SQL of TransactionOf, as indexed by
// entries_transaction_idx.
const transactionIDExpr = `coalesce(transaction_id, transfer_id, id)`

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
