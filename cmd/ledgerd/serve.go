package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/metrics"
	"github.com/ledgerd/ledgerd/migrations"
	"github.com/ledgerd/ledgerd/outbox"
)

// serveCmd is `ledgerd serve`.
type serveCmd struct {
	config
}

// Run serves until ctx ends.
func (c *serveCmd) Run(ctx context.Context, s streams) error {
	logger := newLogger(c.logSettings, s.stderr)
	slog.SetDefault(logger)
	return serve(ctx, c.config, logger, nil)
}

// serve runs the HTTP server (and, unless disabled, the event relay) until
// ctx is done, then shuts down gracefully: it stops accepting connections,
// lets in-flight requests finish, then lets the relay finish its window.
// When ready is not nil it receives the listener's address once the server
// accepts connections (tests use it with HTTP_ADDR=127.0.0.1:0).
func serve(ctx context.Context, cfg config, logger *slog.Logger, ready chan<- string) error {
	if !cfg.NoMigrate {
		if err := migrations.Up(cfg.DatabaseURL); err != nil {
			return fmt.Errorf("migrate at start: %w", err)
		}
		logger.Info("schema migrated")
	}
	pool, err := openPool(ctx, cfg.poolSettings)
	if err != nil {
		return err
	}
	defer pool.Close()

	// Background work stops after the HTTP server has drained.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer func() {
		stopBackground()
		background.Wait()
	}()

	m := metrics.New()
	m.RegisterBuildInfo(version, revision)
	m.RegisterPool(pool)

	var relay *outbox.Relay
	relayStatus := func(context.Context) any {
		return map[string]any{"enabled": false, "note": "RELAY_ENABLED=false: a relay elsewhere publishes; see ledgerd relay --status"}
	}
	if cfg.RelayEnabled {
		rc := relayConfig(cfg.DatabaseURL, cfg.amqpSettings, logger)
		rc.OnPublished, rc.OnPublishFailure = m.EventPublished, m.PublishFailure
		relay = outbox.NewRelay(rc)
		relayStatus = func(context.Context) any { return relay.Status() }
		m.RegisterRelay(relayMetrics(relay))
		background.Go(func() { _ = relay.Run(bgCtx) })
	} else {
		logger.Info("relay disabled (RELAY_ENABLED=false): events wait in the outbox for a relay elsewhere")
	}
	// The sequencer runs in every process, relay or not: the event feed
	// needs it whether or not this process publishes.
	sequencer := outbox.NewSequencer(sequencerConfig(cfg.DatabaseURL, logger))
	background.Go(func() { _ = sequencer.Run(bgCtx) })
	notifier := outbox.NewNotifier(pool, sequencer, 0, logger)
	background.Go(func() { notifier.Run(bgCtx) })
	listener := outbox.NewListener(cfg.DatabaseURL, logger)
	background.Go(func() { listener.Run(bgCtx) })

	signer, err := loadSigner(cfg.signingSettings, logger)
	if err != nil {
		return err
	}
	readPool, err := openReadPool(ctx, cfg)
	if err != nil {
		return err
	}
	if readPool != nil {
		defer readPool.Close()
		logger.Info("read replica configured", "url", redactURL(cfg.ReadURL), "maxLag", cfg.ReadMaxLag)
	}
	l := ledger.New(pool, ledger.Options{
		Signer:         signer,
		AcquireTimeout: cfg.DBAcquireWait, TxTimeout: cfg.DBTxTimeout,
		MaxBatch: cfg.MaxBatch, MaxInflight: cfg.MaxInflight, UserQueueLimit: cfg.UserQueueLimit,
		OnCommit: notifier.Committed, Observer: m, FeedChangedFunc: listener.Changed,
		ReadPool: readPool, ReadMaxLag: cfg.ReadMaxLag,
	})
	if readPool != nil {
		m.RegisterReplica(func() metrics.ReplicaState {
			ctx, cancel := context.WithTimeout(bgCtx, 2*time.Second)
			defer cancel()
			st := l.ReplicaStatus(ctx)
			// The lag is measured when the sample found an as-of: not while
			// the replica is down or starting, the primary unreachable, or
			// nothing replayed.
			return metrics.ReplicaState{InUse: st.InUse, Measured: !st.AsOf.IsZero(), Lag: st.Lag}
		})
	}
	if cfg.AuditEnabled {
		auditor := ledger.NewAuditor(l, ledger.AuditorConfig{Interval: cfg.AuditInterval, OnPass: m.AuditPass, Logger: logger})
		background.Go(func() { auditor.Run(bgCtx) })
	}
	if err := l.RegisterSigningKey(ctx); err != nil {
		return err
	}
	background.Go(func() {
		l.RunCheckpoints(bgCtx, ledger.CheckpointSchedule{Interval: cfg.CheckpointInterval, Logger: logger,
			MadeFunc: func(c ledger.Checkpoint) { m.CheckpointMade(c.BuildTime) }})
	})
	m.RegisterCheckpoints(func() (time.Time, error) {
		ctx, cancel := context.WithTimeout(bgCtx, 2*time.Second)
		defer cancel()
		c, err := l.FindCheckpoint(ctx, 0)
		if errors.Is(err, ledger.ErrCheckpointNotFound) {
			return time.Time{}, nil
		}
		return c.At, err
	})
	if cfg.DebugAddr != "" {
		if err := serveDebug(bgCtx, cfg.DebugAddr, logger, &background); err != nil {
			return err
		}
	}
	if len(cfg.Tokens) == 0 {
		logger.Warn("authentication is off: LEDGER_API_TOKENS is not set, every client may use every route")
	} else {
		logger.Info("authentication is on", "tokens", len(cfg.Tokens))
	}
	background.Go(func() { purgeKeys(bgCtx, l, cfg.IdempotencyRetention, logger) })
	background.Go(func() { sweepHolds(bgCtx, l, logger) })
	m.RegisterHolds(func() metrics.HoldTotals {
		ctx, cancel := context.WithTimeout(bgCtx, 2*time.Second)
		defer cancel()
		n, held, err := l.PendingHolds(ctx)
		if err != nil {
			return metrics.HoldTotals{Pending: -1, HeldCents: -1}
		}
		return metrics.HoldTotals{Pending: n, HeldCents: int64(held)}
	})

	srv := &http.Server{
		Handler: api.NewServer(api.Deps{
			Ledger: l, Logger: logger, RelayStatusFunc: relayStatus,
			Tokens: cfg.Tokens, RateLimitRPS: cfg.RateLimitRPS,
			Observer: m, MetricsHandler: m.Handler(),
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A feed read may wait up to ledger.MaxFeedWait for events first.
		WriteTimeout:   ledger.MaxFeedWait + cfg.DBAcquireWait + cfg.DBTxTimeout + 15*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	logger.Info("serving", "addr", ln.Addr().String(), "database", redactURL(cfg.DatabaseURL), "version", version)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "timeout", cfg.ShutdownWait.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	stopBackground()
	background.Wait()
	logger.Info("stopped")
	return nil
}

// purgeKeys deletes expired idempotency keys every few minutes until ctx
// ends.
func purgeKeys(ctx context.Context, l *ledger.Ledger, retention time.Duration, logger *slog.Logger) {
	for {
		for {
			n, err := l.PurgeKeys(ctx, retention, 10_000)
			if err != nil {
				if ctx.Err() == nil {
					logger.Warn("purge idempotency keys", "err", err)
				}
				break
			}
			if n > 0 {
				logger.Info("purged expired idempotency keys", "keys", n)
			}
			if n < 10_000 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Minute):
		}
	}
}

// holdSweepInterval is how often serve records the expiry of holds whose
// expiresAt passed. Their available balance comes back at expiresAt
// whatever this interval: the sweep only writes the record and the
// ledger.hold.expired event (once, across replicas).
const holdSweepInterval = 5 * time.Second

// sweepHolds records expired holds until ctx ends.
func sweepHolds(ctx context.Context, l *ledger.Ledger, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(holdSweepInterval):
		}
		n, err := l.ReleaseExpiredHolds(ctx, 1000)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("record expired holds", "err", err)
		case n > 0:
			logger.Debug("recorded expired holds", "users", n)
		}
	}
}

// relayMetrics reads the relay's state for the gauges.
func relayMetrics(r *outbox.Relay) func() metrics.RelayState {
	return func() metrics.RelayState {
		st := r.Status()
		return metrics.RelayState{
			Leading: len(st.Leading), Partitions: st.Partitions, BrokerConnected: st.BrokerConnected,
			Pending: st.Pending, OldestPendingAge: st.OldestAgeSeconds,
		}
	}
}

// serveDebug serves net/http/pprof on addr until ctx ends. It is off by
// default: profiles reveal internals and cost CPU, so keep addr private.
func serveDebug(ctx context.Context, addr string, logger *slog.Logger, wg *sync.WaitGroup) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on DEBUG_ADDR %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	logger.Warn("pprof debug listener is on; keep it private", "addr", ln.Addr().String())
	wg.Go(func() { _ = srv.Serve(ln) })
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return nil
}

func relayConfig(databaseURL string, s amqpSettings, logger *slog.Logger) outbox.RelayConfig {
	return outbox.RelayConfig{
		DatabaseURL: databaseURL,
		AMQPURL:     s.AMQPURL,
		Exchange:    s.Exchange,
		Queue:       s.RelayQueue,
		QueueType:   s.QueueType,
		Partitions:  s.Partitions,
		Logger:      logger,
		ExpandFunc:  ledger.ExpandEvents,
	}
}

func sequencerConfig(databaseURL string, logger *slog.Logger) outbox.SequencerConfig {
	return outbox.SequencerConfig{DatabaseURL: databaseURL, Logger: logger}
}

// openReadPool opens the pool on the read replica, nil without
// DATABASE_READ_URL. It does not wait for the replica: one that is down
// at start, or later, sends the reads to the primary until it answers.
func openReadPool(ctx context.Context, cfg config) (*pgxpool.Pool, error) {
	if cfg.ReadURL == "" {
		return nil, nil //nolint:nilnil // no replica is not an error
	}
	pc, err := poolConfig(cfg.ReadURL, "DATABASE_READ_URL", cfg.DBMaxConns, 2*time.Second, "ledgerd-read")
	if err != nil {
		return nil, err
	}
	// Only reads go there, even when the URL names a primary.
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open read replica pool: %w", err)
	}
	return pool, nil
}

// poolConfig parses the setting name's url (its text never in the error:
// it may hold a password) with at most maxConns connections, a connect
// timeout and an application name unless the URL gives them.
func poolConfig(url, name string, maxConns int, connectTimeout time.Duration, app string) (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse %s: not a valid PostgreSQL URL", name)
	}
	pc.MaxConns = int32(min(maxConns, 10_000)) //nolint:gosec // bounded just above
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = connectTimeout
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = app
	}
	return pc, nil
}

// openPool opens the connection pool and checks the database answers.
func openPool(ctx context.Context, s poolSettings) (*pgxpool.Pool, error) {
	pc, err := poolConfig(s.DatabaseURL, "DATABASE_URL", s.DBMaxConns, 5*time.Second, "ledgerd")
	if err != nil {
		return nil, err
	}
	// A 200 means the change is durable: commit waits for the WAL flush
	// whatever the server's default says.
	pc.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", redactURL(s.DatabaseURL), err)
	}
	return pool, nil
}
