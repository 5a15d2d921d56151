//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/ledger"
	"github.com/ledgerd/ledgerd/migrations/dbtest"
	"github.com/ledgerd/ledgerd/money"
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
}

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
	ensureServices(t)
	t.Cleanup(func() { ensureServices(t) })
	ctx := context.Background()

	url := dbtest.NewURL(t)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	l := ledger.New(pool, ledger.Options{TxTimeout: time.Minute})
	exchange := outboxtest.UniqueName("faults.ledger.events")
	e := &env{t: t, url: url, pool: pool, consumer: outboxtest.NewConsumer(t, exchange)}
	for id := int64(1); id <= users; id++ {
		_, err := l.CreateUser(ctx, ledger.NewUser{ID: id, Balance: money.Cents(openingCents)})
		require.NoError(t, err)
	}
	for i := range 2 {
		var logs bytes.Buffer
		p := &Process{t: t, name: fmt.Sprintf("ledgerd-%d", i+1), port: freePort(t), log: &logs, env: []string{
			"DATABASE_URL=" + url, "AMQP_EXCHANGE=" + exchange, "RELAY_QUEUE=", "LOG_FORMAT=json", "LOG_LEVEL=warn",
			"DB_ACQUIRE_TIMEOUT=2s", "DB_TX_TIMEOUT=10s", "SHUTDOWN_TIMEOUT=5s", "DB_MAX_CONNS=8",
		}}
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
		fault(e)
		faultDone.Store(true)
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

	r := Check(ctx, pool, l, ops, users*openingCents, e.consumer)
	t.Logf("%s: %d ops (%d definite, %d without a definite answer), %d attempts, %d entries, %d events (%d duplicates), in %s; batches: %s; reversals: %s; anomalies: %d",
		name, r.Ops, r.Definite, r.Indefinite, r.Attempts, r.Entries, r.Events, r.Duplicates, loadTime.Round(time.Second),
		r.Kind(OpBatch), r.Kind(OpReversal), len(r.Anomalies))
	for _, a := range r.Anomalies {
		t.Error(a)
	}
	record(t, name, r, loadTime)
}

// record keeps the scenario's figures for docs/reliability.md.
func record(t *testing.T, name string, r Report, d time.Duration) {
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
