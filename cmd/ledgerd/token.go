package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/ledgerd/ledgerd/api"
)

// tokenCmd is `ledgerd token`: it prints a new random token, its hash and
// the LEDGER_API_TOKENS entry that admits it.
type tokenCmd struct {
	Role string `default:"writer" enum:"writer,auditor" placeholder:"ROLE" help:"writer (every route) or auditor (GET routes only)"`
}

// Run prints the token.
func (c *tokenCmd) Run(s streams) error {
	stdout := s.stdout
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("random token: %w", err)
	}
	token := "ldg_" + base64.RawURLEncoding.EncodeToString(b)
	hash := api.HashToken(token)
	fmt.Fprintf(stdout, "token:  %s\nsha256: %s\nentry:  LEDGER_API_TOKENS=%s:%s\n", token, hash, c.Role, hash)
	fmt.Fprintln(stdout, "Give the token to the client; configure only the entry. The token is not shown again.")
	return nil
}
