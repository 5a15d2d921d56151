package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// jsonReport is the -json report as a reader parses it.
type jsonReport struct {
	Scenario         string             `json:"scenario"`
	Settings         map[string]any     `json:"settings"`
	Requests         int64              `json:"requests"`
	DurationSeconds  float64            `json:"duration_seconds"`
	RPS              float64            `json:"rps"`
	LatencyMS        map[string]float64 `json:"latency_ms"`
	Outcomes         map[string]int64   `json:"outcomes"`
	Invariants       map[string]bool    `json:"invariants"`
	Details          map[string]any     `json:"details"`
	ClientCPUSeconds *float64           `json:"client_cpu_seconds"`
	OK               bool               `json:"ok"`
	StartDelayMS     map[string]float64 `json:"start_delay_ms"`
	Timeline         []second           `json:"timeline"`
	RelayBacklog     *backlogStats      `json:"relay_backlog"`
}

// startTrivial starts the trivial server, wrapped by wrap when not nil,
// on 127.0.0.1 and returns its URL.
func startTrivial(tb testing.TB, wrap func(http.Handler) http.Handler) string {
	tb.Helper()
	h := newTrivialHandler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// runJSON runs loadtest with -json against url and parses the report.
// It returns run's error too, for the tests of failures.
func runJSON(tb testing.TB, url string, args ...string) (jsonReport, error) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"loadtest", "-json", "-url", url}, args...), &stdout, &stderr)
	var rep jsonReport
	if stdout.Len() > 0 {
		require.NoError(tb, json.Unmarshal(stdout.Bytes(), &rep), "stdout: %s", stdout.String())
		require.Equal(tb, 1, strings.Count(stdout.String(), "\n"), "one JSON object on one line")
	}
	require.Empty(tb, stderr.String(), "no progress bar when stderr is not a terminal")
	return rep, err
}

// requireAllHold checks that a report passed with every invariant true.
func requireAllHold(tb testing.TB, rep jsonReport) {
	tb.Helper()
	require.True(tb, rep.OK)
	require.NotEmpty(tb, rep.Invariants)
	for name, ok := range rep.Invariants {
		require.True(tb, ok, "invariant %s", name)
	}
	for _, q := range []string{"p50", "p90", "p99", "p999", "max", "mean"} {
		require.Contains(tb, rep.LatencyMS, q)
	}
	require.LessOrEqual(tb, rep.LatencyMS["p50"], rep.LatencyMS["p99"])
	require.LessOrEqual(tb, rep.LatencyMS["p99"], rep.LatencyMS["max"])
	require.NotNil(tb, rep.ClientCPUSeconds)
	require.Positive(tb, rep.DurationSeconds)
	require.Positive(tb, rep.RPS)
	var n int64
	for i, s := range rep.Timeline {
		require.Equal(tb, i, s.T, "one interval per second, in order")
		n += s.Requests
	}
	require.Equal(tb, rep.Requests, n, "every request is in the timeline once")
	require.NotNil(tb, rep.RelayBacklog, "the trivial server shows a relay")
	require.GreaterOrEqual(tb, rep.RelayBacklog.Samples, 2, "read before and after the load")
}

// TestScenarios runs every scenario end to end against the trivial
// server, whose answers make every invariant hold.
func TestScenarios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, rep jsonReport)
	}{
		{"hot below the balance", []string{"-scenario", "hot", "-n", "200", "-c", "50"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, map[string]int64{"200": 200}, rep.Outcomes)
			require.Equal(t, int64(200), rep.Requests)
		}},
		{"hot past the balance", []string{"-scenario", "hot", "-n", "6000", "-c", "100"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, map[string]int64{"200": 5000, "400:insufficient_funds": 1000}, rep.Outcomes)
			require.Equal(t, []string{"entries", "final_balance", "no_5xx", "no_transport_errors", "refusals", "successes", "verify_ok"}, keys(rep.Invariants))
		}},
		{"hot-sustained", []string{"-scenario", "hot-sustained", "-duration", "300ms", "-c", "20"}, func(t *testing.T, rep jsonReport) {
			require.Positive(t, rep.Outcomes["200"])
			require.Len(t, rep.Outcomes, 1)
			require.Equal(t, "300ms", rep.Settings["bound"])
		}},
		{"hot-sustained by count", []string{"-scenario", "hot-sustained", "-n", "300", "-c", "20"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, map[string]int64{"200": 300}, rep.Outcomes)
		}},
		{"spread", []string{"-scenario", "spread", "-n", "500", "-c", "20", "-users", "10"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, map[string]int64{"200": 500}, rep.Outcomes)
			require.Contains(t, rep.Invariants, "balances")
		}},
		{"spread by duration", []string{"-scenario", "spread", "-duration", "200ms", "-c", "10", "-users", "3"}, func(t *testing.T, rep jsonReport) {
			require.Positive(t, rep.Requests)
		}},
		{"mixed", []string{"-scenario", "mixed", "-n", "600", "-c", "20", "-users", "10"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, int64(600), rep.Outcomes["200"]+rep.Outcomes["201"])
			require.Contains(t, rep.Invariants, "balance_sum")
			var n float64
			for _, op := range opNames {
				require.Contains(t, rep.Details, op+"_p99_ms")
				n += rep.Details[op+"_requests"].(float64)
			}
			require.InDelta(t, 600, n, 0)
		}},
		{"relay", []string{"-scenario", "relay", "-n", "300", "-c", "20", "-users", "5"}, func(t *testing.T, rep jsonReport) {
			require.InDelta(t, 305, rep.Details["events_expected"], 0)
			require.GreaterOrEqual(t, rep.Details["events_published"], 305.0)
		}},
		{"idempotency keys", []string{"-scenario", "spread", "-n", "100", "-c", "10", "-users", "2", "-idempotency"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, true, rep.Settings["idempotency"])
		}},
		{"closed loop", []string{"-scenario", "spread", "-n", "50", "-c", "5", "-users", "2"}, func(t *testing.T, rep jsonReport) {
			require.NotContains(t, rep.Settings, "rate")
			require.Nil(t, rep.StartDelayMS)
		}},
		{"spread open loop", []string{"-scenario", "spread", "-rate", "2000/s", "-n", "100", "-c", "20", "-users", "5"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, map[string]int64{"200": 100}, rep.Outcomes)
			require.InDelta(t, 2000, rep.Settings["rate"], 0)
			require.Contains(t, rep.StartDelayMS, "p99")
		}},
		{"hot-sustained open loop by duration", []string{"-scenario", "hot-sustained", "-rate", "1000", "-duration", "200ms", "-c", "10"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, int64(200), rep.Requests, "one request due every millisecond for 200 ms")
		}},
		{"mixed open loop", []string{"-scenario", "mixed", "-rate", "3000/s", "-n", "150", "-c", "10", "-users", "4"}, func(t *testing.T, rep jsonReport) {
			require.Equal(t, int64(150), rep.Requests)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := runJSON(t, startTrivial(t, nil), tt.args...)
			require.NoError(t, err)
			requireAllHold(t, rep)
			require.Equal(t, tt.args[1], rep.Scenario)
			tt.check(t, rep)
		})
	}
}

// TestExistingUserScenarios: hot-sustained on an existing -user, and
// history-reads of it, against the trivial server.
func TestExistingUserScenarios(t *testing.T) {
	t.Parallel()
	url := startTrivial(t, nil)
	resp, err := http.Post(url+"/api/users", "application/json", strings.NewReader(`{"id": 42, "balance": 100}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	rep, err := runJSON(t, url, "-scenario", "hot-sustained", "-user", "42", "-n", "300", "-c", "20")
	require.NoError(t, err)
	requireAllHold(t, rep)
	require.InDelta(t, 42, rep.Details["user_id"], 0)
	require.InDelta(t, 1, rep.Details["prior_entries"], 0, "the opening entry")
	require.Contains(t, rep.Invariants, "entries")

	rep, err = runJSON(t, url, "-scenario", "history-reads", "-user", "42", "-n", "100", "-c", "10")
	require.NoError(t, err)
	requireAllHold(t, rep)
	require.Equal(t, map[string]int64{"200": 100}, rep.Outcomes)
	for _, d := range []string{"balance_at_p50_ms", "balance_at_max_ms", "verify_ms", "entries"} {
		require.Contains(t, rep.Details, d)
	}
	require.InDelta(t, 301, rep.Details["entries"], 0)

	_, err = runJSON(t, url, "-scenario", "history-reads")
	require.ErrorIs(t, err, errUsage, "history-reads needs -user")
	_, err = runJSON(t, url, "-scenario", "spread", "-user", "42")
	require.ErrorIs(t, err, errUsage, "-user is for hot-sustained and history-reads")
}

// TestHeaders checks what every request carries: Content-Type with every
// body, the bearer token with -token, and a fresh Idempotency-Key on every
// write with -idempotency (none on reads). The set-up and checks, through
// ledgerd's Go client, name it in their User-Agent and send a key with
// every write whatever -idempotency says.
func TestHeaders(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		problems []string
		keys     = map[string]bool{}
		writes   int
		viaAPI   int
	)
	url := startTrivial(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if r.Method != http.MethodGet && r.Header.Get("Content-Type") != "application/json" {
				problems = append(problems, r.Method+" "+r.URL.Path+": Content-Type "+r.Header.Get("Content-Type"))
			}
			if strings.HasPrefix(r.Header.Get("User-Agent"), "ledgerd-loadtest ledgerd-go/") {
				viaAPI++
			}
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				problems = append(problems, r.Method+" "+r.URL.Path+": no bearer token")
			}
			key := r.Header.Get("Idempotency-Key")
			switch {
			case r.Method == http.MethodGet && key != "":
				problems = append(problems, "GET with an Idempotency-Key")
			case r.Method != http.MethodGet && (key == "" || keys[key]):
				problems = append(problems, r.Method+" "+r.URL.Path+": missing or repeated key "+key)
			case r.Method != http.MethodGet:
				keys[key] = true
				writes++
			}
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	rep, err := runJSON(t, url, "-scenario", "mixed", "-n", "300", "-c", "10", "-users", "4", "-idempotency", "-token", "s3cret")
	require.NoError(t, err)
	requireAllHold(t, rep)
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, problems)
	require.Greater(t, writes, 4)
	require.Equal(t, 4+4+4, viaAPI, "the users created, read and verified")
}

// TestFailures checks that 5xx answers and transport errors fail a run
// even when the scenario's own invariants cannot tell.
func TestFailures(t *testing.T) {
	t.Parallel()
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		url := startTrivial(t, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut {
					fail(w, http.StatusServiceUnavailable, "unavailable", "The database does not answer")
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		rep, err := runJSON(t, url, "-scenario", "spread", "-n", "20", "-c", "5", "-users", "2")
		require.ErrorIs(t, err, errFailed)
		require.False(t, rep.OK)
		require.Equal(t, map[string]int64{"503:unavailable": 20}, rep.Outcomes)
		require.False(t, rep.Invariants["no_5xx"])
		require.True(t, rep.Invariants["balances"], "nothing accepted, nothing changed")
	})
	t.Run("transport", func(t *testing.T) {
		t.Parallel()
		url := startTrivial(t, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						_ = conn.Close()
					}
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		rep, err := runJSON(t, url, "-scenario", "hot", "-n", "10", "-c", "2")
		require.ErrorIs(t, err, errFailed)
		require.False(t, rep.Invariants["no_transport_errors"])
		require.Equal(t, map[string]int64{"transport:eof": 10}, rep.Outcomes)
	})
	t.Run("relay disabled", func(t *testing.T) {
		t.Parallel()
		url := startTrivial(t, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/readyz" {
					reply(w, http.StatusOK, []byte(`{"success":true,"data":{"status":"ready","database":"up","relay":{"enabled":false,"note":"RELAY_ENABLED=false"}}}`))
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		rep, err := runJSON(t, url, "-scenario", "relay", "-n", "10")
		require.ErrorIs(t, err, errRelayDisabled)
		require.Zero(t, rep.Requests, "no report")
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := runJSON(t, url, "-scenario", "hot", "-n", "10")
		require.Error(t, err)
		require.Contains(t, err.Error(), "create user")
	})
}

func keys(m map[string]bool) []string { return slices.Sorted(maps.Keys(m)) }
