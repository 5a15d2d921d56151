package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
)

// TestReadReplicaUnreachable: a read replica that never answers (a closed
// port) leaves every read to the primary, with no as-of recorded, and is
// reported down; without a replica none is reported.
func TestReadReplicaUnreachable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := newPool(t, 10)
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/ledger?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	down, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(down.Close)

	l := ledger.New(primary, ledger.Options{ReadPool: down})
	_, err = l.CreateUser(ctx, ledger.NewUser{ID: 1, Balance: 500})
	require.NoError(t, err)

	rctx, origin := ledger.WithReadOrigin(ctx)
	page, err := l.FindEntries(rctx, ledger.EntryFilter{UserID: 1, Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	at := time.Now()
	b, err := l.FindBalanceAt(rctx, 1, &at)
	require.NoError(t, err)
	require.EqualValues(t, 500, b.Balance)
	_, served := origin.AsOf()
	require.False(t, served, "no read may claim the replica")

	st := l.ReplicaStatus(ctx)
	require.True(t, st.Configured)
	require.False(t, st.InUse)
	require.Equal(t, "down", st.Reason)

	require.False(t, ledger.New(primary, ledger.Options{}).ReplicaStatus(ctx).Configured)
}
