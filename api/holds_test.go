package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// holdData is a hold as the API shows it.
type holdData struct {
	ID             string       `json:"id"`
	UserID         int64        `json:"userId"`
	Amount         json.Number  `json:"amount"`
	CapturedAmount *json.Number `json:"capturedAmount"`
	Status         string       `json:"status"`
	CaptureEntry   *struct {
		ID  string `json:"id"`
		Seq int64  `json:"seq"`
	} `json:"captureEntry"`
}

func (r response) hold(t *testing.T) holdData {
	t.Helper()
	var env struct{ Data holdData }
	require.NoError(t, json.Unmarshal(r.Body, &env), "%s", r.Body)
	return env.Data
}

// userFigures returns balance, available and held of a user as text.
func userFigures(t *testing.T, s *testServer, id int) (string, string, string) {
	t.Helper()
	d := s.do(t, http.MethodGet, fmt.Sprintf("/api/users/%d", id), nil).JSON(t)["data"].(map[string]any)
	return fmt.Sprint(d["balance"]), fmt.Sprint(d["available"]), fmt.Sprint(d["held"])
}

// TestHoldsOverHTTP is the contract's scenario through the API: 1,000
// concurrent holds of 10 on 5,000 place exactly 500; then withdrawals are
// refused; then captures and voids race on each hold, one winner each.
func TestHoldsOverHTTP(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 16)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 5000}`).Status)

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		holds  []string
		counts = map[string]int{}
	)
	for range 1000 {
		wg.Go(func() {
			r := s.send(t, false, http.MethodPost, "/api/users/1/holds", `{"amount": 10}`)
			mu.Lock()
			defer mu.Unlock()
			counts[fmt.Sprint(r.Status)]++
			if r.Status == http.StatusCreated {
				holds = append(holds, r.hold(t).ID)
			}
		})
	}
	wg.Wait()
	require.Equal(t, map[string]int{"201": 500, "400": 500}, counts)
	balance, available, held := userFigures(t, s, 1)
	require.Equal(t, []string{"5000", "0", "5000"}, []string{balance, available, held})

	refused := 0
	for range 50 {
		wg.Go(func() {
			r := s.send(t, false, http.MethodPut, "/api/users/1/balance", `{"amount": -1}`)
			mu.Lock()
			defer mu.Unlock()
			if r.Status == http.StatusBadRequest {
				refused++
			}
		})
	}
	wg.Wait()
	require.Equal(t, 50, refused)

	wins := map[string]int{}
	for _, id := range holds[:100] {
		for _, action := range []string{"capture", "void"} {
			wg.Go(func() {
				r := s.send(t, false, http.MethodPost, "/api/holds/"+id+"/"+action, `{}`)
				mu.Lock()
				defer mu.Unlock()
				wins[fmt.Sprint(action, " ", r.Status)]++
			})
		}
	}
	wg.Wait()
	require.Equal(t, 100, wins["capture 200"]+wins["void 200"])
	require.Equal(t, 100, wins["capture 409"]+wins["void 409"])
	balance, available, held = userFigures(t, s, 1)
	require.Equal(t, fmt.Sprint(5000-10*wins["capture 200"]), balance)
	require.Equal(t, fmt.Sprint(1000-10*wins["capture 200"]), available, "balance − the 400 holds still pending")
	require.Equal(t, fmt.Sprint(4000), held, "400 holds still pending")
	requireAllVerify(t, s)
}

// TestHoldRoutes walks the routes: place, read, list, partial capture,
// a second capture (409 naming the status), void of another hold, the
// idempotent replay of a placement, and the bad inputs, each refused
// without a write.
func TestHoldRoutes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 8)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 100}`).Status)

	r := s.do(t, http.MethodPost, "/api/users/1/holds", `{"amount": 60, "description": "card auth", "reference": "auth-1"}`, "Idempotency-Key", "hold-1")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	h := r.hold(t)
	require.Equal(t, "pending", h.Status)
	require.Nil(t, h.CapturedAmount)
	require.Equal(t, "/api/holds/"+h.ID, r.Header.Get("Location"))
	again := s.do(t, http.MethodPost, "/api/users/1/holds", `{"amount": 60, "description": "card auth", "reference": "auth-1"}`, "Idempotency-Key", "hold-1")
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, r.Body, again.Body)
	_, available, held := userFigures(t, s, 1)
	require.Equal(t, []string{"40", "60"}, []string{available, held}, "one hold, not two")

	before := snapshot(t, s.Pool)
	later := time.Now().Add(31 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		typ                      string
	}{
		{"amount zero", http.MethodPost, "/api/users/1/holds", `{"amount": 0}`, 400, "validation_error"},
		{"amount negative", http.MethodPost, "/api/users/1/holds", `{"amount": -5}`, 400, "validation_error"},
		{"amount fraction", http.MethodPost, "/api/users/1/holds", `{"amount": 0.001}`, 400, "validation_error"},
		{"no amount", http.MethodPost, "/api/users/1/holds", `{}`, 400, "validation_error"},
		{"more than available", http.MethodPost, "/api/users/1/holds", `{"amount": 40.01}`, 400, "insufficient_funds"},
		{"expiry in the past", http.MethodPost, "/api/users/1/holds", `{"amount": 1, "expiresAt": "2020-01-01T00:00:00Z"}`, 400, "validation_error"},
		{"expiry past 30 days", http.MethodPost, "/api/users/1/holds", `{"amount": 1, "expiresAt": "` + later + `"}`, 400, "validation_error"},
		{"expiry not a time", http.MethodPost, "/api/users/1/holds", `{"amount": 1, "expiresAt": "tomorrow"}`, 400, "validation_error"},
		{"unknown user", http.MethodPost, "/api/users/2/holds", `{"amount": 1}`, 404, "not_found"},
		{"unknown field", http.MethodPost, "/api/users/1/holds", `{"amount": 1, "currency": "EUR"}`, 400, "validation_error"},
		{"capture above the hold", http.MethodPost, "/api/holds/" + h.ID + "/capture", `{"amount": 60.01}`, 400, "validation_error"},
		{"capture zero", http.MethodPost, "/api/holds/" + h.ID + "/capture", `{"amount": 0}`, 400, "validation_error"},
		{"capture unknown hold", http.MethodPost, "/api/holds/0195f2a0-7000-7000-8000-0000000000c1/capture", `{}`, 404, "not_found"},
		{"void unknown hold", http.MethodPost, "/api/holds/0195f2a0-7000-7000-8000-0000000000c1/void", ``, 404, "not_found"},
		{"hold id not a uuid", http.MethodPost, "/api/holds/42/void", ``, 400, "validation_error"},
		{"get unknown hold", http.MethodGet, "/api/holds/0195f2a0-7000-7000-8000-0000000000c1", ``, 404, "not_found"},
		{"list bad status", http.MethodGet, "/api/users/1/holds?status=open", ``, 400, "validation_error"},
		{"list bad cursor", http.MethodGet, "/api/users/1/holds?cursor=x", ``, 400, "validation_error"},
		{"list unknown user", http.MethodGet, "/api/users/2/holds", ``, 404, "not_found"},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		r := s.do(t, tc.method, tc.path, body)
		require.Equal(t, tc.status, r.Status, "%s: %s", tc.name, r.Body)
		require.Equal(t, tc.typ, r.ErrorType(t), tc.name)
	}
	require.Equal(t, before, snapshot(t, s.Pool), "a refused request changes nothing")

	r = s.do(t, http.MethodPost, "/api/holds/"+h.ID+"/capture", `{"amount": 25}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	c := r.hold(t)
	require.Equal(t, "captured", c.Status)
	require.Equal(t, json.Number("25"), *c.CapturedAmount)
	entry := s.do(t, http.MethodGet, "/api/transactions/"+c.CaptureEntry.ID, nil).JSON(t)["data"].(map[string]any)
	require.Equal(t, h.ID, entry["holdId"])
	require.Equal(t, json.Number("-25"), entry["amount"])
	r = s.do(t, http.MethodPost, "/api/holds/"+h.ID+"/capture", `{}`)
	require.Equal(t, http.StatusConflict, r.Status)
	require.Contains(t, string(r.Body), "The hold is captured")

	v := s.do(t, http.MethodPost, "/api/users/1/holds", `{"amount": 5}`).hold(t)
	r = s.do(t, http.MethodPost, "/api/holds/"+v.ID+"/void", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, "voided", r.hold(t).Status)
	balance, available, held := userFigures(t, s, 1)
	require.Equal(t, []string{"75", "75", "0"}, []string{balance, available, held})

	r = s.do(t, http.MethodGet, "/api/users/1/holds?limit=1", nil)
	require.Equal(t, http.StatusOK, r.Status)
	page := r.JSON(t)
	require.Len(t, page["data"], 1)
	require.Equal(t, v.ID, page["data"].([]any)[0].(map[string]any)["id"], "newest first")
	next := page["pagination"].(map[string]any)["nextCursor"].(string)
	r = s.do(t, http.MethodGet, "/api/users/1/holds?limit=1&cursor="+next, nil)
	require.Equal(t, h.ID, r.JSON(t)["data"].([]any)[0].(map[string]any)["id"])
	r = s.do(t, http.MethodGet, "/api/users/1/holds?status=voided", nil)
	require.Len(t, r.JSON(t)["data"], 1)
	require.Equal(t, "captured", s.do(t, http.MethodGet, "/api/holds/"+h.ID, nil).hold(t).Status)
	requireAllVerify(t, s)
}

// TestHoldEvents: each change of a hold reaches the broker once, typed
// ledger.hold.<change>, with the hold after the change as data (the same
// JSON as the API's), the user and hold in the headers, and the capture's
// withdrawal entry event beside it; placed comes before captured.
func TestHoldEvents(t *testing.T) {
	t.Parallel()
	s := newEventServer(t)
	require.Equal(t, http.StatusCreated, s.do(t, http.MethodPost, "/api/users", `{"id": 1, "balance": 100}`).Status)
	h := s.do(t, http.MethodPost, "/api/users/1/holds", `{"amount": 30}`).hold(t)
	r := s.do(t, http.MethodPost, "/api/holds/"+h.ID+"/capture", `{"amount": 10}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var captured struct{ Data json.RawMessage }
	require.NoError(t, json.Unmarshal(r.Body, &captured))

	ds := s.consumer.WaitDistinct(4, time.Minute) // opening, placed, captured, withdrawal
	var kinds []string
	for _, d := range ds {
		kinds = append(kinds, d.RoutingKey)
		if d.RoutingKey != "ledger.hold.captured" {
			continue
		}
		var ev struct {
			Type, Subject string
			Data          json.RawMessage
		}
		require.NoError(t, json.Unmarshal(d.Body, &ev))
		require.Equal(t, "ledger.hold.captured", ev.Type)
		require.Equal(t, "users/1", ev.Subject)
		require.JSONEq(t, string(captured.Data), string(ev.Data), "the event's data is the hold as the API answered it")
		require.Equal(t, int64(1), d.Headers["ledger-user-id"])
		require.Equal(t, h.ID, d.Headers["ledger-hold-id"])
	}
	require.ElementsMatch(t, []string{"ledger.entry.opening", "ledger.hold.placed", "ledger.hold.captured", "ledger.entry.withdrawal"}, kinds)
	placed, done := slices.Index(kinds, "ledger.hold.placed"), slices.Index(kinds, "ledger.hold.captured")
	require.Less(t, placed, done, "placed before captured")
}
