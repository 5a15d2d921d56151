package headtree_test

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/headtree"
)

func refsOf(heads []headtree.Head) []headtree.HeadRef {
	refs := make([]headtree.HeadRef, len(heads))
	for i, h := range heads {
		refs[i] = headtree.HeadRef{UserID: h.UserID, Seq: h.Seq}
	}
	return refs
}

// uv concatenates uvarints.
func uv(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func TestEncodeLeaves(t *testing.T) {
	t.Parallel()
	b, err := headtree.EncodeLeaves([]headtree.HeadRef{{UserID: 5, Seq: 0}, {UserID: 6, Seq: 300}, {UserID: 1000, Seq: 1}})
	require.NoError(t, err)
	// 5, 0; +1, 300 (two bytes); +994 (two bytes), 1.
	require.Equal(t, []byte{5, 0, 1, 0xac, 0x02, 0xe2, 0x07, 1}, b)
}

func TestLeavesRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		refs []headtree.HeadRef
	}{
		{name: "empty", refs: nil},
		{name: "one", refs: []headtree.HeadRef{{UserID: 1, Seq: 0}}},
		{name: "many", refs: refsOf(testHeads(1024, 0))},
		{name: "extremes", refs: []headtree.HeadRef{
			{UserID: 1, Seq: math.MaxInt64},
			{UserID: math.MaxInt64 - 1, Seq: 0},
			{UserID: math.MaxInt64, Seq: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := headtree.EncodeLeaves(tt.refs)
			require.NoError(t, err)
			got, err := headtree.DecodeLeaves(b)
			require.NoError(t, err)
			require.Len(t, got, len(tt.refs))
			if len(tt.refs) > 0 {
				require.Equal(t, tt.refs, got)
			}
		})
	}
}

func TestEncodeLeavesRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		refs []headtree.HeadRef
		err  error
	}{
		{"user id 0", []headtree.HeadRef{{UserID: 0}}, headtree.ErrInvalidHead},
		{"negative user id", []headtree.HeadRef{{UserID: -3}}, headtree.ErrInvalidHead},
		{"negative seq", []headtree.HeadRef{{UserID: 1, Seq: -1}}, headtree.ErrInvalidHead},
		{"repeated user id", []headtree.HeadRef{{UserID: 4}, {UserID: 4}}, headtree.ErrOutOfOrder},
		{"decreasing user id", []headtree.HeadRef{{UserID: 4}, {UserID: 3}}, headtree.ErrOutOfOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := headtree.EncodeLeaves(tt.refs)
			require.ErrorIs(t, err, tt.err)
		})
	}
}

func TestDecodeLeavesRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		blob []byte
		msg  string
	}{
		{"ends inside user id", []byte{0x80}, "leaf 0 at byte 0: user id: blob ends inside a uvarint"},
		{"no seq", uv(5), "leaf 0 at byte 1: seq: blob ends inside"},
		{"ends inside seq", append(uv(5), 0x80), "leaf 0 at byte 1: seq: blob ends inside"},
		{"trailing user id without seq", uv(5, 0, 1), "leaf 1 at byte 3: seq: blob ends inside"},
		{"repeated user id", uv(5, 0, 0, 1), "leaf 1 at byte 2: user id not above the previous 5"},
		{"user id 0", uv(0, 1), "leaf 0 at byte 0: user id not above the previous 0"},
		{"user id past int64", uv(math.MaxInt64, 0, 1, 0), "leaf 1 at byte 10: user id 9223372036854775807 + 1 overflows int64"},
		{"first user id past int64", uv(math.MaxInt64+1, 0), "user id 0 + 9223372036854775808 overflows int64"},
		{"seq past int64", uv(1, math.MaxInt64+1), "leaf 0 at byte 1: seq 9223372036854775808 overflows int64"},
		{"uvarint past 64 bits", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0}, "user id: uvarint past 64 bits"},
		{"overlong user id", []byte{0x85, 0x00, 0x00}, "leaf 0 at byte 0: user id: uvarint longer than needed"},
		{"overlong seq", []byte{0x05, 0x80, 0x00}, "leaf 0 at byte 1: seq: uvarint longer than needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			refs, err := headtree.DecodeLeaves(tt.blob)
			require.ErrorIs(t, err, headtree.ErrMalformedLeaves)
			require.ErrorContains(t, err, tt.msg)
			require.Nil(t, refs)
		})
	}
}

// FuzzDecodeLeaves holds that decoding never panics, and that every blob it
// accepts is the one encoding of what it decodes to: the format has no
// second spelling.
func FuzzDecodeLeaves(f *testing.F) {
	good, err := headtree.EncodeLeaves(refsOf(testHeads(20, 0)))
	require.NoError(f, err)
	for _, seed := range [][]byte{nil, good, uv(5, 0, 0, 1), {0x85, 0x00, 0x00}, uv(math.MaxInt64, 0, 1, 0)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, blob []byte) {
		refs, err := headtree.DecodeLeaves(blob)
		if err != nil {
			require.ErrorIs(t, err, headtree.ErrMalformedLeaves)
			return
		}
		again, err := headtree.EncodeLeaves(refs)
		require.NoError(t, err)
		require.Len(t, again, len(blob))
		if len(blob) > 0 {
			require.Equal(t, blob, again)
		}
	})
}
