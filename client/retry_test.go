package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/client"
	"github.com/ledgerd/ledgerd/money"
)

// dropper loses the first answer to each Idempotency-Key after the server
// sent it, as a connection reset after the commit would, and records the
// key of every attempt.
type dropper struct {
	mu      sync.Mutex
	dropped map[string]bool
	keys    []string
}

func (d *dropper) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		key := r.Header.Get(client.IdempotencyHeader)
		resp, err := next.RoundTrip(r)
		d.mu.Lock()
		defer d.mu.Unlock()
		d.keys = append(d.keys, key)
		if err != nil || key == "" || d.dropped[key] {
			return resp, err
		}
		d.dropped[key] = true
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return nil, syscall.ECONNRESET
	})
}

// TestRetriedWriteAppliesOnce loses the answer of each write after the
// server committed it: the retry, with the same key, gets the stored
// answer, and the ledger changed once.
func TestRetriedWriteAppliesOnce(t *testing.T) {
	t.Parallel()
	l := startLedgerd(t, config{})
	d := &dropper{dropped: map[string]bool{}}
	c := newClient(t, l.URL, d.wrap)
	ctx := t.Context()

	var resp client.Response
	_, err := c.CreateUser(ctx, client.NewUser{ID: 1, Balance: 100_00}, client.ResponseInto(&resp))
	require.NoError(t, err)
	require.True(t, resp.Replayed)
	up, err := c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: -2_00}, client.ResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, money.Cents(98_00), up.Balance)
	require.Equal(t, 2, resp.Attempts)
	require.True(t, resp.Replayed, "the retry got the stored answer")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	d.mu.Lock()
	keys := append([]string(nil), d.keys...)
	d.mu.Unlock()
	require.Len(t, keys, 4)
	require.Equal(t, keys[0], keys[1], "a retry sends the same key")
	require.Equal(t, keys[2], keys[3])
	require.NotEqual(t, keys[0], keys[2], "each call has a key of its own")
	require.Equal(t, resp.IdempotencyKey, keys[3])

	u, err := c.GetUser(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, money.Cents(98_00), u.Balance, "applied once")
	p, err := c.ListTransactions(ctx, 1, client.TransactionFilter{})
	require.NoError(t, err)
	require.Len(t, p.Data, 2, "the opening entry and one withdrawal")
	require.Equal(t, keys[3], p.Data[0].IdempotencyKey)

	// A refusal is stored too: the retry is refused the same way.
	_, err = c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: -1000_00})
	require.ErrorIs(t, err, client.ErrInsufficientFunds)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	require.True(t, apiErr.Replayed)

	// The caller's own key: its retries and its repeats apply once; the
	// same key with another request is a conflict.
	_, err = c.CreateUser(ctx, client.NewUser{ID: 2})
	require.NoError(t, err)
	rent := client.NewTransfer{FromUserID: 1, ToUserID: 2, Amount: 30_50, Description: "rent"}
	tr, err := c.CreateTransfer(ctx, rent, client.IdempotencyKey("rent-2025-04"), client.ResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, "rent-2025-04", resp.IdempotencyKey)
	require.Equal(t, "rent-2025-04", tr.Entries[0].IdempotencyKey)
	again, err := c.CreateTransfer(ctx, rent, client.IdempotencyKey("rent-2025-04"), client.ResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, tr, again)
	require.Equal(t, 1, resp.Attempts)
	require.True(t, resp.Replayed)
	rent.Amount = 31_00
	_, err = c.CreateTransfer(ctx, rent, client.IdempotencyKey("rent-2025-04"))
	require.ErrorIs(t, err, client.ErrIdempotencyConflict)
	require.NotErrorIs(t, err, client.ErrConflict)
	u, err = c.GetUser(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, money.Cents(30_50), u.Balance)
}

// TestRetryAfterHonoured: a real ledgerd limited to 1 request a second
// answers the second of two quick requests 429 with Retry-After: 1; the
// client waits that long, then succeeds.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	l := startLedgerd(t, config{deps: api.Deps{RateLimitRPS: 1}})
	type sent struct {
		at         time.Time
		status     int
		retryAfter string
	}
	var (
		mu  sync.Mutex
		log []sent
	)
	c := newClient(t, l.URL, func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			at := time.Now()
			resp, err := next.RoundTrip(r)
			require.NoError(t, err)
			mu.Lock()
			log = append(log, sent{at, resp.StatusCode, resp.Header.Get("Retry-After")})
			mu.Unlock()
			return resp, err
		})
	})
	ctx := t.Context()
	_, err := c.CreateUser(ctx, client.NewUser{ID: 1})
	require.NoError(t, err)
	var resp client.Response
	t0 := time.Now()
	u, err := c.GetUser(ctx, 1, client.ResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, int64(1), u.ID)
	require.GreaterOrEqual(t, time.Since(t0), time.Second)
	require.Equal(t, 2, resp.Attempts)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, log, 3)
	require.Equal(t, []int{http.StatusCreated, http.StatusTooManyRequests, http.StatusOK}, []int{log[0].status, log[1].status, log[2].status})
	require.Equal(t, "1", log[1].retryAfter)
	require.GreaterOrEqual(t, log[2].at.Sub(log[1].at), time.Second, "the retry waits what Retry-After asks")
}

// flaky answers the first n attempts of every request with status (and
// Retry-After 0 for 429 and 503, as ledgerd would send 1), then passes
// the request on; it counts the attempts.
func flaky(n int, status int, body string, attempts *atomic.Int64) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		var mu sync.Mutex
		seen := map[string]int{}
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			attempts.Add(1)
			id := r.Method + " " + r.URL.String() + " " + r.Header.Get(client.IdempotencyHeader)
			mu.Lock()
			seen[id]++
			k := seen[id]
			mu.Unlock()
			if k > n {
				return next.RoundTrip(r)
			}
			if r.Body != nil {
				_ = r.Body.Close()
			}
			h := http.Header{"X-Request-Id": {"req-" + strings.Repeat("x", k)}}
			if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
				h.Set("Retry-After", "0")
			}
			return canned(r, status, h, body), nil
		})
	}
}

const unavailableBody = `{"success":false,"error":{"message":"The service is temporarily unavailable; retry later","code":503,"type":"unavailable","requestId":"req-503"}}`

// TestRetriesOn503And502: unavailable answers, from ledgerd or a proxy in
// front of it, are retried, and the write applies once.
func TestRetriesOn503And502(t *testing.T) {
	t.Parallel()
	l := startLedgerd(t, config{})
	var attempts atomic.Int64
	c := newClient(t, l.URL, flaky(2, http.StatusServiceUnavailable, unavailableBody, &attempts))
	ctx := t.Context()
	var resp client.Response
	_, err := c.CreateUser(ctx, client.NewUser{ID: 1, Balance: 5_00}, client.ResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, 3, resp.Attempts)
	require.Equal(t, int64(3), attempts.Load())
	require.False(t, resp.Replayed, "the 503s never reached the server")

	proxy := newClient(t, l.URL, flaky(1, http.StatusBadGateway, "<html><body>502 Bad Gateway</body></html>", &attempts))
	up, err := proxy.UpdateBalance(ctx, 1, client.BalanceChange{Amount: 1_00}, client.ResponseInto(&resp))
	require.NoError(t, err)
	require.Equal(t, 2, resp.Attempts)
	require.Equal(t, money.Cents(6_00), up.Balance)
}

// TestRetriesAreBounded: the client gives up with the last error after
// MaxAttempts, when Retry-After asks for more than MaxElapsed or the
// context's deadline allows, when the context ends while it waits, and at
// once on answers a retry would not change.
func TestRetriesAreBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler()) // never reached: the answers are canned
	t.Cleanup(srv.Close)
	ctx := t.Context()
	policy := client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})

	t.Run("max attempts", func(t *testing.T) {
		t.Parallel()
		var attempts atomic.Int64
		c := newClient(t, srv.URL, flaky(100, http.StatusServiceUnavailable, unavailableBody, &attempts), policy)
		var resp client.Response
		_, err := c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: 1}, client.ResponseInto(&resp))
		require.ErrorIs(t, err, client.ErrUnavailable)
		var apiErr *client.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, http.StatusServiceUnavailable, apiErr.StatusCode)
		require.Equal(t, "req-503", apiErr.RequestID, "error.requestId wins over the header")
		require.ErrorContains(t, err, "gave up after 3 attempts")
		require.Equal(t, int64(3), attempts.Load())
		require.Equal(t, 3, resp.Attempts)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	})

	longWait := func(retryAfter string, attempts *atomic.Int64) func(http.RoundTripper) http.RoundTripper {
		return func(http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				attempts.Add(1)
				return canned(r, http.StatusTooManyRequests, http.Header{"Retry-After": {retryAfter}},
					`{"success":false,"error":{"message":"slow down","code":429,"type":"rate_limited","requestId":"r"}}`), nil
			})
		}
	}
	t.Run("Retry-After past MaxElapsed", func(t *testing.T) {
		t.Parallel()
		var attempts atomic.Int64
		c := newClient(t, srv.URL, longWait("30", &attempts), client.WithRetryPolicy(client.RetryPolicy{MaxElapsed: 2 * time.Second}))
		t0 := time.Now()
		_, err := c.GetUser(ctx, 1)
		require.Less(t, time.Since(t0), time.Second, "no wait that cannot end in time")
		require.ErrorIs(t, err, client.ErrRateLimited)
		var apiErr *client.Error
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, 30*time.Second, apiErr.RetryAfter)
		require.Equal(t, int64(1), attempts.Load())
	})
	t.Run("Retry-After past the deadline", func(t *testing.T) {
		t.Parallel()
		var attempts atomic.Int64
		c := newClient(t, srv.URL, longWait("5", &attempts))
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		t0 := time.Now()
		_, err := c.GetUser(ctx, 1)
		require.Less(t, time.Since(t0), time.Second)
		require.ErrorIs(t, err, client.ErrRateLimited)
		require.Equal(t, int64(1), attempts.Load())
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		t.Parallel()
		var attempts atomic.Int64
		c := newClient(t, srv.URL, longWait("5", &attempts))
		ctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := c.GetUser(ctx, 1)
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, err, client.ErrRateLimited, "the last answer is kept")
		require.Equal(t, int64(1), attempts.Load())
	})
	t.Run("transport errors", func(t *testing.T) {
		t.Parallel()
		closed := httptest.NewServer(http.NotFoundHandler())
		closed.Close()
		var attempts atomic.Int64
		c := newClient(t, closed.URL, func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				attempts.Add(1)
				return next.RoundTrip(r)
			})
		}, policy)
		_, err := c.CreateUser(ctx, client.NewUser{})
		require.ErrorIs(t, err, syscall.ECONNREFUSED)
		require.ErrorContains(t, err, "gave up after 3 attempts")
		require.Equal(t, int64(3), attempts.Load())
	})
	t.Run("not retried", func(t *testing.T) {
		t.Parallel()
		for status, body := range map[int]string{
			http.StatusBadRequest:          `{"success":false,"error":{"message":"Insufficient funds","code":400,"type":"insufficient_funds","requestId":"r"}}`,
			http.StatusInternalServerError: `{"success":false,"error":{"message":"Internal server error","code":500,"type":"internal","requestId":"r"}}`,
			http.StatusConflict:            `{"success":false,"error":{"message":"exists","code":409,"type":"conflict","requestId":"r"}}`,
		} {
			var attempts atomic.Int64
			c := newClient(t, srv.URL, flaky(100, status, body, &attempts), policy)
			_, err := c.CreateUser(ctx, client.NewUser{})
			var apiErr *client.Error
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, status, apiErr.StatusCode)
			require.NotContains(t, err.Error(), "gave up")
			require.Equal(t, int64(1), attempts.Load(), "%d is not retried", status)
		}
	})
	t.Run("retries off", func(t *testing.T) {
		t.Parallel()
		var attempts atomic.Int64
		c := newClient(t, srv.URL, flaky(100, http.StatusServiceUnavailable, unavailableBody, &attempts),
			client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 1}))
		_, err := c.GetUser(ctx, 1)
		require.ErrorIs(t, err, client.ErrUnavailable)
		require.Equal(t, int64(1), attempts.Load())
	})
}

// TestErrorAnswers reads error answers: the envelope's fields, and an
// answer that is not the envelope (a proxy's).
func TestErrorAnswers(t *testing.T) {
	t.Parallel()
	answer := func(status int, h http.Header, body string) *client.Client {
		return newClient(t, "http://ledgerd.invalid", func(http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) { return canned(r, status, h, body), nil })
		}, client.WithRetryPolicy(client.RetryPolicy{MaxAttempts: 1}))
	}
	ctx := t.Context()

	c := answer(http.StatusBadRequest, http.Header{"X-Request-Id": {"from-header"}},
		`{"success":false,"error":{"message":"amount has more than 2 fraction digits","code":400,"type":"validation_error","param":"amount","requestId":"from-body"}}`)
	_, err := c.UpdateBalance(ctx, 1, client.BalanceChange{Amount: 1})
	require.EqualError(t, err, "ledgerd: 400 validation_error: amount has more than 2 fraction digits (param amount, request id from-body)")
	requireParam(t, err, client.ErrValidation, "amount")

	// Before error.requestId, the header gives it.
	c = answer(http.StatusNotFound, http.Header{"X-Request-Id": {"from-header"}},
		`{"success":false,"error":{"message":"User not found","code":404,"type":"not_found"}}`)
	_, err = c.GetUser(ctx, 1)
	var apiErr *client.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "from-header", apiErr.RequestID)

	c = answer(http.StatusBadGateway, http.Header{"Content-Type": {"text/html"}}, "<html>\n<h1>502 Bad Gateway</h1>\n</html>")
	_, err = c.GetUser(ctx, 1)
	require.ErrorIs(t, err, client.ErrUnavailable, "by its status")
	require.ErrorAs(t, err, &apiErr)
	require.Empty(t, apiErr.Type)
	require.Equal(t, "Bad Gateway: <html> <h1>502 Bad Gateway</h1> </html>", apiErr.Message)

	// Every type is its sentinel, and no other.
	sentinels := map[string]error{
		"validation_error": client.ErrValidation, "insufficient_funds": client.ErrInsufficientFunds,
		"unauthorized": client.ErrUnauthorized, "forbidden": client.ErrForbidden, "not_found": client.ErrNotFound,
		"method_not_allowed": client.ErrMethodNotAllowed, "conflict": client.ErrConflict,
		"idempotency_conflict": client.ErrIdempotencyConflict, "payload_too_large": client.ErrPayloadTooLarge,
		"unsupported_media_type": client.ErrUnsupportedMediaType, "rate_limited": client.ErrRateLimited,
		"unavailable": client.ErrUnavailable, "internal": client.ErrInternal,
	}
	for typ := range sentinels {
		e := &client.Error{StatusCode: 400, Type: typ}
		for otherType, other := range sentinels {
			require.Equal(t, otherType == typ, errors.Is(e, other), "%s against %v", typ, other)
		}
	}

	// A success that is not the envelope is an error, not zero values.
	c = answer(http.StatusOK, nil, "<html>hello</html>")
	_, err = c.GetUser(ctx, 1)
	require.ErrorContains(t, err, "not the JSON envelope")
}

// TestAuth sends the bearer token and the User-Agent; 401 and 403 are
// typed and not retried.
func TestAuth(t *testing.T) {
	t.Parallel()
	tokens, err := api.ParseTokens("writer:" + api.HashToken("w-secret") + ",auditor:" + api.HashToken("a-secret"))
	require.NoError(t, err)
	l := startLedgerd(t, config{deps: api.Deps{Tokens: tokens}})
	var (
		mu     sync.Mutex
		agents []string
	)
	spy := func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			agents = append(agents, r.Header.Get("User-Agent"))
			mu.Unlock()
			return next.RoundTrip(r)
		})
	}
	ctx := t.Context()
	writer := newClient(t, l.URL, spy, client.WithToken("w-secret"), client.WithUserAgent("payouts/1.4"))
	_, err = writer.CreateUser(ctx, client.NewUser{ID: 1})
	require.NoError(t, err)
	auditor := newClient(t, l.URL, nil, client.WithToken("a-secret"))
	_, err = auditor.GetUser(ctx, 1)
	require.NoError(t, err)
	_, err = auditor.UpdateBalance(ctx, 1, client.BalanceChange{Amount: 1})
	require.ErrorIs(t, err, client.ErrForbidden)
	var resp client.Response
	_, err = newClient(t, l.URL, nil).GetUser(ctx, 1, client.ResponseInto(&resp))
	require.ErrorIs(t, err, client.ErrUnauthorized)
	require.Equal(t, 1, resp.Attempts)
	_, err = newClient(t, l.URL, nil, client.WithToken("wrong")).GetUser(ctx, 1)
	require.ErrorIs(t, err, client.ErrUnauthorized)
	require.NotContains(t, err.Error(), "wrong", "the token is never printed")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, agents, 1)
	require.Regexp(t, `^payouts/1\.4 ledgerd-go/\S+ \(go1\.\d+`, agents[0])
}

// TestNew refuses base URLs that are not absolute http(s) URLs, and keeps
// a base URL's path in front of /api.
func TestNew(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "localhost:3000", "ftp://example.com", "http://", "http://h/?a=b", "://x"} {
		_, err := client.New(bad)
		require.Error(t, err, "%q", bad)
	}
	var got string
	c := newClient(t, "https://example.com/ledger/", func(http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = r.URL.String()
			return canned(r, http.StatusOK, nil, `{"success":true,"data":{"id":"x"}}`), nil
		})
	})
	_, err := c.GetHold(t.Context(), "a/../../b")
	require.NoError(t, err)
	require.Equal(t, "https://example.com/ledger/api/holds/a%2F..%2F..%2Fb", got, "an id stays one path segment")
}
