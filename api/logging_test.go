package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/metrics"
)

// syncBuffer is a bytes.Buffer that handlers may write to concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines written so far.
func (b *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
	for dec.More() {
		var m map[string]any
		require.NoError(t, dec.Decode(&m))
		out = append(out, m)
	}
	return out
}

// TestProbeRequestsLogAtDebug: the request lines of /healthz, /readyz and
// /metrics, which probes and scrapers poll, are at debug level; every other
// request's line is at info, and so is a probe's 5xx (/readyz while the
// database is down).
func TestProbeRequestsLogAtDebug(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := metrics.New()
	up := httptest.NewServer(api.NewServer(api.Deps{Ledger: ledger.New(newPool(t, 2), ledger.Options{}),
		Logger: logger, Observer: m, MetricsHandler: m.Handler()}))
	t.Cleanup(up.Close)
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/ledger?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	absent, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(absent.Close)
	down := httptest.NewServer(api.NewServer(api.Deps{Ledger: ledger.New(absent, ledger.Options{}), Logger: logger}))
	t.Cleanup(down.Close)

	want := map[string]string{ // request id → level
		"healthz": "DEBUG", "readyz": "DEBUG", "metrics": "DEBUG", "healthz-head": "DEBUG",
		"user": "INFO", "nope": "INFO", "readyz-down": "INFO",
	}
	for _, c := range []struct{ id, method, url string }{
		{"healthz", http.MethodGet, up.URL + "/healthz"},
		{"healthz-head", http.MethodHead, up.URL + "/healthz"},
		{"readyz", http.MethodGet, up.URL + "/readyz"},
		{"metrics", http.MethodGet, up.URL + "/metrics"},
		{"user", http.MethodGet, up.URL + "/api/users/1"},
		{"nope", http.MethodGet, up.URL + "/nope"},
		{"readyz-down", http.MethodGet, down.URL + "/readyz"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), c.method, c.url, nil)
		require.NoError(t, err)
		req.Header.Set("X-Request-Id", c.id)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := map[string]string{}
		for _, l := range logs.lines(t) {
			if l["msg"] == "request" {
				got[l["request_id"].(string)] = l["level"].(string)
			}
		}
		assert.Equal(c, want, got, "the level of each request's log line, by request id")
	}, 5*time.Second, 10*time.Millisecond)
}
