package outbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer runs one statement; *pgxpool.Pool satisfies it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Leader is a background worker that leads among processes (the
// Sequencer): Poke wakes it, IsLeader tells whether it leads.
type Leader interface {
	Poke()
	IsLeader() bool
}

// Notifier wakes the sequencer after commits (which wakes the relays and
// the feed's readers when it has given the new events their positions).
// It pokes the sequencer of its own process directly and, when that one is
// not the leader (or there is none), sends a NOTIFY on NotifyChannel for
// the leader in another process, at most once per interval, outside the
// writers' transactions.
//
// Why not a trigger that NOTIFYs inside each write transaction: PostgreSQL
// serializes the commits of all notifying transactions on one lock, held
// through the commit's WAL flush, which would cap the whole ledger's write
// rate. A late or lost notification costs at most the relay's PollInterval.
type Notifier struct {
	db       Execer
	local    Leader
	interval time.Duration
	logger   *slog.Logger
	wake     chan struct{}
}

// NewNotifier returns a Notifier; local may be nil when this process runs no
// sequencer. Run must be running for NOTIFYs to be sent.
func NewNotifier(db Execer, local Leader, interval time.Duration, logger *slog.Logger) *Notifier {
	if interval <= 0 {
		interval = 20 * time.Millisecond
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Notifier{db: db, local: local, interval: interval, logger: logger, wake: make(chan struct{}, 1)}
}

// Committed tells the notifier that a transaction with outbox rows
// committed. It never blocks.
func (n *Notifier) Committed() {
	if n.local != nil {
		n.local.Poke()
		if n.local.IsLeader() {
			return
		}
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run sends the NOTIFYs until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		}
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := n.db.Exec(nctx, "SELECT pg_notify($1, '')", NotifyChannel); err != nil && ctx.Err() == nil {
			n.logger.Debug("notify relay", "err", err)
		}
		cancel()
		if !sleep(ctx, n.interval) {
			return
		}
	}
}
