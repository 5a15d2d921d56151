package headtree_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/ledgerd/ledgerd/headtree"
)

func Example() {
	// Build: stream every user's head in user id order; store each chunk.
	heads := []headtree.Head{
		{UserID: 3, Seq: 2, Hash: sha256.Sum256([]byte("entry 3/2"))},
		{UserID: 5}, // no entry yet
		{UserID: 8, Seq: 1, Hash: sha256.Sum256([]byte("entry 8/1"))},
	}
	const chunkSize = 2 // headtree.ChunkSize in production
	b := headtree.NewBuilder(chunkSize)
	var stored []*headtree.Chunk
	for _, h := range heads {
		c, err := b.Add(h)
		if err != nil {
			panic(err)
		}
		if c != nil {
			stored = append(stored, c)
		}
	}
	last, root, size := b.Finish()
	if last != nil {
		stored = append(stored, last)
	}

	// Prove user 8: find its chunk and its place there, read the chunk's
	// heads back (from the entries table) and hash them.
	roots := make([][32]byte, len(stored))
	for i, c := range stored {
		roots[i] = c.Root
	}
	c := stored[1] // the greatest FirstUserID ≤ 8
	refs, err := headtree.DecodeLeaves(c.Leaves)
	if err != nil {
		panic(err)
	}
	leafHashes := make([][32]byte, len(refs))
	for i, r := range refs {
		leafHashes[i] = headtree.LeafHash(heads[c.Index*chunkSize+i]) // the head of r.UserID at r.Seq
		fmt.Printf("chunk %d leaf %d: user %d seq %d\n", c.Index, i, r.UserID, r.Seq)
	}
	path, err := headtree.InclusionProof(chunkSize, roots, c.Index, leafHashes, 0)
	if err != nil {
		panic(err)
	}

	// Anyone holding the checkpoint's size and root checks it.
	index := uint64(c.Index*chunkSize + 0)
	err = headtree.VerifyInclusion(headtree.LeafHash(heads[2]), index, size, path, root)
	fmt.Println("leaf", index, "of", size, "proved with", len(path), "hashes:", err == nil)
	// Output:
	// chunk 1 leaf 0: user 8 seq 1
	// leaf 2 of 3 proved with 1 hashes: true
}
