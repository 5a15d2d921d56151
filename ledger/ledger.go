package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// Limits on the text fields of a change.
const (
	MaxDescriptionLen = 500 // characters
	MaxReferenceLen   = 200 // characters
)

// Options tune a Ledger. Zero values take the defaults.
type Options struct {
	// AcquireTimeout bounds the wait for a pooled connection; past it the
	// call fails with ErrUnavailable. Default 5s.
	AcquireTimeout time.Duration
	// TxTimeout bounds one transaction or read, from its first statement to
	// its commit. Default 10s.
	TxTimeout time.Duration
	// MaxBatch is the most changes of one user applied in one transaction
	// (group commit). 1 turns batching off: every change then takes the
	// single guarded UPDATE path. Default 512.
	MaxBatch int
	// UserQueueLimit is the most changes of one user that may wait in this
	// process while a transaction for that user is in flight; past it
	// PostEntry fails at once with ErrBusy. Default 4096.
	UserQueueLimit int
	// Observer, when set, is told of committed entries, write
	// transactions and retries (the metrics).
	Observer Observer
	// OnCommit, when set, is called after each committed write (which has
	// outbox rows): the relay is woken with it.
	OnCommit func()
}

// Observer is told what the write path does, for metrics.
type Observer interface {
	// EntryPosted is called once per committed entry.
	EntryPosted(typ string)
	// WriteTx is called after each write transaction (committed or not)
	// with its duration and the number of changes it carried.
	WriteTx(d time.Duration, changes int)
	// TxRetry is called when a transaction is retried after a
	// serialization failure or a deadlock.
	TxRetry()
}

type noObserver struct{}

func (noObserver) EntryPosted(string)         {}
func (noObserver) WriteTx(time.Duration, int) {}
func (noObserver) TxRetry()                   {}

// Ledger is the write path and the reads of the ledger.
type Ledger struct {
	pool *pgxpool.Pool
	opts Options
	q    queues
}

// New returns a Ledger on pool.
func New(pool *pgxpool.Pool, opts Options) *Ledger {
	if opts.AcquireTimeout <= 0 {
		opts.AcquireTimeout = 5 * time.Second
	}
	if opts.TxTimeout <= 0 {
		opts.TxTimeout = 10 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.UserQueueLimit <= 0 {
		opts.UserQueueLimit = 4096
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	return &Ledger{pool: pool, opts: opts, q: queues{users: map[int64]*userQueue{}}}
}

// Change asks to change one user's balance by Amount (negative for a
// withdrawal).
type Change struct {
	UserID      int64
	Amount      money.Cents
	Description string
	Reference   string
	// Idempotency, when set, stores the decided outcome with the client's
	// key (see Idempotency).
	Idempotency *Idempotency
}

func (c Change) validate() error {
	if c.UserID <= 0 {
		return invalid("id", "user id must be a positive integer")
	}
	if c.Amount == 0 {
		return invalid("amount", "amount must not be zero")
	}
	if c.Amount > money.MaxAmount || c.Amount < -money.MaxAmount {
		return invalid("amount", "amount must be at most %s in absolute value", money.Format(money.MaxAmount))
	}
	return validateText(c.Description, c.Reference)
}

func validateText(description, reference string) error {
	if !utf8.ValidString(description) || utf8.RuneCountInString(description) > MaxDescriptionLen {
		return invalid("description", "description must be valid text of at most %d characters", MaxDescriptionLen)
	}
	if !utf8.ValidString(reference) || utf8.RuneCountInString(reference) > MaxReferenceLen {
		return invalid("reference", "reference must be valid text of at most %d characters", MaxReferenceLen)
	}
	return nil
}

// Posted is the outcome of an applied change.
type Posted struct {
	// User is the user's row after the change.
	User projection.User
	// Entry is the entry that records the change.
	Entry Entry
}

// PostEntry applies c as one ledger entry (a deposit when the amount is
// positive, a withdrawal when negative): in one transaction, the guarded
// update of the user's balance, the entry and its outbox event; under load
// the transaction also carries other changes of the same user (see
// commit.go), each decided as if applied alone, in arrival order. It
// returns a *ValidationError, ErrNotFound, ErrInsufficientFunds,
// ErrBalanceLimit, ErrBusy or ErrUnavailable, and on any error nothing of
// this change is written. With an idempotency key it may also return a
// *ReplayError or ErrIdempotencyConflict (nothing executed). When ctx ends first it returns ctx.Err(), and the
// change may or may not have been applied.
func (l *Ledger) PostEntry(ctx context.Context, c Change) (Posted, error) {
	if err := c.validate(); err != nil {
		return Posted{}, err
	}
	d := draft{Type: Deposit, Amount: c.Amount, Description: c.Description, Reference: c.Reference}
	if c.Amount < 0 {
		d.Type = Withdrawal
	}
	if c.Idempotency != nil {
		d.IdempotencyKey = c.Idempotency.Key
	}
	p, err := l.submit(ctx, c.UserID, d, c.Idempotency)
	if err != nil {
		return Posted{}, fmt.Errorf("post entry: %w", err)
	}
	return p, nil
}

// NewUser asks to create a user. ID 0 asks for an assigned id; a positive
// Balance is recorded as an opening entry.
type NewUser struct {
	ID          int64
	Balance     money.Cents
	Idempotency *Idempotency
}

// CreateUser creates a user, with an opening entry (and its event) when the
// balance is above zero, in one transaction. It returns a *ValidationError,
// ErrUserExists or ErrUnavailable, and on any error nothing is written
// (but a decided ErrUserExists is stored with an idempotency key). With a
// key it may also return a *ReplayError or ErrIdempotencyConflict.
func (l *Ledger) CreateUser(ctx context.Context, n NewUser) (projection.User, error) {
	if n.ID < 0 {
		return projection.User{}, invalid("id", "id must be a positive integer")
	}
	if n.Balance < 0 || n.Balance > money.MaxAmount {
		return projection.User{}, invalid("balance", "balance must be between 0 and %s", money.Format(money.MaxAmount))
	}
	d := draft{Type: Opening, Amount: n.Balance}
	if n.Idempotency != nil {
		d.IdempotencyKey = n.Idempotency.Key
	}
	u, err := keyed(ctx, l, n.Idempotency, func(ctx context.Context, tx pgx.Tx) (projection.User, error) {
		u, err := projection.InsertTx(ctx, tx, n.ID)
		if err != nil || n.Balance == 0 {
			return u, err
		}
		p, err := appendTx(ctx, tx, u.ID, d)
		return p.User, err
	})
	if err != nil {
		return projection.User{}, fmt.Errorf("create user: %w", err)
	}
	if n.Balance > 0 {
		l.opts.Observer.EntryPosted(string(Opening))
	}
	return u, nil
}

// draft is an entry before the write path has given it its place in the
// user's chain.
type draft struct {
	Type           EntryType
	Amount         money.Cents
	TransferID     uuid.NullUUID
	Description    string
	Reference      string
	IdempotencyKey string
}

// appendTx applies d to user userID inside tx: the guarded balance update,
// the entry continuing the user's hash chain, and its outbox event, in two
// round trips. It returns ErrNotFound, ErrInsufficientFunds or
// ErrBalanceLimit when the guard refuses the change; the caller's
// transaction must then be rolled back (withTx does).
func appendTx(ctx context.Context, tx pgx.Tx, userID int64, d draft) (Posted, error) {
	// Round trip 1 (in appendLegsTx): the guarded update, which takes the
	// row lock, and the head of the user's chain. The second statement runs
	// after the first holds the lock, with a fresh snapshot, so it sees the
	// last committed entry. Round trip 2: the entry and its event.
	es, us, err := appendLegsTx(ctx, tx, []leg{{userID, d}})
	if err != nil {
		return Posted{}, err
	}
	return Posted{Entry: es[0], User: us[0]}, nil
}

// FindUser returns the user's current state from the projection, or
// ErrNotFound or ErrUnavailable.
func (l *Ledger) FindUser(ctx context.Context, id int64) (projection.User, error) {
	var u projection.User
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		var err error
		u, err = projection.FindUser(ctx, conn, id)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return u, fmt.Errorf("find user %d: %w", id, err)
	}
	return u, err
}

// Ping checks that the database answers, within the Ledger's timeouts.
func (l *Ledger) Ping(ctx context.Context) error {
	return l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		return conn.Ping(ctx)
	})
}
