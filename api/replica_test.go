package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/api"
	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
)

// TestReadReplica runs ledgerd on a primary with one streaming standby as
// its read replica (READ_MAX_LAG 2s), on real clusters: the routed reads
// carry X-Data-As-Of and come from the standby (with its replay paused,
// they miss a change the primary has); current balances and writes stay
// on the primary; a replica further behind than the maximum lag, or
// stopped, sends the reads to the primary, which answers 200 without the
// header.
func TestReadReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := dbtest.NewCluster(t, dbtest.ClusterOptions{Standbys: 1})
	c.CreateDatabase(t, "ledger")
	standby := c.Standby(0)
	primaryPool := openClusterPool(t, c.Primary().URL("ledger"))
	readPool := openClusterPool(t, standby.URL("ledger"))
	l := ledger.New(primaryPool, ledger.Options{ReadPool: readPool, ReadMaxLag: 2 * time.Second})
	srv := newTestServerDeps(t, primaryPool, api.Deps{Ledger: l})

	require.Equal(t, http.StatusCreated, srv.do(t, "POST", "/api/users", map[string]any{"id": 1, "balance": 100}).Status)
	require.Equal(t, http.StatusOK, srv.do(t, "PUT", "/api/users/1/balance", map[string]any{"amount": 5}).Status)
	cp, err := l.MakeCheckpoint(ctx)
	require.NoError(t, err)
	c.WaitReplayed(t, standby)
	waitReplica(t, srv, true, "")

	routed := []string{
		"/api/users/1/transactions",
		"/api/users/1/balance?at=" + time.Now().UTC().Format(time.RFC3339Nano),
		"/api/users/1/statement",
		"/api/users/1/events",
		"/api/events",
		"/api/users/1/verify",
		"/api/checkpoints",
		"/api/checkpoints/" + strconv.FormatInt(cp.ID, 10),
		"/api/users/1/checkpoint-proof",
	}
	t.Run("routed reads carry X-Data-As-Of", func(t *testing.T) {
		for _, path := range routed {
			r := srv.do(t, "GET", path, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
			asOf, err := time.Parse(time.RFC3339Nano, r.Header.Get("X-Data-As-Of"))
			require.NoError(t, err, "%s: X-Data-As-Of %q", path, r.Header.Get("X-Data-As-Of"))
			require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`, r.Header.Get("X-Data-As-Of"))
			require.WithinDuration(t, time.Now(), asOf, 3*time.Second, path)
		}
		for _, path := range []string{"/api/users/1", "/api/users/1/balance", "/api/users/1/holds"} {
			r := srv.do(t, "GET", path, nil)
			require.Equal(t, http.StatusOK, r.Status, path)
			require.Empty(t, r.Header.Get("X-Data-As-Of"), path)
		}
	})

	t.Run("an idle primary does not make a current replica lag", func(t *testing.T) {
		// The last replayed commit grows old while nothing is written; the
		// replica is current all the same and stays in use.
		time.Sleep(2500 * time.Millisecond)
		st := l.ReplicaStatus(ctx)
		require.True(t, st.InUse, "%+v", st)
		require.Less(t, st.Lag, time.Second, "%+v", st)
		r := srv.do(t, "GET", "/api/users/1/transactions", nil)
		require.NotEmpty(t, r.Header.Get("X-Data-As-Of"))
	})

	t.Run("served by the standby, writes and current balances by the primary", func(t *testing.T) {
		pauseReplay(t, readPool)
		require.Equal(t, http.StatusOK, srv.do(t, "PUT", "/api/users/1/balance", map[string]any{"amount": 7}).Status)
		cur := srv.do(t, "GET", "/api/users/1", nil)
		require.Equal(t, json.Number("112"), dataField(t, cur, "balance"))
		require.Empty(t, cur.Header.Get("X-Data-As-Of"))
		// Within the maximum lag, history still comes from the paused standby.
		hist := srv.do(t, "GET", "/api/users/1/transactions", nil)
		require.NotEmpty(t, hist.Header.Get("X-Data-As-Of"))
		require.Len(t, dataList(t, hist), 2, "the standby has not replayed the third entry")
		// A user the standby has not replayed yet is no 404: the primary answers.
		require.Equal(t, http.StatusCreated, srv.do(t, "POST", "/api/users", map[string]any{"id": 2, "balance": 3}).Status)
		hist2 := srv.do(t, "GET", "/api/users/2/transactions", nil)
		require.Len(t, dataList(t, hist2), 1)
		require.Empty(t, hist2.Header.Get("X-Data-As-Of"))
		require.Equal(t, http.StatusNotFound, srv.do(t, "GET", "/api/users/3/transactions", nil).Status)
	})

	t.Run("a replica past READ_MAX_LAG sends reads to the primary", func(t *testing.T) {
		waitReplica(t, srv, false, "lagging")
		for _, path := range routed {
			r := srv.do(t, "GET", path, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
			require.Empty(t, r.Header.Get("X-Data-As-Of"), path)
		}
		require.Len(t, dataList(t, srv.do(t, "GET", "/api/users/1/transactions", nil)), 3)
		_, err := readPool.Exec(ctx, `SELECT pg_wal_replay_resume()`)
		require.NoError(t, err)
		waitReplica(t, srv, true, "")
		hist := srv.do(t, "GET", "/api/users/1/transactions", nil)
		require.NotEmpty(t, hist.Header.Get("X-Data-As-Of"))
		require.Len(t, dataList(t, hist), 3)
	})

	t.Run("a stopped replica sends reads to the primary", func(t *testing.T) {
		c.Stop(t, standby, "immediate")
		// The first read may find the replica gone before any sample does.
		for _, path := range routed {
			r := srv.do(t, "GET", path, nil)
			require.Equal(t, http.StatusOK, r.Status, "%s: %s", path, r.Body)
			require.Empty(t, r.Header.Get("X-Data-As-Of"), path)
		}
		require.Equal(t, http.StatusOK, srv.do(t, "PUT", "/api/users/1/balance", map[string]any{"amount": 1}).Status)
		waitReplica(t, srv, false, "down")
	})
}

func openClusterPool(t testing.TB, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// pauseReplay pauses the standby's replay and waits until it is paused.
func pauseReplay(t testing.TB, standby *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	_, err := standby.Exec(ctx, `SELECT pg_wal_replay_pause()`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var state string
		return standby.QueryRow(ctx, `SELECT pg_get_wal_replay_pause_state()`).Scan(&state) == nil && state == "paused"
	}, 10*time.Second, 10*time.Millisecond)
}

// waitReplica waits until /readyz reports the replica in use (or not,
// for reason).
func waitReplica(t testing.TB, srv *testServer, inUse bool, reason string) {
	t.Helper()
	var last string
	ok := assertEventually(10*time.Second, func() bool {
		r := srv.do(t, "GET", "/readyz", nil)
		if r.Status != http.StatusOK {
			return false
		}
		var body struct {
			Data struct {
				Replica struct {
					InUse  bool   `json:"inUse"`
					Reason string `json:"reason"`
				} `json:"replica"`
			} `json:"data"`
		}
		if json.Unmarshal(r.Body, &body) != nil {
			return false
		}
		last = string(r.Body)
		return body.Data.Replica.InUse == inUse && body.Data.Replica.Reason == reason
	})
	require.True(t, ok, "replica inUse=%v reason=%q never reported; last /readyz: %s", inUse, reason, last)
}

func assertEventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func dataField(t testing.TB, r response, field string) any {
	t.Helper()
	d := decodeNumbers(t, r.Body)["data"].(map[string]any)
	return d[field]
}

func dataList(t testing.TB, r response) []any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	return decodeNumbers(t, r.Body)["data"].([]any)
}

func decodeNumbers(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&m))
	return m
}
