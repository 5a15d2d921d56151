package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
)

// TestOriginalExamples replays the original request's README: its routes
// and response shapes keep working.
func TestOriginalExamples(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)

	r := s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10000}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Equal(t, "/api/users/1", r.Header.Get("Location"))

	r = s.do(t, http.MethodGet, "/api/users/1", nil)
	require.Equal(t, http.StatusOK, r.Status)
	m := r.JSON(t)
	require.Equal(t, true, m["success"])
	data := m["data"].(map[string]any)
	require.ElementsMatch(t, []string{"id", "balance", "available", "held", "createdAt", "updatedAt"}, keys(data),
		"the original's fields, and the contract's available and held")
	require.Equal(t, json.Number("1"), data["id"])
	require.Equal(t, json.Number("10000"), data["balance"])
	require.Equal(t, json.Number("10000"), data["available"])
	require.Equal(t, json.Number("0"), data["held"])

	r = s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 100.50}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"balance":10100.50,`, "exact decimal, written from the integer")
	m = r.JSON(t)
	require.Equal(t, "Balance updated successfully", m["message"])
	data = m["data"].(map[string]any)
	require.ElementsMatch(t, []string{"id", "balance", "updatedAt", "entry"}, keys(data))
	require.Equal(t, json.Number("2"), data["entry"].(map[string]any)["seq"])
	_, err := time.Parse(time.RFC3339Nano, data["updatedAt"].(string))
	require.NoError(t, err)

	r = s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": -20000}`)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.JSONEq(t, `{"success":false,"error":{"message":"Insufficient funds","code":400,"type":"insufficient_funds","requestId":"`+
		r.Header.Get("X-Request-Id")+`"}}`, string(r.Body), "the original's error, and the contract's requestId")

	r = s.do(t, http.MethodGet, "/api/users/1", nil)
	require.Contains(t, string(r.Body), `"balance":10100.50`)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)

	r := s.do(t, http.MethodPost, "/api/users", nil) // no body at all
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"balance":0,`)
	first := r.JSON(t)["data"].(map[string]any)["id"].(json.Number)

	r = s.do(t, http.MethodPost, "/api/users", `{"balance": "0.05"}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"balance":0.05,`)
	second := r.JSON(t)["data"].(map[string]any)["id"].(json.Number)
	require.NotEqual(t, first, second)

	// A zero balance writes no entry; a positive one writes an opening entry.
	r = s.do(t, http.MethodGet, "/api/users/"+second.String()+"/transactions", nil)
	require.Equal(t, http.StatusOK, r.Status)
	entries := r.JSON(t)["data"].([]any)
	require.Len(t, entries, 1)
	require.Equal(t, "opening", entries[0].(map[string]any)["type"])
	r = s.do(t, http.MethodGet, "/api/users/"+first.String()+"/transactions", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Empty(t, r.JSON(t)["data"])

	r = s.do(t, http.MethodPost, "/api/users", `{"id": 42, "balance": 1e2}`)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"id":42,"balance":100,`)
	r = s.do(t, http.MethodPost, "/api/users", `{"id": 42}`)
	require.Equal(t, http.StatusConflict, r.Status)
	require.Equal(t, "conflict", r.ErrorType(t))
}

func TestTransactions(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 5, "balance": 100}`).Status)
	var mid time.Time
	for i := 1; i <= 9; i++ {
		amount := fmt.Sprintf(`{"amount": %d, "description": "step %d", "reference": "ref-%d"}`, map[bool]int{true: 3, false: -1}[i%3 == 0], i, i)
		r := s.do(t, http.MethodPut, "/api/users/5/balance", amount)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		if i == 5 {
			mid = time.Now()
			time.Sleep(5 * time.Millisecond)
		}
	}
	// 10 entries: opening, then withdrawals and deposits. Walk them in pages of 3.
	var seqs []int64
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		path := "/api/users/5/transactions?limit=3"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := s.do(t, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var body struct {
			Data       []ledger.Entry   `json:"-"`
			RawData    []map[string]any `json:"data"`
			Pagination struct {
				NextCursor *string `json:"nextCursor"`
				HasMore    bool    `json:"hasMore"`
			} `json:"pagination"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &body))
		for _, e := range body.RawData {
			seqs = append(seqs, int64(e["seq"].(float64)))
			ids = append(ids, e["id"].(string))
		}
		if !body.Pagination.HasMore {
			require.Nil(t, body.Pagination.NextCursor)
			break
		}
		require.NotNil(t, body.Pagination.NextCursor)
		cursor = *body.Pagination.NextCursor
		require.Less(t, page, 4)
	}
	require.Equal(t, []int64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, seqs, "newest first, no entry twice, none missed")

	r := s.do(t, http.MethodGet, "/api/users/5/transactions?type=deposit", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Len(t, r.JSON(t)["data"], 3)
	r = s.do(t, http.MethodGet, "/api/users/5/transactions?type=withdrawal&limit=1000", nil)
	require.Len(t, r.JSON(t)["data"], 6)

	at := url.QueryEscape(mid.UTC().Format(time.RFC3339Nano))
	before := s.do(t, http.MethodGet, "/api/users/5/transactions?to="+at, nil)
	after := s.do(t, http.MethodGet, "/api/users/5/transactions?from="+at, nil)
	require.Len(t, before.JSON(t)["data"], 6, "opening + 5 changes before the instant")
	require.Len(t, after.JSON(t)["data"], 4)

	r = s.do(t, http.MethodGet, "/api/transactions/"+ids[0], nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	e := r.JSON(t)["data"].(map[string]any)
	require.Equal(t, json.Number("10"), e["seq"])
	require.Equal(t, "step 9", e["description"])
	require.Equal(t, "ref-9", e["reference"])
	require.Equal(t, json.Number("103"), e["balanceAfter"]) // 100, then 6 withdrawals of 1 and 3 deposits of 3
	require.Len(t, e["hash"], 64)
}

// TestBadInput sends every kind of bad request of the contract and checks
// its status and type, and that none of them changed anything.
func TestBadInput(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 4)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	entry := s.do(t, http.MethodGet, "/api/users/1/transactions", nil).JSON(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	before := snapshot(t, s.Pool)

	const put = http.MethodPut
	bal := "/api/users/1/balance"
	long := strings.Repeat("é", 501)
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		typ                string
	}{
		{"three fraction digits", put, bal, `{"amount": 0.001}`, nil, 400, "validation_error"},
		{"three digits as string", put, bal, `{"amount": "1.005"}`, nil, 400, "validation_error"},
		{"exponent below cents", put, bal, `{"amount": 1e-3}`, nil, 400, "validation_error"},
		{"zero", put, bal, `{"amount": 0}`, nil, 400, "validation_error"},
		{"zero as string", put, bal, `{"amount": "0.00"}`, nil, 400, "validation_error"},
		{"NaN", put, bal, `{"amount": "NaN"}`, nil, 400, "validation_error"},
		{"Infinity", put, bal, `{"amount": "Infinity"}`, nil, 400, "validation_error"},
		{"text", put, bal, `{"amount": "ten"}`, nil, 400, "validation_error"},
		{"empty string", put, bal, `{"amount": ""}`, nil, 400, "validation_error"},
		{"hex", put, bal, `{"amount": "0x10"}`, nil, 400, "validation_error"},
		{"too large", put, bal, `{"amount": 1000000000000.01}`, nil, 400, "validation_error"},
		{"too large negative", put, bal, `{"amount": -1e13}`, nil, 400, "validation_error"},
		{"huge exponent", put, bal, `{"amount": 1e999999999}`, nil, 400, "validation_error"},
		{"twenty digits", put, bal, `{"amount": 99999999999999999999}`, nil, 400, "validation_error"},
		{"missing amount", put, bal, `{}`, nil, 400, "validation_error"},
		{"null amount", put, bal, `{"amount": null}`, nil, 400, "validation_error"},
		{"boolean amount", put, bal, `{"amount": true}`, nil, 400, "validation_error"},
		{"array amount", put, bal, `{"amount": [1]}`, nil, 400, "validation_error"},
		{"object amount", put, bal, `{"amount": {"v": 1}}`, nil, 400, "validation_error"},
		{"description too long", put, bal, `{"amount": 1, "description": "` + long + `"}`, nil, 400, "validation_error"},
		{"description not a string", put, bal, `{"amount": 1, "description": 5}`, nil, 400, "validation_error"},
		{"reference too long", put, bal, `{"amount": 1, "reference": "` + strings.Repeat("r", 201) + `"}`, nil, 400, "validation_error"},
		{"unknown field", put, bal, `{"amount": 1, "currency": "EUR"}`, nil, 400, "validation_error"},
		{"trailing data", put, bal, `{"amount": 1} {"amount": 1}`, nil, 400, "validation_error"},
		{"trailing garbage", put, bal, `{"amount": 1}x`, nil, 400, "validation_error"},
		{"malformed JSON", put, bal, `{"amount": `, nil, 400, "validation_error"},
		{"not an object", put, bal, `[{"amount": 1}]`, nil, 400, "validation_error"},
		{"empty body", put, bal, ``, nil, 400, "validation_error"},
		{"huge body", put, bal, `{"amount": 1, "description": "` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "payload_too_large"},
		{"text/plain", put, bal, `{"amount": 1}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"form", put, bal, `amount=1`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"latin1 charset", put, bal, `{"amount": 1}`, []string{"Content-Type", "application/json; charset=latin1"}, 415, "unsupported_media_type"},
		{"id 0", put, "/api/users/0/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"id -1", put, "/api/users/-1/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"id abc", put, "/api/users/abc/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"id too big", put, "/api/users/99999999999999999999/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"id above int64", put, "/api/users/9223372036854775808/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"id leading zero", put, "/api/users/01/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"id plus sign", put, "/api/users/+1/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"id fraction", put, "/api/users/1.5/balance", `{"amount": 1}`, nil, 400, "validation_error"},
		{"unknown user", put, "/api/users/2/balance", `{"amount": 1}`, nil, 404, "not_found"},
		{"insufficient funds", put, bal, `{"amount": -10.01}`, nil, 400, "insufficient_funds"},
		{"get id abc", http.MethodGet, "/api/users/abc", nil, nil, 400, "validation_error"},
		{"get unknown user", http.MethodGet, "/api/users/2", nil, nil, 404, "not_found"},
		{"create id 0", http.MethodPost, "/api/users", `{"id": 0}`, nil, 400, "validation_error"},
		{"create id -1", http.MethodPost, "/api/users", `{"id": -1}`, nil, 400, "validation_error"},
		{"create id fraction", http.MethodPost, "/api/users", `{"id": 1.5}`, nil, 400, "validation_error"},
		{"create id string", http.MethodPost, "/api/users", `{"id": "7"}`, nil, 400, "validation_error"},
		{"create id too big", http.MethodPost, "/api/users", `{"id": 99999999999999999999}`, nil, 400, "validation_error"},
		{"create negative balance", http.MethodPost, "/api/users", `{"balance": -1}`, nil, 400, "validation_error"},
		{"create balance precision", http.MethodPost, "/api/users", `{"balance": 0.001}`, nil, 400, "validation_error"},
		{"create existing", http.MethodPost, "/api/users", `{"id": 1, "balance": 5}`, nil, 409, "conflict"},
		{"create unknown field", http.MethodPost, "/api/users", `{"name": "x"}`, nil, 400, "validation_error"},
		{"create text/plain", http.MethodPost, "/api/users", `{}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"list limit 0", http.MethodGet, "/api/users/1/transactions?limit=0", nil, nil, 400, "validation_error"},
		{"list limit 1001", http.MethodGet, "/api/users/1/transactions?limit=1001", nil, nil, 400, "validation_error"},
		{"list limit abc", http.MethodGet, "/api/users/1/transactions?limit=abc", nil, nil, 400, "validation_error"},
		{"list bad cursor", http.MethodGet, "/api/users/1/transactions?cursor=nonsense", nil, nil, 400, "validation_error"},
		{"list bad from", http.MethodGet, "/api/users/1/transactions?from=yesterday", nil, nil, 400, "validation_error"},
		{"list from after to", http.MethodGet, "/api/users/1/transactions?from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z", nil, nil, 400, "validation_error"},
		{"list bad type", http.MethodGet, "/api/users/1/transactions?type=refund", nil, nil, 400, "validation_error"},
		{"list unknown user", http.MethodGet, "/api/users/2/transactions", nil, nil, 404, "not_found"},
		{"entry id not a uuid", http.MethodGet, "/api/transactions/123", nil, nil, 400, "validation_error"},
		{"unknown entry", http.MethodGet, "/api/transactions/00000000-0000-7000-8000-000000000000", nil, nil, 404, "not_found"},
		{"unknown route", http.MethodGet, "/api/accounts", nil, nil, 404, "not_found"},
		{"wrong method", http.MethodDelete, "/api/users/1", nil, nil, 405, "method_not_allowed"},
		{"wrong method on entry", http.MethodPost, "/api/transactions/" + entry, `{}`, nil, 405, "method_not_allowed"},
		// Hostile input (docs/reliability.md): JSON that means two things,
		// text PostgreSQL or the canonical encoding cannot hold, query
		// strings and instants that are not what they seem.
		{"duplicate amount", put, bal, `{"amount":1,"amount":-5}`, nil, 400, "validation_error"},
		{"upper-case name", put, bal, `{"AMOUNT":7}`, nil, 400, "validation_error"},
		{"case variant beside the name", put, bal, `{"amount":1,"Amount":3}`, nil, 400, "validation_error"},
		{"case-folded long s", put, bal, `{"amount":1,"deſcription":"x"}`, nil, 400, "validation_error"},
		{"duplicate description", put, bal, `{"amount":1,"description":"a","description":"b"}`, nil, 400, "validation_error"},
		{"NUL in description", put, bal, `{"amount":1,"description":"a\u0000b"}`, nil, 400, "validation_error"},
		{"NUL in reference", put, bal, `{"amount":1,"reference":"\u0000"}`, nil, 400, "validation_error"},
		{"invalid UTF-8", put, bal, "{\"amount\":1,\"description\":\"\xff\xfe\"}", nil, 400, "validation_error"},
		{"unpaired surrogate", put, bal, `{"amount":1,"description":"\ud800"}`, nil, 400, "validation_error"},
		{"NUL in a transfer", http.MethodPost, "/api/transfers", `{"fromUserId":1,"toUserId":2,"amount":1,"description":"\u0000"}`, nil, 400, "validation_error"},
		{"duplicate in a transfer", http.MethodPost, "/api/transfers", `{"fromUserId":1,"toUserId":2,"toUserId":1,"amount":1}`, nil, 400, "validation_error"},
		{"create with body null", http.MethodPost, "/api/users", `null`, nil, 400, "validation_error"},
		{"create with a string body", http.MethodPost, "/api/users", `"x"`, nil, 400, "validation_error"},
		{"create with an array body", http.MethodPost, "/api/users", `[]`, nil, 400, "validation_error"},
		{"create with duplicate ids", http.MethodPost, "/api/users", `{"id":5,"id":6}`, nil, 400, "validation_error"},
		{"balance with body null", put, bal, `null`, nil, 400, "validation_error"},
		{"list badly escaped cursor", http.MethodGet, "/api/users/1/transactions?cursor=%%%%", nil, nil, 400, "validation_error"},
		{"list limit twice", http.MethodGet, "/api/users/1/transactions?limit=1&limit=2", nil, nil, 400, "validation_error"},
		{"list empty cursor", http.MethodGet, "/api/users/1/transactions?cursor=", nil, nil, 400, "validation_error"},
		{"list from after the zero to", http.MethodGet, "/api/users/1/transactions?from=2030-01-01T00:00:00Z&to=0001-01-01T00:00:00Z", nil, nil, 400, "validation_error"},
		{"list offset +24:00", http.MethodGet, "/api/users/1/transactions?from=2025-01-01T00:00:00%2B24:00", nil, nil, 400, "validation_error"},
		{"balance at offset +00:60", http.MethodGet, "/api/users/1/balance?at=2025-01-01T00:00:00%2B00:60", nil, nil, 400, "validation_error"},
		{"balance at twice", http.MethodGet, "/api/users/1/balance?at=2025-01-01T00:00:00Z&at=2026-01-01T00:00:00Z", nil, nil, 400, "validation_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, tc.body, tc.headers...)
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			require.Equal(t, tc.typ, r.ErrorType(t))
			require.NotEmpty(t, r.Header.Get("X-Request-Id"))
			require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
			if r.Status == http.StatusMethodNotAllowed {
				require.NotEmpty(t, r.Header.Get("Allow"))
			}
		})
	}
	require.Equal(t, before, snapshot(t, s.Pool), "a rejected request changes nothing")
}

// snapshot summarizes the users, entries and outbox tables.
func snapshot(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var out string
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT concat_ws(' | ',
		(SELECT count(*) || ' users ' || coalesce(sum(balance), 0) || ' ' || coalesce(max(updated_at)::text, '') || ' ' || coalesce(sum(seq), 0) FROM users),
		(SELECT count(*) || ' entries ' || coalesce(max(created_at)::text, '') FROM entries),
		(SELECT count(*) || ' outbox' FROM outbox))`).Scan(&out))
	return out
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 2)
	r := s.do(t, http.MethodGet, "/healthz", nil, "X-Request-Id", "abc-123")
	require.Equal(t, "abc-123", r.Header.Get("X-Request-Id"))
	r = s.do(t, http.MethodGet, "/healthz", nil)
	require.Len(t, r.Header.Get("X-Request-Id"), 24)
	r = s.do(t, http.MethodGet, "/healthz", nil, "X-Request-Id", "has spaces and\ttabs")
	require.Len(t, r.Header.Get("X-Request-Id"), 24, "an unsafe id is replaced")
}

func TestHealthAndSpec(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 2)
	r := s.do(t, http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, r.Status)
	r = s.do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "up", r.JSON(t)["data"].(map[string]any)["database"])
	r = s.do(t, http.MethodGet, "/openapi.yaml", nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Contains(t, string(r.Body), "openapi:")
}

// TestDatabaseUnavailable shows that an absent database, or a pool with no
// free connection, gives a prompt 503 in the envelope, never a hung request.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("absent", func(t *testing.T) {
		t.Parallel()
		cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/ledger?sslmode=disable&connect_timeout=2")
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		s := newTestServerOn(t, pool, ledger.Options{AcquireTimeout: time.Second})
		for _, c := range []struct{ method, path, body string }{
			{http.MethodGet, "/api/users/1", ""},
			{http.MethodPut, "/api/users/1/balance", `{"amount": 1}`},
			{http.MethodPost, "/api/users", `{}`},
			{http.MethodGet, "/api/users/1/transactions", ""},
		} {
			var body any
			if c.body != "" {
				body = c.body
			}
			r := s.do(t, c.method, c.path, body)
			require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s %s: %s", c.method, c.path, r.Body)
			require.Equal(t, "unavailable", r.ErrorType(t))
			require.Equal(t, "1", r.Header.Get("Retry-After"))
			require.NotContains(t, string(r.Body), "127.0.0.1", "no internals in the response")
		}
		r := s.do(t, http.MethodGet, "/readyz", nil)
		require.Equal(t, http.StatusServiceUnavailable, r.Status)
		r = s.do(t, http.MethodGet, "/healthz", nil)
		require.Equal(t, http.StatusOK, r.Status, "the process is alive")
	})
	t.Run("pool exhausted", func(t *testing.T) {
		t.Parallel()
		pool := newTestServer(t, 1).Pool
		s := newTestServerOn(t, pool, ledger.Options{AcquireTimeout: 200 * time.Millisecond})
		conn, err := pool.Acquire(context.Background())
		require.NoError(t, err)
		defer conn.Release()
		r := s.do(t, http.MethodGet, "/api/users/1", nil)
		require.Equal(t, http.StatusServiceUnavailable, r.Status)
		require.Equal(t, "unavailable", r.ErrorType(t))
	})
}

// TestUserQueueFull: past USER_QUEUE_LIMIT waiting changes for one user, a
// change is answered 429 rate_limited with Retry-After, at once, and writes
// nothing.
func TestUserQueueFull(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 4)
	s := newTestServerOn(t, pool, ledger.Options{UserQueueLimit: 1})
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 10}`).Status)
	ctx := context.Background()

	// Hold the row lock so that the first change stays in flight and the
	// second waits in the queue.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM users WHERE id = 1 FOR UPDATE`)
	require.NoError(t, err)
	answers := make(chan response, 2)
	put := func() { answers <- s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`) }
	go put()
	require.Eventually(t, func() bool {
		var waiting int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
		return waiting == 1
	}, 10*time.Second, 5*time.Millisecond)
	go put()
	time.Sleep(100 * time.Millisecond) // let the second change reach the queue
	before := snapshot(t, pool)

	r := s.do(t, http.MethodPut, "/api/users/1/balance", `{"amount": 1}`)
	require.Equal(t, http.StatusTooManyRequests, r.Status, "%s", r.Body)
	require.Equal(t, "rate_limited", r.ErrorType(t))
	require.Equal(t, "1", r.Header.Get("Retry-After"))
	require.Equal(t, before, snapshot(t, pool))

	require.NoError(t, tx.Rollback(ctx))
	for range 2 {
		require.Equal(t, http.StatusOK, (<-answers).Status)
	}
	require.Contains(t, string(s.do(t, http.MethodGet, "/api/users/1", nil).Body), `"balance":12,`)
}
