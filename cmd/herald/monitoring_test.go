package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// The monitoring files, from cmd/herald.
var (
	alertsFile    = filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml")
	dashboardFile = filepath.Join("..", "..", "deploy", "grafana", "herald-dashboard.json")
	operationsDoc = filepath.Join("..", "..", "docs", "operations.md")
)

// exported is what a Herald node exports: each series name as a scrape
// shows it (histograms as _bucket, _sum and _count) with the values seen
// of each of its labels.
type exported map[string]map[string]map[string]bool

// add records the series of mfs.
func (e exported) add(mfs []*dto.MetricFamily) {
	for _, mf := range mfs {
		name := mf.GetName()
		names := []string{name}
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names = []string{name + "_bucket", name + "_sum", name + "_count"}
		case dto.MetricType_SUMMARY:
			names = []string{name, name + "_sum", name + "_count"}
		}
		for _, n := range names {
			labels := e[n]
			if labels == nil {
				labels = map[string]map[string]bool{}
				e[n] = labels
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if labels[l.GetName()] == nil {
						labels[l.GetName()] = map[string]bool{}
					}
					labels[l.GetName()][l.GetValue()] = true
				}
			}
			if strings.HasSuffix(n, "_bucket") {
				labels["le"] = map[string]bool{}
			}
		}
	}
}

// exportedSeries returns what a Herald node exports, from the real
// registry of a SQLite node that served a request and refreshed its
// gauges, plus the PostgreSQL pool's metrics and the series Prometheus
// itself adds to every target (up).
func exportedSeries(t *testing.T) exported {
	t.Helper()
	tn := startTestNode(t)
	tn.mustCall(t, http.StatusOK, "GET", "/api/v1/app", nil)
	tn.node.monitor.Refresh(t.Context())
	out := exported{"up": {}}
	gather := func(g prometheus.Gatherer) {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out.add(mfs)
	}
	gather(tn.node.registry)
	// The pool collector exists in PostgreSQL mode only.
	gather(telemetrytest.PGPoolRegistry(t, 4))
	return out
}

// closedLabels are the labels whose every value Herald exports from the
// start (or, for check and pool, once the node runs): a selector naming
// another value is a typo that would never match.
var closedLabels = map[string]bool{"outcome": true, "class": true, "reason": true, "operation": true, "check": true, "pool": true}

// literalAlternatives matches a regular expression that is only literal
// alternatives, such as retrying|exhausted.
var literalAlternatives = regexp.MustCompile(`^[A-Za-z0-9_.-]+(\|[A-Za-z0-9_.-]+)*$`)

// selectorProblems parses a PromQL expression and returns what is wrong
// with the series it selects: a metric Herald does not export, a label
// that metric does not have (job and instance are the target's, added by
// Prometheus), or a value of a closed label that Herald never exports.
func selectorProblems(p parser.Parser, known exported, expr string) []string {
	node, err := p.ParseExpr(expr)
	if err != nil {
		return []string{fmt.Sprintf("expression %q: %v", expr, err)}
	}
	var problems []string
	selectors := 0
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		selectors++
		if vs.Name == "" {
			problems = append(problems, fmt.Sprintf("%s selects by matchers only; name the metric", vs))
			return nil
		}
		have, ok := known[vs.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s, which Herald does not export", vs.Name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			switch m.Name {
			case model.MetricNameLabel, "job", "instance":
				continue
			}
			values, ok := have[m.Name]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: %s has no label %s", vs, vs.Name, m.Name))
				continue
			}
			if !closedLabels[m.Name] {
				continue
			}
			wanted := []string{m.Value}
			if m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp {
				if !literalAlternatives.MatchString(m.Value) {
					continue
				}
				wanted = strings.Split(m.Value, "|")
			}
			for _, v := range wanted {
				if !values[v] {
					problems = append(problems, fmt.Sprintf("%s: Herald never exports %s=%q (it has %v)", vs, m.Name, v, slices.Sorted(maps.Keys(values))))
				}
			}
		}
		return nil
	})
	if selectors == 0 {
		problems = append(problems, fmt.Sprintf("expression %q reads no metric", expr))
	}
	return problems
}

// TestSelectorProblems: the check the two tests below rely on catches a
// misspelt metric, label or label value.
func TestSelectorProblems(t *testing.T) {
	known := exportedSeries(t)
	p := parser.NewParser(parser.Options{})
	for _, expr := range []string{
		`herald_deliveries_total{outcome="exhausted"}`,
		`sum(rate(herald_deliveries_total{job="herald", instance=~".+", outcome=~"retrying|exhausted"}[5m]))`,
		`histogram_quantile(0.99, sum by (le) (rate(herald_dispatch_lag_seconds_bucket[5m])))`,
		`herald_ready_check{check="dispatcher"} == 0`,
		`herald_db_pool_max_conns{pool="writer"} + on() herald_db_pool_max_conns{pool="postgres"}`,
		`herald_http_request_duration_seconds_count{route=~"POST .*", code="202"}`,
		`up{job="herald"} == 0`,
	} {
		if problems := selectorProblems(p, known, expr); len(problems) > 0 {
			t.Errorf("%s: %v", expr, problems)
		}
	}
	for _, expr := range []string{
		`herald_deliverys_total`,
		`herald_deliveries_total{outcom="exhausted"}`,
		`herald_deliveries_total{outcome="exausted"}`,
		`herald_deliveries_total{outcome!="canceld"}`,
		`sum(rate(herald_deliveries_total{outcome=~"succeeded|retryng"}[5m]))`,
		`herald_ready_check{check="database"}`,
		`herald_dispatch_lag_seconds`, // a histogram is read through _bucket, _sum or _count
		`herald_http_requests_total{app_id="x"}`,
		`{__name__=~"herald_.+"}`,
		`vector(1)`,
		`sum(`,
	} {
		if problems := selectorProblems(p, known, expr); len(problems) == 0 {
			t.Errorf("%s passed the check", expr)
		}
	}
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
	known := exportedSeries(t)
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
			for _, problem := range selectorProblems(p, known, r.Expr) {
				t.Errorf("alert %s reads %s", r.Alert, problem)
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
	known := exportedSeries(t)
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
		for _, problem := range selectorProblems(p, known, grafanaVars.Replace(expr)) {
			t.Errorf("%s reads %s", where, problem)
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
