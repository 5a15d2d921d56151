package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ledgerd/ledgerd/ledger"
)

// runCheckpoint runs `ledgerd checkpoint`: it makes a checkpoint now,
// signed with LEDGER_SIGNING_KEY when set, and prints it as JSON.
func runCheckpoint(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var cfg config
	fs, check := newFlagSet("checkpoint", &cfg, lookupEnv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: checkpoint takes no arguments", errUsage)
	}
	signer, err := loadSigner(cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{Signer: signer})
	c, err := l.MakeCheckpoint(ctx)
	if err != nil {
		return err
	}
	b, err := c.MarshalJSON()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	fmt.Fprintf(stderr, "checkpoint %d: %d users, root %s, built in %s\n", c.ID, c.Users, c.Root, c.BuildTime)
	return nil
}
