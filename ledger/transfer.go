package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/projection"
)

// TransferRequest asks to move Amount from one user to another.
type TransferRequest struct {
	FromUserID  int64
	ToUserID    int64
	Amount      money.Cents
	Description string
	Reference   string
	Idempotency *Idempotency
}

func (r TransferRequest) validate() error {
	switch {
	case r.FromUserID <= 0:
		return invalid("fromUserId", "fromUserId must be a positive integer")
	case r.ToUserID <= 0:
		return invalid("toUserId", "toUserId must be a positive integer")
	case r.FromUserID == r.ToUserID:
		return invalid("toUserId", "a transfer needs two different users")
	case r.Amount <= 0:
		return invalid("amount", "a transfer's amount must be greater than zero")
	case r.Amount > money.MaxAmount:
		return invalid("amount", "amount must be at most %s", money.Format(money.MaxAmount))
	}
	return validateText(r.Description, r.Reference)
}

// Transfer is a committed transfer: a transfer_out entry of the payer and a
// transfer_in entry of the payee, sharing the transfer's id.
type Transfer struct {
	ID         uuid.UUID
	FromUserID int64
	ToUserID   int64
	Amount     money.Cents
	// Entries are the transfer_out entry, then the transfer_in entry.
	Entries   [2]Entry
	CreatedAt time.Time
}

// PostTransfer moves the amount in one transaction: both users' rows are
// changed by guarded updates taken in a fixed order (the lower user id
// first, so that opposite transfers cannot deadlock), with both entries and
// both events. It returns a *ValidationError, ErrNotFound (either user),
// ErrInsufficientFunds (the payer), ErrBalanceLimit (the payee) or
// ErrUnavailable, and on any error nothing is written (but a decided
// rejection is stored with an idempotency key). With a key it may also
// return a *ReplayError or ErrIdempotencyConflict.
func (l *Ledger) PostTransfer(ctx context.Context, r TransferRequest) (Transfer, error) {
	if err := r.validate(); err != nil {
		return Transfer{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Transfer{}, fmt.Errorf("new transfer id: %w", err)
	}
	key := ""
	if r.Idempotency != nil {
		key = r.Idempotency.Key
	}
	tid := uuid.NullUUID{UUID: id, Valid: true}
	out := draft{Type: TransferOut, Amount: -r.Amount, TransferID: tid, Description: r.Description, Reference: r.Reference, IdempotencyKey: key}
	in := draft{Type: TransferIn, Amount: r.Amount, TransferID: tid, Description: r.Description, Reference: r.Reference, IdempotencyKey: key}

	t, err := keyed(ctx, l, r.Idempotency, func(ctx context.Context, tx pgx.Tx) (Transfer, error) {
		legs := []leg{{r.FromUserID, out}, {r.ToUserID, in}}
		if r.ToUserID < r.FromUserID {
			legs[0], legs[1] = legs[1], legs[0]
		}
		entries, _, err := appendLegsTx(ctx, tx, legs)
		if err != nil {
			return Transfer{}, err
		}
		t := Transfer{ID: id, FromUserID: r.FromUserID, ToUserID: r.ToUserID, Amount: r.Amount}
		for _, e := range entries {
			if e.Type == TransferOut {
				t.Entries[0] = e
			} else {
				t.Entries[1] = e
			}
		}
		t.CreatedAt = t.Entries[0].CreatedAt
		if t.Entries[1].CreatedAt.After(t.CreatedAt) {
			t.CreatedAt = t.Entries[1].CreatedAt
		}
		return t, nil
	})
	if err != nil {
		return Transfer{}, fmt.Errorf("post transfer: %w", err)
	}
	l.opts.Observer.EntryPosted(string(TransferOut))
	l.opts.Observer.EntryPosted(string(TransferIn))
	return t, nil
}

// leg is one user's side of a multi-user transaction.
type leg struct {
	userID int64
	draft  draft
}

// appendLegsTx applies one draft to each of several users inside tx, the
// rows locked in the given order, in two round trips. It returns the
// entries and the users' rows after the change, in the same order, or the
// guard's ErrNotFound, ErrInsufficientFunds or ErrBalanceLimit for the first
// leg refused.
func appendLegsTx(ctx context.Context, tx pgx.Tx, legs []leg) ([]Entry, []projection.User, error) {
	applied := make([]projection.Applied, len(legs))
	heads := make([]chainHead, len(legs))
	b := &pgx.Batch{}
	for i, g := range legs {
		projection.QueueApply(b, g.userID, g.draft.Amount, 1, &applied[i])
		queueChainHead(b, g.userID, &heads[i])
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, err
	}
	entries := make([]Entry, len(legs))
	msgs := make([]outbox.Message, len(legs))
	for i, g := range legs {
		if heads[i].Seq != applied[i].PrevSeq {
			return nil, nil, fmt.Errorf("user %d: projection is at seq %d but the ledger at %d", g.userID, applied[i].PrevSeq, heads[i].Seq)
		}
		e, err := newEntry(g.userID, g.draft, applied[i].User, heads[i].Hash)
		if err != nil {
			return nil, nil, err
		}
		entries[i] = e
		if msgs[i], err = newEvent(e); err != nil {
			return nil, nil, err
		}
	}
	b = &pgx.Batch{}
	queueInsertEntries(b, entries)
	if err := outbox.QueueEnqueue(b, msgs); err != nil {
		return nil, nil, err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, err
	}
	users := make([]projection.User, len(legs))
	for i := range applied {
		users[i] = applied[i].User
	}
	return entries, users, nil
}

// newEntry builds the entry that records d, applied to a user whose row is
// now u, continuing the chain after prev.
func newEntry(userID int64, d draft, u projection.User, prev Hash) (Entry, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Entry{}, fmt.Errorf("new entry id: %w", err)
	}
	e := Entry{
		ID: id, UserID: userID, Seq: u.Seq, Type: d.Type, Amount: d.Amount, BalanceAfter: u.Balance,
		TransferID: d.TransferID, Description: d.Description, Reference: d.Reference,
		IdempotencyKey: d.IdempotencyKey, CreatedAt: u.UpdatedAt, PrevHash: prev,
	}
	e.Hash = e.ComputeHash()
	return e, nil
}
