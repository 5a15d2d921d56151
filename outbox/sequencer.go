package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// FeedChannel is the LISTEN/NOTIFY channel on which the sequencer announces
// new positions in the event log: the relay and the feed's long polls wake
// on it.
const FeedChannel = "ledger_feed"

// sequencerLockKey is the advisory lock that makes one sequencer give
// positions, per database.
const sequencerLockKey int64 = 0x6c65646765726453 // "ledgerdS"

// SequencerConfig configures a Sequencer. Zero values take the defaults.
type SequencerConfig struct {
	// DatabaseURL is the PostgreSQL URL. The sequencer keeps one dedicated
	// connection, which holds its advisory lock.
	DatabaseURL string
	// Name identifies this sequencer in logs and as the application name.
	Name string
	// Batch is the most events given positions in one transaction.
	// Default 5000.
	Batch int
	// PollInterval is the longest wait between two looks at the outbox
	// when no notification arrives. Default 1s.
	PollInterval time.Duration
	// LockRetry is how often a standby tries to take over. Default 1s.
	LockRetry time.Duration
	// Gather is how long the sequencer lets commits gather after a wake-up
	// before it runs, so that one run (one transaction and its WAL flush)
	// takes the events of many write transactions. Default 20ms; negative
	// is none.
	Gather time.Duration
	// MaxBackoff caps the wait between reconnection attempts. Default 10s.
	MaxBackoff time.Duration
	// Logger receives the logs. Default slog.Default().
	Logger *slog.Logger
}

// Sequencer gives the committed events of outbox their positions in the
// event log, in outbox id order (per user, seq order), and removes them
// from outbox, in one transaction per run. Exactly one sequencer works at a
// time (an advisory lock); since its runs commit one after the other, a
// position becomes visible only after every smaller one: the event log can
// be paged by position without ever missing an event that commits later.
// Any number may run; a standby takes over within LockRetry.
type Sequencer struct {
	cfg    SequencerConfig
	poke   chan struct{}
	leader atomic.Bool
}

// NewSequencer returns a sequencer; Run starts it.
func NewSequencer(cfg SequencerConfig) *Sequencer {
	if cfg.Batch <= 0 {
		cfg.Batch = 5000
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.LockRetry <= 0 {
		cfg.LockRetry = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.Gather == 0 {
		cfg.Gather = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = "ledgerd-sequencer"
	}
	return &Sequencer{cfg: cfg, poke: make(chan struct{}, 1)}
}

// Poke wakes the sequencer after a commit with outbox rows. It never
// blocks.
func (s *Sequencer) Poke() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// IsLeader reports whether this sequencer holds the lock.
func (s *Sequencer) IsLeader() bool { return s.leader.Load() }

// Run sequences until ctx ends, reconnecting with capped exponential
// backoff; it returns nil when ctx ends.
func (s *Sequencer) Run(ctx context.Context) error {
	log := s.cfg.Logger.With("sequencer", s.cfg.Name)
	b := backoff{max: s.cfg.MaxBackoff}
	for {
		err := s.session(ctx, log, &b)
		s.leader.Store(false)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // shutting down is not a failure
		}
		wait := b.next()
		log.Warn("sequencer lost its database session; reconnecting", "err", err, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// session runs one database session: standby until the lock is free, then
// the sequencer until the connection fails or ctx ends.
func (s *Sequencer) session(ctx context.Context, log *slog.Logger, b *backoff) error {
	conn, err := connect(ctx, s.cfg.DatabaseURL, s.cfg.Name)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	b.reset()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var locked bool
		err := conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1)`, sequencerLockKey).Scan(&locked)
		cancel()
		if err != nil {
			return fmt.Errorf("try sequencer lock: %w", err)
		}
		if locked {
			log.Info("sequencer is the leader")
			s.leader.Store(true)
			return s.lead(ctx, conn)
		}
		if !sleep(ctx, s.cfg.LockRetry) {
			return nil
		}
	}
}

// lead sequences while it holds the lock on conn.
func (s *Sequencer) lead(ctx context.Context, conn *pgx.Conn) error {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := conn.Exec(qctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var last int64
	if err := conn.QueryRow(qctx, `SELECT coalesce(max(position), 0) FROM event_log`).Scan(&last); err != nil {
		return fmt.Errorf("read the last position: %w", err)
	}
	for ctx.Err() == nil {
		n, err := sequence(ctx, conn, &last, s.cfg.Batch)
		if err != nil {
			return err
		}
		if n == s.cfg.Batch {
			continue // more are waiting
		}
		if err := s.waitForWork(ctx, conn); err != nil {
			return err
		}
		if s.cfg.Gather > 0 && !sleep(ctx, s.cfg.Gather) {
			return nil
		}
	}
	return nil
}

// waitForWork waits for a notification, a poke or PollInterval.
func (s *Sequencer) waitForWork(ctx context.Context, conn *pgx.Conn) error {
	return waitWake[struct{}, struct{}](ctx, conn, s.cfg.PollInterval, s.poke, nil)
}

// sequenceRun moves, in one statement, up to $2 outbox rows in id order
// into the event log at the positions after $1. The event id is left null
// when it is the source's (every event of the write path), a row's bytes
// saved.
const sequenceRun = `WITH moved AS (
    DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT $2)
    RETURNING id, event_id, routing_key, source_id, headers, body, created_at, user_id)
INSERT INTO event_log (position, event_id, routing_key, source_id, headers, body, created_at, user_id)
SELECT $1::bigint + row_number() OVER (ORDER BY id),
    CASE WHEN event_id IS DISTINCT FROM source_id THEN event_id END, routing_key, source_id,
    CASE WHEN body IS NOT NULL THEN headers END, body, created_at, user_id
FROM moved`

// sequence moves up to limit outbox rows, in id order, into the event log
// at the positions after *last, in one transaction that also notifies
// FeedChannel, and advances *last. Reading every row of outbox in id order
// with no cursor, it never skips a row that committed late with a small
// id. It returns how many rows it moved.
func sequence(ctx context.Context, conn *pgx.Conn, last *int64, limit int) (int, error) {
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tx, err := conn.Begin(tctx)
	if err != nil {
		return 0, fmt.Errorf("begin sequencing: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(tctx)) }()
	tag, err := tx.Exec(tctx, sequenceRun, *last, limit)
	if err != nil {
		return 0, fmt.Errorf("append to the event log: %w", err)
	}
	n := int(tag.RowsAffected())
	if n == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(tctx, `SELECT pg_notify($1, '')`, FeedChannel); err != nil {
		return 0, fmt.Errorf("notify the feed: %w", err)
	}
	if err := tx.Commit(tctx); err != nil {
		return 0, fmt.Errorf("commit sequencing: %w", err)
	}
	*last += int64(n)
	return n, nil
}

// connect opens a dedicated connection named name.
func connect(ctx context.Context, url, name string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parse database URL: invalid URL")
	}
	cfg.RuntimeParams["application_name"] = name
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return conn, nil
}

// closeConn releases the session's advisory locks at once, so that a
// standby takes over without waiting for the server to notice the closed
// session, and closes it.
func closeConn(ctx context.Context, conn *pgx.Conn) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	_, _ = conn.Exec(cctx, `SELECT pg_advisory_unlock_all()`)
	_ = conn.Close(cctx)
}
