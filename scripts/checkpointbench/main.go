// Command checkpointbench measures checkpoints for make bench, over a kept
// database of -users users (ledger_bench_checkpoint by default), each with
// one opening entry:
//
//   - the build time of a checkpoint (ledger.MakeCheckpoint) on the idle
//     database, -builds times;
//   - the Go heap meanwhile: runtime.MemStats.HeapInuse sampled every 50 ms,
//     its peak over its value before the builds (the heads are streamed, so
//     this must stay far below what holding every head would take);
//   - whether a build blocks writes: -writers goroutines posting deposits of
//     0.01 to random users through package ledger (group commit on) for
//     -duration, once alone and once while checkpoints are built back to
//     back, with the writes per second and the longest write of each.
//
// The database is created and migrated when missing, and filled only with
// the users it lacks, in large SQL batches that write valid chains (see
// fill.go): the first run pays for the fill, later ones measure at once. A
// sample of users is verified with ledger.VerifyUser before measuring.
//
// It prints one JSON object, {"scenario", "ok", "details"}, as the other
// bench programs, to stdout or -out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ledgerd/ledgerd/headtree"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations"
)

// defaultURL is the bench's own database, never DATABASE_URL: the fill
// writes a million users into whatever database it is given.
const defaultURL = "postgres://postgres@localhost:5432/ledger_bench_checkpoint?sslmode=disable"

type options struct {
	url         string
	users       int64
	batch       int64
	fillWorkers int
	builds      int
	writers     int
	duration    time.Duration
	out         string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "checkpointbench:", err)
		os.Exit(1)
	}
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("checkpointbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "database-url", defaultURL, "PostgreSQL URL of the bench database (created, migrated and filled when needed)")
	fs.Int64Var(&o.users, "users", 1_000_000, "users in the database, ids 1..users, each with one opening entry")
	fs.Int64Var(&o.batch, "batch", 50_000, "users written per fill transaction")
	fs.IntVar(&o.fillWorkers, "fill-workers", 2, "fill transactions in flight")
	fs.IntVar(&o.builds, "builds", 3, "checkpoints built on the idle database")
	fs.IntVar(&o.writers, "writers", 8, "goroutines of the write load, one write in flight each")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "duration of each write load")
	fs.StringVar(&o.out, "out", "", "write the JSON result to this `file` instead of stdout")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.users < 1 || o.batch < 1 || o.fillWorkers < 1 || o.builds < 1 || o.writers < 1 || o.duration <= 0 {
		return o, errors.New("need -users, -batch, -fill-workers, -builds, -writers ≥ 1 and -duration > 0")
	}
	return o, nil
}

// result is the JSON the program prints.
type result struct {
	Scenario string  `json:"scenario"`
	OK       bool    `json:"ok"`
	Details  details `json:"details"`
}

// details are the figures; times in seconds or milliseconds as named.
type details struct {
	Users         int64   `json:"users"` // leaves of the idle builds
	FilledUsers   int64   `json:"filled_users"`
	FillSeconds   float64 `json:"fill_seconds"`
	VerifiedUsers int     `json:"verified_users"`
	VerifyFailing []int64 `json:"verify_failing"` // ids; empty when all pass

	BuildSeconds     float64   `json:"build_seconds"` // the median idle build
	IdleBuildSeconds []float64 `json:"idle_build_seconds"`
	UsersPerSecond   float64   `json:"users_per_second"`
	// HeapBaselineBytes is HeapInuse before the builds; HeapPeakGrowthBytes
	// its highest rise during them; HeadsBytes what holding every head
	// (a headtree.Head each) would take.
	HeapBaselineBytes   uint64 `json:"heap_baseline_bytes"`
	HeapPeakGrowthBytes uint64 `json:"heap_peak_growth_bytes"`
	HeadsBytes          int64  `json:"heads_bytes"`
	AllocatedPerBuild   uint64 `json:"allocated_bytes_per_build"`

	Writers                    int       `json:"writers"`
	LoadSeconds                float64   `json:"load_seconds"`
	WritesPerSecondIdle        float64   `json:"writes_per_second_idle"`
	WritesPerSecondDuringBuild float64   `json:"writes_per_second_during_build"`
	WriteRatio                 float64   `json:"write_ratio"`
	P99WriteMSIdle             float64   `json:"p99_write_ms_idle"`
	P99WriteMSDuringBuild      float64   `json:"p99_write_ms_during_build"`
	MaxWriteMSIdle             float64   `json:"max_write_ms_idle"`
	MaxWriteMSDuringBuild      float64   `json:"max_write_ms_during_build"`
	WriteErrors                int64     `json:"write_errors"`
	FirstWriteError            string    `json:"first_write_error,omitempty"`
	BuildsDuringLoad           int       `json:"builds_during_load"`
	BuildSecondsUnderLoad      []float64 `json:"build_seconds_under_load"`
	BuildCoverage              float64   `json:"build_coverage"` // share of the loaded run with a build running
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "checkpointbench: "+format+"\n", args...) }
	if _, err := migrations.CreateDatabase(ctx, o.url); err != nil {
		return err
	}
	if err := migrations.Up(o.url); err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(o.url)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	// A build holds two connections (its transaction and its snapshot), the
	// writes up to MaxInflight (4).
	cfg.MaxConns = int32(max(8, o.fillWorkers)) //nolint:gosec // a small flag
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	l := ledger.New(pool, ledger.Options{})

	var d details
	t0 := time.Now()
	if d.FilledUsers, err = fill(ctx, pool, o.users, o.batch, o.fillWorkers, logf); err != nil {
		return err
	}
	if d.FilledUsers > 0 {
		d.FillSeconds = time.Since(t0).Seconds()
		logf("filled %d users in %.1f s", d.FilledUsers, d.FillSeconds)
	}
	if d.VerifiedUsers, d.VerifyFailing, err = verifySample(ctx, l, o.users); err != nil {
		return err
	}
	if err := prune(ctx, pool); err != nil {
		return err
	}
	if err := measure(ctx, l, o, &d, logf); err != nil {
		return err
	}
	res := result{Scenario: "checkpoint", Details: d,
		OK: len(d.VerifyFailing) == 0 && d.Users >= o.users && d.WriteErrors == 0 && d.BuildsDuringLoad > 0}
	return writeResult(res, o.out, stdout)
}

// measure runs the idle builds, then the write load alone and under
// builds, into d.
func measure(ctx context.Context, l *ledger.Ledger, o options, d *details, logf logFunc) error {
	logf("%d checkpoint builds on the idle database", o.builds)
	idle, err := buildIdle(ctx, l, o.builds)
	if err != nil {
		return err
	}
	d.Users, d.IdleBuildSeconds = idle.users, idle.seconds
	d.BuildSeconds = median(idle.seconds)
	if d.BuildSeconds > 0 {
		d.UsersPerSecond = float64(idle.users) / d.BuildSeconds
	}
	d.HeapBaselineBytes, d.HeapPeakGrowthBytes = idle.heapBaseline, idle.heapPeak-idle.heapBaseline
	d.HeadsBytes = idle.users * int64(unsafe.Sizeof(headtree.Head{}))
	d.AllocatedPerBuild = idle.allocated
	logf("build %.2f s for %d users, heap peak +%.1f MB", d.BuildSeconds, d.Users, float64(d.HeapPeakGrowthBytes)/(1<<20))

	logf("write load: %d writers for %s, no build", o.writers, o.duration)
	alone := load(ctx, l, o.users, o.writers, o.duration)
	logf("write load: %d writers for %s, checkpoints built back to back", o.writers, o.duration)
	under := buildUnderLoad(ctx, l, o.users, o.writers, o.duration)
	if under.err != nil {
		return fmt.Errorf("build under load: %w", under.err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d.Writers, d.LoadSeconds = o.writers, o.duration.Seconds()
	d.WritesPerSecondIdle, d.WritesPerSecondDuringBuild = alone.perSecond(), under.load.perSecond()
	if d.WritesPerSecondIdle > 0 {
		d.WriteRatio = d.WritesPerSecondDuringBuild / d.WritesPerSecondIdle
	}
	d.P99WriteMSIdle, d.P99WriteMSDuringBuild = alone.quantile(0.99), under.load.quantile(0.99)
	d.MaxWriteMSIdle, d.MaxWriteMSDuringBuild = alone.quantile(1), under.load.quantile(1)
	d.WriteErrors = alone.errors + under.load.errors
	if err := firstOf(alone.firstErr, under.load.firstErr); err != nil {
		d.FirstWriteError = err.Error()
	}
	d.BuildsDuringLoad, d.BuildSecondsUnderLoad, d.BuildCoverage = len(under.seconds), under.seconds, under.coverage
	logf("writes/s %.0f alone, %.0f during builds (%.2f×); longest write %.1f ms alone, %.1f ms during builds",
		d.WritesPerSecondIdle, d.WritesPerSecondDuringBuild, d.WriteRatio, d.MaxWriteMSIdle, d.MaxWriteMSDuringBuild)
	return nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func writeResult(res result, path string, stdout io.Writer) error {
	if path == "" {
		return json.NewEncoder(stdout).Encode(res)
	}
	f, err := os.Create(path) //nolint:gosec // the operator's own output file
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(res); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
