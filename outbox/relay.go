package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

// NotifyChannel is the PostgreSQL LISTEN/NOTIFY channel on which writers
// wake the relay after a commit.
const NotifyChannel = "ledger_outbox"

// relayLockKey is the advisory lock that makes one relay the publisher,
// per database.
const relayLockKey int64 = 0x6c65646765726452 // "ledgerdR"

// RelayConfig configures a Relay. Zero durations take the defaults.
type RelayConfig struct {
	// DatabaseURL is the PostgreSQL URL. The relay keeps one dedicated
	// connection: it holds the advisory lock, listens for notifications,
	// and reads and marks rows, so a relay that lost its connection (and
	// with it the lock) cannot mark anything.
	DatabaseURL string
	// AMQPURL is the RabbitMQ URL.
	AMQPURL string
	// Exchange is the durable topic exchange events go to.
	Exchange string
	// Queue, when not empty, is a durable queue bound to Exchange with "#",
	// declared at start so that events are kept before any consumer exists.
	Queue string
	// Name identifies this relay in logs and as the AMQP connection name.
	Name string
	// Window is the most unconfirmed messages in flight. Default 256.
	Window int
	// PollInterval is the longest wait between two looks at the outbox
	// when no notification arrives. Default 1s.
	PollInterval time.Duration
	// LockRetry is how often a standby tries to become the leader.
	// Default 1s.
	LockRetry time.Duration
	// ConfirmTimeout bounds the wait for a window's confirms. Default 15s.
	ConfirmTimeout time.Duration
	// MaxBackoff caps the wait between reconnection attempts. Default 10s.
	MaxBackoff time.Duration
	// Logger receives the relay's logs. Default slog.Default().
	Logger *slog.Logger
	// OnPublished, when set, is called with the commit-to-confirm lag of
	// every confirmed event.
	OnPublished func(lag time.Duration)
	// OnPublishFailure, when set, is called with the kind of every publish
	// failure: "nack", "return" (unroutable), "connection" or "timeout".
	OnPublishFailure func(kind string)
	// ExpandFunc builds the headers and bodies of slim rows (written with
	// a SourceID) from their sources, on the relay's own connection.
	ExpandFunc ExpandFunc
}

func (c *RelayConfig) setDefaults() {
	if c.Window <= 0 {
		c.Window = 256
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.LockRetry <= 0 {
		c.LockRetry = time.Second
	}
	if c.ConfirmTimeout <= 0 {
		c.ConfirmTimeout = 15 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Name == "" {
		c.Name = "ledgerd-relay"
	}
	if c.OnPublishFailure == nil {
		c.OnPublishFailure = func(string) {}
	}
}

// Role is what a relay is doing.
type Role string

// Roles of a relay.
const (
	RoleStarting Role = "starting" // not yet connected to the database
	RoleStandby  Role = "standby"  // another relay holds the lock
	RoleLeader   Role = "leader"   // this relay publishes
	RoleStopped  Role = "stopped"
)

// Status is a relay's state, as /readyz and `ledgerd relay --status` show it.
type Status struct {
	Enabled         bool   `json:"enabled"`
	Role            Role   `json:"role"`
	BrokerConnected bool   `json:"brokerConnected"`
	Published       uint64 `json:"published"`
	Returned        uint64 `json:"returned"`
	Backlog
	// BacklogAt is when Backlog was last read.
	BacklogAt time.Time `json:"backlogAt"`
}

// Relay publishes the event log to RabbitMQ: at least once, in position
// order (per user, seq order), its offset moved past an event only after
// the broker confirmed it. Any number of relays may run against one database; an
// advisory lock makes exactly one of them publish, and a standby takes over
// within LockRetry when the leader's session ends.
type Relay struct {
	cfg  RelayConfig
	poke chan struct{}

	mu     sync.Mutex
	status Status
}

// NewRelay returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) *Relay {
	cfg.setDefaults()
	return &Relay{cfg: cfg, poke: make(chan struct{}, 1), status: Status{Enabled: true, Role: RoleStarting}}
}

// Poke wakes the relay to look at the outbox now. It never blocks; writers
// in the same process call it after each commit.
func (r *Relay) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Status returns the relay's current state.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// IsLeader reports whether this relay currently publishes.
func (r *Relay) IsLeader() bool { return r.Status().Role == RoleLeader }

func (r *Relay) update(f func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.status)
}

// Run relays until ctx ends, reconnecting to the database and the broker
// with capped exponential backoff. When ctx ends, a window in flight is
// given up to ConfirmTimeout to be confirmed and marked, then Run returns
// nil.
func (r *Relay) Run(ctx context.Context) error {
	log := r.cfg.Logger.With("relay", r.cfg.Name)
	b := backoff{max: r.cfg.MaxBackoff}
	defer r.update(func(s *Status) { s.Role, s.BrokerConnected = RoleStopped, false })
	for {
		err := r.session(ctx, log, &b)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // shutting down is not a failure
		}
		r.update(func(s *Status) { s.Role, s.BrokerConnected = RoleStarting, false })
		wait := b.next()
		log.Warn("relay lost its database session; reconnecting", "err", err, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// session runs one database session: standby until the lock is free, then
// leader until the connection fails or ctx ends.
func (r *Relay) session(ctx context.Context, log *slog.Logger, b *backoff) error {
	cfg, err := pgx.ParseConfig(r.cfg.DatabaseURL)
	if err != nil {
		return errors.New("parse database URL: invalid URL")
	}
	cfg.RuntimeParams["application_name"] = r.cfg.Name
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to database: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer cancel()
		// Release the lock at once, so a standby takes over without waiting
		// for the server to notice the closed session; closing releases it
		// anyway.
		_, _ = conn.Exec(cctx, `SELECT pg_advisory_unlock_all()`)
		_ = conn.Close(cctx)
	}()
	b.reset()

	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var locked bool
		err := conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1)`, relayLockKey).Scan(&locked)
		cancel()
		if err != nil {
			return fmt.Errorf("try relay lock: %w", err)
		}
		if locked {
			log.Info("relay is the leader")
			return r.lead(ctx, log, conn)
		}
		if r.Status().Role != RoleStandby {
			log.Info("relay is on standby: another relay publishes")
		}
		r.update(func(s *Status) { s.Role, s.BrokerConnected = RoleStandby, false })
		r.readBacklog(ctx, conn)
		if !sleep(ctx, r.cfg.LockRetry) {
			return nil
		}
	}
}

// lead publishes while it holds the lock on conn.
func (r *Relay) lead(ctx context.Context, log *slog.Logger, conn *pgx.Conn) error {
	r.update(func(s *Status) { s.Role = RoleLeader })
	if _, err := conn.Exec(ctx, "LISTEN "+FeedChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	offset, err := readOffset(ctx, conn)
	if err != nil {
		return err
	}
	var (
		sess        *session
		b           = backoff{max: r.cfg.MaxBackoff}
		lastBacklog time.Time
		// inFlight is the window published in the previous turn, whose
		// confirms are awaited only after the next window is published:
		// two windows keep the broker busy while one is confirmed and
		// marked. The channel keeps their order.
		inFlight *flight
	)
	defer func() {
		if inFlight != nil {
			// A window runs to its end even when ctx ends: its confirms are
			// awaited (bounded) and recorded, so a shutdown does not cause
			// needless redeliveries.
			_ = r.settle(ctx, conn, inFlight, &offset)
		}
		if sess != nil {
			sess.close()
		}
	}()
	for ctx.Err() == nil {
		if sess == nil {
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			s, err := dialSession(dctx, r.cfg.AMQPURL, r.cfg.Name, r.cfg.Exchange, r.cfg.Queue, r.onReturn(log))
			cancel()
			if err != nil {
				r.cfg.OnPublishFailure("connection")
				wait := b.next()
				log.Warn("relay cannot reach the broker; events wait in the outbox", "err", err, "retry_in", wait.String())
				r.readBacklog(ctx, conn)
				if !sleep(ctx, wait) {
					return nil
				}
				continue
			}
			log.Info("relay connected to the broker", "exchange", r.cfg.Exchange)
			sess = s
			b.reset()
			r.update(func(s *Status) { s.BrokerConnected = true })
		}

		after := offset
		if inFlight != nil {
			after = inFlight.rows[len(inFlight.rows)-1].ID
		}
		rows, err := fetchPending(ctx, conn, r.cfg.Window, after)
		if err != nil {
			return err
		}
		if err := Expand(ctx, conn, r.cfg.ExpandFunc, rows); err != nil {
			return err
		}
		if len(rows) > 0 && time.Since(lastBacklog) > time.Second {
			// Busy: keep the backlog in the status fresh all the same.
			lastBacklog = time.Now()
			r.readBacklog(ctx, conn)
		}
		var next *flight
		if len(rows) > 0 {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ConfirmTimeout)
			next = publishRows(pctx, sess, rows)
			cancel()
		}
		if inFlight != nil {
			f := inFlight
			inFlight = nil
			if err := r.settle(ctx, conn, f, &offset); err != nil {
				var perr *publishFailure
				if !errors.As(err, &perr) {
					return err // the database: the session ends
				}
				// The next window, published behind the failed one, is
				// not marked: it is published again, in order, with the
				// rest of the failed one.
				r.cfg.OnPublishFailure(failureKind(perr.err))
				wait := b.next()
				log.Warn("relay publish failed; republishing from the first unconfirmed event", "err", perr.err, "confirmed", perr.confirmed, "window", len(f.rows), "retry_in", wait.String())
				sess.close()
				sess = nil
				r.update(func(s *Status) { s.BrokerConnected = false })
				if !sleep(ctx, wait) {
					return nil
				}
				continue
			}
		}
		inFlight = next
		if inFlight != nil {
			continue
		}
		// Nothing pending and nothing in flight: wait for work.
		r.readBacklog(ctx, conn)
		if err := r.waitForWork(ctx, conn, sess); err != nil {
			return err
		}
		if sess.isClosed() {
			r.cfg.OnPublishFailure("connection")
			log.Warn("broker connection closed; reconnecting")
			sess.close()
			sess = nil
			r.update(func(s *Status) { s.BrokerConnected = false })
		}
	}
	return nil
}

// publishFailure is a window that the broker did not confirm in full.
type publishFailure struct {
	err       error
	confirmed int
}

func (e *publishFailure) Error() string { return e.err.Error() }

// settle waits (at most ConfirmTimeout, even after ctx ends) for f's
// confirms and moves the offset past the confirmed prefix, in the database
// and in *offset. It returns a *publishFailure when the broker did not
// confirm every row (the next fetch starts again after *offset), and the
// database's error when marking fails.
func (r *Relay) settle(ctx context.Context, conn *pgx.Conn, f *flight, offset *int64) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ConfirmTimeout)
	defer cancel()
	n, perr := f.await(wctx)
	if n > 0 {
		if err := markPublished(wctx, conn, f.rows[n-1].ID); err != nil {
			return err
		}
		*offset = f.rows[n-1].ID
		r.published(f.rows[:n])
	}
	if perr != nil {
		return &publishFailure{err: perr, confirmed: n}
	}
	return nil
}

// waitForWork waits for a notification, a poke, the broker session's end or
// PollInterval, whichever comes first.
func (r *Relay) waitForWork(ctx context.Context, conn *pgx.Conn, sess *session) error {
	return waitWake(ctx, conn, r.cfg.PollInterval, r.poke, sess.done)
}

// waitWake waits on conn for a notification, for a value or the close of
// either channel (a nil one never fires), or for d, whichever comes first.
func waitWake[A, B any](ctx context.Context, conn *pgx.Conn, d time.Duration, a <-chan A, b <-chan B) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-a:
			cancel()
		case <-b:
			cancel()
		case <-stop:
		}
	}()
	_, err := conn.WaitForNotification(wctx)
	if err != nil && wctx.Err() == nil {
		return fmt.Errorf("wait for notification: %w", err)
	}
	return nil
}

func (r *Relay) published(rows []pendingRow) {
	now := time.Now()
	r.update(func(s *Status) { s.Published += uint64(len(rows)) })
	if r.cfg.OnPublished != nil {
		for _, row := range rows {
			r.cfg.OnPublished(now.Sub(row.CreatedAt))
		}
	}
}

// onReturn counts every returned (unroutable) event and logs them, the
// first at once and then at most one line per 10 seconds with the count
// since the last line: with no queue bound, every event is returned.
func (r *Relay) onReturn(log *slog.Logger) func(amqp.Return) {
	var (
		mu       sync.Mutex
		last     time.Time
		unlogged int
	)
	return func(ret amqp.Return) {
		r.update(func(s *Status) { s.Returned++ })
		r.cfg.OnPublishFailure("return")
		mu.Lock()
		defer mu.Unlock()
		unlogged++
		if time.Since(last) < 10*time.Second {
			return
		}
		log.Warn("broker returned unroutable events: no queue is bound for their routing keys",
			"returned", unlogged, "routing_key", ret.RoutingKey, "message_id", ret.MessageId, "reply", ret.ReplyText)
		last, unlogged = time.Now(), 0
	}
}

// failureKind names a publish window's failure for metrics.
func failureKind(err error) string {
	switch {
	case errors.Is(err, errNacked):
		return "nack"
	case errors.Is(err, errUnconfirmed):
		return "timeout"
	}
	return "connection"
}

// readBacklog refreshes the backlog in the status; errors only leave it
// stale (the next query on conn reports a dead connection).
func (r *Relay) readBacklog(ctx context.Context, conn *pgx.Conn) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if b, err := ReadBacklog(qctx, conn); err == nil {
		r.update(func(s *Status) { s.Backlog, s.BacklogAt = b, time.Now() })
	}
}

func (s *session) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return s.conn.IsClosed()
	}
}

// backoff is capped exponential backoff with jitter: 100ms, 200ms, 400ms…
// up to max, each wait drawn from [d/2, d].
type backoff struct {
	max     time.Duration
	attempt int
}

func (b *backoff) next() time.Duration {
	d := 100 * time.Millisecond << min(b.attempt, 16)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.attempt++
	return d/2 + rand.N(d/2+1) //nolint:gosec // jitter needs no cryptographic randomness
}

func (b *backoff) reset() { b.attempt = 0 }

// sleep waits d or until ctx ends; it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
