package headtree_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/headtree"
)

// TestInclusionProofEveryLeaf proves every leaf of every tree of 1 to 33
// leaves, cut into chunks of 1, 2, 4, 8 and 1024 leaves: built by streaming
// through Builder, proved from one chunk's leaves and all chunk roots, and
// held to RFC 6962's PATH and MTH on the whole tree.
func TestInclusionProofEveryLeaf(t *testing.T) {
	t.Parallel()
	for _, chunkSize := range []int{1, 2, 4, 8, 1024} {
		t.Run(fmt.Sprintf("chunk size %d", chunkSize), func(t *testing.T) {
			t.Parallel()
			for n := 1; n <= 33; n++ {
				heads := testHeads(n, byte(n))
				data := leafData(heads)
				tr := build(t, chunkSize, heads)
				require.Equal(t, uint64(n), tr.size)
				require.Equal(t, refMTH(data), tr.root, "size %d: root", n)
				roots := tr.chunkRoots()
				require.Equal(t, tr.root, headtree.RootFromChunks(roots), "size %d: root from chunks", n)

				for x := range n {
					chunk, index := x/chunkSize, x%chunkSize
					c := tr.chunks[chunk]
					require.Equal(t, heads[chunk*chunkSize].UserID, c.FirstUserID)
					path, err := headtree.InclusionProof(chunkSize, roots, chunk, leafHashes(t, c, heads), index)
					require.NoError(t, err, "size %d leaf %d", n, x)
					require.Equal(t, refPath(x, data), path, "size %d leaf %d", n, x)
					require.NoError(t, headtree.VerifyInclusion(headtree.LeafHash(heads[x]), uint64(x), uint64(n), path, tr.root))
				}
			}
		})
	}
}

func TestVerifyInclusionRejects(t *testing.T) {
	t.Parallel()
	const chunkSize, n, x = 4, 13, 6
	heads := testHeads(n, 0)
	tr := build(t, chunkSize, heads)
	path, err := headtree.InclusionProof(chunkSize, tr.chunkRoots(), x/chunkSize, leafHashes(t, tr.chunks[x/chunkSize], heads), x%chunkSize)
	require.NoError(t, err)
	leaf := headtree.LeafHash(heads[x])
	require.NoError(t, headtree.VerifyInclusion(leaf, x, n, path, tr.root))

	// Another tree over the same users: one head moved on by one entry.
	changed := append([]headtree.Head(nil), heads...)
	changed[11].Seq++
	changed[11].Hash[0] ^= 1
	otherRoot := build(t, chunkSize, changed).root
	require.NotEqual(t, tr.root, otherRoot)

	// x's own head, a later head of the same user.
	later := heads[x]
	later.Seq++
	later.Hash[31] ^= 1

	tests := []struct {
		name        string
		leaf        [32]byte
		index, size uint64
		path        [][32]byte
		root        [32]byte
	}{
		{"another user's head", headtree.LeafHash(heads[x+1]), x, n, path, tr.root},
		{"the user's head at another seq", headtree.LeafHash(later), x, n, path, tr.root},
		{"wrong index", leaf, x + 1, n, path, tr.root},
		{"index of the sibling", leaf, x ^ 1, n, path, tr.root},
		// Not n+1: for leaf 6, trees of 13 and 14 leaves chain the path the
		// same way. The root does not commit to the size; a checkpoint
		// publishes the two together.
		{"smaller size", leaf, x, 8, path, tr.root},
		{"larger size", leaf, x, 17, path, tr.root},
		{"index past the size", leaf, n, n, path, tr.root},
		{"another tree's root", leaf, x, n, path, otherRoot},
		{"path too short", leaf, x, n, path[:len(path)-1], tr.root},
		{"path too long", leaf, x, n, append(append([][32]byte(nil), path...), tr.root), tr.root},
		{"path hash changed", leaf, x, n, changedAt(path, 1), tr.root},
		{"path reversed", leaf, x, n, reversed(path), tr.root},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := headtree.VerifyInclusion(tt.leaf, tt.index, tt.size, tt.path, tt.root)
			require.ErrorIs(t, err, headtree.ErrInvalidProof)
		})
	}
}

func changedAt(path [][32]byte, i int) [][32]byte {
	out := append([][32]byte(nil), path...)
	out[i][7] ^= 0x40
	return out
}

func reversed(path [][32]byte) [][32]byte {
	out := make([][32]byte, len(path))
	for i, h := range path {
		out[len(path)-1-i] = h
	}
	return out
}

func TestVerifyInclusionMessage(t *testing.T) {
	t.Parallel()
	tr := build(t, 2, testHeads(3, 0))
	err := headtree.VerifyInclusion(headtree.LeafHash(testHeads(3, 0)[0]), 0, 3, nil, tr.root)
	require.ErrorIs(t, err, headtree.ErrInvalidProof)
	require.ErrorContains(t, err, "leaf 0 of 3: wrong proof size 0, want 2")

	path, err := headtree.InclusionProof(2, tr.chunkRoots(), 0, leafHashes(t, tr.chunks[0], testHeads(3, 0)), 0)
	require.NoError(t, err)
	err = headtree.VerifyInclusion([32]byte{1}, 0, 3, path, tr.root)
	require.ErrorContains(t, err, "want "+hexOf(tr.root))
}

func TestInclusionProofRejects(t *testing.T) {
	t.Parallel()
	const chunkSize = 4
	heads := testHeads(10, 0) // chunks of 4, 4 and 2 leaves
	tr := build(t, chunkSize, heads)
	roots := tr.chunkRoots()
	first := leafHashes(t, tr.chunks[0], heads)
	last := leafHashes(t, tr.chunks[2], heads)

	tests := []struct {
		name      string
		chunkSize int
		chunk     int
		leaves    [][32]byte
		index     int
		err       error
	}{
		{"chunk size 0", 0, 0, first, 0, headtree.ErrInvalidChunkSize},
		{"chunk size not a power of two", 3, 0, first, 0, headtree.ErrInvalidChunkSize},
		{"negative chunk", chunkSize, -1, first, 0, headtree.ErrOutOfRange},
		{"chunk past the last", chunkSize, 3, first, 0, headtree.ErrOutOfRange},
		{"negative index", chunkSize, 0, first, -1, headtree.ErrOutOfRange},
		{"index past the chunk", chunkSize, 0, first, 4, headtree.ErrOutOfRange},
		{"index past the last chunk", chunkSize, 2, last, 2, headtree.ErrOutOfRange},
		{"another chunk's leaves", chunkSize, 1, first, 0, headtree.ErrChunkMismatch},
		{"a leaf changed", chunkSize, 0, changedAt(first, 2), 0, headtree.ErrChunkMismatch},
		{"leaves reordered", chunkSize, 0, reversed(first), 0, headtree.ErrChunkMismatch},
		{"a leaf missing", chunkSize, 0, first[:3], 0, headtree.ErrChunkMismatch},
		{"no leaves in the last chunk", chunkSize, 2, nil, 0, headtree.ErrChunkMismatch},
		{"too many leaves in the last chunk", chunkSize, 2, append(append([][32]byte(nil), first...), last...), 0, headtree.ErrChunkMismatch},
		{"wrong chunk size", 2, 0, first, 0, headtree.ErrChunkMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, err := headtree.InclusionProof(tt.chunkSize, roots, tt.chunk, tt.leaves, tt.index)
			require.ErrorIs(t, err, tt.err)
			require.Nil(t, path)
		})
	}
}
