package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/projection"
)

// AuditorConfig configures the continuous auditor. Zero values take the
// defaults.
type AuditorConfig struct {
	// Interval is the pause between passes. Default 30s.
	Interval time.Duration
	// MaxUsers bounds the users one pass checks. Default 1000.
	MaxUsers int
	// MaxEntries bounds the entries one pass reads; a user with more new
	// entries is continued in the next pass. Default 100,000.
	MaxEntries int
	// OnPass, when set, is called after each pass with the users and
	// entries checked and the users currently failing.
	OnPass func(users, entries int64, violations int, at time.Time)
	// Logger receives violations (as errors) and failures. Default
	// slog.Default().
	Logger *slog.Logger
}

// Auditor re-verifies, continuously and at bounded cost, the entries added
// since its last pass, with the checks of VerifyUser: seq without gap,
// running sums, the hash chain (continued from a progress mark kept in the
// audit_progress table) and the projection. With the budget a pass has
// left, it also sweeps a few users in id order from their first entry, so
// that over time old entries are re-verified too (and a rewritten old entry
// is found even if its user never changes again). A violation is logged
// and counted until it is gone.
type Auditor struct {
	l   *Ledger
	cfg AuditorConfig

	mu      sync.Mutex
	failing map[int64]Verification
	cursor  time.Time // start of the previous pass; zero before the first
	sweep   int64     // the last user id the full sweep checked
}

// NewAuditor returns an auditor of l; Run starts it.
func NewAuditor(l *Ledger, cfg AuditorConfig) *Auditor {
	if cfg.Interval <= 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.MaxUsers <= 0 {
		cfg.MaxUsers = 1000
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Auditor{l: l, cfg: cfg, failing: map[int64]Verification{}}
}

// Run audits until ctx ends.
func (a *Auditor) Run(ctx context.Context) {
	for {
		if _, err := a.Pass(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrAuditBusy) {
			a.cfg.Logger.Warn("audit pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.cfg.Interval):
		}
	}
}

// AuditPass is the outcome of one pass.
type AuditPass struct {
	Users, Entries int64
	// Failing lists the users that currently fail verification.
	Failing []Verification
}

// auditLockKey makes one auditor at a time pass over a database: every
// replica runs one, and they take turns instead of repeating the work.
const auditLockKey int64 = 0x6c65646765724175 // "ledgerAu"

// Pass runs one audit pass now, unless another process's auditor is in the
// middle of one (then it returns ErrAuditBusy and does nothing).
func (a *Auditor) Pass(ctx context.Context) (AuditPass, error) {
	conn, err := a.l.pool.Acquire(ctx)
	if err != nil {
		return AuditPass{}, fmt.Errorf("audit: %w", classify(ctx, err))
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, auditLockKey).Scan(&locked); err != nil {
		return AuditPass{}, fmt.Errorf("audit lock: %w", err)
	}
	if !locked {
		return AuditPass{}, ErrAuditBusy
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, auditLockKey)
	}()
	return a.pass(ctx)
}

// ErrAuditBusy means another auditor was passing over the database.
var ErrAuditBusy = errors.New("another auditor is passing")

func (a *Auditor) pass(ctx context.Context) (AuditPass, error) {
	start := time.Now()
	candidates, err := a.candidates(ctx)
	if err != nil {
		return AuditPass{}, err
	}
	var out AuditPass
	budget := a.cfg.MaxEntries
	for _, id := range candidates {
		if budget <= 0 {
			break
		}
		// A failing user is checked again from its first entry: an
		// incremental check from its progress mark would pass over the entry
		// at fault and clear it.
		a.mu.Lock()
		_, failing := a.failing[id]
		a.mu.Unlock()
		v, read, err := a.checkUser(ctx, id, budget, failing)
		if err != nil {
			return out, err
		}
		budget -= int(read)
		out.Users++
		out.Entries += read
		a.record(v)
	}
	if budget > 0 {
		n, read, err := a.sweepUsers(ctx, budget)
		if err != nil {
			return out, err
		}
		out.Users += n
		out.Entries += read
	}
	a.mu.Lock()
	if budget > 0 {
		a.cursor = start // everything changed before start is now checked
	}
	for _, v := range a.failing {
		out.Failing = append(out.Failing, v)
	}
	a.mu.Unlock()
	sort.Slice(out.Failing, func(i, j int) bool { return out.Failing[i].UserID < out.Failing[j].UserID })
	if a.cfg.OnPass != nil {
		a.cfg.OnPass(out.Users, out.Entries, len(out.Failing), start)
	}
	return out, nil
}

// sweepUsers fully re-verifies the next users after the sweep cursor,
// within budget entries, and moves the cursor (back to the start after the
// last user).
func (a *Auditor) sweepUsers(ctx context.Context, budget int) (users, entries int64, err error) {
	a.mu.Lock()
	after := a.sweep
	a.mu.Unlock()
	var ids []int64
	err = a.l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, `SELECT id FROM users WHERE id > $1 ORDER BY id LIMIT 100`, after)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("audit sweep: %w", err)
	}
	if len(ids) == 0 {
		a.mu.Lock()
		a.sweep = 0
		a.mu.Unlock()
		return 0, 0, nil
	}
	for _, id := range ids {
		if budget <= 0 {
			break
		}
		v, read, err := a.checkUser(ctx, id, budget, true)
		if err != nil {
			return users, entries, err
		}
		users++
		entries += read
		budget -= int(read)
		a.record(v)
		a.mu.Lock()
		a.sweep = id
		a.mu.Unlock()
	}
	return users, entries, nil
}

// record keeps v's outcome: a failing user is logged once and kept until it
// verifies again.
func (a *Auditor) record(v Verification) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if v.OK {
		delete(a.failing, v.UserID)
		return
	}
	if _, known := a.failing[v.UserID]; !known {
		a.cfg.Logger.Error("audit: user's ledger fails verification", "user_id", v.UserID,
			"first_bad_seq", v.FirstBadSeq, "chain_valid", v.ChainValid,
			"ledger_balance", money.Format(v.LedgerBalance), "projected_balance", money.Format(v.ProjectedBalance))
	}
	a.failing[v.UserID] = v
}

// auditBehind lists users whose projection is ahead of their progress mark;
// the first pass uses it, once, over all users.
const auditBehind = `SELECT u.id FROM users u LEFT JOIN audit_progress c ON c.user_id = u.id
WHERE u.seq > coalesce(c.seq, 0) ORDER BY u.id LIMIT $1`

// auditChanged lists users with entries whose id (a UUIDv7, ordered by its
// creation time) is at or after $1: a range scan of the primary key, so a
// pass costs what changed, not the size of the ledger.
const auditChanged = `SELECT DISTINCT user_id FROM entries WHERE id >= $1 LIMIT $2`

// auditMismatched compares, for a page of users in id order, the projected
// seq and balance with the user's last entry (one probe of
// entries_user_seq_key each) and held with the sum of its pending holds
// by their record (hold_changes_user_idx),
// and lists the users where they differ, ahead or behind, and the last id
// compared.
const auditMismatched = `SELECT u.id, (u.seq, u.balance, u.held) IS DISTINCT FROM (coalesce(e.seq, 0), coalesce(e.balance_after, 0), h.pending)
FROM users u
LEFT JOIN LATERAL (
    SELECT seq, balance_after FROM entries WHERE user_id = u.id ORDER BY seq DESC LIMIT 1) e ON true
CROSS JOIN LATERAL (
    SELECT coalesce(sum(pending), 0) AS pending FROM (` + recordedPending + `
        AND p.user_id = u.id GROUP BY p.user_id) r) h
WHERE u.id > $1
ORDER BY u.id
LIMIT $2`

// auditPage is how many users one statement of mismatched compares.
const auditPage = 10_000

// mismatched compares every user's projection with its ledger's head, a
// page at a time, and returns the users where they differ.
func (a *Auditor) mismatched(ctx context.Context) ([]int64, error) {
	var out []int64
	for after := int64(0); ; {
		var n int
		err := a.l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
			rows, err := conn.Query(ctx, auditMismatched, after, auditPage)
			if err != nil {
				return err
			}
			var (
				id  int64
				bad bool
			)
			_, err = pgx.ForEachRow(rows, []any{&id, &bad}, func() error {
				n, after = n+1, id
				if bad {
					out = append(out, id)
				}
				return nil
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("audit: compare projections: %w", err)
		}
		if n < auditPage {
			return out, nil
		}
	}
}

// candidates returns the users to check: those failing, those whose
// projection disagrees with their ledger's head, then those changed since
// the previous pass (all that are behind, on the first).
func (a *Auditor) candidates(ctx context.Context) ([]int64, error) {
	a.mu.Lock()
	cursor := a.cursor
	ids := make([]int64, 0, len(a.failing))
	for id := range a.failing {
		ids = append(ids, id)
	}
	a.mu.Unlock()

	var changed []int64
	err := a.l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
		var rows pgx.Rows
		var err error
		if cursor.IsZero() {
			rows, err = conn.Query(ctx, auditBehind, a.cfg.MaxUsers)
		} else {
			// An entry's id is made just before its transaction, which can
			// commit up to TxTimeout later: look back that far, and more.
			since := cursor.Add(-max(2*time.Minute, 2*a.l.opts.TxTimeout))
			rows, err = conn.Query(ctx, auditChanged, uuidAt(since).String(), a.cfg.MaxUsers)
		}
		if err != nil {
			return err
		}
		changed, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("audit: find changed users: %w", err)
	}
	mismatched, err := a.mismatched(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[int64]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range slices.Concat(mismatched, changed) {
		if !seen[id] {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// uuidAt is the smallest UUIDv7 of instant t.
func uuidAt(t time.Time) uuid.UUID {
	var u uuid.UUID
	ms := uint64(t.UnixMilli()) //nolint:gosec // instants after 1970
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	return u
}

const (
	progressFind = `SELECT seq, hash, balance FROM audit_progress WHERE user_id = $1`
	entriesAfter = `SELECT ` + entryColumns + ` FROM entries WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`
	progressSave = `INSERT INTO audit_progress (user_id, seq, hash, balance, checked_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (user_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
    balance = excluded.balance, checked_at = excluded.checked_at
WHERE audit_progress.seq < excluded.seq`
)

// checkUser verifies user id's entries after its progress mark (from the
// first entry when full), reading at most budget entries, in one snapshot,
// and advances the mark when they verify. A full check that reaches
// the mark must also arrive at the mark's hash. It returns the
// verification and the entries read.
func (a *Auditor) checkUser(ctx context.Context, id int64, budget int, full bool) (Verification, int64, error) {
	v := Verification{UserID: id}
	var read int64
	var save *chainCheck
	err := a.l.readSnapshot(ctx, a.l.opts.TxTimeout, func(ctx context.Context, tx pgx.Tx) error {
		u, err := projection.FindUser(ctx, tx, id)
		if err != nil {
			return err
		}
		c := chainCheck{chainOK: true}
		var (
			markSeq     int64
			markHash    []byte
			markBalance int64
		)
		err = tx.QueryRow(ctx, progressFind, id).Scan(&markSeq, &markHash, &markBalance)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			markSeq = 0
		case err != nil:
			return err
		case !full:
			c.n = markSeq
			copy(c.prevHash[:], markHash)
			c.balance = money.Cents(markBalance)
		}
		from := c.n
		rows, err := tx.Query(ctx, entriesAfter, id, from, budget)
		if err != nil {
			return err
		}
		entries, err := pgx.CollectRows(rows, scanEntry)
		if err != nil {
			return err
		}
		for _, e := range entries {
			c.add(e)
			if full && e.Seq == markSeq && (!bytes.Equal(e.Hash[:], markHash) || int64(e.BalanceAfter) != markBalance) {
				// The chain recomputes but ends elsewhere than it did when
				// checked: rewritten wholesale since.
				c.chainOK = false
				if c.firstBad == 0 {
					c.firstBad = e.Seq
				}
			}
		}
		read = int64(len(entries))
		v.Entries, v.LedgerBalance, v.ChainValid, v.FirstBadSeq = c.n, c.balance, c.chainOK, c.firstBad
		v.ProjectedBalance = u.Balance
		// Complete: every entry up to the projection was read, or the end
		// of the ledger was (a projection ahead of its ledger fails too).
		complete := c.n >= u.Seq || len(entries) < budget
		v.OK = c.firstBad == 0 && c.chainOK && (!complete || (u.Balance == c.balance && u.Seq == c.n))
		if v.OK && c.n > from {
			save = &c
		}
		return nil
	})
	if err == nil && save != nil {
		err = a.l.withConn(ctx, func(ctx context.Context, conn *pgxpool.Conn) error {
			_, err := conn.Exec(ctx, progressSave, id, save.n, save.prevHash[:], int64(save.balance))
			return err
		})
	}
	if err != nil {
		return v, read, fmt.Errorf("audit user %d: %w", id, err)
	}
	return v, read, nil
}
