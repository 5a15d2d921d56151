package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// errVerifyFailed makes `ledgerd verify` exit non-zero.
var errVerifyFailed = errors.New("verification failed")

// verifyCmd is `ledgerd verify`: it checks every user's ledger and prints
// a summary line; it fails when any user does not verify.
type verifyCmd struct {
	poolSettings
}

// Validate is the kong hook that checks the settings once parsed.
func (c *verifyCmd) Validate() error { return c.validate() }

// Run verifies the whole ledger.
func (c *verifyCmd) Run(ctx context.Context, s streams) error {
	stdout, stderr := s.stdout, s.stderr
	pool, err := openPool(ctx, c.poolSettings)
	if err != nil {
		return err
	}
	defer pool.Close()
	// One snapshot reads the whole ledger: far longer than a request.
	l := ledger.New(pool, ledger.Options{VerifyTimeout: 24 * time.Hour})
	start := time.Now()
	sum, err := l.VerifyAll(ctx, func(users, entries int64) {
		fmt.Fprintf(stderr, "verifying: %d users, %d entries, %s\n", users, entries, time.Since(start).Round(time.Second))
	})
	if err != nil {
		return err
	}
	for _, v := range sum.Failed {
		fmt.Fprintf(stdout, "user %d: FAILED entries=%d ledgerBalance=%s projectedBalance=%s chainValid=%t firstBadSeq=%d\n",
			v.UserID, v.Entries, money.Format(v.LedgerBalance), money.Format(v.ProjectedBalance), v.ChainValid, v.FirstBadSeq)
	}
	if sum.FailedCount > int64(len(sum.Failed)) {
		fmt.Fprintf(stdout, "… and %d more failed users\n", sum.FailedCount-int64(len(sum.Failed)))
	}
	status := "OK"
	if sum.FailedCount > 0 {
		status = "FAILED"
	}
	fmt.Fprintf(stdout, "verify: %s: %d users, %d entries, %d failed, in %s\n",
		status, sum.Users, sum.Entries, sum.FailedCount, time.Since(start).Round(time.Millisecond))
	if sum.FailedCount > 0 {
		return fmt.Errorf("%w: %d of %d users", errVerifyFailed, sum.FailedCount, sum.Users)
	}
	return nil
}
