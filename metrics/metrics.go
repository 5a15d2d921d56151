package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "ledger"

// Metrics holds every ledgerd metric. Its methods are the hooks the other
// packages call; all are safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge

	entriesPosted *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	writeTx       prometheus.Histogram
	batchSize     prometheus.Histogram
	txRetries     prometheus.Counter
	batchSplits   prometheus.Counter

	published       prometheus.Counter
	publishFailures *prometheus.CounterVec
	publishLag      prometheus.Histogram

	auditUsers      prometheus.Counter
	auditEntries    prometheus.Counter
	auditPasses     prometheus.Counter
	auditViolations prometheus.Gauge
	auditLastClean  prometheus.Gauge

	checkpointsMade prometheus.Counter
	checkpointBuild prometheus.Gauge

	transactions       *prometheus.CounterVec
	transactionEntries *prometheus.HistogramVec
}

// latencyBuckets suit an API whose answers take from a millisecond to a few
// seconds.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the metrics, registered with a new registry that also holds
// the Go and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{registry: reg}

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "http", Name: "requests_total",
		Help: "HTTP requests answered, by method, chi route pattern and status."}, []string{"method", "route", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
		Help: "Time to answer an HTTP request, by method and route pattern.", Buckets: latencyBuckets}, []string{"method", "route"})
	m.httpInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "http", Name: "requests_in_flight",
		Help: "HTTP requests being served."})

	m.entriesPosted = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "entries_posted_total",
		Help: "Ledger entries committed, by entry type."}, []string{"type"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "balance_changes_rejected_total",
		Help: "Balance changes and transfers refused, by reason."}, []string{"reason"})
	m.writeTx = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "write_transaction_duration_seconds",
		Help: "Time inside one database write transaction, from begin to commit.", Buckets: latencyBuckets})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "write_batch_size",
		Help: "Requests applied in one write transaction (group commit).", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}})
	m.txRetries = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "transaction_retries_total",
		Help: "Write transactions retried after a serialization failure, a deadlock, or a user id taken by another process."})
	m.batchSplits = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "write_batch_splits_total",
		Help: "Group-commit batches that failed with a database error and were split in two to isolate the request at fault."})
	m.transactions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "transactions_posted_total",
		Help: "Committed multi-change requests, by kind: batch, reversal."}, []string{"kind"})
	m.transactionEntries = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "transaction_entries",
		Help: "Entries written by one committed batch or reversal, by kind.", Buckets: []float64{1, 2, 5, 10, 25, 50, 100}}, []string{"kind"})

	m.published = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "outbox", Name: "events_published_total",
		Help: "Events confirmed by the broker and marked published."})
	m.publishFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "outbox", Name: "publish_failures_total",
		Help: "Publish failures, by kind: nack, return (unroutable), connection, timeout."}, []string{"kind"})
	m.publishLag = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "outbox", Name: "publish_lag_seconds",
		Help: "Time from an entry's commit to the broker's confirm of its event.", Buckets: latencyBuckets})

	m.auditUsers = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "audit", Name: "users_checked_total",
		Help: "Users re-verified by the continuous auditor."})
	m.auditEntries = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "audit", Name: "entries_checked_total",
		Help: "Entries re-verified by the continuous auditor."})
	m.auditPasses = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "audit", Name: "passes_total",
		Help: "Passes of the continuous auditor."})
	m.auditViolations = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "audit", Name: "violations",
		Help: "Users whose ledger currently fails verification. Must stay 0."})
	m.auditLastClean = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "audit", Name: "last_clean_pass_timestamp_seconds",
		Help: "Unix time of the auditor's last pass that found no violation."})

	m.checkpointsMade = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "checkpoint", Name: "made_total",
		Help: "Signed checkpoints this process made."})
	m.checkpointBuild = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "checkpoint", Name: "build_seconds",
		Help: "How long this process's last checkpoint took to build; 0 before its first."})

	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.httpInFlight, m.entriesPosted, m.rejected,
		m.writeTx, m.batchSize, m.txRetries, m.batchSplits, m.transactions, m.transactionEntries, m.published, m.publishFailures, m.publishLag,
		m.auditUsers, m.auditEntries, m.auditPasses, m.auditViolations, m.auditLastClean, m.checkpointsMade, m.checkpointBuild} {
		f(c)
	}
	for _, kind := range []string{"nack", "return", "connection", "timeout"} {
		m.publishFailures.WithLabelValues(kind)
	}
	for _, kind := range []string{"batch", "reversal"} {
		m.transactions.WithLabelValues(kind)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Registry returns the registry, for tests and for extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// knownMethods are the method label's values; any other method is "other",
// so that a client cannot grow the series with methods of its own making.
var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// MethodLabel returns method if it is a known HTTP method, else "other".
func MethodLabel(method string) string {
	if slices.Contains(knownMethods, method) {
		return method
	}
	return "other"
}

// ObserveRequest records one answered HTTP request. The route must be a
// route pattern (a fixed set), the method is bounded by MethodLabel.
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	method = MethodLabel(method)
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// InFlight adds delta to the requests being served.
func (m *Metrics) InFlight(delta int) { m.httpInFlight.Add(float64(delta)) }

// ChangeRejected records a refused balance change.
func (m *Metrics) ChangeRejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// EntryPosted records a committed entry of the given type.
func (m *Metrics) EntryPosted(typ string) { m.entriesPosted.WithLabelValues(typ).Inc() }

// WriteTx records one write transaction of changes changes.
func (m *Metrics) WriteTx(d time.Duration, changes int) {
	m.writeTx.Observe(d.Seconds())
	if changes > 0 {
		m.batchSize.Observe(float64(changes))
	}
}

// TxRetry records a retried transaction.
func (m *Metrics) TxRetry() { m.txRetries.Inc() }

// BatchSplit records a group-commit batch split to isolate a failing
// request.
func (m *Metrics) BatchSplit() { m.batchSplits.Inc() }

// TransactionPosted records a committed batch or reversal of entries
// entries.
func (m *Metrics) TransactionPosted(kind string, entries int) {
	m.transactions.WithLabelValues(kind).Inc()
	m.transactionEntries.WithLabelValues(kind).Observe(float64(entries))
}

// EventPublished records one confirmed event and its commit-to-confirm lag.
func (m *Metrics) EventPublished(lag time.Duration) {
	m.published.Inc()
	m.publishLag.Observe(lag.Seconds())
}

// PublishFailure records a publish failure of the given kind.
func (m *Metrics) PublishFailure(kind string) { m.publishFailures.WithLabelValues(kind).Inc() }

// AuditPass records one pass of the continuous auditor.
func (m *Metrics) AuditPass(users, entries int64, violations int, at time.Time) {
	m.auditPasses.Inc()
	m.auditUsers.Add(float64(users))
	m.auditEntries.Add(float64(entries))
	m.auditViolations.Set(float64(violations))
	if violations == 0 {
		m.auditLastClean.Set(float64(at.Unix()))
	}
}

// CheckpointMade records a checkpoint this process made, and how long it
// took to build.
func (m *Metrics) CheckpointMade(build time.Duration) {
	m.checkpointsMade.Inc()
	m.checkpointBuild.Set(build.Seconds())
}

// RegisterCheckpoints adds ledger_checkpoint_latest_timestamp_seconds:
// the instant of the latest checkpoint in the database, whoever made it,
// read from latest at scrape time (at most once a second); 0 when there
// is none, -1 when it cannot be read.
func (m *Metrics) RegisterCheckpoints(latest func() (time.Time, error)) {
	var (
		mu   sync.Mutex
		last float64
		at   time.Time
	)
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "checkpoint",
		Name: "latest_timestamp_seconds",
		Help: "Unix time of the latest signed checkpoint in the database, made by any process; 0 when none, -1 when unreadable."},
		func() float64 {
			mu.Lock()
			defer mu.Unlock()
			if time.Since(at) > time.Second {
				at = time.Now()
				switch t, err := latest(); {
				case err != nil:
					last = -1
				case t.IsZero():
					last = 0
				default:
					last = float64(t.UnixNano()) / 1e9
				}
			}
			return last
		}))
}

// RegisterBuildInfo adds ledger_build_info{version, goversion, revision},
// a gauge of 1 whose labels say which build runs: join it on instance to
// see which version each replica runs during a rollout. goversion is
// runtime.Version(). An empty version or revision is taken from the
// binary's build information (the module version of `go install`, the
// vcs.revision of a build inside a Git checkout, with "-modified" when the
// tree had changes); "unknown" when it has none (a Docker build does not
// see .git: pass the revision in). Call it once: a second call panics, as
// every duplicate registration does.
func (m *Metrics) RegisterBuildInfo(version, revision string) {
	bi, _ := debug.ReadBuildInfo()
	version, revision = buildLabels(version, revision, bi)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels name the running build: version, Go version and VCS revision.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "revision": revision}})
	g.Set(1)
	m.registry.MustRegister(g)
}

// buildLabels fills an empty version or revision from bi (which may be
// nil), or with "unknown".
func buildLabels(version, revision string, bi *debug.BuildInfo) (string, string) {
	if version == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	if revision == "" && bi != nil {
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if revision != "" && modified {
			revision += "-modified"
		}
	}
	if version == "" {
		version = "unknown"
	}
	if revision == "" {
		revision = "unknown"
	}
	return version, revision
}

// RelayState is what the relay gauges read at scrape time.
type RelayState struct {
	// Leading is how many partitions this process publishes, of
	// Partitions (RELAY_PARTITIONS).
	Leading, Partitions int
	BrokerConnected     bool
	Pending             int64
	OldestPendingAge    float64
}

// RegisterRelay adds the relay gauges, read from state at scrape time.
func (m *Metrics) RegisterRelay(state func() RelayState) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "relay", Name: "leader",
			Help: "How many relay partitions this process publishes (holds the lock of); the sum over processes should equal ledger_relay_partitions (1 and 1 by default)."},
			func() float64 { return float64(state().Leading) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "relay", Name: "partitions",
			Help: "RELAY_PARTITIONS: how many partitions the events are split into."},
			func() float64 { return float64(state().Partitions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "relay", Name: "broker_connected",
			Help: "1 when this process's relay is connected to the broker."},
			func() float64 { return b(state().BrokerConnected) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "outbox", Name: "pending_events",
			Help: "Events committed but not yet confirmed by the broker."},
			func() float64 { return float64(state().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "outbox", Name: "oldest_pending_age_seconds",
			Help: "Age of the oldest event not yet confirmed by the broker, 0 when none."},
			func() float64 { return state().OldestPendingAge }),
	)
}

// HoldTotals are the pending holds, read at scrape time.
type HoldTotals struct {
	Pending int64
	// HeldCents is their sum, in cents.
	HeldCents int64
}

// RegisterHolds adds the holds gauges, read from totals at scrape time
// (one query a scrape: both gauges share it).
func (m *Metrics) RegisterHolds(totals func() HoldTotals) {
	var (
		mu   sync.Mutex
		last HoldTotals
		at   time.Time
	)
	read := func() HoldTotals {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) > time.Second {
			last, at = totals(), time.Now()
		}
		return last
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "holds", Name: "pending",
			Help: "Holds pending (not captured, voided or past their expiry)."},
			func() float64 { return float64(read().Pending) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "holds", Name: "held_cents",
			Help: "The sum of the pending holds, in cents."},
			func() float64 { return float64(read().HeldCents) }),
	)
}

// ReplicaState is what the read-replica gauges read at scrape time.
type ReplicaState struct {
	// InUse is whether reads go to the replica now (else to the primary).
	InUse bool
	// Measured is whether Lag was measured: false while the replica or
	// the primary cannot be reached, or nothing is replayed yet.
	Measured bool
	// Lag is how far the replica is behind the primary, when Measured.
	Lag time.Duration
}

// RegisterReplica adds the read replica's gauges, read from state once a
// scrape: ledger_read_replica_in_use (1 when reads go to the replica, 0
// when they fall back to the primary) and ledger_read_replica_lag_seconds.
// Register it only when a read replica is configured, so that the series
// exist exactly where a replica does.
//
// While the lag cannot be measured, ledger_read_replica_lag_seconds is
// left out of the scrape (Prometheus marks the series stale) rather than
// exposed as NaN or a sentinel: NaN propagates through sums and
// *_over_time and compares false, and -1 or 0 would read as a replica in
// sync. A graph shows a gap and ledger_read_replica_in_use, always
// present, says reads fall back to the primary.
func (m *Metrics) RegisterReplica(state func() ReplicaState) {
	m.registry.MustRegister(replicaCollector{state: state})
}

type replicaCollector struct{ state func() ReplicaState }

var (
	replicaInUseDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "read_replica", "in_use"),
		"1 when the reads that may lag go to the read replica (DATABASE_READ_URL), 0 when they fall back to the primary (replica down, unmeasurable, or behind by more than READ_MAX_LAG).", nil, nil)
	replicaLagDesc = prometheus.NewDesc(prometheus.BuildFQName(namespace, "read_replica", "lag_seconds"),
		"How far the read replica is behind the primary; absent while it cannot be measured.", nil, nil)
)

func (c replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicaInUseDesc
	ch <- replicaLagDesc
}

func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	inUse := 0.0
	if st.InUse {
		inUse = 1
	}
	ch <- prometheus.MustNewConstMetric(replicaInUseDesc, prometheus.GaugeValue, inUse)
	if st.Measured {
		ch <- prometheus.MustNewConstMetric(replicaLagDesc, prometheus.GaugeValue, st.Lag.Seconds())
	}
}

// RegisterPool adds the database pool's statistics, read at scrape time.
func (m *Metrics) RegisterPool(pool *pgxpool.Pool) {
	m.registry.MustRegister(poolCollector{pool: pool})
}

type poolCollector struct{ pool *pgxpool.Pool }

var poolDescs = map[string]*prometheus.Desc{
	"acquired": prometheus.NewDesc("ledger_db_pool_acquired_connections", "Connections in use.", nil, nil),
	"idle":     prometheus.NewDesc("ledger_db_pool_idle_connections", "Idle connections.", nil, nil),
	"total":    prometheus.NewDesc("ledger_db_pool_total_connections", "Open connections.", nil, nil),
	"max":      prometheus.NewDesc("ledger_db_pool_max_connections", "The pool's limit (DB_MAX_CONNS).", nil, nil),
	"acquires": prometheus.NewDesc("ledger_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil),
	"wait":     prometheus.NewDesc("ledger_db_pool_acquire_wait_seconds_total", "Time spent acquiring connections.", nil, nil),
	"empty":    prometheus.NewDesc("ledger_db_pool_empty_acquires_total", "Acquires that had to wait for a connection (pool exhausted).", nil, nil),
	"canceled": prometheus.NewDesc("ledger_db_pool_canceled_acquires_total", "Acquires given up (deadline or cancel).", nil, nil),
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range poolDescs {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	g := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(poolDescs[name], prometheus.GaugeValue, v)
	}
	n := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(poolDescs[name], prometheus.CounterValue, v)
	}
	g("acquired", float64(s.AcquiredConns()))
	g("idle", float64(s.IdleConns()))
	g("total", float64(s.TotalConns()))
	g("max", float64(s.MaxConns()))
	n("acquires", float64(s.AcquireCount()))
	n("wait", s.AcquireDuration().Seconds())
	n("empty", float64(s.EmptyAcquireCount()))
	n("canceled", float64(s.CanceledAcquireCount()))
}
