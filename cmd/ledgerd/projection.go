package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// projectionCmd is `ledgerd projection`.
type projectionCmd struct {
	poolSettings

	Rebuild projectionRebuildCmd `cmd:"" help:"Recompute the balances from the entries and the holds from their recorded changes, and list what changed."`
}

// Validate is the kong hook that checks the settings once parsed.
func (c *projectionCmd) Validate() error { return c.validate() }

// projectionRebuildCmd is `ledgerd projection rebuild`.
type projectionRebuildCmd struct{}

// Run rebuilds the projection and prints what changed.
func (projectionRebuildCmd) Run(ctx context.Context, p *projectionCmd, s streams) error {
	stdout := s.stdout
	pool, err := openPool(ctx, p.poolSettings)
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
