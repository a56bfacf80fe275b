// Package telemetrytest reads Prometheus metrics in tests, from a registry
// or from a scrape of /metrics, as flat series → value maps, and gives a
// PostgreSQL pool collector that needs no server.
package telemetrytest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/herald-webhooks/herald/telemetry"
)

// Values gathers g and returns every sample by series (see Flatten).
func Values(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	return Flatten(mfs)
}

// Scrape GETs url (a /metrics endpoint) and returns every sample by series
// (see Flatten).
func Scrape(t testing.TB, client *http.Client, url string) map[string]float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s %s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape of %s: %v", url, err)
	}
	return Flatten(slices.Collect(maps.Values(families)))
}

// Flatten returns each sample of mfs under its series name as Prometheus
// writes it: name{label="value",...} with the labels sorted, or the bare
// name without labels. A histogram gives name_count, name_sum and one
// name_bucket{le="..."} per bucket (+Inf included); a summary gives
// name_count and name_sum.
func Flatten(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			labels := m.GetLabel()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[series(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[series(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[series(name, labels)] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[series(name+"_count", labels)] = float64(h.GetSampleCount())
				out[series(name+"_sum", labels)] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[series(name+"_bucket", labels, "le", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))] = float64(b.GetCumulativeCount())
				}
				out[series(name+"_bucket", labels, "le", "+Inf")] = float64(h.GetSampleCount())
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				out[series(name+"_count", labels)] = float64(s.GetSampleCount())
				out[series(name+"_sum", labels)] = s.GetSampleSum()
			}
		}
	}
	return out
}

// PGPoolRegistry returns a registry holding a telemetry.PoolCollector over
// a pgx pool of at most maxConns connections that never connects: a pgx
// pool connects lazily, so its statistics are real without a server. The
// pool is closed when the test ends.
func PGPoolRegistry(t testing.TB, maxConns int) *prometheus.Registry {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), fmt.Sprintf("postgres://nobody@127.0.0.1:1/none?pool_max_conns=%d", maxConns))
	if err != nil {
		t.Fatalf("pgx pool: %v", err)
	}
	t.Cleanup(pool.Close)
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewPoolCollector(pool.Stat))
	return reg
}

// Names returns the metric names in values (the series names without
// their labels), sorted.
func Names(values map[string]float64) []string {
	set := map[string]bool{}
	for s := range values {
		name, _, _ := strings.Cut(s, "{")
		set[name] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// series writes a series name; extra is more name, value pairs.
func series(name string, labels []*dto.LabelPair, extra ...string) string {
	var pairs []string
	for _, l := range labels {
		pairs = append(pairs, l.GetName()+"="+strconv.Quote(l.GetValue()))
	}
	for i := 0; i+1 < len(extra); i += 2 {
		pairs = append(pairs, extra[i]+"="+strconv.Quote(extra[i+1]))
	}
	if len(pairs) == 0 {
		return name
	}
	slices.Sort(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}
