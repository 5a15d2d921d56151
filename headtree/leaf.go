package headtree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Head is the head of one user's hash chain at the checkpoint's instant: the
// seq and hash of the user's last entry, or seq 0 and 32 zero bytes for a
// user with no entry.
type Head struct {
	UserID int64
	Seq    int64
	Hash   [32]byte
}

// leafDataMax bounds len(LeafData(h)): the fixed text (36 bytes), two int64s
// of at most 20 characters each (a minus sign and 19 digits), and 64 hex
// digits.
const leafDataMax = 36 + 20 + 20 + 64

// LeafData returns the leaf input of h in the checkpoint tree, the text
//
//	"ledgerd-head-v1\nuser_id=<decimal>\nseq=<decimal>\nhash=<64 lowercase hex>\n"
//
// which an auditor can rebuild with printf (see the package documentation).
// It encodes h as it is; Builder rejects invalid heads before they get here.
func LeafData(h Head) []byte {
	return appendLeafData(make([]byte, 0, leafDataMax), h)
}

func appendLeafData(dst []byte, h Head) []byte {
	dst = append(dst, "ledgerd-head-v1\nuser_id="...)
	dst = strconv.AppendInt(dst, h.UserID, 10)
	dst = append(dst, "\nseq="...)
	dst = strconv.AppendInt(dst, h.Seq, 10)
	dst = append(dst, "\nhash="...)
	dst = hex.AppendEncode(dst, h.Hash[:])
	return append(dst, '\n')
}

// LeafHash returns the RFC 6962 leaf hash of h: SHA-256(0x00 || LeafData(h)).
func LeafHash(h Head) [32]byte {
	var buf [leafDataMax]byte
	return hashLeaf(appendLeafData(buf[:0], h))
}

// hashLeaf is the RFC 6962 leaf hash SHA-256(0x00 || data) of raw leaf data.
// The tests hold it to the RFC 6962 vectors.
func hashLeaf(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{rfc6962.RFC6962LeafHashPrefix})
	h.Write(data)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// hashChildren is the RFC 6962 interior node hash SHA-256(0x01 || l || r).
func hashChildren(l, r [32]byte) [32]byte {
	var buf [1 + 2*32]byte
	buf[0] = rfc6962.RFC6962NodeHashPrefix
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// zeroHash is the hash of a user with no entry.
var zeroHash [32]byte

// checkHead reports whether h may follow a head with user id prev (0 before
// the first head) in a tree.
func checkHead(prev int64, h Head) error {
	if err := checkRef(prev, HeadRef{UserID: h.UserID, Seq: h.Seq}); err != nil {
		return err
	}
	switch {
	case h.Seq == 0 && h.Hash != zeroHash:
		return fmt.Errorf("%w: user %d: seq 0 with a non-zero hash", ErrInvalidHead, h.UserID)
	case h.Seq > 0 && h.Hash == zeroHash:
		return fmt.Errorf("%w: user %d: seq %d with the zero hash", ErrInvalidHead, h.UserID, h.Seq)
	}
	return nil
}

// checkRef reports whether r may follow a leaf with user id prev (0 before
// the first leaf).
func checkRef(prev int64, r HeadRef) error {
	switch {
	case r.UserID <= 0:
		return fmt.Errorf("%w: user id %d ≤ 0", ErrInvalidHead, r.UserID)
	case r.Seq < 0:
		return fmt.Errorf("%w: user %d: seq %d < 0", ErrInvalidHead, r.UserID, r.Seq)
	case r.UserID <= prev:
		return fmt.Errorf("%w: user %d after user %d", ErrOutOfOrder, r.UserID, prev)
	}
	return nil
}
