package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// options are the command-line settings.
type options struct {
	// URL is the first -url: the set-up and the checks after the run go
	// through it alone. URLs is every -url, in order; the measured load's
	// connections are spread over them round-robin (see client.target).
	URL      string
	URLs     []string
	Scenario string
	N        int64
	C        int
	Duration time.Duration
	Users    int
	// User is -user: an existing user that hot-sustained writes to and
	// history-reads reads, instead of a fresh one; 0 for none.
	User         int64
	Timeout      time.Duration
	DrainTimeout time.Duration
	Idempotency  bool
	Token        string
	JSON         bool
	ServeTrivial bool
	Listen       string
	// Rate is -rate, requests per second of the open loop; 0 for a closed
	// loop.
	Rate rateFlag
	// HgrmFile and TimelineFile are -hgrm and -timeline; empty for none.
	HgrmFile     string
	TimelineFile string

	// nSet and durationSet say whether -n and -duration were given, to
	// pick how a scenario's loop is bounded (see countBound, timeBound).
	nSet, durationSet bool
}

// Most settings a run accepts; past them the run would say more about the
// client than about the server.
const (
	maxConcurrency = 100_000
	maxUsers       = 1_000_000
)

// openLoopScenarios are the scenarios that take -rate: the sustained
// ones. hot is a burst whose outcome count is the point, and relay times
// the drain after a burst.
var openLoopScenarios = map[string]bool{"hot-sustained": true, "spread": true, "mixed": true}

// parseOptions reads the command line; errors wrap errUsage, except
// flag.ErrHelp after -h, for which the usage has been written to stderr.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	name := "loadtest"
	if len(args) > 0 {
		name, args = filepath.Base(args[0]), args[1:]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(fs) }
	o.URLs = []string{"http://localhost:3000"}
	fs.Var(&urlsFlag{urls: &o.URLs}, "url", "base `URL` of the ledgerd under test; no request goes anywhere else. Repeated or comma-separated, several URLs of one ledger (replicas on one database): the load's connections are spread over them round-robin, and the set-up and checks go through the first")
	fs.StringVar(&o.Scenario, "scenario", "hot", "one of "+scenarioNames())
	fs.Int64Var(&o.N, "n", 10_000, "requests to send (hot, spread, mixed, relay; with -duration, whichever ends first)")
	fs.IntVar(&o.C, "c", 1000, "requests in flight (with -rate, the most; a request due while all are busy starts late, and its latency counts the wait)")
	fs.Var(&o.Rate, "rate", "open loop: send `N` requests per second (N or N/s) at fixed times whatever the answers, latency measured from each request's due time (hot-sustained, spread, mixed); closed loop when unset")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send (hot-sustained; spread and mixed when given)")
	fs.IntVar(&o.Users, "users", 100, "users of spread, mixed and relay")
	fs.Int64Var(&o.User, "user", 0, "an existing user for hot-sustained (instead of a fresh one) and history-reads (required)")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 2*time.Minute, "relay: longest wait for the outbox to drain")
	fs.BoolVar(&o.Idempotency, "idempotency", false, "send a fresh Idempotency-Key with every POST and PUT")
	fs.StringVar(&o.Token, "token", "", "bearer token sent as Authorization: Bearer")
	fs.BoolVar(&o.JSON, "json", false, "print the report as one JSON object")
	fs.BoolVar(&o.ServeTrivial, "serve-trivial", false, "run the trivial server instead of a scenario (the HTTP ceiling)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:3999", "address of -serve-trivial")
	fs.StringVar(&o.HgrmFile, "hgrm", "", "write the latency distribution to `FILE` in HdrHistogram's .hgrm percentile format (milliseconds)")
	fs.StringVar(&o.TimelineFile, "timeline", "", "write the requests completed and their p99 per second to `FILE` as CSV")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	o.URL = o.URLs[0]
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "n":
			o.nSet = true
		case "duration":
			o.durationSet = true
		}
	})
	return o, o.validate()
}

func (o options) validate() error {
	var problems []string
	if o.N < 1 {
		problems = append(problems, "-n must be at least 1")
	}
	if o.C < 1 || o.C > maxConcurrency {
		problems = append(problems, fmt.Sprintf("-c must be between 1 and %d", maxConcurrency))
	}
	if o.Duration <= 0 || o.Timeout <= 0 || o.DrainTimeout <= 0 {
		problems = append(problems, "-duration, -timeout and -drain-timeout must be positive")
	}
	if o.Users < 1 || o.Users > maxUsers {
		problems = append(problems, fmt.Sprintf("-users must be between 1 and %d", maxUsers))
	}
	if o.Rate > 0 && !openLoopScenarios[o.Scenario] {
		problems = append(problems, "-rate applies to hot-sustained, spread and mixed")
	}
	if o.User < 0 || (o.User > 0 && o.Scenario != "hot-sustained" && o.Scenario != "history-reads") {
		problems = append(problems, "-user applies to hot-sustained and history-reads, as a positive id")
	}
	if o.Scenario == "history-reads" && o.User == 0 {
		problems = append(problems, "history-reads needs -user")
	}
	if o.Scenario == "mixed" && o.Users < 2 {
		problems = append(problems, "mixed needs -users ≥ 2 for transfers")
	}
	if !o.ServeTrivial {
		for _, raw := range o.URLs {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				problems = append(problems, "-url must be an http(s) base URL such as http://localhost:3000")
				break
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "; "))
	}
	return nil
}

// urlsFlag is -url: one or more base URLs, the flag repeated or its value
// comma-separated, appended to *urls; the first -url given replaces the
// default.
type urlsFlag struct {
	urls *[]string
	set  bool // whether -url was given yet
}

func (f *urlsFlag) String() string {
	if f == nil || f.urls == nil {
		return ""
	}
	return strings.Join(*f.urls, ",")
}

func (f *urlsFlag) Set(v string) error {
	var add []string
	for u := range strings.SplitSeq(v, ",") {
		if u = strings.TrimSpace(u); u == "" {
			return errors.New("empty URL in the list")
		}
		add = append(add, u)
	}
	if !f.set {
		*f.urls, f.set = nil, true
	}
	*f.urls = append(*f.urls, add...)
	return nil
}

// bound says when a load loop stops: after n requests, after d, or at the
// first of both. A zero field is no limit; at least one is set.
type bound struct {
	n int64
	d time.Duration
}

// countBound is the bound of a count-driven scenario: -n requests, or
// -duration instead when only it was given, or the first of both.
func (o options) countBound() bound {
	switch {
	case o.durationSet && o.nSet:
		return bound{n: o.N, d: o.Duration}
	case o.durationSet:
		return bound{d: o.Duration}
	default:
		return bound{n: o.N}
	}
}

// timeBound is the bound of a duration-driven scenario: -duration, or -n
// instead when only it was given, or the first of both.
func (o options) timeBound() bound {
	switch {
	case o.durationSet && o.nSet:
		return bound{n: o.N, d: o.Duration}
	case o.nSet:
		return bound{n: o.N}
	default:
		return bound{d: o.Duration}
	}
}

func (b bound) String() string {
	switch {
	case b.n > 0 && b.d > 0:
		return fmt.Sprintf("n=%d or %s", b.n, b.d)
	case b.n > 0:
		return fmt.Sprintf("n=%d", b.n)
	default:
		return b.d.String()
	}
}

// usage writes the help of -h: the synopsis, the flags, and each scenario
// with what it does.
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", fs.Name())
	fmt.Fprintln(w, "Drives a running ledgerd over HTTP with one scenario, checks that its answers add up, and reports")
	fmt.Fprintln(w, "throughput and latency (exit 0 only when every check holds).")
	fmt.Fprintln(w, "\nFlags:")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nScenarios:")
	names := slices.Sorted(maps.Keys(scenarios))
	wide := 0
	for _, n := range names {
		wide = max(wide, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", wide, n, scenarios[n].about)
	}
}
