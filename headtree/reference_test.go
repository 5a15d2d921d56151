package headtree_test

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/headtree"
)

// The reference below implements RFC 6962 §2.1 word for word, on leaf data,
// with its own SHA-256 calls: it shares no code with the package (no chunks,
// no compact ranges, no library), so that agreeing with it means something.

// refMTH is MTH(D[n]) of RFC 6962 §2.1.
func refMTH(d [][]byte) [32]byte {
	switch n := len(d); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0x00}, d[0]...))
	default:
		k := refSplit(n)
		l, r := refMTH(d[:k]), refMTH(d[k:])
		return sha256.Sum256(append(append([]byte{0x01}, l[:]...), r[:]...))
	}
}

// refPath is PATH(m, D[n]) of RFC 6962 §2.1.1: the sibling hashes from the
// leaf up.
func refPath(m int, d [][]byte) [][32]byte {
	n := len(d)
	if n == 1 {
		return [][32]byte{}
	}
	k := refSplit(n)
	if m < k {
		return append(refPath(m, d[:k]), refMTH(d[k:]))
	}
	return append(refPath(m-k, d[k:]), refMTH(d[:k]))
}

// refSplit is the largest power of two smaller than n, for n > 1.
func refSplit(n int) int {
	k := 1
	for k*2 < n {
		k *= 2
	}
	return k
}

// testHeads returns n valid heads with gaps in the user ids, and every few
// users one with no entry. The same n gives the same heads; salt changes
// the hashes.
func testHeads(n int, salt byte) []headtree.Head {
	heads := make([]headtree.Head, n)
	id := int64(0)
	for i := range heads {
		id += int64(1 + i%3*7) // gaps of 1, 8 and 15
		h := headtree.Head{UserID: id}
		if i%5 != 3 { // every fifth user has no entry
			h.Seq = int64(1 + i*37%1000)
			h.Hash = sha256.Sum256(binary.AppendVarint([]byte{salt}, id))
		}
		heads[i] = h
	}
	return heads
}

// built is a tree made by a Builder, with the chunks it handed out.
type built struct {
	chunkSize int
	chunks    []*headtree.Chunk
	root      [32]byte
	size      uint64
}

// build streams heads through a Builder of the given chunk size.
func build(tb testing.TB, chunkSize int, heads []headtree.Head) built {
	tb.Helper()
	b := headtree.NewBuilder(chunkSize)
	t := built{chunkSize: chunkSize}
	for _, h := range heads {
		c, err := b.Add(h)
		require.NoError(tb, err)
		if c != nil {
			t.chunks = append(t.chunks, c)
		}
	}
	last, root, size := b.Finish()
	if last != nil {
		t.chunks = append(t.chunks, last)
	}
	t.root, t.size = root, size
	return t
}

// chunkRoots returns the roots of t's chunks, as the database holds them.
func (t built) chunkRoots() [][32]byte {
	roots := make([][32]byte, len(t.chunks))
	for i, c := range t.chunks {
		roots[i] = c.Root
	}
	return roots
}

// leafHashes does what a caller does to prove a head of chunk c: decode the
// chunk's leaves, look each (user id, seq) up (in heads instead of the
// entries table) and hash it.
func leafHashes(tb testing.TB, c *headtree.Chunk, heads []headtree.Head) [][32]byte {
	tb.Helper()
	byID := make(map[int64]headtree.Head, len(heads))
	for _, h := range heads {
		byID[h.UserID] = h
	}
	refs, err := headtree.DecodeLeaves(c.Leaves)
	require.NoError(tb, err)
	require.Len(tb, refs, c.Size)
	out := make([][32]byte, len(refs))
	for i, r := range refs {
		h, ok := byID[r.UserID]
		require.True(tb, ok, "user %d", r.UserID)
		require.Equal(tb, h.Seq, r.Seq, "user %d", r.UserID)
		out[i] = headtree.LeafHash(h)
	}
	return out
}

// leafData returns the leaf data of heads, for the reference.
func leafData(heads []headtree.Head) [][]byte {
	d := make([][]byte, len(heads))
	for i, h := range heads {
		d[i] = headtree.LeafData(h)
	}
	return d
}

func TestReferenceMatchesVectors(t *testing.T) {
	t.Parallel()
	// The reference is only worth what it agrees with: the RFC 6962 roots.
	for size := 0; size <= len(vectorLeaves); size++ {
		require.Equal(t, vectorRoots[size], hexOf(refMTH(vectorLeaves[:size])), "size %d", size)
	}
	for _, v := range vectorInclusions {
		got := refPath(int(v.index), vectorLeaves[:v.size])
		require.Equal(t, v.path, hexes(got), "leaf %d of %d", v.index, v.size)
	}
}
