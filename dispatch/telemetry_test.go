package dispatch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/ingest"
	"github.com/herald-webhooks/herald/internal/sqlitetest"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/signature"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// TestAttemptTelemetry runs deliveries to an endpoint that fails every
// message's first attempt, and checks the metrics of every attempt and the
// trace each one continues: the attempt span is a child of the message's
// stored traceparent, and the receiver gets the attempt span's context.
func TestAttemptTelemetry(t *testing.T) {
	var (
		mu      sync.Mutex
		calls   = map[string]int{} // webhook-id → requests
		parents = map[string][]string{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		calls[id]++
		n := calls[id]
		parents[id] = append(parents[id], r.Header.Get("traceparent"))
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	store := sqlitetest.Open(t)
	now := time.Now()
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "a", CreatedAt: now, UpdatedAt: now}
	secret, _ := signature.NewSecret()
	ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: srv.URL, Version: 1,
		Secrets: []herald.SigningSecret{{Key: secret}}, CreatedAt: now, UpdatedAt: now}
	if err := store.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	metrics := telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	d, err := dispatch.New(dispatch.Config{
		Store:          store,
		Sender:         dispatch.NewSender(dispatch.SenderConfig{AllowPrivate: true, Timeout: 2 * time.Second}),
		Policy:         backoff.Policy{Schedule: []time.Duration{time.Millisecond}},
		RequestTimeout: 2 * time.Second,
		PollInterval:   20 * time.Millisecond,
		Metrics:        metrics,
		Tracer:         tp.Tracer("test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	committer := ingest.New(store, ingest.Config{Lease: d.Lease, OnCommit: d.Enqueue, Metrics: metrics, Tracer: tp.Tracer("test")})
	t.Cleanup(func() { committer.Close() })

	// One message with the caller's traceparent, one without.
	const callerTrace, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	traced := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "a", Payload: []byte(`{}`),
		CreatedAt: time.Now(), TraceParent: "00-" + callerTrace + "-" + callerSpan + "-01"}
	plain := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "a", Payload: []byte(`{}`), CreatedAt: time.Now()}
	for _, m := range []*herald.Message{traced, plain} {
		if res, err := committer.CreateMessage(t.Context(), m); err != nil || res.Err != nil {
			t.Fatalf("create message: %v %v", err, res.Err)
		}
	}
	eventually(t, "both messages delivered", func() bool {
		got := telemetrytest.Values(t, reg)
		return got[`herald_deliveries_total{outcome="succeeded"}`] == 2
	})

	got := telemetrytest.Values(t, reg)
	for series, want := range map[string]float64{
		`herald_deliveries_total{outcome="succeeded"}`:                       2,
		`herald_deliveries_total{outcome="retrying"}`:                        2,
		`herald_deliveries_total{outcome="exhausted"}`:                       0,
		`herald_delivery_responses_total{class="5xx",destination="http"}`:    2,
		`herald_delivery_responses_total{class="2xx",destination="http"}`:    2,
		`herald_delivery_attempt_duration_seconds_count{destination="http"}`: 4,
		// First attempts only; success latency once per delivery.
		"herald_dispatch_lag_seconds_count":     2,
		"herald_delivery_latency_seconds_count": 2,
		"herald_deliveries_in_flight":           0,
		"herald_messages_ingested_total":        2,
		"herald_circuit_breakers_open":          0,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}

	// Four attempt spans: those of the traced message are children of the
	// caller's span, in the caller's trace; each receiver request carried
	// its attempt span's context.
	attempts := map[string][]tracetest.SpanStub{}
	var commits int
	for _, s := range exp.GetSpans() {
		switch s.Name {
		case "herald.delivery.attempt":
			for _, a := range s.Attributes {
				if a.Key == "herald.msg_id" {
					attempts[a.Value.AsString()] = append(attempts[a.Value.AsString()], s)
				}
			}
		case "herald.ingest.commit":
			commits++
		}
	}
	if commits == 0 {
		t.Error("no commit span")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, m := range []*herald.Message{traced, plain} {
		spans := attempts[m.ID]
		if len(spans) != 2 || len(parents[m.ID]) != 2 {
			t.Fatalf("message %s: %d attempt spans, %d requests", m.ID, len(spans), len(parents[m.ID]))
		}
		sent := map[string]bool{}
		for _, tp := range parents[m.ID] {
			sent[tp] = true
		}
		for _, s := range spans {
			if s.SpanKind != trace.SpanKindClient {
				t.Errorf("attempt span kind %v", s.SpanKind)
			}
			if m == traced && (s.SpanContext.TraceID().String() != callerTrace || s.Parent.SpanID().String() != callerSpan) {
				t.Errorf("attempt span in trace %v under %v; want the caller's span", s.SpanContext.TraceID(), s.Parent.SpanID())
			}
			if m == plain && s.Parent.IsValid() {
				t.Errorf("attempt of an untraced message has parent %v", s.Parent.SpanID())
			}
			header := "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"
			if !sent[header] {
				t.Errorf("no request carried traceparent %s; sent %v", header, parents[m.ID])
			}
		}
	}
}

// TestTraceParentWithoutTracing: with tracing off, the message's stored
// traceparent itself goes out with every attempt.
func TestTraceParentWithoutTracing(t *testing.T) {
	seen := make(chan string, 4)
	r := newReceiver(t, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		seen <- req.Header.Get("traceparent")
		r.srv.Config.Handler.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, envOptions{})
	ep := e.endpoint(t, r, nil, nil)
	ep.URL = srv.URL
	if err := e.store.UpdateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	m := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: "a", Payload: []byte(`{}`),
		CreatedAt: time.Now(), TraceParent: tp}
	if res, err := e.committer.CreateMessage(t.Context(), m); err != nil || res.Err != nil {
		t.Fatalf("create message: %v %v", err, res.Err)
	}
	select {
	case got := <-seen:
		if got != tp {
			t.Errorf("traceparent %q, want the stored %q", got, tp)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no delivery")
	}
}

// TestOutcomeMetrics: the outcomes other than success, counted by a real
// dispatcher. A 410 is exhausted at once; failures with a retry left are
// retrying and open the endpoint's breaker (one open breaker); a delivery
// whose endpoint was disabled by hand before its turn ends canceled,
// without a request.
func TestOutcomeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	// Retries and the breaker's open period both outlast the one hour the
	// clock moves, so nothing but the disabled endpoint's delivery comes
	// due.
	e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{2 * time.Hour}, metrics: metrics,
		// Two failed answers in a row: twice the threshold.
		breaker: dispatch.BreakerConfig{ConsecutiveFailures: 1, OpenFor: 2 * time.Hour}})

	off := newReceiver(t, nil)
	offEP := e.endpoint(t, off, []string{"off"}, nil)
	later := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: "off",
		Payload: []byte(`{}`), CreatedAt: c.Now().Add(time.Hour)}
	if _, err := e.store.CreateMessages(t.Context(), []*herald.Message{later}, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	offEP.Disabled = true
	if err := e.store.UpdateEndpoint(t.Context(), offEP); err != nil {
		t.Fatal(err)
	}

	gone := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	goneEP := e.endpoint(t, gone, []string{"gone"}, nil)
	failing := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	failingEP := e.endpoint(t, failing, []string{"failing"}, nil)
	g := e.send(t, "gone", nil)
	f1, f2 := e.send(t, "failing", nil), e.send(t, "failing", nil)
	eventually(t, "the three attempts recorded", func() bool {
		return e.delivery(t, g.ID, goneEP.ID).Status == herald.DeliveryFailed &&
			e.delivery(t, f1.ID, failingEP.ID).Attempts == 1 && e.delivery(t, f2.ID, failingEP.ID).Attempts == 1
	})
	c.Add(time.Hour)
	e.dispatcher.Notify()
	eventually(t, "the disabled endpoint's delivery ended", func() bool {
		return e.delivery(t, later.ID, offEP.ID).Status == herald.DeliveryFailed
	})
	e.stop() // every outcome counted and written

	got := telemetrytest.Values(t, reg)
	for series, want := range map[string]float64{
		`herald_deliveries_total{outcome="succeeded"}`:                       0,
		`herald_deliveries_total{outcome="retrying"}`:                        2,
		`herald_deliveries_total{outcome="exhausted"}`:                       1,
		`herald_deliveries_total{outcome="canceled"}`:                        1,
		`herald_delivery_responses_total{class="4xx",destination="http"}`:    1,
		`herald_delivery_responses_total{class="5xx",destination="http"}`:    2,
		`herald_delivery_attempt_duration_seconds_count{destination="http"}`: 3,
		"herald_dispatch_lag_seconds_count":                                  3,
		"herald_delivery_latency_seconds_count":                              0,
		"herald_deliveries_in_flight":                                        0,
		"herald_circuit_breakers_open":                                       1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	if got, _ := off.received(); len(got) != 0 {
		t.Errorf("the disabled endpoint got %d requests", len(got))
	}
}

// TestAttemptSpanHidesURL: an attempt that gets no answer records why on
// its span, without the endpoint URL's path or query, which may hold a
// customer's token; only the host, as in the span's attributes.
func TestAttemptSpanHidesURL(t *testing.T) {
	// A listener that hangs up on every connection: net/http's error
	// quotes the URL. (A port closed after listening could be taken by
	// another test's listener before the attempt.)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-accepted })
	host := ln.Addr().String()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	e := newEnv(t, envOptions{tracer: tp.Tracer("test")})
	ep := e.endpoint(t, newReceiver(t, nil), nil, nil)
	const pathSecret, querySecret = "PATH-SECRET-3b9e", "QUERY-SECRET-71c2"
	ep.URL = "http://" + host + "/hooks/" + pathSecret + "?token=" + querySecret
	if err := e.store.UpdateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	e.send(t, "a", nil)
	var span tracetest.SpanStub
	eventually(t, "the attempt span", func() bool {
		for _, s := range exp.GetSpans() {
			if s.Name == "herald.delivery.attempt" {
				span = s
				return true
			}
		}
		return false
	})
	desc := span.Status.Description
	if span.Status.Code != codes.Error || !strings.HasPrefix(desc, "Post "+strconv.Quote(host)+": ") {
		t.Errorf("span status %v %q: want net/http's error with the host in place of the URL", span.Status.Code, desc)
	}
	texts := []string{desc}
	for _, a := range span.Attributes {
		texts = append(texts, a.Value.String())
	}
	for _, ev := range span.Events {
		texts = append(texts, ev.Name)
		for _, a := range ev.Attributes {
			texts = append(texts, a.Value.String())
		}
	}
	for _, text := range texts {
		if strings.Contains(text, pathSecret) || strings.Contains(text, querySecret) {
			t.Errorf("the span holds the URL's path or query: %q", text)
		}
	}
}
