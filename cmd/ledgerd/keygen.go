package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ledgerd/ledgerd/signing"
)

// keygenCmd is `ledgerd keygen [--out PREFIX]`: it writes a new Ed25519
// signing key to PREFIX.key (PKCS#8 PEM, mode 0600) and its public key to
// PREFIX.pub (mode 0644), and prints the paths, the key id and the
// LEDGER_SIGNING_KEY setting. It never overwrites a file and never prints
// the private key.
type keygenCmd struct {
	Out string `default:"ledgerd-signing" placeholder:"PREFIX" help:"write the key to PREFIX.key and the public key to PREFIX.pub"`
}

// Validate is the kong hook that checks the flags once parsed.
func (c *keygenCmd) Validate() error {
	if c.Out == "" {
		return errors.New("--out must not be empty")
	}
	return nil
}

// Run writes the key pair.
func (c *keygenCmd) Run(s streams) error {
	stdout := s.stdout
	privPEM, pubPEM, err := signing.GenerateKey()
	if err != nil {
		return err
	}
	pub, err := signing.ParsePublicKey(pubPEM)
	if err != nil {
		return err
	}
	keyPath, pubPath := c.Out+".key", c.Out+".pub"
	if err := writeNewFile(keyPath, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeNewFile(pubPath, pubPEM, 0o644); err != nil {
		// Without its .pub the new key is of no use; do not leave it behind.
		_ = os.Remove(keyPath)
		return err
	}
	setting, err := filepath.Abs(keyPath)
	if err != nil {
		setting = keyPath
	}
	fmt.Fprintf(stdout, "private key: %s (mode 0600; keep it secret)\npublic key:  %s (give it to verifiers)\nkey id:      %s\n",
		keyPath, pubPath, pub.KeyID())
	fmt.Fprintln(stdout, "Configure the server with:")
	fmt.Fprintf(stdout, "LEDGER_SIGNING_KEY=%s\n", setting)
	return nil
}

// writeNewFile writes b to a file at path that must not exist yet, with
// mode perm whatever the umask. On failure it leaves no file behind.
func writeNewFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm) // #nosec G304 -- the operator names the file
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s: %w; not overwriting it (choose another --out prefix, or move the file away)", path, os.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
