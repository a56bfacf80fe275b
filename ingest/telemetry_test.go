package ingest

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// TestCommitTelemetry: a commit counts the messages it stored (not the ones
// that failed alone) and its span links the span of the request that
// queued each message.
func TestCommitTelemetry(t *testing.T) {
	e := newEnv(t, "NORMAL")
	reg := prometheus.NewRegistry()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	c := New(e.store, Config{Logger: quiet, Metrics: telemetry.NewMetrics(reg, telemetry.MetricsOptions{}), Tracer: tp.Tracer("test")})
	defer c.Close()

	ctx, request := tp.Tracer("test").Start(t.Context(), "request")
	if res, err := c.CreateMessage(ctx, e.msg("evt-1")); err != nil || res.Err != nil {
		t.Fatalf("first message: %v %v", err, res.Err)
	}
	// A taken eventId fails alone: committed, but not stored.
	if res, err := c.CreateMessage(ctx, e.msg("evt-1")); err != nil || res.Err == nil {
		t.Fatalf("duplicate eventId: %v %v", err, res.Err)
	}
	request.End()

	got := telemetrytest.Values(t, reg)
	if got["herald_messages_ingested_total"] != 1 || got["herald_ingest_batch_size_count"] != 2 || got["herald_ingest_batch_size_sum"] != 2 {
		t.Errorf("ingested %v, batches %v of %v messages", got["herald_messages_ingested_total"],
			got["herald_ingest_batch_size_count"], got["herald_ingest_batch_size_sum"])
	}
	commits := 0
	for _, s := range exp.GetSpans() {
		if s.Name != "herald.ingest.commit" {
			continue
		}
		commits++
		if s.Parent.IsValid() || len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != request.SpanContext().SpanID() ||
			s.SpanKind != trace.SpanKindInternal {
			t.Errorf("commit span parent %v links %v", s.Parent.SpanID(), s.Links)
		}
	}
	if commits != 2 {
		t.Errorf("%d commit spans, want 2", commits)
	}
}
