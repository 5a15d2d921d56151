package headtree_test

import (
	"crypto/sha256"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/headtree"
)

// seqHash is the hash 00 01 02 … 1f.
func seqHash() [32]byte {
	var h [32]byte
	for i := range h {
		h[i] = byte(i)
	}
	return h
}

func TestLeafData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		head headtree.Head
		want string
	}{{
		name: "head",
		head: headtree.Head{UserID: 42, Seq: 7, Hash: seqHash()},
		want: "ledgerd-head-v1\nuser_id=42\nseq=7\nhash=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
	}, {
		name: "user with no entry",
		head: headtree.Head{UserID: 1},
		want: "ledgerd-head-v1\nuser_id=1\nseq=0\nhash=0000000000000000000000000000000000000000000000000000000000000000\n",
	}, {
		name: "largest",
		head: headtree.Head{UserID: math.MaxInt64, Seq: math.MaxInt64, Hash: [32]byte{0xff, 0xab}},
		want: "ledgerd-head-v1\nuser_id=9223372036854775807\nseq=9223372036854775807\nhash=ffab000000000000000000000000000000000000000000000000000000000000\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, string(headtree.LeafData(tt.head)))
			// The documented printf format gives the same text.
			h := tt.head
			require.Equal(t, tt.want, fmt.Sprintf("ledgerd-head-v1\nuser_id=%d\nseq=%d\nhash=%x\n", h.UserID, h.Seq, h.Hash))
		})
	}
}

func TestLeafHash(t *testing.T) {
	t.Parallel()
	// Made with the shell line of the package documentation:
	//   { printf '\000'; printf 'ledgerd-head-v1\nuser_id=%d\nseq=%d\nhash=%s\n' 42 7 "$hash"; } | sha256sum
	h := headtree.Head{UserID: 42, Seq: 7, Hash: seqHash()}
	require.Equal(t, "f607630fdbcf4432f5c6676af0a3764f1977a3abb2c48cacfa8406d756b60b5e", hexOf(headtree.LeafHash(h)))

	for _, h := range append(testHeads(50, 1), headtree.Head{UserID: math.MinInt64, Seq: math.MinInt64}) {
		want := sha256.Sum256(append([]byte{0x00}, headtree.LeafData(h)...))
		require.Equal(t, want, headtree.LeafHash(h), "user %d", h.UserID)
	}
}
