package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
)

// TestVerifyOnReplica: `ledgerd verify` only reads (one repeatable-read,
// read-only snapshot), so it runs against a streaming standby: the whole
// ledger's check moves off the primary by pointing DATABASE_URL at a
// replica (docs/operations.md, "Read replicas").
func TestVerifyOnReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := dbtest.NewCluster(t, dbtest.ClusterOptions{Standbys: 1})
	c.CreateDatabase(t, "ledger")
	pool, err := pgxpool.New(ctx, c.Primary().URL("ledger"))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Options{})
	for id := int64(1); id <= 3; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: money.Cents(id * 100)})
		require.NoError(t, err)
	}
	c.WaitReplayed(t, c.Standby(0))

	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"ledgerd", "verify"}, env(map[string]string{"DATABASE_URL": c.Standby(0).URL("ledger")}), &out, io.Discard))
	require.Contains(t, out.String(), "verify: OK: 3 users, 3 entries, 0 failed")
}
