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

// runRelay runs only the event relay, or with --status prints its state.
func runRelay(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var cfg config
	fs, check := newFlagSet("relay", &cfg, lookupEnv, stderr)
	status := fs.Bool("status", false, "print the relay's state as JSON and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	if *status {
		return printRelayStatus(ctx, cfg, stdout)
	}
	logger := newLogger(cfg, stderr)
	slog.SetDefault(logger)
	logger.Info("relay starting", "database", redactURL(cfg.DatabaseURL), "exchange", cfg.Exchange, "queue", cfg.RelayQueue)
	m := metrics.New()
	rc := relayConfig(cfg, logger)
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
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (give the relay its own HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("relay serving /healthz, /readyz and /metrics", "addr", ln.Addr().String())

	// A standalone relay also sequences (one sequencer leads among all
	// processes), so that a relay alone publishes every event.
	sequencer := outbox.NewSequencer(sequencerConfig(cfg, logger))
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

func printRelayStatus(ctx context.Context, cfg config, stdout io.Writer) error {
	pool, err := openPool(ctx, cfg)
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
