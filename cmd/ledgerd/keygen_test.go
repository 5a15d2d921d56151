package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/signing"
)

// keygen runs `ledgerd keygen args...`.
func keygen(stdout, stderr io.Writer, args ...string) error {
	return run(context.Background(), append([]string{"ledgerd", "keygen"}, args...), env(nil), stdout, stderr)
}

func TestKeygen(t *testing.T) {
	t.Parallel()
	prefix := filepath.Join(t.TempDir(), "sign")
	var out, errOut bytes.Buffer
	require.NoError(t, keygen(&out, &errOut, "-out", prefix))
	keyPath, pubPath := prefix+".key", prefix+".pub"

	st, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	st, err = os.Stat(pubPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	s, err := signing.LoadSigner(keyPath)
	require.NoError(t, err)
	pubPEM, err := os.ReadFile(pubPath)
	require.NoError(t, err)
	pub, err := signing.ParsePublicKey(pubPEM)
	require.NoError(t, err)
	require.Equal(t, s.KeyID(), pub.KeyID())

	printed := out.String()
	require.Contains(t, printed, s.KeyID())
	require.Contains(t, printed, keyPath)
	require.Contains(t, printed, pubPath)
	require.Contains(t, strings.Split(printed, "\n"), "LEDGER_SIGNING_KEY="+keyPath)
	privPEM, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	require.NotContains(t, printed, "PRIVATE KEY")
	require.NotContains(t, printed, strings.Split(string(privPEM), "\n")[1])
	require.Empty(t, errOut.String())

	// A second run into the same prefix refuses and leaves the key as it was.
	out.Reset()
	err = keygen(&out, &errOut, "--out", prefix)
	require.ErrorIs(t, err, os.ErrExist)
	require.ErrorContains(t, err, keyPath)
	require.Empty(t, out.String())
	again, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	require.Equal(t, privPEM, again)

	// An existing .pub alone also stops it, and no orphan .key is left.
	lone := filepath.Join(t.TempDir(), "lone")
	require.NoError(t, os.WriteFile(lone+".pub", []byte("keep"), 0o644))
	err = keygen(&out, &errOut, "-out", lone)
	require.ErrorIs(t, err, os.ErrExist)
	require.ErrorContains(t, err, lone+".pub")
	require.NoFileExists(t, lone+".key")
}

func TestKeygenDefaultPrefixAndUsage(t *testing.T) {
	// Not parallel: it changes the working directory.
	t.Chdir(t.TempDir())
	var out, errOut bytes.Buffer
	require.NoError(t, keygen(&out, &errOut))
	require.FileExists(t, "ledgerd-signing.key")
	require.FileExists(t, "ledgerd-signing.pub")
	abs, err := filepath.Abs("ledgerd-signing.key")
	require.NoError(t, err)
	require.Contains(t, strings.Split(out.String(), "\n"), "LEDGER_SIGNING_KEY="+abs)

	err = keygen(&out, &errOut, "extra")
	require.ErrorIs(t, err, errUsage)
	require.Equal(t, 2, exitCode(err))
	err = keygen(&out, &errOut, "-out", "")
	require.ErrorIs(t, err, errUsage)
	require.ErrorIs(t, keygen(&out, &errOut, "-bogus"), errUsage)
}

// TestSigningKeyNeverShown: the key, given as PEM text or as a path, is
// in no help text, and a malformed one is refused without echoing it; a
// server with a key logs only its id.
func TestSigningKeyNeverShown(t *testing.T) {
	t.Parallel()
	priv, _, err := signing.GenerateKey()
	require.NoError(t, err)
	body := strings.Join(strings.Split(string(priv), "\n")[1:2], "") // the base64 line
	for _, sub := range []string{"serve", "checkpoint"} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"ledgerd", sub, "-h"}, env(map[string]string{"LEDGER_SIGNING_KEY": string(priv)}), &out, &out)
		require.NoError(t, err, sub)
		require.NotContains(t, out.String(), body, sub)
		require.Contains(t, out.String(), "LEDGER_SIGNING_KEY", "%s documents the setting", sub)
	}
	bad := strings.Replace(string(priv), body[:20], "!!!!"+body[4:20], 1)
	var out bytes.Buffer
	err = run(context.Background(), []string{"ledgerd", "checkpoint"}, env(map[string]string{"LEDGER_SIGNING_KEY": bad}), &out, &out)
	require.ErrorIs(t, err, errUsage)
	require.NotContains(t, err.Error()+out.String(), body[4:20])
}
