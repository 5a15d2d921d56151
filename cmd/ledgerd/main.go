// Command ledgerd is the ledger service: the HTTP API, migrations, and the
// operator's tools. Run "ledgerd help" for its subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ledgerd:", err)
		stop()
		os.Exit(exitCode(err))
	}
}
