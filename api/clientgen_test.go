package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The generated-client checks: clients generated from api/openapi.yaml by
// the usual generators, pinned, must compile, keep money exact and read
// the error envelope, against a live ledgerd. They never skip: a missing
// go, node or npm fails them. Their tools come from the project's own
// files: api/testdata/oapi-codegen (a Go module pinning oapi-codegen, run
// with go tool), api/testdata/goclient (the module the generated Go client
// lives in) and api/testdata/ts (an npm project with a committed
// package-lock.json, installed with npm ci by the test itself).

// TestGeneratedGoClient generates a Go client (types and client) with the
// pinned oapi-codegen, checks that no money field is a float32 in it,
// builds and vets it in a module of its own, and runs that module's test
// (api/testdata/goclient/client_test.go) against a live ledgerd.
func TestGeneratedGoClient(t *testing.T) {
	t.Parallel()
	goBin := requireTool(t, "go", "the Go toolchain")
	spec, err := filepath.Abs("openapi.yaml")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS("testdata/goclient")))
	out := filepath.Join(dir, "ledgerd.gen.go")
	env := []string{"GOWORK=off"}

	runTool(t, "testdata/oapi-codegen", env, goBin, "tool", "oapi-codegen",
		"-generate", "types,client", "-package", "ledgerdclient", "-o", out, spec)
	requireMoneyIsFloat64(t, out)
	runTool(t, dir, env, goBin, "build", "./...")
	runTool(t, dir, env, goBin, "vet", "./...")

	s := newTestServer(t, 4)
	runTool(t, dir, append(env, "LEDGERD_URL="+s.URL), goBin, "test", "-count=1", "-v", ".")
}

// requireMoneyIsFloat64 parses the generated code: float32 appears nowhere
// in it, and the Money and Balance schemas are float64.
func requireMoneyIsFloat64(t *testing.T, file string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	require.NoError(t, err)
	aliases := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.Ident:
			require.NotEqual(t, "float32", n.Name, "a float32 in the generated client loses cents: declare money as type: number, format: double")
		case *ast.TypeSpec:
			if id, ok := n.Type.(*ast.Ident); ok {
				aliases[n.Name.Name] = id.Name
			}
		}
		return true
	})
	require.Equal(t, "float64", aliases["Money"], "Money is generated as float64")
	require.Equal(t, "float64", aliases["Balance"], "Balance is generated as float64")
}

// TestGeneratedTypeScriptClient generates TypeScript types with
// openapi-typescript, compiles api/testdata/ts/main.ts against them with
// tsc (strict), and runs it with node against a live ledgerd: it calls the
// server through openapi-fetch.
func TestGeneratedTypeScriptClient(t *testing.T) {
	t.Parallel()
	node := requireTool(t, "node", "Node.js 20 or later")
	project, err := filepath.Abs("testdata/ts")
	require.NoError(t, err)
	npmCI(t, project)

	dir := t.TempDir()
	for _, name := range []string{"package.json", "tsconfig.json", "main.ts"} {
		b, err := os.ReadFile(filepath.Join(project, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	require.NoError(t, os.Symlink(filepath.Join(project, "node_modules"), filepath.Join(dir, "node_modules")))
	spec, err := filepath.Abs("openapi.yaml")
	require.NoError(t, err)

	runTool(t, dir, nil, node, "node_modules/openapi-typescript/bin/cli.js", spec, "-o", "schema.d.ts")
	runTool(t, dir, nil, node, "node_modules/typescript/bin/tsc", "-p", ".")
	s := newTestServer(t, 4)
	out := runTool(t, dir, []string{"LEDGERD_URL=" + s.URL}, node, "out/main.js")
	require.Contains(t, out, "ok: user")
}

// npmCI installs the npm project's locked dependencies with npm ci, unless
// node_modules already holds what package-lock.json says: a stamp with
// the lock file's SHA-256 is written after a successful install.
func npmCI(t *testing.T, project string) {
	t.Helper()
	npm := requireTool(t, "npm", "npm (with Node.js)")
	lock, err := os.ReadFile(filepath.Join(project, "package-lock.json"))
	require.NoError(t, err, "api/testdata/ts/package-lock.json is committed")
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(project, "node_modules", ".ledgerd-package-lock.sha256")
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return
	}
	runTool(t, project, nil, npm, "ci", "--no-audit", "--no-fund")
	require.NoError(t, os.WriteFile(stamp, []byte(want), 0o600))
}

// requireTool finds a program on PATH, failing the test when it is absent.
func requireTool(t *testing.T, name, what string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	require.NoError(t, err, "%s is needed for the generated-client checks (%s not on PATH)", what, name)
	return path
}

// runTool runs a program in dir with env added to the test's, within a
// bound, and returns its output; a failure fails the test with the output.
func runTool(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %v: %s", filepath.Base(name), args, time.Since(start).Round(time.Millisecond))
	require.NoError(t, err, "%s %v in %s:\n%s", name, args, dir, out.String())
	return out.String()
}
