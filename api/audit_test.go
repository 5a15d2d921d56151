package api_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
)

func TestTransfer(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 100}`).Status)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 2}`).Status)

	r := s.do(t, http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": "30.50", "description": "rent", "reference": "r-7"}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	var body struct {
		Data struct {
			ID         string           `json:"id"`
			FromUserID int64            `json:"fromUserId"`
			ToUserID   int64            `json:"toUserId"`
			Amount     json.Number      `json:"amount"`
			Entries    []map[string]any `json:"entries"`
		} `json:"data"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &body))
	require.Equal(t, "30.50", body.Data.Amount.String())
	require.Len(t, body.Data.Entries, 2)
	require.Equal(t, "transfer_out", body.Data.Entries[0]["type"])
	require.Equal(t, "transfer_in", body.Data.Entries[1]["type"])
	require.Equal(t, body.Data.ID, body.Data.Entries[0]["transferId"])
	require.Equal(t, body.Data.ID, body.Data.Entries[1]["transferId"])
	require.Contains(t, string(s.do(t, http.MethodGet, "/api/users/1", nil).Body), `"balance":69.50,`)
	require.Contains(t, string(s.do(t, http.MethodGet, "/api/users/2", nil).Body), `"balance":30.50,`)

	before := snapshot(t, s.Pool)
	for _, c := range []struct {
		body   string
		status int
		typ    string
	}{
		{`{"fromUserId": 1, "toUserId": 1, "amount": 1}`, 400, "validation_error"},
		{`{"fromUserId": 1, "toUserId": 2, "amount": 0}`, 400, "validation_error"},
		{`{"fromUserId": 1, "toUserId": 2, "amount": -1}`, 400, "validation_error"},
		{`{"fromUserId": 1, "toUserId": 2, "amount": 0.001}`, 400, "validation_error"},
		{`{"fromUserId": 1, "amount": 1}`, 400, "validation_error"},
		{`{"fromUserId": "1", "toUserId": 2, "amount": 1}`, 400, "validation_error"},
		{`{"fromUserId": 1, "toUserId": 2, "amount": 1, "currency": "EUR"}`, 400, "validation_error"},
		{`{"fromUserId": 1, "toUserId": 3, "amount": 1}`, 404, "not_found"},
		{`{"fromUserId": 3, "toUserId": 1, "amount": 1}`, 404, "not_found"},
		{`{"fromUserId": 2, "toUserId": 1, "amount": 30.51}`, 400, "insufficient_funds"},
	} {
		r := s.do(t, http.MethodPost, "/api/transfers", c.body)
		require.Equal(t, c.status, r.Status, "%s → %s", c.body, r.Body)
		require.Equal(t, c.typ, r.ErrorType(t), c.body)
	}
	require.Equal(t, before, snapshot(t, s.Pool), "refused transfers change nothing")
}

func TestBalanceAtAndVerify(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	time.Sleep(10 * time.Millisecond)
	mid := time.Now()
	time.Sleep(10 * time.Millisecond)
	require.Equal(t, http.StatusOK, s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 5.25}`).Status)

	r := s.do(t, http.MethodGet, "/api/users/1/balance?at="+url.QueryEscape(mid.UTC().Format(time.RFC3339Nano)), nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"balance":10,`)
	require.Contains(t, string(r.Body), `"seq":1}`)
	r = s.do(t, http.MethodGet, "/api/users/1/balance", nil)
	require.Contains(t, string(r.Body), `"balance":15.25,`)
	r = s.do(t, http.MethodGet, "/api/users/1/balance?at=2000-01-01T00:00:00Z", nil)
	require.Contains(t, string(r.Body), `"balance":0,`)
	require.Equal(t, http.StatusBadRequest, s.do(t, http.MethodGet, "/api/users/1/balance?at=yesterday", nil).Status)
	require.Equal(t, http.StatusNotFound, s.do(t, http.MethodGet, "/api/users/2/balance", nil).Status)

	r = s.do(t, http.MethodGet, "/api/users/1/verify", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.JSONEq(t, `{"id":1,"ok":true,"entries":2,"ledgerBalance":15.25,"projectedBalance":15.25,"chainValid":true}`,
		string(mustField(t, r.Body, "data")))

	_, err := s.Pool.Exec(context.Background(), `ALTER TABLE entries DISABLE TRIGGER entries_no_update_delete;
UPDATE entries SET amount = 600 WHERE user_id = 1 AND seq = 2;
ALTER TABLE entries ENABLE TRIGGER entries_no_update_delete;`)
	require.NoError(t, err)
	r = s.do(t, http.MethodGet, "/api/users/1/verify", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.JSONEq(t, `{"id":1,"ok":false,"entries":2,"ledgerBalance":16,"projectedBalance":15.25,"chainValid":false,"firstBadSeq":2}`,
		string(mustField(t, r.Body, "data")))
	require.Equal(t, http.StatusNotFound, s.do(t, http.MethodGet, "/api/users/2/verify", nil).Status)
}

func mustField(t *testing.T, body []byte, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	return m[name]
}

// TestAuth checks every route with no token, a bad token, an auditor's and
// a writer's: 401, 401, GET only, everything.
func TestAuth(t *testing.T) {
	t.Parallel()
	const writer, auditor = "writer-secret", "auditor-secret"
	tokens, err := api.ParseTokens("writer:" + api.HashToken(writer) + ", auditor:" + api.HashToken(auditor))
	require.NoError(t, err)
	pool := newPool(t, 4)
	s := newTestServerWith(t, pool, api.Deps{Tokens: tokens})
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	r := s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 100}`, bearer(writer)...)
	require.Equal(t, http.StatusCreated, r.Status)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 2}`, bearer(writer)...).Status)
	entry := string(mustField(t, s.do(t, http.MethodGet, "/api/users/1/transactions", nil, bearer(auditor)...).Body, "data"))
	var entries []struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(entry), &entries))
	hold := func() string { // a pending hold for each capture and void below
		return s.do(t, http.MethodPost, "/api/users/1/holds", `{"amount": 1}`, bearer(writer)...).hold(t).ID
	}
	captured, voided := hold(), hold()
	transfer := string(mustField(t, s.do(t, http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": 1}`, bearer(writer)...).Body, "data"))
	var reversible struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(transfer), &reversible))

	routes := []struct {
		method, path, body string
		write              bool
		writerStatus       int // 0: 201 for a POST, else 200
	}{
		{http.MethodGet, "/api/users/1", "", false, 0},
		{http.MethodGet, "/api/users/1/balance", "", false, 0},
		{http.MethodGet, "/api/users/1/transactions", "", false, 0},
		{http.MethodGet, "/api/users/1/verify", "", false, 0},
		{http.MethodGet, "/api/transactions/" + entries[0].ID, "", false, 0},
		{http.MethodPost, "/api/users", `{}`, true, 0},
		{http.MethodPut, "/api/users/1/balance", `{"amount": 1}`, true, 0},
		{http.MethodPost, "/api/transfers", `{"fromUserId": 1, "toUserId": 2, "amount": 1}`, true, 0},
		{http.MethodGet, "/api/users/1/holds", "", false, 0},
		{http.MethodGet, "/api/holds/" + captured, "", false, 0},
		{http.MethodPost, "/api/users/1/holds", `{"amount": 1}`, true, 0},
		{http.MethodPost, "/api/holds/" + captured + "/capture", `{}`, true, http.StatusOK},
		{http.MethodPost, "/api/holds/" + voided + "/void", `{}`, true, http.StatusOK},
		{http.MethodPost, "/api/batches", `{"changes": [{"userId": 1, "amount": 1}, {"userId": 2, "amount": 1}]}`, true, 0},
		{http.MethodPost, "/api/reversals", `{"transactionId": "` + reversible.ID + `"}`, true, 0},
		{http.MethodGet, "/api/users/1/transactions?order=asc&afterSeq=1&minAmount=-5&maxAmount=5", "", false, 0},
		{http.MethodGet, "/api/events?limit=10", "", false, 0},
		{http.MethodGet, "/api/users/1/events?afterSeq=0", "", false, 0},
	}
	for _, rt := range routes {
		var body any
		if rt.body != "" {
			body = rt.body
		}
		for _, c := range []struct {
			name    string
			headers []string
			status  int
		}{
			{"no token", nil, http.StatusUnauthorized},
			{"bad token", bearer("guess"), http.StatusUnauthorized},
			{"not bearer", []string{"Authorization", "Basic " + writer}, http.StatusUnauthorized},
			{"auditor", bearer(auditor), map[bool]int{true: http.StatusForbidden, false: http.StatusOK}[rt.write]},
			{"writer", bearer(writer), cmp.Or(rt.writerStatus, map[bool]int{true: map[bool]int{true: http.StatusCreated, false: http.StatusOK}[rt.method == http.MethodPost], false: http.StatusOK}[rt.write])},
		} {
			t.Run(fmt.Sprintf("%s %s %s", rt.method, rt.path, c.name), func(t *testing.T) {
				r := s.do(t, rt.method, rt.path, body, c.headers...)
				require.Equal(t, c.status, r.Status, "%s", r.Body)
				switch c.status {
				case http.StatusUnauthorized:
					require.Equal(t, "unauthorized", r.ErrorType(t))
					require.Equal(t, `Bearer realm="ledgerd"`, r.Header.Get("WWW-Authenticate"))
				case http.StatusForbidden:
					require.Equal(t, "forbidden", r.ErrorType(t))
				}
			})
		}
	}
	// Operations endpoints need no token.
	for _, p := range []string{"/healthz", "/readyz", "/openapi.yaml"} {
		require.Equal(t, http.StatusOK, s.do(t, http.MethodGet, p, nil).Status, p)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	s := newTestServerWith(t, newPool(t, 2), api.Deps{RateLimitRPS: 1})
	first := s.do(t, http.MethodGet, "/api/users/1", nil)
	require.Equal(t, http.StatusNotFound, first.Status, "the first request passes")
	r := s.do(t, http.MethodGet, "/api/users/1", nil)
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	require.Equal(t, "rate_limited", r.ErrorType(t))
	require.Equal(t, "1", r.Header.Get("Retry-After"))
	require.Equal(t, http.StatusOK, s.do(t, http.MethodGet, "/healthz", nil).Status, "not limited outside /api")

	// With auth on, failed attempts are limited per address too: token
	// guessing slows to the limit.
	tokens, err := api.ParseTokens("writer:" + api.HashToken("secret"))
	require.NoError(t, err)
	a := newTestServerWith(t, newPool(t, 2), api.Deps{Tokens: tokens, RateLimitRPS: 1})
	require.Equal(t, http.StatusUnauthorized, a.do(t, http.MethodGet, "/api/users/1", nil, "Authorization", "Bearer guess-1").Status)
	r = a.do(t, http.MethodGet, "/api/users/1", nil, "Authorization", "Bearer guess-2")
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	require.Equal(t, "rate_limited", r.ErrorType(t))
}
