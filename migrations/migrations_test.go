package migrations_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
)

// TestUpDownUp proves every down migration undoes its up migration cleanly.
func TestUpDownUp(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t) // already migrated up

	m, err := migrations.New(url)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })

	v, dirty, err := m.Version()
	require.NoError(t, err)
	require.False(t, dirty)
	require.Equal(t, migrations.Latest(), v, "the template is at the newest migration")

	require.NoError(t, m.Down(int(v)))
	v0, _, err := m.Version()
	require.NoError(t, err)
	require.Zero(t, v0)
	require.Equal(t, []string{"schema_migrations"}, tables(t, url))

	require.NoError(t, m.Up())
	v2, dirty, err := m.Version()
	require.NoError(t, err)
	require.False(t, dirty)
	require.Equal(t, v, v2)
	require.Subset(t, tables(t, url), []string{"users", "entries", "outbox", "idempotency_keys"})

	require.NoError(t, m.Up(), "Up on an up-to-date database is a no-op")
}

func tables(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return names
}

// TestChecksCiteTheMoneyBounds: the CHECK constraints hold the bounds of
// package money (the one place they are written in Go), so the database's
// second guard is the same rule as the code's.
func TestChecksCiteTheMoneyBounds(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t, 1)
	for name, bounds := range map[string][]money.Cents{
		"users_balance_range":   {money.MaxBalance},
		"entries_balance_range": {money.MaxBalance},
		"entries_amount_range":  {-money.MaxAmount, money.MaxAmount},
	} {
		var def string
		require.NoError(t, pool.QueryRow(context.Background(),
			`SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1`, name).Scan(&def))
		for _, b := range bounds {
			require.Contains(t, def, strconv.FormatInt(int64(b), 10), name)
		}
	}
}
