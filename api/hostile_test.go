package api_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/metrics"
)

// The regressions of a hostile client's probe (issue 10), at the HTTP
// level; docs/reliability.md lists the classes. The table of TestBadInput
// holds the requests that are simply refused; these need more than one
// request to show.

// requireAllVerify asserts that every user's projection equals its ledger.
func requireAllVerify(t *testing.T, s *testServer) {
	t.Helper()
	l := ledger.New(s.Pool, ledger.Options{})
	sum, err := l.VerifyAll(context.Background(), nil)
	require.NoError(t, err)
	require.Zero(t, sum.FailedCount, "%+v", sum.Failed)
}

// TestRefusedKeyedTransfers: a transfer refused for either side, sent with
// an Idempotency-Key, writes nothing (no balance, no seq, no entry, no
// event); the payee takes writes afterwards and every user verifies.
func TestRefusedKeyedTransfers(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 8)
	for _, body := range []string{`{"id": 201}`, `{"id": 202}`, `{"id": 203, "balance": 500}`, `{"id": 204}`} {
		require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", body).Status)
	}
	for range 9_000_000_000_000_000 / 100_000_000_000_000 { // user 204 to the maximum balance
		require.Equal(t, http.StatusOK, s.do(t, http.MethodPut, "/api/users/204/balance", `{"amount": 1000000000000}`).Status)
	}
	before := snapshot(t, s.Pool)
	for i, tc := range []struct {
		body   string
		status int
		typ    string
	}{
		{`{"fromUserId":9223372036854775806,"toUserId":201,"amount":1000}`, 404, "not_found"},
		{`{"fromUserId":201,"toUserId":9223372036854775806,"amount":1000}`, 404, "not_found"},
		{`{"fromUserId":202,"toUserId":201,"amount":500}`, 400, "insufficient_funds"},
		{`{"fromUserId":203,"toUserId":204,"amount":1}`, 400, "validation_error"},
	} {
		key := fmt.Sprint("hostile-", i)
		r := s.do(t, http.MethodPost, "/api/transfers", tc.body, "Idempotency-Key", key)
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.body, r.Body)
		require.Equal(t, tc.typ, r.ErrorType(t))
		require.Equal(t, before, snapshot(t, s.Pool), "%s wrote something", tc.body)
		again := s.do(t, http.MethodPost, "/api/transfers", tc.body, "Idempotency-Key", key)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, r.Body, again.Body)
	}
	r := s.do(t, http.MethodGet, "/api/users/201", nil)
	require.Equal(t, "0", fmt.Sprint(r.JSON(t)["data"].(map[string]any)["balance"]))
	for _, id := range []int{201, 202, 203} {
		r := s.do(t, http.MethodPut, fmt.Sprintf("/api/users/%d/balance", id), `{"amount": 1}`)
		require.Equal(t, http.StatusOK, r.Status, "user %d takes writes: %s", id, r.Body)
	}
	requireAllVerify(t, s)
}

// TestBadRequestInABatch: concurrent changes of one user, one of them with
// text PostgreSQL cannot hold, are refused one by one: the bad one gets a
// 400 and every other one applies.
func TestBadRequestInABatch(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 16)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1}`).Status)
	const n = 150
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		body := `{"amount": 1}`
		switch i {
		case n / 3:
			body = `{"amount": 1, "description": "\u0000"}`
		case 2 * n / 3:
			body = `{"amount": 1, "reference": "x\u0000"}`
		}
		wg.Go(func() { statuses[i] = s.send(t, false, http.MethodPut, "/api/users/1/balance", body).Status })
	}
	wg.Wait()
	for i, st := range statuses {
		want := http.StatusOK
		if i == n/3 || i == 2*n/3 {
			want = http.StatusBadRequest
		}
		require.Equal(t, want, st, "request %d", i)
	}
	r := s.do(t, http.MethodGet, "/api/users/1", nil)
	require.Equal(t, fmt.Sprint(n-2), fmt.Sprint(r.JSON(t)["data"].(map[string]any)["balance"]))
	requireAllVerify(t, s)
}

// TestMethodsDoNotGrowMetrics: requests with made-up methods get 405 with
// Allow, and the metrics count them under the method "other": the series
// do not grow with them.
func TestMethodsDoNotGrowMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	s := newTestServerWith(t, newPool(t, 4), api.Deps{Observer: m, MetricsHandler: m.Handler()})
	series := func() int {
		r := s.do(t, http.MethodGet, "/metrics", nil)
		n := 0
		for line := range strings.Lines(string(r.Body)) {
			if strings.HasPrefix(line, "ledger_http_") {
				n++
			}
		}
		return n
	}
	s.do(t, http.MethodGet, "/api/users/1", nil)
	s.do(t, "BREW", "/api/users/1", nil)
	series() // the /metrics route's own series
	before := series()
	rng := rand.New(rand.NewPCG(1, 2))
	methods := []string{strings.Repeat("X", 60_000)}
	for range 200 {
		var b strings.Builder
		for range 13 {
			b.WriteByte(byte('A' + rng.IntN(26)))
		}
		methods = append(methods, b.String())
	}
	for _, m := range methods {
		req, err := http.NewRequestWithContext(context.Background(), m, s.URL+"/api/users/1", nil)
		require.NoError(t, err)
		resp, err := s.Client.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		require.Less(t, len(body), 1000, "the method is not echoed in full")
	}
	require.Equal(t, before, series(), "no new series")
	r := s.do(t, http.MethodGet, "/metrics", nil)
	require.True(t, strings.Contains(string(r.Body), `ledger_http_requests_total{method="other",route="unmatched",status="405"} 202`),
		"the made-up methods are counted as other")
}

// TestAssignedIDsCannotBeExhausted: clients that create the ids the server
// would assign next do not stop it from assigning one.
func TestAssignedIDsCannotBeExhausted(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	r := s.do(t, http.MethodPost, "/api/users", `{}`)
	require.Equal(t, http.StatusCreated, r.Status)
	var id int64
	require.NoError(t, s.Pool.QueryRow(context.Background(), `SELECT max(id) FROM users`).Scan(&id))
	for i := int64(1); i <= 150; i++ {
		require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", fmt.Sprintf(`{"id": %d}`, id+i)).Status)
	}
	r = s.do(t, http.MethodPost, "/api/users", `{}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, fmt.Sprint(id+151), fmt.Sprint(r.JSON(t)["data"].(map[string]any)["id"]))
}

// TestZeroInstantIsAnInstant: 0001-01-01T00:00:00Z is an instant before
// every entry, not "not given".
func TestZeroInstantIsAnInstant(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	r := s.do(t, http.MethodGet, "/api/users/1/balance?at=0001-01-01T00:00:00Z", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	d := r.JSON(t)["data"].(map[string]any)
	require.Equal(t, "0", fmt.Sprint(d["balance"]))
	require.Equal(t, "0", fmt.Sprint(d["seq"]))
	require.Equal(t, "0001-01-01T00:00:00.000000Z", d["at"])
	r = s.do(t, http.MethodGet, "/api/users/1/transactions?to=0001-01-01T00:00:00Z", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, r.JSON(t)["data"])
	r = s.do(t, http.MethodGet, "/api/users/1/transactions?from=0001-01-01T00:00:00Z", nil)
	require.Len(t, r.JSON(t)["data"], 1)
}

// TestHead: HEAD is answered wherever GET is, without a body, for auditors
// and probes.
func TestHead(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1}`).Status)
	for path, status := range map[string]int{"/api/users/1": 200, "/api/users/1/transactions": 200, "/healthz": 200, "/api/users/2": 404} {
		r := s.send(t, false, http.MethodHead, path, nil) // the OpenAPI document lists GET only
		require.Equal(t, status, r.Status, path)
		require.Empty(t, r.Body)
	}
}
