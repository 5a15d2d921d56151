package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ledgerd/ledgerd/metrics"
	"github.com/ledgerd/ledgerd/outbox"
)

// relayCmd is `ledgerd relay`: only the event relay, or with --status its
// state.
type relayCmd struct {
	Status bool `help:"print the relay's state as JSON and exit"`
	poolSettings
	httpSettings
	logSettings
	amqpSettings
}

// Validate is the kong hook that checks the settings once parsed.
func (c *relayCmd) Validate() error {
	return firstError(c.poolSettings.validate(), c.logSettings.validate(), c.amqpSettings.validate())
}

// Run runs the relay until ctx ends.
func (c *relayCmd) Run(ctx context.Context, s streams) error {
	if c.Status {
		return printRelayStatus(ctx, c.poolSettings, s.stdout)
	}
	logger := newLogger(c.logSettings, s.stderr)
	slog.SetDefault(logger)
	logger.Info("relay starting", "database", redactURL(c.DatabaseURL), "exchange", c.Exchange, "queue", c.RelayQueue, "queueType", c.QueueType, "partitions", c.Partitions)
	m := metrics.New()
	m.RegisterBuildInfo(version, revision)
	rc := relayConfig(c.DatabaseURL, c.amqpSettings, logger)
	rc.OnPublished, rc.OnPublishFailure = m.EventPublished, m.PublishFailure
	relay := outbox.NewRelay(rc)
	m.RegisterRelay(relayMetrics(relay))

	// The relay's own small HTTP server: /healthz, /readyz (its state) and
	// /metrics, so that a standalone relay is watched like a replica.
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, `{"success":true,"data":{"status":"ok"}}`+"\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "data": map[string]any{"relay": relay.Status()}})
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (give the relay its own HTTP_ADDR): %w", c.HTTPAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("relay serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())

	// A standalone relay also sequences (one sequencer leads among all
	// processes), so that a relay alone publishes every event.
	sequencer := outbox.NewSequencer(sequencerConfig(c.DatabaseURL, logger))
	seqDone := make(chan struct{})
	go func() { _ = sequencer.Run(ctx); close(seqDone) }()
	err = relay.Run(ctx)
	<-seqDone
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	logger.Info("relay stopped")
	return err
}

func printRelayStatus(ctx context.Context, settings poolSettings, stdout io.Writer) error {
	pool, err := openPool(ctx, settings)
	if err != nil {
		return err
	}
	defer pool.Close()
	st, err := outbox.ReadClusterStatus(ctx, pool)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}
