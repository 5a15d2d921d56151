package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of reversals.
var (
	// ErrTransactionNotFound means no entry has the given transaction id.
	ErrTransactionNotFound = errors.New("transaction not found")
	// ErrAlreadyReversed means the transaction's entries were reversed
	// before: a transaction is reversed at most once.
	ErrAlreadyReversed = errors.New("transaction already reversed")
)

// ReversalRequest asks to undo every entry of a transaction.
type ReversalRequest struct {
	TransactionID uuid.UUID
	Description   string
	Idempotency   *Idempotency[Reversal]
}

// Reversal is a committed reversal: for every entry of the reversed
// transaction, in its order, one reversal entry of the opposite amount.
type Reversal struct {
	ID            uuid.UUID
	TransactionID uuid.UUID // the reversed transaction
	Entries       []Entry
	CreatedAt     time.Time
}

// reversalAction is the reversal part of an op: the entries it reverses,
// each once.
type reversalAction struct {
	txID    uuid.UUID
	entries []uuid.UUID // empty when the transaction is unknown
}

// PostReversal reverses every entry of r.TransactionID in one transaction,
// through the write path: for each, a reversal entry of the opposite
// amount whose ReversalOf is that entry, with the reversal's own id as
// transaction id, their events and the users' new balances; or nothing. A
// reversal that debits needs the user's available balance, like every
// debit. It returns a *ValidationError (the transaction holds an opening
// or a reversal entry, which cannot be reversed), ErrTransactionNotFound,
// ErrAlreadyReversed, ErrInsufficientFunds, ErrBalanceLimit, ErrBusy or
// ErrUnavailable, and on any error nothing is written (but a decided
// refusal is stored with an idempotency key). With a key it may also
// return a *ReplayError or ErrIdempotencyConflict.
func (l *Ledger) PostReversal(ctx context.Context, r ReversalRequest) (Reversal, error) {
	if err := validateText(r.Description, ""); err != nil {
		return Reversal{}, err
	}
	// Entries never change, so the transaction's entries read before the
	// write are the ones the write reverses; whether they were reversed
	// meanwhile is decided under the users' locks.
	originals, err := l.transactionEntries(ctx, r.TransactionID)
	if err != nil {
		return Reversal{}, fmt.Errorf("post reversal: %w", err)
	}
	for _, e := range originals {
		if e.Type == Opening || e.Type == ReversalEntry {
			return Reversal{}, invalid("transactionId", "transaction %s holds a %s entry; opening and reversal entries cannot be reversed", r.TransactionID, e.Type)
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Reversal{}, fmt.Errorf("new reversal id: %w", err)
	}
	key := ""
	if r.Idempotency != nil {
		key = r.Idempotency.Key
	}
	rev := &reversalAction{txID: r.TransactionID}
	legs := make([]leg, len(originals))
	for i, e := range originals {
		rev.entries = append(rev.entries, e.ID)
		legs[i] = leg{e.UserID, draft{Type: ReversalEntry, Amount: -e.Amount, Description: r.Description,
			Reference: e.Reference, IdempotencyKey: key, ReversalOf: uuid.NullUUID{UUID: e.ID, Valid: true}}}
	}
	reversal := func(res opResult) Reversal {
		return Reversal{ID: id, TransactionID: r.TransactionID, Entries: res.entries, CreatedAt: committedAt(res.entries)}
	}
	res := l.submit(ctx, &op{legs: legs, reversal: rev, claim: claimOf(r.Idempotency, reversal), txID: id})
	if res.err != nil {
		return Reversal{}, fmt.Errorf("post reversal: %w", res.err)
	}
	l.opts.Observer.TransactionPosted("reversal", len(res.entries))
	return reversal(res), nil
}

// entryFindByTransaction reads a transaction's entries in the order they
// were written (entry ids are UUIDv7, increasing within a process).
const entryFindByTransaction = `SELECT ` + entryColumns + ` FROM entries
WHERE ` + transactionIDExpr + ` = $1 ORDER BY id`

// transactionEntries returns the entries of a transaction, none when it is
// unknown.
func (l *Ledger) transactionEntries(ctx context.Context, txID uuid.UUID) ([]Entry, error) {
	var es []Entry
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, entryFindByTransaction, txID.String())
		if err != nil {
			return err
		}
		es, err = pgx.CollectRows(rows, scanEntry)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read transaction %s: %w", txID, err)
	}
	return es, nil
}

// entryReversed lists which of the given entries a reversal entry
// reverses.
const entryReversed = `SELECT reversal_of FROM entries WHERE reversal_of = ANY($1::uuid[])`

// queueReversed queues, for the batch's reversals, the read of the entries
// already reversed into out. It runs after the users' locks are taken: a
// reversal entry is its user's, so none can commit meanwhile.
func queueReversed(b *pgx.Batch, ops []*op, out map[uuid.UUID]bool) {
	var ids []string
	for _, o := range ops {
		if o.reversal != nil {
			for _, id := range o.reversal.entries {
				ids = append(ids, id.String())
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	b.Queue(entryReversed, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("read reversed entries: %w", err)
			}
			out[id] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read reversed entries: %w", err)
		}
		return nil
	})
}

// checkReversal refuses a reversal whose transaction is unknown or was
// reversed already, by this batch or before it.
func checkReversal(st *batchState, r *reversalAction) error {
	if len(r.entries) == 0 {
		return ErrTransactionNotFound
	}
	if slices.ContainsFunc(r.entries, func(id uuid.UUID) bool { return st.reversed[id] }) {
		return ErrAlreadyReversed
	}
	return nil
}
