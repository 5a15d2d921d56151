package main

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBacklogStats checks which /readyz readings count as a backlog and
// that the greatest are kept.
func TestBacklogStats(t *testing.T) {
	t.Parallel()
	age := func(v float64) *float64 { return &v }
	at := time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)
	var zero time.Time
	var s backlogStats
	require.False(t, s.add(relayState{Enabled: false, Pending: 9, OldestPendingAgeSeconds: age(9), BacklogAt: &at}), "relay off")
	require.False(t, s.add(relayState{Enabled: true, Pending: 9}), "no backlog shown")
	require.False(t, s.add(relayState{Enabled: true, Pending: 9, OldestPendingAgeSeconds: age(9), BacklogAt: &zero}), "never read")
	require.True(t, s.add(relayState{Enabled: true, Pending: 120, OldestPendingAgeSeconds: age(0.25), BacklogAt: &at}))
	require.True(t, s.add(relayState{Enabled: true, Pending: 30, OldestPendingAgeSeconds: age(0.75), BacklogAt: &at}))
	require.True(t, s.add(relayState{Enabled: true, Pending: 0, OldestPendingAgeSeconds: age(0), BacklogAt: &at}))
	require.Equal(t, backlogStats{Samples: 3, MaxPending: 120, MaxOldestAgeSecs: 0.75}, s)
}

// readyzServer is the trivial server whose /readyz answers body(n) to its
// nth read (from 1).
func readyzServer(tb testing.TB, body func(n int64) string) string {
	tb.Helper()
	var reads atomic.Int64
	return startTrivial(tb, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				next.ServeHTTP(w, r)
				return
			}
			reply(w, http.StatusOK, []byte(`{"success":true,"data":{"status":"ready","database":"up","relay":`+body(reads.Add(1))+`}}`))
		})
	})
}

// TestBacklogReport checks the relay_backlog of a run: the greatest
// backlog seen, and no field at all when the server's relay is off or
// shows no backlog.
func TestBacklogReport(t *testing.T) {
	t.Parallel()
	args := []string{"-scenario", "spread", "-n", "50", "-c", "5", "-users", "2"}
	t.Run("seen", func(t *testing.T) {
		t.Parallel()
		url := readyzServer(t, func(n int64) string {
			if n == 1 { // the read before the load
				return `{"enabled":true,"role":"leader","published":7,"pending":40,"oldestPendingAgeSeconds":0.8,"backlogAt":"2025-04-01T12:00:00Z"}`
			}
			return `{"enabled":true,"role":"leader","published":9,"pending":3,"oldestPendingAgeSeconds":0.1,"backlogAt":"2025-04-01T12:00:01Z"}`
		})
		rep, err := runJSON(t, url, args...)
		require.NoError(t, err)
		require.NotNil(t, rep.RelayBacklog)
		require.Equal(t, int64(40), rep.RelayBacklog.MaxPending)
		require.InDelta(t, 0.8, rep.RelayBacklog.MaxOldestAgeSecs, 0)
		require.GreaterOrEqual(t, rep.RelayBacklog.Samples, 2)
	})
	for name, relay := range map[string]string{
		"relay off":  `{"enabled":false,"note":"RELAY_ENABLED=false"}`,
		"never read": `{"enabled":true,"role":"starting","published":0,"pending":0,"oldestPendingAgeSeconds":0,"backlogAt":"0001-01-01T00:00:00Z"}`,
		"not shown":  `{"enabled":true,"role":"leader","published":5}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := runJSON(t, readyzServer(t, func(int64) string { return relay }), args...)
			require.NoError(t, err)
			require.True(t, rep.OK)
			require.Nil(t, rep.RelayBacklog)
		})
	}
	t.Run("unanswered", func(t *testing.T) {
		t.Parallel()
		url := startTrivial(t, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/readyz" {
					fail(w, http.StatusServiceUnavailable, "unavailable", "The database does not answer")
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		rep, err := runJSON(t, url, args...)
		require.NoError(t, err, "a failed read of /readyz is not a failed request")
		require.Nil(t, rep.RelayBacklog)
	})
}

// TestWatchBacklogTicks checks that the sampler reads /readyz again and
// again while the load runs, and once more when stopped.
func TestWatchBacklogTicks(t *testing.T) {
	t.Parallel()
	fifth := make(chan struct{})
	url := readyzServer(t, func(n int64) string {
		if n == 5 {
			close(fifth)
		}
		return `{"enabled":true,"published":1,"pending":` + strconv.FormatInt(n, 10) + `,"oldestPendingAgeSeconds":0.5,"backlogAt":"2025-04-01T12:00:00Z"}`
	})
	e, err := newEnv(options{URL: url, C: 1, Timeout: 5 * time.Second}, io.Discard)
	require.NoError(t, err)
	defer e.close()
	e.backlogEvery = time.Millisecond
	stop := e.watchBacklog(context.Background())
	<-fifth
	stats := stop()
	require.NotNil(t, stats)
	// Reads go one at a time: reads 1 to 4 were counted before the fifth
	// was served (which stop may cancel), and stop reads once more.
	require.GreaterOrEqual(t, stats.Samples, 5)
	require.GreaterOrEqual(t, stats.MaxPending, int64(6), "the read after stop, the sixth or later")
}
