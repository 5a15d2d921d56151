package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ledgerd/ledgerd/api"
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
	l := ledger.New(pool, ledger.Options{})
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

// runToken prints a new random token, its hash and the LEDGER_API_TOKENS
// entry that admits it.
func runToken(args []string, stdout, stderr io.Writer) error {
	fs := newBareFlagSet("token", stderr)
	role := fs.String("role", string(api.RoleWriter), "writer or auditor")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role != string(api.RoleWriter) && *role != string(api.RoleAuditor) {
		return fmt.Errorf("%w: --role must be writer or auditor", errUsage)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("random token: %w", err)
	}
	token := "ldg_" + base64.RawURLEncoding.EncodeToString(b)
	hash := api.HashToken(token)
	fmt.Fprintf(stdout, "token:  %s\nsha256: %s\nentry:  LEDGER_API_TOKENS=%s:%s\n", token, hash, *role, hash)
	fmt.Fprintln(stdout, "Give the token to the client; configure only the entry. The token is not shown again.")
	return nil
}
