package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/outbox/outboxtest"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// testConfig is a serve configuration for a test on the database at url:
// any free port, small pool, JSON logs at warn; no relay, auditor or
// checkpointer unless the test turns them on.
func testConfig(url string) config {
	var c config
	c.DatabaseURL, c.DBMaxConns = url, 4
	c.DBAcquireWait, c.DBTxTimeout = 5*time.Second, 10*time.Second
	c.HTTPAddr, c.ShutdownWait = "127.0.0.1:0", 10*time.Second
	c.LogLevel, c.LogFormat = "warn", "json"
	c.UserQueueLimit, c.MaxBatch, c.MaxInflight = 4096, 512, 4
	c.IdempotencyRetention = 24 * time.Hour
	return c
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"ledgerd", "version"}, env(nil), &out, &errOut))
	require.True(t, strings.HasPrefix(out.String(), "ledgerd "), out.String())

	err := run(context.Background(), []string{"ledgerd"}, env(nil), &out, &errOut)
	require.ErrorIs(t, err, errUsage)
	require.Equal(t, 2, exitCode(err))
	err = run(context.Background(), []string{"ledgerd", "frobnicate"}, env(nil), &out, &errOut)
	require.ErrorIs(t, err, errUsage)
}

func TestBadConfiguration(t *testing.T) {
	t.Parallel()
	for name, e := range map[string]map[string]string{
		"max conns":    {"DB_MAX_CONNS": "many"},
		"log level":    {"LOG_LEVEL": "loud"},
		"log format":   {"LOG_FORMAT": "xml"},
		"timeout":      {"DB_ACQUIRE_TIMEOUT": "5"},
		"queue limit":  {"USER_QUEUE_LIMIT": "-1"},
		"auth role":    {"LEDGER_API_TOKENS": "admin:" + strings.Repeat("0", 64)},
		"auth hash":    {"LEDGER_API_TOKENS": "writer:00"},
		"rate limit":   {"RATE_LIMIT_RPS": "-1"},
		"retention":    {"IDEMPOTENCY_RETENTION": "1h"},
		"max inflight": {"MAX_INFLIGHT": "0"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), []string{"ledgerd", "serve"}, env(e), io.Discard, io.Discard)
			require.ErrorIs(t, err, errUsage)
		})
	}
}

func TestMigrateCommands(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	var out bytes.Buffer
	e := env(map[string]string{"DATABASE_URL": url})
	require.NoError(t, run(context.Background(), []string{"ledgerd", "migrate", "version"}, e, &out, io.Discard))
	latest := fmt.Sprintf("schema version %d", migrations.Latest())
	require.Contains(t, out.String(), latest)
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"ledgerd", "migrate", "down", fmt.Sprint(migrations.Latest())}, e, &out, io.Discard))
	require.Contains(t, out.String(), "schema version 0")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"ledgerd", "migrate", "up"}, e, &out, io.Discard))
	require.Contains(t, out.String(), latest)
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"ledgerd", "migrate", "create-db"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "database exists")
	require.ErrorIs(t, run(context.Background(), []string{"ledgerd", "migrate", "sideways"}, e, &out, io.Discard), errUsage)
}

// TestServeLifecycle starts the real server, serves a request, and shuts
// down gracefully when the context ends: a request in flight at that
// moment still gets its answer, and serve returns nil (exit status 0).
func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	cfg := testConfig(url)
	cfg.LogLevel = "info"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, nil))
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, logger, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	}
	base := "http://" + addr
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/users", `{"id": 1, "balance": 10000}`))

	// Hold the user's row so that a change stays in flight, then stop.
	db, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	defer db.Close()
	lock, err := db.Begin(context.Background())
	require.NoError(t, err)
	_, err = lock.Exec(context.Background(), `SELECT 1 FROM users WHERE id = 1 FOR UPDATE`)
	require.NoError(t, err)
	inFlight := make(chan int, 1)
	go func() {
		// Not call(): a failure here must reach the test, not end the goroutine.
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, base+"/api/users/1/balance", strings.NewReader(`{"amount": -2}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			inFlight <- 0
			return
		}
		resp.Body.Close()
		inFlight <- resp.StatusCode
	}()
	require.Eventually(t, func() bool {
		var waiting int
		err := db.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting == 1
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	time.Sleep(200 * time.Millisecond) // shutdown has begun; the request waits
	require.NoError(t, lock.Rollback(context.Background()))
	require.Equal(t, http.StatusOK, <-inFlight, "the in-flight request is answered")
	select {
	case err := <-done:
		require.NoError(t, err, "a graceful shutdown is not an error")
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	require.Contains(t, logs.String(), `"msg":"schema migrated"`)
	require.Equal(t, 1, strings.Count(logs.String(), "authentication is off"), "one warning that auth is off")
	require.Equal(t, 1, strings.Count(logs.String(), "signing is off"), "one warning that statements are unsigned")
	require.Contains(t, logs.String(), `"route":"/api/users"`)
	require.Contains(t, logs.String(), `"msg":"stopped"`)
	var balance int64
	require.NoError(t, db.QueryRow(context.Background(), `SELECT balance FROM users WHERE id = 1`).Scan(&balance))
	require.Equal(t, int64(999_800), balance)
}

// TestVerifyAndRebuildCommands: `ledgerd verify` passes on a sound ledger,
// exits non-zero after an entry is tampered with, and `projection rebuild`
// reports what it corrects.
func TestVerifyAndRebuildCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Options{})
	for id := int64(1); id <= 3; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: money.Cents(id * 100)})
		require.NoError(t, err)
		_, err = l.PostEntry(ctx, ledger.Change{UserID: id, Amount: -50})
		require.NoError(t, err)
	}
	e := env(map[string]string{"DATABASE_URL": url})
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"ledgerd", "verify"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "verify: OK: 3 users, 6 entries, 0 failed")

	_, err = pool.Exec(ctx, `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET amount = -49 WHERE user_id = 2 AND seq = 2;
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;`)
	require.NoError(t, err)
	out.Reset()
	err = run(ctx, []string{"ledgerd", "verify"}, e, &out, io.Discard)
	require.ErrorIs(t, err, errVerifyFailed)
	require.Equal(t, 1, exitCode(err))
	require.Contains(t, out.String(), "user 2: FAILED")
	require.Contains(t, out.String(), "firstBadSeq=2")
	require.Contains(t, out.String(), "verify: FAILED: 3 users, 6 entries, 1 failed")

	// The database refuses such a row (users_match_ledger); one written
	// with the guard off is what the rebuild mends.
	_, err = pool.Exec(ctx, `ALTER TABLE users DISABLE TRIGGER users_match_ledger;
UPDATE users SET balance = 1 WHERE id = 3;
ALTER TABLE users ENABLE TRIGGER users_match_ledger`)
	require.NoError(t, err)
	out.Reset()
	require.NoError(t, run(ctx, []string{"ledgerd", "projection", "rebuild"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "user 3: balance 0.01 -> 2.50, seq 2 -> 2")
	require.Contains(t, out.String(), "1 users changed, 0 holds changed")
}

func TestTokenCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"ledgerd", "token", "--role", "auditor"}, env(nil), &out, io.Discard))
	lines := strings.Split(out.String(), "\n")
	token := strings.TrimSpace(strings.TrimPrefix(lines[0], "token:"))
	hash := strings.TrimSpace(strings.TrimPrefix(lines[1], "sha256:"))
	require.Equal(t, api.HashToken(token), hash)
	require.Contains(t, out.String(), "LEDGER_API_TOKENS=auditor:"+hash)
	tokens, err := api.ParseTokens("auditor:" + hash)
	require.NoError(t, err)
	require.Len(t, tokens, 1)
	require.ErrorIs(t, run(context.Background(), []string{"ledgerd", "token", "--role", "root"}, env(nil), &out, io.Discard), errUsage)
}

// TestRelayCommand runs `ledgerd relay` alone: it leads, serves its state
// and metrics on HTTP_ADDR, and stops on cancel.
func TestRelayCommand(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	port := freePort(t)
	exchange := outboxtest.UniqueName("test.relay-command")
	outboxtest.NewConsumer(t, exchange) // deletes the exchange at the end
	e := env(map[string]string{
		"DATABASE_URL": url, "HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", port),
		"AMQP_EXCHANGE": exchange, "RELAY_QUEUE": "", "LOG_LEVEL": "warn",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"ledgerd", "relay"}, e, io.Discard, io.Discard) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "ledger_relay_leader 1")
	}, 30*time.Second, 50*time.Millisecond, "the standalone relay leads and says so on /metrics")
	cancel()
	require.NoError(t, <-done)

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"ledgerd", "relay", "--status"}, env(map[string]string{"DATABASE_URL": url}), &out, io.Discard))
	require.Contains(t, out.String(), `"leaderPresent": false`)
}
