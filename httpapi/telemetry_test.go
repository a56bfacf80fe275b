package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// withMetrics serves the API's metrics, registered on reg, at /metrics.
func withMetrics(reg *prometheus.Registry) func(*Config) {
	return func(cfg *Config) {
		cfg.Metrics = telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
		cfg.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
}

func TestRequestMetrics(t *testing.T) {
	ts := newTestServer(t, withMetrics(prometheus.NewRegistry()))
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"a","uid":"acme"}`)
	for range 3 {
		ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/acme", "")
	}
	ts.mustCall(t, http.StatusNotFound, nil, "GET", "/api/v1/app/nobody", "")
	ts.mustCall(t, http.StatusUnauthorized, nil, "GET", "/api/v1/app/acme", "", "Authorization", "Bearer nope")
	ts.mustCall(t, http.StatusNotFound, nil, "GET", "/no/such/route", "")

	got := telemetrytest.Scrape(t, withToken(ts.Client, ts.Token), ts.URL+"/metrics")
	for series, want := range map[string]float64{
		`herald_http_requests_total{code="201",route="POST /api/v1/app"}`:         1,
		`herald_http_requests_total{code="200",route="GET /api/v1/app/{app_id}"}`: 3,
		`herald_http_requests_total{code="404",route="GET /api/v1/app/{app_id}"}`: 1,
		`herald_http_requests_total{code="401",route="GET /api/v1/app/{app_id}"}`: 1,
		`herald_http_requests_total{code="404",route="unmatched"}`:                1,
		// Latency by route and status: a 404 or 401 answered early does
		// not hide in the successes' percentiles.
		`herald_http_request_duration_seconds_count{code="200",route="GET /api/v1/app/{app_id}"}`: 3,
		`herald_http_request_duration_seconds_count{code="404",route="GET /api/v1/app/{app_id}"}`: 1,
		`herald_http_request_duration_seconds_count{code="401",route="GET /api/v1/app/{app_id}"}`: 1,
		`herald_http_request_duration_seconds_count{code="404",route="unmatched"}`:                1,
		// The scrape itself is in flight while it is written.
		`herald_http_requests_in_flight`: 1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	// Application and request IDs never become labels.
	for series := range got {
		if strings.Contains(series, app.ID) || strings.Contains(series, "acme") || strings.Contains(series, "req_") {
			t.Errorf("series %s carries an ID", series)
		}
	}
}

// createTraced posts a message with the given traceparent header ("" for
// none) and returns the stored message.
func createTraced(t *testing.T, ts *testServer, traceparent string) *herald.Message {
	t.Helper()
	var out messageOut
	headers := []string{}
	if traceparent != "" {
		headers = append(headers, "traceparent", traceparent)
	}
	ts.mustCall(t, http.StatusAccepted, &out, "POST", "/api/v1/app/acme/msg",
		`{"eventType":"a.b","payload":{"k":1},"application":{"name":"Acme"}}`, headers...)
	m, err := ts.Store.GetMessage(t.Context(), mustApp(t, ts).ID, out.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustApp(t *testing.T, ts *testServer) *herald.Application {
	t.Helper()
	app, err := ts.Store.GetApplication(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	return app
}

const callerTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestTraceParentStoredWithoutTracing(t *testing.T) {
	ts := newTestServer(t)
	// Tracing off: the caller's traceparent is stored as it came.
	if m := createTraced(t, ts, callerTraceParent); m.TraceParent != callerTraceParent {
		t.Errorf("stored traceparent %q, want the caller's %q", m.TraceParent, callerTraceParent)
	}
	if m := createTraced(t, ts, ""); m.TraceParent != "" {
		t.Errorf("stored traceparent %q for a request without one", m.TraceParent)
	}
	// A malformed header is ignored, not stored.
	if m := createTraced(t, ts, "00-not-a-trace-01"); m.TraceParent != "" {
		t.Errorf("stored traceparent %q for a malformed header", m.TraceParent)
	}
}

func TestTraceParentStoredWithTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ts := newTestServer(t, func(cfg *Config) { cfg.TracerProvider = tp })

	m := createTraced(t, ts, callerTraceParent)
	var server *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "POST /api/v1/app/{app_id}/msg" {
			server = &s
		}
	}
	if server == nil {
		t.Fatalf("no server span named after the route; spans: %v", spanNames(exp.GetSpans()))
	}
	if server.SpanKind != trace.SpanKindServer || server.Parent.SpanID().String() != "00f067aa0ba902b7" ||
		server.SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("server span kind %v parent %v trace %v; want a server child of the caller's span",
			server.SpanKind, server.Parent.SpanID(), server.SpanContext.TraceID())
	}
	// The message carries the server span: deliveries become its children.
	want := "00-" + server.SpanContext.TraceID().String() + "-" + server.SpanContext.SpanID().String() + "-01"
	if m.TraceParent != want {
		t.Errorf("stored traceparent %q, want the server span's %q", m.TraceParent, want)
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func TestReadyzNamesFailingChecks(t *testing.T) {
	broken := errors.New("connection refused to 10.0.0.7:5432")
	var dispatcherUp = true
	ts := newTestServer(t, func(cfg *Config) {
		cfg.Readiness = telemetry.NewReadiness(
			telemetry.Check{Name: "store", Run: cfg.Store.Ping, Failure: "The database is not reachable."},
			telemetry.Check{Name: "dispatcher", Failure: "The dispatcher is not running.", Run: func(context.Context) error {
				if !dispatcherUp {
					return broken
				}
				return nil
			}},
		)
	})
	var ok readyBody
	ts.mustCall(t, http.StatusOK, &ok, "GET", "/readyz", "", "Authorization", "")
	if ok.Status != "ok" || ok.Checks["store"] != "ok" || ok.Checks["dispatcher"] != "ok" {
		t.Errorf("ready body %+v", ok)
	}

	dispatcherUp = false
	res := ts.mustCall(t, http.StatusServiceUnavailable, nil, "GET", "/readyz", "", "Authorization", "")
	var body readyBody
	if err := json.Unmarshal(res.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Code != herald.EUNAVAILABLE || body.Checks["store"] != "ok" || body.Checks["dispatcher"] != "The dispatcher is not running." ||
		!strings.Contains(body.Detail, "dispatcher") || res.Header.Get("Retry-After") == "" {
		t.Errorf("not-ready answer %d %s %v", res.Status, res.Body, res.Header)
	}
	// The real error goes to the log, never to the public answer.
	if strings.Contains(string(res.Body), "10.0.0.7") {
		t.Errorf("the readiness answer leaks the error: %s", res.Body)
	}
	if !strings.Contains(ts.logs.String(), "10.0.0.7") {
		t.Errorf("the failing check's error is not logged:\n%s", ts.logs.String())
	}
}
