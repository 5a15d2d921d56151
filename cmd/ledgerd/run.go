package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// revision is the VCS revision, set at build time with -ldflags
// "-X main.revision=..." (the Dockerfile does: its build context has no
// .git); empty: read from the build info.
var revision string

// errUsage marks a command-line mistake (exit status 2).
var errUsage = errors.New("usage")

// errShown ends a parse that printed the help or the version: run returns
// nil (exit status 0) and runs no subcommand.
var errShown = errors.New("help or version shown")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// cli is the command line: one field per subcommand. Each subcommand embeds
// the settings it reads (config.go), so its help lists exactly those.
type cli struct {
	Help    helpFlag    `short:"h" help:"Show this help and exit."`
	Version versionFlag `hidden:"" help:"Print the version and exit."`

	Serve       serveCmd       `cmd:"" help:"Serve the HTTP API and the event relay (migrates first unless --no-migrate)."`
	Relay       relayCmd       `cmd:"" help:"Run only the event relay (outbox → RabbitMQ); --status prints its state."`
	Migrate     migrateCmd     `cmd:"" help:"Apply, roll back or show the schema migrations."`
	Verify      verifyCmd      `cmd:"" help:"Check every user's ledger (running sums, seq, hash chain, projection); exit 1 on any failure."`
	Projection  projectionCmd  `cmd:"" help:"Rebuild the projection from the ledger."`
	Token       tokenCmd       `cmd:"" help:"Print a new API token and its LEDGER_API_TOKENS entry."`
	Keygen      keygenCmd      `cmd:"" help:"Write a new Ed25519 signing key (PREFIX.key, PREFIX.pub)."`
	Checkpoint  checkpointCmd  `cmd:"" help:"Make a signed Merkle checkpoint of every user's chain head now, and print it."`
	Statement   statementCmd   `cmd:"" help:"Check statements offline."`
	Healthcheck healthcheckCmd `cmd:"" help:"GET /healthz on the local server (for container health checks)."`
	VersionCmd  versionCmd     `cmd:"" name:"version" help:"Print the version."`
}

const description = `ledgerd: an event-sourced balance ledger on PostgreSQL.

Settings come from the environment (the variable is named beside each flag);
a flag wins over its variable. Run "ledgerd SUBCOMMAND -h" or "ledgerd help
SUBCOMMAND" for a subcommand's flags, "ledgerd --version" for the version.`

// streams are the standard output and error a subcommand writes to.
type streams struct{ stdout, stderr io.Writer }

// run is the whole program: main only wires the process to it.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	args = args[1:]
	switch {
	case len(args) == 0:
		// No subcommand: the overview, on stderr, and a usage error.
		_, _ = parse(&cli{}, []string{"--help"}, lookupEnv, stderr, stderr)
		return fmt.Errorf("%w: no subcommand", errUsage)
	case args[0] == "help":
		args = append(slices.Clone(args[1:]), "--help") // help X = X --help
	}
	kctx, err := parse(&cli{}, args, lookupEnv, stdout, stderr)
	if errors.Is(err, errShown) {
		return nil
	}
	if err != nil {
		return err
	}
	kctx.BindTo(ctx, (*context.Context)(nil))
	return kctx.Run(streams{stdout: stdout, stderr: stderr})
}

// parse reads args (without the program name) and the environment into c.
// It returns errShown after printing the help or the version, and an
// errUsage for a bad flag, argument or setting.
func parse(c *cli, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) (*kong.Context, error) {
	parser, err := newParser(c, lookupEnv, stdout, stderr)
	if err != nil {
		return nil, err
	}
	kctx, err := parser.Parse(twoDashes(args, parser.Model.Node))
	if errors.Is(err, errShown) {
		return nil, errShown
	}
	if err != nil {
		return nil, usageError(err, args)
	}
	return kctx, nil
}

// newParser is the command line's parser into c.
func newParser(c *cli, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) (*kong.Kong, error) {
	parser, err := kong.New(c,
		kong.Name("ledgerd"),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.NoDefaultHelp(), // helpFlag: help returns instead of exiting the process
		kong.PostBuild(func(k *kong.Kong) error {
			for _, f := range k.Model.Flags {
				if f.Name == "help" {
					k.Model.HelpFlag = f // so the overview says how to get a subcommand's help
				}
			}
			return nil
		}),
		kong.ExplicitGroups(settingGroups),
		kong.ValueFormatter(helpValue),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, WrapUpperBound: 100, NoAppDescFormat: true}),
		kong.Resolvers(envResolver(lookupEnv)),
	)
	if err != nil {
		return nil, fmt.Errorf("build the command line: %w", err)
	}
	return parser, nil
}

// usageError is a parse error as one short line: what is wrong and where
// the help is.
func usageError(err error, args []string) error {
	cmd := "ledgerd"
	if pe := (*kong.ParseError)(nil); errors.As(err, &pe) && pe.Context != nil {
		if selected := pe.Context.Selected(); selected != nil {
			cmd = selected.FullPath()
		} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			err = fmt.Errorf("unknown subcommand %q", args[0])
		}
	}
	return fmt.Errorf("%w: %w; see %q", errUsage, err, cmd+" -h")
}

// twoDashes turns -name and -name=value into --name and --name=value for
// every long flag name: the standard flag package, which ledgerd used
// before, took both forms, so scripts written for it keep working. Short
// flags are one letter and stay as they are.
func twoDashes(args []string, root *kong.Node) []string {
	names := map[string]bool{}
	var collect func(n *kong.Node)
	collect = func(n *kong.Node) {
		for _, f := range n.Flags {
			names[f.Name] = true
			if f.Tag.Negatable != "" {
				names["no-"+f.Name] = true
			}
		}
		for _, child := range n.Children {
			collect(child)
		}
	}
	collect(root)
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && len(name) > 1 && names[name] {
			out[i] = "-" + a
		}
	}
	return out
}

// helpFlag is -h/--help on any command: it prints that command's help to
// stdout and ends the parse with errShown (kong's own would exit the
// process).
type helpFlag bool

// BeforeReset is the kong hook that runs once the command is known.
func (helpFlag) BeforeReset(ctx *kong.Context) error {
	if err := ctx.PrintUsage(false); err != nil {
		return err
	}
	return errShown
}

// versionFlag is --version.
type versionFlag bool

// BeforeReset is the kong hook that runs once the flag is seen.
func (versionFlag) BeforeReset(ctx *kong.Context) error {
	fmt.Fprintln(ctx.Stdout, "ledgerd", versionString())
	return errShown
}

// versionCmd is `ledgerd version`.
type versionCmd struct{}

// Run prints the version.
func (versionCmd) Run(s streams) error {
	_, err := fmt.Fprintln(s.stdout, "ledgerd", versionString())
	return err
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

// Tags of the settings (config.go) that kong does not know itself.
const (
	// tagEnv names a setting's environment variable. Not kong's own "env"
	// tag: kong reads that from the process environment, and run reads
	// the one it is given (tests give theirs).
	tagEnv = "envvar"
	// tagEmptyEnv: the variable set to "" sets the empty value; for the
	// other settings an empty variable counts as unset.
	tagEmptyEnv = "emptyenv"
	// tagSecret: the value is never shown, the default neither.
	tagSecret = "secret"
)

// envResolver gives a flag that is not on the command line the value of
// its environment variable, when set. A value that does not parse is an
// error that names the variable.
func envResolver(lookupEnv func(string) (string, bool)) kong.ResolverFunc {
	return func(_ *kong.Context, _ *kong.Path, f *kong.Flag) (any, error) {
		name := f.Tag.Get(tagEnv)
		if name == "" {
			return nil, nil
		}
		v, ok := lookupEnv(name)
		if !ok || v == "" && !f.Tag.Has(tagEmptyEnv) {
			return nil, nil
		}
		// Parse it here too, so that an error names the variable. The
		// messages name a bad value but for secrets: tokenList's never
		// does, and a string always parses.
		trial := reflect.New(f.Target.Type()).Elem()
		if err := f.Parse(kong.ScanFromTokens(kong.Token{Type: kong.FlagValueToken, Value: v}), trial); err != nil {
			return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), f.ShortSummary()+": "))
		}
		return v, nil
	}
}

// helpValue is a flag's help text: its meaning, its environment variable
// and its built-in default. Never the value the environment gives (that
// may be a secret); a password in a default URL is masked, and a secret's
// default is not shown at all.
func helpValue(v *kong.Value) string {
	var notes []string
	if env := v.Tag.Get(tagEnv); env != "" {
		notes = append(notes, "$"+env)
	}
	switch {
	case v.Tag.Has(tagSecret):
		notes = append(notes, "a secret, never shown")
	case v.Default != "":
		notes = append(notes, "default "+maskPassword(v.Default))
	}
	if len(notes) == 0 {
		return v.Help
	}
	return v.Help + " (" + strings.Join(notes, "; ") + ")"
}

// maskPassword hides the password of a URL; other text is returned as is.
func maskPassword(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
