package headtree

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// HeadRef names one leaf of a chunk without its hash: the hash is the user's
// entry at Seq, read from the entries table when a proof is needed (or 32
// zero bytes when Seq is 0).
type HeadRef struct {
	UserID int64
	Seq    int64
}

// EncodeLeaves returns the compact encoding of a chunk's leaves, the Leaves
// blob of a Chunk: for each leaf in order, the user id's increase over the
// previous leaf's (over 0 for the first leaf, so the first user id itself)
// as a uvarint, then the seq as a uvarint. An empty list encodes as an empty
// blob.
//
// It returns ErrInvalidHead for a user id ≤ 0 or a seq < 0, and
// ErrOutOfOrder if user ids are not strictly increasing.
func EncodeLeaves(refs []HeadRef) ([]byte, error) {
	var (
		b    []byte
		prev int64
	)
	for i, r := range refs {
		if err := checkRef(prev, r); err != nil {
			return nil, fmt.Errorf("encode leaf %d: %w", i, err)
		}
		b = appendRef(b, prev, r)
		prev = r.UserID
	}
	return b, nil
}

// appendRef appends r's encoding to b; r has passed checkRef(prev, r).
func appendRef(b []byte, prev int64, r HeadRef) []byte {
	b = binary.AppendUvarint(b, uint64(r.UserID-prev))
	return binary.AppendUvarint(b, uint64(r.Seq))
}

// DecodeLeaves decodes a blob made by EncodeLeaves (or by Builder). It
// accepts exactly the blobs EncodeLeaves can produce: every error wraps
// ErrMalformedLeaves and names the leaf and byte offset, for a blob that
// ends inside a leaf, a uvarint longer than needed or past 64 bits, an
// increase of 0 (user ids not strictly increasing), or a user id or seq past
// math.MaxInt64. An empty blob decodes to no leaves.
func DecodeLeaves(b []byte) ([]HeadRef, error) {
	var (
		refs []HeadRef
		prev int64
	)
	for off := 0; off < len(b); {
		i := len(refs)
		delta, n, err := readUvarint(b[off:])
		if err != nil {
			return nil, fmt.Errorf("%w: leaf %d at byte %d: user id: %w", ErrMalformedLeaves, i, off, err)
		}
		switch {
		case delta == 0:
			return nil, fmt.Errorf("%w: leaf %d at byte %d: user id not above the previous %d", ErrMalformedLeaves, i, off, prev)
		case delta > uint64(math.MaxInt64-prev):
			return nil, fmt.Errorf("%w: leaf %d at byte %d: user id %d + %d overflows int64", ErrMalformedLeaves, i, off, prev, delta)
		}
		off += n
		seq, n, err := readUvarint(b[off:])
		if err != nil {
			return nil, fmt.Errorf("%w: leaf %d at byte %d: seq: %w", ErrMalformedLeaves, i, off, err)
		}
		if seq > math.MaxInt64 {
			return nil, fmt.Errorf("%w: leaf %d at byte %d: seq %d overflows int64", ErrMalformedLeaves, i, off, seq)
		}
		off += n
		prev += int64(delta)
		refs = append(refs, HeadRef{UserID: prev, Seq: int64(seq)})
	}
	return refs, nil
}

// readUvarint reads one canonical uvarint from the start of b.
func readUvarint(b []byte) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	switch {
	case n == 0:
		return 0, 0, errTruncated
	case n < 0:
		return 0, 0, errUvarintOverflow
	case n > 1 && b[n-1] == 0:
		// A last byte of 0 adds nothing: the same value has a shorter form.
		return 0, 0, errUvarintOverlong
	}
	return v, n, nil
}

// Details of ErrMalformedLeaves, wrapped with the leaf and the offset.
var (
	errTruncated       = errors.New("blob ends inside a uvarint or leaf")
	errUvarintOverflow = errors.New("uvarint past 64 bits")
	errUvarintOverlong = errors.New("uvarint longer than needed")
)
