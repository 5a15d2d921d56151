package client

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"0":                             0,
		"1":                             time.Second,
		" 120 ":                         2 * time.Minute,
		"99999999999":                   24 * time.Hour, // capped, no overflow
		"Tue, 01 Apr 2025 12:00:30 GMT": 30 * time.Second,
		"Tue, 01 Apr 2025 11:00:00 GMT": 0, // past
	} {
		got, ok := retryAfter(http.Header{"Retry-After": {v}}, now)
		require.True(t, ok, v)
		require.Equal(t, want, got, v)
	}
	for _, v := range []string{"", "-1", "soon", "1.5"} {
		_, ok := retryAfter(http.Header{"Retry-After": {v}}, now)
		require.False(t, ok, v)
	}
}

// TestBackoff checks the waits: capped exponential, jittered within
// [half, all] of the backoff, Retry-After as a floor, and the bounds.
func TestBackoff(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 100, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}.withDefaults()
	ctx := context.Background()
	for n, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 40: time.Second, 99: time.Second} {
		for range 200 {
			d, ok := p.wait(ctx, n, 0, attempt{})
			require.True(t, ok)
			require.GreaterOrEqual(t, d, ceiling/2, "retry %d", n)
			require.LessOrEqual(t, d, ceiling, "retry %d", n)
		}
	}
	d, ok := p.wait(ctx, 1, 0, attempt{header: http.Header{"Retry-After": {"3"}}})
	require.True(t, ok)
	require.GreaterOrEqual(t, d, 3*time.Second)
	require.LessOrEqual(t, d, 3*time.Second+p.MinBackoff)

	_, ok = p.wait(ctx, 100, 0, attempt{})
	require.False(t, ok, "MaxAttempts")
	_, ok = p.wait(ctx, 1, p.MaxElapsed-time.Millisecond, attempt{header: http.Header{"Retry-After": {"1"}}})
	require.False(t, ok, "MaxElapsed")
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, ok = p.wait(short, 1, 0, attempt{header: http.Header{"Retry-After": {"1"}}})
	require.False(t, ok, "the context's deadline")

	require.Equal(t, DefaultRetryPolicy, RetryPolicy{}.withDefaults())
	require.Equal(t, 1, RetryPolicy{MaxAttempts: 1}.withDefaults().MaxAttempts)
}
