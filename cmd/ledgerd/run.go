package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

const usage = `ledgerd: an event-sourced balance ledger on PostgreSQL.

Usage:
  ledgerd serve [flags]          serve the HTTP API and the event relay (migrates first unless --no-migrate)
  ledgerd relay [flags]          run only the event relay (outbox → RabbitMQ)
  ledgerd relay --status         print the relay's state: leader present, pending events, oldest age
  ledgerd verify                 check every user's ledger (running sums, seq, hash chain, projection); exit 1 on any failure
  ledgerd projection rebuild     recompute the balances from the entries, and list what changed
  ledgerd token [--role R]       print a new API token (role writer or auditor) and its LEDGER_API_TOKENS entry
  ledgerd keygen [--out PREFIX]  write a new Ed25519 signing key (PREFIX.key, PREFIX.pub; default ledgerd-signing)
  ledgerd checkpoint             make a signed Merkle checkpoint of every user's chain head now, and print it
  ledgerd statement verify FILE [--public-key PEM]… [--checkpoint FILE --proof FILE]
                                 check a statement offline: signature, chain, balances, inclusion; exit 1 on the first failure
  ledgerd migrate up             apply pending migrations
  ledgerd migrate down N         roll back the last N migrations
  ledgerd migrate version        print the schema version
  ledgerd migrate create-db      create the database named in DATABASE_URL if missing
  ledgerd healthcheck            GET /healthz on the local server (for container health checks)
  ledgerd version                print the version

Configuration comes from the environment (see the README); flags override it.
Run "ledgerd serve -h" for the flags.
`

// run is the whole program: main only wires the process to it.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no subcommand", errUsage)
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, lookupEnv, stderr)
	case "relay":
		return runRelay(ctx, rest, lookupEnv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, lookupEnv, stdout, stderr)
	case "verify":
		return runVerify(ctx, rest, lookupEnv, stdout, stderr)
	case "projection":
		return runProjection(ctx, rest, lookupEnv, stdout, stderr)
	case "token":
		return runToken(rest, stdout, stderr)
	case "keygen":
		return runKeygen(rest, stdout, stderr)
	case "checkpoint":
		return runCheckpoint(ctx, rest, lookupEnv, stdout, stderr)
	case "statement":
		return runStatement(rest, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, lookupEnv, stderr)
	case "version":
		fmt.Fprintln(stdout, "ledgerd", versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown subcommand %q", errUsage, cmd)
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}
