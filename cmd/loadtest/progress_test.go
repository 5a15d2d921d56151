package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestFitWidth checks the cut of a line to the terminal's width.
func TestFitWidth(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in    string
		width int
		want  string
	}{
		{"abcdef", 10, "abcdef"},
		{"abcdef", 6, "abcdef"},
		{"abcdef", 5, "abcd…"},
		{"abcdef", 1, "…"},
		{"abcdef", 0, ""},
		{"abcdef", -3, ""},
		{"ääääää", 4, "äää…"},
	} {
		require.Equal(t, tt.want, fitWidth(tt.in, tt.width), "%q in %d", tt.in, tt.width)
	}
}

// TestProgressLine checks that the progress line never outgrows the width
// it is given, keeps the figures and drops the bar first on a narrow
// terminal.
func TestProgressLine(t *testing.T) {
	t.Parallel()
	var m meter
	m.done.Store(123_456)
	m.refused.Store(7)
	m.failed.Store(3)
	b := bound{n: 1_000_000, d: 10 * time.Second}
	for width := range 200 {
		line := progressLine(&m, b, 5000, 4*time.Second, width)
		require.LessOrEqual(t, utf8.RuneCountInString(line), width, "width %d: %q", width, line)
	}
	wide := progressLine(&m, b, 5000, 4*time.Second, 200)
	require.True(t, strings.HasPrefix(wide, "["+strings.Repeat("#", 12)+strings.Repeat(".", 18)+"] "), wide)
	require.Contains(t, wide, "123456/1000000 4.0s/10s  40%  30864 req/s of 5000/s  refused 7  errors 3")
	narrow := progressLine(&m, b, 0, 4*time.Second, 66)
	require.False(t, strings.HasPrefix(narrow, "["), "no room for a bar: %q", narrow)
	require.Contains(t, narrow, "30864 req/s")
	mid := progressLine(&m, bound{n: 100}, 0, time.Second, 60)
	require.True(t, strings.HasPrefix(mid, "["), mid)
	require.Len(t, mid, 60)
}

// TestDrawProgress checks what reaches a terminal: each redraw returns to
// the line's start, clears it and writes at most width−1 columns.
func TestDrawProgress(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e := &env{stderr: &out, widthFunc: func() int { return 20 }}
	e.drawProgress(strings.Repeat("x", 50))
	require.Equal(t, "\r\033[K"+strings.Repeat("x", 18)+"…", out.String())
	out.Reset()
	e.clearProgress()
	require.Equal(t, "\r\033[K", out.String())

	out.Reset()
	off := &env{stderr: &out}
	off.drawProgress("anything")
	off.clearProgress()
	require.Empty(t, out.String(), "nothing when stderr is not a terminal")
	require.Nil(t, terminalWidthFunc(&out))
}
