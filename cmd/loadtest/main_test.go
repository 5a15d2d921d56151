package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
		"scenario       hot\n", "c=50, n=6000,", "requests       6000 (", "loop           closed ",
		"200                          5000", "400:insufficient_funds       1000",
		"latency (ms)   p50 ", "client CPU     ", "✓ successes", "5000 × 200, want min(6000, 5000) = 5000",
		"relay backlog  at most 0 pending, the oldest 0.000 s old (",
		"✓ final_balance", "balance 0, want 10000 − 2 × 5000 = 0", "✓ no_5xx", "result  PASS\n",
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "✗")

	stdout.Reset()
	err = run(context.Background(), []string{"loadtest", "-url", startTrivial(t, nil), "-scenario", "spread", "-users", "3",
		"-rate", "500/s", "-duration", "1100ms", "-c", "10"}, &stdout, &stderr)
	require.NoError(t, err)
	out = stdout.String()
	require.Contains(t, out, "loop           open, 500 req/s due (latency from each due time); sent late by p50 ")
	require.Regexp(t, `per second     req/s min \d+, median \d+, max \d+ \(whole seconds: \d\)\n`, out)
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
		{"-rate", "0"},
		{"-rate", "fast"},
		{"-rate", "100/m"},
		{"-scenario", "hot-sustained", "-rate", "-5/s"},
		{"-scenario", "hot", "-rate", "100/s"},
		{"-scenario", "relay", "-rate", "100/s"},
		{"-no-such-flag"},
		{"extra"},
	} {
		err := run(context.Background(), append([]string{"loadtest", "-url", "http://127.0.0.1:1"}, args...), io.Discard, io.Discard)
		require.ErrorIs(t, err, errUsage, "%v", args)
	}
}

// TestOptions checks what the new flags set.
func TestOptions(t *testing.T) {
	t.Parallel()
	o, err := parseOptions([]string{"loadtest", "-scenario", "spread", "-rate", "2500/s", "-hgrm", "a.hgrm", "-timeline", "t.csv"}, io.Discard)
	require.NoError(t, err)
	require.InDelta(t, 2500, float64(o.Rate), 0)
	require.Equal(t, "a.hgrm", o.HgrmFile)
	require.Equal(t, "t.csv", o.TimelineFile)

	o, err = parseOptions([]string{"loadtest", "-scenario", "mixed", "-rate", "75"}, io.Discard)
	require.NoError(t, err)
	require.InDelta(t, 75, float64(o.Rate), 0)

	o, err = parseOptions([]string{"loadtest"}, io.Discard)
	require.NoError(t, err)
	require.Zero(t, o.Rate, "closed loop by default")
	require.Empty(t, o.HgrmFile)
}

// TestHelp checks that -h exits 0 and lists, after the flags, every
// scenario with its description, sorted, one a line.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(context.Background(), []string{"loadtest", arg}, &stdout, &stderr), arg)
		help := stderr.String()
		require.Empty(t, stdout.String())
		require.Contains(t, help, "-rate N")
		require.Contains(t, help, "-hgrm FILE")
		flags, list, ok := strings.Cut(help, "\nScenarios:\n")
		require.True(t, ok, help)
		require.Contains(t, flags, "-scenario string")
		lines := strings.Split(strings.TrimRight(list, "\n"), "\n")
		require.Len(t, lines, len(scenarios))
		var names []string
		for _, line := range lines {
			f := strings.Fields(line)
			require.NotEmpty(t, f)
			sc, ok := scenarios[f[0]]
			require.True(t, ok, "line %q", line)
			require.Equal(t, "  "+f[0], line[:len(f[0])+2])
			require.True(t, strings.HasSuffix(line, "  "+sc.about), "line %q", line)
			names = append(names, f[0])
		}
		require.True(t, slices.IsSorted(names), "%v", names)
	}
}

// TestFiles checks -hgrm and -timeline: the files hold the run's
// distribution and its seconds, agreeing with the JSON report.
func TestFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hgrm, csv := filepath.Join(dir, "run.hgrm"), filepath.Join(dir, "run.csv")
	rep, err := runJSON(t, startTrivial(t, nil), "-scenario", "spread", "-users", "3", "-n", "400", "-c", "8", "-hgrm", hgrm, "-timeline", csv)
	require.NoError(t, err)
	requireAllHold(t, rep)

	b, err := os.ReadFile(hgrm)
	require.NoError(t, err)
	_, lines, summary := parseHgrm(t, b)
	last := lines[len(lines)-1]
	require.Equal(t, rep.Requests, last.count)
	require.InEpsilon(t, rep.LatencyMS["max"], last.valueMS, 0.002)
	require.Contains(t, summary[1], "Total count    =          400")

	b, err = os.ReadFile(csv)
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Equal(t, "t,seconds,requests,rps,p99_ms", rows[0])
	require.Len(t, rows, len(rep.Timeline)+1)
	var n int64
	for _, row := range rows[1:] {
		f := strings.Split(row, ",")
		require.Len(t, f, 5)
		v, err := strconv.ParseInt(f[2], 10, 64)
		require.NoError(t, err)
		n += v
	}
	require.Equal(t, int64(400), n)

	_, err = runJSON(t, startTrivial(t, nil), "-scenario", "hot", "-n", "10", "-hgrm", filepath.Join(dir, "no", "such", "dir.hgrm"))
	require.ErrorContains(t, err, "write -hgrm")
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
