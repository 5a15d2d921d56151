package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

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
	err := outbox.NewRelay(relayConfig(cfg, logger)).Run(ctx)
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
