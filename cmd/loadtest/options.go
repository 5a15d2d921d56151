package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// options are the command-line settings.
type options struct {
	URL          string
	Scenario     string
	N            int64
	C            int
	Duration     time.Duration
	Users        int
	Timeout      time.Duration
	DrainTimeout time.Duration
	Idempotency  bool
	Token        string
	JSON         bool
	ServeTrivial bool
	Listen       string

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

// parseOptions reads the command line; errors wrap errUsage.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	name := "loadtest"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.URL, "url", "http://localhost:3000", "base URL of the ledgerd under test; no request goes anywhere else")
	fs.StringVar(&o.Scenario, "scenario", "hot", "one of "+scenarioNames())
	fs.Int64Var(&o.N, "n", 10_000, "requests to send (hot, spread, mixed, relay; with -duration, whichever ends first)")
	fs.IntVar(&o.C, "c", 1000, "requests in flight")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send (hot-sustained; spread and mixed when given)")
	fs.IntVar(&o.Users, "users", 100, "users of spread, mixed and relay")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 2*time.Minute, "relay: longest wait for the outbox to drain")
	fs.BoolVar(&o.Idempotency, "idempotency", false, "send a fresh Idempotency-Key with every POST and PUT")
	fs.StringVar(&o.Token, "token", "", "bearer token sent as Authorization: Bearer")
	fs.BoolVar(&o.JSON, "json", false, "print the report as one JSON object")
	fs.BoolVar(&o.ServeTrivial, "serve-trivial", false, "run the trivial server instead of a scenario (the HTTP ceiling)")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:3999", "address of -serve-trivial")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
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
	if o.Scenario == "mixed" && o.Users < 2 {
		problems = append(problems, "mixed needs -users ≥ 2 for transfers")
	}
	if !o.ServeTrivial {
		u, err := url.Parse(o.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			problems = append(problems, "-url must be an http(s) base URL such as http://localhost:3000")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "; "))
	}
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
