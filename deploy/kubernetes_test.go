package deploy_test

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/erpgraph/erpgraph/app"
)

// testSessionKey stands for the operator's session key (32 bytes, base64).
var testSessionKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// kustomization is the part of kustomize's Kustomization the manifests use.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

type manifests struct {
	deployment appsv1.Deployment
	service    corev1.Service
	configMap  corev1.ConfigMap
	secret     corev1.Secret
	pdb        policyv1.PodDisruptionBudget
	hpa        autoscalingv2.HorizontalPodAutoscaler
}

// decodeStrict reads one manifest into its k8s.io/api type, refusing
// unknown fields and duplicate keys, and checks its kind.
func decodeStrict(t *testing.T, file string, into any, apiVersion, kind string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("kubernetes", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(b, &meta); err != nil || meta.APIVersion != apiVersion || meta.Kind != kind {
		t.Fatalf("%s is %s %s, want %s %s", file, meta.APIVersion, meta.Kind, apiVersion, kind)
	}
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	var k kustomization
	decodeStrict(t, "kustomization.yaml", &k, "kustomize.config.k8s.io/v1beta1", "Kustomization")
	files, _ := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(k.Resources, base) {
			t.Errorf("kustomization.yaml does not list %s", base)
		}
	}
	var m manifests
	byFile := map[string]func(string){
		"deployment.yaml": func(f string) { decodeStrict(t, f, &m.deployment, "apps/v1", "Deployment") },
		"service.yaml":    func(f string) { decodeStrict(t, f, &m.service, "v1", "Service") },
		"configmap.yaml":  func(f string) { decodeStrict(t, f, &m.configMap, "v1", "ConfigMap") },
		"secret.yaml":     func(f string) { decodeStrict(t, f, &m.secret, "v1", "Secret") },
		"poddisruptionbudget.yaml": func(f string) {
			decodeStrict(t, f, &m.pdb, "policy/v1", "PodDisruptionBudget")
		},
		"horizontalpodautoscaler.yaml": func(f string) {
			decodeStrict(t, f, &m.hpa, "autoscaling/v2", "HorizontalPodAutoscaler")
		},
	}
	for _, r := range k.Resources {
		decode, ok := byFile[r]
		if !ok {
			t.Fatalf("kustomization.yaml lists %s, which this test does not check", r)
		}
		decode(r)
		delete(byFile, r)
	}
	for f := range byFile {
		t.Errorf("kustomization.yaml lacks %s", f)
	}
	if len(k.Images) != 1 || k.Images[0].Name != m.deployment.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("kustomization images %+v do not name the container's image", k.Images)
	}
	return m
}

// The manifests decode strictly into Kubernetes' own types and agree with
// the program: every variable is an erpgraph setting and the ConfigMap
// passes erpgraph's own validation; ports, probes, the shutdown timing, the
// secret file and the licence bound of the autoscaler fit together.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	d := m.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers: %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	// Configuration: only erpgraph's settings, and valid together.
	known := map[string]bool{}
	for _, s := range app.Settings() {
		known[s.Env] = true
	}
	env := map[string]string{}
	for k, v := range m.configMap.Data {
		if !known[k] {
			t.Errorf("configmap.yaml sets %s, which is not an erpgraph setting", k)
		}
		env[k] = v
	}
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("deployment.yaml sets %s, which is not an erpgraph setting", e.Name)
		}
		ref := e.ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != m.secret.Name {
			t.Errorf("%s does not come from the Secret %q (settings belong in the ConfigMap)", e.Name, m.secret.Name)
			continue
		}
		v, ok := m.secret.StringData[ref.SecretKeyRef.Key]
		if !ok {
			t.Errorf("%s: the Secret has no key %q", e.Name, ref.SecretKeyRef.Key)
		}
		if e.Name == "ERPGRAPH_SESSION_KEYS" && strings.HasPrefix(v, "replace-with-") {
			v = testSessionKey // the operator's own key, as the placeholder asks
		}
		env[e.Name] = v
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != m.configMap.Name {
		t.Errorf("envFrom %+v does not load the ConfigMap %q", c.EnvFrom, m.configMap.Name)
	}
	// The client secret: a file from the Secret's volume, as the ConfigMap says.
	secretFile := env["ERP_CLIENT_SECRET_FILE"]
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if strings.HasPrefix(secretFile, c.VolumeMounts[i].MountPath+"/") {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("ERP_CLIENT_SECRET_FILE=%q is not in a read-only volume mount: %+v", secretFile, c.VolumeMounts)
	}
	key := strings.TrimPrefix(secretFile, mount.MountPath+"/")
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == mount.Name {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName != m.secret.Name {
		t.Fatalf("volume %q is not the Secret %q", mount.Name, m.secret.Name)
	}
	secret, ok := m.secret.StringData[key]
	if !ok {
		t.Fatalf("the Secret has no key %q for ERP_CLIENT_SECRET_FILE", key)
	}
	if _, ok := m.configMap.Data["ERP_CLIENT_SECRET"]; ok {
		t.Error("the client secret is in the ConfigMap")
	}
	// erpgraph accepts the ConfigMap (with the Secret's file in place).
	file := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	env["ERP_CLIENT_SECRET_FILE"] = file
	cfg, err := app.ConfigFromEnv(func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("erpgraph refuses the ConfigMap: %v", err)
	}
	if cfg.Dev() {
		t.Error("the ConfigMap runs erpgraph in dev mode (no ERP.net instance)")
	}
	if cfg.RedisURL == "" {
		t.Error("several replicas without ERPGRAPH_REDIS_URL: nothing is shared")
	}

	// Ports: the container's match ERPGRAPH_ADDR and ERPGRAPH_METRICS_ADDR,
	// and the Service targets them by name.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, addr := range map[string]string{"http": cfg.Addr, "metrics": cfg.MetricsAddr} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || strconv.Itoa(int(ports[name])) != port {
			t.Errorf("container port %q = %d, but erpgraph listens on %q", name, ports[name], addr)
		}
		if host != "0.0.0.0" && host != "" {
			t.Errorf("%q listens on %s only: unreachable from outside the pod", addr, host)
		}
	}
	for _, sp := range m.service.Spec.Ports {
		if _, ok := ports[sp.TargetPort.String()]; !ok {
			t.Errorf("Service port %q targets %q, not a container port", sp.Name, sp.TargetPort.String())
		}
	}

	// Probes: readiness /readyz, liveness (and startup) /healthz, on the HTTP port.
	for what, tt := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}, "startup": {c.StartupProbe, "/healthz"}} {
		if tt.p == nil || tt.p.HTTPGet == nil {
			t.Errorf("%s probe is not an HTTP GET", what)
			continue
		}
		if tt.p.HTTPGet.Path != tt.path || tt.p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: GET %s on %s, want %s on http", what, tt.p.HTTPGet.Path, tt.p.HTTPGet.Port.String(), tt.path)
		}
	}
	// A readiness probe times out before erpgraph's own 5s readiness bound would answer 503.
	if c.ReadinessProbe != nil && c.ReadinessProbe.TimeoutSeconds <= 5 {
		t.Errorf("readiness timeout %ds: erpgraph may take up to 5s to report", c.ReadinessProbe.TimeoutSeconds)
	}

	// Shutdown: preStop sleep = ERPGRAPH_SHUTDOWN_DELAY, and the grace period
	// covers preStop + delay + grace.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep (distroless has no shell for an exec sleep)")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if preStop != cfg.ShutdownDelay {
		t.Errorf("preStop sleep %v != ERPGRAPH_SHUTDOWN_DELAY %v", preStop, cfg.ShutdownDelay)
	}
	need := preStop + cfg.ShutdownDelay + cfg.ShutdownGrace
	if pod.TerminationGracePeriodSeconds == nil || time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds %v, want more than preStop+delay+grace = %v", pod.TerminationGracePeriodSeconds, need)
	}

	// Rollout and disruption: 3 replicas, never fewer during an update.
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 1 {
		t.Errorf("rolling update %+v, want maxUnavailable 0, maxSurge 1", ru)
	}
	podLabels := d.Spec.Template.Labels
	for what, sel := range map[string]map[string]string{"deployment selector": d.Spec.Selector.MatchLabels,
		"service selector": m.service.Spec.Selector, "pdb selector": m.pdb.Spec.Selector.MatchLabels} {
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("%s %s=%s does not match the pod's labels %v", what, k, v, podLabels)
			}
		}
		if len(sel) == 0 {
			t.Errorf("%s is empty", what)
		}
	}
	if m.pdb.Spec.MaxUnavailable == nil || m.pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", m.pdb.Spec.MaxUnavailable)
	}

	// The autoscaler: the Deployment, and at most half the licences (a
	// stopped pod's ERP.net session keeps its slot for 20 minutes, so a
	// rolling update holds the old sessions and the new ones at once).
	h := m.hpa.Spec
	if h.ScaleTargetRef.Kind != "Deployment" || h.ScaleTargetRef.Name != d.Name {
		t.Errorf("HPA scales %s %s, want Deployment %s", h.ScaleTargetRef.Kind, h.ScaleTargetRef.Name, d.Name)
	}
	licences, err := strconv.Atoi(m.hpa.Annotations["erpgraph.io/erp-licences"])
	if err != nil {
		t.Fatalf("HPA annotation erpgraph.io/erp-licences: %v", err)
	}
	if 2*h.MaxReplicas > int32(licences) {
		t.Errorf("HPA maxReplicas %d with %d ERP.net licences: a rolling update's new pods find no free slot while the old pods' sessions stay open", h.MaxReplicas, licences)
	}
	if h.MinReplicas == nil || *h.MinReplicas != *d.Spec.Replicas || h.MaxReplicas < *h.MinReplicas {
		t.Errorf("HPA replicas %v..%d, want from the Deployment's %d", h.MinReplicas, h.MaxReplicas, *d.Spec.Replicas)
	}

	// The pod runs unprivileged (the image's nonroot user), read-only.
	sc := c.SecurityContext
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container may run as root, write its filesystem or escalate privileges")
	}
}
