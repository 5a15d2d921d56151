package signing

import "errors"

var (
	// ErrBadSignature means a well-formed signature does not verify against
	// the message and the key.
	ErrBadSignature = errors.New("signature does not verify")

	// ErrMalformedSignature means a signature is not standard padded base64
	// or does not decode to the 64 bytes of an Ed25519 signature.
	ErrMalformedSignature = errors.New("malformed signature")

	// ErrNotPEM means the input holds no PEM block.
	ErrNotPEM = errors.New("no PEM block")

	// ErrPEMType means the PEM block is not of the expected type
	// ("PRIVATE KEY" or "PUBLIC KEY").
	ErrPEMType = errors.New("wrong PEM block type")

	// ErrNotEd25519 means the key parses but is not an Ed25519 key.
	ErrNotEd25519 = errors.New("not an Ed25519 key")
)
