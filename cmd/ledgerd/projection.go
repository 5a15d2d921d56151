package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// runProjection runs `ledgerd projection rebuild`.
func runProjection(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var cfg config
	fs, check := newFlagSet("projection", &cfg, lookupEnv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "rebuild" {
		return fmt.Errorf("%w: projection needs rebuild", errUsage)
	}
	pool, err := openPool(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	// A rebuild reads the whole ledger: it gets far more time than a request.
	l := ledger.New(pool, ledger.Options{TxTimeout: time.Hour})
	r, err := l.RebuildProjection(ctx)
	if err != nil {
		return err
	}
	for _, id := range r.Holds {
		fmt.Fprintf(stdout, "hold %s: set from its recorded changes\n", id)
	}
	for _, c := range r.Users {
		fmt.Fprintf(stdout, "user %d: balance %s -> %s, seq %d -> %d",
			c.UserID, money.Format(c.OldBalance), money.Format(c.NewBalance), c.OldSeq, c.NewSeq)
		if c.OldHeld != c.NewHeld {
			fmt.Fprintf(stdout, ", held %s -> %s", money.Format(c.OldHeld), money.Format(c.NewHeld))
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "projection rebuilt from the entries and the hold changes: %d users changed, %d holds changed\n", len(r.Users), len(r.Holds))
	return nil
}
