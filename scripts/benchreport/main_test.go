package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/require"
)

// writeHgrm writes dir/name.hgrm as the load tool does: microseconds
// printed as milliseconds, for latencies of 1..n ms.
func writeHgrm(tb testing.TB, dir, name string, n int) {
	tb.Helper()
	h := hdrhistogram.New(1, 3_600_000_000, 3)
	for i := 1; i <= n; i++ {
		require.NoError(tb, h.RecordValue(int64(i)*1000))
	}
	var b bytes.Buffer
	_, err := h.PercentilesPrint(&b, 5, 1000)
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(filepath.Join(dir, name+".hgrm"), b.Bytes(), 0o600))
}

// writeFile writes dir/name.
func writeFile(tb testing.TB, dir, name, content string) {
	tb.Helper()
	require.NoError(tb, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
}

// TestReadHgrm reads a .hgrm of the HdrHistogram library: one point per
// percentile line, x = 1/(1−p), without the last line (p = 1).
func TestReadHgrm(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeHgrm(t, dir, "run", 1000)
	xys, err := readHgrm(filepath.Join(dir, "run.hgrm"))
	require.NoError(t, err)
	require.Greater(t, len(xys), 20)
	require.InDelta(t, 1.0, xys[0].X, 1e-9)
	require.InDelta(t, 1.0, xys[0].Y, 0.01, "the smallest value, 1 ms")
	for i := 1; i < len(xys); i++ {
		require.Greater(t, xys[i].X, xys[i-1].X)
		require.GreaterOrEqual(t, xys[i].Y, xys[i-1].Y)
	}
	for _, p := range xys {
		if p.X == 2 {
			require.InEpsilon(t, 500, p.Y, 0.002, "the median")
		}
	}

	writeFile(t, dir, "bad.hgrm", "Value Percentile TotalCount 1/(1-Percentile)\n\n1.0 x 3 1.00\n")
	_, err = readHgrm(filepath.Join(dir, "bad.hgrm"))
	require.Error(t, err)
	writeFile(t, dir, "empty.hgrm", "#[Mean = 1]\n")
	_, err = readHgrm(filepath.Join(dir, "empty.hgrm"))
	require.Error(t, err)
}

// TestReadTimeline reads the load tool's CSV timeline: one point per
// interval in its middle, a short tail left out.
func TestReadTimeline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "run.timeline.csv", "t,seconds,requests,rps,p99_ms\n0,1,812,812.0,9.1\n1,1,900,900.0,8.0\n2,0.6,300,500.0,7.5\n3,0.013,200,15384.6,3.0\n")
	xys, err := readTimeline(filepath.Join(dir, "run.timeline.csv"))
	require.NoError(t, err)
	require.Len(t, xys, 3)
	require.InDelta(t, 0.5, xys[0].X, 1e-9)
	require.InDelta(t, 812, xys[0].Y, 0)
	require.InDelta(t, 2.3, xys[2].X, 1e-9)
	require.InDelta(t, 500, xys[2].Y, 0)

	writeFile(t, dir, "other.csv", "a,b\n1,2\n")
	_, err = readTimeline(filepath.Join(dir, "other.csv"))
	require.Error(t, err)
}

// report is a load tool report for the fixtures.
func report(name string, rps, p99 float64, extra string) string {
	return fmt.Sprintf(`{"scenario":%q,"requests":1000,"rps":%g,"latency_ms":{"p50":1,"p99":%g},"ok":true,"settings":{"concurrency":1000,"users":10000}%s}`,
		name, rps, p99, extra)
}

// goodRuns is a bench directory in which every target is met.
func goodRuns(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	backlog := `,"relay_backlog":{"samples":12,"max_pending":900,"max_oldest_pending_age_seconds":0.4}`
	for name, content := range map[string]string{
		"pg-hot.json":                  `{"scenario":"hot","rps":600,"latency_ms":{"p99":100},"ok":true}`,
		"pg-spread.json":               `{"scenario":"spread","rps":2000,"latency_ms":{"p99":20},"ok":true}`,
		"batched-hot.json":             report("hot", 9000, 200, ""),
		"batched-hot-sustained.json":   report("hot-sustained", 8000, 180, backlog),
		"batched-hot-open.json":        strings.Replace(report("hot-sustained", 6000, 40, backlog), `"concurrency":1000`, `"concurrency":1000,"rate":6000`, 1),
		"batched-spread.json":          report("spread", 7000, 240, backlog),
		"batched-relay.json":           report("relay", 6000, 200, ""),
		"batched-rss.json":             `{"rss_kb": 90000}`,
		"unbatched-hot.json":           report("hot", 500, 2000, ""),
		"unbatched-hot-sustained.json": report("hot-sustained", 450, 2400, ""),
		"unbatched-spread.json":        report("spread", 1000, 1000, ""),
		"verify-batched.json":          `{"scenario":"verify","ok":true,"details":{"output":"verify: OK"}}`,
		"verify-unbatched.json":        `{"scenario":"verify","ok":true,"details":{"output":"verify: OK"}}`,
		"drain-burst.json":             report("spread", 5000, 300, ""),
		"relay-drain.json":             `{"scenario":"relay-drain","rps":11000,"requests":50100,"ok":true,"details":{"left_pending":0,"partitions":1}}`,
		"relay-drain-2.json":           `{"scenario":"relay-drain-2","rps":15000,"requests":50100,"ok":true,"details":{"left_pending":0,"partitions":2}}`,
		"relay-drain-4.json":           `{"scenario":"relay-drain-4","rps":18000,"requests":50100,"ok":true,"details":{"left_pending":0,"partitions":4,"cores_relay":0.9,"cores_broker":0.8,"cores_postgres":0.3}}`,
		"amqp-ceiling-4.json":          `{"scenario":"amqp-ceiling-4","rps":20000,"ok":true,"details":{"channels":4}}`,
		"relay-drain-1-quorum.json":    `{"scenario":"relay-drain-1-quorum","rps":9000,"requests":50100,"ok":true,"details":{"left_pending":0,"partitions":1,"queue_type":"quorum"}}`,
		"amqp-ceiling.json":            `{"scenario":"amqp-ceiling","rps":12000,"ok":true}`,
		"history-fill.json":            `{"scenario":"history","ok":true,"details":{"user_entries":1000000,"entries":5000000,"written":0,"audit_pass_seconds":1.5,"audit_users":1,"audit_entries":100000,"audit_failing":0}}`,
		"history-long.json":            strings.Replace(report("hot-sustained", 7600, 190, ""), `"ok":true`, `"ok":true,"details":{"prior_entries":1000000}`, 1),
		"history-fresh.json":           report("hot-sustained", 8000, 180, ""),
		"history-reads.json":           strings.Replace(report("history-reads", 3000, 9, ""), `"ok":true`, `"ok":true,"details":{"entries":1000001,"verify_ms":2100,"balance_at_p50_ms":0.8,"balance_at_max_ms":2,"balance_at_early_seq":9000}`, 1),
		"cost.json":                    `{"scenario":"cost","requests":70000,"ok":true,"details":{"wal_bytes_per_change":1027,"table_bytes_per_change":498}}`,
		"checkpoint.json":              checkpointRun,
		"machine.txt":                  "cores=2",
	} {
		writeFile(tb, dir, name, content)
	}
	return dir
}

// checkpointRun is scripts/checkpointbench's result for the fixtures.
const checkpointRun = `{"scenario":"checkpoint","ok":true,"details":{"users":1000000,"filled_users":0,"verified_users":8,"verify_failing":[],` +
	`"build_seconds":4.25,"idle_build_seconds":[4.5,4.25,4.1],"users_per_second":235294.1,"heap_baseline_bytes":1400000,` +
	`"heap_peak_growth_bytes":3670016,"heads_bytes":48000000,"writers":8,"load_seconds":10,"writes_per_second_idle":2800,` +
	`"writes_per_second_during_build":2100,"write_ratio":0.75,"p99_write_ms_idle":5.5,"p99_write_ms_during_build":12.3,` +
	`"max_write_ms_idle":19,"max_write_ms_during_build":61.5,"write_errors":0,"builds_during_load":3}}`

func testConfig(dir string) config {
	return config{dir: dir, duration: "10s", pgHotClients: 8, pgSpreadClients: 32, spreadUsers: 10_000}
}

// TestTargets checks the Targets table: exactly issue 11's targets, in
// order, each met or not on the figures of the run.
func TestTargets(t *testing.T) {
	t.Parallel()
	dir := goodRuns(t)
	backlog := `,"relay_backlog":{"samples":12,"max_pending":900,"max_oldest_pending_age_seconds":0.4}`
	ts := targets(testConfig(dir), loadRuns(dir))
	names := []string{"Hot:", "Seed burst", "Spread:", "Relay: backlog", "Relay: drain", "History:", "Memory:", "Correctness:"}
	require.Len(t, ts, len(names))
	for i, tt := range ts {
		require.True(t, strings.HasPrefix(tt.name, names[i]), tt.name)
		require.True(t, tt.ok, "%s: %s", tt.name, tt.measured)
	}
	require.Equal(t, "8000 vs 600 req/s: 13.33×", ts[0].measured)
	require.Equal(t, "hot: ≤ 900 pending (0.11 s of writes), oldest ≤ 0.40 s; spread: ≤ 900 pending (0.13 s of writes), oldest ≤ 0.40 s", ts[3].measured)

	for _, c := range []struct {
		file, content string
		target        int
	}{
		{"batched-hot-sustained.json", report("hot-sustained", 4700, 180, backlog), 0},
		{"batched-hot-sustained.json", strings.Replace(report("hot-sustained", 8000, 180, backlog), `"concurrency":1000`, `"concurrency":100`, 1), 0},
		{"batched-hot.json", report("hot", 9000, 250, ""), 1},
		{"batched-spread.json", report("spread", 2900, 240, backlog), 2},
		{"batched-spread.json", strings.Replace(report("spread", 7000, 240, backlog), `"users":10000`, `"users":100`, 1), 2},
		{"batched-spread.json", report("spread", 7000, 240, ""), 3},
		{"batched-spread.json", report("spread", 7000, 240, `,"relay_backlog":{"samples":3,"max_pending":7500,"max_oldest_pending_age_seconds":0.5}`), 3},
		{"batched-spread.json", report("spread", 7000, 240, `,"relay_backlog":{"samples":3,"max_pending":100,"max_oldest_pending_age_seconds":1.2}`), 3},
		{"relay-drain.json", `{"scenario":"relay-drain","rps":9000,"ok":true}`, 4},
		{"history-long.json", strings.Replace(report("hot-sustained", 7000, 190, ""), `"ok":true`, `"ok":true,"details":{"prior_entries":1000000}`, 1), 5},
		{"history-long.json", strings.Replace(report("hot-sustained", 7600, 190, ""), `"ok":true`, `"ok":true,"details":{"prior_entries":1000}`, 1), 5},
		{"batched-rss.json", `{"rss_kb": 160000}`, 6},
		{"verify-batched.json", `{"scenario":"verify","ok":false}`, 7},
		{"batched-relay.json", strings.Replace(report("relay", 6000, 200, ""), `"ok":true`, `"ok":false`, 1), 7},
		{"checkpoint.json", strings.Replace(checkpointRun, `"ok":true`, `"ok":false`, 1), 7},
	} {
		dir := goodRuns(t)
		writeFile(t, dir, c.file, c.content)
		ts := targets(testConfig(dir), loadRuns(dir))
		for i, tt := range ts {
			require.Equal(t, i != c.target, tt.ok, "%s → %s: %s", c.file, tt.name, tt.measured)
		}
	}

	missing := goodRuns(t)
	require.NoError(t, os.Remove(filepath.Join(missing, "batched-rss.json")))
	require.NoError(t, os.Remove(filepath.Join(missing, "verify-unbatched.json")))
	ts = targets(testConfig(missing), loadRuns(missing))
	require.Equal(t, target{name: ts[6].name, measured: "(not measured)"}, ts[6])
	require.Equal(t, "✗ or missing: verify-unbatched", ts[7].measured)
	require.False(t, ts[7].ok)
}

// svgDoc is enough of an SVG file to check it.
type svgDoc struct {
	XMLName xml.Name
	Width   string `xml:"width,attr"`
}

// TestPage writes the page with plots from a bench directory: the SVG
// files are there, are SVG, draw a line per run, and the page shows them
// with Markdown image links relative to it.
func TestPage(t *testing.T) {
	t.Parallel()
	dir := goodRuns(t)
	writeHgrm(t, dir, "batched-hot-sustained", 200)
	writeHgrm(t, dir, "batched-spread", 300)
	writeHgrm(t, dir, "unbatched-hot-sustained", 2000)
	writeFile(t, dir, "batched-hot-sustained.timeline.csv", "t,seconds,requests,rps,p99_ms\n0,1,7000,7000.0,200\n1,1,8000,8000.0,180\n2,1,8200,8200.0,170\n")
	writeFile(t, dir, "batched-hot-open.timeline.csv", "t,seconds,requests,rps,p99_ms\n0,1,6000,6000.0,30\n1,1,6000,6000.0,40\n")
	plots := filepath.Join(t.TempDir(), "perf")
	c := testConfig(dir)
	c.plotsDir, c.plotsLink = plots, "perf"
	var page bytes.Buffer
	require.NoError(t, run(&page, c))

	md := page.String()
	require.Contains(t, md, "![Latency by percentile of each run](perf/latency.svg)")
	require.Contains(t, md, "![Hot user: requests per second over time](perf/throughput-hot.svg)")
	require.NotContains(t, md, "throughput-spread.svg", "no timeline of a spread run")
	require.Contains(t, md, "| ledgerd, group commit on, hot, open loop at 6000 req/s | 6000 | 40.0 | ✓ |")
	require.Contains(t, md, "where user 1 has 1,000,000 entries and the table 5,000,000")
	require.Contains(t, md, "| writes to user 1 (the long history) | 7600 | 1.0 | 190.0 | ✓ |")
	require.Contains(t, md, "over its 1,000,001 entries: 2100 ms")
	require.Contains(t, md, "1 users, 100,000 entries in 1.50 s, 0 failing")
	require.Contains(t, md, "1027 bytes of WAL\nand 498 bytes of table growth")
	require.Contains(t, md, "| 4 | classic | 18000 | 1.64× | 20000 | 0.90× | 0.90 / 0.80 / 0.30 |", "the drain with 4 relay partitions")
	require.Contains(t, md, "| 1 | quorum | 9000 | 0.82× | 12000 | 0.75× |", "the drain into a quorum queue")
	require.Contains(t, md, "| 2 | classic | 15000 | 1.36× | — | — |", "no 2-channel ceiling in the fixture")
	require.NotContains(t, md, "**not met**")

	files, err := os.ReadDir(plots)
	require.NoError(t, err)
	require.Len(t, files, 2)
	for name, lines := range map[string]int{"latency.svg": 3, "throughput-hot.svg": 2 + 2} {
		b, err := os.ReadFile(filepath.Join(plots, name))
		require.NoError(t, err)
		var doc svgDoc
		require.NoError(t, xml.Unmarshal(b, &doc), name)
		require.Equal(t, "svg", doc.XMLName.Local)
		for _, label := range []string{"group commit on, hot"} {
			require.Contains(t, string(b), label, name)
		}
		// Each line is drawn once in the plot and once in its legend.
		require.GreaterOrEqual(t, strings.Count(string(b), "<path"), 2*lines, name)
	}

	var bare bytes.Buffer
	require.NoError(t, run(&bare, testConfig(dir)))
	require.NotContains(t, bare.String(), "## Plots", "no plots without -plots")
}

// TestCheckpoints checks the Checkpoints section: the figures of
// scripts/checkpointbench's result, a failed verification called out, and
// no section without a result.
func TestCheckpoints(t *testing.T) {
	t.Parallel()
	dir := goodRuns(t)
	var page bytes.Buffer
	require.NoError(t, run(&page, testConfig(dir)))
	md := page.String()
	for _, want := range []string{
		"## Checkpoints",
		"(`ledger_bench_checkpoint`) of 1,000,000 users",
		"this run wrote 0 of them; the 8 users sampled verify with `VerifyUser`",
		"| leaves (users) | 1,000,000 |",
		"| build time on the idle database (median of 3) | 4.25 s: 235,294 users/s |",
		"| 3.5 MB (holding every head at once: 45.8 MB) |",
		"| writes/s, 8 writers (deposits of 0.01 to random users, group commit), 10 s, no build | 2800 |",
		"| writes/s, the same load while checkpoints are built back to back (3 builds) | 2100: 0.75× |",
		"| longest write during the builds (p99) | 61.5 ms (12.3 ms); without a build 19.0 ms (5.5 ms) |",
	} {
		require.Contains(t, md, want)
	}
	require.Less(t, strings.Index(md, "## A long history"), strings.Index(md, "## Checkpoints"))
	require.Less(t, strings.Index(md, "## Checkpoints"), strings.Index(md, "## Write cost per change"))

	writeFile(t, dir, "checkpoint.json", strings.Replace(checkpointRun, `"verify_failing":[]`, `"verify_failing":[17,99]`, 1))
	page.Reset()
	require.NoError(t, run(&page, testConfig(dir)))
	require.Contains(t, page.String(), "**2 of the 8 users sampled fail `VerifyUser`**")

	require.NoError(t, os.Remove(filepath.Join(dir, "checkpoint.json")))
	page.Reset()
	require.NoError(t, run(&page, testConfig(dir)))
	require.NotContains(t, page.String(), "## Checkpoints")
	require.Contains(t, page.String(), "✗ or missing: checkpoint")
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 10_000: "10,000", 1_234_567: "1,234,567", -45_000: "-45,000"} {
		require.Equal(t, want, thousands(n))
	}
}
