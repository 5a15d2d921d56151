package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/money"
)

// errVerifyFailed makes `ledgerd verify` exit non-zero.
var errVerifyFailed = errors.New("verification failed")

// runVerify checks every user's ledger and prints a summary line; it fails
// when any user does not verify.
func runVerify(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	var cfg config
	fs, check := newFlagSet("verify", &cfg, lookupEnv, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	pool, err := openPool(ctx, cfg)
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
