//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
	"github.com/ledgerd/ledgerd/outbox"
	"github.com/ledgerd/ledgerd/outbox/outboxtest"
)

const (
	users        = 20
	openingCents = 10_000 * 100
	opsPerRun    = 2_500
)

// env is one scenario's system: a database, two ledgerd processes (each
// with its relay), a consumer, and the workload.
type env struct {
	t        *testing.T
	url      string
	pool     *pgxpool.Pool
	procs    []*Process
	consumer *outboxtest.Consumer
	workload *Workload
	// cluster, when set, holds the database (named clusterDB) instead of
	// the machine's main PostgreSQL: url is its multi-host URL.
	cluster *dbtest.Cluster
	// figures are the scenario's own figures, recorded beside the others;
	// a fault may set figuresFunc to compute them from the history.
	figures     map[string]any
	figuresFunc func(ops []*Op)
}

// clusterDB is the database a scenario on a dbtest.Cluster runs on.
const clusterDB = "ledger"

// alive returns the URLs of the processes that answer.
func (e *env) alive() []string {
	var out []string
	for _, p := range e.procs {
		if p.Alive() {
			out = append(out, p.URL())
		}
	}
	return out
}

// waitProgress waits until the workload has made at least n attempts.
func (e *env) waitProgress(n int64) {
	deadline := time.Now().Add(2 * time.Minute)
	for e.workload.Sent() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// scenario runs the workload with fault injected concurrently, brings
// everything back, checks the history against the ledger, and records the
// figures in testdata/results.json.
func scenario(t *testing.T, name string, cancelRate float64, fault func(e *env)) {
	scenarioWith(t, name, setup{cancelRate: cancelRate}, fault)
}

// setup is how a scenario's system differs from the default: two ledgerd
// processes on a fresh database of the main PostgreSQL.
type setup struct {
	cancelRate float64
	// cluster, when set, holds the database: its primary through the
	// multi-host URL, with target_session_attrs=read-write. The check
	// then runs on the primary of the end (the promoted standby after a
	// failover), with `ledgerd verify` too.
	cluster *dbtest.Cluster
	// processes is how many ledgerd serve run (default 2).
	processes int
	// env is added to every process's environment.
	env []string
}

// scenarioWith is scenario on the system s describes.
func scenarioWith(t *testing.T, name string, s setup, fault func(e *env)) {
	cancelRate, cluster := s.cancelRate, s.cluster
	ensureServices(t)
	t.Cleanup(func() { ensureServices(t) })
	ctx := context.Background()

	var url string
	if cluster != nil {
		cluster.CreateDatabase(t, clusterDB)
		url = cluster.MultiHostURL(clusterDB)
	} else {
		url = dbtest.NewURL(t)
	}
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Options{TxTimeout: time.Minute})
	exchange := outboxtest.UniqueName("faults.ledger.events")
	e := &env{t: t, url: url, pool: pool, consumer: outboxtest.NewConsumer(t, exchange), cluster: cluster, figures: map[string]any{}}
	for id := int64(1); id <= users; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: money.Cents(openingCents)})
		require.NoError(t, err)
	}
	for i := range max(s.processes, 2) {
		var logs bytes.Buffer
		p := &Process{t: t, name: fmt.Sprintf("ledgerd-%d", i+1), port: freePort(t), log: &logs, env: append([]string{
			"DATABASE_URL=" + url, "AMQP_EXCHANGE=" + exchange, "RELAY_QUEUE=", "LOG_FORMAT=json", "LOG_LEVEL=warn",
			"DB_ACQUIRE_TIMEOUT=2s", "DB_TX_TIMEOUT=10s", "SHUTDOWN_TIMEOUT=5s", "DB_MAX_CONNS=8",
		}, s.env...)}
		p.Start()
		e.procs = append(e.procs, p)
		t.Cleanup(func() {
			p.Stop()
			if t.Failed() {
				t.Logf("%s log:\n%s", p.name, tail(logs.String(), 4000))
			}
		})
	}
	e.workload = &Workload{Targets: e.alive, Users: users, Clients: 16, CancelRate: cancelRate, Opening: openingCents}

	start := time.Now()
	done := make(chan []*Op, 1)
	go func() { done <- e.workload.Run(ctx, opsPerRun) }()
	var faultDone atomic.Bool
	go func() {
		defer faultDone.Store(true) // also when the fault fails its test
		fault(e)
	}()
	ops := <-done
	for !faultDone.Load() {
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range e.procs { // every process back, so relays drain
		if !p.Alive() {
			p.Start()
		}
	}
	ensureServices(t)
	loadTime := time.Since(start)

	if e.figuresFunc != nil {
		e.figuresFunc(ops)
	}
	if cluster != nil {
		// The pool's connections may be to a primary that is gone: check
		// on a fresh pool of the primary of the end, and with the binary.
		pool, l = e.freshPool(cluster.Primary().URL(clusterDB))
		e.verifyWithBinary()
	}
	r := Check(ctx, pool, l, ops, users*openingCents, e.consumer)
	t.Logf("%s: %d ops (%d definite, %d without a definite answer), %d attempts, %d entries, %d events (%d duplicates), in %s; batches: %s; reversals: %s; anomalies: %d",
		name, r.Ops, r.Definite, r.Indefinite, r.Attempts, r.Entries, r.Events, r.Duplicates, loadTime.Round(time.Second),
		r.Kind(OpBatch), r.Kind(OpReversal), len(r.Anomalies))
	for _, a := range r.Anomalies {
		t.Error(a)
	}
	record(t, name, r, loadTime, e.figures)
}

// freshPool opens a pool and a ledger on url, closed when the test ends.
func (e *env) freshPool(url string) (*pgxpool.Pool, *ledger.Ledger) {
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(e.t, err)
	e.t.Cleanup(pool.Close)
	return pool, ledger.New(pool, ledger.Options{TxTimeout: time.Minute})
}

// verifyWithBinary runs `ledgerd verify` on the scenario's database URL: it
// must exit 0.
func (e *env) verifyWithBinary() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ledgerdBinary(e.t), "verify")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+e.url, "LOG_LEVEL=warn")
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Errorf("ledgerd verify: %v: %s", err, tail(string(out), 4000))
	}
}

// record keeps the scenario's figures for docs/reliability.md.
func record(t *testing.T, name string, r Report, d time.Duration, figures map[string]any) {
	path := filepath.Join("testdata", "results.json")
	results := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &results)
	}
	batches, reversals := r.Kind(OpBatch), r.Kind(OpReversal)
	results[name] = map[string]any{
		"ops": r.Ops, "definite": r.Definite, "indefinite": r.Indefinite, "attempts": r.Attempts,
		"entries": r.Entries, "events": r.Events, "duplicate_deliveries": r.Duplicates,
		"batches":   map[string]any{"committed": batches.Committed, "refused": batches.Refused, "undecided": batches.Undecided},
		"reversals": map[string]any{"committed": reversals.Committed, "refused": reversals.Refused, "undecided": reversals.Undecided},
		"anomalies": len(r.Anomalies), "seconds": d.Seconds(), "at": time.Now().UTC().Format(time.RFC3339),
	}
	for k, v := range figures {
		results[name].(map[string]any)[k] = v
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	_ = os.MkdirAll("testdata", 0o755)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Logf("record results: %v", err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// TestTerminateBackends kills every ledgerd database session, several
// times, in the middle of the load.
func TestTerminateBackends(t *testing.T) {
	scenario(t, "terminate_backends", 0, func(e *env) {
		for i := range 4 {
			e.waitProgress(int64(400 * (i + 1)))
			var n int
			err := e.pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'ledgerd%'`).Scan(&n)
			e.t.Logf("terminated %d ledgerd sessions (%v)", n, err)
		}
	})
}

// TestPostgresRestart stops PostgreSQL under load, waits, and starts it.
func TestPostgresRestart(t *testing.T) {
	scenario(t, "postgres_restart", 0, func(e *env) {
		e.waitProgress(500)
		service(e.t, postgresStop)
		time.Sleep(5 * time.Second)
		service(e.t, postgresStart)
	})
}

// TestBrokerOutage stops RabbitMQ for 10 s under load.
func TestBrokerOutage(t *testing.T) {
	scenario(t, "broker_stopped_10s", 0, func(e *env) {
		e.waitProgress(400)
		service(e.t, rabbitStop)
		time.Sleep(10 * time.Second)
		service(e.t, rabbitStart)
	})
}

// TestKillProcesses SIGKILLs a ledgerd process mid-load and restarts it,
// then SIGKILLs the relay leader.
func TestKillProcesses(t *testing.T) {
	scenario(t, "process_killed", 0, func(e *env) {
		e.waitProgress(500)
		e.procs[0].Kill()
		time.Sleep(2 * time.Second)
		e.procs[0].Start()
		e.waitProgress(1200)
		for _, p := range e.procs {
			if p.RelayRole() == "leader" {
				e.t.Logf("killing the relay leader %s", p.name)
				p.Kill()
				time.Sleep(2 * time.Second)
				p.Start()
				break
			}
		}
	})
}

// TestClientsAbandon has clients give up on 20% of their attempts at a
// random point, then retry with the same key.
func TestClientsAbandon(t *testing.T) {
	scenario(t, "clients_abandon", 0.2, func(e *env) {})
}

// TestPrimaryFailover runs on a primary with a synchronous standby: the
// primary is stopped with immediate (a crash) mid-load and the standby
// promoted. Nothing answered 200/201 may be lost (the sync standby had it),
// and writes must succeed again within 10 s of the crash with no restart of
// ledgerd: its pool finds the new primary through the multi-host URL.
func TestPrimaryFailover(t *testing.T) {
	c := dbtest.NewCluster(t, dbtest.ClusterOptions{Standbys: 1, Synchronous: true})
	scenarioWith(t, "primary_failover", setup{cluster: c}, func(e *env) {
		e.waitProgress(800)
		c.Stop(e.t, c.Primary(), "immediate")
		crashed := time.Now() // the old primary is gone from here on
		c.Promote(e.t, c.Standby(0))
		promoted := time.Since(crashed)
		leader := e.waitLeaderLocks(c.Primary().URL(clusterDB), 15*time.Second)
		if leader < 0 {
			e.t.Errorf("the relay's and sequencer's leader locks not held on the new primary 15 s after the promotion")
		}
		e.figures["leader_locks_after_seconds"] = leader.Seconds()
		e.figuresFunc = func(ops []*Op) {
			back, retried, extra := failoverFigures(ops, crashed)
			e.t.Logf("failover: standby promoted %s after the crash; writes back after %s; the relay's and sequencer's leader locks on the new primary %s after the promotion; %d operations retried (%d extra attempts)",
				promoted.Round(time.Millisecond), back.Round(time.Millisecond), leader.Round(time.Millisecond), retried, extra)
			e.figures["promoted_after_seconds"] = promoted.Seconds()
			e.figures["writes_back_after_seconds"] = back.Seconds()
			e.figures["ops_retried"] = retried
			e.figures["extra_attempts"] = extra
			if back <= 0 || back >= 10*time.Second {
				e.t.Errorf("writes came back %s after the crash, want within 10 s (0: never)", back)
			}
		}
	})
}

// TestRelayPartitionsMove runs three processes with four relay partitions:
// leadership spreads (two processes lead one, one leads two), then the
// process that leads two is SIGKILLed mid-load. Its partitions move to the
// others, and every event is delivered, each user's in seq order (the
// checker's event checks).
func TestRelayPartitionsMove(t *testing.T) {
	scenarioWith(t, "relay_partitions_leader_killed", setup{processes: 3, env: []string{"RELAY_PARTITIONS=4"}}, func(e *env) {
		spread := func() (leading [][]int, ok bool) {
			total := 0
			for _, p := range e.procs {
				l := p.RelayLeading()
				leading = append(leading, l)
				total += len(l)
				if len(l) == 0 || len(l) > 2 {
					return leading, false
				}
			}
			return leading, total == 4
		}
		var (
			leading [][]int
			ok      bool
		)
		deadline := time.Now().Add(20 * time.Second)
		for leading, ok = spread(); !ok && time.Now().Before(deadline); leading, ok = spread() {
			time.Sleep(100 * time.Millisecond)
		}
		if !ok {
			e.t.Errorf("the 4 partitions are not spread over the 3 processes 20 s after the start: %v", leading)
			return
		}
		e.t.Logf("partitions led: %v", leading)
		e.waitProgress(1000)
		for i, p := range e.procs {
			if len(leading[i]) == 2 {
				e.t.Logf("killing %s, the leader of partitions %v", p.name, leading[i])
				killed := time.Now()
				p.Kill()
				moved := e.waitPartitionsLed(20 * time.Second)
				if moved < 0 {
					e.t.Errorf("the partitions of %s had no new leader 20 s after the kill", p.name)
				}
				e.t.Logf("partitions led again %s after the kill", time.Since(killed).Round(time.Millisecond))
				e.figures["partitions_moved_after_seconds"] = time.Since(killed).Seconds()
				e.waitProgress(1800)
				p.Start()
				return
			}
		}
	})
}

// waitPartitionsLed waits until every relay partition's lock is held (as
// `ledgerd relay --status` reads it) and returns how long that took, or -1
// after timeout.
func (e *env) waitPartitionsLed(timeout time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := outbox.ReadClusterStatus(ctx, e.pool)
		cancel()
		if err == nil && st.LeaderPresent {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

// The advisory locks of the relay's and the sequencer's leaders (their
// keys are outbox's relayLockKey, partition 0's, and sequencerLockKey;
// partition p's is relayLockKey + p<<8).
const (
	relayLockKey     int64 = 0x6c65646765726452 // "ledgerdR"
	sequencerLockKey int64 = 0x6c65646765726453 // "ledgerdS"
)

// waitLeaderLocks waits until the relay's and the sequencer's leader locks
// are held on the database at url (the new primary) and returns how long
// that took, or -1 after timeout.
func (e *env) waitLeaderLocks(url string, timeout time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var held int
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
  AND objsubid = 1 AND (classid::bigint << 32 | objid::bigint) = ANY($1)`, []int64{relayLockKey, sequencerLockKey}).Scan(&held)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil && held == 2 {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return -1
}

// failoverFigures returns how long after crashed the first write sent after
// it was answered 200/201, not replayed (0 when none was), how many operations needed
// more than one attempt, and the attempts beyond the first.
func failoverFigures(ops []*Op, crashed time.Time) (back time.Duration, retried, extra int) {
	for _, op := range ops {
		if op.Attempts > 1 {
			retried++
			extra += op.Attempts - 1
		}
		fresh := (op.Status == http.StatusOK || op.Status == http.StatusCreated) && !op.Replayed
		if op.Kind == OpRead || !fresh || op.Sent.Before(crashed) {
			continue
		}
		if d := op.Answered.Sub(crashed); back == 0 || d < back {
			back = d
		}
	}
	return back, retried, extra
}
