// Package chartcheck renders the Herald Helm chart (deploy/helm/herald)
// with Helm's own Go packages for every values profile in its ci/
// directory, and decodes every manifest strictly into the Kubernetes API
// types: a field Kubernetes does not know fails the test, as it would fail
// `kubectl apply --validate=strict`. It is a module of its own so that the
// main module does not depend on Helm and Kubernetes.
package chartcheck

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

const chartDir = "../herald"

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1, a CRD the Kubernetes types do not include)
// that the chart writes; decoding into it strictly fails on any other field.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization"`
			Scheme    string `json:"scheme"`
			TLSConfig *struct {
				CA struct {
					Secret *corev1.SecretKeySelector `json:"secret"`
				} `json:"ca"`
				ServerName string `json:"serverName"`
			} `json:"tlsConfig"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects is one render, decoded.
type objects struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	pvcs            []*corev1.PersistentVolumeClaim
	serviceAccounts []*corev1.ServiceAccount
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	serviceMonitors []*serviceMonitor
	values          chartutil.Values
}

// decoder decodes YAML or JSON manifests of the built-in kinds strictly:
// unknown and duplicate fields are errors.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}()

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// render renders the chart with the values file (may be "") and overrides,
// as `helm install herald deploy/helm/herald -n ops -f file` would.
func render(c *chart.Chart, file string, overrides map[string]any) (map[string]string, chartutil.Values, error) {
	vals := map[string]any{}
	if file != "" {
		v, err := chartutil.ReadValuesFile(file)
		if err != nil {
			return nil, nil, err
		}
		vals = v
	}
	for k, v := range overrides {
		vals[k] = v
	}
	top, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: "herald", Namespace: "ops", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, nil, err
	}
	out, err := engine.Render(c, top)
	if err != nil {
		return nil, nil, err
	}
	values, _ := top["Values"].(chartutil.Values)
	return out, values, nil
}

// documents splits a rendered file into its YAML documents, dropping empty
// ones.
func documents(text string) []string {
	var docs []string
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(text, -1) {
		meaningful := false
		for _, line := range strings.Split(doc, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				meaningful = true
				break
			}
		}
		if meaningful {
			docs = append(docs, doc)
		}
	}
	return docs
}

// decodeAll decodes every manifest of a render strictly.
func decodeAll(t *testing.T, rendered map[string]string) objects {
	t.Helper()
	var objs objects
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for i, doc := range documents(rendered[name]) {
			if err := objs.add([]byte(doc)); err != nil {
				t.Errorf("%s, document %d: %v\n%s", name, i, err, doc)
			}
		}
	}
	return objs
}

// add decodes one manifest strictly and files it by kind.
func (o *objects) add(doc []byte) error {
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	if meta.APIVersion == "monitoring.coreos.com/v1" && meta.Kind == "ServiceMonitor" {
		var sm serviceMonitor
		if err := yaml.UnmarshalStrict(doc, &sm); err != nil {
			return err
		}
		o.serviceMonitors = append(o.serviceMonitors, &sm)
		return nil
	}
	obj, _, err := decoder.Decode(doc, nil, nil)
	if err != nil {
		return err
	}
	switch v := obj.(type) {
	case *appsv1.Deployment:
		o.deployments = append(o.deployments, v)
	case *corev1.Service:
		o.services = append(o.services, v)
	case *corev1.ConfigMap:
		o.configMaps = append(o.configMaps, v)
	case *corev1.Secret:
		o.secrets = append(o.secrets, v)
	case *corev1.PersistentVolumeClaim:
		o.pvcs = append(o.pvcs, v)
	case *corev1.ServiceAccount:
		o.serviceAccounts = append(o.serviceAccounts, v)
	case *policyv1.PodDisruptionBudget:
		o.pdbs = append(o.pdbs, v)
	case *autoscalingv2.HorizontalPodAutoscaler:
		o.hpas = append(o.hpas, v)
	default:
		return fmt.Errorf("the test does not check kind %T: add it", obj)
	}
	return nil
}

// profileChecks are the properties of each values profile in ci/, beyond
// the ones every render must have.
var profileChecks = map[string]func(t *testing.T, o objects){
	"sqlite": func(t *testing.T, o objects) {
		d := o.deployments[0]
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("sqlite: replicas %v, strategy %q; want 1 and Recreate", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		if len(o.pvcs) != 1 {
			t.Fatalf("sqlite: %d PersistentVolumeClaims, want 1", len(o.pvcs))
		}
		pvc := o.pvcs[0]
		if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "20Gi" || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "fast-ssd" {
			t.Errorf("sqlite: PVC size %s, class %v", got.String(), pvc.Spec.StorageClassName)
		}
		if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Error("sqlite: the PVC is deleted with the release")
		}
		db := o.configMaps[0].Data["HERALD_DB"]
		if mount := mountOf(t, d, "herald", claimVolume(d, pvc.Name)); mount == "" || filepath.Dir(db) != mount {
			t.Errorf("sqlite: PVC %s mounted at %q, HERALD_DB %q: the database is not on the volume", pvc.Name, mount, db)
		}
		if len(o.pdbs) != 0 || len(o.hpas) != 0 {
			t.Error("sqlite: a PodDisruptionBudget or autoscaler for a single-replica database")
		}
		if envSource(d, "HERALD_DB") != nil {
			t.Error("sqlite: HERALD_DB comes from the Secret")
		}
		// The Litestream sidecar shares the data volume.
		if len(d.Spec.Template.Spec.Containers) != 2 || mountOf(t, d, "litestream", claimVolume(d, pvc.Name)) != filepath.Dir(db) {
			t.Error("sqlite: the litestream sidecar does not mount the data volume at the data directory")
		}
	},
	"postgres": func(t *testing.T, o objects) {
		d := o.deployments[0]
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 || d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			t.Errorf("postgres: replicas %v, strategy %q; want 3, RollingUpdate", d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		if len(o.pvcs) != 0 {
			t.Errorf("postgres: %d PersistentVolumeClaims, want none", len(o.pvcs))
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				t.Errorf("postgres: volume %s uses a claim", v.Name)
			}
		}
		if _, ok := o.configMaps[0].Data["HERALD_DB"]; ok {
			t.Error("postgres: HERALD_DB is in the ConfigMap; the URL holds a password and belongs in the Secret")
		}
		if ref := envSource(d, "HERALD_DB"); ref == nil || ref.Key != "database-url" {
			t.Errorf("postgres: HERALD_DB from %+v, want the Secret's database-url", ref)
		}
		if got := o.configMaps[0].Data["HERALD_PG_MAX_CONNS"]; got != "16" {
			t.Errorf("postgres: HERALD_PG_MAX_CONNS = %q", got)
		}
		if got := o.configMaps[0].Data["HERALD_RETENTION_DAYS"]; got != "30" {
			t.Errorf("postgres: HERALD_RETENTION_DAYS = %q, want the profile's 30", got)
		}
		// The API rate limits, 0 (off) included.
		for name, want := range map[string]string{
			"HERALD_API_RATE_LIMIT":         "250.5",
			"HERALD_API_RATE_BURST":         "1000",
			"HERALD_API_AUTH_FAILURE_BURST": "0",
		} {
			if got, ok := o.configMaps[0].Data[name]; !ok || got != want {
				t.Errorf("postgres: %s = %q (set %v), want the profile's %q", name, got, ok, want)
			}
		}
		// Tenant isolation, background tasks and node liveness, 0 (no
		// cap) included.
		for name, want := range map[string]string{
			"HERALD_APP_WORKER_SHARE":      "0.25",
			"HERALD_MAX_ENDPOINTS_PER_APP": "0",
			"HERALD_FANOUT_INLINE_MAX":     "128",
			"HERALD_TASK_SLICE":            "200",
			"HERALD_TASK_PAUSE":            "10ms",
			"HERALD_NODE_HEARTBEAT":        "2s",
			"HERALD_NODE_TIMEOUT":          "10s",
		} {
			if got, ok := o.configMaps[0].Data[name]; !ok || got != want {
				t.Errorf("postgres: %s = %q (set %v), want the profile's %q", name, got, ok, want)
			}
		}
		for name, want := range map[string]string{
			"HERALD_PUBLIC_URL":             "https://hooks.example.com",
			"HERALD_PORTAL_FRAME_ANCESTORS": "'self' https://app.example.com",
			"HERALD_TRUSTED_PROXIES":        "10.0.0.0/8",
		} {
			if got := o.configMaps[0].Data[name]; got != want {
				t.Errorf("postgres: %s = %q, want the profile's %q", name, got, want)
			}
		}
		if len(o.pdbs) != 1 || o.pdbs[0].Spec.MaxUnavailable == nil || o.pdbs[0].Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("postgres: PodDisruptionBudgets %+v, want one with maxUnavailable 1", o.pdbs)
		} else if !selects(o.pdbs[0].Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Error("postgres: the PodDisruptionBudget does not select Herald's pods")
		}
		if len(o.secrets) != 1 || o.secrets[0].StringData["database-url"] == "" {
			t.Error("postgres: no Secret with the database URL")
		}
	},
	"postgres-hpa-servicemonitor": func(t *testing.T, o objects) {
		d := o.deployments[0]
		if d.Spec.Replicas != nil {
			t.Errorf("with an autoscaler the Deployment sets replicas %d, which would fight it", *d.Spec.Replicas)
		}
		if len(o.hpas) != 1 {
			t.Fatalf("%d autoscalers, want 1", len(o.hpas))
		}
		hpa := o.hpas[0]
		if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
			t.Errorf("autoscaler targets %+v, want Deployment %s", ref, d.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 10 {
			t.Errorf("autoscaler bounds %v..%d", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
		}
		if len(o.serviceMonitors) != 1 {
			t.Fatalf("%d ServiceMonitors, want 1", len(o.serviceMonitors))
		}
		sm := o.serviceMonitors[0]
		svc := o.services[0]
		if !selects(sm.Spec.Selector.MatchLabels, svc.Labels) {
			t.Errorf("the ServiceMonitor selects %v, the Service is labelled %v", sm.Spec.Selector.MatchLabels, svc.Labels)
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == sm.Spec.Endpoints[0].Port }) {
			t.Errorf("ServiceMonitor endpoints %+v do not name a Service port", sm.Spec.Endpoints)
		}
		if sm.Metadata.Labels["release"] != "kube-prometheus-stack" {
			t.Errorf("ServiceMonitor labels %v lack the operator's selector label", sm.Metadata.Labels)
		}
		for _, d := range []string{sm.Spec.Endpoints[0].Interval, sm.Spec.Endpoints[0].ScrapeTimeout} {
			if _, err := time.ParseDuration(d); err != nil {
				t.Errorf("ServiceMonitor duration %q: %v", d, err)
			}
		}
		// Herald serves /metrics to admin-scope tokens only: the scrape
		// sends the admin token from the Secret the pods read it from.
		auth := sm.Spec.Endpoints[0].Authorization
		if _, public := o.configMaps[0].Data["HERALD_METRICS_PUBLIC"]; public {
			t.Error("the profile serves /metrics without a token; it should test the token")
		}
		if auth == nil || auth.Type != "Bearer" || len(o.secrets) != 1 || auth.Credentials.Name != o.secrets[0].Name || o.secrets[0].StringData[auth.Credentials.Key] == "" {
			t.Errorf("ServiceMonitor authorization %+v: want a Bearer token from the rendered Secret's admin-token", auth)
		} else if ref := envSource(d, "HERALD_ADMIN_TOKEN"); ref == nil || ref.Key != auth.Credentials.Key {
			t.Errorf("the scrape sends %s, Herald's admin token is %+v", auth.Credentials.Key, ref)
		}
		// tls.secretName: Herald serves HTTPS with the Secret's pair, the
		// probes and the scrape use HTTPS, the scrape checks the CA.
		var tlsVolume string
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "herald-tls" {
				tlsVolume = v.Name
			}
		}
		mount := mountOf(t, d, "herald", tlsVolume)
		for name, file := range map[string]string{"HERALD_TLS_CERT": "tls.crt", "HERALD_TLS_KEY": "tls.key"} {
			if got := envValue(d, name); mount == "" || got != mount+"/"+file {
				t.Errorf("%s = %q, want %s in the herald-tls Secret's mount %q", name, got, file, mount)
			}
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != "herald" {
				continue
			}
			for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					t.Errorf("probe %+v does not use HTTPS on a TLS listener", p)
				}
			}
		}
		ep := sm.Spec.Endpoints[0]
		if ep.Scheme != "https" || ep.TLSConfig == nil || ep.TLSConfig.CA.Secret == nil || ep.TLSConfig.CA.Secret.Name != "herald-tls" ||
			ep.TLSConfig.ServerName != svc.Name+".ops.svc" { // the release namespace of render
			t.Errorf("ServiceMonitor scheme %q, tlsConfig %+v: want https, checked against herald-tls's CA for the Service's name", ep.Scheme, ep.TLSConfig)
		}
	},
	"existing-secret": func(t *testing.T, o objects) {
		if len(o.secrets) != 0 {
			t.Errorf("the chart created %d Secrets beside the existing one", len(o.secrets))
		}
		d := o.deployments[0]
		for _, name := range []string{"HERALD_DB", "HERALD_ADMIN_TOKEN", "HERALD_ENCRYPTION_KEY"} {
			if ref := envSource(d, name); ref == nil || ref.Name != "herald-credentials" {
				t.Errorf("%s from %+v, want the existing Secret herald-credentials", name, ref)
			}
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/herald-webhooks/herald:v1.2.3" {
			t.Errorf("image = %q", img)
		}
		if _, ok := d.Spec.Template.Annotations["checksum/secret"]; ok {
			t.Error("a checksum of a Secret the chart does not render")
		}
		// The circuit breaker settings, off included.
		for name, want := range map[string]string{
			"HERALD_BREAKER":                   "false",
			"HERALD_BREAKER_FAILURE_THRESHOLD": "3",
			"HERALD_BREAKER_FAILURE_RATIO":     "0.8",
			"HERALD_BREAKER_OPEN_TIME":         "5s",
			"HERALD_BREAKER_MAX_OPEN_TIME":     "2m",
			"HERALD_BREAKER_PROBES":            "3",
		} {
			if got, ok := o.configMaps[0].Data[name]; !ok || got != want {
				t.Errorf("existing-secret: %s = %q (set %v), want the profile's %q", name, got, ok, want)
			}
		}
	},
}

// TestProfiles renders every values profile in the chart's ci/ directory
// and checks what every render and each profile must have.
func TestProfiles(t *testing.T) {
	c := loadChart(t)
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values profiles in %s/ci: %v", chartDir, err)
	}
	seen := map[string]bool{}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), "-values.yaml")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			rendered, values, err := render(c, file, nil)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			o := decodeAll(t, rendered)
			o.values = values
			if t.Failed() {
				t.FailNow()
			}
			checkCommon(t, o)
			check, ok := profileChecks[name]
			if !ok {
				t.Fatalf("profile %s has no checks in profileChecks", name)
			}
			check(t, o)
		})
	}
	for name := range profileChecks {
		if !seen[name] {
			t.Errorf("profile %s is checked but %s/ci/%s-values.yaml is gone", name, chartDir, name)
		}
	}
}

// checkCommon checks what every render must have: one Deployment whose pods
// run non-root on a read-only root filesystem without privilege escalation,
// probes on /healthz and /readyz, a Service and a ConfigMap that match it,
// and credentials from a Secret.
func checkCommon(t *testing.T, o objects) {
	t.Helper()
	if len(o.deployments) != 1 || len(o.services) != 1 || len(o.configMaps) != 1 {
		t.Fatalf("%d Deployments, %d Services, %d ConfigMaps; want one each", len(o.deployments), len(o.services), len(o.configMaps))
	}
	d, svc, cm := o.deployments[0], o.services[0], o.configMaps[0]
	pod := d.Spec.Template.Spec
	if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("the Deployment's selector %v does not match its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("the Service selects %v, the pods are labelled %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("pod security context %+v does not run as non-root", pod.SecurityContext)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token Herald never uses")
	}
	var herald *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == "herald" {
			herald = &pod.Containers[i]
		}
	}
	if herald == nil {
		t.Fatal("no container named herald")
	}
	sc := herald.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %+v: want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	if !slices.Equal(herald.Args, []string{"serve"}) {
		t.Errorf("herald args = %v", herald.Args)
	}
	if len(herald.Ports) != 1 || herald.Ports[0].Name != "http" || herald.Ports[0].ContainerPort != 8040 {
		t.Fatalf("container ports %+v", herald.Ports)
	}
	if listen := cm.Data["HERALD_LISTEN"]; listen != "0.0.0.0:8040" {
		t.Errorf("HERALD_LISTEN = %q: the probes and the Service reach port 8040 on the pod IP", listen)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v do not target the container port http", svc.Spec.Ports)
	}
	for probe, want := range map[*corev1.Probe]string{herald.LivenessProbe: "/healthz", herald.ReadinessProbe: "/readyz", herald.StartupProbe: "/healthz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want || probe.HTTPGet.Port.String() != "http" {
			t.Errorf("probe %+v, want GET %s on port http", probe, want)
		}
	}
	if herald.Resources.Requests.Cpu().IsZero() || herald.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want a CPU request and a memory limit", herald.Resources)
	}
	if len(herald.EnvFrom) != 1 || herald.EnvFrom[0].ConfigMapRef == nil || herald.EnvFrom[0].ConfigMapRef.Name != cm.Name {
		t.Errorf("envFrom %+v does not load ConfigMap %s", herald.EnvFrom, cm.Name)
	}
	for _, name := range []string{"HERALD_ADMIN_TOKEN", "HERALD_ENCRYPTION_KEY"} {
		ref := envSource(d, name)
		if ref == nil {
			t.Errorf("%s does not come from a Secret", name)
			continue
		}
		if len(o.secrets) == 1 {
			if o.secrets[0].Name != ref.Name || o.secrets[0].StringData[ref.Key] == "" {
				t.Errorf("%s from %s/%s, which the rendered Secret does not hold", name, ref.Name, ref.Key)
			}
		}
	}
	if mountOf(t, d, "herald", "tmp") != "/tmp" {
		t.Error("no writable /tmp on a read-only root filesystem")
	}
	// Stopping takes up to 2 × the shutdown timeout.
	if shutdown, err := time.ParseDuration(cm.Data["HERALD_SHUTDOWN_TIMEOUT"]); err == nil {
		if grace := pod.TerminationGracePeriodSeconds; grace == nil || time.Duration(*grace)*time.Second <= 2*shutdown {
			t.Errorf("terminationGracePeriodSeconds %v is not above 2 × HERALD_SHUTDOWN_TIMEOUT %s", grace, shutdown)
		}
	}
	if len(o.serviceAccounts) == 1 && o.serviceAccounts[0].Name != pod.ServiceAccountName {
		t.Errorf("pods use service account %q, the chart creates %q", pod.ServiceAccountName, o.serviceAccounts[0].Name)
	}
}

// TestRenderRefusesWhatCannotWork: values that would give a broken
// deployment fail the render with a message saying why.
func TestRenderRefusesWhatCannotWork(t *testing.T) {
	c := loadChart(t)
	secret := map[string]any{"adminToken": "hk_chart_test_token_0123456789", "encryptionKey": "ChgHNKlGcuLItBH3F3+4Vtj7lNHdNtCoacor8If18gQ="}
	for name, tc := range map[string]struct {
		values map[string]any
		want   string
	}{
		"no credentials":          {map[string]any{}, "secret.adminToken"},
		"postgres without URL":    {map[string]any{"mode": "postgres", "secret": secret}, "secret.databaseURL"},
		"sqlite with autoscaling": {map[string]any{"secret": secret, "autoscaling": map[string]any{"enabled": true}}, "autoscaling needs mode postgres"},
		"unknown mode":            {map[string]any{"mode": "mysql", "secret": secret}, "mode"},
		"short token":             {map[string]any{"secret": map[string]any{"adminToken": "short", "encryptionKey": "k"}}, "16 characters"},
		"misspelt value":          {map[string]any{"secret": secret, "replicaCont": 3}, "replicaCont"},
		// The chart's appVersion is "dev" in the repository, an image
		// tag no release pushes: the pod would never pull.
		"no image tag": {map[string]any{"secret": secret}, "set image.tag"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := render(c, "", tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestDecodingIsStrict proves the decoder the other tests rely on refuses
// a field the Kubernetes types do not have, in a built-in kind and in the
// ServiceMonitor.
func TestDecodingIsStrict(t *testing.T) {
	c := loadChart(t)
	rendered, _, err := render(c, filepath.Join(chartDir, "ci", "postgres-hpa-servicemonitor-values.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, anchor, field string }{
		{"herald/templates/deployment.yaml", "      containers:\n", "      containerz: []\n"},
		{"herald/templates/service.yaml", "  ports:\n", "  clusterIPz: None\n"},
		{"herald/templates/servicemonitor.yaml", "  endpoints:\n", "  endpointz: []\n"},
	} {
		doc, ok := rendered[tc.file]
		if !ok || !strings.Contains(doc, tc.anchor) {
			t.Fatalf("%s not rendered or without %q", tc.file, tc.anchor)
		}
		var o objects
		if err := o.add([]byte(doc)); err != nil {
			t.Fatalf("%s as rendered: %v", tc.file, err)
		}
		bad := strings.Replace(doc, tc.anchor, tc.field+tc.anchor, 1)
		name, _, _ := strings.Cut(strings.TrimSpace(tc.field), ":")
		if err := o.add([]byte(bad)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s with an unknown field decoded: %v", tc.file, err)
		}
	}
}

// selects reports whether every label of selector is on labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// claimVolume returns the name of the pod volume using the claim.
func claimVolume(d *appsv1.Deployment, claim string) string {
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return v.Name
		}
	}
	return ""
}

// mountOf returns where the container mounts the volume, or "".
func mountOf(t *testing.T, d *appsv1.Deployment, container, volume string) string {
	t.Helper()
	if volume == "" {
		return ""
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == volume {
				return m.MountPath
			}
		}
	}
	return ""
}

// envValue returns the literal value of the herald container's variable.
func envValue(d *appsv1.Deployment, name string) string {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "herald" {
			continue
		}
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value
			}
		}
	}
	return ""
}

// envSource returns the Secret key the herald container's variable comes
// from, or nil.
func envSource(d *appsv1.Deployment, name string) *corev1.SecretKeySelector {
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != "herald" {
			continue
		}
		for _, e := range c.Env {
			if e.Name == name && e.ValueFrom != nil {
				return e.ValueFrom.SecretKeyRef
			}
		}
	}
	return nil
}
