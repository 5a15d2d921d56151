package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
	"github.com/ledgerd/ledgerd/signing"
)

// Limits on the text fields of a change.
const (
	MaxDescriptionLen = 500 // characters
	MaxReferenceLen   = 200 // characters
)

// Options tune a Ledger. Zero values take the defaults.
type Options struct {
	// Signer, when set, signs statements and checkpoints; without it they
	// are unsigned.
	Signer *signing.Signer
	// MaxStatementEntries bounds the entries of one statement; a range
	// with more is refused. Default 100,000 (MaxStatementEntries).
	MaxStatementEntries int
	// CheckpointTimeout bounds the building of one checkpoint, which reads
	// every user's head in one snapshot. Default 1h.
	CheckpointTimeout time.Duration
	// AcquireTimeout bounds the wait for a pooled connection; past it the
	// call fails with ErrUnavailable. Default 5s.
	AcquireTimeout time.Duration
	// TxTimeout bounds one transaction or read, from its first statement to
	// its commit. Default 10s.
	TxTimeout time.Duration
	// VerifyTimeout bounds the verification of one user's whole ledger,
	// which reads every entry of the user, however many: a longer bound
	// than TxTimeout, which is meant for requests. Default 10m.
	VerifyTimeout time.Duration
	// MaxBatch is the most requests applied in one transaction (group
	// commit). 1 turns batching off: every request then has a transaction
	// of its own. Default 512.
	MaxBatch int
	// MaxInflight is the most write transactions in flight at once; no user
	// is in two of them. Default 4.
	MaxInflight int
	// UserQueueLimit is the most requests of one user that may wait in
	// this process while a transaction for that user is in flight; past it
	// a write fails at once with ErrBusy. Default 4096.
	UserQueueLimit int
	// Observer, when set, is told of committed entries, write
	// transactions and retries (the metrics).
	Observer Observer
	// OnCommit, when set, is called after each committed write (which has
	// outbox rows): the sequencer is woken with it.
	OnCommit func()
	// FeedChangedFunc, when set, returns a channel closed when the event
	// log grows next (outbox.Listener.Changed): ReadFeed's long polls wait
	// on it. Without it they poll.
	FeedChangedFunc func() <-chan struct{}
	// ReadPool, when set, is a pool on a read replica (a streaming
	// standby) that serves the reads that may be a little behind; see
	// readpool.go. Without it every read runs on the primary.
	ReadPool *pgxpool.Pool
	// ReadMaxLag is how far behind the read replica may be and still serve
	// reads. Default 10s (DefaultReadMaxLag).
	ReadMaxLag time.Duration
}

// Observer is told what the write path does, for metrics.
type Observer interface {
	// EntryPosted is called once per committed entry.
	EntryPosted(typ string)
	// WriteTx is called after each write transaction (committed or not)
	// with its duration and the number of changes it carried.
	WriteTx(d time.Duration, changes int)
	// TxRetry is called when a transaction is retried (a serialization
	// failure, a deadlock, a user id another process just created).
	TxRetry()
	// BatchSplit is called when a batch failed with a database error and
	// is split in two to isolate the request at fault.
	BatchSplit()
	// TransactionPosted is called once per committed multi-change request
	// (kind "batch" or "reversal") with the number of entries it wrote.
	TransactionPosted(kind string, entries int)
}

type noObserver struct{}

func (noObserver) EntryPosted(string)            {}
func (noObserver) WriteTx(time.Duration, int)    {}
func (noObserver) TxRetry()                      {}
func (noObserver) BatchSplit()                   {}
func (noObserver) TransactionPosted(string, int) {}

// Ledger is the write path and the reads of the ledger.
type Ledger struct {
	pool    *pgxpool.Pool
	replica *replica // nil without a read replica
	opts    Options
	c       committer

	feedKeyMu  sync.Mutex
	feedKeyVal []byte // the feed's cursor key, once read
}

// New returns a Ledger on pool.
func New(pool *pgxpool.Pool, opts Options) *Ledger {
	if opts.AcquireTimeout <= 0 {
		opts.AcquireTimeout = 5 * time.Second
	}
	if opts.TxTimeout <= 0 {
		opts.TxTimeout = 10 * time.Second
	}
	if opts.MaxStatementEntries <= 0 {
		opts.MaxStatementEntries = MaxStatementEntries
	}
	if opts.CheckpointTimeout <= 0 {
		opts.CheckpointTimeout = time.Hour
	}
	if opts.VerifyTimeout <= 0 {
		opts.VerifyTimeout = 10 * time.Minute
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = 4
	}
	if opts.UserQueueLimit <= 0 {
		opts.UserQueueLimit = 4096
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	if opts.ReadMaxLag <= 0 {
		opts.ReadMaxLag = DefaultReadMaxLag
	}
	l := &Ledger{pool: pool, opts: opts, c: committer{waiting: map[int64]int{}, busy: map[int64]bool{}}}
	if opts.ReadPool != nil {
		l.replica = newReplica(opts.ReadPool, pool, opts.ReadMaxLag)
	}
	return l
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
	Idempotency *Idempotency[Posted]
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

// validateText checks the text fields of a change: valid UTF-8 (the
// canonical encoding hashes the bytes the client sent, so nothing may be
// replaced), no NUL character (PostgreSQL's text cannot hold it), and
// within the lengths.
func validateText(description, reference string) error {
	for _, f := range []struct {
		name, value string
		max         int
	}{{"description", description, MaxDescriptionLen}, {"reference", reference, MaxReferenceLen}} {
		if !utf8.ValidString(f.value) || strings.IndexByte(f.value, 0) >= 0 || utf8.RuneCountInString(f.value) > f.max {
			return invalid(f.name, "%s must be valid UTF-8 text without NUL characters, of at most %d characters", f.name, f.max)
		}
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
// positive, a withdrawal when negative): in one transaction, the user's new
// balance, the entry and its outbox event; under load the transaction also
// carries other requests (see groupcommit.go), each decided as if applied
// alone, in arrival order. It returns a *ValidationError, ErrNotFound,
// ErrInsufficientFunds, ErrBalanceLimit, ErrBusy or ErrUnavailable, and on
// any error nothing of this change is written. With an idempotency key it
// may also return a *ReplayError or ErrIdempotencyConflict (nothing
// executed). When ctx ends first it returns ctx.Err(), and the change may
// or may not have been applied.
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
	posted := func(r opResult) Posted { return Posted{User: r.users[0], Entry: r.entries[0]} }
	res := l.submit(ctx, &op{legs: []leg{{c.UserID, d}}, claim: claimOf(c.Idempotency, posted)})
	if res.err != nil {
		return Posted{}, fmt.Errorf("post entry: %w", res.err)
	}
	return posted(res), nil
}

// NewUser asks to create a user. ID 0 asks for an assigned id; a positive
// Balance is recorded as an opening entry.
type NewUser struct {
	ID          int64
	Balance     money.Cents
	Idempotency *Idempotency[projection.User]
}

// maxAssignAttempts bounds how often CreateUser picks another assigned id
// when a client took the one it picked, between the pick and the write.
const maxAssignAttempts = 5

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
	user := func(r opResult) projection.User { return r.users[0] }
	for attempt := 1; ; attempt++ {
		o := &op{create: n.ID, claim: claimOf(n.Idempotency, user)}
		if n.ID == 0 {
			id, err := l.assignID(ctx)
			if err != nil {
				return projection.User{}, fmt.Errorf("create user: %w", err)
			}
			o.create, o.assigned = id, true
		}
		if n.Balance > 0 {
			o.legs = []leg{{o.create, d}}
		}
		res := l.submit(ctx, o)
		if errors.Is(res.err, errIDTaken) && attempt < maxAssignAttempts {
			continue
		}
		if res.err != nil {
			return projection.User{}, fmt.Errorf("create user: %w", res.err)
		}
		return user(res), nil
	}
}

// assignID picks an id for a user created without one.
func (l *Ledger) assignID(ctx context.Context) (int64, error) {
	var id int64
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		var err error
		id, err = projection.AssignID(ctx, conn)
		return err
	})
	return id, err
}

// FindUser returns the user's current state from the projection, with
// Held the sum of its pending holds not yet expired (available = Balance −
// Held), or ErrNotFound or ErrUnavailable.
func (l *Ledger) FindUser(ctx context.Context, id int64) (projection.User, error) {
	var u projection.User
	err := l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		var err error
		if u, err = projection.FindUser(ctx, conn, id); err != nil || u.Held == 0 {
			return err
		}
		// Holds count in held until expiresAt, whether or not a write has
		// recorded their expiry yet.
		var expired int64
		if err := conn.QueryRow(ctx, heldExpired, id).Scan(&expired); err != nil {
			return fmt.Errorf("read expired holds: %w", err)
		}
		u.Held -= money.Cents(expired)
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return u, fmt.Errorf("find user %d: %w", id, err)
	}
	return u, err
}

const heldExpired = `SELECT coalesce(sum(amount), 0)::bigint FROM holds
WHERE user_id = $1 AND status = 'pending' AND expires_at <= now()`

// Ping checks that the database answers, within the Ledger's timeouts.
func (l *Ledger) Ping(ctx context.Context) error {
	return l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		return conn.Ping(ctx)
	})
}
