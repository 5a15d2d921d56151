package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/projection"
)

// The write path queues changes per user inside the process. While one
// transaction for a user is in flight, further changes for that user wait
// in its queue instead of in the database (where each would hold a
// connection and pile onto the row lock). When the transaction ends, the
// queued changes, up to MaxBatch, go in the next transaction: the row is
// locked once, each change is evaluated in arrival order against the running
// balance (accepted or refused exactly as if applied one by one), and all
// accepted entries, their events and the new balance are written at once
// (group commit). A lone change takes the single guarded UPDATE path, so an
// idle user sees no added latency and no timer is involved.

// request is one change waiting for its answer.
type request struct {
	ctx   context.Context
	draft draft
	idem  *Idempotency // nil without an Idempotency-Key
	done  chan result  // buffered: the drainer never blocks on it
}

type result struct {
	posted Posted
	err    error
}

// userQueue holds the changes of one busy user. It exists only while a
// drainer runs for that user.
type userQueue struct {
	pending []*request
}

type queues struct {
	mu    sync.Mutex
	users map[int64]*userQueue
}

// submit queues r for userID and waits for its answer, or for ctx to end.
// It returns ErrBusy, at once, when the user's queue is full.
func (l *Ledger) submit(ctx context.Context, userID int64, d draft, idem *Idempotency) (Posted, error) {
	r := &request{ctx: ctx, draft: d, idem: idem, done: make(chan result, 1)}
	l.q.mu.Lock()
	q, busy := l.q.users[userID]
	if busy && len(q.pending) >= l.opts.UserQueueLimit {
		l.q.mu.Unlock()
		return Posted{}, ErrBusy
	}
	if !busy {
		q = &userQueue{}
		l.q.users[userID] = q
	}
	q.pending = append(q.pending, r)
	l.q.mu.Unlock()
	if !busy {
		go l.drain(userID, q) //nolint:contextcheck // a batch serves many callers; it runs under its own deadline, not one caller's context
	}

	select {
	case res := <-r.done:
		return res.posted, res.err
	case <-ctx.Done():
		// The change may still be applied if it is already in a batch;
		// otherwise the drainer skips it.
		return Posted{}, ctx.Err()
	}
}

// drain applies q's changes, batch after batch, until the queue is empty.
func (l *Ledger) drain(userID int64, q *userQueue) {
	for {
		l.q.mu.Lock()
		n := min(len(q.pending), l.opts.MaxBatch)
		batch := make([]*request, 0, n)
		for _, r := range q.pending[:n] {
			if r.ctx.Err() == nil { // the caller gave up before its turn
				batch = append(batch, r)
			}
		}
		q.pending = q.pending[n:]
		if n == 0 {
			delete(l.q.users, userID)
			l.q.mu.Unlock()
			return
		}
		l.q.mu.Unlock()
		if len(batch) > 0 {
			l.apply(userID, batch)
		}
	}
}

// apply runs one transaction for batch and answers every request in it.
func (l *Ledger) apply(userID int64, batch []*request) {
	// The transaction is not tied to any one caller: a caller that goes
	// away must not fail the others' changes.
	ctx := context.Background()
	if len(batch) == 1 && batch[0].idem == nil {
		var p Posted
		err := l.withTx(ctx, 1, func(ctx context.Context, tx pgx.Tx) error {
			var err error
			p, err = appendTx(ctx, tx, userID, batch[0].draft)
			return err
		})
		if err == nil {
			l.opts.Observer.EntryPosted(string(p.Entry.Type))
		}
		batch[0].done <- result{posted: p, err: err}
		return
	}
	var results []result
	err := l.withTx(ctx, len(batch), func(ctx context.Context, tx pgx.Tx) error {
		var err error
		results, err = appendBatchTx(ctx, tx, userID, batch)
		return err
	})
	for i, r := range batch {
		switch {
		case err != nil:
			r.done <- result{err: err}
		case errors.Is(results[i].err, errKeyTaken):
			// Another transaction committed this key first: answer with
			// what it stored.
			r.done <- result{err: l.answerTaken(ctx, r.idem)}
		default:
			if results[i].err == nil {
				l.opts.Observer.EntryPosted(string(results[i].posted.Entry.Type))
			}
			r.done <- results[i]
		}
	}
}

// appendBatchTx applies batch to user userID inside tx, in arrival order,
// as if one by one: it claims the requests' idempotency keys, locks the
// row, evaluates each change against the running balance, then writes the
// accepted entries, their events, the final balance and the keys' decided
// answers. It returns each request's outcome (errKeyTaken for a key that
// another transaction committed first; a *ReplayError or
// ErrIdempotencyConflict for a key repeated within the batch); an error
// means the whole batch failed and the transaction must be rolled back.
func appendBatchTx(ctx context.Context, tx pgx.Tx, userID int64, batch []*request) ([]result, error) {
	out := make([]result, len(batch))

	// A key repeated within the batch is answered from its first use.
	first := map[keyRef]int{}
	dupOf := make([]int, len(batch))
	var keys []*Idempotency
	for i, r := range batch {
		dupOf[i] = -1
		if r.idem == nil {
			continue
		}
		k := keyRef{r.idem.Scope, r.idem.Key}
		if j, ok := first[k]; ok {
			dupOf[i] = j
			continue
		}
		first[k] = i
		keys = append(keys, r.idem)
	}

	var (
		claimed = map[keyRef]bool{}
		locked  projection.Locked
		head    chainHead
	)
	b := &pgx.Batch{}
	if len(keys) > 0 {
		queueClaim(b, keys, claimed) // first: it may wait, and holds no other lock then
	}
	projection.QueueLock(b, userID, &locked)
	queueChainHead(b, userID, &head)
	err := tx.SendBatch(ctx, b).Close()
	notFound := errors.Is(err, ErrNotFound)
	if err != nil && !notFound {
		return nil, err
	}
	if !notFound && head.Seq != locked.User.Seq {
		return nil, fmt.Errorf("user %d: projection is at seq %d but the ledger at %d", userID, locked.User.Seq, head.Seq)
	}

	// The requests that take part: no key, or a key this transaction holds.
	var active []*request
	var index []int
	for i, r := range batch {
		switch {
		case dupOf[i] >= 0:
		case r.idem != nil && !claimed[keyRef{r.idem.Scope, r.idem.Key}]:
			out[i].err = errKeyTaken
		default:
			active = append(active, r)
			index = append(index, i)
		}
	}

	var entries []Entry
	if notFound {
		for _, i := range index {
			out[i].err = ErrNotFound
		}
	} else {
		decided, es, err := evaluate(locked.User, head, locked.ChangeTime(), active)
		if err != nil {
			return nil, err
		}
		for k, i := range index {
			out[i] = decided[k]
		}
		entries = es
	}

	b = &pgx.Batch{}
	if len(entries) > 0 {
		msgs := make([]outbox.Message, len(entries))
		for i, e := range entries {
			if msgs[i], err = newEvent(e); err != nil {
				return nil, err
			}
		}
		last := entries[len(entries)-1]
		var user projection.User
		queueInsertEntries(b, entries)
		if err := outbox.QueueEnqueue(b, msgs); err != nil {
			return nil, err
		}
		projection.QueueSet(b, userID, last.BalanceAfter, last.Seq, locked.User.Seq, last.CreatedAt, &user)
	}
	var decisions []keyDecision
	for _, i := range index {
		if r := batch[i]; r.idem != nil {
			var res any
			if out[i].err == nil {
				res = out[i].posted
			}
			decisions = append(decisions, keyDecision{r.idem, r.idem.Render(res, out[i].err)})
		}
	}
	queueDecide(b, decisions)
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, err
		}
	}

	// Repeats within the batch: the first use's answer, or a conflict.
	for i, j := range dupOf {
		switch {
		case j < 0:
		case batch[i].idem.RequestHash != batch[j].idem.RequestHash:
			out[i].err = ErrIdempotencyConflict
		case errors.Is(out[j].err, errKeyTaken):
			out[i].err = errKeyTaken
		default:
			var res any
			if out[j].err == nil {
				res = out[j].posted
			}
			out[i].err = &ReplayError{Response: batch[j].idem.Render(res, out[j].err)}
		}
	}
	return out, nil
}

// evaluate decides each change of batch in order against the running
// balance, starting from u and the chain head, and builds the accepted
// entries with their seq, balance_after and hash chain. Refused changes get
// ErrInsufficientFunds or ErrBalanceLimit, exactly as the guarded UPDATE
// would have answered them one by one.
func evaluate(u projection.User, head chainHead, now time.Time, batch []*request) ([]result, []Entry, error) {
	out := make([]result, len(batch))
	entries := make([]Entry, 0, len(batch))
	balance, seq, prev := u.Balance, u.Seq, head.Hash
	for i, r := range batch {
		next := balance + r.draft.Amount // |amount| ≤ MaxAmount: no overflow
		switch {
		case next < 0:
			out[i].err = ErrInsufficientFunds
			continue
		case next > money.MaxBalance:
			out[i].err = ErrBalanceLimit
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, nil, fmt.Errorf("new entry id: %w", err)
		}
		seq++
		balance = next
		e := Entry{
			ID: id, UserID: u.ID, Seq: seq, Type: r.draft.Type, Amount: r.draft.Amount,
			BalanceAfter: balance, TransferID: r.draft.TransferID,
			Description: r.draft.Description, Reference: r.draft.Reference,
			IdempotencyKey: r.draft.IdempotencyKey, CreatedAt: now, PrevHash: prev,
		}
		e.Hash = e.ComputeHash()
		prev = e.Hash
		entries = append(entries, e)
		// Each caller sees the user right after its own change.
		user := u
		user.Balance, user.Seq, user.UpdatedAt = balance, seq, now
		out[i].posted = Posted{User: user, Entry: e}
	}
	return out, entries, nil
}
