package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Group commit. Ops wait in one queue inside the process, in arrival order.
// Up to MaxInflight transactions run at once, each carrying a batch of up to
// MaxBatch ops, and no user is in two of them: an op whose user is in a
// transaction in flight waits, and so does every later op of that user, so
// each user's ops are decided in arrival order. An op that arrives while a
// transaction slot is free and none of its users is busy goes at once, in a
// batch of its own: an idle ledger adds no latency and no timer is
// involved. Under load, every transaction that ends takes the waiting ops
// that have become free, of one user (a hot account) or of many (spread
// traffic), into the next batch.
//
// A batch whose transaction fails with a database error (not an outage) is
// split in two halves that run one after the other, down to the op at
// fault: one bad op never fails the others, and every op gets a definite
// answer.

// committer is the queue of ops and the state of the transactions in
// flight.
type committer struct {
	mu       sync.Mutex
	pending  []*op
	waiting  map[int64]int  // ops in pending, by user
	busy     map[int64]bool // users of the transactions in flight
	inflight int
}

// submit queues o and waits for its outcome, or for ctx to end. It returns
// ErrBusy at once when one of o's users already has UserQueueLimit ops
// waiting.
func (l *Ledger) submit(ctx context.Context, o *op) opResult {
	o.ctx, o.done, o.users = ctx, make(chan opResult, 1), o.userIDs()
	if o.txID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return opResult{err: fmt.Errorf("new transaction id: %w", err)}
		}
		o.txID = id
	}
	users := o.users
	c := &l.c
	c.mu.Lock()
	free := c.inflight < l.opts.MaxInflight
	for _, u := range users {
		if c.waiting[u] >= l.opts.UserQueueLimit {
			c.mu.Unlock()
			return opResult{err: ErrBusy}
		}
		if c.busy[u] || c.waiting[u] > 0 {
			free = false
		}
	}
	if free {
		l.launch([]*op{o}) //nolint:contextcheck // the batch runs under its own deadline, not this caller's context

	} else {
		c.pending = append(c.pending, o)
		for _, u := range users {
			c.waiting[u]++
		}
	}
	c.mu.Unlock()

	select {
	case res := <-o.done:
		return res
	case <-ctx.Done():
		// The op may still be applied if it is already in a batch;
		// otherwise the committer drops it.
		return opResult{err: ctx.Err()}
	}
}

// launch starts a transaction for batch. c.mu must be held.
func (l *Ledger) launch(batch []*op) {
	c := &l.c
	for _, o := range batch {
		for _, u := range o.users {
			c.busy[u] = true
		}
	}
	c.inflight++
	go l.run(batch) //nolint:contextcheck // a batch serves many callers; it runs under its own deadline, not one caller's context
}

// run commits batch, answers its ops, and starts the batches that have
// become possible.
func (l *Ledger) run(batch []*op) {
	l.commit(batch)
	c := &l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range batch {
		for _, u := range o.users {
			delete(c.busy, u)
		}
	}
	c.inflight--
	l.dispatch()
}

// dispatch starts transactions for the waiting ops whose users are free,
// while slots are free. c.mu must be held.
func (l *Ledger) dispatch() {
	c := &l.c
	for c.inflight < l.opts.MaxInflight && len(c.pending) > 0 {
		var (
			batch   []*op
			rest    = c.pending[:0:0]
			blocked = map[int64]bool{} // users of ops left waiting: later ops of theirs wait too
		)
		for _, o := range c.pending {
			users := o.users
			if o.ctx.Err() != nil { // the caller gave up before its turn
				for _, u := range users {
					c.waiting[u]--
				}
				continue
			}
			free := len(batch) < l.opts.MaxBatch
			for _, u := range users {
				if c.busy[u] || blocked[u] {
					free = false
				}
			}
			if !free {
				rest = append(rest, o)
				for _, u := range users {
					blocked[u] = true
				}
				continue
			}
			batch = append(batch, o)
			for _, u := range users {
				c.waiting[u]--
			}
		}
		for u, n := range c.waiting {
			if n == 0 {
				delete(c.waiting, u)
			}
		}
		c.pending = rest
		if len(batch) == 0 {
			return
		}
		l.launch(batch)
	}
}

// commit runs batch in one transaction and answers each op. A database
// error that is not an outage splits the batch in halves, committed one
// after the other, until the op at fault is alone.
func (l *Ledger) commit(batch []*op) {
	// The transaction is not tied to any one caller: a caller that goes
	// away must not fail the others' changes.
	ctx := context.Background()
	var results []opResult
	err := l.withTx(ctx, len(batch), func(ctx context.Context, tx pgx.Tx) error {
		var err error
		results, err = writeTx(ctx, tx, batch)
		return err
	})
	if err != nil && len(batch) > 1 && !errors.Is(err, ErrUnavailable) {
		l.opts.Observer.BatchSplit()
		mid := len(batch) / 2
		l.commit(batch[:mid])
		l.commit(batch[mid:])
		return
	}
	for i, o := range batch {
		res := opResult{err: err}
		if err == nil {
			res = results[i]
		}
		if errors.Is(res.err, errKeyTaken) {
			// Another transaction committed this key first: answer with
			// what it stored.
			res = opResult{err: l.answerTaken(ctx, o.claim)}
		}
		for _, e := range res.entries {
			if res.err == nil {
				l.opts.Observer.EntryPosted(string(e.Type))
			}
		}
		o.done <- res
	}
}

// waitingOps returns how many ops of userID wait in the queue (not counting
// those in flight). Tests use it to submit in a known order.
func (l *Ledger) waitingOps(userID int64) int {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	n := 0
	for _, o := range l.c.pending {
		if slices.Contains(o.users, userID) {
			n++
		}
	}
	return n
}
