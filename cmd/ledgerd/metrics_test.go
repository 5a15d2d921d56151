package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/outbox/outboxtest"
)

// servedLedger runs the real `serve` wiring on a fresh database and a
// unique exchange until the test ends, and returns its base URL.
func servedLedger(t *testing.T) string {
	t.Helper()
	exchange := outboxtest.UniqueName("test.ledger.events")
	outboxtest.NewConsumer(t, exchange) // deletes the exchange at the end
	cfg := testConfig(dbtest.NewURL(t))
	cfg.RelayEnabled, cfg.AMQPURL, cfg.Exchange, cfg.RelayQueue = true, outboxtest.URL(), exchange, ""
	cfg.AuditEnabled, cfg.AuditInterval, cfg.CheckpointInterval = true, 100*time.Millisecond, time.Hour
	return serveWith(t, cfg)
}

// serveWith runs the real `serve` wiring with cfg until the test ends,
// and returns its base URL.
func serveWith(t *testing.T, cfg config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
		return ""
	}
}

func call(t *testing.T, method, u, body string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, u, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func scrape(t *testing.T, base string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

// sample returns the value of the series with exactly these labels.
func sample(t *testing.T, text []byte, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err)
	f, ok := families[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		match := len(m.GetLabel()) == len(labels)
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetrics scrapes /metrics after a small workload: every family of the
// operations guide is there with its labels, and the values moved as the
// workload says; the scrape passes `promtool check metrics`.
func TestMetrics(t *testing.T) {
	t.Parallel()
	base := servedLedger(t)
	before := scrape(t, base)
	rejectedBefore, _ := sample(t, before, "ledger_balance_changes_rejected_total", map[string]string{"reason": "insufficient_funds"})

	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/users", `{"id": 1, "balance": 10}`))
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/users", `{"id": 2}`))
	for range 3 {
		require.Equal(t, http.StatusBadRequest, call(t, http.MethodPut, base+"/api/users/1/balance", `{"amount": -11}`))
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodPut, base+"/api/users/1/balance", `{"amount": -1}`))
	require.Equal(t, http.StatusBadRequest, call(t, http.MethodPut, base+"/api/users/1/balance", `{"amount": 0.001}`))
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": 2}`))
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/batches", `{"changes": [{"userId": 1, "amount": -1}, {"userId": 2, "amount": 1}]}`))
	require.Equal(t, http.StatusNotFound, call(t, http.MethodPost, base+"/api/reversals", `{"transactionId": "0195f2a0-7000-7000-8000-0000000000ff"}`))
	require.Equal(t, http.StatusNotFound, call(t, http.MethodGet, base+"/api/users/9", ""))

	var text []byte
	require.Eventually(t, func() bool {
		text = scrape(t, base)
		pub, _ := sample(t, text, "ledger_outbox_events_published_total", nil)
		passes, _ := sample(t, text, "ledger_audit_passes_total", nil)
		return pub >= 6 && passes >= 2
	}, 30*time.Second, 50*time.Millisecond, "the relay publishes and the auditor passes")

	rejected, ok := sample(t, text, "ledger_balance_changes_rejected_total", map[string]string{"reason": "insufficient_funds"})
	require.True(t, ok)
	require.Equal(t, rejectedBefore+3, rejected, "exactly the 3 refused withdrawals")
	v, _ := sample(t, text, "ledger_balance_changes_rejected_total", map[string]string{"reason": "validation"})
	require.Equal(t, float64(1), v)
	b, _ := sample(t, text, "ledger_transactions_posted_total", map[string]string{"kind": "batch"})
	require.Equal(t, float64(1), b)
	b, _ = sample(t, text, "ledger_transaction_entries", map[string]string{"kind": "batch"})
	require.Equal(t, float64(1), b, "one batch observed")
	r, ok := sample(t, text, "ledger_transactions_posted_total", map[string]string{"kind": "reversal"})
	require.True(t, ok)
	require.Zero(t, r)
	for typ, want := range map[string]float64{"opening": 1, "withdrawal": 2, "deposit": 1, "transfer_out": 1, "transfer_in": 1} {
		got, _ := sample(t, text, "ledger_entries_posted_total", map[string]string{"type": typ})
		require.Equal(t, want, got, typ)
	}
	got, _ := sample(t, text, "ledger_http_requests_total", map[string]string{"method": "PUT", "route": "/api/users/{id}/balance", "status": "400"})
	require.Equal(t, float64(4), got)
	got, _ = sample(t, text, "ledger_http_requests_total", map[string]string{"method": "GET", "route": "/api/users/{id}", "status": "404"})
	require.Equal(t, float64(1), got, "the route pattern, never the raw path")
	require.NotContains(t, string(text), "/api/users/9")

	for name, labels := range map[string]map[string]string{
		"ledger_http_request_duration_seconds":           {"method": "PUT", "route": "/api/users/{id}/balance"},
		"ledger_http_requests_in_flight":                 nil,
		"ledger_write_transaction_duration_seconds":      nil,
		"ledger_write_batch_size":                        nil,
		"ledger_transaction_retries_total":               nil,
		"ledger_write_batch_splits_total":                nil,
		"ledger_holds_pending":                           nil,
		"ledger_holds_held_cents":                        nil,
		"ledger_outbox_pending_events":                   nil,
		"ledger_outbox_oldest_pending_age_seconds":       nil,
		"ledger_outbox_publish_failures_total":           {"kind": "nack"},
		"ledger_outbox_publish_lag_seconds":              nil,
		"ledger_relay_leader":                            nil,
		"ledger_relay_partitions":                        nil,
		"ledger_relay_broker_connected":                  nil,
		"ledger_db_pool_acquired_connections":            nil,
		"ledger_db_pool_idle_connections":                nil,
		"ledger_db_pool_total_connections":               nil,
		"ledger_db_pool_max_connections":                 nil,
		"ledger_db_pool_acquires_total":                  nil,
		"ledger_db_pool_acquire_wait_seconds_total":      nil,
		"ledger_db_pool_empty_acquires_total":            nil,
		"ledger_db_pool_canceled_acquires_total":         nil,
		"ledger_audit_users_checked_total":               nil,
		"ledger_audit_entries_checked_total":             nil,
		"ledger_audit_violations":                        nil,
		"ledger_audit_last_clean_pass_timestamp_seconds": nil,
		"ledger_audit_passes_total":                      nil,
		"ledger_build_info":                              {"version": version, "goversion": runtime.Version(), "revision": "unknown"},
		"ledger_checkpoint_latest_timestamp_seconds":     nil,
		"ledger_checkpoint_made_total":                   nil,
		"ledger_checkpoint_build_seconds":                nil,
		"go_goroutines":                                  nil,
		"process_resident_memory_bytes":                  nil,
	} {
		_, ok := sample(t, text, name, labels)
		require.True(t, ok, "%s%v is exported", name, labels)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/readyz", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `"role":"leader"`, "/readyz shows the relay's state")
	require.Contains(t, string(body), `"brokerConnected":true`)
	leader, _ := sample(t, text, "ledger_relay_leader", nil)
	require.Equal(t, float64(1), leader, "the one partition, led here")
	partitions, _ := sample(t, text, "ledger_relay_partitions", nil)
	require.Equal(t, float64(1), partitions)
	maxConns, _ := sample(t, text, "ledger_db_pool_max_connections", nil)
	require.Equal(t, float64(4), maxConns)
	violations, _ := sample(t, text, "ledger_audit_violations", nil)
	require.Zero(t, violations)
	lastClean, _ := sample(t, text, "ledger_audit_last_clean_pass_timestamp_seconds", nil)
	require.InDelta(t, float64(time.Now().Unix()), lastClean, 60)
	// The server makes a checkpoint at start (there was none).
	require.Eventually(t, func() bool {
		text := scrape(t, base)
		latest, _ := sample(t, text, "ledger_checkpoint_latest_timestamp_seconds", nil)
		made, _ := sample(t, text, "ledger_checkpoint_made_total", nil)
		return made == 1 && latest > float64(time.Now().Add(-time.Minute).Unix())
	}, 10*time.Second, 100*time.Millisecond)

	// promtool lints the live scrape; it must be installed (.ci/run does).
	cmd := exec.CommandContext(context.Background(), "promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics (install the Debian package prometheus): %s", out)
}

// TestPrometheusScrapes runs a real Prometheus server (the Debian binary)
// against a running ledgerd and reads a value back through its query API.
func TestPrometheusScrapes(t *testing.T) {
	t.Parallel()
	base := servedLedger(t)
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/api/users", `{"id": 1, "balance": 1}`))
	for range 2 {
		require.Equal(t, http.StatusBadRequest, call(t, http.MethodPut, base+"/api/users/1/balance", `{"amount": -5}`))
	}

	bin, err := exec.LookPath("prometheus")
	require.NoError(t, err, "the prometheus binary is needed (Debian package prometheus; .ci/run installs it)")
	dir := t.TempDir()
	target := strings.TrimPrefix(base, "http://")
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ledgerd\n    static_configs:\n      - targets: [%q]\n", target)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600))
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	prom := exec.CommandContext(ctx, bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	prom.Stdout, prom.Stderr = &logs, &logs
	require.NoError(t, prom.Start())
	defer func() { cancel(); _ = prom.Wait() }()

	query := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", port,
		url.QueryEscape(`ledger_balance_changes_rejected_total{job="ledgerd",reason="insufficient_funds"}`))
	var value string
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, query, nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) == 0 {
			return false
		}
		value, _ = r.Data.Result[0].Value[1].(string)
		return value == "2"
	}, 60*time.Second, 250*time.Millisecond, "Prometheus reads the counter back (last value %q); its log:\n%s", value, &logs)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
