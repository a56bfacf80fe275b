package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// The monitoring files, from cmd/herald.
var (
	alertsFile    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "herald-dashboard.json")
	operationsDoc = filepath.Join("..", "..", "docs", "operations.md")
)

// exportedNames returns every series name a Herald node exports, as a
// scrape shows them (histograms as _bucket, _sum and _count), from the real
// registry of a node that served a request, plus the PostgreSQL pool's
// metrics and the series Prometheus itself adds to every target (up).
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	tn := startTestNode(t)
	tn.mustCall(t, http.StatusOK, "GET", "/api/v1/app", nil)
	tn.node.monitor.Refresh(t.Context())
	names := map[string]bool{"up": true}
	for _, n := range telemetrytest.Names(telemetrytest.Values(t, tn.node.registry)) {
		names[n] = true
	}
	// The pool collector exists in PostgreSQL mode only; a pool connects
	// lazily, so one that never connects still has real statistics.
	pool, err := pgxpool.New(t.Context(), "postgres://nobody@127.0.0.1:1/none")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewPoolCollector(pool.Stat))
	for _, n := range telemetrytest.Names(telemetrytest.Values(t, reg)) {
		names[n] = true
	}
	return names
}

// metricNames returns the metric names a PromQL expression selects.
func metricNames(t *testing.T, p parser.Parser, expr string) []string {
	t.Helper()
	node, err := p.ParseExpr(expr)
	if err != nil {
		t.Errorf("expression %q: %v", expr, err)
		return nil
	}
	var out []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			if vs.Name == "" {
				t.Errorf("expression %q selects by matchers only; name the metric", expr)
			}
			out = append(out, vs.Name)
		}
		return nil
	})
	if len(out) == 0 {
		t.Errorf("expression %q reads no metric", expr)
	}
	return out
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown file: lower case, spaces to dashes, punctuation dropped.
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			text := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
			out[strings.ReplaceAll(drop.ReplaceAllString(text, ""), " ", "-")] = true
		}
	}
	return out
}

// TestAlertRules: deploy/prometheus/alerts.yml is valid Prometheus rule
// syntax (checked by Prometheus's own rulefmt and PromQL parser), reads
// only metrics Herald exports, and links each alert to its runbook in
// docs/operations.md.
func TestAlertRules(t *testing.T) {
	known := exportedNames(t)
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("rule syntax: %v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	anchors := headingAnchors(t, operationsDoc)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("rule %q is not an alert", r.Record)
				continue
			}
			alerts = append(alerts, r.Alert)
			for _, name := range metricNames(t, p, r.Expr) {
				if !known[name] {
					t.Errorf("alert %s reads %s, which Herald does not export", r.Alert, name)
				}
			}
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity", r.Alert)
			}
			doc, anchor, ok := strings.Cut(r.Annotations["runbook_url"], "#")
			if !ok || doc != "docs/operations.md" || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q is not a heading of docs/operations.md", r.Alert, r.Annotations["runbook_url"])
			}
		}
	}
	// The alerts the issue asks for.
	for _, want := range []string{"HeraldQueueFallingBehind", "HeraldDeliveryFailureRatioHigh", "HeraldDeliveriesExhausted",
		"HeraldEndpointsDisabled", "HeraldStoreErrors", "HeraldNodeNotReady"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s", want)
		}
	}
}

// grafanaVars are the dashboard's variables with a value PromQL can parse.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h",
	"$job", "herald", "$instance", "herald:8040",
)

// dashboardPanel is what the test reads of a Grafana panel.
type dashboardPanel struct {
	Title   string           `json:"title"`
	Type    string           `json:"type"`
	Panels  []dashboardPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// TestDashboard: deploy/grafana/herald-dashboard.json is a dashboard whose
// every query parses and reads only metrics Herald exports.
func TestDashboard(t *testing.T) {
	known := exportedNames(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string           `json:"title"`
		UID        string           `json:"uid"`
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard title %q uid %q", dash.Title, dash.UID)
	}
	p := parser.NewParser(parser.Options{})
	check := func(where, expr string) {
		for _, name := range metricNames(t, p, grafanaVars.Replace(expr)) {
			if !known[name] {
				t.Errorf("%s reads %s, which Herald does not export", where, name)
			}
		}
	}
	queries := 0
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, panel := range panels {
			walk(panel.Panels)
			if panel.Type == "row" {
				continue
			}
			if len(panel.Targets) == 0 {
				t.Errorf("panel %q has no query", panel.Title)
			}
			for _, target := range panel.Targets {
				check("panel "+panel.Title, target.Expr)
				queries++
			}
		}
	}
	walk(dash.Panels)
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
	// label_values(selector, label) variables.
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range dash.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			check("variable "+v.Name, m[1])
		}
	}
}
