package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/signing"
)

// errStatementInvalid makes `ledgerd statement verify` exit 1.
var errStatementInvalid = errors.New("statement does not verify")

// statementCmd is `ledgerd statement`.
type statementCmd struct {
	Verify statementVerifyCmd `cmd:"" help:"Check a statement offline: signature, chain, balances and, with --checkpoint and --proof, its inclusion in a checkpoint; exit 1 on the first failure."`
}

// statementVerifyCmd is `ledgerd statement verify FILE [--public-key PEM]…
// [--checkpoint FILE --proof FILE]`: every check of ledger.CheckStatement,
// and the inclusion of the closing head in the checkpoint, offline. It
// prints one line per check passed and fails on the first that does not.
type statementVerifyCmd struct {
	File       string   `arg:"" placeholder:"FILE" help:"statement JSON (GET /api/users/{id}/statement)"`
	PublicKeys []string `name:"public-key" sep:"none" placeholder:"FILE" help:"public key PEM file of the key that signed (repeat it for statements and checkpoints signed by other keys)"`
	Checkpoint string   `placeholder:"FILE" help:"checkpoint JSON file (GET /api/checkpoints/{id}) to check the statement's closing head against"`
	Proof      string   `placeholder:"FILE" help:"inclusion proof JSON file (GET /api/users/{id}/checkpoint-proof?checkpoint=…)"`
}

// Validate is the kong hook that checks the flags once parsed.
func (c *statementVerifyCmd) Validate() error {
	if (c.Checkpoint == "") != (c.Proof == "") {
		return errors.New("--checkpoint and --proof go together")
	}
	return nil
}

// Run verifies the statement.
func (c *statementVerifyCmd) Run(s streams) error {
	ring := signing.KeyRing{}
	for _, path := range c.PublicKeys {
		b, err := os.ReadFile(path) //nolint:gosec // the operator names the file
		if err != nil {
			return fmt.Errorf("read public key: %w", err)
		}
		k, err := signing.ParsePublicKey(b)
		if err != nil {
			return fmt.Errorf("public key %s: %w", path, err)
		}
		ring.Add(k)
	}
	if err := verifyStatementFiles(c.File, c.Checkpoint, c.Proof, ring, s.stdout); err != nil {
		return fmt.Errorf("%w: %w", errStatementInvalid, err)
	}
	return nil
}

func verifyStatementFiles(file, checkpointFile, proofFile string, ring signing.KeyRing, stdout io.Writer) error {
	raw, err := os.ReadFile(file) //nolint:gosec // the operator names the file
	if err != nil {
		return err
	}
	s, err := ledger.ParseStatement(raw)
	if err != nil {
		return err
	}
	if err := ledger.CheckStatement(s, ring); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signature: OK (key %s)\n", s.KeyID)
	fmt.Fprintf(stdout, "chain: OK (%d entries, seq %d..%d, %s..%s)\n", len(s.Entries), s.OpeningSeq, s.ClosingSeq,
		s.OpeningHash.String()[:12], s.ClosingHash.String()[:12])
	fmt.Fprintf(stdout, "balances: OK (%s → %s)\n", s.OpeningBalance, s.ClosingBalance)
	if checkpointFile == "" {
		return nil
	}
	raw, err = os.ReadFile(checkpointFile) //nolint:gosec // the operator names the file
	if err != nil {
		return err
	}
	c, err := ledger.ParseCheckpoint(raw)
	if err != nil {
		return err
	}
	if err := ledger.CheckCheckpoint(c, ring); err != nil {
		return err
	}
	raw, err = os.ReadFile(proofFile) //nolint:gosec // the operator names the file
	if err != nil {
		return err
	}
	p, err := ledger.ParseCheckpointProof(raw)
	if err != nil {
		return err
	}
	if err := ledger.CheckInclusion(s, c, p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checkpoint %d: OK (signed by %s; the closing head is leaf %d of %d, root %s)\n",
		c.ID, c.KeyID, p.LeafIndex, p.TreeSize, c.Root)
	return nil
}
