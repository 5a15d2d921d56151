package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/money"
)

// TransferRequest asks to move Amount from one user to another.
type TransferRequest struct {
	FromUserID  int64
	ToUserID    int64
	Amount      money.Cents
	Description string
	Reference   string
	Idempotency *Idempotency[Transfer]
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

// PostTransfer moves the amount in one transaction: both users' entries,
// their events and new balances, or nothing (the rows are locked in id
// order, so that opposite transfers cannot deadlock). It returns a *ValidationError, ErrNotFound (either user),
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

	transfer := func(res opResult) Transfer {
		return Transfer{ID: id, FromUserID: r.FromUserID, ToUserID: r.ToUserID, Amount: r.Amount,
			Entries: [2]Entry{res.entries[0], res.entries[1]}, CreatedAt: committedAt(res.entries)}
	}
	res := l.submit(ctx, &op{legs: []leg{{r.FromUserID, out}, {r.ToUserID, in}}, claim: claimOf(r.Idempotency, transfer), txID: id})
	if res.err != nil {
		return Transfer{}, fmt.Errorf("post transfer: %w", res.err)
	}
	return transfer(res), nil
}
