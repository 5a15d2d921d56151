package headtree

import "errors"

// Errors returned by this package, always wrapped with the detail of what was
// wrong (which user, which leaf, which byte); compare with errors.Is.
var (
	// ErrInvalidHead means a head breaks its invariants: user id ≤ 0,
	// seq < 0, seq 0 with a non-zero hash, or seq > 0 with the zero hash.
	ErrInvalidHead = errors.New("invalid head")
	// ErrOutOfOrder means user ids are not strictly increasing.
	ErrOutOfOrder = errors.New("user ids not strictly increasing")
	// ErrFinished means Builder.Add was called after Builder.Finish.
	ErrFinished = errors.New("builder already finished")
	// ErrMalformedLeaves means a chunk's leaves blob cannot be decoded.
	ErrMalformedLeaves = errors.New("malformed chunk leaves")
	// ErrOutOfRange means a chunk or leaf index lies outside the tree or the
	// chunk.
	ErrOutOfRange = errors.New("index out of range")
	// ErrChunkMismatch means the leaf hashes given for a chunk do not make
	// that chunk: wrong count for the chunk size, or a root other than the
	// stored chunk root (a changed entry, or a lookup that read the wrong
	// heads).
	ErrChunkMismatch = errors.New("leaf hashes do not match the chunk")
	// ErrInvalidChunkSize means a chunk size is not a power of two ≥ 1.
	ErrInvalidChunkSize = errors.New("chunk size is not a power of two")
	// ErrInvalidProof means an inclusion proof does not prove the leaf
	// against the root.
	ErrInvalidProof = errors.New("inclusion proof does not verify")
)
