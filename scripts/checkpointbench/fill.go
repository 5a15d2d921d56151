package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/ledger"
)

// openingBalance is every filled user's opening amount, in cents (1,000.00).
const openingBalance = 1_000_00

const (
	// usersHave counts the users of ids 1..$1, the ones the fill owns.
	usersHave = `SELECT count(*) FROM users WHERE id BETWEEN 1 AND $1`
	// usersFill writes the users of ids $1..$2 that do not exist yet, each
	// with one opening entry of $3 cents, in one statement: the users rows
	// first (a data-modifying CTE), then their entries, whose foreign key
	// and chain trigger run at the end of the statement and the deferred
	// projection check at commit, as for any write. The hash is
	// SHA-256(32 zero bytes || the version-2 canonical encoding), the
	// encoding built by format() as in docs/audit.md; one now() for every
	// row. MATERIALIZED makes each row's random ids drawn once, so that the
	// hash covers the ids stored.
	usersFill = `WITH s AS MATERIALIZED (
    SELECT g AS user_id, gen_random_uuid() AS id, gen_random_uuid() AS tx
    FROM generate_series($1::bigint, $2::bigint) g
    WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = g)
), u AS (
    INSERT INTO users (id, balance, seq, created_at, updated_at)
    SELECT user_id, $3, 1, now(), now() FROM s
)
INSERT INTO entries (id, user_id, seq, type, amount, balance_after, created_at, prev_hash, hash,
    transaction_id, canonical_version)
SELECT s.id, s.user_id, 1, 'opening', $3, $3, now(), z.h,
    sha256(z.h || convert_to(format(
        E'ledgerd-entry-v2\nid=%s\nuser_id=%s\nseq=1\ntype=opening\namount=%s\nbalance_after=%s\ntransfer_id=\ndescription=0:\nreference=0:\nidempotency_key=0:\ncreated_at=%s\ntransaction_id=%s\nhold_id=\nreversal_of=\n',
        s.id, s.user_id, $3::bigint, $3::bigint, (extract(epoch FROM now()) * 1000000)::bigint, s.tx), 'UTF8')),
    s.tx, 2
FROM s, (SELECT decode(repeat('00', 32), 'hex') AS h) z`
)

// logFunc prints one progress line.
type logFunc func(format string, args ...any)

// fill gives the database the users 1..n, each with one opening entry,
// writing only the missing ones, in transactions of batch users, workers
// at a time. It returns how many it wrote. After a fill it vacuums and
// analyzes users and entries, so that the measurements that follow see
// set hint bits, a visibility map and statistics, not a fresh bulk load.
func fill(ctx context.Context, pool *pgxpool.Pool, n, batch int64, workers int, logf logFunc) (int64, error) {
	var have int64
	if err := pool.QueryRow(ctx, usersHave, n).Scan(&have); err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	if have >= n {
		return 0, nil
	}
	logf("filling %d users (%d there already), %d a transaction", n-have, have, batch)
	start := time.Now()
	var (
		next, written atomic.Int64
		wg            sync.WaitGroup
		errOnce       sync.Once
		first         error
	)
	next.Store(1)
	for range workers {
		wg.Go(func() {
			for lo := next.Add(batch) - batch; lo <= n && ctx.Err() == nil; lo = next.Add(batch) - batch {
				hi := min(lo+batch-1, n)
				var tag int64
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					ct, err := tx.Exec(ctx, usersFill, lo, hi, openingBalance)
					tag = ct.RowsAffected()
					return err
				})
				if err != nil {
					errOnce.Do(func() { first = fmt.Errorf("fill users %d..%d: %w", lo, hi, err) })
					return
				}
				w := written.Add(tag)
				logf("filled %d of %d users (%.0f users/s)", have+w, n, float64(w)/time.Since(start).Seconds())
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		return written.Load(), first
	}
	logf("vacuum analyze users, entries")
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE) users, entries`, pgx.QueryExecModeSimpleProtocol); err != nil {
		return written.Load(), fmt.Errorf("vacuum: %w", err)
	}
	return written.Load(), nil
}

// verifySample verifies the users 1, n, n/2 and a few random ones with
// ledger.VerifyUser, and returns those that fail.
func verifySample(ctx context.Context, l *ledger.Ledger, n int64) (checked int, failing []int64, err error) {
	failing = []int64{}
	ids := []int64{1, n, max(n/2, 1)}
	for range 5 {
		ids = append(ids, 1+rand.Int64N(n)) //nolint:gosec // a sample, not a secret
	}
	for _, id := range ids {
		v, err := l.VerifyUser(ctx, id)
		if err != nil {
			return checked, failing, err
		}
		checked++
		if !v.OK || v.Entries < 1 {
			failing = append(failing, id)
		}
	}
	return checked, failing, nil
}

// pruneTx drops the checkpoints of earlier runs and the outbox rows of
// their writes (no sequencer runs here), so that the kept database does
// not grow with every run. Both checkpoint tables are append-only by
// trigger; in this bench database, and in this transaction only, the
// triggers are skipped (session_replication_role = replica).
const pruneTx = `SET LOCAL session_replication_role = replica;
TRUNCATE checkpoint_chunks, checkpoints, outbox`

func prune(ctx context.Context, pool *pgxpool.Pool) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, pruneTx, pgx.QueryExecModeSimpleProtocol)
		return err
	})
	if err != nil {
		return fmt.Errorf("prune earlier checkpoints: %w", err)
	}
	return nil
}
