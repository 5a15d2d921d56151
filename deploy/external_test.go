package deploy_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// externalTimeout bounds each external checker.
const externalTimeout = 2 * time.Minute

// TestExternalCheckers runs the real validators on the deployment files:
// promtool (Debian/Ubuntu package "prometheus", or a Prometheus release
// tarball) and docker-compose (package "docker-compose", or the docker
// CLI's compose plugin). A missing tool is a FAILURE, not a skip: these
// checks are part of `make lint`, and a silently skipped check is no check.
func TestExternalCheckers(t *testing.T) {
	t.Parallel()
	checks := []struct {
		name string
		argv []string
	}{
		{"promtool check config", []string{"promtool", "check", "config", prometheusConfigPath}},
		{"promtool check rules", []string{"promtool", "check", "rules", alertsPath}},
		{"promtool test rules", []string{"promtool", "test", "rules", alertsTestPath}},
		{"docker-compose config", append(composeCommand(t), "-f", composePath, "config", "-q")},
		// The balancer's configuration, parsed by HAProxy itself (Debian's,
		// an older release than the image's: the config uses nothing newer).
		{"haproxy -c", []string{"haproxy", "-c", "-f", haproxyConfigPath}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runChecker(t, c.argv)
		})
	}
	t.Run("promtool check dashboard queries", func(t *testing.T) {
		t.Parallel()
		// Every query of the dashboard, with Grafana's variables replaced,
		// as recording rules: promtool then parses each one as PromQL.
		_, panels := loadDashboard(t)
		var rules []map[string]string
		for _, p := range panels {
			for _, tg := range p.Targets {
				expr := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h", "$instance", ".*", "$job", "ledgerd").Replace(tg.Expr)
				rules = append(rules, map[string]string{"record": "dashboard:query", "expr": expr})
			}
		}
		require.NotEmpty(t, rules)
		data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "dashboard_queries.yml")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		runChecker(t, []string{"promtool", "check", "rules", path})
	})
}

// composeCommand returns the argv prefix of Docker Compose: docker-compose
// when installed, else `docker compose` when the docker CLI has the plugin,
// else docker-compose (which then fails loudly in runChecker).
func composeCommand(t *testing.T) []string {
	t.Helper()
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	if docker, err := exec.LookPath("docker"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if exec.CommandContext(ctx, docker, "compose", "version").Run() == nil {
			return []string{"docker", "compose"}
		}
	}
	return []string{"docker-compose"}
}

var installHints = map[string]string{
	"promtool":       "install it: `apt-get install prometheus` (Debian/Ubuntu; provides /usr/bin/promtool), or put promtool from a Prometheus release on PATH",
	"docker-compose": "install it: `apt-get install docker-compose` (works without a Docker engine), or the docker CLI with the compose plugin",
	"haproxy":        "install it: `apt-get install haproxy` (`make tools` does); only its -c check runs, no balancer is started",
}

func runChecker(t *testing.T, argv []string) {
	t.Helper()
	path, err := exec.LookPath(argv[0])
	require.NoError(t, err, "%s is not installed, so `%s` cannot run. This check is required, not optional: %s",
		argv[0], strings.Join(argv, " "), installHints[argv[0]])

	ctx, cancel := context.WithTimeout(context.Background(), externalTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	out, err := cmd.CombinedOutput()
	require.False(t, errors.Is(ctx.Err(), context.DeadlineExceeded), "`%s` did not finish within %s:\n%s", strings.Join(argv, " "), externalTimeout, out)
	require.NoError(t, err, "`%s` failed:\n%s", strings.Join(argv, " "), out)
	t.Logf("%s:\n%s", strings.Join(argv, " "), out)
}
