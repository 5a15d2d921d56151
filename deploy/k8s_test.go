package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var k8sDir = "k8s"

// k8sObject is the part of a Kubernetes object these tests look at.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       yaml.Node         `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64 `yaml:"terminationGracePeriodSeconds"`
	RestartPolicy                 string `yaml:"restartPolicy"`
	SecurityContext               struct {
		RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
		RunAsUser    *int64 `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string    `yaml:"path"`
		Port yaml.Node `yaml:"port"`
	} `yaml:"httpGet"`
}

type podTemplate struct {
	Metadata struct {
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec podSpec `yaml:"spec"`
}

// loadK8s returns the objects kustomization.yaml lists, by kind, and
// checks that every manifest of the folder is listed.
func loadK8s(t *testing.T) map[string][]k8sObject {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	require.NoError(t, err)
	var kust struct {
		Kind      string   `yaml:"kind"`
		Resources []string `yaml:"resources"`
	}
	require.NoError(t, yaml.Unmarshal(data, &kust), "kustomization.yaml must be valid YAML")
	require.Equal(t, "Kustomization", kust.Kind)

	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			require.Contains(t, kust.Resources, base, "kustomization.yaml must list %s", base)
		}
	}

	out := map[string][]k8sObject{}
	for _, res := range kust.Resources {
		data, err := os.ReadFile(filepath.Join(k8sDir, res))
		require.NoError(t, err, "kustomization.yaml lists %s", res)
		var obj k8sObject
		require.NoError(t, yaml.Unmarshal(data, &obj), "%s must be valid YAML", res)
		require.NotEmpty(t, obj.APIVersion, "%s: apiVersion", res)
		require.NotEmpty(t, obj.Kind, "%s: kind", res)
		require.NotEmpty(t, obj.Metadata.Name, "%s: metadata.name", res)
		require.Empty(t, obj.Metadata.Namespace, "%s: manifests carry no namespace (set it with kustomize or kubectl -n)", res)
		out[obj.Kind] = append(out[obj.Kind], obj)
	}
	for _, kind := range []string{"ConfigMap", "Secret", "Deployment", "Service", "Job"} {
		require.Len(t, out[kind], 1, "deploy/k8s needs one %s", kind)
	}
	return out
}

func templateOf(t *testing.T, obj k8sObject) (replicas *int, tmpl podTemplate) {
	t.Helper()
	var spec struct {
		Replicas *int        `yaml:"replicas"`
		Template podTemplate `yaml:"template"`
	}
	require.NoError(t, obj.Spec.Decode(&spec), "%s %s: spec", obj.Kind, obj.Metadata.Name)
	require.NotEmpty(t, spec.Template.Spec.Containers, "%s %s: no containers", obj.Kind, obj.Metadata.Name)
	return spec.Replicas, spec.Template
}

// portOf resolves a probe's port (a number or a container port's name).
func portOf(t *testing.T, c container, n yaml.Node) int {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name != "" && p.Name == n.Value {
			return p.ContainerPort
		}
	}
	var port int
	require.NoError(t, n.Decode(&port), "probe port %q is neither a number nor a named port of the container", n.Value)
	return port
}

func requireNonRoot(t *testing.T, what string, spec podSpec, c container) {
	t.Helper()
	nonRoot := (spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot) ||
		(c.SecurityContext.RunAsNonRoot != nil && *c.SecurityContext.RunAsNonRoot)
	require.True(t, nonRoot, "%s must set runAsNonRoot: true", what)
	require.NotNil(t, c.SecurityContext.ReadOnlyRootFilesystem, "%s must set readOnlyRootFilesystem", what)
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem, "%s must have a read-only root filesystem", what)
	require.NotNil(t, c.SecurityContext.AllowPrivilegeEscalation, "%s must set allowPrivilegeEscalation", what)
	require.False(t, *c.SecurityContext.AllowPrivilegeEscalation, "%s must not allow privilege escalation", what)
}

func TestK8sDeployment(t *testing.T) {
	t.Parallel()
	objs := loadK8s(t)
	dep := objs["Deployment"][0]
	replicas, tmpl := templateOf(t, dep)
	require.NotNil(t, replicas)
	require.Equal(t, 2, *replicas, "the Deployment runs 2 replicas")

	c := tmpl.Spec.Containers[0]
	require.Equal(t, []string{"serve", "--no-migrate"}, append(slices.Clone(c.Command), c.Args...),
		"the API replicas run `serve --no-migrate` (the migrate Job migrates)")

	require.NotNil(t, c.ReadinessProbe, "readinessProbe")
	require.NotNil(t, c.ReadinessProbe.HTTPGet, "readinessProbe must be an httpGet")
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	require.Equal(t, 3000, portOf(t, c, c.ReadinessProbe.HTTPGet.Port))
	require.NotNil(t, c.LivenessProbe, "livenessProbe")
	require.NotNil(t, c.LivenessProbe.HTTPGet, "livenessProbe must be an httpGet")
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, 3000, portOf(t, c, c.LivenessProbe.HTTPGet.Port))

	require.NotEmpty(t, c.Resources.Requests["cpu"], "resources.requests.cpu")
	require.NotEmpty(t, c.Resources.Requests["memory"], "resources.requests.memory")
	require.NotEmpty(t, c.Resources.Limits["memory"], "resources.limits.memory")
	requireNonRoot(t, "the Deployment", tmpl.Spec, c)

	require.Equal(t, "true", tmpl.Metadata.Annotations["prometheus.io/scrape"])
	require.Equal(t, "3000", tmpl.Metadata.Annotations["prometheus.io/port"])
	require.Equal(t, "/metrics", tmpl.Metadata.Annotations["prometheus.io/path"])

	// The environment comes from the ConfigMap and the Secret.
	cm, secret := objs["ConfigMap"][0], objs["Secret"][0]
	var cmRef, secretRef bool
	for _, ef := range c.EnvFrom {
		cmRef = cmRef || (ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Metadata.Name)
		secretRef = secretRef || (ef.SecretRef != nil && ef.SecretRef.Name == secret.Metadata.Name)
	}
	require.True(t, cmRef, "the Deployment must take its environment from ConfigMap %s", cm.Metadata.Name)
	require.True(t, secretRef, "the Deployment must take its environment from Secret %s", secret.Metadata.Name)

	// Kubernetes must wait longer than ledgerd's own shutdown.
	shutdown, err := time.ParseDuration(cm.Data["SHUTDOWN_TIMEOUT"])
	require.NoError(t, err, "the ConfigMap must set SHUTDOWN_TIMEOUT")
	require.NotNil(t, tmpl.Spec.TerminationGracePeriodSeconds)
	require.Greater(t, time.Duration(*tmpl.Spec.TerminationGracePeriodSeconds)*time.Second, shutdown,
		"terminationGracePeriodSeconds must exceed SHUTDOWN_TIMEOUT")

	// The Service selects the Deployment's pods.
	var svcSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	require.NoError(t, objs["Service"][0].Spec.Decode(&svcSpec))
	require.NotEmpty(t, svcSpec.Selector)
	for k, v := range svcSpec.Selector {
		require.Equal(t, v, tmpl.Metadata.Labels[k], "the Service's selector %s=%s must match the Deployment's pods", k, v)
	}
	require.Len(t, svcSpec.Ports, 1)
	require.Equal(t, 3000, portOf(t, c, svcSpec.Ports[0].TargetPort))
}

func TestK8sMigrateJob(t *testing.T) {
	t.Parallel()
	objs := loadK8s(t)
	_, tmpl := templateOf(t, objs["Job"][0])
	c := tmpl.Spec.Containers[0]
	require.Equal(t, []string{"migrate", "up"}, append(slices.Clone(c.Command), c.Args...), "the Job runs `migrate up`")
	require.Contains(t, []string{"Never", "OnFailure"}, tmpl.Spec.RestartPolicy)
	requireNonRoot(t, "the migrate Job", tmpl.Spec, c)

	hasDB := false
	for _, e := range c.Env {
		if e.Name == "DATABASE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			hasDB = e.ValueFrom.SecretKeyRef.Name == objs["Secret"][0].Metadata.Name && e.ValueFrom.SecretKeyRef.Key == "DATABASE_URL"
		}
	}
	for _, ef := range c.EnvFrom {
		hasDB = hasDB || (ef.SecretRef != nil && ef.SecretRef.Name == objs["Secret"][0].Metadata.Name)
	}
	require.True(t, hasDB, "the migrate Job must get DATABASE_URL from the Secret")
	dep := objs["Deployment"][0]
	_, depTmpl := templateOf(t, dep)
	require.Equal(t, depTmpl.Spec.Containers[0].Image, c.Image, "the Job must migrate with the Deployment's image")
}

func TestK8sConfigMapAndSecretKeysAreSettings(t *testing.T) {
	t.Parallel()
	objs := loadK8s(t)
	known := map[string]bool{}
	for _, v := range configVariables(t) {
		known[v] = true
	}
	secretKeys := []string{"DATABASE_URL", "AMQP_URL", "LEDGER_API_TOKENS"}
	cm := objs["ConfigMap"][0]
	for k := range cm.Data {
		require.True(t, known[k], "configmap.yaml sets %s, which cmd/ledgerd/config.go does not read", k)
		require.NotContains(t, secretKeys, k, "%s is secret: it belongs in secret.yaml", k)
	}
	secret := objs["Secret"][0]
	for _, k := range secretKeys {
		v, ok := secret.StringData[k]
		require.True(t, ok, "secret.yaml must have %s", k)
		require.Contains(t, v, "CHANGE-ME", "secret.yaml's %s must be an obvious placeholder", k)
	}
	data, err := os.ReadFile(filepath.Join(k8sDir, "secret.yaml"))
	require.NoError(t, err)
	require.Contains(t, strings.ToLower(string(data)), "secret manager", "secret.yaml must tell to use a secret manager")
}

// kustomization is the part of a kustomization.yaml these tests look at.
type kustomization struct {
	Kind      string   `yaml:"kind"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
		Digest  string `yaml:"digest"`
	} `yaml:"images"`
}

func loadKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	var k kustomization
	require.NoError(t, yaml.Unmarshal(data, &k), "%s/kustomization.yaml must be valid YAML", dir)
	require.Equal(t, "Kustomization", k.Kind)
	return k
}

func TestK8sImagesArePinned(t *testing.T) {
	t.Parallel()
	objs := loadK8s(t)
	version := composeLedgerdVersion(t)
	for _, kind := range []string{"Deployment", "Job"} {
		for _, obj := range objs[kind] {
			_, tmpl := templateOf(t, obj)
			for _, c := range tmpl.Spec.Containers {
				tag := imageTag(c.Image)
				require.True(t, tag != "" && tag != "latest", "%s %s: container %s's image %q must be pinned to a version", kind, obj.Metadata.Name, c.Name, c.Image)
				require.Equal(t, version, tag, "%s %s: the image version must be docker-compose.yml's (bump both)", kind, obj.Metadata.Name)
			}
		}
	}
	k := loadKustomization(t, k8sDir)
	require.NotEmpty(t, k.Images, "kustomization.yaml sets the image (images:)")
	for _, img := range k.Images {
		require.True(t, img.Digest != "" || (img.NewTag != "" && img.NewTag != "latest"), "kustomization.yaml: image %s must be pinned to a version tag or a digest", img.Name)
		if img.Digest == "" {
			require.Equal(t, version, img.NewTag, "kustomization.yaml's tag must be the version of docker-compose.yml (bump both)")
		}
	}
}

// builtinAPIVersions are the API groups every cluster serves; a resource of
// any other (a CRD's) would make `kubectl apply -k deploy/k8s` fail on a
// cluster without that CRD.
var builtinAPIVersions = []string{"v1", "apps/v1", "batch/v1", "policy/v1"}

func TestK8sBaseNeedsNoCRD(t *testing.T) {
	t.Parallel()
	for kind, list := range loadK8s(t) {
		for _, obj := range list {
			require.Contains(t, builtinAPIVersions, obj.APIVersion, "%s %s: deploy/k8s must apply to any cluster; put resources of CRDs in an optional kustomization (as deploy/k8s/monitoring)", kind, obj.Metadata.Name)
		}
	}
}

var monitoringDir = filepath.Join(k8sDir, "monitoring")

type serviceMonitorSpec struct {
	JobLabel          string `yaml:"jobLabel"`
	NamespaceSelector any    `yaml:"namespaceSelector"`
	Selector          struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Endpoints []struct {
		Port       string `yaml:"port"`
		TargetPort any    `yaml:"targetPort"`
		Path       string `yaml:"path"`
		Scheme     string `yaml:"scheme"`
		Interval   string `yaml:"interval"`
	} `yaml:"endpoints"`
}

func TestK8sServiceMonitor(t *testing.T) {
	t.Parallel()
	k := loadKustomization(t, monitoringDir)
	files, err := filepath.Glob(filepath.Join(monitoringDir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" {
			require.Contains(t, k.Resources, base, "monitoring/kustomization.yaml must list %s", base)
		}
	}
	var monitors []k8sObject
	for _, res := range k.Resources {
		data, err := os.ReadFile(filepath.Join(monitoringDir, res))
		require.NoError(t, err, "monitoring/kustomization.yaml lists %s", res)
		var obj k8sObject
		require.NoError(t, yaml.Unmarshal(data, &obj), "%s must be valid YAML", res)
		require.Empty(t, obj.Metadata.Namespace, "%s: manifests carry no namespace (it goes where the Service is)", res)
		if obj.Kind == "ServiceMonitor" {
			monitors = append(monitors, obj)
		}
	}
	require.Len(t, monitors, 1, "deploy/k8s/monitoring needs one ServiceMonitor")
	sm := monitors[0]
	require.Equal(t, "monitoring.coreos.com/v1", sm.APIVersion)
	var spec serviceMonitorSpec
	require.NoError(t, sm.Spec.Decode(&spec))

	// It selects the ledgerd Service, in its own namespace.
	objs := loadK8s(t)
	svc := objs["Service"][0]
	require.NotEmpty(t, spec.Selector.MatchLabels)
	for k, v := range spec.Selector.MatchLabels {
		require.Equal(t, v, svc.Metadata.Labels[k], "the ServiceMonitor's selector %s=%s must match the Service's labels", k, v)
	}
	require.Nil(t, spec.NamespaceSelector, "the ServiceMonitor watches its own namespace: apply it where the Service is")

	// The job label is the Service's name (no jobLabel): the job the alerts
	// and the dashboard's $job default select.
	require.Empty(t, spec.JobLabel, "without jobLabel the job is the Service's name")
	require.Equal(t, defaultScrapeJob, svc.Metadata.Name, "the scrape job (the Service's name) must be the job the alerts select")

	// Each endpoint is a named port of the Service that reaches the
	// container port serving /metrics (the one the pods' prometheus.io/port
	// annotation names).
	var svcSpec struct {
		Ports []struct {
			Name       string    `yaml:"name"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	require.NoError(t, svc.Spec.Decode(&svcSpec))
	_, tmpl := templateOf(t, objs["Deployment"][0])
	c := tmpl.Spec.Containers[0]
	metricsPort := tmpl.Metadata.Annotations["prometheus.io/port"]
	require.NotEmpty(t, spec.Endpoints)
	for _, ep := range spec.Endpoints {
		require.Nil(t, ep.TargetPort, "select the Service's port by name (port:), not targetPort")
		found := false
		for _, p := range svcSpec.Ports {
			if p.Name != "" && p.Name == ep.Port {
				found = true
				require.Equal(t, metricsPort, strconv.Itoa(portOf(t, c, p.TargetPort)), "Service port %s must reach the container's metrics port", p.Name)
			}
		}
		require.True(t, found, "the ServiceMonitor's port %q must be a named port of Service %s", ep.Port, svc.Metadata.Name)
		require.Equal(t, "/metrics", ep.Path)
		require.Contains(t, []string{"", "http"}, ep.Scheme)
		require.Equal(t, prometheusScrapeInterval(t), ep.Interval, "scrape as often as deploy/prometheus.yml (the Grafana datasource's timeInterval assumes it)")
	}
}

func prometheusScrapeInterval(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(prometheusConfigPath)
	require.NoError(t, err)
	var pc struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
		} `yaml:"global"`
	}
	require.NoError(t, yaml.Unmarshal(data, &pc))
	require.NotEmpty(t, pc.Global.ScrapeInterval)
	return pc.Global.ScrapeInterval
}
