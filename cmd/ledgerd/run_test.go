package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
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
		"max conns":   {"DB_MAX_CONNS": "many"},
		"log level":   {"LOG_LEVEL": "loud"},
		"log format":  {"LOG_FORMAT": "xml"},
		"timeout":     {"DB_ACQUIRE_TIMEOUT": "5"},
		"queue limit": {"USER_QUEUE_LIMIT": "-1"},
		"auth":        {"LEDGER_API_TOKENS": "writer:00"},
		"rate limit":  {"RATE_LIMIT_RPS": "10"},
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
	require.Contains(t, out.String(), "schema version 2")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"ledgerd", "migrate", "down", "2"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "schema version 0")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"ledgerd", "migrate", "up"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "schema version 2")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"ledgerd", "migrate", "create-db"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "database exists")
	require.ErrorIs(t, run(context.Background(), []string{"ledgerd", "migrate", "sideways"}, e, &out, io.Discard), errUsage)
}

// TestServeLifecycle starts the real server, serves a request, and shuts
// down gracefully when the context ends, letting an in-flight request
// finish.
func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	cfg := config{
		DatabaseURL: dbtest.NewURL(t), HTTPAddr: "127.0.0.1:0", LogLevel: "info", LogFormat: "json",
		DBMaxConns: 4, DBAcquireWait: 5 * time.Second, DBTxTimeout: 10 * time.Second,
		ShutdownWait: 10 * time.Second, UserQueueLimit: 4096, MaxBatch: 512,
	}
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

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/users", strings.NewReader(`{"id": 1, "balance": 10000}`))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "a graceful shutdown is not an error")
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	require.Contains(t, logs.String(), `"msg":"schema migrated"`)
	require.Contains(t, logs.String(), `"route":"/api/users"`)
	require.Contains(t, logs.String(), `"msg":"stopped"`)
}
