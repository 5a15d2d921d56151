// Package headtree owns the checkpoint tree: the RFC 6962 Merkle tree over
// the head of every user's hash chain at one instant, its cutting into the
// chunks that are stored, and inclusion proofs for one user's head. It reads
// and writes no database: a caller streams heads into a Builder and stores the
// chunks it hands out; later the caller gives back one chunk's leaf hashes
// and all chunk roots to get a proof (InclusionProof), which anyone can check
// (VerifyInclusion) against the checkpoint's root and size.
//
// # Leaves
//
// The tree has one leaf per user, ordered by user id ascending: the ids are
// strictly increasing, and Builder refuses anything else. A leaf is a Head:
// user id > 0, and the seq and hash of the user's last entry, or seq 0 and 32
// zero bytes for a user with no entry (Builder refuses seq 0 with another
// hash, and seq > 0 with the zero hash). The leaf data (LeafData) is the text
//
//	ledgerd-head-v1\nuser_id=<decimal>\nseq=<decimal>\nhash=<64 lowercase hex>\n
//
// where "\n" is one newline byte and the decimals have no sign and no leading
// zero, and the leaf hash (LeafHash) is SHA-256(0x00 || leaf data). An
// auditor rebuilds the leaf hash of user 42 at seq 7 with
//
//	{ printf '\000'; printf 'ledgerd-head-v1\nuser_id=%d\nseq=%d\nhash=%s\n' 42 7 "$hash"; } | sha256sum
//
// # Tree
//
// Hashing follows RFC 6962 §2.1 (RFC 9162 §2.1.1) with SHA-256: for leaves
// D[n] = d0 … d(n-1), MTH({}) = SHA-256() (the empty root), MTH({d}) =
// SHA-256(0x00 || d), and for n > 1, MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k])
// || MTH(D[k:n])) where k is the largest power of two smaller than n. Audit
// paths are RFC 6962's PATH(m, D[n]), listed bottom-up.
//
// # Chunks
//
// The tree is stored cut into chunks of C consecutive leaves, C a power of
// two (ChunkSize, 1024, in production): chunk i holds leaves [i·C,
// min((i+1)·C, n)), so every chunk is full but the last, which has 1 to C
// leaves. A stored chunk (Chunk) keeps
//   - its first user id, to find a user's chunk: the one with the greatest
//     first user id ≤ the user id;
//   - its leaves' (user id, seq) pairs, not their hashes, as a compact blob
//     (EncodeLeaves): per leaf, the user id's increase over the previous
//     leaf's (over 0 for the first) as a uvarint, then the seq as a uvarint;
//   - its root, MTH of its leaves (ChunkRoot).
//
// A proof needs the chunk's leaf hashes: the caller decodes the blob, reads
// the hash of each (user id, seq) from the entries table (32 zero bytes for
// seq 0), and makes the leaf hashes with LeafHash. InclusionProof checks that
// they give the stored chunk root before it builds the path.
//
// # Why chunks compose into the RFC 6962 tree
//
// Let R[0..m) be the chunk roots, m = ⌈n/C⌉, and MTH' the RFC 6962 tree over
// R whose leaves are already hashed: MTH'(R[1]) = R[0], and larger trees split
// as MTH does and combine with 0x01 node hashing. Claim: MTH(D[n]) =
// MTH'(R[m]). By induction on n. If n ≤ C, then m = 1 and both sides are
// R[0]. If n > C, let k = 2^j be the largest power of two smaller than n.
// C is a power of two smaller than n, so C ≤ k, and k is a multiple of C:
// leaf k starts chunk k/C. And k/C is the largest power of two smaller than
// m: 2^j < n gives k/C < n/C ≤ m, and n ≤ 2^(j+1) gives m = ⌈n/C⌉ ≤
// 2^(j+1)/C, an integer. So both trees split between chunks k/C − 1 and
// k/C: the left halves are D[0:k], chunks [0, k/C), and the right halves
// are D[k:n], chunks [k/C, m), again full chunks but the last; the claim
// holds for both halves by induction, hence for the whole.
//
// The audit path of leaf x follows the same recursion: while the subtree
// holds more than C leaves, PATH(x, D[n]) descends the same splits as the
// path of chunk x/C over the chunk roots and appends the same sibling hashes
// (by the claim, the MTH of a run of whole chunks is the MTH' of their
// roots). Once the subtree holds at most C leaves it is made of whole chunks
// and holds chunk x/C, so it is exactly that chunk, and the rest is
// PATH(x mod C, chunk's leaves). PATH appends on the way back up, so the
// audit path is the path inside the chunk followed by the path of the chunk
// over the chunk roots. The global index of leaf j of chunk i is i·C + j.
// The tests check all this against a direct PATH(m, D[n]) for every leaf of
// trees of 1 to 33 leaves, with chunk sizes 1, 2, 4, 8 and 1024.
//
// # Memory
//
// Builder keeps one chunk's encoded leaves and O(log n) hashes, never the
// tree: a million users are built in well under a megabyte of live heap.
//
// # Use of github.com/transparency-dev/merkle
//
//   - rfc6962: the hash prefixes, the empty root, and the hasher that
//     VerifyInclusion checks with;
//   - compact: ranges that give a root from a stream of hashes in O(log n)
//     memory, for Builder, ChunkRoot and RootFromChunks;
//   - proof: Inclusion names the subtrees an audit path needs and folds the
//     one node that is not a perfect subtree, and VerifyInclusion checks a
//     path (VerifyInclusion wraps it).
//
// Leaf and node hashes are computed here with crypto/sha256 into [32]byte
// arrays, which saves the library hasher's allocations; the tests hold them
// to rfc6962.DefaultHasher and, with the whole tree, to the RFC 6962 test
// vectors of the library's testonly package.
package headtree
