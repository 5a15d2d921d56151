// Command loadtest drives a running ledgerd over HTTP and checks that the
// ledger's answers add up.
//
// It runs one scenario (-scenario hot, hot-sustained, spread, mixed or
// relay; -h describes each) against -url with -c requests in flight,
// prints a report of the outcomes, the latency quantiles, the throughput
// per second, the relay's backlog and the invariants it checked, and exits
// 0 only when every invariant holds and no request got a 5xx or a
// transport error. By default the loop is closed (each worker sends its
// next request when the previous one is answered); -rate makes it open, on
// a fixed schedule, with latency counted from each request's due time so
// that queueing is not hidden. Latencies go into HDR histograms; -hgrm
// writes the distribution in HdrHistogram's format, -timeline the
// per-second throughput. With -serve-trivial it is instead a trivial HTTP
// server that answers the same routes instantly, to measure the HTTP
// ceiling of the machine. Every loop is bounded by a request count or a
// duration, and no request goes anywhere but -url.
//
// -url may name several servers of one ledger (replicas on one database),
// repeated or comma-separated: the measured load's connections are spread
// over them round-robin, worker by worker, as a simple client-side load
// balancer; the set-up and the checks go through the first.
//
// The measured load is sent as raw requests, one per operation, each
// answer counted as it is (see client.go). The set-up (creating users) and
// the checks (balances, /verify) go through ledgerd's Go client, package
// client, which retries 429, 503 and transport errors: they are not
// measured, and a passing moment of overload must not fail a run there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that cannot run; main exits 2 on it.
var errUsage = errors.New("usage")

// errFailed is returned after a report whose checks did not all pass.
var errFailed = errors.New("checks failed")

// run is the whole program: it parses args (args[0] is the program name),
// then serves the trivial server or runs a scenario and writes its report
// to stdout, and the files of -hgrm and -timeline. Progress goes to stderr
// when stderr is a terminal. It returns nil after -h (the help went to
// stderr), an error wrapping errUsage for a bad command line and errFailed
// when the report says a check failed.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if opts.ServeTrivial {
		return serveTrivial(ctx, opts.Listen, stderr)
	}
	sc, ok := scenarios[opts.Scenario]
	if !ok {
		return fmt.Errorf("%w: unknown -scenario %q (one of %s)", errUsage, opts.Scenario, scenarioNames())
	}
	e, err := newEnv(opts, stderr)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	defer e.close()
	res, err := sc.run(ctx, e)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Scenario, err)
	}
	rep := newReport(opts, res)
	if opts.JSON {
		err = writeJSONReport(stdout, rep)
	} else {
		err = writeTextReport(stdout, rep)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := writeFiles(opts, res.Phase); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if !rep.OK {
		return errFailed
	}
	return nil
}

// writeFiles writes the files asked for with -hgrm and -timeline.
func writeFiles(o options, p *phase) error {
	if o.HgrmFile != "" {
		if err := writeFile(o.HgrmFile, p.Latency.WriteHgrm); err != nil {
			return fmt.Errorf("write -hgrm: %w", err)
		}
	}
	if o.TimelineFile != "" {
		if err := writeFile(o.TimelineFile, func(w io.Writer) error { return writeTimelineCSV(w, p.Timeline) }); err != nil {
			return fmt.Errorf("write -timeline: %w", err)
		}
	}
	return nil
}

// writeFile creates (or truncates) name and writes it with write.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name) //nolint:gosec // a path the user named on the command line
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
