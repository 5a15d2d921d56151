package dbtest_test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/migrations/dbtest"
)

// TestClusterFailover makes a primary with a synchronous standby, writes,
// reads the write on the standby, crashes the primary, promotes the standby
// and writes through the multi-host URL; the clusters are gone afterwards.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	var ports []int
	t.Run("cluster", func(t *testing.T) {
		c := dbtest.NewCluster(t, dbtest.ClusterOptions{Standbys: 1, Synchronous: true})
		primary, standby := c.Primary(), c.Standby(0)
		ports = []int{primary.Port, standby.Port}
		require.NotEqual(t, primary.Port, standby.Port)
		require.Equal(t, "postgres://postgres@127.0.0.1:"+strconv.Itoa(primary.Port)+"/ledger?sslmode=disable", primary.URL("ledger"))

		c.CreateDatabase(t, "ledger")
		exec1(t, primary.URL("ledger"), "INSERT INTO users (id) VALUES (1)")
		// Synchronous: the commit is on the standby already; replayed soon.
		c.WaitReplayed(t, standby)
		require.Equal(t, int64(1), count(t, standby.URL("ledger"), "SELECT count(*) FROM users"))
		require.True(t, scalar[bool](t, standby.URL("ledger"), "SELECT pg_is_in_recovery()"))

		c.Stop(t, primary, "immediate")
		c.Promote(t, standby)
		require.Equal(t, standby, c.Primary())

		url := c.MultiHostURL("ledger")
		require.Contains(t, url, "target_session_attrs=read-write")
		exec1(t, url, "INSERT INTO users (id) VALUES (2)")
		require.Equal(t, int64(2), count(t, standby.URL("ledger"), "SELECT count(*) FROM users"))
		require.Equal(t, int64(standby.Port), count(t, url, "SELECT inet_server_port()"))
	})
	out, err := exec.Command("pg_lsclusters").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, p := range ports {
		require.NotContains(t, string(out), "ldgt_"+strconv.Itoa(p), "cluster left behind")
	}
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

func count(t *testing.T, url, sql string) int64 { return scalar[int64](t, url, sql) }

func scalar[T any](t *testing.T, url, sql string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v T
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&v), strings.TrimSpace(sql))
	return v
}

// TestNewClusterFailsLoudlyWithoutTools: without pg_createcluster, a test
// that asks for a cluster fails; it never skips.
func TestNewClusterFailsLoudlyWithoutTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	tb := &fatalTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != tb {
				panic(r)
			}
		}()
		dbtest.NewCluster(tb, dbtest.ClusterOptions{Standbys: 1})
	}()
	require.Contains(t, tb.fatal, "pg_createcluster")
}

// fatalTB records Fatalf and stops the helper there, like FailNow would.
type fatalTB struct {
	testing.TB
	fatal string
}

func (f *fatalTB) Helper()        {}
func (f *fatalTB) Cleanup(func()) {}
func (f *fatalTB) Skip(...any)    { f.Fatalf("skipped") }
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(f)
}
