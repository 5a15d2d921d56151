package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var (
	prometheusConfigPath  = "prometheus.yml"
	alertsPath            = "alerts.yml"
	alertsTestPath        = "alerts_test.yml"
	dashboardPath         = filepath.Join("grafana", "dashboards", "ledgerd.json")
	datasourceProvPath    = filepath.Join("grafana", "provisioning", "datasources", "prometheus.yml")
	dashboardProvPath     = filepath.Join("grafana", "provisioning", "dashboards", "ledgerd.yml")
	operationsDocPath     = filepath.Join("..", "docs", "operations.md")
	configGoPath          = filepath.Join("..", "cmd", "ledgerd", "config.go")
	runbookURLPrefix      = "https://github.com/ledgerd/ledgerd/blob/main/docs/operations.md#"
	requiredAlertSeverity = map[string]string{
		"LedgerRelayLagging":    "",
		"LedgerOutboxGrowing":   "",
		"LedgerRelayNoLeader":   "critical",
		"LedgerRelaySplitBrain": "critical",
		"LedgerHigh5xxRatio":    "",
		"LedgerHighLatencyP99":  "",
		"LedgerDBPoolExhausted": "",
		"LedgerAuditViolation":  "critical",
		"LedgerAuditStale":      "",
		"LedgerDown":            "critical",
		// A replica out of use costs the primary reads, not correctness.
		"LedgerReadReplicaLagging": "warning",
	}
)

// ledgerdMetrics is every metric ledgerd exposes besides the go_* and
// process_* collectors, with its type. The alerts, the dashboard and
// docs/operations.md must agree with it.
var ledgerdMetrics = map[string]string{
	"ledger_http_requests_total":                     "counter",
	"ledger_http_request_duration_seconds":           "histogram",
	"ledger_http_requests_in_flight":                 "gauge",
	"ledger_entries_posted_total":                    "counter",
	"ledger_balance_changes_rejected_total":          "counter",
	"ledger_write_transaction_duration_seconds":      "histogram",
	"ledger_write_batch_size":                        "histogram",
	"ledger_transaction_retries_total":               "counter",
	"ledger_write_batch_splits_total":                "counter",
	"ledger_holds_pending":                           "gauge",
	"ledger_holds_held_cents":                        "gauge",
	"ledger_outbox_pending_events":                   "gauge",
	"ledger_outbox_oldest_pending_age_seconds":       "gauge",
	"ledger_outbox_events_published_total":           "counter",
	"ledger_outbox_publish_failures_total":           "counter",
	"ledger_outbox_publish_lag_seconds":              "histogram",
	"ledger_relay_leader":                            "gauge",
	"ledger_relay_partitions":                        "gauge",
	"ledger_relay_broker_connected":                  "gauge",
	"ledger_db_pool_acquired_connections":            "gauge",
	"ledger_db_pool_idle_connections":                "gauge",
	"ledger_db_pool_total_connections":               "gauge",
	"ledger_db_pool_max_connections":                 "gauge",
	"ledger_db_pool_acquires_total":                  "counter",
	"ledger_db_pool_acquire_wait_seconds_total":      "counter",
	"ledger_db_pool_empty_acquires_total":            "counter",
	"ledger_db_pool_canceled_acquires_total":         "counter",
	"ledger_audit_users_checked_total":               "counter",
	"ledger_audit_entries_checked_total":             "counter",
	"ledger_audit_violations":                        "gauge",
	"ledger_audit_last_clean_pass_timestamp_seconds": "gauge",
	"ledger_audit_passes_total":                      "counter",
	"ledger_checkpoint_latest_timestamp_seconds":     "gauge",
	"ledger_checkpoint_made_total":                   "counter",
	"ledger_checkpoint_build_seconds":                "gauge",
	"ledger_build_info":                              "gauge",
	"ledger_read_replica_in_use":                     "gauge",
	"ledger_read_replica_lag_seconds":                "gauge",
}

// baseMetric returns the exposed metric a series name belongs to (a
// histogram's _bucket, _sum and _count series belong to the histogram), and
// whether it is a metric the alerts and the dashboard may use: one of
// ledgerdMetrics, a go_* or process_* collector metric, or up.
func baseMetric(series string) (string, bool) {
	if _, ok := ledgerdMetrics[series]; ok {
		return series, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && ledgerdMetrics[base] == "histogram" {
			return base, true
		}
	}
	if series == "up" || strings.HasPrefix(series, "go_") || strings.HasPrefix(series, "process_") {
		return series, true
	}
	return series, false
}

var (
	promStringLit   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promMatchers    = regexp.MustCompile(`\{[^}]*\}`)
	promRanges      = regexp.MustCompile(`\[[^\]]*\]`)
	promLabelLists  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	grafanaVars     = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	promIdentifiers = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords    = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true,
	}
)

// metricNames returns the metric names a PromQL expression selects. It is
// a lexical approximation, good for the expressions of this project: it
// drops string literals, label matchers, ranges, grouping label lists and
// Grafana variables, then takes every identifier that is neither a keyword
// nor called as a function.
func metricNames(expr string) []string {
	s := promStringLit.ReplaceAllString(expr, `""`)
	s = grafanaVars.ReplaceAllString(s, " ")
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRanges.ReplaceAllString(s, " ")
	s = promLabelLists.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdentifiers.FindAllStringIndex(s, -1) {
		start, end := loc[0], loc[1]
		if start > 0 && strings.ContainsRune("0123456789.", rune(s[start-1])) {
			continue // the exponent of a number such as 1e3
		}
		name := s[start:end]
		if promKeywords[name] || strings.HasPrefix(strings.TrimLeft(s[end:], " \t\n"), "(") {
			continue // a keyword or a function call
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNamesExtractor(t *testing.T) {
	t.Parallel()
	got := metricNames(`histogram_quantile(0.99, sum by (route, le) (rate(ledger_http_request_duration_seconds_bucket{instance=~"$instance", status=~"5.."}[$__rate_interval]))) > 1e3
		and on() (time() - max(ledger_audit_last_clean_pass_timestamp_seconds offset 5m) > 3600) or absent(ledger_relay_leader) / bogus_metric`)
	require.Equal(t, []string{"ledger_http_request_duration_seconds_bucket", "ledger_audit_last_clean_pass_timestamp_seconds", "ledger_relay_leader", "bogus_metric"}, got)
	_, ok := baseMetric("bogus_metric")
	require.False(t, ok)
	base, ok := baseMetric("ledger_write_batch_size_bucket")
	require.True(t, ok)
	require.Equal(t, "ledger_write_batch_size", base)
	_, ok = baseMetric("ledger_relay_leader_bucket")
	require.False(t, ok, "only histograms have _bucket series")
}

// requireKnownMetrics fails when expr uses a metric ledgerd does not expose,
// and returns the metrics it uses.
func requireKnownMetrics(t *testing.T, where, expr string) []string {
	t.Helper()
	names := metricNames(expr)
	require.NotEmpty(t, names, "%s: expression %q selects no metric", where, expr)
	var bases []string
	for _, n := range names {
		base, ok := baseMetric(n)
		require.True(t, ok, "%s: %q is not a metric ledgerd exposes (expression %q); the known ones are in monitoring_test.go", where, n, expr)
		bases = append(bases, base)
	}
	return bases
}

// ---------------------------------------------------------------------------
// docs/operations.md
// ---------------------------------------------------------------------------

var (
	mdHeading    = regexp.MustCompile(`^(#{1,6})\s+(.+?)\s*#*\s*$`)
	slugDrop     = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
	mdLocalLinks = regexp.MustCompile(`\]\(#([^)\s]+)\)`)
)

// githubSlug is the anchor GitHub gives a Markdown heading.
func githubSlug(heading string) string {
	s := strings.ToLower(strings.TrimSpace(heading))
	s = slugDrop.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

func TestGithubSlug(t *testing.T) {
	t.Parallel()
	require.Equal(t, "ledgerrelaylagging", githubSlug("LedgerRelayLagging"))
	require.Equal(t, "backup-and-restore", githubSlug("Backup and restore"))
	require.Equal(t, "4-guarantees-and-what-a-consumer-must-do", githubSlug("4. Guarantees, and what a consumer must do"))
	require.Equal(t, "running-several-replicas", githubSlug("Running several replicas"))
}

// docAnchors returns the anchors of the headings of a Markdown file
// (outside code fences), with GitHub's -1, -2 suffixes for repeats.
func docAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	anchors := map[string]bool{}
	seen := map[string]int{}
	fence := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		m := mdHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		slug := githubSlug(m[2])
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

func readOperationsDoc(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(operationsDocPath)
	require.NoError(t, err, "docs/operations.md must exist")
	return string(data)
}

func TestOperationsDocHasTheSections(t *testing.T) {
	t.Parallel()
	anchors := docAnchors(t, operationsDocPath)
	for _, a := range []string{"metrics", "alerts", "configuration", "running-several-replicas", "several-relays",
		"backup-and-restore", "docker-compose-stack", "kubernetes"} {
		require.True(t, anchors[a], "docs/operations.md needs a section with anchor #%s", a)
	}
}

func TestOperationsDocLocalLinksResolve(t *testing.T) {
	t.Parallel()
	doc := readOperationsDoc(t)
	anchors := docAnchors(t, operationsDocPath)
	for _, m := range mdLocalLinks.FindAllStringSubmatch(doc, -1) {
		require.True(t, anchors[m[1]], "docs/operations.md links to #%s, which is no heading of it", m[1])
	}
}

func TestOperationsDocDescribesEveryMetric(t *testing.T) {
	t.Parallel()
	doc := readOperationsDoc(t)
	for _, name := range slices.Sorted(maps.Keys(ledgerdMetrics)) {
		row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(name) + "` \\| " + ledgerdMetrics[name] + " \\|")
		require.Regexp(t, row, doc, "docs/operations.md must describe %s (a table row: | `name` | %s | labels | meaning |)", name, ledgerdMetrics[name])
	}
}

// configEnvVar finds the environment variables of cmd/ledgerd/config.go:
// the envvar tags of its settings (kong), or calls of its older env
// helpers.
var configEnvVar = regexp.MustCompile(`(?:envvar:|(?:env|envInt|envBool|envDur|envDurOrZero|lookupEnv)\()"([A-Z][A-Z0-9_]*)"`)

// configVariables returns the environment variables cmd/ledgerd/config.go
// reads.
func configVariables(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(configGoPath)
	require.NoError(t, err)
	set := map[string]bool{}
	for _, m := range configEnvVar.FindAllStringSubmatch(string(data), -1) {
		set[m[1]] = true
	}
	require.Contains(t, set, "DATABASE_URL", "cannot find the settings in cmd/ledgerd/config.go any more: update configEnvVar")
	return slices.Sorted(maps.Keys(set))
}

func TestOperationsDocConfigurationTableIsComplete(t *testing.T) {
	t.Parallel()
	doc := readOperationsDoc(t)
	start := strings.Index(doc, "\n## Configuration\n")
	require.GreaterOrEqual(t, start, 0, "docs/operations.md needs a ## Configuration section")
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	for _, v := range configVariables(t) {
		require.Regexp(t, "(?m)^\\| `"+v+"` \\|", section, "the Configuration table of docs/operations.md must have a row for %s (read by cmd/ledgerd/config.go)", v)
	}
}

// ---------------------------------------------------------------------------
// deploy/alerts.yml
// ---------------------------------------------------------------------------

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         *string           `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile(alertsPath)
	require.NoError(t, err)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(data, &rf), "alerts.yml must be valid YAML")
	require.Len(t, rf.Groups, 1, "alerts.yml must hold one group")
	require.NotEmpty(t, rf.Groups[0].Rules)
	return rf.Groups[0].Rules
}

var promDuration = regexp.MustCompile(`^(0|([0-9]+(ms|[smhdwy]))+)$`)

func TestAlertsHaveSeverityForSummaryAndRunbookURL(t *testing.T) {
	t.Parallel()
	anchors := docAnchors(t, operationsDocPath)
	seen := map[string]bool{}
	for _, r := range loadAlerts(t) {
		require.NotEmpty(t, r.Alert, "alerts.yml: every rule must be an alert (rule with expr %q is not)", r.Expr)
		require.False(t, seen[r.Alert], "alerts.yml: alert %s is defined twice", r.Alert)
		seen[r.Alert] = true
		require.NotEmpty(t, strings.TrimSpace(r.Expr), "%s: no expr", r.Alert)
		require.NotNil(t, r.For, "%s: needs a for: duration (for: 0m when it must fire at once)", r.Alert)
		require.Regexp(t, promDuration, *r.For, "%s: for: %q is not a Prometheus duration", r.Alert, *r.For)
		require.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], "%s: labels.severity must be critical, warning or info", r.Alert)
		require.NotEmpty(t, strings.TrimSpace(r.Annotations["summary"]), "%s: needs annotations.summary", r.Alert)

		require.NotContains(t, r.Annotations, "runbook", "%s: the annotation is runbook_url (the name Alertmanager templates and Grafana expect)", r.Alert)
		runbook := r.Annotations["runbook_url"]
		anchor, ok := strings.CutPrefix(runbook, runbookURLPrefix)
		require.True(t, ok, "%s: annotations.runbook_url %q must be %s<anchor>", r.Alert, runbook, runbookURLPrefix)
		require.Equal(t, strings.ToLower(r.Alert), anchor, "%s: the runbook must be the alert's own section (### %s)", r.Alert, r.Alert)
		require.True(t, anchors[anchor], "%s: docs/operations.md has no heading with anchor #%s", r.Alert, anchor)
	}
	for name := range requiredAlertSeverity {
		require.True(t, seen[name], "alerts.yml must define %s", name)
	}
}

func TestAlertsSpecifics(t *testing.T) {
	t.Parallel()
	byName := map[string]rule{}
	for _, r := range loadAlerts(t) {
		byName[r.Alert] = r
	}
	for name, severity := range requiredAlertSeverity {
		if severity != "" {
			require.Equal(t, severity, byName[name].Labels["severity"], "%s must be %s", name, severity)
		}
	}
	v := byName["LedgerAuditViolation"]
	require.NotNil(t, v.For)
	require.Contains(t, []string{"0", "0s", "0m"}, *v.For, "LedgerAuditViolation must fire at once (for: 0m)")
	require.Contains(t, v.Expr, "ledger_audit_violations")
	require.Contains(t, byName["LedgerDown"].Expr, `up{job="ledgerd"}`)
	require.Contains(t, byName["LedgerRelayNoLeader"].Expr, "sum(ledger_relay_leader) < max(ledger_relay_partitions)")
	require.Contains(t, byName["LedgerRelaySplitBrain"].Expr, "sum(ledger_relay_leader) > max(ledger_relay_partitions)")
	require.Contains(t, byName["LedgerHighLatencyP99"].Expr, "histogram_quantile(0.99")
}

func TestAlertsUseOnlyKnownMetrics(t *testing.T) {
	t.Parallel()
	for _, r := range loadAlerts(t) {
		requireKnownMetrics(t, "alerts.yml "+r.Alert, r.Expr)
	}
}

func TestAlertsAreUnitTested(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(alertsTestPath)
	require.NoError(t, err)
	var tf struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(data, &tf))
	require.Equal(t, []string{"alerts.yml"}, tf.RuleFiles)
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, name := range []string{"LedgerAuditViolation", "LedgerRelayNoLeader", "LedgerRelayLagging", "LedgerReadReplicaLagging"} {
		require.True(t, firing[name], "alerts_test.yml must test %s firing", name)
		require.True(t, quiet[name], "alerts_test.yml must test %s not firing", name)
	}
}

// ---------------------------------------------------------------------------
// deploy/prometheus.yml
// ---------------------------------------------------------------------------

func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(prometheusConfigPath)
	require.NoError(t, err)
	var pc struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &pc))
	require.Equal(t, "15s", pc.Global.ScrapeInterval)
	require.Equal(t, []string{"alerts.yml"}, pc.RuleFiles, "rule_files must name alerts.yml relative to prometheus.yml")
	targets := map[string][]string{}
	for _, sc := range pc.ScrapeConfigs {
		require.NotContains(t, targets, sc.JobName, "job %s is defined twice", sc.JobName)
		targets[sc.JobName] = []string{}
		for _, st := range sc.StaticConfigs {
			targets[sc.JobName] = append(targets[sc.JobName], st.Targets...)
		}
		if sc.JobName == "ledgerd" {
			require.Contains(t, []string{"", "/metrics"}, sc.MetricsPath)
		}
	}
	// Every ledgerd replica of docker-compose.yml, each scraped directly
	// (not through the balancer: the series are per process).
	var replicas []string
	for _, name := range composeLedgerdReplicas {
		replicas = append(replicas, name+":3000")
	}
	require.Equal(t, replicas, targets["ledgerd"], "prometheus.yml scrapes every ledgerd replica")
	require.NotContains(t, targets["ledgerd"], composeBalancer+":3000", "never scrape through the balancer")
	require.Equal(t, []string{"rabbitmq:15692"}, targets["rabbitmq"])
	require.Equal(t, []string{"localhost:9090"}, targets["prometheus"])
}

// ---------------------------------------------------------------------------
// Grafana
// ---------------------------------------------------------------------------

// The dashboard is written in Grafana's export format ("Export for sharing
// externally"), so that it imports into any Grafana, and is also loaded by
// the file provisioning of the Compose stack. The two paths treat it
// differently, and the tests below play both as Grafana does:
//
//   - Import (UI or POST /api/dashboards/import) asks for each of __inputs
//     and replaces every "${DS_PROMETHEUS}" string with the chosen
//     datasource's uid before saving.
//   - File provisioning substitutes nothing: "${DS_PROMETHEUS}" stays as
//     it is.
//
// So the panels refer to neither the datasource's uid nor the input, but to
// the datasource variable, "${datasource}". The variable's current value is
// the input (chosen on import) and its text the provisioned datasource's
// name; Grafana resolves a datasource variable by value (the uid), then by
// text (the name), then takes the first datasource of the type.

const (
	datasourceVar    = "${datasource}" // how every panel and target names its datasource
	datasourceInput  = "DS_PROMETHEUS"
	jobMatcher       = `job=~"$job"`
	defaultScrapeJob = "ledgerd" // the job of deploy/prometheus.yml, of the ServiceMonitor and of the alerts
)

type dashboardPanel struct {
	ID          int              `json:"id"`
	Type        string           `json:"type"`
	Title       string           `json:"title"`
	Datasource  *datasourceRef   `json:"datasource"`
	Targets     []dashTarget     `json:"targets"`
	Panels      []dashboardPanel `json:"panels"`
	FieldConfig struct {
		Defaults struct {
			Thresholds struct {
				Steps []struct {
					Color string   `json:"color"`
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashTarget struct {
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

// variableCurrent is a variable's saved selection: a string, or a list of
// strings for a multi-value variable.
type variableCurrent struct {
	Text  any `json:"text"`
	Value any `json:"value"`
}

type dashVariable struct {
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	Query      any              `json:"query"` // a string (datasource: the plugin id) or an object (query)
	Datasource *datasourceRef   `json:"datasource"`
	Definition string           `json:"definition"`
	Multi      bool             `json:"multi"`
	IncludeAll bool             `json:"includeAll"`
	AllValue   string           `json:"allValue"`
	Regex      string           `json:"regex"`
	Current    *variableCurrent `json:"current"`
}

type dashboardInput struct {
	Name     string `json:"name"`
	Label    string `json:"label"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type dashboardRequirement struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version string `json:"version"`
}

type dashboard struct {
	Inputs     []dashboardInput       `json:"__inputs"`
	Requires   []dashboardRequirement `json:"__requires"`
	UID        string                 `json:"uid"`
	Title      string                 `json:"title"`
	Panels     []dashboardPanel       `json:"panels"`
	Templating struct {
		List []dashVariable `json:"list"`
	} `json:"templating"`
}

// variable returns the dashboard's variable of that name.
func (d dashboard) variable(t *testing.T, name string) dashVariable {
	t.Helper()
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v
		}
	}
	require.FailNow(t, "the dashboard has no variable $"+name)
	return dashVariable{}
}

func readDashboard(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	return data
}

// parseDashboard decodes a dashboard and returns it with all its panels,
// those of collapsed rows included.
func parseDashboard(t *testing.T, data []byte) (dashboard, []dashboardPanel) {
	t.Helper()
	var d dashboard
	require.NoError(t, json.Unmarshal(data, &d), "the dashboard must be valid JSON")
	var raw map[string]any
	require.NoError(t, json.Unmarshal(data, &raw))
	require.NotContains(t, raw, "id", "a provisioned or imported dashboard carries a uid, not a database id")
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)
	var all []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels) // panels of collapsed rows
		}
	}
	walk(d.Panels)
	return d, all
}

// loadDashboard returns the dashboard as file provisioning loads it: as it
// is on disk.
func loadDashboard(t *testing.T) (dashboard, []dashboardPanel) {
	t.Helper()
	return parseDashboard(t, readDashboard(t))
}

// provisionedDatasource is the datasource the Compose stack provisions.
type provisionedDatasource struct {
	Name      string `yaml:"name"`
	UID       string `yaml:"uid"`
	Type      string `yaml:"type"`
	URL       string `yaml:"url"`
	IsDefault bool   `yaml:"isDefault"`
}

func loadProvisionedDatasource(t *testing.T) provisionedDatasource {
	t.Helper()
	data, err := os.ReadFile(datasourceProvPath)
	require.NoError(t, err)
	var prov struct {
		APIVersion  int                     `yaml:"apiVersion"`
		Datasources []provisionedDatasource `yaml:"datasources"`
	}
	require.NoError(t, yaml.Unmarshal(data, &prov))
	require.Equal(t, 1, prov.APIVersion)
	require.Len(t, prov.Datasources, 1)
	ds := prov.Datasources[0]
	require.Equal(t, "prometheus", ds.Type)
	require.Equal(t, "http://prometheus:9090", ds.URL, "the datasource must reach the Compose prometheus service")
	require.NotEmpty(t, ds.UID, "the datasource needs a fixed uid")
	require.NotEmpty(t, ds.Name)
	return ds
}

// grafanaDatasource is a datasource of a Grafana instance, as a datasource
// variable lists it: the name as the option's text, the uid as its value.
type grafanaDatasource struct{ name, uid string }

// resolveDatasourceVariable picks the datasource a single-value datasource
// variable selects among the datasources of its plugin type, as Grafana's
// dashboards do (MultiValueVariable in grafana/scenes): the option whose
// value is the current value, else the one whose text is the current text,
// else the first. byFallback reports the last case, a choice the dashboard
// did not make.
func resolveDatasourceVariable(t *testing.T, v dashVariable, options []grafanaDatasource) (uid string, byFallback bool) {
	t.Helper()
	require.NotEmpty(t, options)
	require.NotNil(t, v.Current, "variable $%s has no current value", v.Name)
	value, ok := v.Current.Value.(string)
	require.True(t, ok, "variable $%s: current.value must be a string (single value)", v.Name)
	text, ok := v.Current.Text.(string)
	require.True(t, ok, "variable $%s: current.text must be a string (single value)", v.Name)
	for _, o := range options {
		if o.uid == value {
			return o.uid, false
		}
	}
	for _, o := range options {
		if o.name == text {
			return o.uid, false
		}
	}
	return options[0].uid, true
}

// importDashboard does what Grafana's import does to the file: every
// "${INPUT}" string of __inputs replaced by the chosen value (Grafana's
// DashTemplateEvaluator), __inputs dropped. Like Grafana's import, it
// refuses a dashboard whose input has no value.
func importDashboard(data []byte, values map[string]string) ([]byte, error) {
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	inputs, _ := raw["__inputs"].([]any)
	replace := map[string]string{}
	for _, in := range inputs {
		obj, _ := in.(map[string]any)
		name, _ := obj["name"].(string)
		v, ok := values[name]
		if !ok {
			return nil, fmt.Errorf("dashboard input variable: %s missing from import command", name)
		}
		replace["${"+name+"}"] = v
	}
	delete(raw, "__inputs")
	var eval func(any) any
	eval = func(v any) any {
		switch v := v.(type) {
		case string:
			return grafanaInputRef.ReplaceAllStringFunc(v, func(m string) string {
				if r, ok := replace[m]; ok {
					return r
				}
				return m
			})
		case []any:
			for i := range v {
				v[i] = eval(v[i])
			}
		case map[string]any:
			for k := range v {
				v[k] = eval(v[k])
			}
		}
		return v
	}
	return json.Marshal(eval(raw))
}

var grafanaInputRef = regexp.MustCompile(`\$\{.+?\}`)

// requireVariableDatasource fails unless ref is the datasource variable.
func requireVariableDatasource(t *testing.T, where string, ref *datasourceRef) {
	t.Helper()
	require.NotNil(t, ref, "%s has no datasource", where)
	require.Equal(t, "prometheus", ref.Type, where)
	require.Equal(t, datasourceVar, ref.UID, "%s must use the datasource variable %s, not a fixed uid or an import input", where, datasourceVar)
}

func TestDashboardImportFormat(t *testing.T) {
	t.Parallel()
	data := readDashboard(t)
	d, panels := parseDashboard(t, data)

	// __inputs: one Prometheus datasource input.
	require.Equal(t, []dashboardInput{{Name: datasourceInput, Label: "Prometheus", Type: "datasource", PluginID: "prometheus"}}, d.Inputs,
		"__inputs must declare the Prometheus datasource input %s", datasourceInput)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &raw))
	require.Contains(t, raw, "__elements", "Grafana's export format has __elements (the library panels; none here)")
	// Every ${...} that is no Grafana variable is a declared input, and the
	// input is used (else the import would ask for a datasource it ignores).
	refs := map[string]int{}
	for _, m := range grafanaInputRef.FindAllString(string(data), -1) {
		refs[m]++
	}
	for ref := range refs {
		name := strings.TrimSuffix(strings.TrimPrefix(ref, "${"), "}")
		if strings.HasPrefix(name, "DS_") {
			require.Equal(t, datasourceInput, name, "the dashboard refers to an undeclared input %s", ref)
		}
	}
	require.Equal(t, 1, refs["${"+datasourceInput+"}"], "the input must be used once: as the datasource variable's current value")

	// __requires: Grafana (the version the Compose stack runs), the
	// Prometheus datasource and exactly the panel types used.
	cf := loadCompose(t)
	_, grafanaVersion, _ := strings.Cut(cf.Services["grafana"].Image, ":")
	used := map[string]bool{}
	for _, p := range panels {
		if p.Type != "row" {
			used[p.Type] = true
		}
	}
	required := map[string]bool{}
	var grafanaReq, prometheusReq bool
	for _, r := range d.Requires {
		require.NotEmpty(t, r.Name, "__requires entry %s has no name", r.ID)
		switch r.Type {
		case "grafana":
			grafanaReq = true
			require.Equal(t, "grafana", r.ID)
			require.Equal(t, grafanaVersion, r.Version, "__requires names the Grafana version of docker-compose.yml")
		case "datasource":
			prometheusReq = true
			require.Equal(t, "prometheus", r.ID)
		case "panel":
			required[r.ID] = true
		default:
			require.Failf(t, "bad __requires entry", "type %q", r.Type)
		}
	}
	require.True(t, grafanaReq, "__requires must name Grafana")
	require.True(t, prometheusReq, "__requires must name the Prometheus datasource")
	require.Equal(t, used, required, "__requires must list exactly the panel types the dashboard uses")
}

func TestDashboardUsesTheDatasourceVariable(t *testing.T) {
	t.Parallel()
	d, panels := loadDashboard(t)
	v := d.variable(t, "datasource")
	require.Equal(t, "datasource", v.Type, "$datasource must be a datasource variable")
	require.Equal(t, "prometheus", v.Query, "$datasource must list the prometheus datasources")
	require.False(t, v.Multi, "$datasource selects one datasource")
	require.False(t, v.IncludeAll)
	require.Empty(t, v.Regex, "$datasource must not filter datasources by name: an existing Grafana names them its own way")

	for _, p := range panels {
		if len(p.Targets) == 0 {
			require.True(t, p.Datasource == nil || p.Datasource.Type != "prometheus", "panel %q without queries names a datasource", p.Title)
			continue
		}
		requireVariableDatasource(t, "panel "+p.Title, p.Datasource)
		for _, tg := range p.Targets {
			requireVariableDatasource(t, "a target of panel "+p.Title, tg.Datasource)
		}
	}
	for _, qv := range d.Templating.List {
		if qv.Type == "query" {
			requireVariableDatasource(t, "variable $"+qv.Name, qv.Datasource)
		}
	}
	// No fixed uid of any Prometheus left anywhere in the file.
	require.NotContains(t, string(readDashboard(t)), loadProvisionedDatasource(t).UID,
		"the dashboard must not name the provisioned datasource's uid: an existing Grafana has another")
}

// TestDashboardDatasourceResolves plays Grafana's resolution of $datasource
// on both paths: provisioned in the Compose stack, and imported into an
// existing Grafana with datasources of its own.
func TestDashboardDatasourceResolves(t *testing.T) {
	t.Parallel()
	prov := loadProvisionedDatasource(t)
	data := readDashboard(t)

	t.Run("provisioned", func(t *testing.T) {
		t.Parallel()
		// File provisioning substitutes no input. The stack's Grafana has
		// the provisioned datasource, and the test adds a second one
		// listed before it, so that the first-option fallback would pick
		// the wrong one.
		d, _ := parseDashboard(t, data)
		options := []grafanaDatasource{{name: "Another Prometheus", uid: "another"}, {name: prov.Name, uid: prov.UID}}
		uid, fallback := resolveDatasourceVariable(t, d.variable(t, "datasource"), options)
		require.False(t, fallback, "$datasource must select the provisioned datasource itself (current.text %q = its name, or current.value = its uid), not fall back to the first one", prov.Name)
		require.Equal(t, prov.UID, uid, "$datasource must resolve to the provisioned datasource")
	})

	t.Run("imported", func(t *testing.T) {
		t.Parallel()
		// An existing Grafana with datasources named its own way; the user
		// picks the second for DS_PROMETHEUS in the import dialog.
		options := []grafanaDatasource{{name: "Mimir", uid: "mimir-0001"}, {name: "Thanos", uid: "thanos-0002"}}
		imported, err := importDashboard(data, map[string]string{datasourceInput: "thanos-0002"})
		require.NoError(t, err)
		require.NotContains(t, string(imported), "${DS_", "the import substitutes every input")
		d, panels := parseDashboard(t, imported)
		uid, fallback := resolveDatasourceVariable(t, d.variable(t, "datasource"), options)
		require.False(t, fallback)
		require.Equal(t, "thanos-0002", uid, "$datasource must resolve to the datasource chosen at import")
		for _, p := range panels {
			if len(p.Targets) > 0 {
				requireVariableDatasource(t, "imported panel "+p.Title, p.Datasource)
			}
		}
	})

	t.Run("imported without a datasource", func(t *testing.T) {
		t.Parallel()
		// Grafana's import refuses a dashboard whose input has no value:
		// the dashboard declares what it needs.
		_, err := importDashboard(data, map[string]string{})
		require.ErrorContains(t, err, datasourceInput)
	})
}

// selectorMatchers returns, for every selector of metric name in expr, its
// label matchers ("" when it has none).
func selectorMatchers(expr, name string) []string {
	isNameChar := func(c byte) bool {
		return c == '_' || c == ':' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	}
	var out []string
	for i := 0; ; {
		j := strings.Index(expr[i:], name)
		if j < 0 {
			return out
		}
		start, end := i+j, i+j+len(name)
		i = end
		if (start > 0 && isNameChar(expr[start-1])) || (end < len(expr) && isNameChar(expr[end])) {
			continue // part of a longer name
		}
		rest := strings.TrimLeft(expr[end:], " \t\n")
		matchers := ""
		if strings.HasPrefix(rest, "{") {
			if k := strings.IndexByte(rest, '}'); k >= 0 {
				matchers = rest[:k+1]
			}
		}
		out = append(out, matchers)
	}
}

func TestDashboardJobVariable(t *testing.T) {
	t.Parallel()
	d, panels := loadDashboard(t)
	job := d.variable(t, "job")
	require.Equal(t, "query", job.Type, "$job must be a query variable")
	require.Regexp(t, `^label_values\([a-z_]+(\{[^}]*\})?,\s*job\)$`, job.Definition, "$job lists the job label's values")
	require.Empty(t, job.AllValue, "$job's All must mean the jobs it lists, not every job of the Prometheus")
	require.NotNil(t, job.Current)
	require.Contains(t, fmt.Sprint(job.Current.Value), defaultScrapeJob, "$job defaults to %q, the job of deploy/prometheus.yml and the ServiceMonitor", defaultScrapeJob)

	inst := d.variable(t, "instance")
	require.Contains(t, inst.Definition, jobMatcher, "$instance must list the instances of the selected job(s) only")
	require.Equal(t, []string{"datasource", "job", "instance"}, func() []string {
		var names []string
		for _, v := range d.Templating.List {
			names = append(names, v.Name)
		}
		return names
	}(), "variables in dependency order: $job's query uses $datasource, $instance's uses $job")

	for _, p := range panels {
		for _, tg := range p.Targets {
			require.NotRegexp(t, `job\s*=\s*"`, tg.Expr, "panel %q: a fixed job label (%s); use %s", p.Title, tg.Expr, jobMatcher)
			for _, name := range metricNames(tg.Expr) {
				for _, m := range selectorMatchers(tg.Expr, name) {
					require.Contains(t, m, jobMatcher, "panel %q: %s must select %s (expression %q)", p.Title, name, jobMatcher, tg.Expr)
				}
			}
		}
	}
}

func TestSelectorMatchers(t *testing.T) {
	t.Parallel()
	expr := `sum(rate(ledger_http_requests_total{job=~"$job", status=~"5.."}[1m])) / sum(rate(ledger_http_requests_total[1m])) + ledger_http_requests_total_x`
	require.Equal(t, []string{`{job=~"$job", status=~"5.."}`, ""}, selectorMatchers(expr, "ledger_http_requests_total"))
	require.Equal(t, []string{""}, selectorMatchers("up", "up"))
}

var labelValuesLastArg = regexp.MustCompile(`,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

func TestDashboardPanels(t *testing.T) {
	t.Parallel()
	d, panels := loadDashboard(t)
	ids := map[int]bool{}
	used := map[string]bool{}
	violationsStat := false
	for _, p := range panels {
		require.NotZero(t, p.ID, "panel %q has no id", p.Title)
		require.False(t, ids[p.ID], "panel id %d is used twice", p.ID)
		ids[p.ID] = true
		for _, tg := range p.Targets {
			require.NotEmpty(t, strings.TrimSpace(tg.Expr), "panel %q has a target without expr", p.Title)
			for _, m := range requireKnownMetrics(t, "dashboard panel "+p.Title, tg.Expr) {
				used[m] = true
			}
			if p.Type == "stat" && strings.Contains(tg.Expr, "ledger_audit_violations") {
				red, baseGreen := false, false
				for i, s := range p.FieldConfig.Defaults.Thresholds.Steps {
					if i == 0 {
						baseGreen = s.Color == "green"
					}
					if s.Color == "red" && s.Value != nil && *s.Value > 0 && *s.Value <= 1 {
						red = true
					}
				}
				if red && baseGreen {
					violationsStat = true
				}
			}
		}
	}
	require.True(t, violationsStat, "the dashboard needs a stat panel of ledger_audit_violations, green at 0 and red when > 0")
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			requireKnownMetrics(t, "dashboard variable "+v.Name, labelValuesLastArg.ReplaceAllString(v.Definition, ")"))
		}
	}
	for _, m := range []string{
		"ledger_http_requests_total", "ledger_http_request_duration_seconds", "ledger_http_requests_in_flight",
		"ledger_balance_changes_rejected_total", "ledger_entries_posted_total",
		"ledger_write_transaction_duration_seconds", "ledger_write_batch_size",
		"ledger_outbox_pending_events", "ledger_outbox_oldest_pending_age_seconds",
		"ledger_outbox_events_published_total", "ledger_outbox_publish_failures_total", "ledger_outbox_publish_lag_seconds",
		"ledger_relay_leader", "ledger_relay_partitions", "ledger_relay_broker_connected",
		"ledger_db_pool_acquired_connections", "ledger_db_pool_idle_connections", "ledger_db_pool_max_connections",
		"ledger_db_pool_empty_acquires_total",
		"ledger_audit_violations", "ledger_audit_last_clean_pass_timestamp_seconds",
		"ledger_build_info",
		"ledger_read_replica_lag_seconds", "ledger_read_replica_in_use",
	} {
		require.True(t, used[m], "the dashboard has no panel showing %s", m)
	}
}

func TestGrafanaDashboardProvider(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(dashboardProvPath)
	require.NoError(t, err)
	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	require.NoError(t, yaml.Unmarshal(data, &prov))
	require.Equal(t, 1, prov.APIVersion)
	require.Len(t, prov.Providers, 1)
	require.Equal(t, "file", prov.Providers[0].Type)

	// The provider must read the folder docker-compose.yml mounts the
	// dashboards into.
	svc := loadCompose(t).Services["grafana"]
	mounts := bindMounts(t, svc)
	target, ok := mounts["./deploy/grafana/dashboards"]
	require.True(t, ok, "grafana must mount ./deploy/grafana/dashboards")
	require.Equal(t, prov.Providers[0].Options.Path, target.path, "the dashboard provider's path must be where compose mounts the dashboards")
}
