package headtree

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ChunkRoot returns the RFC 6962 root (MTH) of a chunk's leaves, given their
// leaf hashes in order. It returns the empty root for no leaves, although no
// stored chunk is empty.
func ChunkRoot(leafHashes [][32]byte) [32]byte {
	return rootOf(leafHashes)
}

// RootFromChunks returns the root of the tree from the roots of all its
// chunks in order, every chunk full but the last. It returns the empty root
// for no chunks. It is the same computation as ChunkRoot, one level up: the
// chunk roots are the leaf-level nodes of the RFC 6962 tree over them (see
// the package documentation).
func RootFromChunks(chunkRoots [][32]byte) [32]byte {
	return rootOf(chunkRoots)
}

// rootOf returns the RFC 6962 root of the tree whose leaves (or aligned
// subtrees) have the given hashes.
func rootOf(hashes [][32]byte) [32]byte {
	r := rangeFactory.NewEmptyRange(0)
	for i := range hashes {
		must(r.Append(hashes[i][:], nil))
	}
	return rootOfRange(r)
}

// InclusionProof returns the RFC 6962 audit path of leaf index of chunk
// number chunk, in a tree cut into chunks of chunkSize leaves (ChunkSize in
// production) whose chunk roots are chunkRoots; leafHashes are that chunk's
// leaf hashes in order. The path runs bottom-up, as RFC 9162 §2.1.3.1 and
// VerifyInclusion want it: the path inside the chunk, then the path of the
// chunk among the chunk roots. It proves global leaf index
// chunk*chunkSize+index in the tree of (len(chunkRoots)-1)*chunkSize + size of
// the last chunk leaves.
//
// It returns ErrInvalidChunkSize if chunkSize is not a power of two ≥ 1,
// ErrOutOfRange if chunk or index falls outside chunkRoots or leafHashes, and
// ErrChunkMismatch if leafHashes are not chunkSize hashes (1 to chunkSize
// for the last chunk) or their root is not chunkRoots[chunk].
func InclusionProof(chunkSize int, chunkRoots [][32]byte, chunk int, leafHashes [][32]byte, index int) ([][32]byte, error) {
	if err := checkChunkSize(chunkSize); err != nil {
		return nil, err
	}
	if chunk < 0 || chunk >= len(chunkRoots) {
		return nil, fmt.Errorf("%w: chunk %d of %d", ErrOutOfRange, chunk, len(chunkRoots))
	}
	n := len(leafHashes)
	switch last := chunk == len(chunkRoots)-1; {
	case !last && n != chunkSize:
		return nil, fmt.Errorf("%w: chunk %d has %d leaves, want %d", ErrChunkMismatch, chunk, n, chunkSize)
	case last && (n < 1 || n > chunkSize):
		return nil, fmt.Errorf("%w: last chunk %d has %d leaves, want 1 to %d", ErrChunkMismatch, chunk, n, chunkSize)
	}
	if index < 0 || index >= n {
		return nil, fmt.Errorf("%w: leaf %d of %d in chunk %d", ErrOutOfRange, index, n, chunk)
	}
	if root := ChunkRoot(leafHashes); root != chunkRoots[chunk] {
		return nil, fmt.Errorf("%w: chunk %d: leaves give root %x, stored root is %x", ErrChunkMismatch, chunk, root, chunkRoots[chunk])
	}
	inner := pathOf(leafHashes, index)
	return append(inner, pathOf(chunkRoots, chunk)...), nil
}

// pathOf returns the RFC 6962 audit path PATH(index, ·) in the tree whose
// leaves (or aligned subtrees) have the given hashes, bottom-up. The library
// names the perfect subtrees the path needs, and how to fold the ones right
// of the leaf's fork into the single ephemeral node the path holds.
func pathOf(hashes [][32]byte, index int) [][32]byte {
	nodes, err := proof.Inclusion(uint64(index), uint64(len(hashes)))
	must(err) // the callers checked 0 ≤ index < len(hashes)
	subtrees := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		begin, end := id.Coverage() // a perfect subtree inside [0, len(hashes))
		root := rootOf(hashes[begin:end])
		subtrees[i] = root[:]
	}
	path, err := nodes.Rehash(subtrees, hashNodes)
	must(err) // one hash per ID, by construction
	out := make([][32]byte, len(path))
	for i, h := range path {
		out[i] = [32]byte(h)
	}
	return out
}

// VerifyInclusion checks that auditPath proves the leaf with hash leafHash at
// index in the tree of size leaves with the given root (RFC 9162 §2.1.3.2).
// It returns nil if it does, and an error wrapping ErrInvalidProof if not: a
// wrong leaf, index, size or root, or a path of the wrong length.
//
// Take size and root together from one checkpoint: the root does not commit
// to the size by itself, and a path may verify for more than one size (leaf
// 6 of 13 and of 14 chain the same way).
func VerifyInclusion(leafHash [32]byte, index, size uint64, auditPath [][32]byte, root [32]byte) error {
	path := make([][]byte, len(auditPath))
	for i := range auditPath {
		path[i] = auditPath[i][:]
	}
	err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leafHash[:], path, root[:])
	var mismatch proof.RootMismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mismatch):
		return fmt.Errorf("%w: leaf %d of %d: path gives root %x, want %x", ErrInvalidProof, index, size, mismatch.CalculatedRoot, root)
	default:
		return fmt.Errorf("%w: leaf %d of %d: %w", ErrInvalidProof, index, size, err)
	}
}
