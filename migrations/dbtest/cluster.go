package dbtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ledgerd/ledgerd/migrations"
)

// ClusterOptions configures NewCluster.
type ClusterOptions struct {
	Standbys    int  // streaming standbys of the primary (0..2)
	Synchronous bool // the first standby is synchronous
}

// Cluster is a PostgreSQL primary on a port of its own with its standbys,
// made for one test and dropped in tb.Cleanup.
//
// Every node is a Debian cluster named ldgt_<port>, made and driven by
// scripts/pg-cluster.sh (the one source of truth for how test clusters are
// set up); the machine's main cluster is never touched. The tests that use
// it need pg_createcluster and root or the postgres user; without them they
// fail, loudly: they never skip.
type Cluster struct {
	mu       sync.Mutex
	first    Node // the primary made by NewCluster
	primary  Node // the node that takes writes
	standbys []Node
	nodes    []Node // every node, in creation order
}

// Node is one PostgreSQL cluster of a Cluster.
type Node struct{ Port int }

// URL returns the URL of database db on the node.
func (n Node) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", n.Port, db)
}

// scriptTimeout bounds one call of the script.
const scriptTimeout = 2 * time.Minute

// portsMu keeps the parallel tests of one binary from choosing the same port.
var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// NewCluster makes a primary and opts.Standbys streaming standbys of it, on
// free ports, and drops them all when the test ends. With
// opts.Synchronous, the first standby is synchronous: a commit on the
// primary returns only once that standby has it. It is safe for parallel
// tests.
func NewCluster(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	if opts.Standbys < 0 || opts.Standbys > 2 {
		tb.Fatalf("dbtest: NewCluster: Standbys must be 0..2, got %d", opts.Standbys)
	}
	if opts.Synchronous && opts.Standbys == 0 {
		tb.Fatalf("dbtest: NewCluster: Synchronous needs a standby")
	}
	if _, err := exec.LookPath("pg_createcluster"); err != nil {
		tb.Fatalf("dbtest: NewCluster needs Debian's postgresql-common (pg_createcluster): %v", err)
	}
	c := &Cluster{}
	tb.Cleanup(func() { c.drop(tb) })

	c.first = c.create(tb, func(port int) []string { return []string{"primary", strconv.Itoa(port)} })
	c.primary = c.first
	for i := range opts.Standbys {
		n := c.create(tb, func(port int) []string {
			args := []string{"standby", strconv.Itoa(c.first.Port), strconv.Itoa(port)}
			if i == 0 && opts.Synchronous {
				args = append(args, "--sync")
			}
			return args
		})
		c.standbys = append(c.standbys, n)
	}
	return c
}

// create runs the script's command for a fresh port, trying other ports when
// the chosen one is another cluster's (the script exits 3).
func (c *Cluster) create(tb testing.TB, args func(port int) []string) Node {
	tb.Helper()
	var err error
	for range 5 {
		port := freeClusterPort()
		// Registered before the attempt: a half-made cluster is dropped too
		// (the script undoes its own failures, but not when it is killed).
		c.mu.Lock()
		c.nodes = append(c.nodes, Node{Port: port})
		c.mu.Unlock()
		if err = runScript(args(port)...); err == nil {
			return Node{Port: port}
		}
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			break
		}
		c.mu.Lock() // not ours: never drop it
		c.nodes = c.nodes[:len(c.nodes)-1]
		c.mu.Unlock()
	}
	tb.Fatalf("dbtest: %v", err)
	return Node{}
}

// Primary returns the node that takes writes: the first primary, or the
// standby promoted last by Promote.
func (c *Cluster) Primary() Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.primary
}

// Standby returns the i-th standby (0-based) as made by NewCluster. A
// promoted standby keeps its index.
func (c *Cluster) Standby(i int) Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.standbys) {
		panic(fmt.Sprintf("dbtest: Standby(%d) of a cluster with %d standbys", i, len(c.standbys)))
	}
	return c.standbys[i]
}

// MultiHostURL returns a libpq multi-host URL of database db over the
// primary and its standbys with target_session_attrs=read-write: a client
// connects to whichever node takes writes, also after a promotion.
func (c *Cluster) MultiHostURL(db string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	hosts := make([]string, 0, 1+len(c.standbys))
	for _, n := range append([]Node{c.first}, c.standbys...) {
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", n.Port))
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write", strings.Join(hosts, ","), db)
}

// CreateDatabase creates database db on the primary and applies the
// project's migrations to it. Standbys have it once they replayed it (see
// WaitReplayed).
func (c *Cluster) CreateDatabase(tb testing.TB, db string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := c.Primary()
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		tb.Fatalf("dbtest: connect to primary on %d: %v", p.Port, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		tb.Fatalf("dbtest: create database %s on %d: %v", db, p.Port, err)
	}
	if err := migrations.Up(p.URL(db)); err != nil {
		tb.Fatalf("dbtest: migrate %s on %d: %v", db, p.Port, err)
	}
}

// Stop stops node n; mode is "fast" (clean shutdown) or "immediate" (a
// crash: no shutdown checkpoint, clients cut off). While a synchronous
// standby is stopped, commits on the primary wait for it.
func (c *Cluster) Stop(tb testing.TB, n Node, mode string) {
	tb.Helper()
	if mode != "fast" && mode != "immediate" {
		tb.Fatalf("dbtest: Stop: mode must be fast or immediate, got %q", mode)
	}
	if err := runScript("stop", strconv.Itoa(n.Port), mode); err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
}

// Start starts node n again and waits until it accepts connections.
func (c *Cluster) Start(tb testing.TB, n Node) {
	tb.Helper()
	if err := runScript("start", strconv.Itoa(n.Port)); err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
}

// Promote makes standby n a primary and waits until it accepts writes;
// Primary returns it from then on. Other standbys keep following the old
// primary.
func (c *Cluster) Promote(tb testing.TB, n Node) {
	tb.Helper()
	if err := runScript("promote", strconv.Itoa(n.Port)); err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	c.mu.Lock()
	c.primary = n
	c.mu.Unlock()
}

// WaitReplayed waits (at most a minute) until standby n has replayed the
// primary's WAL up to the primary's position at the time of the call.
func (c *Cluster) WaitReplayed(tb testing.TB, n Node) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lsn string
	if err := queryOne(ctx, c.Primary().URL("postgres"), "SELECT pg_current_wal_lsn()::text", &lsn); err != nil {
		tb.Fatalf("dbtest: primary WAL position: %v", err)
	}
	for {
		var done bool
		err := queryOne(ctx, n.URL("postgres"), "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", &done, lsn)
		if err == nil && done {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("dbtest: standby on %d did not replay up to %s (last error: %v)", n.Port, lsn, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// drop removes every node, standbys first.
func (c *Cluster) drop(tb testing.TB) {
	c.mu.Lock()
	nodes := append([]Node(nil), c.nodes...)
	c.mu.Unlock()
	for i := len(nodes) - 1; i >= 0; i-- {
		if err := runScript("drop", strconv.Itoa(nodes[i].Port)); err != nil {
			tb.Errorf("dbtest: %v", err)
		}
		portsMu.Lock()
		delete(ports, nodes[i].Port)
		portsMu.Unlock()
	}
}

func queryOne(ctx context.Context, url, sql string, dst any, args ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.QueryRow(ctx, sql, args...).Scan(dst)
}

// freeClusterPort picks a port in 20000..29999 (below Linux's ephemeral
// range, so outgoing connections do not take it) that nothing listens on
// and no other test of this binary holds.
func freeClusterPort() int {
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		p := 20000 + rand.IntN(10000) //nolint:gosec // a port to try, not a secret
		if ports[p] || portInUse(p) {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/var/run/postgresql/.s.PGSQL.%d", p)); err == nil {
			continue
		}
		ports[p] = true
		return p
	}
}

func portInUse(port int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// scriptPath finds scripts/pg-cluster.sh from this source file.
func scriptPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "pg-cluster.sh")
}

func runScript(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	//nolint:gosec // our own script; the arguments are ports and fixed words
	cmd := exec.CommandContext(ctx, "bash", append([]string{scriptPath()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("scripts/pg-cluster.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
