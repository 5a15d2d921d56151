package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// PEM block types of the keys this package reads and writes.
const (
	privateKeyType = "PRIVATE KEY"
	publicKeyType  = "PUBLIC KEY"
)

// Signer signs with one Ed25519 private key. Its String and GoString show
// only the key id, so a Signer that reaches a log line does not leak its key.
type Signer struct {
	private ed25519.PrivateKey
	public  PublicKey
}

// ParseSigner parses a PEM "PRIVATE KEY" block (PKCS#8) holding an Ed25519
// key, as written by GenerateKey or `openssl genpkey -algorithm ed25519`.
// It returns ErrNotPEM, ErrPEMType or ErrNotEd25519, wrapped, or a wrapped
// PKCS#8 parse error; no error includes the input.
func ParseSigner(pemBytes []byte) (*Signer, error) {
	der, err := decodePEM(pemBytes, privateKeyType)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse PKCS#8 private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the private key is %s", ErrNotEd25519, keyKind(key))
	}
	pub, err := newPublicKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Signer{private: priv, public: pub}, nil
}

// LoadSigner reads the signing key from setting, the value of
// LEDGER_SIGNING_KEY: PEM text when it contains "-----BEGIN", otherwise the
// path of a file holding the PEM. It returns the errors of ParseSigner,
// wrapped, or the error of reading the file. The errors name the file's path
// but never include the key or the setting's text (with one exception for
// safety's sake: a path that looks like base64 key material is not repeated
// either).
func LoadSigner(setting string) (*Signer, error) {
	if strings.Contains(setting, "-----BEGIN") {
		s, err := ParseSigner([]byte(setting))
		if err != nil {
			return nil, fmt.Errorf("LEDGER_SIGNING_KEY holds PEM text that is not an Ed25519 private key in PKCS#8 PEM: %w", err)
		}
		return s, nil
	}
	if strings.TrimSpace(setting) == "" {
		return nil, errors.New("LEDGER_SIGNING_KEY is empty: give the path of a PKCS#8 Ed25519 private key PEM file, or the PEM text")
	}
	b, err := os.ReadFile(setting) // #nosec G304 -- the operator names the key file
	if err != nil {
		if looksLikeKeyMaterial(setting) {
			// Not repeated: the operator may have pasted a key in a form
			// other than PEM, and the error goes to the logs.
			return nil, errors.New("LEDGER_SIGNING_KEY is neither PEM text nor the path of a readable file (the value is not shown: it may be key material)")
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named below, once
		}
		return nil, fmt.Errorf("read LEDGER_SIGNING_KEY file %q: %w", setting, err)
	}
	s, err := ParseSigner(b)
	if err != nil {
		return nil, fmt.Errorf("LEDGER_SIGNING_KEY file %q is not an Ed25519 private key in PKCS#8 PEM: %w", setting, err)
	}
	return s, nil
}

// looksLikeKeyMaterial reports whether s, which failed to open as a path,
// may be a key pasted in some form other than PEM (base64 or hex DER, a raw
// seed): long, and only base64 or hex characters, or holding line breaks or
// other control characters that paths do not have.
func looksLikeKeyMaterial(s string) bool {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return true
	}
	if len(s) < 40 {
		return false
	}
	for _, r := range s {
		isBase64 := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' ||
			r == '+' || r == '/' || r == '-' || r == '_' || r == '='
		if !isBase64 {
			return false
		}
	}
	return true
}

// KeyID returns the id of the signer's public key (see PublicKey.KeyID).
func (s *Signer) KeyID() string { return s.public.id }

// PublicKey returns the signer's public key.
func (s *Signer) PublicKey() PublicKey { return s.public }

// Sign returns the 64-byte Ed25519 signature of msg. It is pure Ed25519 over
// msg itself, with no pre-hash: `openssl pkeyutl -verify -rawin` checks it.
func (s *Signer) Sign(msg []byte) []byte { return ed25519.Sign(s.private, msg) }

// SignBase64 returns Sign(msg) in standard base64 with padding.
func (s *Signer) SignBase64(msg []byte) string {
	return base64.StdEncoding.EncodeToString(s.Sign(msg))
}

// String names the signer by its key id; it never shows the private key.
func (s *Signer) String() string { return "signing.Signer{keyId: " + s.KeyID() + "}" }

// GoString is String, so that %#v does not print the private key either.
func (s *Signer) GoString() string { return s.String() }

// PublicKey is an Ed25519 public key and its key id. The zero PublicKey
// verifies nothing.
type PublicKey struct {
	key ed25519.PublicKey
	der []byte // SubjectPublicKeyInfo
	id  string
}

func newPublicKey(key ed25519.PublicKey) (PublicKey, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return PublicKey{}, fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return PublicKey{key: key, der: der, id: hex.EncodeToString(sum[:])}, nil
}

// ParsePublicKey parses a PEM "PUBLIC KEY" block (SubjectPublicKeyInfo)
// holding an Ed25519 key, as written by GenerateKey or `openssl pkey
// -pubout`. It returns ErrNotPEM, ErrPEMType or ErrNotEd25519, wrapped, or a
// wrapped parse error.
func ParsePublicKey(pemBytes []byte) (PublicKey, error) {
	der, err := decodePEM(pemBytes, publicKeyType)
	if err != nil {
		return PublicKey{}, err
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return PublicKey{}, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return PublicKey{}, fmt.Errorf("%w: the public key is %s", ErrNotEd25519, keyKind(key))
	}
	return newPublicKey(pub)
}

// KeyID returns the key id: the lowercase hex SHA-256 of the key's DER
// SubjectPublicKeyInfo, what `openssl pkey -pubin -in pub.pem -outform DER |
// sha256sum` prints. It is "" for the zero PublicKey.
func (p PublicKey) KeyID() string { return p.id }

// PEM returns the key as a PEM "PUBLIC KEY" block, or "" for the zero
// PublicKey.
func (p PublicKey) PEM() string {
	if p.der == nil {
		return ""
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: publicKeyType, Bytes: p.der}))
}

// Verify reports whether sig is the key's Ed25519 signature of msg.
func (p PublicKey) Verify(msg, sig []byte) bool {
	if len(p.key) != ed25519.PublicKeySize { // ed25519.Verify panics on it
		return false
	}
	return ed25519.Verify(p.key, msg, sig)
}

// VerifyBase64 checks sigB64, a signature in standard padded base64, of msg.
// It returns ErrMalformedSignature (wrapped) when sigB64 is not base64 of 64
// bytes, and ErrBadSignature when the signature does not verify.
func (p PublicKey) VerifyBase64(msg []byte, sigB64 string) error {
	sig, err := base64.StdEncoding.Strict().DecodeString(sigB64)
	if err != nil {
		return fmt.Errorf("%w: not standard base64: %w", ErrMalformedSignature, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrMalformedSignature, len(sig), ed25519.SignatureSize)
	}
	if !p.Verify(msg, sig) {
		return ErrBadSignature
	}
	return nil
}

// GenerateKey returns a new Ed25519 key from crypto/rand: the private key as
// a PKCS#8 "PRIVATE KEY" PEM block and the public key as a "PUBLIC KEY" PEM
// block.
func GenerateKey() (privatePEM, publicPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: privateKeyType, Bytes: privDER}),
		pem.EncodeToMemory(&pem.Block{Type: publicKeyType, Bytes: pubDER}), nil
}

// KeyRing holds the public keys a verifier trusts, by key id. A document
// names the key that signed it, so after a rotation the ring keeps the old
// keys and old documents still verify. Make one with KeyRing{}: the zero
// (nil) KeyRing finds nothing, and Add on it panics.
type KeyRing map[string]PublicKey

// Add puts k in the ring under its key id.
func (r KeyRing) Add(k PublicKey) { r[k.KeyID()] = k }

// Find returns the key with id keyID, and whether the ring has it.
func (r KeyRing) Find(keyID string) (PublicKey, bool) {
	k, ok := r[keyID]
	return k, ok
}

// decodePEM returns the bytes of the first PEM block of b, which must have
// type want. The errors name the block type at most, never its content.
func decodePEM(b []byte, want string) ([]byte, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%w: want a %q block", ErrNotPEM, want)
	}
	if block.Type != want {
		hint := ""
		if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
			hint = " (encrypted keys are not supported)"
		}
		return nil, fmt.Errorf("%w: %q, want %q%s", ErrPEMType, block.Type, want, hint)
	}
	return block.Bytes, nil
}

// keyKind names a key's algorithm for an error message.
func keyKind(key any) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", key), "*")
}
