package headtree_test

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/headtree"
)

func TestNewBuilderChunkSize(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 2, 4, 1024, 1 << 20} {
		require.NotPanics(t, func() { headtree.NewBuilder(size) }, "chunk size %d", size)
	}
	for _, size := range []int{0, -1, -4, 3, 6, 1000, 1023} {
		require.Panics(t, func() { headtree.NewBuilder(size) }, "chunk size %d", size)
	}
}

func TestBuilderChunks(t *testing.T) {
	t.Parallel()
	heads := testHeads(11, 0)
	tr := build(t, 4, heads)
	require.Equal(t, uint64(11), tr.size)
	require.Len(t, tr.chunks, 3)
	for i, c := range tr.chunks {
		begin, end := 4*i, min(4*i+4, len(heads))
		require.Equal(t, i, c.Index)
		require.Equal(t, end-begin, c.Size)
		require.Equal(t, heads[begin].UserID, c.FirstUserID)
		want, err := headtree.EncodeLeaves(refsOf(heads[begin:end]))
		require.NoError(t, err)
		require.Equal(t, want, c.Leaves)
		require.Equal(t, headtree.ChunkRoot(leafHashes(t, c, heads)), c.Root)
	}
	require.Equal(t, headtree.RootFromChunks(tr.chunkRoots()), tr.root)
}

func TestBuilderChunkHandedOutWhenFull(t *testing.T) {
	t.Parallel()
	b := headtree.NewBuilder(2)
	heads := testHeads(4, 0)
	for i, h := range heads {
		c, err := b.Add(h)
		require.NoError(t, err)
		if i%2 == 0 {
			require.Nil(t, c, "head %d", i)
		} else {
			require.NotNil(t, c, "head %d", i)
			require.Equal(t, i/2, c.Index)
		}
	}
	last, _, size := b.Finish()
	require.Nil(t, last, "the heads filled their last chunk")
	require.Equal(t, uint64(4), size)
}

func TestBuilderFinish(t *testing.T) {
	t.Parallel()
	b := headtree.NewBuilder(4)
	for _, h := range testHeads(3, 0) {
		_, err := b.Add(h)
		require.NoError(t, err)
	}
	last, root, size := b.Finish()
	require.NotNil(t, last)
	require.Equal(t, 3, last.Size)
	require.Equal(t, last.Root, root, "one chunk: its root is the tree's")

	again, root2, size2 := b.Finish()
	require.Nil(t, again)
	require.Equal(t, root, root2)
	require.Equal(t, size, size2)

	_, err := b.Add(headtree.Head{UserID: 1000})
	require.ErrorIs(t, err, headtree.ErrFinished)
}

func TestBuilderRejects(t *testing.T) {
	t.Parallel()
	hash := sha256.Sum256([]byte("entry"))
	tests := []struct {
		name string
		head headtree.Head
		err  error
	}{
		{"user id 0", headtree.Head{UserID: 0}, headtree.ErrInvalidHead},
		{"negative user id", headtree.Head{UserID: -20, Seq: 1, Hash: hash}, headtree.ErrInvalidHead},
		{"negative seq", headtree.Head{UserID: 20, Seq: -1, Hash: hash}, headtree.ErrInvalidHead},
		{"seq 0 with a hash", headtree.Head{UserID: 20, Hash: hash}, headtree.ErrInvalidHead},
		{"seq with the zero hash", headtree.Head{UserID: 20, Seq: 3}, headtree.ErrInvalidHead},
		{"repeated user id", headtree.Head{UserID: 10, Seq: 2, Hash: hash}, headtree.ErrOutOfOrder},
		{"decreasing user id", headtree.Head{UserID: 9}, headtree.ErrOutOfOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := headtree.NewBuilder(2)
			_, err := b.Add(headtree.Head{UserID: 10, Seq: 1, Hash: hash})
			require.NoError(t, err)
			_, err = b.Add(tt.head)
			require.ErrorIs(t, err, tt.err)

			// The refused head left no trace: the tree is the one of the
			// heads that were accepted.
			next := headtree.Head{UserID: 30}
			c, err := b.Add(next)
			require.NoError(t, err)
			require.NotNil(t, c)
			require.Equal(t, 2, c.Size)
			_, root, size := b.Finish()
			require.Equal(t, uint64(2), size)
			require.Equal(t, build(t, 2, []headtree.Head{{UserID: 10, Seq: 1, Hash: hash}, next}).root, root)
		})
	}
}

// millionHead is head i of a tree of a million users, made without keeping
// any list.
func millionHead(i int) headtree.Head {
	h := headtree.Head{UserID: int64(2*i + 1), Seq: int64(i%1000 + 1)}
	binary.LittleEndian.PutUint64(h.Hash[:], uint64(i)+1)
	return h
}

// TestBuilderMemoryBounded builds a million leaves and checks the live heap
// stays flat. It is not parallel: it reads the process's heap, which other
// tests would change.
func TestBuilderMemoryBounded(t *testing.T) {
	const n = 1_000_000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()

	b := headtree.NewBuilder(headtree.ChunkSize)
	roots := make([][32]byte, 0, n/headtree.ChunkSize+1) // what a caller keeps
	var peak uint64
	for i := range n {
		c, err := b.Add(millionHead(i))
		require.NoError(t, err)
		if c != nil {
			roots = append(roots, c.Root)
			if c.Index%128 == 0 {
				peak = max(peak, heap())
			}
		}
	}
	last, root, size := b.Finish()
	require.NotNil(t, last)
	roots = append(roots, last.Root)
	peak = max(peak, heap())
	runtime.KeepAlive(b)

	require.Equal(t, uint64(n), size)
	require.Len(t, roots, (n+headtree.ChunkSize-1)/headtree.ChunkSize)
	require.Equal(t, headtree.RootFromChunks(roots), root)
	// A million Heads alone would take 48 MB; the live heap must not grow
	// with them.
	growth := int64(peak) - int64(base)
	t.Logf("live heap growth over %d leaves: %d bytes", n, growth)
	require.Less(t, growth, int64(8<<20))
}

func BenchmarkBuilder(b *testing.B) {
	const n = 1_000_000
	b.ReportAllocs()
	for b.Loop() {
		bl := headtree.NewBuilder(headtree.ChunkSize)
		for i := range n {
			if _, err := bl.Add(millionHead(i)); err != nil {
				b.Fatal(err)
			}
		}
		bl.Finish()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/leaf")
}
