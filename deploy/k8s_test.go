package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
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
