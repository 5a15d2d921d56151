package ledger

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Read routing. With Options.ReadPool set (DATABASE_READ_URL), the reads
// that may be a little behind (history and search, point-in-time
// balances, statements, checkpoints and proofs, the event feed, verify)
// run on that replica while it is up and no further behind than
// Options.ReadMaxLag; otherwise, and whenever a read on the replica fails
// for want of the replica, they run on the primary. Current balances,
// holds, idempotency and every write never touch the replica.
//
// The replica's state is sampled at most every replicaSampleEvery, by the
// read that finds the last sample stale (the others use the last sample
// meanwhile). A sample reads the primary's WAL position and clock, then
// the replica's replay position. The replica's as-of instant is the latest
// primary clock sampled at a WAL position the replica has replayed (every
// change committed before that instant is on the replica), or its last
// replayed commit's timestamp when that is later; its lag is the primary's
// clock minus the as-of. Unlike now() − pg_last_xact_replay_timestamp(),
// this does not grow while the primary is idle and the replica current.
//
// A read served by the replica records its as-of in the context's
// ReadOrigin (see WithReadOrigin), which the HTTP layer turns into the
// X-Data-As-Of header; a read served by the primary records nothing: its
// answer is current. A not-found answer of the replica is asked again of
// the primary (the replica may not have replayed the user, entry or
// checkpoint yet), so a 404 always comes from the primary.

// Defaults of the read routing.
const (
	// DefaultReadMaxLag is the default of Options.ReadMaxLag.
	DefaultReadMaxLag = 10 * time.Second
	// replicaSampleEvery is how often the replica's state is sampled.
	replicaSampleEvery = 500 * time.Millisecond
	// replicaSampleTimeout bounds one sample.
	replicaSampleTimeout = time.Second
	// maxWALMarks bounds the primary positions kept to date the replica.
	maxWALMarks = 256
)

// ReplicaStatus is the read replica's state as last sampled.
type ReplicaStatus struct {
	// Configured is whether a read replica is set at all.
	Configured bool
	// InUse is whether reads go to the replica now.
	InUse bool
	// Reason says why the replica is not in use: "starting" (no sample
	// yet), "down", "primary unreachable" (the lag cannot be measured),
	// "lagging" or "no replayed transaction".
	Reason string
	// AsOf is the instant up to which the replica holds every committed
	// change; zero when unknown.
	AsOf time.Time
	// Lag is how far the replica is behind the primary; meaningful when
	// AsOf is set.
	Lag time.Duration
	// SampledAt is when the state was sampled (the primary's clock).
	SampledAt time.Time
}

// walMark is the primary's WAL position at an instant of its clock.
type walMark struct {
	lsn int64
	at  time.Time
}

// replica routes reads to the read pool while it is current enough.
type replica struct {
	pool    *pgxpool.Pool
	primary *pgxpool.Pool
	maxLag  time.Duration

	mu       sync.Mutex
	status   ReplicaStatus
	sampled  time.Time // local clock of the last sample, for its staleness
	sampling bool
	marks    []walMark // oldest first
}

func newReplica(pool, primary *pgxpool.Pool, maxLag time.Duration) *replica {
	return &replica{pool: pool, primary: primary, maxLag: maxLag,
		status: ReplicaStatus{Configured: true, Reason: "starting"}}
}

// current returns the replica's state, sampling it first when the last
// sample is stale and no other call is sampling it.
func (r *replica) current(ctx context.Context) ReplicaStatus {
	r.mu.Lock()
	if r.sampling || time.Since(r.sampled) < replicaSampleEvery {
		st := r.status
		r.mu.Unlock()
		return st
	}
	r.sampling = true
	r.mu.Unlock()

	// A caller that gives up must not leave a failed sample behind.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replicaSampleTimeout)
	defer cancel()
	st := r.sample(sctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.sampled, r.sampling = st, time.Now(), false
	return st
}

// markDown takes the replica out of use until the next sample, after a
// read on it failed for want of the replica.
func (r *replica) markDown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.InUse, r.status.Reason = false, "down"
	r.sampled = time.Now()
}

// sample measures the replica's as-of and lag. Called by one goroutine at
// a time.
func (r *replica) sample(ctx context.Context) ReplicaStatus {
	st := ReplicaStatus{Configured: true}
	var mark walMark
	err := r.primary.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, clock_timestamp()`).
		Scan(&mark.lsn, &mark.at)
	if err != nil {
		st.Reason = "primary unreachable"
		return st
	}
	st.SampledAt = mark.at
	var (
		inRecovery bool
		replayed   *int64
		replayedAt *time.Time
		now        time.Time
	)
	err = r.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(),
	(pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, pg_last_xact_replay_timestamp(), clock_timestamp()`).
		Scan(&inRecovery, &replayed, &replayedAt, &now)
	if err != nil {
		st.Reason = "down"
		return st
	}
	if !inRecovery {
		// Not a standby (a promoted one, or the primary itself): current.
		st.AsOf = now
	} else {
		st.AsOf = r.asOf(mark, replayed)
		if replayedAt != nil && replayedAt.After(st.AsOf) {
			st.AsOf = *replayedAt
		}
	}
	if st.AsOf.IsZero() {
		st.Reason = "no replayed transaction"
		return st
	}
	st.Lag = max(mark.at.Sub(st.AsOf), 0)
	if st.Lag > r.maxLag {
		st.Reason = "lagging"
		return st
	}
	st.InUse = true
	return st
}

// asOf records the primary's mark and returns the latest marked instant
// whose WAL position the replica has replayed, zero when none is.
func (r *replica) asOf(mark walMark, replayed *int64) time.Time {
	r.marks = append(r.marks, mark)
	if len(r.marks) > maxWALMarks {
		r.marks = r.marks[len(r.marks)-maxWALMarks:]
	}
	if replayed == nil {
		return time.Time{}
	}
	i := -1
	for j, m := range r.marks {
		if m.lsn <= *replayed {
			i = j
		}
	}
	if i < 0 {
		return time.Time{}
	}
	r.marks = r.marks[i:] // older marks can no longer be the answer
	return r.marks[0].at
}

// ReplicaStatus returns the read replica's state (sampling it when the
// last sample is stale), for /readyz; Configured is false without one.
func (l *Ledger) ReplicaStatus(ctx context.Context) ReplicaStatus {
	if l.replica == nil {
		return ReplicaStatus{}
	}
	return l.replica.current(ctx)
}

// ReadOrigin records where the reads of one request were served from.
// It is safe for concurrent use.
type ReadOrigin struct {
	mu   sync.Mutex
	asOf time.Time
}

type readOriginKey struct{}

// WithReadOrigin returns a context whose routed reads record their origin
// in the returned ReadOrigin.
func WithReadOrigin(ctx context.Context) (context.Context, *ReadOrigin) {
	o := &ReadOrigin{}
	return context.WithValue(ctx, readOriginKey{}, o), o
}

// AsOf returns the replica's as-of instant when a read was served by the
// read replica (the earliest, when several were), and false when every
// read was served by the primary.
func (o *ReadOrigin) AsOf() (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.asOf, !o.asOf.IsZero()
}

func (o *ReadOrigin) record(t time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.asOf.IsZero() || t.Before(o.asOf) {
		o.asOf = t
	}
}

type servedAsOfKey struct{}

// servedAsOf returns, inside a routed read, the replica's as-of instant
// when the read runs on the replica.
func servedAsOf(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(servedAsOfKey{}).(time.Time)
	return t, ok
}

// withReadConn is withConnFor for the reads that may run on the read
// replica: on it while it is in use, else on the primary. A read that
// fails on the replica for want of it (unreachable, overloaded, or
// cancelled by a recovery conflict) takes the replica out of use and runs
// again on the primary; so does a not-found answer of the replica (see
// notYet), leaving the replica in use. fn must therefore set its results
// afresh on each call.
// Inside fn, servedAsOf tells whether the read runs on the replica.
func (l *Ledger) withReadConn(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, conn *pgxpool.Conn) error) error {
	if l.replica != nil {
		if st := l.replica.current(ctx); st.InUse {
			err := l.withPoolConn(ctx, l.replica.pool, timeout, func(ctx context.Context, conn *pgxpool.Conn) error {
				return fn(context.WithValue(ctx, servedAsOfKey{}, st.AsOf), conn)
			})
			switch {
			case err == nil:
				if o, ok := ctx.Value(readOriginKey{}).(*ReadOrigin); ok {
					o.record(st.AsOf)
				}
				return nil
			case notYet(err):
				// Not found on the replica may mean not replayed yet (a
				// user just created): only the primary may say 404.
			case ctx.Err() != nil || !replicaFailed(err):
				return err
			default:
				l.replica.markDown()
			}
		}
	}
	return l.withPoolConn(ctx, l.pool, timeout, fn)
}

// notYet reports a not-found answer, which a replica behind the primary
// may give for what the primary has.
func notYet(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrEntryNotFound) ||
		errors.Is(err, ErrCheckpointNotFound) || errors.Is(err, ErrNotInCheckpoint)
}

// replicaFailed reports an error of the replica rather than of the read:
// unreachable or overloaded (ErrUnavailable), or a query cancelled by a
// conflict with recovery (40001 on a standby).
func replicaFailed(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, ErrUnavailable) || errors.As(err, &pgErr) && pgErr.Code == "40001"
}

// readSnapshotRouted is readSnapshot on the read replica while it is in
// use (see withReadConn).
func (l *Ledger) readSnapshotRouted(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return l.withReadConn(ctx, timeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		return inSnapshot(ctx, conn, fn)
	})
}
