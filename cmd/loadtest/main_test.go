package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTextReport checks the report a reader sees.
func TestTextReport(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"loadtest", "-url", startTrivial(t, nil), "-n", "6000", "-c", "50"}, &stdout, &stderr)
	require.NoError(t, err)
	out := stdout.String()
	for _, want := range []string{
		"scenario      hot\n", "c=50, n=6000,", "requests      6000 (",
		"200                          5000", "400:insufficient_funds       1000",
		"latency (ms)  p50 ", "client CPU    ", "✓ successes", "5000 × 200, want min(6000, 5000) = 5000",
		"✓ final_balance", "balance 0, want 10000 − 2 × 5000 = 0", "✓ no_5xx", "result  PASS\n",
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "✗")
}

// TestUsage checks that a bad command line is refused before any request.
func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-c", "0"},
		{"-n", "0"},
		{"-users", "0"},
		{"-scenario", "mixed", "-users", "1"},
		{"-duration", "-1s"},
		{"-url", "ftp://example.com"},
		{"-url", "localhost:3000"},
		{"-scenario", "nope"},
		{"-no-such-flag"},
		{"extra"},
	} {
		err := run(context.Background(), append([]string{"loadtest", "-url", "http://127.0.0.1:1"}, args...), io.Discard, io.Discard)
		require.ErrorIs(t, err, errUsage, "%v", args)
	}
}

// TestBounds checks how -n and -duration bound the two kinds of scenario.
func TestBounds(t *testing.T) {
	t.Parallel()
	o := options{N: 50, Duration: time.Second}
	require.Equal(t, bound{n: 50}, o.countBound())
	require.Equal(t, bound{d: time.Second}, o.timeBound())
	o.durationSet = true
	require.Equal(t, bound{d: time.Second}, o.countBound())
	o.nSet = true
	require.Equal(t, bound{n: 50, d: time.Second}, o.countBound())
	require.Equal(t, bound{n: 50, d: time.Second}, o.timeBound())
	o.durationSet = false
	require.Equal(t, bound{n: 50}, o.timeBound())

	require.Equal(t, []int{0, 1, 2}, sampleIndexes(3, 100))
	require.Len(t, sampleIndexes(1000, 100), 100)
	require.Len(t, sampleIndexes(1001, 100), 91)
}

// TestServeTrivial runs -serve-trivial on a free port, sends it a request
// and stops it with the context.
func TestServeTrivial(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"loadtest", "-serve-trivial", "-listen", "127.0.0.1:0"}, io.Discard, pw)
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	url := strings.Fields(strings.TrimPrefix(line, "trivial server on "))[0]
	go func() { _, _ = io.Copy(io.Discard, pr) }()

	resp, err := http.Post(url+"/api/users", "application/json", strings.NewReader(`{"balance": 10000}`))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Contains(t, string(body), `"balance":10000,`)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the trivial server did not stop")
	}
}
