package headtree_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/ledgerd/ledgerd/headtree"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func hexOf(h [32]byte) string { return hex.EncodeToString(h[:]) }

func hexes(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hexOf(h)
	}
	return out
}

// vectorLeafHashes returns the leaf hashes of the first n vector leaves.
func vectorLeafHashes(n int) [][32]byte {
	out := make([][32]byte, n)
	for i := range out {
		out[i] = headtree.HashLeaf(vectorLeaves[i])
	}
	return out
}

// chunkRootsOf cuts leaf hashes into chunks of chunkSize and returns their
// roots.
func chunkRootsOf(leafHashes [][32]byte, chunkSize int) [][32]byte {
	var roots [][32]byte
	for begin := 0; begin < len(leafHashes); begin += chunkSize {
		end := min(begin+chunkSize, len(leafHashes))
		roots = append(roots, headtree.ChunkRoot(leafHashes[begin:end]))
	}
	return roots
}

func TestVectorsMatchLibrary(t *testing.T) {
	t.Parallel()
	require.Equal(t, testonly.LeafInputs(), vectorLeaves)
	require.Equal(t, vectorEmptyRoot, hex.EncodeToString(testonly.EmptyRootHash()))
	for n, root := range testonly.RootHashes() {
		require.Equal(t, hex.EncodeToString(root), vectorRoots[n], "size %d", n)
	}
	for level, nodes := range testonly.NodeHashes() {
		for i, node := range nodes {
			require.Equal(t, hex.EncodeToString(node), vectorNodes[level][i], "level %d node %d", level, i)
		}
	}
}

func TestEmptyTree(t *testing.T) {
	t.Parallel()
	_, root, size := headtree.NewBuilder(4).Finish()
	for name, got := range map[string][32]byte{
		"ChunkRoot":      headtree.ChunkRoot(nil),
		"RootFromChunks": headtree.RootFromChunks(nil),
		"Builder":        root,
	} {
		require.Equal(t, vectorEmptyRoot, hexOf(got), name)
	}
	require.Zero(t, size)
}

func TestHashLeafVectors(t *testing.T) {
	t.Parallel()
	// The leaf hash of the empty leaf, and of every vector leaf.
	require.Equal(t, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", hexOf(headtree.HashLeaf(nil)))
	for i, leaf := range vectorLeaves {
		got := headtree.HashLeaf(leaf)
		require.Equal(t, vectorNodes[0][i], hexOf(got), "leaf %d", i)
		require.Equal(t, rfc6962.DefaultHasher.HashLeaf(leaf), got[:], "leaf %d", i)
	}
}

func TestHashChildrenVectors(t *testing.T) {
	t.Parallel()
	for level := 1; level < len(vectorNodes); level++ {
		for i, want := range vectorNodes[level] {
			l := [32]byte(unhex(vectorNodes[level-1][2*i]))
			r := [32]byte(unhex(vectorNodes[level-1][2*i+1]))
			got := headtree.HashChildren(l, r)
			require.Equal(t, want, hexOf(got), "level %d node %d", level, i)
			require.Equal(t, rfc6962.DefaultHasher.HashChildren(l[:], r[:]), got[:])
		}
	}
}

func TestRootVectors(t *testing.T) {
	t.Parallel()
	for size := 1; size <= len(vectorLeaves); size++ {
		leaves := vectorLeafHashes(size)
		require.Equal(t, vectorRoots[size], hexOf(headtree.ChunkRoot(leaves)), "size %d", size)
		// Cut into chunks of any power of two, the chunk roots give the
		// same root.
		for _, chunkSize := range []int{1, 2, 4, 8, 16} {
			roots := chunkRootsOf(leaves, chunkSize)
			require.Equal(t, vectorRoots[size], hexOf(headtree.RootFromChunks(roots)), "size %d, chunk size %d", size, chunkSize)
		}
	}
}

func TestInclusionVectors(t *testing.T) {
	t.Parallel()
	for _, v := range vectorInclusions {
		leaves := vectorLeafHashes(int(v.size))
		root := [32]byte(unhex(vectorRoots[v.size]))
		for _, chunkSize := range []int{1, 2, 4, 8} {
			chunk, index := int(v.index)/chunkSize, int(v.index)%chunkSize
			roots := chunkRootsOf(leaves, chunkSize)
			end := min((chunk+1)*chunkSize, len(leaves))
			path, err := headtree.InclusionProof(chunkSize, roots, chunk, leaves[chunk*chunkSize:end], index)
			require.NoError(t, err)
			require.Equal(t, v.path, hexes(path), "leaf %d of %d, chunk size %d", v.index, v.size, chunkSize)
			require.NoError(t, headtree.VerifyInclusion(leaves[v.index], v.index, v.size, path, root))
		}
	}
}
