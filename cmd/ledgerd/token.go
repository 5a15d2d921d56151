package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/ledgerd/ledgerd/api"
)

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
