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

// relayLockKey is the advisory lock that makes one relay the publisher of
// partition 0 (of the only partition by default), per database; see
// Partition.lockKey for the others.
const relayLockKey int64 = 0x6c65646765726452 // "ledgerdR"

// RelayConfig configures a Relay. Zero durations take the defaults.
type RelayConfig struct {
	// DatabaseURL is the PostgreSQL URL. The relay keeps one dedicated
	// connection per partition: it holds the partition's advisory lock,
	// listens for notifications, and reads the log and marks the
	// partition's offset, so a relay that lost its connection (and with it
	// the lock) cannot mark anything; and one for its member lock.
	DatabaseURL string
	// AMQPURL is the RabbitMQ URL.
	AMQPURL string
	// Exchange is the durable topic exchange events go to.
	Exchange string
	// Queue, when not empty, is a durable queue bound to Exchange with "#",
	// declared at start so that events are kept before any consumer exists.
	Queue string
	// QueueType is the type of Queue: "classic" (the default) or
	// "quorum" (replicated over a RabbitMQ cluster). A queue that exists
	// already keeps its type: RabbitMQ refuses to declare it with
	// another, and the relay says so.
	QueueType string
	// Partitions is how many partitions the events are split into, by
	// user (user_id mod Partitions), 1..MaxPartitions; default 1. Every
	// relay of a database must be given the same count.
	Partitions int
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
	if c.Partitions <= 0 {
		c.Partitions = 1
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
	Enabled bool `json:"enabled"`
	// Role is leader while this process leads at least one partition.
	Role Role `json:"role"`
	// BrokerConnected is true while every partition led here has its
	// broker connection.
	BrokerConnected bool `json:"brokerConnected"`
	// Partitions is RELAY_PARTITIONS; Leading lists those led here.
	Partitions int    `json:"partitions"`
	Leading    []int  `json:"leading"`
	Published  uint64 `json:"published"`
	Returned   uint64 `json:"returned"`
	Backlog
	// BacklogAt is when Backlog was last read.
	BacklogAt time.Time `json:"backlogAt"`
}

// Relay publishes the event log to RabbitMQ: at least once, in position
// order within each partition (so, per user, seq order), a partition's
// offset moved past an event only after the broker confirmed it. Any
// number of relays may run against one database: an advisory lock per
// partition makes exactly one of them publish it, the partitions are
// shared among the processes (see share), and a standby takes a
// partition over within a few LockRetry when its leader's session ends.
type Relay struct {
	cfg     RelayConfig
	share   *share
	workers []*worker

	mu     sync.Mutex
	status Status
}

// worker runs one partition: standby until its lock is free and the share
// allows, then leader.
type worker struct {
	r    *Relay
	part Partition
	poke chan struct{}

	// role and connected are under r.mu.
	role      Role
	connected bool
	// waitedRepartition is set once the wait for relays of another
	// partition count has been logged at Warn (by the worker's goroutine).
	waitedRepartition bool
}

// NewRelay returns a relay; Run starts it.
func NewRelay(cfg RelayConfig) *Relay {
	cfg.setDefaults()
	r := &Relay{cfg: cfg, share: newShare(cfg.Partitions),
		status: Status{Enabled: true, Partitions: cfg.Partitions}}
	for i := range cfg.Partitions {
		r.workers = append(r.workers, &worker{r: r, part: Partition{Index: i, Of: cfg.Partitions}, poke: make(chan struct{}, 1), role: RoleStarting})
	}
	return r
}

// Poke wakes the relay to look at the outbox now. It never blocks; writers
// in the same process call it after each commit.
func (r *Relay) Poke() {
	for _, w := range r.workers {
		select {
		case w.poke <- struct{}{}:
		default:
		}
	}
}

// Status returns the relay's current state.
func (r *Relay) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Leading = []int{}
	st.Role, st.BrokerConnected = RoleStopped, true
	starting := false
	for _, w := range r.workers {
		switch w.role {
		case RoleLeader:
			st.Role = RoleLeader
			st.Leading = append(st.Leading, w.part.Index)
			st.BrokerConnected = st.BrokerConnected && w.connected
		case RoleStarting:
			starting = true
		case RoleStandby:
			if st.Role != RoleLeader {
				st.Role = RoleStandby
			}
		}
	}
	if st.Role != RoleLeader {
		st.BrokerConnected = false
		if starting {
			st.Role = RoleStarting
		}
	}
	return st
}

// IsLeader reports whether this relay currently publishes a partition.
func (r *Relay) IsLeader() bool { return r.Status().Role == RoleLeader }

func (r *Relay) update(f func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.status)
}

// set records the worker's role and broker connection.
func (w *worker) set(role Role, connected bool) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	w.role, w.connected = role, connected
}

func (w *worker) setConnected(connected bool) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	w.connected = connected
}

// Run relays until ctx ends: one worker per partition and the membership
// that shares them, each reconnecting to the database and the broker with
// capped exponential backoff. When ctx ends, a window in flight is given
// up to ConfirmTimeout to be confirmed and marked, then Run returns nil.
func (r *Relay) Run(ctx context.Context) error {
	log := r.cfg.Logger.With("relay", r.cfg.Name)
	var wg sync.WaitGroup
	wg.Go(func() { r.member(ctx, log) })
	for _, w := range r.workers {
		wg.Go(func() { w.run(ctx, log.With("partition", w.part.Index)) })
	}
	wg.Wait()
	return nil
}

func (w *worker) run(ctx context.Context, log *slog.Logger) {
	b := backoff{max: w.r.cfg.MaxBackoff}
	defer w.set(RoleStopped, false)
	for {
		err := w.session(ctx, log, &b)
		if ctx.Err() != nil {
			return
		}
		w.set(RoleStarting, false)
		wait := b.next()
		log.Warn("relay lost its database session; reconnecting", "err", err, "retry_in", wait.String())
		if !sleep(ctx, wait) {
			return
		}
	}
}

// errYield ends a partition's leadership so that another process takes it
// (see share.shouldYield); errRepartition when the offsets are recorded for
// another partition count that this worker cannot replace now.
var (
	errYield       = errors.New("partition given up to share the partitions")
	errRepartition = errors.New("the offsets are recorded for another partition count")
)

// session runs one database session: standby until the partition's lock is
// free and the share lets this process take it, then leader until the
// connection fails, the partition is given up, or ctx ends.
func (w *worker) session(ctx context.Context, log *slog.Logger, b *backoff) error {
	r := w.r
	conn, err := connect(ctx, r.cfg.DatabaseURL, r.share.connName(r.cfg.Name))
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	b.reset()
	key := w.part.lockKey()
	for {
		if r.share.mayTake(w.part.Index) {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var locked bool
			err := conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked)
			cancel()
			if err != nil {
				return fmt.Errorf("try relay lock: %w", err)
			}
			if locked {
				r.share.took(w.part.Index)
				log.Info("relay leads the partition", "partitions", w.part.Of)
				err := w.lead(ctx, log, conn)
				r.share.released(w.part.Index)
				if !errors.Is(err, errYield) && !errors.Is(err, errRepartition) {
					return err
				}
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key)
				cancel()
				if uerr != nil {
					return fmt.Errorf("release relay lock: %w", uerr)
				}
				if errors.Is(err, errYield) {
					log.Info("relay gave the partition up to another process")
				}
				w.set(RoleStandby, false)
				// Let the others take it before this one may again.
				if !sleep(ctx, 2*r.cfg.LockRetry) {
					return nil
				}
				continue
			}
		}
		if w.state() != RoleStandby {
			log.Debug("relay partition on standby: another relay publishes it")
		}
		w.set(RoleStandby, false)
		if !sleep(ctx, r.cfg.LockRetry) {
			return nil
		}
	}
}

func (w *worker) state() Role {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.role
}

// lead publishes the partition while it holds its lock on conn.
func (w *worker) lead(ctx context.Context, log *slog.Logger, conn *pgx.Conn) error {
	r := w.r
	w.set(RoleLeader, false)
	if _, err := conn.Exec(ctx, "LISTEN "+FeedChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	offset, err := w.readOffset(ctx, log, conn)
	if err != nil {
		return err
	}
	var (
		sess *session
		b    = backoff{max: r.cfg.MaxBackoff}
		// scanned is the position up to which the partition's events are
		// confirmed, in flight, or of other partitions: the next fetch
		// starts after it.
		scanned = offset
		// inFlight is the window published in the previous turn, whose
		// confirms are awaited only after the next window is published:
		// two windows keep the broker busy while one is confirmed and
		// marked. The channel keeps their order.
		inFlight *flight
	)
	defer func() {
		if inFlight != nil {
			// A window runs to its end even when ctx ends: its confirms are
			// awaited (bounded) and recorded, so a shutdown or a handover
			// does not cause needless redeliveries.
			_ = w.settle(ctx, conn, inFlight, &offset)
		}
		if sess != nil {
			sess.close()
		}
	}()
	for ctx.Err() == nil {
		if r.share.shouldYield(w.part.Index) {
			return errYield
		}
		if sess == nil {
			if sess = w.dial(ctx, log, &b); sess == nil {
				continue // waited its backoff
			}
		}

		rows, upTo, more, err := fetchPending(ctx, conn, r.cfg.Window, scanned, w.part)
		if err != nil {
			return err
		}
		if err := Expand(ctx, conn, r.cfg.ExpandFunc, rows); err != nil {
			return err
		}
		var next *flight
		if len(rows) > 0 {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ConfirmTimeout)
			next = publishRows(pctx, sess, rows)
			cancel()
			next.upTo = upTo
		}
		if inFlight != nil {
			f := inFlight
			inFlight = nil
			if err := w.settle(ctx, conn, f, &offset); err != nil {
				var perr *publishFailure
				if !errors.As(err, &perr) {
					return err // the database: the session ends
				}
				// The next window, published behind the failed one, is
				// not marked: it is published again, in order, with the
				// rest of the failed one, on a new broker session.
				w.dropSession(sess, failureKind(perr.err))
				sess, scanned = nil, offset
				wait := b.next()
				log.Warn("relay publish failed; republishing from the first unconfirmed event", "err", perr.err, "confirmed", perr.confirmed, "window", len(f.rows), "retry_in", wait.String())
				if !sleep(ctx, wait) {
					return nil
				}
				continue
			}
		}
		scanned = upTo
		inFlight = next
		if inFlight != nil {
			continue
		}
		// Nothing of the partition in flight. A partition whose events
		// are few moves its offset past the others', so that they are not
		// read again after a restart; and goes on at once while the log
		// does.
		if scanned > offset {
			if err := markPublished(ctx, conn, w.part, scanned); err != nil {
				return err
			}
			offset = scanned
		}
		if more {
			continue
		}
		if err := waitWake(ctx, conn, r.cfg.PollInterval, w.poke, sess.done); err != nil {
			return err
		}
		if sess.isClosed() {
			log.Warn("broker connection closed; reconnecting")
			w.dropSession(sess, "connection")
			sess = nil
		}
	}
	return nil
}

// dial opens the partition's broker session; when it cannot, it counts
// the failure, waits b's next backoff (or until ctx ends) and returns nil.
func (w *worker) dial(ctx context.Context, log *slog.Logger, b *backoff) *session {
	r := w.r
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s, err := dialSession(dctx, r.cfg.AMQPURL, r.share.connName(r.cfg.Name), r.cfg.Exchange, r.cfg.Queue, r.cfg.QueueType, r.onReturn(log))
	cancel()
	if err != nil {
		r.cfg.OnPublishFailure("connection")
		wait := b.next()
		log.Warn("relay cannot reach the broker; events wait in the outbox", "err", err, "retry_in", wait.String())
		sleep(ctx, wait)
		return nil
	}
	log.Info("relay connected to the broker", "exchange", r.cfg.Exchange)
	b.reset()
	w.setConnected(true)
	return s
}

// dropSession closes a failed broker session and counts the failure.
func (w *worker) dropSession(s *session, kind string) {
	w.r.cfg.OnPublishFailure(kind)
	s.close()
	w.setConnected(false)
}

// readOffset reads the partition's offset. When the offsets are recorded
// for another partition count, partition 0's leader replaces them once it
// can lock every partition of both counts (no relay of the old count
// leads any more); the others wait for it (errRepartition).
func (w *worker) readOffset(ctx context.Context, log *slog.Logger, conn *pgx.Conn) (int64, error) {
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	offset, err := readOffset(qctx, conn, w.part)
	var other errOtherPartitions
	if !errors.As(err, &other) {
		return offset, err
	}
	if w.part.Index != 0 {
		return 0, errRepartition
	}
	done, err := repartition(qctx, conn, other.recorded, w.part.Of)
	if err != nil {
		return 0, err
	}
	if !done {
		// Once at Warn, then at Debug: it is tried every 2 LockRetry.
		level := slog.LevelDebug
		if !w.waitedRepartition {
			level, w.waitedRepartition = slog.LevelWarn, true
		}
		log.Log(ctx, level, "relays with another RELAY_PARTITIONS still lead; waiting for them to stop", "recorded", other.recorded, "partitions", w.part.Of)
		return 0, errRepartition
	}
	w.waitedRepartition = false
	log.Info("relay offsets repartitioned", "from", other.recorded, "to", w.part.Of)
	return readOffset(qctx, conn, w.part)
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
func (w *worker) settle(ctx context.Context, conn *pgx.Conn, f *flight, offset *int64) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.r.cfg.ConfirmTimeout)
	defer cancel()
	n, perr := f.await(wctx)
	if n > 0 {
		// A window confirmed in full confirms its partition up to where
		// its fetch looked; otherwise up to its last confirmed event.
		upTo := f.rows[n-1].ID
		if perr == nil && f.upTo > upTo {
			upTo = f.upTo
		}
		if err := markPublished(wctx, conn, w.part, upTo); err != nil {
			return err
		}
		*offset = upTo
		w.r.published(f.rows[:n])
	}
	if perr != nil {
		return &publishFailure{err: perr, confirmed: n}
	}
	return nil
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
