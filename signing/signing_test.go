package signing_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/signing"
)

// newSigner returns a signer for a fresh key and the key's PEM blocks.
func newSigner(tb testing.TB) (s *signing.Signer, privPEM, pubPEM []byte) {
	tb.Helper()
	privPEM, pubPEM, err := signing.GenerateKey()
	require.NoError(tb, err)
	s, err = signing.ParseSigner(privPEM)
	require.NoError(tb, err)
	return s, privPEM, pubPEM
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	s, _, pubPEM := newSigner(t)
	pub, err := signing.ParsePublicKey(pubPEM)
	require.NoError(t, err)
	require.Equal(t, s.KeyID(), pub.KeyID())
	require.Equal(t, s.PublicKey().KeyID(), pub.KeyID())
	require.Equal(t, string(pubPEM), pub.PEM())
	require.Equal(t, string(pubPEM), s.PublicKey().PEM())
	require.Regexp(t, `^[0-9a-f]{64}$`, s.KeyID())

	msg := []byte(`{"balance":10100.5,"userId":7}`)
	sig := s.Sign(msg)
	require.Len(t, sig, ed25519.SignatureSize)
	require.True(t, pub.Verify(msg, sig))
	require.Equal(t, base64.StdEncoding.EncodeToString(sig), s.SignBase64(msg))
	require.NoError(t, pub.VerifyBase64(msg, s.SignBase64(msg)))

	for i := range msg {
		bad := append([]byte(nil), msg...)
		bad[i] ^= 0x01
		require.False(t, pub.Verify(bad, sig), "message byte %d flipped", i)
		require.ErrorIs(t, pub.VerifyBase64(bad, s.SignBase64(msg)), signing.ErrBadSignature)
	}
	for i := range sig {
		bad := append([]byte(nil), sig...)
		bad[i] ^= 0x80
		require.False(t, pub.Verify(msg, bad), "signature byte %d flipped", i)
		require.ErrorIs(t, pub.VerifyBase64(msg, base64.StdEncoding.EncodeToString(bad)), signing.ErrBadSignature)
	}
	require.False(t, pub.Verify(msg, sig[:63]))

	other, _, _ := newSigner(t)
	require.NotEqual(t, s.KeyID(), other.KeyID())
	require.False(t, pub.Verify(msg, other.Sign(msg)))
}

func TestVerifyBase64Errors(t *testing.T) {
	t.Parallel()
	s, _, _ := newSigner(t)
	msg := []byte("statement")
	good := s.SignBase64(msg)
	for _, tc := range []struct {
		name, sig string
		want      error
	}{
		{"not base64", "%%%", signing.ErrMalformedSignature},
		{"unpadded", strings.TrimRight(good, "="), signing.ErrMalformedSignature},
		{"url alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(good) + "-_", signing.ErrMalformedSignature},
		{"too short", base64.StdEncoding.EncodeToString(s.Sign(msg)[:32]), signing.ErrMalformedSignature},
		{"empty", "", signing.ErrMalformedSignature},
		{"other message's signature", s.SignBase64([]byte("other")), signing.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.PublicKey().VerifyBase64(msg, tc.sig)
			require.ErrorIs(t, err, tc.want)
			if errors.Is(tc.want, signing.ErrMalformedSignature) {
				require.NotErrorIs(t, err, signing.ErrBadSignature)
			}
		})
	}
	require.ErrorIs(t, signing.PublicKey{}.VerifyBase64(msg, good), signing.ErrBadSignature, "the zero key verifies nothing")
	require.False(t, signing.PublicKey{}.Verify(msg, s.Sign(msg)))
	require.Empty(t, signing.PublicKey{}.KeyID())
	require.Empty(t, signing.PublicKey{}.PEM())
}

// TestKnownAnswer checks Sign against RFC 8032 section 7.1, test 1.
func TestKnownAnswer(t *testing.T) {
	t.Parallel()
	seed, err := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed))
	require.NoError(t, err)
	s, err := signing.ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	require.NoError(t, err)
	require.Equal(t, "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
		hex.EncodeToString(s.Sign(nil)))
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	_, privPEM, pubPEM := newSigner(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	require.NoError(t, err)
	ecPub, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	require.NoError(t, err)

	_, err = signing.ParseSigner([]byte("not a key"))
	require.ErrorIs(t, err, signing.ErrNotPEM)
	_, err = signing.ParseSigner(pubPEM)
	require.ErrorIs(t, err, signing.ErrPEMType)
	_, err = signing.ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}))
	require.ErrorIs(t, err, signing.ErrPEMType)
	require.ErrorContains(t, err, "encrypted keys are not supported")
	_, err = signing.ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}))
	require.ErrorIs(t, err, signing.ErrNotEd25519)
	require.ErrorContains(t, err, "ecdsa")
	_, err = signing.ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")}))
	require.Error(t, err)

	_, err = signing.ParsePublicKey([]byte(""))
	require.ErrorIs(t, err, signing.ErrNotPEM)
	_, err = signing.ParsePublicKey(privPEM)
	require.ErrorIs(t, err, signing.ErrPEMType)
	_, err = signing.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPub}))
	require.ErrorIs(t, err, signing.ErrNotEd25519)
}

func TestLoadSigner(t *testing.T) {
	t.Parallel()
	s, privPEM, _ := newSigner(t)

	fromText, err := signing.LoadSigner(string(privPEM))
	require.NoError(t, err)
	require.Equal(t, s.KeyID(), fromText.KeyID())

	path := filepath.Join(t.TempDir(), "ledgerd-signing.key")
	require.NoError(t, os.WriteFile(path, privPEM, 0o600))
	fromFile, err := signing.LoadSigner(path)
	require.NoError(t, err)
	require.Equal(t, s.KeyID(), fromFile.KeyID())

	missing := filepath.Join(t.TempDir(), "missing.key")
	_, err = signing.LoadSigner(missing)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, missing)
	require.Equal(t, 1, strings.Count(err.Error(), missing), "the path is named once: %v", err)

	notKey := filepath.Join(t.TempDir(), "not.key")
	require.NoError(t, os.WriteFile(notKey, []byte("hello"), 0o600))
	_, err = signing.LoadSigner(notKey)
	require.ErrorIs(t, err, signing.ErrNotPEM)
	require.ErrorContains(t, err, notKey)

	_, err = signing.LoadSigner("")
	require.ErrorContains(t, err, "empty")
}

// TestLoadSignerErrorsHideKey checks that no error of LoadSigner repeats a
// key, or a setting that may be one.
func TestLoadSignerErrorsHideKey(t *testing.T) {
	t.Parallel()
	_, privPEM, pubPEM := newSigner(t)
	block, _ := pem.Decode(privPEM)
	body := base64.StdEncoding.EncodeToString(block.Bytes)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	require.NoError(t, err)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})
	corrupt := append([]byte(nil), block.Bytes...)
	corrupt[1] ^= 0xff // the outer SEQUENCE's length

	for _, tc := range []struct {
		name, setting string
		secrets       []string // none may appear in the error
	}{
		{"malformed PEM body", "-----BEGIN PRIVATE KEY-----\n" + body[:20] + "!!" + body[20:] + "\n-----END PRIVATE KEY-----\n", []string{body[:20], body[20:]}},
		{"PEM without its end line", "-----BEGIN PRIVATE KEY-----\n" + body + "\n", []string{body}},
		{"corrupt DER", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: corrupt})), []string{base64.StdEncoding.EncodeToString(corrupt)[8:]}},
		{"EC key", string(ecPEM), []string{strings.Split(string(ecPEM), "\n")[1]}},
		{"public key given", string(pubPEM), []string{strings.Split(string(pubPEM), "\n")[1]}},
		{"bare base64 DER", body, []string{body}},
		{"bare hex seed", hex.EncodeToString(block.Bytes[16:]), []string{hex.EncodeToString(block.Bytes[16:])}},
		{"PEM body lines without armor", strings.Join(strings.Split(string(privPEM), "\n")[1:2], "\n") + "\n", []string{body[:40]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := signing.LoadSigner(tc.setting)
			require.Error(t, err)
			for _, secret := range tc.secrets {
				require.NotEmpty(t, secret)
				require.NotContains(t, err.Error(), secret)
			}
			t.Log(err)
		})
	}
}

func TestSignerHidesKeyWhenPrinted(t *testing.T) {
	t.Parallel()
	s, privPEM, _ := newSigner(t)
	block, _ := pem.Decode(privPEM)
	seed := block.Bytes[len(block.Bytes)-ed25519.SeedSize:]
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X"} {
		out := fmt.Sprintf(format, s)
		if format != "%x" && format != "%X" { // these hex-encode String
			require.Contains(t, out, s.KeyID(), format)
		}
		for _, enc := range []string{hex.EncodeToString(seed), strings.ToUpper(hex.EncodeToString(seed)), fmt.Sprintf("%v", seed[:8])} {
			require.NotContains(t, out, strings.Trim(enc, "[]"), format)
		}
	}
}

func TestKeyRing(t *testing.T) {
	t.Parallel()
	oldKey, _, _ := newSigner(t)
	newKey, _, _ := newSigner(t)
	ring := signing.KeyRing{}
	ring.Add(oldKey.PublicKey())
	ring.Add(newKey.PublicKey())

	msg := []byte("checkpoint")
	for _, s := range []*signing.Signer{oldKey, newKey} {
		k, ok := ring.Find(s.KeyID())
		require.True(t, ok)
		require.Equal(t, s.KeyID(), k.KeyID())
		require.NoError(t, k.VerifyBase64(msg, s.SignBase64(msg)))
	}
	k, ok := ring.Find(oldKey.KeyID())
	require.True(t, ok)
	require.ErrorIs(t, k.VerifyBase64(msg, newKey.SignBase64(msg)), signing.ErrBadSignature)

	_, ok = ring.Find("0000")
	require.False(t, ok)
	_, ok = signing.KeyRing(nil).Find(oldKey.KeyID())
	require.False(t, ok)
}

// openssl runs the openssl CLI in dir and returns its standard output. It
// fails the test, never skips it, when openssl is missing.
func openssl(tb testing.TB, dir string, args ...string) ([]byte, error) {
	tb.Helper()
	path, err := exec.LookPath("openssl")
	require.NoError(tb, err, "these tests need the openssl CLI (OpenSSL 3) on PATH")
	cmd := exec.CommandContext(tb.Context(), path, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("openssl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

func writeFile(tb testing.TB, dir, name string, b []byte) {
	tb.Helper()
	require.NoError(tb, os.WriteFile(filepath.Join(dir, name), b, 0o600))
}

func TestOpenSSLVerifiesOurSignatures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, privPEM, pubPEM := newSigner(t)
	msg, err := signing.Canonical(map[string]any{"userId": 7, "balance": 10100.5, "note": "é\n"})
	require.NoError(t, err)
	writeFile(t, dir, "key.pem", privPEM)
	writeFile(t, dir, "pub.pem", pubPEM)
	writeFile(t, dir, "msg", msg)
	writeFile(t, dir, "sig", s.Sign(msg))

	_, err = openssl(t, dir, "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", "pub.pem", "-in", "msg", "-sigfile", "sig")
	require.NoError(t, err)

	tampered := append([]byte(nil), msg...)
	tampered[len(tampered)-2] ^= 0x01
	writeFile(t, dir, "tampered", tampered)
	_, err = openssl(t, dir, "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", "pub.pem", "-in", "tampered", "-sigfile", "sig")
	require.Error(t, err, "openssl must refuse the signature for a changed message")

	// openssl reads our PKCS#8 private key and derives the same public key.
	derived, err := openssl(t, dir, "pkey", "-in", "key.pem", "-pubout")
	require.NoError(t, err)
	require.Equal(t, string(pubPEM), string(derived))
}

func TestOpenSSLSignaturesVerifyInGo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := openssl(t, dir, "genpkey", "-algorithm", "ed25519", "-out", "key.pem")
	require.NoError(t, err)
	_, err = openssl(t, dir, "pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem")
	require.NoError(t, err)
	msg := []byte(`{"keyId":"x","seq":1}`)
	writeFile(t, dir, "msg", msg)
	_, err = openssl(t, dir, "pkeyutl", "-sign", "-rawin", "-inkey", "key.pem", "-in", "msg", "-out", "sig")
	require.NoError(t, err)

	sig, err := os.ReadFile(filepath.Join(dir, "sig"))
	require.NoError(t, err)
	pubPEM, err := os.ReadFile(filepath.Join(dir, "pub.pem"))
	require.NoError(t, err)
	pub, err := signing.ParsePublicKey(pubPEM)
	require.NoError(t, err)
	require.True(t, pub.Verify(msg, sig))
	require.False(t, pub.Verify([]byte(`{"keyId":"x","seq":2}`), sig))

	// Our signer reads openssl's key file and makes the same signature
	// (Ed25519 is deterministic).
	s, err := signing.LoadSigner(filepath.Join(dir, "key.pem"))
	require.NoError(t, err)
	require.Equal(t, pub.KeyID(), s.KeyID())
	require.Equal(t, sig, s.Sign(msg))
}

func TestKeyIDMatchesOpenSSL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _, pubPEM := newSigner(t)
	writeFile(t, dir, "pub.pem", pubPEM)
	// openssl pkey -pubin -in pub.pem -outform DER | sha256sum
	_, err := openssl(t, dir, "pkey", "-pubin", "-in", "pub.pem", "-outform", "DER", "-out", "pub.der")
	require.NoError(t, err)
	out, err := openssl(t, dir, "dgst", "-sha256", "-r", "pub.der")
	require.NoError(t, err)
	sum, _, ok := strings.Cut(string(out), " ")
	require.True(t, ok, "openssl dgst -r output: %q", out)
	require.Equal(t, sum, s.KeyID())
	require.Equal(t, sum, s.PublicKey().KeyID())
}
