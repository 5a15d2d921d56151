package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ledgerd/ledgerd/metrics"
)

// labelsOf returns the labels of the only series of the family name, and
// its gauge value.
func labelsOf(t *testing.T, m *metrics.Metrics, name string) (map[string]string, float64) {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		require.Len(t, f.GetMetric(), 1, "%s has one series", name)
		series := f.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range series.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		require.NotNil(t, series.GetGauge(), "%s is a gauge", name)
		return labels, series.GetGauge().GetValue()
	}
	require.FailNow(t, "metric not registered", name)
	return nil, 0
}

func TestRegisterBuildInfo(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RegisterBuildInfo("1.2.3", "0123456789abcdef0123456789abcdef01234567")
	labels, value := labelsOf(t, m, "ledger_build_info")
	require.Equal(t, map[string]string{
		"version":   "1.2.3",
		"revision":  "0123456789abcdef0123456789abcdef01234567",
		"goversion": runtime.Version(),
	}, labels)
	require.Equal(t, float64(1), value)

	// And it is served on /metrics.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "# TYPE ledger_build_info gauge")
	require.Regexp(t, `(?m)^ledger_build_info\{goversion="`+regexp.QuoteMeta(runtime.Version())+`",revision="0123456789abcdef0123456789abcdef01234567",version="1.2.3"\} 1$`, string(body))
}

func TestRegisterBuildInfoFillsEmptyLabels(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RegisterBuildInfo("", "")
	labels, _ := labelsOf(t, m, "ledger_build_info")
	// A test binary has no module version and, outside a VCS build, no
	// revision: both fall back, never to an empty label (which Prometheus
	// would drop).
	require.NotEmpty(t, labels["version"])
	require.NotEmpty(t, labels["revision"])
	require.Equal(t, runtime.Version(), labels["goversion"])
}

func TestRegisterBuildInfoTwicePanics(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RegisterBuildInfo("1", "a")
	require.Panics(t, func() { m.RegisterBuildInfo("1", "a") })
}

func TestRegisterReplica(t *testing.T) {
	t.Parallel()
	state := metrics.ReplicaState{InUse: true, Measured: true, Lag: 1500 * time.Millisecond}
	m := metrics.New()
	m.RegisterReplica(func() metrics.ReplicaState { return state })

	_, inUse := labelsOf(t, m, "ledger_read_replica_in_use")
	require.InDelta(t, 1, inUse, 0)
	_, lag := labelsOf(t, m, "ledger_read_replica_lag_seconds")
	require.InDelta(t, 1.5, lag, 1e-9)

	// Lagging past READ_MAX_LAG: measured, not in use.
	state = metrics.ReplicaState{Measured: true, Lag: 42 * time.Second}
	_, inUse = labelsOf(t, m, "ledger_read_replica_in_use")
	require.InDelta(t, 0, inUse, 0)
	_, lag = labelsOf(t, m, "ledger_read_replica_lag_seconds")
	require.InDelta(t, 42, lag, 1e-9)

	// Down: not in use, and the lag is absent rather than NaN or a sentinel.
	state = metrics.ReplicaState{}
	_, inUse = labelsOf(t, m, "ledger_read_replica_in_use")
	require.InDelta(t, 0, inUse, 0)
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, f := range families {
		require.NotEqual(t, "ledger_read_replica_lag_seconds", f.GetName(), "an unmeasurable lag is left out of the scrape")
	}
}

func TestReplicaGaugesOnlyWhenRegistered(t *testing.T) {
	t.Parallel()
	families, err := metrics.New().Registry().Gather()
	require.NoError(t, err)
	for _, f := range families {
		require.NotContains(t, f.GetName(), "read_replica", "without a read replica, no replica series")
	}
}
