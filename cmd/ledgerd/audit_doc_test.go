package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/signing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden, and docs/audit-example/ from a live ledgerd")

// exampleDir holds the API answers docs/audit.md's walk-through checks.
const exampleDir = "../../docs/audit-example"

// exampleFiles maps the routes of the walk-through to their saved answers.
var exampleFiles = map[string]string{
	"/api/signing-key":              "signing-key.json",
	"/api/users/1/statement":        "statement.json",
	"/api/users/1/checkpoint-proof": "proof.json",
	"/api/checkpoints/":             "checkpoint.json",
}

// walkthrough is one shell block of docs/audit.md's "Proof without the
// database" and the output the document shows for it.
type walkthrough struct{ script, want string }

func auditWalkthrough(t *testing.T) []walkthrough {
	t.Helper()
	doc, err := os.ReadFile("../../docs/audit.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(doc), "\n## Proof without the database")
	require.True(t, ok, "docs/audit.md has the section")
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var out []walkthrough
	for _, b := range strings.Split(section, "```sh\n")[1:] {
		script, rest, _ := strings.Cut(b, "```")
		_, rest, _ = strings.Cut(rest, "```\n")
		want, _, _ := strings.Cut(rest, "```")
		out = append(out, walkthrough{script: script, want: strings.TrimSpace(want)})
	}
	require.GreaterOrEqual(t, len(out), 5)
	return out
}

// runWalkthrough runs the blocks in order in one directory, against the
// ledgerd at base, with a ledgerd binary on the PATH, and returns each
// block's output.
func runWalkthrough(t *testing.T, blocks []walkthrough, base, bin string) []string {
	t.Helper()
	dir := t.TempDir()
	var outs []string
	for _, b := range blocks {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", b.script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LEDGERD="+base, "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", b.script, out)
		outs = append(outs, strings.TrimSpace(string(out)))
	}
	return outs
}

func buildLedgerd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ledgerd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestAuditWalkthrough runs docs/audit.md's walk-through of a signed
// statement, checkpoint and inclusion proof, with curl, jq, openssl,
// sha256sum and xxd only: on the saved example every block prints what
// the document shows; on a live ledgerd every check passes.
func TestAuditWalkthrough(t *testing.T) {
	t.Parallel()
	blocks := auditWalkthrough(t)
	bin := buildLedgerd(t)
	if *update {
		writeAuditExample(t, bin)
	}

	t.Run("the example", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for prefix, file := range exampleFiles {
				if r.URL.Path == prefix || strings.HasSuffix(prefix, "/") && strings.HasPrefix(r.URL.Path, prefix) {
					w.Header().Set("Content-Type", "application/json")
					http.ServeFile(w, r, filepath.Join(exampleDir, file))
					return
				}
			}
			http.NotFound(w, r)
		}))
		defer srv.Close()
		outs := runWalkthrough(t, blocks, srv.URL, bin)
		for i, b := range blocks {
			require.Equal(t, b.want, outs[i], "block %d:\n%s", i+1, b.script)
		}
	})

	t.Run("a live ledgerd", func(t *testing.T) {
		base, stop := startSignedServer(t, bin)
		defer stop()
		outs := runWalkthrough(t, blocks, base, bin)
		all := strings.Join(outs, "\n")
		require.Equal(t, 2, strings.Count(all, "Signature Verified Successfully"), all)
		require.Contains(t, all, "closing: OK")
		require.Contains(t, all, "inclusion: OK")
		require.Contains(t, all, "checkpoint 2: OK")
		require.NotRegexp(t, regexp.MustCompile(`(?i)fail|changed|mismatch|does not`), all)
		// The block outputs have the example's shape, line for line.
		for i, b := range blocks {
			require.Equal(t, strings.Count(b.want, "\n"), strings.Count(outs[i], "\n"), "block %d:\n%s", i+1, outs[i])
		}
	})
}

// startSignedServer runs `ledgerd serve` with a new signing key on a fresh
// database, writes the walk-through's history (user 1 with three entries,
// users 2 to 5) and a checkpoint, and returns its base URL.
func startSignedServer(t *testing.T, bin string) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"ledgerd", "keygen", "-out", filepath.Join(dir, "k")}, env(nil), &out, &out))
	url := dbtest.NewURL(t)
	cfg := testConfig(url)
	cfg.SigningKey, cfg.CheckpointInterval = filepath.Join(dir, "k.key"), time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewJSONHandler(&syncWriter{w: &bytes.Buffer{}}, nil)), ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	}
	base := "http://" + addr
	// The server makes checkpoint 1 at start; the history comes after it.
	require.Eventually(t, func() bool { return call(t, http.MethodGet, base+"/api/checkpoints/1", "") == http.StatusOK },
		10*time.Second, 20*time.Millisecond)
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/users", `{"id": 1, "balance": 100}`))
	require.Equal(t, http.StatusOK, callKeyed(t, http.MethodPut, base+"/api/users/1/balance",
		`{"amount": -2.50, "description": "Café crème", "reference": "pos-17"}`, "order-4711"))
	require.Equal(t, http.StatusOK, call(t, http.MethodPut, base+"/api/users/1/balance", `{"amount": "10.05", "description": "Top-up"}`))
	for _, body := range []string{`{"id": 2, "balance": 20}`, `{"id": 3}`, `{"id": 4, "balance": 0.40}`, `{"id": 5, "balance": 5}`} {
		require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/users", body))
	}
	out.Reset()
	cmd := exec.Command(bin, "checkpoint")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url, "LEDGER_SIGNING_KEY="+cfg.SigningKey)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	return base, func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// writeAuditExample saves a live ledgerd's answers as the example.
func writeAuditExample(t *testing.T, bin string) {
	t.Helper()
	base, stop := startSignedServer(t, bin)
	defer stop()
	for path, file := range exampleFiles {
		if strings.HasSuffix(path, "/") {
			path += "2"
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var body bytes.Buffer
		_, err = body.ReadFrom(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, body.String())
		require.NoError(t, os.WriteFile(filepath.Join(exampleDir, file), append(body.Bytes(), '\n'), 0o600))
	}
}

// callKeyed is call with an Idempotency-Key.
func callKeyed(t *testing.T, method, u, body, key string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestStatementVerifyCommand: `ledgerd statement verify` passes the
// example and fails, exit status 1, with the reason of the first check a
// changed file breaks.
func TestStatementVerifyCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := func(file string) []byte {
		b, err := os.ReadFile(filepath.Join(exampleDir, file))
		require.NoError(t, err)
		return b
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	var key struct {
		Data struct {
			PublicKeyPem string `json:"publicKeyPem"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(data("signing-key.json"), &key))
	pub := write("ledgerd.pub", []byte(key.Data.PublicKeyPem))
	statement, checkpoint, proof := write("s.json", data("statement.json")), write("c.json", data("checkpoint.json")), write("p.json", data("proof.json"))
	verify := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"ledgerd", "statement", "verify"}, args...), env(nil), &out, &out)
		return out.String(), err
	}

	out, err := verify(statement, "--public-key", pub, "--checkpoint", checkpoint, "--proof", proof)
	require.NoError(t, err, out)
	require.Contains(t, out, "checkpoint 2: OK")

	otherPriv, otherPub, err := signing.GenerateKey()
	require.NoError(t, err)
	require.NotEmpty(t, otherPriv)
	cases := []struct {
		name   string
		args   func() []string
		reason string
	}{
		{"an entry changed", func() []string {
			return []string{write("x.json", bytes.Replace(data("statement.json"), []byte("Café crème"), []byte("Cafe creme"), 1)), "--public-key", pub}
		}, "entry seq 2: hash does not recompute"},
		{"the closing balance changed", func() []string {
			return []string{write("x.json", bytes.Replace(data("statement.json"), []byte(`"closingBalance":107.55`), []byte(`"closingBalance":1107.55`), 1)), "--public-key", pub}
		}, "closing: the balances end at 107.55, not closingBalance 1107.55"},
		{"another key", func() []string { return []string{statement, "--public-key", write("o.pub", otherPub)} }, "no public key given for its keyId"},
		{"the proof of another checkpoint", func() []string {
			return []string{statement, "--public-key", pub, "--checkpoint", checkpoint, "--proof",
				write("x.json", bytes.Replace(data("proof.json"), []byte(`"checkpointId":2`), []byte(`"checkpointId":1`), 1))}
		}, "proof: for checkpoint 1, not checkpoint 2"},
		{"a checkpoint changed", func() []string {
			return []string{statement, "--public-key", pub, "--proof", proof, "--checkpoint",
				write("x.json", bytes.Replace(data("checkpoint.json"), []byte(`"users":5`), []byte(`"users":6`), 1))}
		}, "signature of the checkpoint 2: does not verify"},
	}
	for _, tc := range cases {
		out, err := verify(tc.args()...)
		require.ErrorIs(t, err, errStatementInvalid, tc.name)
		require.ErrorContains(t, err, tc.reason, tc.name)
		require.Equal(t, 1, exitCode(err))
		require.NotContains(t, out, "checkpoint 2: OK")
	}
	_, err = verify(statement, "--public-key", pub, "--checkpoint", checkpoint)
	require.ErrorIs(t, err, errUsage, "--checkpoint needs --proof")
	_, err = verify()
	require.ErrorIs(t, err, errUsage)
	_, err = verify(filepath.Join(dir, "missing.json"), "--public-key", pub)
	require.Error(t, err)
	require.Equal(t, 1, exitCode(err))
}
