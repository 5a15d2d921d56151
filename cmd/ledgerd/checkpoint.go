package main

import (
	"context"
	"fmt"

	"github.com/ledgerd/ledgerd/ledger"
)

// checkpointCmd is `ledgerd checkpoint`: it makes a checkpoint now, signed
// with LEDGER_SIGNING_KEY when set, and prints it as JSON.
type checkpointCmd struct {
	poolSettings
	logSettings
	signingSettings
}

// Validate is the kong hook that checks the settings once parsed.
func (c *checkpointCmd) Validate() error {
	return firstError(c.poolSettings.validate(), c.logSettings.validate())
}

// Run makes the checkpoint.
func (c *checkpointCmd) Run(ctx context.Context, s streams) error {
	stdout, stderr := s.stdout, s.stderr
	signer, err := loadSigner(c.signingSettings, newLogger(c.logSettings, stderr))
	if err != nil {
		return err
	}
	pool, err := openPool(ctx, c.poolSettings)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{Signer: signer})
	cp, err := l.MakeCheckpoint(ctx)
	if err != nil {
		return err
	}
	b, err := cp.MarshalJSON()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	fmt.Fprintf(stderr, "checkpoint %d: %d users, root %s, built in %s\n", cp.ID, cp.Users, cp.Root, cp.BuildTime)
	return nil
}
