package httpapi

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// withTracing gives each request the caller's trace context. With a tracer
// provider, otelhttp starts a server span, a child of the caller's
// traceparent, named after the route once it is known (see withAccessLog).
// Without one, only the caller's traceparent is read, so messages still
// carry it to their deliveries at the cost of one header lookup.
func (a *API) withTracing(tp trace.TracerProvider, next http.Handler) http.Handler {
	if tp != nil {
		return otelhttp.NewHandler(next, "herald",
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithPropagators(propagation.TraceContext{}),
			// Herald's metrics are Prometheus's; otelhttp's own would go to
			// the global meter provider.
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" {
			ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// traceParentOf returns the W3C traceparent of the span in ctx (the
// request's server span, or the caller's when tracing is off), or "" when
// there is none.
func traceParentOf(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// serveMetrics is GET /metrics: the Prometheus scrape.
func (a *API) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	a.scrape.ServeHTTP(w, r)
	return nil
}
