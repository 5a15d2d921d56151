package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/ledgerd/ledgerd/migrations"
)

func runMigrate(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var cfg config
	fs, check := newFlagSet("migrate", &cfg, lookupEnv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return fmt.Errorf("%w: migrate needs up, down N, version or create-db", errUsage)
	}
	if rest[0] == "create-db" {
		created, err := migrations.CreateDatabase(ctx, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		if created {
			fmt.Fprintln(stdout, "database created:", redactURL(cfg.DatabaseURL))
		} else {
			fmt.Fprintln(stdout, "database exists:", redactURL(cfg.DatabaseURL))
		}
		return nil
	}

	m, err := migrations.New(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	switch {
	case rest[0] == "up" && len(rest) == 1:
		if err := m.Up(); err != nil {
			return err
		}
	case rest[0] == "down" && len(rest) == 2:
		n, err := strconv.Atoi(rest[1])
		if err != nil || n <= 0 {
			return fmt.Errorf("%w: migrate down needs a positive number of steps", errUsage)
		}
		if err := m.Down(n); err != nil {
			return err
		}
	case rest[0] == "version" && len(rest) == 1:
	default:
		return fmt.Errorf("%w: migrate needs up, down N, version or create-db", errUsage)
	}
	v, dirty, err := m.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema version %d%s\n", v, map[bool]string{true: " (dirty)"}[dirty])
	return nil
}
