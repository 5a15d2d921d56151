package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// errorParam returns error.param of an error envelope, "" when absent.
func (r response) errorParam(t testing.TB) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	p, _ := e["param"].(string)
	return p
}

func (s *testServer) entryCount(t testing.TB) int64 {
	t.Helper()
	var n int64
	require.NoError(t, s.Pool.QueryRow(t.Context(), `SELECT count(*) FROM entries`).Scan(&n))
	return n
}

// TestBatchesOverHTTP: a batch commits its changes in order, one
// transaction id for all; a refused change refuses the whole batch with
// its position in error.param; bad requests get 400 and their param; none
// of the refusals writes anything.
func TestBatchesOverHTTP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 8)
	for id := 1; id <= 3; id++ {
		require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", fmt.Sprintf(`{"id": %d, "balance": 100}`, id)).Status)
	}
	r := s.do(t, http.MethodPost, "/api/batches",
		`{"changes": [{"userId": 3, "amount": -10.50}, {"userId": 1, "amount": "10", "description": "payout"}, {"userId": 2, "amount": 0.5}], "description": "payout and fee", "reference": "po-1"}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	d := r.JSON(t)["data"].(map[string]any)
	entries := d["entries"].([]any)
	require.Len(t, entries, 3)
	for i, want := range []struct {
		user, amount, typ, desc string
	}{{"3", "-10.50", "withdrawal", "payout and fee"}, {"1", "10", "deposit", "payout"}, {"2", "0.50", "deposit", "payout and fee"}} {
		e := entries[i].(map[string]any)
		require.Equal(t, json.Number(want.user), e["userId"])
		require.Equal(t, json.Number(want.amount), e["amount"])
		require.Equal(t, want.typ, e["type"])
		require.Equal(t, want.desc, e["description"])
		require.Equal(t, "po-1", e["reference"])
		require.Equal(t, d["id"], e["transactionId"])
	}
	before := s.entryCount(t)

	refused := []struct {
		name, body string
		status     int
		typ, param string
	}{
		{"overdraw", `{"changes": [{"userId": 1, "amount": 1}, {"userId": 2, "amount": -1000}]}`, 400, "insufficient_funds", "changes[1]"},
		{"unknown user", `{"changes": [{"userId": 1, "amount": 1}, {"userId": 2, "amount": 1}, {"userId": 99, "amount": 1}]}`, 404, "not_found", "changes[2]"},
		{"empty", `{"changes": []}`, 400, "validation_error", "changes"},
		{"missing", `{"reference": "x"}`, 400, "validation_error", "changes"},
		{"oversized", `{"changes": [` + strings.Repeat(`{"userId": 1, "amount": 1},`, 100) + `{"userId": 1, "amount": 1}]}`, 400, "validation_error", "changes"},
		{"user twice", `{"changes": [{"userId": 1, "amount": 1}, {"userId": 1, "amount": -1}]}`, 400, "validation_error", "changes[1]"},
		{"zero amount", `{"changes": [{"userId": 1, "amount": 1}, {"userId": 2, "amount": 0}]}`, 400, "validation_error", "changes[1]"},
		{"three decimals", `{"changes": [{"userId": 1, "amount": 0.001}]}`, 400, "validation_error", "changes[0]"},
		{"no user", `{"changes": [{"amount": 1}]}`, 400, "validation_error", "changes[0]"},
		{"string user", `{"changes": [{"userId": "1", "amount": 1}]}`, 400, "validation_error", "changes[0]"},
		{"unknown field", `{"changes": [{"userId": 1, "amount": 1, "fee": 2}]}`, 400, "validation_error", "changes[0]"},
	}
	for _, tc := range refused {
		r := s.do(t, http.MethodPost, "/api/batches", tc.body)
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.name, r.Body)
		require.Equal(t, tc.typ, r.ErrorType(t), tc.name)
		require.Equal(t, tc.param, r.errorParam(t), tc.name)
	}
	require.Equal(t, before, s.entryCount(t), "no refused batch wrote anything")

	// A refused batch's answer is stored with its key, and replayed.
	key := []string{"Idempotency-Key", "batch-refused-1"}
	first := s.do(t, http.MethodPost, "/api/batches", refused[0].body, key...)
	require.Equal(t, http.StatusBadRequest, first.Status)
	again := s.do(t, http.MethodPost, "/api/batches", refused[0].body, key...)
	require.Equal(t, first.Body, again.Body)
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
}

// TestReversalsOverHTTP: a reversed transfer restores both balances, once;
// reversals of a reversal, an opening or an unknown transaction are
// refused with their status, and nothing is written.
func TestReversalsOverHTTP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 16)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 100}`).Status)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 2}`).Status)
	tr := s.do(t, http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": 40}`)
	require.Equal(t, http.StatusCreated, tr.Status)
	txID := tr.JSON(t)["data"].(map[string]any)["id"].(string)

	// 50 concurrent reversals, with keys of their own: one reverses.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		body     []byte
		answers  = map[string][]byte{} // by key
	)
	for i := range 50 {
		wg.Go(func() {
			key := fmt.Sprintf("rev-%d", i)
			r := s.send(t, i%10 == 0, http.MethodPost, "/api/reversals", fmt.Sprintf(`{"transactionId": %q, "description": "sent in error"}`, txID),
				"Idempotency-Key", key)
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Status]++
			answers[key] = r.Body
			if r.Status == http.StatusCreated {
				body = r.Body
			}
		})
	}
	wg.Wait()
	require.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusConflict: 49}, statuses)
	// A retry with a key gets that key's decided answer again, the 201 and
	// the 409s alike, and writes nothing.
	for _, key := range []string{"rev-0", "rev-17", "rev-49"} {
		again := s.do(t, http.MethodPost, "/api/reversals", fmt.Sprintf(`{"transactionId": %q, "description": "sent in error"}`, txID), "Idempotency-Key", key)
		require.Equal(t, string(answers[key]), string(again.Body), key)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"), key)
	}
	var rev struct {
		Data struct {
			ID            string
			TransactionID string
			Entries       []struct {
				Type, ReversalOf, TransactionID string
				Amount                          json.Number
			}
		}
	}
	require.NoError(t, json.Unmarshal(body, &rev))
	require.Equal(t, txID, rev.Data.TransactionID)
	require.Len(t, rev.Data.Entries, 2)
	require.Equal(t, json.Number("40"), rev.Data.Entries[0].Amount)
	require.Equal(t, json.Number("-40"), rev.Data.Entries[1].Amount)
	for _, e := range rev.Data.Entries {
		require.Equal(t, "reversal", e.Type)
		require.Equal(t, rev.Data.ID, e.TransactionID)
	}
	b1, _, _ := userFigures(t, s, 1)
	b2, _, _ := userFigures(t, s, 2)
	require.Equal(t, []string{"100", "0"}, []string{b1, b2})

	before := s.entryCount(t)
	var openingTx string
	require.NoError(t, s.Pool.QueryRow(t.Context(), `SELECT transaction_id::text FROM entries WHERE user_id = 1 AND seq = 1`).Scan(&openingTx))
	for _, tc := range []struct {
		name, body, typ string
		status          int
	}{
		{"reversal", fmt.Sprintf(`{"transactionId": %q}`, rev.Data.ID), "validation_error", 400},
		{"opening", fmt.Sprintf(`{"transactionId": %q}`, openingTx), "validation_error", 400},
		{"unknown", `{"transactionId": "0195f2a0-7000-7000-8000-0000000000ff"}`, "not_found", 404},
		{"not a uuid", `{"transactionId": "abc"}`, "validation_error", 400},
		{"missing", `{}`, "validation_error", 400},
		{"again", fmt.Sprintf(`{"transactionId": %q}`, txID), "conflict", 409},
	} {
		r := s.do(t, http.MethodPost, "/api/reversals", tc.body)
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.name, r.Body)
		require.Equal(t, tc.typ, r.ErrorType(t), tc.name)
	}
	require.Equal(t, before, s.entryCount(t), "no refused reversal wrote anything")

	// A reversal that would overdraw is refused and writes nothing.
	dep := s.do(t, http.MethodPut, "/api/users/2/balance", `{"amount": 5}`)
	require.Equal(t, http.StatusOK, dep.Status)
	var depEntry string
	require.NoError(t, s.Pool.QueryRow(t.Context(), `SELECT transaction_id::text FROM entries WHERE user_id = 2 ORDER BY seq DESC LIMIT 1`).Scan(&depEntry))
	require.Equal(t, http.StatusOK, s.do(t, http.MethodPut, "/api/users/2/balance", `{"amount": -3}`).Status)
	r := s.do(t, http.MethodPost, "/api/reversals", fmt.Sprintf(`{"transactionId": %q}`, depEntry))
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "insufficient_funds", r.ErrorType(t))
	b2, _, _ = userFigures(t, s, 2)
	require.Equal(t, "2", b2)

	// The chains, reversal entries and all, verify.
	for _, id := range []string{"1", "2"} {
		v := s.do(t, http.MethodGet, "/api/users/"+id+"/verify", nil).JSON(t)["data"].(map[string]any)
		require.Equal(t, true, v["ok"], "user %s: %v", id, v)
		require.Equal(t, true, v["chainValid"], "user %s", id)
	}
}
