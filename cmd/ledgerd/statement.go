package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/signing"
)

// errStatementInvalid makes `ledgerd statement verify` exit 1.
var errStatementInvalid = errors.New("statement does not verify")

// keyFiles is a repeatable --public-key flag.
type keyFiles []string

func (k *keyFiles) String() string     { return strings.Join(*k, ",") }
func (k *keyFiles) Set(v string) error { *k = append(*k, v); return nil }

// runStatement runs `ledgerd statement verify FILE [--public-key PEM]…
// [--checkpoint FILE --proof FILE]`: every check of ledger.CheckStatement,
// and the inclusion of the closing head in the checkpoint, offline. It
// prints one line per check passed and fails on the first that does not.
func runStatement(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return fmt.Errorf("%w: statement needs verify FILE", errUsage)
	}
	fs := newBareFlagSet("statement verify", stderr)
	var keys keyFiles
	fs.Var(&keys, "public-key", "public key PEM `file` of the key that signed (repeat it for statements and checkpoints signed by other keys)")
	checkpointFile := fs.String("checkpoint", "", "checkpoint JSON `file` (GET /api/checkpoints/{id}) to check the statement's closing head against")
	proofFile := fs.String("proof", "", "inclusion proof JSON `file` (GET /api/users/{id}/checkpoint-proof?checkpoint=…)")
	// The statement file may come before or after the flags.
	rest := args[1:]
	var file string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() != 0 || file == "" {
		return fmt.Errorf("%w: statement verify needs exactly one FILE", errUsage)
	}
	if (*checkpointFile == "") != (*proofFile == "") {
		return fmt.Errorf("%w: --checkpoint and --proof go together", errUsage)
	}
	ring := signing.KeyRing{}
	for _, path := range keys {
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
	if err := verifyStatementFiles(file, *checkpointFile, *proofFile, ring, stdout); err != nil {
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
