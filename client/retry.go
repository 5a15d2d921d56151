package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds how a call is retried. A call is retried when no
// complete answer came (a transport error: refused or dropped connection,
// timeout of one attempt) and on 429, 502, 503 and 504, and never once its
// context has ended. Every write carries an Idempotency-Key that each
// retry sends again, so a write the server committed before the answer was
// lost is answered from its stored outcome, not applied twice.
//
// The wait before retry n (1, 2, …) is a random duration between half and
// all of min(MaxBackoff, MinBackoff × 2^(n−1)); when the answer had a
// Retry-After header, the wait is that long at least, plus up to
// MinBackoff. The call gives up, returning the last attempt's error, after
// MaxAttempts attempts, or when the next wait would end past MaxElapsed
// since the first attempt or past the context's deadline.
type RetryPolicy struct {
	// MaxAttempts is the most attempts of a call, the first included; 1
	// turns retries off. 0: 5.
	MaxAttempts int
	// MaxElapsed bounds the time from the first attempt to the start of
	// the last one. 0: 30 s.
	MaxElapsed time.Duration
	// MinBackoff is the first retry's backoff. 0: 100 ms.
	MinBackoff time.Duration
	// MaxBackoff caps the backoff (not a server's Retry-After, which
	// MaxElapsed bounds). 0: 5 s.
	MaxBackoff time.Duration
}

// DefaultRetryPolicy is the policy of a client made without
// WithRetryPolicy.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, MaxElapsed: 30 * time.Second,
	MinBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second}

// withDefaults fills p's zero fields from DefaultRetryPolicy.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = DefaultRetryPolicy.MaxElapsed
	}
	if p.MinBackoff <= 0 {
		p.MinBackoff = DefaultRetryPolicy.MinBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultRetryPolicy.MaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.MinBackoff)
	return p
}

// errTooLarge marks an answer past maxBody: sending again would not help.
var errTooLarge = errors.New("answer too large")

// retriable reports whether the answer of an attempt calls for another:
// no complete answer, or a status that means "try again later".
func retriable(ctx context.Context, a attempt) bool {
	if ctx.Err() != nil {
		return false
	}
	if a.err != nil {
		return !errors.Is(a.err, errTooLarge)
	}
	switch a.status {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// wait returns how long to wait before attempt n+1, elapsed after the
// first attempt began, or false when the policy or ctx's deadline leaves
// no room for it.
func (p RetryPolicy) wait(ctx context.Context, n int, elapsed time.Duration, a attempt) (time.Duration, bool) {
	if n >= p.MaxAttempts {
		return 0, false
	}
	backoff := p.MaxBackoff
	if n-1 < 32 {
		backoff = min(p.MaxBackoff, p.MinBackoff<<(n-1))
	}
	if backoff <= 0 { // shifted past int64
		backoff = p.MaxBackoff
	}
	d := backoff/2 + jitter(backoff/2)
	if ra, ok := retryAfter(a.header, time.Now()); ok {
		d = ra + jitter(p.MinBackoff)
	}
	if elapsed+d > p.MaxElapsed {
		return 0, false
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return 0, false
	}
	return d, true
}

// jitter is a random duration in [0, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1) //nolint:gosec // G404: spreading retries needs no unpredictability
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3).
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
