package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
)

// The error envelope's conventions (issue 16): error.requestId on every
// error, error.param naming the field at fault, Allow on 405. Every
// response of these tests is also checked against api/openapi.yaml, and
// every error's requestId against its X-Request-Id, by the harness.

// TestErrorRequestID: each kind of error carries the request's
// X-Request-Id as error.requestId, the client's own or a generated one.
func TestErrorRequestID(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	require.Equal(t, http.StatusOK, s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`, "Idempotency-Key", "used").Status)
	const writer, auditor = "writer-secret", "auditor-secret"
	tokens, err := api.ParseTokens("writer:" + api.HashToken(writer) + ",auditor:" + api.HashToken(auditor))
	require.NoError(t, err)
	authed := newTestServerWith(t, newPool(t, 2), api.Deps{Tokens: tokens})
	limited := newTestServerWith(t, newPool(t, 2), api.Deps{RateLimitRPS: 0.001}) // a burst of 1, then 429
	limited.do(t, http.MethodGet, "/api/users/1", nil)

	cases := []struct {
		name         string
		s            *testServer
		method, path string
		body         any
		headers      []string
		status       int
		typ          string
	}{
		{"400 validation", s, http.MethodPut, "/api/users/1/balance", `{"amount": 0.001}`, nil, 400, "validation_error"},
		{"400 insufficient funds", s, http.MethodPut, "/api/users/1/balance", `{"amount": -1000}`, nil, 400, "insufficient_funds"},
		{"404 unknown route", s, http.MethodGet, "/api/nope", nil, nil, 404, "not_found"},
		{"404 unknown user", s, http.MethodGet, "/api/users/99", nil, nil, 404, "not_found"},
		{"405", s, http.MethodDelete, "/api/users/1", nil, nil, 405, "method_not_allowed"},
		{"409 conflict", s, http.MethodPost, "/api/users", `{"id": 1}`, nil, 409, "conflict"},
		{"409 idempotency conflict", s, http.MethodPut, "/api/users/1/balance", `{"amount": 2}`, []string{"Idempotency-Key", "used"}, 409, "idempotency_conflict"},
		{"413", s, http.MethodPut, "/api/users/1/balance", `{"amount": 1, "description": "` + strings.Repeat("x", api.MaxBodyBytes) + `"}`, nil, 413, "payload_too_large"},
		{"415", s, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"401", authed, http.MethodGet, "/api/users/1", nil, nil, 401, "unauthorized"},
		{"403", authed, http.MethodPost, "/api/users", `{}`, []string{"Authorization", "Bearer " + auditor}, 403, "forbidden"},
		{"429", limited, http.MethodGet, "/api/users/1", nil, nil, 429, "rate_limited"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sent := fmt.Sprintf("client-%d.req:x_%d", i, i)
			r := tc.s.do(t, tc.method, tc.path, tc.body, append([]string{"X-Request-Id", sent}, tc.headers...)...)
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			require.Equal(t, tc.typ, r.ErrorType(t))
			require.Equal(t, sent, r.Header.Get("X-Request-Id"), "the client's id is kept")
			require.Equal(t, sent, r.JSON(t)["error"].(map[string]any)["requestId"], "error.requestId is the X-Request-Id")

			r = tc.s.do(t, tc.method, tc.path, tc.body, tc.headers...)
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			generated := r.Header.Get("X-Request-Id")
			require.Len(t, generated, 24)
			require.Equal(t, generated, r.JSON(t)["error"].(map[string]any)["requestId"], "a generated id too")
		})
	}
}

// TestReplayedErrorKeepsItsRequestID: a decided rejection replayed for its
// Idempotency-Key is the stored answer byte for byte, so its requestId is
// that of the request that decided it, while X-Request-Id is the retry's.
func TestReplayedErrorKeepsItsRequestID(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 5}`).Status)
	first := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -10}`, "Idempotency-Key", "k1", "X-Request-Id", "first")
	require.Equal(t, http.StatusBadRequest, first.Status)
	require.Equal(t, "first", first.JSON(t)["error"].(map[string]any)["requestId"])

	retry := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -10}`, "Idempotency-Key", "k1", "X-Request-Id", "retry")
	require.Equal(t, "true", retry.Header.Get("Idempotent-Replayed"))
	require.Equal(t, "retry", retry.Header.Get("X-Request-Id"))
	require.Equal(t, string(first.Body), string(retry.Body), "the stored answer, with the deciding request's id")
}

// TestErrorParam: error.param names the field at fault: a path parameter
// by its name in the route, a body field, a batch's change, a query
// parameter; and nothing when no one field is at fault.
func TestErrorParam(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	const bal = "/api/users/1/balance"
	cases := []struct {
		method, path string
		body         any
		status       int
		param        string
	}{
		// Path parameters.
		{http.MethodGet, "/api/users/abc", nil, 400, "id"},
		{http.MethodGet, "/api/users/0/transactions", nil, 400, "id"},
		{http.MethodPut, "/api/users/-1/balance", `{"amount": 1}`, 400, "id"},
		{http.MethodGet, "/api/users/99999999999999999999/holds", nil, 400, "id"},
		{http.MethodGet, "/api/holds/nope", nil, 400, "holdId"},
		{http.MethodPost, "/api/holds/nope/capture", nil, 400, "holdId"},
		{http.MethodPost, "/api/holds/0192f0c45d1e7c3a9b7e1f2a3b4c5d6e/void", nil, 400, "holdId"},
		{http.MethodGet, "/api/transactions/nope", nil, 400, "entryId"},
		{http.MethodGet, "/api/checkpoints/x", nil, 400, "checkpointId"},
		// Body fields.
		{http.MethodPut, bal, `{"amount": 0.001}`, 400, "amount"},
		{http.MethodPut, bal, `{"amount": 0}`, 400, "amount"},
		{http.MethodPut, bal, `{}`, 400, "amount"},
		{http.MethodPut, bal, `{"amount": "ten"}`, 400, "amount"},
		{http.MethodPut, bal, `{"amount": 1, "memo": "x"}`, 400, "memo"},
		{http.MethodPut, bal, `{"amount": 1, "description": 5}`, 400, "description"},
		{http.MethodPut, bal, `{"amount": 1, "amount": 2}`, 400, "amount"},
		{http.MethodPut, bal, `{"amount": 1, "description": "` + strings.Repeat("x", 501) + `"}`, 400, "description"},
		{http.MethodPost, "/api/users", `{"balance": -1}`, 400, "balance"},
		{http.MethodPost, "/api/users", `{"id": "7"}`, 400, "id"},
		{http.MethodPost, "/api/transfers", `{"toUserId": 2, "amount": 1}`, 400, "fromUserId"},
		{http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 1, "amount": 1}`, 400, "toUserId"},
		{http.MethodPost, "/api/reversals", `{"transactionId": "x"}`, 400, "transactionId"},
		{http.MethodPost, "/api/users/1/holds", `{"amount": 1, "expiresAt": "tomorrow"}`, 400, "expiresAt"},
		{http.MethodPost, "/api/holds/0192f0c4-5d1e-7c3a-9b7e-1f2a3b4c5d6e/capture", `{"amount": -1}`, 400, "amount"},
		{http.MethodPost, "/api/batches", `{"changes": [{"userId": 1, "amount": 1}, {"userId": 2, "amount": 1, "fee": 1}]}`, 400, "changes[1]"},
		{http.MethodPost, "/api/batches", `{"changes": [{"userId": 1, "amount": 1}, {"userId": 99, "amount": 1}]}`, 404, "changes[1]"},
		// Query parameters.
		{http.MethodGet, "/api/users/1/transactions?limit=0", nil, 400, "limit"},
		{http.MethodGet, "/api/users/1/holds?cursor=x", nil, 400, "cursor"},
		// No one field at fault.
		{http.MethodPut, bal, `[1]`, 400, ""},
		{http.MethodPut, bal, `{"amount": 1} {}`, 400, ""},
		{http.MethodPut, bal, `{"amount": -100}`, 400, ""},
		{http.MethodGet, "/api/users/99", nil, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			e := r.JSON(t)["error"].(map[string]any)
			if tc.param == "" {
				require.NotContains(t, e, "param", "%s", r.Body)
				return
			}
			require.Equal(t, tc.param, e["param"], "%s", r.Body)
		})
	}
}

// TestMethodNotAllowed: a wrong method is 405 in the envelope with an
// Allow header that lists the path's methods, HEAD wherever GET is; each
// method it lists is one the path answers to.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 2)
	cases := []struct{ method, path, allow string }{
		{http.MethodDelete, "/api/users", "POST"},
		{http.MethodHead, "/api/users", "POST"},
		{http.MethodPost, "/api/users/1", "GET, HEAD"},
		{http.MethodDelete, "/api/users/1/balance", "GET, HEAD, PUT"},
		{http.MethodPatch, "/api/users/1/holds", "GET, HEAD, POST"},
		{http.MethodGet, "/api/holds/0192f0c4-5d1e-7c3a-9b7e-1f2a3b4c5d6e/capture", "POST"},
		{http.MethodPut, "/api/transfers", "POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodPut, "/openapi.yaml", "GET, HEAD"},
		{"BREW", "/api/events", "GET, HEAD"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, nil) // the harness checks the envelope
			require.Equal(t, http.StatusMethodNotAllowed, r.Status, "%s", r.Body)
			require.Equal(t, tc.allow, r.Header.Get("Allow"))
			if tc.method != http.MethodHead {
				require.Equal(t, "method_not_allowed", r.ErrorType(t))
				require.Contains(t, r.JSON(t)["error"].(map[string]any)["message"], "allowed: "+tc.allow)
			}
			for m := range strings.SplitSeq(tc.allow, ", ") {
				got := s.send(t, false, m, tc.path, nil)
				require.NotEqual(t, http.StatusMethodNotAllowed, got.Status, "%s %s is listed in Allow", m, tc.path)
			}
		})
	}
}
