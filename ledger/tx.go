package ledger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxTxAttempts bounds how often withTx runs a transaction that failed with
// a retryable error (see retryable).
const maxTxAttempts = 3

// withTx runs fn in a transaction on a connection from the pool and commits
// it. It waits at most AcquireTimeout for a connection and gives the whole
// transaction at most TxTimeout. A transaction that fails with a retryable
// error is retried, at most maxTxAttempts times in all. The commit
// error is returned wrapped, so a failed commit never looks like success.
//
// changes is the number of client changes the transaction carries, for the
// metrics (the group-commit batch size); 0 marks a maintenance transaction
// that the write-path metrics leave out.
func (l *Ledger) withTx(ctx context.Context, changes int, fn func(ctx context.Context, tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := l.tryTx(ctx, changes, fn)
		if err == nil && l.opts.OnCommit != nil {
			l.opts.OnCommit()
		}
		if err == nil || attempt >= maxTxAttempts || !retryable(err) {
			return err
		}
		l.opts.Observer.TxRetry()
	}
}

func (l *Ledger) tryTx(ctx context.Context, changes int, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		start := time.Now()
		if changes > 0 {
			defer func() { l.opts.Observer.WriteTx(time.Since(start), changes) }()
		}
		return inTx(ctx, conn, fn)
	})
}

// inTx runs fn in a transaction on conn and commits it. A deferred
// rollback, bounded even when ctx is already done, undoes it when fn
// fails; the commit error is returned wrapped, so a failed commit never
// looks like success.
func inTx(ctx context.Context, conn *pgxpool.Conn, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", classify(ctx, err))
	}
	defer func() {
		// A no-op after Commit.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	if err := fn(ctx, tx); err != nil {
		return classify(ctx, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", classify(ctx, err))
	}
	return nil
}

// withConn runs fn with a pooled connection, waiting at most AcquireTimeout
// for one, and gives fn at most TxTimeout.
func (l *Ledger) withConn(ctx context.Context, fn func(ctx context.Context, conn *pgxpool.Conn) error) error {
	return l.withConnFor(ctx, l.opts.TxTimeout, fn)
}

// withConnFor is withConn with fn given at most timeout.
func (l *Ledger) withConnFor(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, conn *pgxpool.Conn) error) error {
	return l.withPoolConn(ctx, l.pool, timeout, fn)
}

// withPoolConn is withConnFor on a connection of pool (the primary's or
// the read replica's).
func (l *Ledger) withPoolConn(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, fn func(ctx context.Context, conn *pgxpool.Conn) error) error {
	actx, cancel := context.WithTimeout(ctx, l.opts.AcquireTimeout)
	conn, err := pool.Acquire(actx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: acquire connection: %w", ErrUnavailable, err)
	}
	defer conn.Release()
	ctx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	return classify(ctx, fn(ctx, conn))
}

// readSnapshot runs fn in one read-only, repeatable-read transaction on
// a pooled connection, within timeout: every read fn makes sees the same
// committed state of the ledger, while writers go on unblocked (MVCC).
// Verification, the auditor, statements and checkpoints read through it.
func (l *Ledger) readSnapshot(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return l.withConnFor(ctx, timeout, func(ctx context.Context, conn *pgxpool.Conn) error {
		return inSnapshot(ctx, conn, fn)
	})
}

// inSnapshot runs fn in one read-only, repeatable-read transaction on conn.
func inSnapshot(ctx context.Context, conn *pgxpool.Conn, fn func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	return fn(ctx, tx)
}

// retryable reports a serialization failure, a deadlock, or a user id
// taken by a transaction that committed after this one read the id as
// free (another process creating the same user): run again, the
// evaluation sees the user and decides ErrUserExists.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "40001" || pgErr.Code == "40P01" ||
		pgErr.Code == "23505" && pgErr.ConstraintName == "users_pkey"
}

// classify marks errors that mean the database is out of reach, overloaded
// or shutting down as ErrUnavailable. Other errors pass through unchanged.
func classify(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(ctx.Err(), context.Canceled) {
		return err // nothing to classify, or the caller gave up
	}
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &pgErr):
		switch pgErr.Code[:2] {
		case "08", "53", "57": // connection exception, insufficient resources, operator intervention (incl. statement timeout 57014)
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), pgconn.SafeToRetry(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
