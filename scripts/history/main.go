// Command history gives a database a long history for make bench: one user
// with -entries entries and the entries table -total entries in all, spread
// over -users other users. Every entry goes through ledgerd's own write path
// (package ledger: the same lock, decide and write, group commit with large
// batches, the chain trigger, the outbox rows), so the chains are valid and
// verify, exactly as if clients had sent the changes. It prints one JSON
// object, {"scenario", "ok", "details"} as the load tool's reports, with
// the counts, the rate and the write cost per change.
//
// It is idempotent: users and entries already there count towards the
// targets, so a second run on the same database does only what is missing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations"
	"github.com/ledgerd/ledgerd/money"
)

type options struct {
	url            string
	user           int64
	entries, total int64
	users          int64
	workers        int
	batch          int
	audit          bool
}

func main() {
	var o options
	flag.StringVar(&o.url, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL of the database to fill (DATABASE_URL)")
	flag.Int64Var(&o.user, "user", 1, "id of the long-history user")
	flag.Int64Var(&o.entries, "entries", 1_000_000, "entries of the long-history user")
	flag.Int64Var(&o.total, "total", 5_000_000, "entries of the whole table")
	flag.Int64Var(&o.users, "users", 10_000, "other users, ids after -user, that hold the rest")
	flag.IntVar(&o.workers, "workers", 4096, "changes in flight")
	flag.IntVar(&o.batch, "batch", 4096, "most changes per transaction (MAX_BATCH)")
	flag.BoolVar(&o.audit, "audit", false, "then time one pass of the continuous auditor over the database")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "history:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.url == "" || o.entries < 1 || o.total < o.entries || o.users < 1 || o.workers < 1 || o.batch < 1 {
		return errors.New("need -database-url, -entries ≥ 1, -total ≥ -entries, -users ≥ 1, -workers ≥ 1, -batch ≥ 1")
	}
	m, err := migrations.New(o.url)
	if err != nil {
		return err
	}
	if err := m.Up(); err != nil {
		return err
	}
	_ = m.Close()
	cfg, err := pgxpool.ParseConfig(o.url)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{MaxBatch: o.batch, UserQueueLimit: o.workers + 1, TxTimeout: time.Minute})

	start := time.Now()
	ids := make([]int64, 0, o.users+1)
	for id := o.user; id <= o.user+o.users; id++ {
		ids = append(ids, id)
	}
	if err := createUsers(ctx, l, ids, o.workers); err != nil {
		return err
	}
	have := func(q string, args ...any) (int64, error) {
		var n int64
		err := pool.QueryRow(ctx, q, args...).Scan(&n)
		return n, err
	}
	hot, err := have(`SELECT seq FROM users WHERE id = $1`, o.user)
	if err != nil {
		return err
	}
	all, err := have(`SELECT coalesce(sum(seq), 0)::bigint FROM users`)
	if err != nil {
		return err
	}
	// The write cost per change: the WAL the changes below write, and the
	// growth of the entries and outbox tables (indexes and TOAST included).
	var walBefore string
	sizes := `SELECT pg_total_relation_size('entries') + pg_total_relation_size('outbox'), pg_total_relation_size('outbox')`
	var bytesBefore, outboxBefore int64
	if err := pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&walBefore); err != nil {
		return err
	}
	if err := pool.QueryRow(ctx, sizes).Scan(&bytesBefore, &outboxBefore); err != nil {
		return err
	}
	// The long-history user first, then the rest spread over the others.
	written := post(ctx, l, o.workers, o.entries-hot, func(int64) int64 { return o.user })
	rest := o.total - all - written
	written += post(ctx, l, o.workers, rest, func(i int64) int64 { return o.user + 1 + i%o.users })
	elapsed := time.Since(start)
	wal, _ := have(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint`, walBefore)
	var bytesAfter, outboxAfter int64
	if err := pool.QueryRow(ctx, sizes).Scan(&bytesAfter, &outboxAfter); err != nil {
		return err
	}
	hot, _ = have(`SELECT seq FROM users WHERE id = $1`, o.user)
	all, _ = have(`SELECT coalesce(sum(seq), 0)::bigint FROM users`)
	out := map[string]any{
		"user": o.user, "user_entries": hot, "entries": all,
		"written": written, "seconds": elapsed.Seconds(), "entries_per_second": float64(written) / elapsed.Seconds(),
	}
	ok := hot >= o.entries && all >= o.total
	if written > 0 {
		out["wal_bytes_per_change"] = wal / written
		out["table_bytes_per_change"] = (bytesAfter - bytesBefore) / written
		out["outbox_bytes_per_change"] = (outboxAfter - outboxBefore) / written
	}
	if o.audit {
		// One pass with the server's defaults; its checkpoints are
		// cleared first, so that it is a first pass over the history.
		if _, err := pool.Exec(ctx, `DELETE FROM audit_progress`); err != nil {
			return err
		}
		a := ledger.NewAuditor(l, ledger.AuditorConfig{})
		t0 := time.Now()
		p, err := a.Pass(ctx)
		if err != nil {
			return fmt.Errorf("audit pass: %w", err)
		}
		out["audit_pass_seconds"] = time.Since(t0).Seconds()
		out["audit_users"], out["audit_entries"], out["audit_failing"] = p.Users, p.Entries, len(p.Failing)
		ok = ok && len(p.Failing) == 0
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"scenario": "history", "ok": ok, "details": out})
}

// createUsers creates the users that do not exist yet, with a balance that
// the deposits only grow.
func createUsers(ctx context.Context, l *ledger.Ledger, ids []int64, workers int) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range min(workers, 64) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(ids)); i = next.Add(1) - 1 {
				_, err := l.CreateUser(ctx, ledger.NewUser{ID: ids[i], Balance: 1_000_00})
				if err != nil && !errors.Is(err, ledger.ErrUserExists) {
					errOnce.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// post sends n deposits of 0.01, the i-th to user(i), with workers in
// flight, and returns how many were written. It prints its progress to
// stderr every few seconds.
func post(ctx context.Context, l *ledger.Ledger, workers int, n int64, user func(int64) int64) int64 {
	if n <= 0 {
		return 0
	}
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
	)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(os.Stderr, "history: %d of %d\n", done.Load(), n)
			}
		}
	}()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if _, err := l.PostEntry(ctx, ledger.Change{UserID: user(i), Amount: money.Cents(1)}); err == nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	return done.Load()
}
