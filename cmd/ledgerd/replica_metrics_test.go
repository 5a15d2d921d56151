package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
)

// TestReplicaMetrics: the read-replica gauges are exported when
// DATABASE_READ_URL is set, and only then. The "replica" here is the
// primary itself, which ledgerd takes as current (not in recovery).
func TestReplicaMetrics(t *testing.T) {
	t.Parallel()
	t.Run("configured", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig(dbtest.NewURL(t))
		cfg.ReadURL, cfg.ReadMaxLag = cfg.DatabaseURL, 10*time.Second
		base := serveWith(t, cfg)
		var inUse, lag float64
		var lagOK bool
		require.Eventually(t, func() bool {
			text := scrape(t, base)
			inUse, _ = sample(t, text, "ledger_read_replica_in_use", nil)
			lag, lagOK = sample(t, text, "ledger_read_replica_lag_seconds", nil)
			return inUse == 1 && lagOK
		}, 10*time.Second, 100*time.Millisecond, "the replica is sampled at scrape time and put in use")
		require.GreaterOrEqual(t, lag, float64(0))
		require.Less(t, lag, float64(10))
	})
	t.Run("not configured", func(t *testing.T) {
		t.Parallel()
		text := scrape(t, serveWith(t, testConfig(dbtest.NewURL(t))))
		_, ok := sample(t, text, "ledger_read_replica_in_use", nil)
		require.False(t, ok, "no replica, no replica gauges")
		_, ok = sample(t, text, "ledger_read_replica_lag_seconds", nil)
		require.False(t, ok)
	})
}
