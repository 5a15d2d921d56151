package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ledgerd/ledgerd/money"
)

// MaxBatchChanges bounds the changes of one BatchRequest.
const MaxBatchChanges = 100

// BatchChange is one change of a batch: a deposit when Amount is positive,
// a withdrawal when negative.
type BatchChange struct {
	UserID      int64
	Amount      money.Cents
	Description string // "" takes the batch's description
}

// BatchRequest asks to apply several changes of distinct users all or
// nothing.
type BatchRequest struct {
	Changes     []BatchChange
	Description string
	Reference   string
	Idempotency *Idempotency[Batch]
}

// changeField names the i-th change, as ValidationError.Field and
// ChangeError name it.
func changeField(i int) string { return fmt.Sprintf("changes[%d]", i) }

func (r BatchRequest) validate() error {
	if len(r.Changes) == 0 || len(r.Changes) > MaxBatchChanges {
		return invalid("changes", "a batch needs 1 to %d changes (got %d)", MaxBatchChanges, len(r.Changes))
	}
	if err := validateText(r.Description, r.Reference); err != nil {
		return err
	}
	seen := make(map[int64]int, len(r.Changes))
	for i, c := range r.Changes {
		f := changeField(i)
		switch {
		case c.UserID <= 0:
			return invalid(f, "%s: userId must be a positive integer", f)
		case c.Amount == 0:
			return invalid(f, "%s: amount must not be zero", f)
		case c.Amount > money.MaxAmount || c.Amount < -money.MaxAmount:
			return invalid(f, "%s: amount must be at most %s in absolute value", f, money.Format(money.MaxAmount))
		}
		if j, ok := seen[c.UserID]; ok {
			return invalid(f, "%s: user %d already has a change in this batch (changes[%d]); a batch changes each user at most once", f, c.UserID, j)
		}
		seen[c.UserID] = i
		if err := validateText(c.Description, ""); err != nil {
			return invalid(f, "%s: %s", f, err.Error())
		}
	}
	return nil
}

// Batch is a committed batch: one entry per change, in the order of the
// changes, all with the batch's id as their transaction id.
type Batch struct {
	ID          uuid.UUID
	Entries     []Entry
	Description string
	Reference   string
	CreatedAt   time.Time
}

// ChangeError is the refusal of one change of a batch: Index is the
// change's position, Err the refusal (ErrNotFound, ErrInsufficientFunds,
// ErrBalanceLimit). errors.Is and errors.As see Err through it.
type ChangeError struct {
	Index int
	Err   error
}

func (e *ChangeError) Error() string { return changeField(e.Index) + ": " + e.Err.Error() }

// Unwrap returns the refusal.
func (e *ChangeError) Unwrap() error { return e.Err }

// PostBatch applies every change of r in one transaction, through the
// write path every change takes, or none of them: the entries, their
// events and the users' new balances. Changes are decided in order; the
// first one refused refuses the batch. It returns a *ValidationError (the
// request breaks a rule: Field names the change at fault), a *ChangeError
// wrapping ErrNotFound, ErrInsufficientFunds or ErrBalanceLimit (the first
// change refused), ErrBusy or ErrUnavailable, and on any error nothing is
// written (but a decided refusal is stored with an idempotency key). With
// a key it may also return a *ReplayError or ErrIdempotencyConflict.
func (l *Ledger) PostBatch(ctx context.Context, r BatchRequest) (Batch, error) {
	if err := r.validate(); err != nil {
		return Batch{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Batch{}, fmt.Errorf("new batch id: %w", err)
	}
	key := ""
	if r.Idempotency != nil {
		key = r.Idempotency.Key
	}
	legs := make([]leg, len(r.Changes))
	for i, c := range r.Changes {
		d := draft{Type: Deposit, Amount: c.Amount, Description: c.Description, Reference: r.Reference, IdempotencyKey: key}
		if c.Amount < 0 {
			d.Type = Withdrawal
		}
		if d.Description == "" {
			d.Description = r.Description
		}
		legs[i] = leg{c.UserID, d}
	}
	batch := func(res opResult) Batch {
		return Batch{ID: id, Entries: res.entries, Description: r.Description, Reference: r.Reference,
			CreatedAt: committedAt(res.entries)}
	}
	res := l.submit(ctx, &op{legs: legs, perChange: true, claim: claimOf(r.Idempotency, batch), txID: id})
	if res.err != nil {
		return Batch{}, fmt.Errorf("post batch: %w", res.err)
	}
	l.opts.Observer.TransactionPosted("batch", len(res.entries))
	return batch(res), nil
}
