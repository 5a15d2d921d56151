package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
)

// TestRetryStorm: 50 concurrent identical requests with one key make
// exactly one entry, and every answer is the same; the same key with
// another amount is 409; after a restart (a new server on the same
// database) the key still replays.
func TestRetryStorm(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 8)
	s := newTestServerOn(t, pool, ledger.Options{})
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 100}`).Status)
	before := countRows(t, pool, `SELECT count(*) FROM entries`)

	const n = 50
	answers := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i] = s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -7.25}`, "Idempotency-Key", "storm-1")
		})
	}
	wg.Wait()
	replayed := 0
	for _, a := range answers {
		require.Equal(t, http.StatusOK, a.Status, "%s", a.Body)
		require.Equal(t, string(answers[0].Body), string(a.Body), "every answer is the same")
		if a.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	require.Equal(t, n-1, replayed, "one executed, the others replayed")
	require.Equal(t, before+1, countRows(t, pool, `SELECT count(*) FROM entries`), "exactly one entry")
	require.Contains(t, string(s.do(t, http.MethodGet, "/api/users/1", nil).Body), `"balance":92.75,`)
	var key string
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT idempotency_key FROM entries WHERE seq = 2`).Scan(&key))
	require.Equal(t, "storm-1", key, "the entry records its key")

	r := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -7.00}`, "Idempotency-Key", "storm-1")
	require.Equal(t, http.StatusConflict, r.Status)
	require.Equal(t, "idempotency_conflict", r.ErrorType(t))
	r = s.do(t, http.MethodPut, "/api/users/2/balance", `{"amount": -7.25}`, "Idempotency-Key", "storm-1")
	require.Equal(t, http.StatusConflict, r.Status, "another path is another request")

	restarted := newTestServerOn(t, pool, ledger.Options{})
	r = restarted.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -7.25}`, "Idempotency-Key", "storm-1")
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(answers[0].Body), string(r.Body))
	require.Equal(t, before+1, countRows(t, pool, `SELECT count(*) FROM entries`))
}

// TestRefusalStaysRefused: a decided rejection is stored with its key, so a
// retry after the balance changed is still refused, and changes nothing.
func TestRefusalStaysRefused(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 5}`).Status)
	r := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -10}`, "Idempotency-Key", "k-refused")
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "insufficient_funds", r.ErrorType(t))
	require.Empty(t, r.Header.Get("Idempotent-Replayed"))
	require.Equal(t, http.StatusOK, s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 100}`).Status)

	again := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -10}`, "Idempotency-Key", "k-refused")
	require.Equal(t, http.StatusBadRequest, again.Status)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(r.Body), string(again.Body))
	require.Contains(t, string(s.do(t, http.MethodGet, "/api/users/1", nil).Body), `"balance":105,`)

	// Not found is decided too; a validation error is not stored at all.
	nf := s.do(t, http.MethodPut, "/api/users/9/balance", `{"amount": 1}`, "Idempotency-Key", "k-nf")
	require.Equal(t, http.StatusNotFound, nf.Status)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 9}`).Status)
	nf = s.do(t, http.MethodPut, "/api/users/9/balance", `{"amount": 1}`, "Idempotency-Key", "k-nf")
	require.Equal(t, http.StatusNotFound, nf.Status)
	require.Equal(t, "true", nf.Header.Get("Idempotent-Replayed"))
	bad := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 0.001}`, "Idempotency-Key", "k-bad")
	require.Equal(t, http.StatusBadRequest, bad.Status)
	require.Zero(t, countRows(t, s.Pool, `SELECT count(*) FROM idempotency_keys WHERE key = 'k-bad'`))
}

func TestIdempotentCreateAndTransfer(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	a := s.do(t, http.MethodPost, "/api/users", `{"balance": 50}`, "Idempotency-Key", "create-1")
	require.Equal(t, http.StatusCreated, a.Status)
	b := s.do(t, http.MethodPost, "/api/users", `{"balance": 50}`, "Idempotency-Key", "create-1")
	require.Equal(t, http.StatusCreated, b.Status)
	require.Equal(t, "true", b.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(a.Body), string(b.Body))
	require.Equal(t, int64(1), countRows(t, s.Pool, `SELECT count(*) FROM users`), "one user, not two")

	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 77}`).Status)
	transfer := `{"fromUserId": 1, "toUserId": 77, "amount": 20}`
	t1 := s.do(t, http.MethodPost, "/api/transfers", transfer, "Idempotency-Key", "tr-1")
	require.Equal(t, http.StatusCreated, t1.Status, "%s", t1.Body)
	t2 := s.do(t, http.MethodPost, "/api/transfers", transfer, "Idempotency-Key", "tr-1")
	require.Equal(t, "true", t2.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(t1.Body), string(t2.Body))
	require.Contains(t, string(s.do(t, http.MethodGet, "/api/users/77", nil).Body), `"balance":20,`)

	// A conflict on create is decided and stored.
	c1 := s.do(t, http.MethodPost, "/api/users", `{"id": 77}`, "Idempotency-Key", "create-77")
	require.Equal(t, http.StatusConflict, c1.Status)
	c2 := s.do(t, http.MethodPost, "/api/users", `{"id": 77}`, "Idempotency-Key", "create-77")
	require.Equal(t, "true", c2.Header.Get("Idempotent-Replayed"))
}

func TestBadIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 2)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1}`).Status)
	before := snapshot(t, s.Pool)
	for _, key := range []string{strings.Repeat("k", 256), "tab\there", "é"} {
		r := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`, "Idempotency-Key", key)
		require.Equal(t, http.StatusBadRequest, r.Status, "%q", key)
		require.Equal(t, "validation_error", r.ErrorType(t))
	}
	require.Equal(t, before, snapshot(t, s.Pool))
	r := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`, "Idempotency-Key", strings.Repeat("k", 255))
	require.Equal(t, http.StatusOK, r.Status)
}
