package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// flakyReceiver is a loopback endpoint that answers 500 to its first
// `failures` requests and 204 to the others, and remembers every request's
// webhook-id and traceparent.
type flakyReceiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	failures int
	requests int
	ok       map[string]int      // webhook-id → 2xx answers
	parents  map[string][]string // webhook-id → traceparent of each request
}

func newFlakyReceiver(t *testing.T, failures int) *flakyReceiver {
	t.Helper()
	r := &flakyReceiver{failures: failures, ok: map[string]int{}, parents: map[string][]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		r.requests++
		fail := r.requests <= r.failures
		r.parents[id] = append(r.parents[id], req.Header.Get("traceparent"))
		if !fail {
			r.ok[id]++
		}
		r.mu.Unlock()
		if fail {
			http.Error(w, "RESPONSE-MARKER-7d1f: try again", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// delivered returns how many distinct messages got a 2xx answer.
func (r *flakyReceiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ok)
}

// testNode is a node started in-process the way serve starts one, with its
// own registry, an in-memory span exporter and a debug log.
type testNode struct {
	url   string
	token string
	path  string
	store store
	node  *node
	spans *tracetest.InMemoryExporter
	logs  *syncBuffer
}

func startTestNode(t *testing.T) *testNode {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: testRing(t)})
	if err != nil {
		t.Fatal(err)
	}
	return startTestNodeOn(t, store, path)
}

func testRing(t *testing.T) *keyring.Keyring { return testkeys.Ring(t) }

// startTestNodeOn starts a test node on store (path is its SQLite file, ""
// for PostgreSQL); the node closes the store when the test ends.
func startTestNodeOn(t *testing.T, store store, path string) *testNode {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	logs := &syncBuffer{}
	logger, err := telemetry.NewLogger(logs, telemetry.LogJSON, "debug")
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{token: "hk_test_" + strings.Repeat("x", 24), path: path, store: store, spans: exp, logs: logs}
	n, err := startNode(context.Background(), nodeConfig{
		Store:  store,
		Logger: logger,
		Sender: dispatch.SenderConfig{Timeout: 5 * time.Second, AllowPrivate: true, UserAgent: "Herald/test"},
		Dispatch: dispatch.Config{
			Policy:          backoff.Policy{Schedule: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}},
			RequestTimeout:  5 * time.Second,
			PollInterval:    20 * time.Millisecond,
			ShutdownTimeout: 5 * time.Second,
		},
		AdminTokenHash: sha256.Sum256([]byte(tn.token)),
		Registry:       telemetry.NewRegistry("test"),
		Tracing:        telemetry.NewTracing(tp),
		ServeMetrics:   true,
		// The tests refresh the gauges themselves.
		MonitorInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	tn.node = n
	srv := httptest.NewServer(n.handler)
	tn.url = srv.URL
	t.Cleanup(func() {
		srv.Close()
		n.stop()
		store.Close()
		_ = tp.Shutdown(context.Background())
	})
	return tn
}

// sdk returns an official Svix Go SDK client of the node, with its token.
func (tn *testNode) sdk(t *testing.T) *svix.Svix {
	t.Helper()
	u, err := url.Parse(tn.url)
	if err != nil {
		t.Fatal(err)
	}
	client, err := svix.New(tn.token, &svix.SvixOptions{ServerUrl: u})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// call sends a request with the node's token; headers are name, value pairs.
func (tn *testNode) call(t *testing.T, method, path string, body any, headers ...string) (int, []byte) {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	rd := bytes.NewReader(b)
	req, err := http.NewRequest(method, tn.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+tn.token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// mustCall is call that fails the test unless the status is want.
func (tn *testNode) mustCall(t *testing.T, want int, method, path string, body any, headers ...string) map[string]any {
	t.Helper()
	code, b := tn.call(t, method, path, body, headers...)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
	var out map[string]any
	if len(b) > 0 {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// waitFor polls cond until it holds; the deadline only bounds a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setUp creates the application "acme" and an endpoint to url, and
// returns their IDs.
func (tn *testNode) setUp(t *testing.T, url string) (appID, endpointID string) {
	t.Helper()
	app := tn.mustCall(t, http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "Acme", "uid": "acme"})
	ep := tn.mustCall(t, http.StatusCreated, "POST", "/api/v1/app/acme/endpoint", map[string]any{"url": url})
	return app["id"].(string), ep["id"].(string)
}

// TestMetricsAfterEndToEndRun: 100 messages through the real API and
// dispatcher to a receiver that fails twice; the scrape of /metrics counts
// exactly what happened.
func TestMetricsAfterEndToEndRun(t *testing.T) {
	tn := startTestNode(t)
	rcv := newFlakyReceiver(t, 2)
	appID, endpointID := tn.setUp(t, rcv.srv.URL)
	const messages = 100
	var msgID string
	for i := range messages {
		m := tn.mustCall(t, http.StatusAccepted, "POST", "/api/v1/app/acme/msg", map[string]any{"eventType": "order.created", "payload": map[string]any{"n": i}})
		msgID, _ = m["id"].(string)
	}
	waitFor(t, "every message delivered and recorded", func() bool {
		if rcv.delivered() < messages {
			return false
		}
		tn.node.monitor.Refresh(t.Context())
		got := telemetrytest.Scrape(t, bearerClient(tn.token), tn.url+"/metrics")
		return got["herald_deliveries_pending"] == 0 && got["herald_deliveries_sending"] == 0
	})

	got := telemetrytest.Scrape(t, bearerClient(tn.token), tn.url+"/metrics")
	for series, want := range map[string]float64{
		"herald_messages_ingested_total":                                                               messages,
		"herald_ingest_batch_size_sum":                                                                 messages,
		`herald_deliveries_total{outcome="succeeded"}`:                                                 messages,
		`herald_deliveries_total{outcome="retrying"}`:                                                  2,
		`herald_deliveries_total{outcome="exhausted"}`:                                                 0,
		`herald_deliveries_total{outcome="canceled"}`:                                                  0,
		`herald_delivery_responses_total{class="2xx",destination="http"}`:                              messages,
		`herald_delivery_responses_total{class="5xx",destination="http"}`:                              2,
		`herald_delivery_responses_total{class="error",destination="http"}`:                            0,
		`herald_delivery_attempt_duration_seconds_count{destination="http"}`:                           messages + 2,
		"herald_dispatch_lag_seconds_count":                                                            messages,
		"herald_delivery_latency_seconds_count":                                                        messages,
		"herald_deliveries_in_flight":                                                                  0,
		"herald_deliveries_pending":                                                                    0,
		"herald_deliveries_sending":                                                                    0,
		"herald_oldest_due_delivery_age_seconds":                                                       0,
		"herald_endpoints_disabled":                                                                    0,
		"herald_circuit_breakers_open":                                                                 0,
		"herald_ready":                                                                                 1,
		`herald_ready_check{check="store"}`:                                                            1,
		`herald_ready_check{check="migrations"}`:                                                       1,
		`herald_ready_check{check="dispatcher"}`:                                                       1,
		`herald_http_requests_total{code="202",route="POST /api/v1/app/{app_id}/msg"}`:                 messages,
		`herald_http_requests_total{code="201",route="POST /api/v1/app"}`:                              1,
		`herald_http_request_duration_seconds_count{code="202",route="POST /api/v1/app/{app_id}/msg"}`: messages,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if got[`herald_store_operation_duration_seconds_count{operation="create_messages"}`] < 1 ||
		got[`herald_store_operation_duration_seconds_count{operation="record_attempts"}`] < 1 {
		t.Error("store operations not measured")
	}
	for series, v := range got {
		if strings.HasPrefix(series, "herald_store_errors_total") && v != 0 {
			t.Errorf("%s = %v", series, v)
		}
		for _, id := range []string{appID, endpointID, msgID, "acme"} {
			if strings.Contains(series, id) {
				t.Errorf("series %s carries the ID %s", series, id)
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	// SQLite's pools: the one writer connection, and readers that served
	// the API's reads.
	if got[`herald_db_pool_max_conns{pool="writer"}`] != 1 || got[`herald_db_pool_total_conns{pool="readers"}`] < 1 {
		t.Errorf("SQLite pools: writer max %v, readers open %v", got[`herald_db_pool_max_conns{pool="writer"}`], got[`herald_db_pool_total_conns{pool="readers"}`])
	}
}

// TestDeliveryCarriesIngestTrace: a message created with a traceparent is
// delivered, on every attempt, with a traceparent of the same trace; the
// spans chain caller → API request → attempt, and the commit links the
// request.
func TestDeliveryCarriesIngestTrace(t *testing.T) {
	tn := startTestNode(t)
	rcv := newFlakyReceiver(t, 1)
	tn.setUp(t, rcv.srv.URL)
	const callerTrace, callerSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	msg := tn.mustCall(t, http.StatusAccepted, "POST", "/api/v1/app/acme/msg",
		map[string]any{"eventType": "order.created", "payload": map[string]any{"n": 1}},
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	msgID := msg["id"].(string)
	waitFor(t, "the retry delivered", func() bool { return rcv.delivered() == 1 })

	var server tracetest.SpanStub
	var attempts, commits []tracetest.SpanStub
	waitFor(t, "the spans", func() bool {
		attempts, commits = nil, nil
		for _, s := range tn.spans.GetSpans() {
			switch s.Name {
			case "POST /api/v1/app/{app_id}/msg":
				server = s
			case "herald.delivery.attempt":
				attempts = append(attempts, s)
			case "herald.ingest.commit":
				commits = append(commits, s)
			}
		}
		return len(attempts) == 2
	})
	if server.SpanKind != trace.SpanKindServer || server.SpanContext.TraceID().String() != callerTrace || server.Parent.SpanID().String() != callerSpan {
		t.Fatalf("server span %q kind %v trace %v parent %v: want a child of the caller's span",
			server.Name, server.SpanKind, server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	linked := false
	for _, c := range commits {
		for _, l := range c.Links {
			linked = linked || l.SpanContext.SpanID() == server.SpanContext.SpanID()
		}
	}
	if !linked {
		t.Error("no commit span links the request's span")
	}

	rcv.mu.Lock()
	sent := rcv.parents[msgID]
	rcv.mu.Unlock()
	if len(sent) != 2 {
		t.Fatalf("the receiver got %d requests for %s", len(sent), msgID)
	}
	for i, a := range attempts {
		if a.SpanContext.TraceID().String() != callerTrace || a.Parent.SpanID() != server.SpanContext.SpanID() {
			t.Errorf("attempt %d in trace %v under %v; want the request span %v", i, a.SpanContext.TraceID(), a.Parent.SpanID(), server.SpanContext.SpanID())
		}
		want := fmt.Sprintf("00-%s-%s-01", callerTrace, a.SpanContext.SpanID())
		if sent[0] != want && sent[1] != want {
			t.Errorf("no delivery carried the attempt's traceparent %s; got %v", want, sent)
		}
	}
	// The request's log lines carry its trace and request IDs.
	found := false
	for _, line := range strings.Split(tn.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "request" && rec["route"] == "POST /api/v1/app/{app_id}/msg" {
			found = rec["trace_id"] == callerTrace && rec["request_id"] != nil
		}
	}
	if !found {
		t.Errorf("no request log line with the trace and request IDs:\n%s", tn.logs.String())
	}
}

// readyz GETs /readyz and returns its status and checks.
func (tn *testNode) readyz(t *testing.T) (int, map[string]string) {
	t.Helper()
	code, b := tn.call(t, "GET", "/readyz", nil)
	var body struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("readyz body %s: %v", b, err)
	}
	return code, body.Checks
}

func TestReadyzTurnsNotReady(t *testing.T) {
	t.Run("DispatcherStopped", func(t *testing.T) {
		tn := startTestNode(t)
		waitFor(t, "the dispatcher running", func() bool { return tn.node.dispatcher.Running() })
		code, checks := tn.readyz(t)
		if code != http.StatusOK || checks["store"] != "ok" || checks["migrations"] != "ok" || checks["dispatcher"] != "ok" {
			t.Fatalf("readyz = %d %v", code, checks)
		}
		tn.node.stop()
		code, checks = tn.readyz(t)
		if code != http.StatusServiceUnavailable || checks["dispatcher"] == "ok" || checks["store"] != "ok" {
			t.Errorf("readyz with the dispatcher stopped = %d %v", code, checks)
		}
	})
	t.Run("StoreClosed", func(t *testing.T) {
		tn := startTestNode(t)
		waitFor(t, "the dispatcher running", func() bool { return tn.node.dispatcher.Running() })
		tn.store.Close()
		code, checks := tn.readyz(t)
		if code != http.StatusServiceUnavailable || checks["store"] == "ok" || checks["dispatcher"] != "ok" {
			t.Errorf("readyz with the store closed = %d %v", code, checks)
		}
		tn.node.monitor.Refresh(t.Context())
		got := telemetrytest.Scrape(t, bearerClient(tn.token), tn.url+"/metrics")
		if got["herald_ready"] != 0 || got[`herald_ready_check{check="store"}`] != 0 {
			t.Errorf("herald_ready = %v, store check %v", got["herald_ready"], got[`herald_ready_check{check="store"}`])
		}
	})
	t.Run("SchemaBehind", func(t *testing.T) {
		tn := startTestNode(t)
		waitFor(t, "the dispatcher running", func() bool { return tn.node.dispatcher.Running() })
		raw, err := sql.Open("sqlite", "file:"+tn.path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
			t.Fatal(err)
		}
		code, checks := tn.readyz(t)
		if code != http.StatusServiceUnavailable || checks["migrations"] == "ok" || checks["store"] != "ok" {
			t.Errorf("readyz with the schema behind = %d %v", code, checks)
		}
	})
	// A newer node migrating ahead (rolling upgrade) leaves a running node
	// ready: migrations are additive.
	t.Run("SchemaAhead", func(t *testing.T) {
		tn := startTestNode(t)
		waitFor(t, "the dispatcher running", func() bool { return tn.node.dispatcher.Running() })
		raw, err := sql.Open("sqlite", "file:"+tn.path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
			t.Fatal(err)
		}
		tn.node.monitor.Refresh(t.Context())
		if code, checks := tn.readyz(t); code != http.StatusOK || checks["migrations"] != "ok" {
			t.Errorf("readyz with the schema ahead = %d %v", code, checks)
		}
	})
}

// TestLogsAreJSONWithoutSecrets runs herald serve in-process at debug level
// through a full flow (endpoint with a known secret, a message with a
// marker in its payload, a failed attempt whose answer holds another
// marker, a retry, reads of the secret and the attempts) and checks every
// line it logged: valid JSON with the fields its kind requires, and no
// secret, token or payload.
func TestLogsAreJSONWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	token := "hk_" + base64.RawURLEncoding.EncodeToString(raw[:18]) + "TOKEN"
	const payloadMarker = "PAYLOAD-MARKER-c4e2"
	rcv := newFlakyReceiver(t, 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--db", filepath.Join(dir, "herald.db"), "--listen", "127.0.0.1:0",
			"--log-format", "json", "--log-level", "debug", "--admin-token", token, "--allow-private-targets",
			"--retry-schedule", "10ms", "--metrics-addr", "127.0.0.1:0", "--metrics-app-label", "--pprof", "127.0.0.1:0"}, stdout, stderr)
	}()
	urls := map[string]string{}
	waitFor(t, "herald listening", func() bool {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.URL != "" {
				urls[rec.Msg] = rec.URL
			}
		}
		return urls["Herald is listening"] != ""
	})
	tn := &testNode{url: urls["Herald is listening"], token: token}

	app := tn.mustCall(t, http.StatusCreated, "POST", "/api/v1/app", map[string]any{"name": "Acme", "uid": "acme"})
	tn.mustCall(t, http.StatusCreated, "POST", "/api/v1/app/acme/endpoint", map[string]any{"url": rcv.srv.URL, "uid": "ep1", "secret": secret})
	tn.mustCall(t, http.StatusAccepted, "POST", "/api/v1/app/acme/msg",
		map[string]any{"eventType": "order.created", "payload": map[string]any{"note": payloadMarker}}, "idempotency-key", "k-1")
	waitFor(t, "the retry delivered", func() bool { return rcv.delivered() == 1 })
	if got := tn.mustCall(t, http.StatusOK, "GET", "/api/v1/app/acme/endpoint/ep1/secret", nil); got["key"] != secret {
		t.Fatalf("secret = %v", got["key"])
	}
	tn.mustCall(t, http.StatusOK, "GET", "/api/v1/app/acme/attempt/endpoint/ep1", nil)
	// A wrong token is refused and not logged either.
	if code, _ := (&testNode{url: tn.url, token: secret}).call(t, "GET", "/api/v1/app", nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token = %d", code)
	}

	// /metrics moved to its own listener; pprof is on loopback.
	if code, _ := tn.call(t, "GET", "/metrics", nil); code != http.StatusNotFound {
		t.Errorf("/metrics on the API listener with --metrics-addr = %d", code)
	}
	if got := telemetrytest.Scrape(t, http.DefaultClient, urls["metrics listening"]); got["herald_messages_ingested_total"] != 1 {
		t.Errorf("metrics listener: ingested %v", got["herald_messages_ingested_total"])
	}
	// --metrics-app-label: the delivery counter by application (counted
	// just after the receiver answered, so waited for).
	byApp := fmt.Sprintf(`herald_deliveries_total{app_id=%q,outcome="succeeded"}`, app["id"])
	waitFor(t, byApp, func() bool {
		return telemetrytest.Scrape(t, http.DefaultClient, urls["metrics listening"])[byApp] == 1
	})
	resp, err := http.Get(urls["pprof listening"] + "cmdline")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("pprof cmdline = %d", resp.StatusCode)
	}

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}

	logs := stderr.String()
	kinds := map[string]int{}
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("line %d is not JSON: %q", i+1, line)
			continue
		}
		for _, field := range []string{"time", "level", "msg"} {
			if _, ok := rec[field]; !ok {
				t.Errorf("line %d has no %s: %s", i+1, field, line)
			}
		}
		msg, _ := rec["msg"].(string)
		kinds[msg]++
		var required []string
		switch msg {
		case "request":
			required = []string{"request_id", "method", "route", "status", "duration"}
		case "attempt":
			required = []string{"app_id", "msg_id", "endpoint_id", "attempt", "status_code", "outcome"}
		}
		for _, field := range required {
			if _, ok := rec[field]; !ok {
				t.Errorf("%s line %d has no %s: %s", msg, i+1, field, line)
			}
		}
	}
	if kinds["request"] < 6 || kinds["attempt"] != 2 {
		t.Errorf("log kinds %v: want the requests and two attempts", kinds)
	}
	for what, s := range map[string]string{
		"the endpoint secret":             secret,
		"the secret's key":                strings.TrimPrefix(secret, "whsec_"),
		"the admin token":                 token,
		"the payload":                     payloadMarker,
		"the endpoint's answer":           "RESPONSE-MARKER-7d1f",
		"the idempotency key's raw value": `"k-1"`,
	} {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %s (%q)", what, s)
		}
	}
}

// TestMetricsOnPostgres: a node on PostgreSQL exports its pool, and its
// readiness checks (the schema version included) and queue gauges work on
// that engine too.
func TestMetricsOnPostgres(t *testing.T) {
	dbURL, _ := pgFreshSchema(t)
	pg, err := postgres.Open(t.Context(), postgres.Config{URL: dbURL, Keyring: testRing(t), MaxConns: 5})
	if err != nil {
		t.Fatal(err)
	}
	tn := startTestNodeOn(t, pg, "")
	rcv := newFlakyReceiver(t, 0)
	tn.setUp(t, rcv.srv.URL)
	for i := range 3 {
		tn.mustCall(t, http.StatusAccepted, "POST", "/api/v1/app/acme/msg", map[string]any{"eventType": "a", "payload": map[string]any{"n": i}})
	}
	var got map[string]float64
	waitFor(t, "delivered and recorded", func() bool {
		tn.node.monitor.Refresh(t.Context())
		got = telemetrytest.Scrape(t, bearerClient(tn.token), tn.url+"/metrics")
		return rcv.delivered() == 3 && got["herald_deliveries_pending"] == 0 && got["herald_deliveries_sending"] == 0
	})
	for series, want := range map[string]float64{
		`herald_db_pool_max_conns{pool="postgres"}`: 5,
		"herald_ready":                                 1,
		`herald_ready_check{check="migrations"}`:       1,
		`herald_deliveries_total{outcome="succeeded"}`: 3,
		"herald_messages_ingested_total":               3,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	if got[`herald_db_pool_acquires_total{pool="postgres"}`] < 1 {
		t.Errorf("pool acquires %v", got[`herald_db_pool_acquires_total{pool="postgres"}`])
	}
	for series := range got {
		if strings.HasPrefix(series, "herald_db_pool_") && !strings.Contains(series, `pool="postgres"`) {
			t.Errorf("PostgreSQL node exports %s", series)
		}
	}
}

func TestPprofLoopbackOnly(t *testing.T) {
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "h.db"), "--pprof", "0.0.0.0:6060"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "loopback") {
		t.Errorf("serve --pprof 0.0.0.0:6060 = %d: %s", code, stderr.String())
	}
	for _, f := range []TelemetryFlags{
		{Pprof: "127.0.0.1:6060"},
		{Pprof: "[::1]:0"},
		{Pprof: "0.0.0.0:6060", PprofAllowRemote: true},
		{MetricsAddr: "0.0.0.0:9040"},
	} {
		if err := f.validate(); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
	for _, f := range []TelemetryFlags{{Pprof: ":6060"}, {Pprof: "10.1.2.3:6060"}, {MetricsAddr: "9040"}} {
		if err := f.validate(); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
}
