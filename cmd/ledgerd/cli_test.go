package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/signing"
)

// commandPaths lists every command of the CLI, "" for ledgerd itself and
// then "serve", "migrate", "migrate up"… as the model has them, so that a
// new subcommand is covered without editing the tests.
func commandPaths(tb testing.TB) []string {
	tb.Helper()
	parser, err := newParser(&cli{}, env(nil), io.Discard, io.Discard)
	require.NoError(tb, err)
	paths := []string{""}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, child := range n.Children {
			paths = append(paths, child.Path())
			walk(child)
		}
	}
	walk(parser.Model.Node)
	return paths
}

// secrets are settings whose values no help and no usage error may show.
type secrets struct {
	env    map[string]string
	values []string // what must not appear
}

func newSecrets(tb testing.TB) secrets {
	tb.Helper()
	priv, _, err := signing.GenerateKey()
	require.NoError(tb, err)
	keyBody := strings.Split(string(priv), "\n")[1]
	hash := api.HashToken("ldg_never-shown")
	return secrets{
		env: map[string]string{
			"DATABASE_URL":       "postgres://ledger:pg-Secret-1@db.internal:5432/ledger",
			"DATABASE_READ_URL":  "postgres://ledger:pg-Secret-3@replica.internal:5432/ledger",
			"AMQP_URL":           "amqp://ledger:mq-Secret-2@mq.internal:5672/",
			"LEDGER_API_TOKENS":  "writer:" + hash,
			"LEDGER_SIGNING_KEY": string(priv),
		},
		values: []string{"pg-Secret-1", "pg-Secret-3", "mq-Secret-2", hash, keyBody, "db.internal", "mq.internal"},
	}
}

func (s secrets) requireNoneIn(tb testing.TB, text, msg string) {
	tb.Helper()
	for _, v := range s.values {
		require.NotContains(tb, text, v, msg)
	}
}

// TestHelpGolden: `ledgerd [COMMAND…] -h` prints that command's help, and
// only it, to stdout and succeeds; the help is testdata/help*.golden
// (go test ./cmd/ledgerd -run TestHelpGolden -update rewrites them). The environment
// holds secrets: the help shows the variables' names and the built-in
// defaults, never their values.
func TestHelpGolden(t *testing.T) {
	// Not parallel: kong wraps the help at $COLUMNS when it is set.
	t.Setenv("COLUMNS", "")
	sec := newSecrets(t)
	want := map[string]bool{}
	for _, path := range commandPaths(t) {
		name := "help" + strings.ReplaceAll(" "+path, " ", "-")
		name = strings.TrimSuffix(name, "-") + ".golden"
		want[name] = true
		t.Run(name, func(t *testing.T) {
			args := append([]string{"ledgerd"}, strings.Fields(path)...)
			var stdout, stderr bytes.Buffer
			require.NoError(t, run(context.Background(), append(args, "-h"), env(sec.env), &stdout, &stderr))
			require.Empty(t, stderr.String())
			help := stdout.String()
			require.Contains(t, help, "Usage: "+strings.Join(args, " "))
			sec.requireNoneIn(t, help, path)

			// --help and `ledgerd help COMMAND` print the same.
			var long, viaHelp bytes.Buffer
			require.NoError(t, run(context.Background(), append(args, "--help"), env(sec.env), &long, io.Discard))
			require.Equal(t, help, long.String())
			require.NoError(t, run(context.Background(), append([]string{"ledgerd", "help"}, args[1:]...), env(sec.env), &viaHelp, io.Discard))
			require.Equal(t, help, viaHelp.String())

			golden := filepath.Join("testdata", name)
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(help), 0o644))
			}
			b, err := os.ReadFile(golden)
			require.NoError(t, err, "go test ./cmd/ledgerd -run TestHelpGolden -update writes it")
			require.Equal(t, string(b), help)
		})
	}
	// No golden file is left over from a command that is gone.
	files, err := filepath.Glob("testdata/help*.golden")
	require.NoError(t, err)
	for _, f := range files {
		require.True(t, want[filepath.Base(f)], "%s belongs to no command", f)
	}
}

// TestSubcommandHelpListsItsOwnSettings: each subcommand's help lists
// the settings it reads and not serve's others.
func TestSubcommandHelpListsItsOwnSettings(t *testing.T) {
	t.Parallel()
	for cmd, flags := range map[string]struct{ has, lacks []string }{
		"migrate up":         {has: []string{"--database-url"}, lacks: []string{"--db-max-conns", "--amqp-url", "--log-level", "--api-tokens"}},
		"verify":             {has: []string{"--database-url", "--db-max-conns"}, lacks: []string{"--http-addr", "--amqp-url", "--signing-key"}},
		"projection rebuild": {has: []string{"--database-url", "--db-max-conns"}, lacks: []string{"--http-addr", "--amqp-url"}},
		"relay":              {has: []string{"--status", "--database-url", "--amqp-url", "--amqp-exchange", "--relay-queue", "--http-addr", "--log-level"}, lacks: []string{"--relay-enabled", "--api-tokens", "--max-batch"}},
		"checkpoint":         {has: []string{"--database-url", "--signing-key"}, lacks: []string{"--amqp-url", "--api-tokens"}},
		"healthcheck":        {has: []string{"--http-addr"}, lacks: []string{"--database-url"}},
		"token":              {has: []string{"--role"}, lacks: []string{"--database-url"}},
		"keygen":             {has: []string{"--out"}, lacks: []string{"--database-url", "--signing-key"}},
		"statement verify":   {has: []string{"<file>", "--public-key", "--checkpoint", "--proof"}, lacks: []string{"--database-url"}},
		"serve":              {has: []string{"--api-tokens", "$LEDGER_API_TOKENS", "--no-migrate", "--signing-key", "--[no-]relay-enabled"}, lacks: []string{"--status", "--role"}},
	} {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), append(append([]string{"ledgerd"}, strings.Fields(cmd)...), "-h"), env(nil), &out, io.Discard))
		for _, f := range flags.has {
			require.Contains(t, out.String(), f, cmd)
		}
		for _, f := range flags.lacks {
			require.NotContains(t, out.String(), f+"=", cmd)
			require.NotContains(t, out.String(), f+" ", cmd)
		}
	}
}

// TestExitCodes: help and version exit 0 with their text on stdout; a bad
// flag, argument or subcommand exits 2 with one short line that says
// where the help is, and nothing on stdout.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args       string
		code       int
		out, inErr string
	}{
		{args: "-h", out: "Commands:"},
		{args: "--help", out: "Commands:"},
		{args: "help", out: "Commands:"},
		{args: "help migrate up", out: "Usage: ledgerd migrate up"},
		{args: "serve -h", out: "Usage: ledgerd serve"},
		{args: "serve --no-migrate --help", out: "Usage: ledgerd serve"},
		{args: "projection rebuild -h", out: "Usage: ledgerd projection rebuild"},
		{args: "statement verify -h", out: "Usage: ledgerd statement verify <file>"},
		{args: "--version", out: "ledgerd dev"},
		{args: "version", out: "ledgerd dev"},
		{args: "", code: 2, inErr: `no subcommand`},
		{args: "frobnicate", code: 2, inErr: `unknown subcommand "frobnicate"; see "ledgerd -h"`},
		{args: "--bogus", code: 2, inErr: `unknown flag --bogus; see "ledgerd -h"`},
		{args: "serve --bogus", code: 2, inErr: `unknown flag --bogus; see "ledgerd serve -h"`},
		{args: "serve -x", code: 2, inErr: `unknown flag -x`},
		{args: "serve --databse-url=x", code: 2, inErr: `did you mean "--database-url"?`},
		{args: "serve --max-batch=many", code: 2, inErr: `--max-batch`},
		{args: "serve --max-batch=0", code: 2, inErr: `MAX_BATCH (--max-batch) must be positive`},
		{args: "serve --db-tx-timeout=0s", code: 2, inErr: `DB_TX_TIMEOUT (--db-tx-timeout) must be positive`},
		{args: "serve --idempotency-retention=1h", code: 2, inErr: `at least 24h`},
		{args: "serve --api-tokens=admin:00", code: 2, inErr: `--api-tokens: entry 1: role must be writer or auditor`},
		{args: "serve --amqp-exchange=", code: 2, inErr: `AMQP_EXCHANGE (--amqp-exchange) must not be empty`},
		{args: "verify --http-addr=:1", code: 2, inErr: `unknown flag --http-addr; see "ledgerd verify -h"`},
		{args: "relay --relay-enabled", code: 2, inErr: `unknown flag --relay-enabled`},
		{args: "migrate", code: 2, inErr: `expected one of "up", "down", "version", "create-db"`},
		{args: "migrate sideways", code: 2, inErr: `unexpected argument sideways`},
		{args: "migrate down", code: 2, inErr: `must be positive`},
		{args: "migrate down 0", code: 2, inErr: `must be positive`},
		{args: "migrate down two", code: 2, inErr: `<n>`},
		{args: "projection", code: 2, inErr: `expected "rebuild"`},
		{args: "statement verify", code: 2, inErr: `expected "<file>"`},
		{args: "statement verify a.json b.json", code: 2, inErr: `unexpected argument b.json`},
		{args: "statement verify a.json --checkpoint c.json", code: 2, inErr: `--checkpoint and --proof go together`},
		{args: "token --role root", code: 2, inErr: `--role must be one of "writer","auditor" but got "root"`},
		{args: "keygen --out=", code: 2, inErr: `--out must not be empty`},
		{args: "keygen extra", code: 2, inErr: `unexpected argument extra`},
		{args: "version extra", code: 2, inErr: `unexpected argument extra`},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append([]string{"ledgerd"}, strings.Fields(tc.args)...), env(nil), &stdout, &stderr)
		if tc.code == 0 {
			require.NoError(t, err, tc.args)
			require.Contains(t, stdout.String(), tc.out, tc.args)
			require.Empty(t, stderr.String(), tc.args)
			continue
		}
		require.Error(t, err, tc.args)
		require.Equal(t, tc.code, exitCode(err), "%s: %v", tc.args, err)
		require.Contains(t, err.Error(), tc.inErr, tc.args)
		require.NotContains(t, err.Error(), "\n", "%s: one line", tc.args)
		require.Empty(t, stdout.String(), tc.args)
	}
}

// TestNoSubcommand: `ledgerd` alone prints the overview to stderr and
// exits 2.
func TestNoSubcommand(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"ledgerd"}, env(nil), &stdout, &stderr)
	require.ErrorIs(t, err, errUsage)
	require.Equal(t, 2, exitCode(err))
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), "Commands:")
}

// TestHelpRunsNothing: with -h, `migrate up` neither migrates nor
// connects: the database it names does not exist, and without -h the
// same command fails on it.
func TestHelpRunsNothing(t *testing.T) {
	t.Parallel()
	e := env(map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/ledgerd_cli_no_such_database?sslmode=disable&connect_timeout=5"})
	for _, args := range [][]string{
		{"migrate", "up", "-h"}, {"migrate", "up", "--help"}, {"migrate", "-h", "up"}, {"migrate", "down", "1", "-h"},
		{"migrate", "create-db", "-h"}, {"verify", "-h"}, {"projection", "rebuild", "-h"}, {"checkpoint", "-h"},
		{"relay", "--status", "-h"},
	} {
		var stdout bytes.Buffer
		require.NoError(t, run(context.Background(), append([]string{"ledgerd"}, args...), e, &stdout, io.Discard), args)
		require.True(t, strings.HasPrefix(stdout.String(), "Usage: ledgerd "), args)
		require.NotContains(t, stdout.String(), "schema version", args)
	}
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"ledgerd", "migrate", "up"}, e, &stdout, io.Discard)
	require.Error(t, err, "the database does not exist")
	require.Equal(t, 1, exitCode(err))
	require.Empty(t, stdout.String())
}

// TestNoSecretShown: with secrets in the environment, no help and no
// usage error shows one, on stdout or stderr.
func TestNoSecretShown(t *testing.T) {
	t.Parallel()
	sec := newSecrets(t)
	for _, path := range commandPaths(t) {
		for _, tail := range [][]string{{"-h"}, {"--bogus"}} {
			args := append(append([]string{"ledgerd"}, strings.Fields(path)...), tail...)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, env(sec.env), &stdout, &stderr)
			text := stdout.String() + stderr.String()
			if err != nil {
				text += err.Error()
			}
			sec.requireNoneIn(t, text, strings.Join(args, " "))
		}
	}
	// Bad secret settings are refused without echoing them.
	bad := env(map[string]string{"LEDGER_API_TOKENS": "writer:pg-Secret-1", "DATABASE_URL": sec.env["DATABASE_URL"]})
	var out bytes.Buffer
	err := run(context.Background(), []string{"ledgerd", "serve"}, bad, &out, &out)
	require.ErrorIs(t, err, errUsage)
	require.NotContains(t, err.Error()+out.String(), "pg-Secret-1")
	err = run(context.Background(), []string{"ledgerd", "serve", "--api-tokens", "writer:pg-Secret-1"}, bad, &out, &out)
	require.ErrorIs(t, err, errUsage)
	require.NotContains(t, err.Error()+out.String(), "pg-Secret-1")
	// The AMQP default's well-known password is masked too.
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"ledgerd", "relay", "-h"}, env(nil), &out, io.Discard))
	require.Contains(t, out.String(), "amqp://guest:xxxxx@localhost:5672/")
}

// parseServe parses `ledgerd serve args…` with the environment e.
func parseServe(tb testing.TB, e map[string]string, args ...string) (config, error) {
	tb.Helper()
	var c cli
	_, err := parse(&c, append([]string{"serve"}, args...), env(e), io.Discard, io.Discard)
	return c.Serve.config, err
}

// TestSettingsFromEnvironmentAndFlags: the built-in default, then the
// environment, then the flag; an empty variable is unset (but for
// RELAY_QUEUE, where empty means none).
func TestSettingsFromEnvironmentAndFlags(t *testing.T) {
	t.Parallel()
	hash := api.HashToken("t")

	c, err := parseServe(t, nil)
	require.NoError(t, err)
	require.Equal(t, "postgres://postgres@localhost:5432/ledger?sslmode=disable", c.DatabaseURL)
	require.Equal(t, "amqp://guest:guest@localhost:5672/", c.AMQPURL)
	require.Equal(t, ":3000", c.HTTPAddr)
	require.Equal(t, "ledger.events.all", c.RelayQueue)
	require.Equal(t, 20, c.DBMaxConns)
	require.True(t, c.RelayEnabled)
	require.True(t, c.AuditEnabled)
	require.False(t, c.NoMigrate)
	require.Empty(t, c.Tokens)
	require.Empty(t, c.SigningKey)

	e := map[string]string{
		"DATABASE_URL": "postgres://env/db", "DB_MAX_CONNS": "7", "RELAY_ENABLED": "false",
		"LEDGER_API_TOKENS": "auditor:" + hash, "LEDGER_SIGNING_KEY": "/keys/k.key", "RELAY_QUEUE": "",
		"DB_TX_TIMEOUT": "", "HTTP_ADDR": "",
	}
	c, err = parseServe(t, e)
	require.NoError(t, err)
	require.Equal(t, "postgres://env/db", c.DatabaseURL)
	require.Equal(t, 7, c.DBMaxConns)
	require.False(t, c.RelayEnabled)
	require.Len(t, c.Tokens, 1)
	require.Equal(t, api.RoleAuditor, c.Tokens[0].Role)
	require.Equal(t, "/keys/k.key", c.SigningKey)
	require.Empty(t, c.RelayQueue, "RELAY_QUEUE= declares no queue")
	require.Equal(t, ":3000", c.HTTPAddr, "an empty variable is unset")
	require.Equal(t, "10s", c.DBTxTimeout.String())

	c, err = parseServe(t, e, "--database-url", "postgres://flag/db", "--db-max-conns=9", "--relay-enabled",
		"--api-tokens", "writer:"+hash, "--signing-key=/flag.key", "--relay-queue=q", "--no-audit-enabled")
	require.NoError(t, err)
	require.Equal(t, "postgres://flag/db", c.DatabaseURL)
	require.Equal(t, 9, c.DBMaxConns)
	require.True(t, c.RelayEnabled)
	require.Len(t, c.Tokens, 1)
	require.Equal(t, api.RoleWriter, c.Tokens[0].Role)
	require.Equal(t, "/flag.key", c.SigningKey)
	require.Equal(t, "q", c.RelayQueue)
	require.False(t, c.AuditEnabled)

	// --flag=false, and the standard flag package's one-dash long flags.
	c, err = parseServe(t, nil, "--relay-enabled=false", "-no-migrate", "-db-max-conns", "3", "-log-format=json")
	require.NoError(t, err)
	require.False(t, c.RelayEnabled)
	require.True(t, c.NoMigrate)
	require.Equal(t, 3, c.DBMaxConns)
	require.Equal(t, "json", c.LogFormat)

	// A bad variable is a usage error that names it.
	_, err = parseServe(t, map[string]string{"DB_MAX_CONNS": "many"})
	require.ErrorIs(t, err, errUsage)
	require.ErrorContains(t, err, "DB_MAX_CONNS")
	// …unless the flag replaces it.
	_, err = parseServe(t, map[string]string{"DB_MAX_CONNS": "many"}, "--db-max-conns=5")
	require.NoError(t, err)
}

// TestSettingsDocumented: the configuration tables of the docs list
// every setting of serve with its flag and built-in default, and no
// variable that is not one.
func TestSettingsDocumented(t *testing.T) {
	t.Parallel()
	parser, err := newParser(&cli{}, env(nil), io.Discard, io.Discard)
	require.NoError(t, err)
	var serveNode *kong.Node
	for _, n := range parser.Model.Children {
		if n.Name == "serve" {
			serveNode = n
		}
	}
	require.NotNil(t, serveNode)
	type setting struct{ flag, def string }
	settings := map[string]setting{}
	for _, f := range serveNode.Flags {
		if v := f.Tag.Get(tagEnv); v != "" {
			settings[v] = setting{flag: "--" + f.Name, def: f.Default}
		}
	}
	require.Contains(t, settings, "LEDGER_API_TOKENS")

	row := regexp.MustCompile("^\\| `([A-Z_]+)` \\|(.*)$")
	for _, doc := range []string{"../../README.md", "../../docs/operations.md", "../../docs/events.md"} {
		b, err := os.ReadFile(doc)
		require.NoError(t, err)
		var listed []string
		var header []string
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "| variable |") {
				header = strings.Split(strings.Trim(line, "| "), " | ")
				continue
			}
			m := row.FindStringSubmatch(line)
			if m == nil || header == nil {
				if !strings.HasPrefix(line, "|") {
					header = nil
				}
				continue
			}
			name := m[1]
			s, ok := settings[name]
			require.True(t, ok, "%s lists %s, which is no setting of ledgerd serve", doc, name)
			listed = append(listed, name)
			cells := strings.Split(strings.Trim(line, "| "), " | ")
			for i, col := range header {
				if i >= len(cells) {
					break
				}
				cell := cells[i]
				switch col {
				case "flag":
					require.Equal(t, "`"+s.flag+"`", cell, "%s: the flag of %s", doc, name)
				case "default":
					if s.def == "" {
						require.True(t, strings.HasPrefix(cell, "empty"), "%s: the default of %s is empty, not %s", doc, name, cell)
					} else {
						require.True(t, strings.HasPrefix(cell, "`"+s.def+"`"), "%s: the default of %s is %s, not %s", doc, name, s.def, cell)
					}
				}
			}
		}
		if doc != "../../docs/events.md" { // events.md lists the relay's only
			for name := range settings {
				require.True(t, slices.Contains(listed, name), "%s does not list %s", doc, name)
			}
		}
	}
}
