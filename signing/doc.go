// Package signing owns ledgerd's signing keys and the bytes they sign: the
// Ed25519 keys that sign statements and checkpoints, their key ids, and the
// canonical JSON that a signature covers.
//
// # Keys
//
// Keys are Ed25519 only. A private key is a PKCS#8 "PRIVATE KEY" PEM block,
// a public key a SubjectPublicKeyInfo "PUBLIC KEY" PEM block: the formats
// that `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`
// write. Signatures are pure Ed25519 (RFC 8032, no pre-hash) over the exact
// message bytes, so `openssl pkeyutl -verify -rawin` checks them.
//
// A key id is the lowercase hex SHA-256 of the public key's DER
// SubjectPublicKeyInfo, the output of
//
//	openssl pkey -pubin -in pub.pem -outform DER | sha256sum
//
// A signed document names the id of the key that signed it; a verifier keeps
// every key it trusts in a [KeyRing] and picks the one the document names, so
// documents signed before a key rotation still verify.
//
// Invariants: no error, String or GoString of this package includes private
// key material or the text of a key setting; a [Signer] never changes its key.
//
// # Canonical JSON
//
// [Canonical] and [CanonicalJSON] produce RFC 8785 (JSON Canonicalization
// Scheme) bytes: object keys sorted by their UTF-16 code units, no
// insignificant whitespace, strings with only the required escapes (other
// characters, including non-ASCII, are written as UTF-8), and numbers in the
// ECMAScript (ES6) form of an IEEE-754 double. The same value therefore has
// one byte form, whatever produced it. CanonicalJSON refuses input that is
// not valid UTF-8 JSON or that repeats an object key, so only well-formed
// JSON is ever signed (the jcs library alone would, for one, turn the
// truncated {"a":1,"b into {"a":1}).
//
// The number rule has a cost: RFC 8785 has no integers or decimals, only
// doubles. An integer beyond 2^53 (9007199254740992) or a decimal with more
// than 15 significant digits may lose its last digits in the canonical bytes
// (9007199254740993 is written 9007199254740992, 12345678901234567.89 is
// written 12345678901234568), while a value within those bounds only loses
// its formatting (10100.50 is written 10100.5, 1e2 is written 100). The
// canonical bytes are what gets signed, so a signature alone does not pin
// such a value exactly. ledgerd's statements also bind every amount and
// balance through the entries' hashes, which cover them as exact integer
// cents (see ledger.Entry.Canonical); a verifier that needs exact values
// checks those hashes. A writer whose values must survive canonicalization
// digit for digit puts them in JSON strings.
package signing
