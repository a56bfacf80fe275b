package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/sqlitetest"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

func openStore(t *testing.T) *sqlite.Store { return sqlitetest.Open(t) }

func mustValue(t *testing.T, got map[string]float64, series string, want float64) {
	t.Helper()
	v, ok := got[series]
	if !ok {
		t.Errorf("no series %s", series)
		return
	}
	if v != want {
		t.Errorf("%s = %v, want %v", series, v, want)
	}
}

func TestStoreMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	raw := openStore(t)
	s := telemetry.InstrumentStore(raw, m)

	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "a", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	// Not found and conflict are answers, not database failures.
	if _, err := s.GetApplication(t.Context(), "missing"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("GetApplication = %v", err)
	}
	if err := s.CreateApplication(t.Context(), app); herald.ErrorCode(err) != herald.ECONFLICT {
		t.Fatalf("CreateApplication twice = %v", err)
	}
	// A caller that gave up is not a failure of the database either.
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	_, _ = s.ListApplications(canceled, herald.ListOptions{Limit: 1})
	// A closed database is.
	raw.Close()
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping of a closed store succeeded")
	}

	got := telemetrytest.Values(t, reg)
	mustValue(t, got, `herald_store_operation_duration_seconds_count{operation="create_application"}`, 2)
	mustValue(t, got, `herald_store_operation_duration_seconds_count{operation="get_application"}`, 1)
	mustValue(t, got, `herald_store_operation_duration_seconds_count{operation="list_applications"}`, 1)
	mustValue(t, got, `herald_store_operation_duration_seconds_count{operation="ping"}`, 1)
	mustValue(t, got, `herald_store_operation_duration_seconds_count{operation="claim_due"}`, 0)
	mustValue(t, got, `herald_store_errors_total{operation="create_application"}`, 0)
	mustValue(t, got, `herald_store_errors_total{operation="get_application"}`, 0)
	mustValue(t, got, `herald_store_errors_total{operation="list_applications"}`, 0)
	mustValue(t, got, `herald_store_errors_total{operation="ping"}`, 1)
	if s.Unwrap() != herald.Store(raw) {
		t.Error("Unwrap does not return the wrapped store")
	}
}

// takerFunc is a TokenTaker from a function.
type takerFunc func(want int) (int, error)

func (f takerFunc) TakeTokens(_ context.Context, _ string, _, _ float64, want int, _ time.Time) (int, error) {
	return f(want)
}

// TestTokenMetrics: the shared rate-limit bucket, which herald.Store does
// not forward, is measured under take_tokens when wrapped.
func TestTokenMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	calls := 0
	tk := telemetry.InstrumentTokens(takerFunc(func(want int) (int, error) {
		calls++
		if calls == 2 {
			return 0, herald.Errorf(herald.EUNAVAILABLE, "down")
		}
		return want, nil
	}), m)
	if n, err := tk.TakeTokens(t.Context(), "ep", 20, 20, 2, time.Now()); n != 2 || err != nil {
		t.Fatalf("TakeTokens = %d, %v", n, err)
	}
	if _, err := tk.TakeTokens(t.Context(), "ep", 20, 20, 2, time.Now()); err == nil {
		t.Fatal("the failing take succeeded")
	}
	got := telemetrytest.Values(t, reg)
	mustValue(t, got, `herald_store_operation_duration_seconds_count{operation="take_tokens"}`, 2)
	mustValue(t, got, `herald_store_errors_total{operation="take_tokens"}`, 1)
}

func TestMonitorRefresh(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	store := openStore(t)
	now := time.Now().Truncate(time.Microsecond)
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "a", CreatedAt: now, UpdatedAt: now}
	if err := store.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	for i, disabled := range []bool{false, true} {
		ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/" + string(rune('a'+i)),
			Version: 1, Disabled: disabled, Secrets: []herald.SigningSecret{{Key: bytes.Repeat([]byte{1}, 24)}}, CreatedAt: now, UpdatedAt: now}
		if err := store.CreateEndpoint(t.Context(), ep); err != nil {
			t.Fatal(err)
		}
	}
	// Two messages, committed 90 s and 30 s before the monitor looks.
	for _, ago := range []time.Duration{90 * time.Second, 30 * time.Second} {
		msg := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "a", Payload: []byte(`{}`), CreatedAt: now.Add(-ago)}
		if _, err := store.CreateMessages(t.Context(), []*herald.Message{msg}, herald.Lease{}); err != nil {
			t.Fatal(err)
		}
	}
	dispatcherUp := true
	var logs bytes.Buffer
	logger, _ := telemetry.NewLogger(&logs, telemetry.LogJSON, "info")
	mon := telemetry.NewMonitor(telemetry.MonitorConfig{
		Store: store, Metrics: m, Now: func() time.Time { return now }, Logger: logger,
		Readiness: telemetry.NewReadiness(
			telemetry.Check{Name: "store", Run: store.Ping},
			telemetry.Check{Name: "dispatcher", Run: func(context.Context) error {
				if !dispatcherUp {
					return errors.New("stopped")
				}
				return nil
			}},
		),
	})
	mon.Refresh(t.Context())
	got := telemetrytest.Values(t, reg)
	mustValue(t, got, "herald_deliveries_pending", 2)
	mustValue(t, got, "herald_deliveries_sending", 0)
	mustValue(t, got, "herald_oldest_due_delivery_age_seconds", 90)
	mustValue(t, got, "herald_endpoints_disabled", 1)
	mustValue(t, got, "herald_queue_stats_timestamp_seconds", float64(now.UnixNano())/1e9)
	mustValue(t, got, "herald_ready", 1)
	mustValue(t, got, `herald_ready_check{check="dispatcher"}`, 1)

	dispatcherUp = false
	mon.Refresh(t.Context())
	got = telemetrytest.Values(t, reg)
	mustValue(t, got, "herald_ready", 0)
	mustValue(t, got, `herald_ready_check{check="dispatcher"}`, 0)
	mustValue(t, got, `herald_ready_check{check="store"}`, 1)
	// A failure is logged once, from its second refresh on; its end once.
	if logs.Len() != 0 {
		t.Errorf("logged at the first failing refresh: %s", logs.String())
	}
	mon.Refresh(t.Context())
	mon.Refresh(t.Context())
	dispatcherUp = true
	mon.Refresh(t.Context())
	if n := strings.Count(logs.String(), "readiness check failing"); n != 1 {
		t.Errorf("failure logged %d times:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "passes again"); n != 1 {
		t.Errorf("recovery logged %d times:\n%s", n, logs.String())
	}

	// The queue gauges keep their last values while the store fails.
	store.Close()
	mon.Refresh(t.Context())
	got = telemetrytest.Values(t, reg)
	mustValue(t, got, "herald_deliveries_pending", 2)
	mustValue(t, got, `herald_ready_check{check="store"}`, 0)

	// Run refreshes at once and stops with its context.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		mon.Run(ctx)
	}()
	cancel()
	<-done
}

func TestDeliveryMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	m.DeliveryOutcome(telemetry.OutcomeSucceeded, "app_1")
	m.DeliveryOutcome(telemetry.OutcomeRetrying, "app_1")
	m.DeliveryOutcome(telemetry.OutcomeRetrying, "app_2")
	m.AttemptStarted()
	m.AttemptStarted()
	m.AttemptFinished("http", 204, 30*time.Millisecond)
	m.AttemptStarted()
	m.AttemptFinished("http", 0, time.Second)
	m.AttemptCut()
	m.DeliveryDeferred(telemetry.DeferCircuitOpen)
	m.ObserveOpenBreakers(func() int { return 3 })
	m.MessagesCommitted(5, 4)

	got := telemetrytest.Values(t, reg)
	mustValue(t, got, `herald_deliveries_total{outcome="succeeded"}`, 1)
	mustValue(t, got, `herald_deliveries_total{outcome="retrying"}`, 2)
	mustValue(t, got, `herald_deliveries_total{outcome="exhausted"}`, 0)
	mustValue(t, got, `herald_deliveries_total{outcome="canceled"}`, 0)
	mustValue(t, got, `herald_delivery_responses_total{class="2xx",destination="http"}`, 1)
	mustValue(t, got, `herald_delivery_responses_total{class="error",destination="http"}`, 1)
	mustValue(t, got, `herald_delivery_responses_total{class="5xx",destination="http"}`, 0)
	mustValue(t, got, `herald_delivery_attempt_duration_seconds_count{destination="http"}`, 2)
	mustValue(t, got, "herald_deliveries_in_flight", 0)
	mustValue(t, got, `herald_deliveries_deferred_total{reason="circuit_open"}`, 1)
	mustValue(t, got, "herald_circuit_breakers_open", 3)
	mustValue(t, got, "herald_messages_ingested_total", 4)
	mustValue(t, got, "herald_ingest_batch_size_count", 1)

	// The opt-in app label.
	reg = prometheus.NewRegistry()
	m = telemetry.NewMetrics(reg, telemetry.MetricsOptions{AppLabel: true})
	m.DeliveryOutcome(telemetry.OutcomeExhausted, "app_2")
	got = telemetrytest.Values(t, reg)
	mustValue(t, got, `herald_deliveries_total{app_id="app_2",outcome="exhausted"}`, 1)
}

func TestRegistry(t *testing.T) {
	reg := telemetry.NewRegistry("1.2.3")
	got := telemetrytest.Values(t, reg)
	var build string
	for series := range got {
		if strings.HasPrefix(series, "herald_build_info{") {
			build = series
		}
	}
	if !strings.Contains(build, `version="1.2.3"`) || got[build] != 1 {
		t.Errorf("build info series %q = %v", build, got[build])
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, ok := got["process_start_time_seconds"]; !ok {
		t.Error("no process metrics")
	}
	// A second set of Herald metrics on the same registry is refused.
	telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	defer func() {
		if recover() == nil {
			t.Error("registering the metrics twice did not panic")
		}
	}()
	telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
}

func TestPoolCollector(t *testing.T) {
	got := telemetrytest.Values(t, telemetrytest.PGPoolRegistry(t, 7))
	mustValue(t, got, `herald_db_pool_max_conns{pool="postgres"}`, 7)
	mustValue(t, got, `herald_db_pool_acquired_conns{pool="postgres"}`, 0)
	mustValue(t, got, `herald_db_pool_acquires_total{pool="postgres"}`, 0)
	if n := len(telemetrytest.Names(got)); n != 13 {
		t.Errorf("%d pool metrics: %v", n, telemetrytest.Names(got))
	}
}

// TestSQLPoolCollector: SQLite's writer and reader pools, read from the
// store's real database/sql pools, under the names PostgreSQL's pool uses.
func TestSQLPoolCollector(t *testing.T) {
	store := openStore(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewSQLPoolCollector(
		telemetry.SQLPool{Name: "writer", Stats: store.WriterStats},
		telemetry.SQLPool{Name: "readers", Stats: store.ReaderStats},
	))
	// A read leaves a reader connection open and idle.
	if _, err := store.ListApplications(t.Context(), herald.ListOptions{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	got := telemetrytest.Values(t, reg)
	readers := store.ReaderStats()
	if readers.MaxOpenConnections < 2 || readers.OpenConnections < 1 {
		t.Fatalf("reader pool %+v", readers)
	}
	mustValue(t, got, `herald_db_pool_max_conns{pool="writer"}`, 1)
	mustValue(t, got, `herald_db_pool_total_conns{pool="writer"}`, 1)
	mustValue(t, got, `herald_db_pool_max_conns{pool="readers"}`, float64(readers.MaxOpenConnections))
	mustValue(t, got, `herald_db_pool_total_conns{pool="readers"}`, float64(readers.OpenConnections))
	mustValue(t, got, `herald_db_pool_idle_conns{pool="readers"}`, float64(readers.OpenConnections))
	mustValue(t, got, `herald_db_pool_acquired_conns{pool="readers"}`, 0)
	mustValue(t, got, `herald_db_pool_empty_acquires_total{pool="readers"}`, 0)
	if n := len(telemetrytest.Names(got)); n != 8 {
		t.Errorf("%d pool metrics: %v", n, telemetrytest.Names(got))
	}
	// Every name is one PostgreSQL's pool exports too, so one dashboard
	// panel serves both engines.
	pgNames := telemetrytest.Names(telemetrytest.Values(t, telemetrytest.PGPoolRegistry(t, 4)))
	for _, name := range telemetrytest.Names(got) {
		if !slices.Contains(pgNames, name) {
			t.Errorf("%s is SQLite's only", name)
		}
	}
}

// TestWALCollector: the WAL's and the database's sizes and the
// checkpointer's counters, read from a real store whose checkpointer runs
// on its own; a scrape at which the files cannot be sized keeps the
// counters and drops the sizes.
func TestWALCollector(t *testing.T) {
	store := openStore(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(telemetry.NewWALCollector(func() (telemetry.WALStats, error) {
		s, err := store.WALStats()
		return telemetry.WALStats(s), err
	}))
	// The checkpointer copies what was committed at its next tick.
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "wal", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := store.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got = telemetrytest.Values(t, reg)
		if got[`herald_sqlite_checkpoints_total{connection="checkpointer"}`] > 0 || time.Now().After(deadline) {
			break
		}
	}
	st, err := store.WALStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Checkpoints == 0 || st.Bytes == 0 {
		t.Fatalf("the checkpointer never ran after a commit: %+v", st)
	}
	mustValue(t, got, `herald_sqlite_wal_bytes`, float64(st.Bytes))
	if st.DatabaseBytes == 0 {
		t.Errorf("WALStats: database of 0 bytes: %+v", st)
	}
	mustValue(t, got, `herald_sqlite_database_bytes`, float64(st.DatabaseBytes))
	mustValue(t, got, `herald_sqlite_checkpoints_total{connection="writer"}`, 0)
	mustValue(t, got, `herald_sqlite_checkpoint_failures_total`, 0)
	mustValue(t, got, `herald_sqlite_wal_uncopied_frames`, 0)

	failing := prometheus.NewRegistry()
	failing.MustRegister(telemetry.NewWALCollector(func() (telemetry.WALStats, error) {
		return telemetry.WALStats{Checkpoints: 3, Failures: 2}, errors.New("stat: permission denied")
	}))
	got = telemetrytest.Values(t, failing)
	for _, name := range []string{`herald_sqlite_wal_bytes`, `herald_sqlite_database_bytes`} {
		if _, ok := got[name]; ok {
			t.Errorf("files that could not be sized exported %s", name)
		}
	}
	mustValue(t, got, `herald_sqlite_checkpoints_total{connection="checkpointer"}`, 3)
	mustValue(t, got, `herald_sqlite_checkpoint_failures_total`, 2)
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	logger, err := telemetry.NewLogger(&buf, telemetry.LogJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
	logger.With("component", "x").InfoContext(ctx, "traced")
	logger.Info("plain")
	logger.Debug("hidden")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	var traced, plain map[string]any
	if json.Unmarshal([]byte(lines[0]), &traced) != nil || json.Unmarshal([]byte(lines[1]), &plain) != nil {
		t.Fatalf("not JSON: %q", buf.String())
	}
	if traced["trace_id"] != traceID.String() || traced["span_id"] != spanID.String() || traced["component"] != "x" {
		t.Errorf("traced line %v", traced)
	}
	if _, ok := plain["trace_id"]; ok {
		t.Errorf("untraced line has a trace ID: %v", plain)
	}

	buf.Reset()
	logger, err = telemetry.NewLogger(&buf, telemetry.LogText, "debug")
	if err != nil {
		t.Fatal(err)
	}
	logger.Debug("shown", "k", "v")
	if !strings.Contains(buf.String(), "level=DEBUG msg=shown k=v") {
		t.Errorf("text line %q", buf.String())
	}
	if _, err := telemetry.NewLogger(&buf, "xml", "info"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := telemetry.NewLogger(&buf, telemetry.LogJSON, "loud"); err == nil {
		t.Error("level loud accepted")
	}
}

// TestLogDurations: JSON lines carry durations in seconds, as a number,
// in groups and in a logger's own attributes too; text lines keep Go's
// form. Other numbers are left alone.
func TestLogDurations(t *testing.T) {
	var buf bytes.Buffer
	logger, err := telemetry.NewLogger(&buf, telemetry.LogJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	logger.With("lease", 90*time.Second).Info("attempt",
		"duration", 1500*time.Millisecond, slog.Group("retry", slog.Duration("in", 4200*time.Microsecond)),
		"attempt", 3, "any", any(2*time.Minute))
	var line struct {
		Lease, Duration, Any float64
		Attempt              any
		Retry                struct{ In float64 }
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("JSON line %q: %v", buf.String(), err)
	}
	if line.Lease != 90 || line.Duration != 1.5 || line.Retry.In != 0.0042 || line.Any != 120 || line.Attempt != float64(3) {
		t.Errorf("JSON line %s: %+v", buf.String(), line)
	}

	buf.Reset()
	logger, err = telemetry.NewLogger(&buf, telemetry.LogText, "info")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("attempt", "duration", 1500*time.Millisecond, slog.Group("retry", slog.Duration("in", 4200*time.Microsecond)))
	if !strings.Contains(buf.String(), "duration=1.5s retry.in=4.2ms") {
		t.Errorf("text line %q", buf.String())
	}
}

// otelVars are the variables TracingFromEnv reads, unset by setEnv first.
var otelVars = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER",
}

// setEnv sets exactly vars among otelVars for the rest of the test.
func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for _, k := range otelVars {
		t.Setenv(k, vars[k])
	}
}

func TestTracingFromEnvOff(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"unset":    {},
		"none":     {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
		"disabled": {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
		// Variables that are not about exporting change nothing.
		"sampler only": {"OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "x"},
	} {
		setEnv(t, vars)
		tr, err := telemetry.TracingFromEnv(t.Context(), "test", io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, span := tr.Tracer().Start(t.Context(), "x")
		if tr.Enabled || span.IsRecording() {
			t.Errorf("%s: tracing on", name)
		}
		span.End()
		if err := tr.Shutdown(t.Context()); err != nil {
			t.Error(err)
		}
	}
	for name, vars := range map[string]map[string]string{
		"exporter": {"OTEL_TRACES_EXPORTER": "zipkin"},
		"protocol": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
	} {
		setEnv(t, vars)
		if _, err := telemetry.TracingFromEnv(t.Context(), "test", io.Discard); err == nil {
			t.Errorf("unsupported %s accepted", name)
		}
	}
}

func TestTracingFromEnvConsole(t *testing.T) {
	var out bytes.Buffer
	setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "herald-test"})
	tr, err := telemetry.TracingFromEnv(t.Context(), "9.9.9", &out)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(t.Context(), "console-span")
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"console-span", "herald-test", "9.9.9"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestTracingFromEnvOTLP exports a span over OTLP/HTTP to a loopback
// collector that only records what it receives.
func TestTracingFromEnvOTLP(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
		body  []byte
	)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		body = append(body, b...)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL})
	tr, err := telemetry.TracingFromEnv(t.Context(), "test", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Enabled || tr.Exporter != "otlp http/protobuf" {
		t.Fatalf("tracing %+v", tr)
	}
	_, span := tr.Tracer().Start(t.Context(), "exported-span")
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "/v1/traces" || !bytes.Contains(body, []byte("exported-span")) {
		t.Errorf("collector got %v, %d bytes", paths, len(body))
	}

	// gRPC is the other protocol; the exporter connects lazily.
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
	tr, err = telemetry.TracingFromEnv(t.Context(), "test", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Exporter != "otlp grpc" {
		t.Errorf("exporter %q", tr.Exporter)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx)
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:6060": true, "localhost:6060": true, "[::1]:6060": true, "127.0.0.2:0": true,
		":6060": false, "0.0.0.0:6060": false, "10.0.0.5:6060": false, "[::]:6060": false, "example.com:6060": false, "nonsense": false,
	} {
		if err := telemetry.CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}

func TestProfilingHandler(t *testing.T) {
	srv := httptest.NewServer(telemetry.ProfilingHandler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("cmdline: %s", resp.Status)
	}
	srv.Client().CloseIdleConnections()
}
