package chartcheck

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// deployDir is deploy/, where compose.yaml and the files it mounts live.
const deployDir = "../.."

// composeFile is the part of the Compose specification compose.yaml uses;
// decoding into it strictly fails on a misspelt key.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string            `json:"context"`
		Dockerfile string            `json:"dockerfile"`
		Args       map[string]string `json:"args"`
	} `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Ports       []string          `json:"ports"`
	DependsOn   json.RawMessage   `json:"depends_on"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Timeout  string   `json:"timeout"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
	StopGracePeriod string `json:"stop_grace_period"`
	Restart         string `json:"restart"`
}

func readStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestComposeStack checks deploy/compose.yaml and the configuration it
// mounts: every file is there and parses, and the services point at each
// other by the names and ports they really use.
func TestComposeStack(t *testing.T) {
	var c composeFile
	readStrict(t, filepath.Join(deployDir, "compose.yaml"), &c)
	for _, name := range []string{"herald", "postgres", "prometheus", "grafana", "otel-collector"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("compose.yaml has no service %s", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every bind mount's source exists; remember where each lands.
	mounts := map[string]string{} // container path → file under deploy/
	for name, svc := range c.Services {
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Errorf("%s: volume %q", name, v)
				continue
			}
			src := parts[0]
			if !strings.HasPrefix(src, ".") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("%s mounts the undeclared volume %s", name, src)
				}
				continue
			}
			path := filepath.Join(deployDir, src)
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
			mounts[parts[1]] = path
		}
	}

	herald := c.Services["herald"]
	if herald.Build == nil {
		t.Fatal("the herald service is not built from the repository")
	}
	if _, err := os.Stat(filepath.Join(deployDir, herald.Build.Context, herald.Build.Dockerfile)); err != nil {
		t.Errorf("herald build: %v", err)
	}
	db, err := url.Parse(herald.Environment["HERALD_DB"])
	if err != nil || db.Scheme != "postgres" || db.Hostname() != "postgres" || db.Port() != "5432" {
		t.Errorf("HERALD_DB = %q, want the postgres service", herald.Environment["HERALD_DB"])
	}
	pg := c.Services["postgres"].Environment
	if pass, _ := db.User.Password(); db.User.Username() != pg["POSTGRES_USER"] || pass != pg["POSTGRES_PASSWORD"] || strings.TrimPrefix(db.Path, "/") != pg["POSTGRES_DB"] {
		t.Errorf("HERALD_DB %s does not match the postgres service's user, password and database", db.Redacted())
	}
	if herald.Environment["HERALD_LISTEN"] != "0.0.0.0:8040" || !slices.Contains(herald.Ports, "127.0.0.1:8040:8040") {
		t.Errorf("herald listens on %q, publishes %v", herald.Environment["HERALD_LISTEN"], herald.Ports)
	}

	// Prometheus scrapes Herald's metrics listener (no token; the API's
	// /metrics wants one), which is not published on the host, and loads
	// the alert rules.
	_, metricsPort, err := net.SplitHostPort(herald.Environment["HERALD_METRICS_ADDR"])
	if err != nil {
		t.Fatalf("HERALD_METRICS_ADDR = %q: %v", herald.Environment["HERALD_METRICS_ADDR"], err)
	}
	for _, p := range herald.Ports {
		if strings.HasSuffix(p, ":"+metricsPort) {
			t.Errorf("herald publishes its unauthenticated metrics port: %s", p)
		}
	}
	var prom struct {
		Global        map[string]string `json:"global"`
		RuleFiles     []string          `json:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `json:"job_name"`
			MetricsPath   string `json:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `json:"targets"`
			} `json:"static_configs"`
		} `json:"scrape_configs"`
	}
	readStrict(t, mounts["/etc/prometheus/prometheus.yml"], &prom)
	for _, rules := range prom.RuleFiles {
		path, ok := mounts[rules]
		if !ok {
			t.Errorf("prometheus.yml loads %s, which compose.yaml does not mount", rules)
			continue
		}
		var r struct {
			Groups []map[string]any `json:"groups"`
		}
		readStrict(t, path, &r)
		if len(r.Groups) == 0 {
			t.Errorf("%s has no rule groups", path)
		}
	}
	scraped := false
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			if slices.Contains(st.Targets, "herald:"+metricsPort) && sc.MetricsPath == "/metrics" {
				scraped = true
			}
		}
	}
	if !scraped || len(prom.RuleFiles) == 0 {
		t.Errorf("Prometheus does not scrape herald:%s/metrics with rules: %+v", metricsPort, prom)
	}

	// Grafana: the data source points at Prometheus, the dashboard provider
	// at the directory where the dashboard is mounted, and the dashboard is JSON.
	provisioning := mounts["/etc/grafana/provisioning"]
	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			Editable  bool   `json:"editable"`
		} `json:"datasources"`
	}
	readStrict(t, filepath.Join(provisioning, "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("Grafana data sources %+v", ds.Datasources)
	}
	var dash struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Folder          string `json:"folder"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			AllowUIUpdates  bool   `json:"allowUiUpdates"`
			Options         struct {
				Path                      string `json:"path"`
				FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
			} `json:"options"`
		} `json:"providers"`
	}
	readStrict(t, filepath.Join(provisioning, "dashboards", "herald.yml"), &dash)
	found := false
	for target, path := range mounts {
		if len(dash.Providers) == 1 && filepath.Dir(target) == dash.Providers[0].Options.Path && strings.HasSuffix(target, ".json") {
			found = true
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var d map[string]any
			if err := json.Unmarshal(b, &d); err != nil || d["panels"] == nil {
				t.Errorf("%s is not a Grafana dashboard: %v", path, err)
			}
		}
	}
	if !found {
		t.Errorf("no dashboard is mounted where the provider %+v looks", dash.Providers)
	}

	// The collector receives OTLP on the port Herald exports to, and every
	// pipeline names components it defines.
	var otel struct {
		Receivers  map[string]any `json:"receivers"`
		Processors map[string]any `json:"processors"`
		Exporters  map[string]any `json:"exporters"`
		Extensions map[string]any `json:"extensions"`
		Service    struct {
			Extensions []string `json:"extensions"`
			Pipelines  map[string]struct {
				Receivers  []string `json:"receivers"`
				Processors []string `json:"processors"`
				Exporters  []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	var collectorConfig string
	for target, path := range mounts {
		if slices.Contains(c.Services["otel-collector"].Command, "--config="+target) {
			collectorConfig = path
		}
	}
	if collectorConfig == "" {
		t.Fatalf("the collector's --config is not a mounted file: %v", c.Services["otel-collector"].Command)
	}
	readStrict(t, collectorConfig, &otel)
	for name, p := range otel.Service.Pipelines {
		for kind, ids := range map[string][]string{"receiver": p.Receivers, "processor": p.Processors, "exporter": p.Exporters} {
			defined := map[string]map[string]any{"receiver": otel.Receivers, "processor": otel.Processors, "exporter": otel.Exporters}[kind]
			for _, id := range ids {
				if _, ok := defined[id]; !ok {
					t.Errorf("pipeline %s uses the undefined %s %s", name, kind, id)
				}
			}
		}
	}
	endpoint, err := url.Parse(herald.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
	if err != nil || endpoint.Hostname() != "otel-collector" || endpoint.Port() != "4318" || !slices.Contains(c.Services["otel-collector"].Ports, "127.0.0.1:4318:4318") {
		t.Errorf("Herald exports to %q; the collector receives OTLP/HTTP on otel-collector:4318", herald.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
	}
}

// TestLitestreamExample keeps deploy/litestream.yml in Litestream 0.5's
// format (the version of the chart's example sidecar) and pointing at the
// database path the image and the chart use. Litestream itself ignores keys
// it does not know, so a 0.3-style setting (a `replicas` list with
// `snapshot-interval` and `retention` on the replica) would be dropped
// silently; decoding strictly into the 0.5 fields catches it here.
func TestLitestreamExample(t *testing.T) {
	var ls struct {
		Snapshot struct {
			Interval  string `json:"interval"`
			Retention string `json:"retention"`
		} `json:"snapshot"`
		DBs []struct {
			Path    string `json:"path"`
			Replica *struct {
				URL          string `json:"url"`
				SyncInterval string `json:"sync-interval"`
			} `json:"replica"`
		} `json:"dbs"`
	}
	readStrict(t, filepath.Join(deployDir, "litestream.yml"), &ls)
	if len(ls.DBs) != 1 || ls.DBs[0].Path != "/var/lib/herald/herald.db" || ls.DBs[0].Replica == nil || ls.DBs[0].Replica.URL == "" {
		t.Fatalf("litestream.yml = %+v, want one database at /var/lib/herald/herald.db with a replica", ls)
	}
	for name, d := range map[string]string{
		"replica.sync-interval": ls.DBs[0].Replica.SyncInterval,
		"snapshot.interval":     ls.Snapshot.Interval,
		"snapshot.retention":    ls.Snapshot.Retention,
	} {
		if _, err := time.ParseDuration(d); err != nil {
			t.Errorf("litestream.yml %s = %q: %v", name, d, err)
		}
	}

	// The chart's example sidecar runs a 0.5 image with this file.
	values, err := os.ReadFile(filepath.Join(chartDir, "ci", "sqlite-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(values), "litestream/litestream:0.5.") {
		t.Error("ci/sqlite-values.yaml does not run a Litestream 0.5 image, the format litestream.yml is written in")
	}
}
