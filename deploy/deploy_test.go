package deploy_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// Paths are relative to this package's directory, which is the working
// directory of `go test ./deploy/`.
var (
	dockerfilePath = filepath.Join("..", "Dockerfile")
	composePath    = filepath.Join("..", "docker-compose.yml")
	envExamplePath = filepath.Join("..", ".env.example")
	goModPath      = filepath.Join("..", "go.mod")
	readmePath     = filepath.Join("..", "README.md")
)

// ---------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------

// instruction is one Dockerfile instruction with continuations joined.
type instruction struct {
	cmd  string // upper-cased keyword, e.g. "RUN"
	args string
}

// stage is one build stage: its FROM arguments and the instructions after it.
type stage struct {
	image string // image reference of the FROM, e.g. "golang:1.26-bookworm"
	name  string // the AS name, if any
	insts []instruction
}

// parseDockerfile splits a Dockerfile into stages. It handles comments,
// blank lines, backslash line continuations and FROM flags such as
// --platform; it does not implement heredocs or ARG substitution, which this
// project's Dockerfile does not use in FROM lines.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()

	var insts []instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		insts = append(insts, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue // comment lines, also inside continuations
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	require.NoError(t, sc.Err())
	flush()

	var stages []stage
	for _, in := range insts {
		if in.cmd == "FROM" {
			var st stage
			fields := strings.Fields(in.args)
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
					// flag such as --platform=...
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					st.name = fields[i+1]
					i++
				case st.image == "":
					st.image = fields[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].insts = append(stages[len(stages)-1].insts, in)
		}
	}
	return stages
}

// buildStage returns the index of the stage that runs `go build`, the stage
// and that RUN instruction.
func buildStage(t *testing.T, stages []stage) (int, stage, instruction) {
	t.Helper()
	for i, st := range stages {
		for _, in := range st.insts {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				return i, st, in
			}
		}
	}
	require.FailNow(t, "no stage of the Dockerfile runs `go build`")
	return 0, stage{}, instruction{}
}

func TestDockerfileIsMultiStage(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, dockerfilePath)
	require.GreaterOrEqual(t, len(stages), 2, "Dockerfile must be multi-stage (at least two FROM lines)")
}

func TestDockerfileFinalStageRunsAsNonRoot(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, dockerfilePath)
	require.NotEmpty(t, stages)
	final := stages[len(stages)-1]

	user := ""
	for _, in := range final.insts {
		if in.cmd == "USER" {
			user = in.args // the last USER wins
		}
	}
	require.NotEmpty(t, user, "final stage (%s) must set USER", final.image)
	name, group, _ := strings.Cut(user, ":")
	require.NotContains(t, []string{"root", "0"}, name, "final stage must not run as root (USER %s)", user)
	require.NotContains(t, []string{"root", "0"}, group, "final stage must not run with the root group (USER %s)", user)
}

func TestDockerfileBuildsStaticBinaryFromCmdLedgerd(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, dockerfilePath)
	idx, st, run := buildStage(t, stages)

	require.Regexp(t, `(^|\s)\./cmd/ledgerd/?(\s|$)`, run.args, "`go build` must build ./cmd/ledgerd")

	cgoOff := strings.Contains(run.args, "CGO_ENABLED=0")
	for _, in := range st.insts {
		if in.cmd == "ENV" && regexp.MustCompile(`CGO_ENABLED[= ]+"?0"?`).MatchString(in.args) {
			cgoOff = true
		}
	}
	require.True(t, cgoOff, "the build stage must build with CGO_ENABLED=0 (a static binary for the distroless image)")

	// The binary must not be built in the final stage.
	require.Less(t, idx, len(stages)-1, "`go build` must run in a builder stage, not the final one")
}

var goImageTag = regexp.MustCompile(`^(?:[^/]+/)*golang:(\d+(?:\.\d+){1,2})(?:[-@].*)?$`)

func TestDockerfileGoVersionSatisfiesGoMod(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, dockerfilePath)
	_, st, _ := buildStage(t, stages)

	m := goImageTag.FindStringSubmatch(st.image)
	require.NotNil(t, m, "builder image %q must be golang:X.Y[...] so its Go version can be checked", st.image)
	image := parseVersion(t, m[1])

	goDirective, toolchain := goModVersions(t)
	require.NotEmpty(t, goDirective, "go.mod has no go directive")
	require.True(t, versionAtLeast(image, parseVersion(t, goDirective)),
		"builder image Go %s is older than go.mod's `go %s`; the golang image sets GOTOOLCHAIN=local, so the build would fail", m[1], goDirective)
	if toolchain != "" {
		require.True(t, versionAtLeast(image, parseVersion(t, toolchain)),
			"builder image Go %s is older than go.mod's `toolchain go%s`", m[1], toolchain)
	}
}

// goModVersions returns the versions of go.mod's go and toolchain directives
// (the latter without its "go" prefix; empty when absent).
func goModVersions(t *testing.T) (goDirective, toolchain string) {
	t.Helper()
	data, err := os.ReadFile(goModPath)
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			continue
		}
		switch fields[0] {
		case "go":
			goDirective = fields[1]
		case "toolchain":
			toolchain = strings.TrimPrefix(fields[1], "go")
		}
	}
	return goDirective, toolchain
}

// parseVersion parses "1.26" or "1.26.3" (a pre-release suffix such as
// "rc1" on the last part is dropped).
func parseVersion(t *testing.T, s string) []int {
	t.Helper()
	parts := strings.Split(s, ".")
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		if i := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			p = p[:i]
		}
		n, err := strconv.Atoi(p)
		require.NoError(t, err, "bad version %q", s)
		out = append(out, n)
	}
	return out
}

// versionAtLeast reports whether the image version satisfies want. A part the
// image tag leaves out (golang:1.26 floats to the newest 1.26.x) is taken as
// satisfying any value of that part.
func versionAtLeast(image, want []int) bool {
	for i := 0; i < len(image) && i < len(want); i++ {
		if image[i] != want[i] {
			return image[i] > want[i]
		}
	}
	return true
}

func TestVersionAtLeast(t *testing.T) {
	t.Parallel()
	cases := []struct {
		image, want string
		ok          bool
	}{
		{"1.26", "1.26", true},
		{"1.26", "1.26.3", true},
		{"1.26", "1.25", true},
		{"1.26", "1.27", false},
		{"1.26.1", "1.26.3", false},
		{"1.26.3", "1.26.3", true},
		{"1.26.4", "1.26", true},
		{"1.30", "1.4", true},
		{"2.0", "1.99", true},
	}
	for _, c := range cases {
		require.Equal(t, c.ok, versionAtLeast(parseVersion(t, c.image), parseVersion(t, c.want)), "image %s, want %s", c.image, c.want)
	}

	tags := map[string]string{
		"golang:1.26-bookworm":                      "1.26",
		"golang:1.26.3-bookworm":                    "1.26.3",
		"golang:1.26":                               "1.26",
		"docker.io/library/golang:1.26-alpine":      "1.26",
		"golang:1.26-bookworm@sha256:0123456789abc": "1.26",
	}
	for ref, want := range tags {
		m := goImageTag.FindStringSubmatch(ref)
		require.NotNil(t, m, ref)
		require.Equal(t, want, m[1], ref)
	}
	require.Nil(t, goImageTag.FindStringSubmatch("golang:latest"))
	require.Nil(t, goImageTag.FindStringSubmatch("gcr.io/distroless/static-debian12:nonroot"))
}

// ---------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string       `yaml:"image"`
	Build       any          `yaml:"build"`
	Command     yaml.Node    `yaml:"command"`
	Environment yaml.Node    `yaml:"environment"`
	DependsOn   yaml.Node    `yaml:"depends_on"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Volumes     []string     `yaml:"volumes"` // short syntax only
	Ports       []string     `yaml:"ports"`
}

type healthcheck struct {
	Test    any  `yaml:"test"`
	Disable bool `yaml:"disable"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	data, err := os.ReadFile(composePath)
	require.NoError(t, err)
	var cf composeFile
	require.NoError(t, yaml.Unmarshal(data, &cf), "docker-compose.yml must be valid YAML")
	return cf
}

// environmentKeys returns the variable names of a service's environment,
// which Compose allows as a mapping or as a list of KEY=VALUE (or KEY).
func environmentKeys(t *testing.T, n yaml.Node) []string {
	t.Helper()
	var keys []string
	switch n.Kind {
	case 0: // absent
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			keys = append(keys, n.Content[i].Value)
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, _, _ := strings.Cut(item.Value, "=")
			keys = append(keys, k)
		}
	default:
		require.FailNow(t, "environment must be a mapping or a list")
	}
	return keys
}

// dependsOnConditions maps each dependency to its condition ("" in the short
// list form, which means service_started).
func dependsOnConditions(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.SequenceNode:
		for _, item := range n.Content {
			out[item.Value] = ""
		}
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			var dep struct {
				Condition string `yaml:"condition"`
			}
			require.NoError(t, n.Content[i+1].Decode(&dep))
			out[n.Content[i].Value] = dep.Condition
		}
	default:
		require.FailNow(t, "depends_on must be a mapping or a list")
	}
	return out
}

// composeLedgerdReplicas are the ledgerd services of docker-compose.yml:
// two replicas on one database behind the balancer composeBalancer.
var (
	composeLedgerdReplicas = []string{"ledgerd-1", "ledgerd-2"}
	composeBalancer        = "lb"
)

// ledgerdReplica returns a ledgerd service of docker-compose.yml.
func ledgerdReplica(t *testing.T, cf composeFile, name string) composeService {
	t.Helper()
	svc, ok := cf.Services[name]
	require.True(t, ok, "docker-compose.yml must define service %s (one of the ledgerd replicas %v)", name, composeLedgerdReplicas)
	return svc
}

func TestComposeServicesHaveHealthchecks(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	for _, name := range append([]string{"postgres", "rabbitmq", composeBalancer}, composeLedgerdReplicas...) {
		svc, ok := cf.Services[name]
		require.True(t, ok, "docker-compose.yml must define service %q", name)
		require.NotNil(t, svc.Healthcheck, "service %q must have a healthcheck", name)
		require.False(t, svc.Healthcheck.Disable, "service %q must not disable its healthcheck", name)
		require.NotEmpty(t, svc.Healthcheck.Test, "service %q healthcheck must have a test", name)
	}
}

func TestComposeLedgerdWaitsForHealthyDependencies(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	for _, replica := range composeLedgerdReplicas {
		deps := dependsOnConditions(t, ledgerdReplica(t, cf, replica).DependsOn)
		for _, name := range []string{"postgres", "rabbitmq"} {
			cond, ok := deps[name]
			require.True(t, ok, "%s must depend on %s", replica, name)
			require.Equal(t, "service_healthy", cond, "%s must wait for %s with condition: service_healthy", replica, name)
		}
	}
}

func TestComposeLedgerdEnvironmentIsDocumented(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	documented := envExampleKeys(t)
	for _, replica := range composeLedgerdReplicas {
		keys := environmentKeys(t, ledgerdReplica(t, cf, replica).Environment)
		require.NotEmpty(t, keys, "%s sets no environment", replica)
		for _, k := range keys {
			require.Contains(t, documented, k, "%s's compose environment sets %s, which .env.example does not list", replica, k)
		}
	}
}

// environment returns a service's environment as a map (values of the list
// form without "=" are empty).
func environment(t *testing.T, n yaml.Node) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch n.Kind {
	case 0:
	case yaml.MappingNode:
		for i := 0; i < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, v, _ := strings.Cut(item.Value, "=")
			out[k] = v
		}
	default:
		require.FailNow(t, "environment must be a mapping or a list")
	}
	return out
}

// mount is the container side of a bind mount.
type mount struct {
	path     string
	readOnly bool
}

// bindMounts maps the host paths of a service's bind mounts (those starting
// with . or /) to their container side.
func bindMounts(t *testing.T, svc composeService) map[string]mount {
	t.Helper()
	out := map[string]mount{}
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || (!strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/")) {
			continue // a named volume
		}
		m := mount{path: parts[1]}
		if len(parts) > 2 {
			m.readOnly = slices.Contains(strings.Split(parts[2], ","), "ro")
		}
		out[parts[0]] = m
	}
	return out
}

func TestComposeHasTheMonitoringStack(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	for _, name := range append([]string{"postgres", "rabbitmq", composeBalancer, "prometheus", "grafana"}, composeLedgerdReplicas...) {
		require.Contains(t, cf.Services, name, "docker-compose.yml must define service %q", name)
	}
	// Every bind-mounted file or folder exists (paths are relative to the
	// repository root, where docker-compose.yml is).
	for name, svc := range cf.Services {
		for host := range bindMounts(t, svc) {
			if strings.HasPrefix(host, ".") {
				_, err := os.Stat(filepath.Join("..", host))
				require.NoError(t, err, "service %s mounts %s, which does not exist", name, host)
			}
		}
	}
	require.Contains(t, cf.Services["rabbitmq"].Image, "management",
		"rabbitmq must run a -management image (UI, and rabbitmq_prometheus on 15692, enabled in the official images)")
	for _, replica := range composeLedgerdReplicas {
		require.Equal(t, "true", environment(t, ledgerdReplica(t, cf, replica).Environment)["AUDIT_ENABLED"], "%s in compose runs the continuous auditor", replica)
	}
}

// requirePinned fails on an image without a tag or with :latest.
func requirePinned(t *testing.T, service, image string) {
	t.Helper()
	_, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	require.True(t, ok && tag != "" && tag != "latest", "service %s: image %q must be pinned to a version tag", service, image)
}

// requireLocalPort fails unless the service publishes containerPort on
// 127.0.0.1 with the default host port hostPort.
func requireLocalPort(t *testing.T, service string, ports []string, hostPort, containerPort string) {
	t.Helper()
	for _, p := range ports {
		if strings.HasPrefix(p, "127.0.0.1:") && strings.HasSuffix(p, ":"+containerPort) && strings.Contains(p, hostPort) {
			return
		}
	}
	require.Failf(t, "port not published", "service %s must publish %s on 127.0.0.1:%s (got %v)", service, containerPort, hostPort, ports)
}

func TestComposePrometheus(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	svc, ok := cf.Services["prometheus"]
	require.True(t, ok)
	require.True(t, strings.HasPrefix(svc.Image, "prom/prometheus:"), "prometheus runs prom/prometheus, got %q", svc.Image)
	requirePinned(t, "prometheus", svc.Image)
	requireLocalPort(t, "prometheus", svc.Ports, "9090", "9090")

	mounts := bindMounts(t, svc)
	for host, target := range map[string]string{
		"./deploy/prometheus.yml": "/etc/prometheus/prometheus.yml",
		"./deploy/alerts.yml":     "/etc/prometheus/alerts.yml",
	} {
		m, ok := mounts[host]
		require.True(t, ok, "prometheus must mount %s", host)
		require.Equal(t, target, m.path, "prometheus must mount %s at %s (prometheus.yml names alerts.yml relative to itself)", host, target)
		require.True(t, m.readOnly, "prometheus must mount %s read-only", host)
	}
	var command []string
	if svc.Command.Kind != 0 {
		require.NoError(t, svc.Command.Decode(&command), "prometheus command must be a list")
	}
	require.Contains(t, command, "--config.file=/etc/prometheus/prometheus.yml")
	require.NotNil(t, svc.Healthcheck, "prometheus needs a healthcheck (grafana waits for it)")
}

func TestComposeGrafana(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	svc, ok := cf.Services["grafana"]
	require.True(t, ok)
	require.True(t, strings.HasPrefix(svc.Image, "grafana/grafana:"), "grafana runs grafana/grafana, got %q", svc.Image)
	requirePinned(t, "grafana", svc.Image)
	requireLocalPort(t, "grafana", svc.Ports, "3001", "3000")

	env := environment(t, svc.Environment)
	require.Equal(t, "true", env["GF_AUTH_ANONYMOUS_ENABLED"], "grafana: anonymous access on")
	require.Equal(t, "Viewer", env["GF_AUTH_ANONYMOUS_ORG_ROLE"], "grafana: anonymous users are viewers")

	mounts := bindMounts(t, svc)
	prov, ok := mounts["./deploy/grafana/provisioning"]
	require.True(t, ok, "grafana must mount ./deploy/grafana/provisioning")
	require.Equal(t, "/etc/grafana/provisioning", prov.path)
	require.True(t, prov.readOnly, "grafana must mount the provisioning read-only")
	dash, ok := mounts["./deploy/grafana/dashboards"]
	require.True(t, ok, "grafana must mount ./deploy/grafana/dashboards")
	require.True(t, dash.readOnly, "grafana must mount the dashboards read-only")

	deps := dependsOnConditions(t, svc.DependsOn)
	require.Contains(t, deps, "prometheus", "grafana must depend on prometheus")

	pdeps := dependsOnConditions(t, cf.Services["prometheus"].DependsOn)
	for _, replica := range composeLedgerdReplicas {
		require.Contains(t, pdeps, replica, "prometheus must start after %s", replica)
	}
}

// ---------------------------------------------------------------------------
// .env.example and README.md
// ---------------------------------------------------------------------------

var envLine = regexp.MustCompile(`^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=`)

// envExampleKeys returns the variable names assigned in .env.example.
func envExampleKeys(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(envExamplePath)
	require.NoError(t, err)
	keys := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := envLine.FindStringSubmatch(line)
		require.NotNil(t, m, ".env.example: line %q is neither a comment nor KEY=VALUE", line)
		require.False(t, keys[m[1]], ".env.example: %s is set twice", m[1])
		keys[m[1]] = true
	}
	require.NotEmpty(t, keys, ".env.example lists no variables")
	return keys
}

func TestEnvExampleKeysAreInReadme(t *testing.T) {
	t.Parallel()
	keys := envExampleKeys(t)

	data, err := os.ReadFile(readmePath)
	if os.IsNotExist(err) {
		t.Log("README.md does not exist yet: skipping the check that it documents every .env.example variable")
		return
	}
	require.NoError(t, err)
	readme := string(data)

	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var missing []string
	for _, k := range names {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(k) + `\b`).MatchString(readme) {
			missing = append(missing, k)
		}
	}
	require.Empty(t, missing, "README.md does not mention these .env.example variables")
}

// ---------------------------------------------------------------------------
// Image versions and OCI labels
// ---------------------------------------------------------------------------

// composeDefault matches Compose's ${VAR:-default} and ${VAR-default}.
var composeDefault = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}`)

// composeInterpolate replaces each ${VAR:-default} of s by its default: the
// value Compose uses when VAR is unset.
func composeInterpolate(s string) string {
	return composeDefault.ReplaceAllString(s, "$1")
}

// imageTag returns an image reference's tag ("" when it has none).
func imageTag(image string) string {
	image, _, _ = strings.Cut(image, "@")
	_, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	return tag
}

// composeLedgerdVersion returns the default version tag of the ledgerd
// image in docker-compose.yml, which every replica runs.
func composeLedgerdVersion(t *testing.T) string {
	t.Helper()
	cf := loadCompose(t)
	image := ledgerdReplica(t, cf, composeLedgerdReplicas[0]).Image
	require.NotEmpty(t, image, "the ledgerd services must name the image they build (image: ledgerd:<version>), or Compose tags it latest")
	for _, replica := range composeLedgerdReplicas[1:] {
		require.Equal(t, image, ledgerdReplica(t, cf, replica).Image, "every ledgerd replica runs the same image")
	}
	return imageTag(composeInterpolate(image))
}

func TestComposeImagesArePinned(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	for name, svc := range cf.Services {
		require.NotEmpty(t, svc.Image, "service %s must name its image with a version tag (a built image without one is tagged latest)", name)
		requirePinned(t, name, composeInterpolate(svc.Image))
	}
	require.Regexp(t, `^v?\d+\.\d+\.\d+`, composeLedgerdVersion(t), "the ledgerd image's default tag must be a version")
}

func TestComposeBuildArgsAreDockerfileArgs(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	for _, replica := range composeLedgerdReplicas {
		t.Run(replica, func(t *testing.T) {
			t.Parallel()
			requireComposeBuildArgsAreDockerfileArgs(t, ledgerdReplica(t, cf, replica))
		})
	}
}

func requireComposeBuildArgsAreDockerfileArgs(t *testing.T, svc composeService) {
	t.Helper()
	build, ok := svc.Build.(map[string]any)
	require.True(t, ok, "ledgerd's build must be a mapping with context and args")
	require.Equal(t, ".", build["context"])
	args, ok := build["args"].(map[string]any)
	require.True(t, ok, "ledgerd's build must pass args (VERSION, REVISION...)")
	declared := map[string]bool{}
	for _, st := range parseDockerfile(t, dockerfilePath) {
		for _, in := range st.insts {
			if in.cmd == "ARG" {
				name, _, _ := strings.Cut(in.args, "=")
				declared[name] = true
			}
		}
	}
	for name, v := range args {
		require.True(t, declared[name], "docker-compose.yml passes build arg %s, which the Dockerfile does not declare", name)
		if name == "VERSION" {
			require.Equal(t, composeLedgerdVersion(t), composeInterpolate(fmt.Sprint(v)), "the image is tagged with the VERSION it is built with")
		}
	}
	require.Contains(t, args, "VERSION")
	require.Contains(t, args, "REVISION")
}

// dockerLabel matches one key=value of a LABEL instruction.
var dockerLabel = regexp.MustCompile(`([A-Za-z0-9._-]+)=("(?:[^"\\]|\\.)*"|\S+)`)

// stageArgs and stageLabels return the ARG names and the LABELs of a stage.
func stageArgs(st stage) map[string]bool {
	out := map[string]bool{}
	for _, in := range st.insts {
		if in.cmd == "ARG" {
			name, _, _ := strings.Cut(in.args, "=")
			out[name] = true
		}
	}
	return out
}

func stageLabels(t *testing.T, st stage) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range st.insts {
		if in.cmd != "LABEL" {
			continue
		}
		for _, m := range dockerLabel.FindAllStringSubmatch(in.args, -1) {
			v := m[2]
			if strings.HasPrefix(v, `"`) {
				var err error
				v, err = strconv.Unquote(v)
				require.NoError(t, err, "LABEL %s", m[1])
			}
			out[m[1]] = v
		}
	}
	return out
}

// goModule returns go.mod's module path.
func goModule(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(goModPath)
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(mod)
		}
	}
	require.FailNow(t, "go.mod has no module directive")
	return ""
}

func TestDockerfileOCILabels(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, dockerfilePath)
	final := stages[len(stages)-1]
	labels := stageLabels(t, final)
	args := stageArgs(final)
	const oci = "org.opencontainers.image."

	require.Equal(t, "ledgerd", labels[oci+"title"])
	require.NotEmpty(t, labels[oci+"description"])
	require.Equal(t, "https://"+goModule(t), labels[oci+"source"], "source is the repository of go.mod's module")

	// The build-dependent labels come from build args, which the final
	// stage must declare: an ARG is scoped to its stage, and an undeclared
	// one expands to "" without a word.
	for label, arg := range map[string]string{"version": "VERSION", "revision": "REVISION", "created": "CREATED"} {
		require.Equal(t, "${"+arg+"}", labels[oci+label], "%s%s must be the build arg %s", oci, label, arg)
		require.True(t, args[arg], "the final stage must declare ARG %s (ARGs do not cross stages)", arg)
	}

	licenses := labels[oci+"licenses"]
	require.Regexp(t, `^[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*$`, licenses, "licenses must be an SPDX expression")
	files, err := filepath.Glob(filepath.Join("..", "LICEN[CS]E*"))
	require.NoError(t, err)
	if len(files) > 0 {
		require.NotEqual(t, "NOASSERTION", licenses, "the repository has %s: name its SPDX identifier in the licenses label", files[0])
	} else {
		require.Equal(t, "NOASSERTION", licenses, "the repository has no LICENSE file: the label cannot assert a license")
	}
}

func TestDockerfileStampsVersionAndRevision(t *testing.T) {
	t.Parallel()
	stages := parseDockerfile(t, dockerfilePath)
	_, st, run := buildStage(t, stages)
	args := stageArgs(st)
	for v, arg := range map[string]string{"version": "VERSION", "revision": "REVISION"} {
		require.Contains(t, run.args, "-X main."+v+"=${"+arg+"}", "`go build` must stamp main.%s from the build arg %s (ledger_build_info)", v, arg)
		require.True(t, args[arg], "the build stage must declare ARG %s", arg)
	}
}

// ---------------------------------------------------------------------------
// Two ledgerd replicas behind the balancer (docker-compose.yml, haproxy.cfg)
// ---------------------------------------------------------------------------

var haproxyConfigPath = "haproxy.cfg"

// haproxySections parses an HAProxy configuration into its sections: the
// section line ("backend ledgerd") mapped to its directives, each split
// into fields. Comments and blank lines are dropped; a section starts at
// a line that is not indented.
func haproxySections(t *testing.T, path string) map[string][][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string][][]string{}
	current := ""
	for line := range strings.Lines(string(data)) {
		text, _, _ := strings.Cut(line, "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			current = strings.Join(fields, " ")
			require.NotContains(t, out, current, "%s: section %q is defined twice", path, current)
			out[current] = [][]string{}
			continue
		}
		require.NotEmpty(t, current, "%s: directive %q outside any section", path, strings.TrimSpace(text))
		out[current] = append(out[current], fields)
	}
	return out
}

// directives returns the directives of a section whose first fields are
// prefix.
func directives(section [][]string, prefix ...string) [][]string {
	var out [][]string
	for _, d := range section {
		if len(d) >= len(prefix) && slices.Equal(d[:len(prefix)], prefix) {
			out = append(out, d)
		}
	}
	return out
}

func TestComposeRunsTwoLedgerdReplicas(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	// Exactly the replicas named: every service that runs the ledgerd
	// image is one of them.
	var running []string
	for name, svc := range cf.Services {
		if strings.HasPrefix(composeInterpolate(svc.Image), "ledgerd:") {
			running = append(running, name)
		}
	}
	sort.Strings(running)
	require.Equal(t, composeLedgerdReplicas, running, "docker-compose.yml runs two ledgerd replicas")
	require.Len(t, composeLedgerdReplicas, 2)

	first := ledgerdReplica(t, cf, composeLedgerdReplicas[0])
	for _, name := range composeLedgerdReplicas {
		svc := ledgerdReplica(t, cf, name)
		// Identical replicas: same image, build, settings, dependencies
		// and health check (any one may serve any request).
		require.Equal(t, first.Image, svc.Image, "%s: image", name)
		require.Equal(t, first.Build, svc.Build, "%s: build", name)
		require.Equal(t, environment(t, first.Environment), environment(t, svc.Environment), "%s: environment", name)
		require.Equal(t, dependsOnConditions(t, first.DependsOn), dependsOnConditions(t, svc.DependsOn), "%s: depends_on", name)
		require.Equal(t, first.Healthcheck, svc.Healthcheck, "%s: healthcheck", name)
		// Only the balancer publishes the API: two replicas cannot both
		// bind HTTP_PORT on the host.
		require.Empty(t, svc.Ports, "%s must not publish a port: the API goes through %s", name, composeBalancer)
		env := environment(t, svc.Environment)
		require.Equal(t, ":3000", env["HTTP_ADDR"], "%s listens on :3000, where the balancer and Prometheus reach it", name)
		require.NotEqual(t, "false", env["RELAY_ENABLED"], "%s runs a relay: the advisory locks pick the publisher", name)
	}
}

func TestComposeBalancer(t *testing.T) {
	t.Parallel()
	cf := loadCompose(t)
	lb, ok := cf.Services[composeBalancer]
	require.True(t, ok, "docker-compose.yml must define the balancer service %s", composeBalancer)
	require.True(t, strings.HasPrefix(lb.Image, "haproxy:"), "%s runs haproxy, got %q", composeBalancer, lb.Image)
	requirePinned(t, composeBalancer, lb.Image)

	// The API's host port, HTTP_PORT (default 3000), as ledgerd published it
	// before there were two.
	require.Equal(t, []string{"${HTTP_PORT:-3000}:3000"}, lb.Ports, "%s publishes the API on HTTP_PORT", composeBalancer)

	mounts := bindMounts(t, lb)
	cfg, ok := mounts["./deploy/haproxy.cfg"]
	require.True(t, ok, "%s must mount ./deploy/haproxy.cfg", composeBalancer)
	require.Equal(t, "/usr/local/etc/haproxy/haproxy.cfg", cfg.path, "the haproxy image reads /usr/local/etc/haproxy/haproxy.cfg")
	require.True(t, cfg.readOnly, "%s must mount its configuration read-only", composeBalancer)

	deps := dependsOnConditions(t, lb.DependsOn)
	for _, replica := range composeLedgerdReplicas {
		require.Contains(t, deps, replica, "%s must start after %s", composeBalancer, replica)
	}
	require.NotNil(t, lb.Healthcheck, "%s needs a healthcheck", composeBalancer)
}

func TestHaproxyConfigNamesEveryReplica(t *testing.T) {
	t.Parallel()
	sections := haproxySections(t, haproxyConfigPath)

	// The frontend bound to the container port the Compose file publishes.
	var backend string
	for name, section := range sections {
		if !strings.HasPrefix(name, "frontend ") {
			continue
		}
		if len(directives(section, "bind", ":3000")) > 0 {
			require.Empty(t, backend, "one frontend binds :3000")
			d := directives(section, "default_backend")
			require.Len(t, d, 1, "%s: default_backend", name)
			backend = d[0][1]
		}
	}
	require.NotEmpty(t, backend, "haproxy.cfg: a frontend must bind :3000 (the port docker-compose.yml publishes)")
	section, ok := sections["backend "+backend]
	require.True(t, ok, "haproxy.cfg: no backend %s", backend)

	require.Equal(t, [][]string{{"balance", "roundrobin"}}, directives(section, "balance"), "backend %s balances round-robin", backend)

	// One server per replica, by its Compose service name and port.
	var servers []string
	for _, d := range directives(section, "server") {
		require.GreaterOrEqual(t, len(d), 3, "server line %v", d)
		require.Equal(t, d[1]+":3000", d[2], "server %s must be the Compose service of that name, port 3000", d[1])
		servers = append(servers, d[1])
	}
	require.ElementsMatch(t, composeLedgerdReplicas, servers, "backend %s must name exactly the ledgerd replicas of docker-compose.yml", backend)

	// Only ready replicas get traffic.
	require.NotEmpty(t, directives(section, "option", "httpchk"), "backend %s must check its servers over HTTP", backend)
	require.Equal(t, [][]string{{"http-check", "send", "meth", "GET", "uri", "/readyz"}}, directives(section, "http-check", "send"),
		"backend %s must check /readyz (200 while the database answers)", backend)
	defaults := directives(section, "default-server")
	require.Len(t, defaults, 1)
	require.Contains(t, defaults[0], "check", "every server is health-checked")
}
