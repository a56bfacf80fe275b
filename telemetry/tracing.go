package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is a node's OpenTelemetry tracing: a tracer provider that is a
// no-op while tracing is off.
type Tracing struct {
	// Provider makes the tracers; a no-op provider when tracing is off.
	Provider trace.TracerProvider
	// Enabled reports whether spans are recorded and exported.
	Enabled bool
	// Exporter says where spans go, for the startup log ("" when off).
	Exporter string
	shutdown func(context.Context) error
}

// Off returns tracing that records nothing.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}
}

// NewTracing wraps a provider the caller built (tests use an in-memory
// exporter); Shutdown shuts it down when it is an SDK provider.
func NewTracing(tp trace.TracerProvider) *Tracing {
	t := &Tracing{Provider: tp, Enabled: true, Exporter: "custom", shutdown: func(context.Context) error { return nil }}
	if sdk, ok := tp.(*sdktrace.TracerProvider); ok {
		t.shutdown = sdk.Shutdown
	}
	return t
}

// Tracer returns the tracer Herald's components use.
func (t *Tracing) Tracer() trace.Tracer {
	return t.Provider.Tracer("github.com/herald-webhooks/herald")
}

// Shutdown exports the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error { return t.shutdown(ctx) }

// TracingFromEnv configures tracing from the standard OpenTelemetry
// environment variables of the process, and nothing else:
//
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none, turn it off;
//   - OTEL_TRACES_EXPORTER=otlp (the default once an OTLP endpoint is set)
//     exports over OTLP, OTEL_TRACES_EXPORTER=console prints spans to
//     stdout (debugging);
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL
//     choose http/protobuf (the default) or grpc;
//   - the exporters read their own OTEL_EXPORTER_OTLP_* variables
//     (endpoint, headers, timeout, TLS), the SDK reads OTEL_TRACES_SAMPLER
//     and OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on) and
//     OTEL_BSP_*, and the resource takes OTEL_SERVICE_NAME and
//     OTEL_RESOURCE_ATTRIBUTES (service.name defaults to "herald").
//
// With none of them set, tracing is off: Herald then makes no spans, but a
// message's traceparent is still stored and sent on with its deliveries.
func TracingFromEnv(ctx context.Context, version string, stdout io.Writer) (*Tracing, error) {
	getenv := os.Getenv
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Off(), nil
	}
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	if exporter == "" {
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return Off(), nil
		}
		exporter = "otlp"
	}
	var (
		exp  sdktrace.SpanExporter
		err  error
		desc string
	)
	switch exporter {
	case "none":
		return Off(), nil
	case "console":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
		desc = "console"
	case "otlp":
		protocol := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
		if protocol == "" {
			protocol = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
		}
		switch protocol {
		case "", "http/protobuf":
			exp, err = otlptracehttp.New(ctx)
			desc = "otlp http/protobuf"
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
			desc = "otlp grpc"
		default:
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: Herald exports traces over http/protobuf or grpc", protocol)
		}
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER %q: Herald supports otlp, console or none", exporter)
	}
	if err != nil {
		return nil, fmt.Errorf("create the %s trace exporter: %w", desc, err)
	}
	// Later sources win: Herald's defaults, then the SDK's, then the
	// environment's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "herald"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{Provider: tp, Enabled: true, Exporter: desc, shutdown: tp.Shutdown}, nil
}

// LogErrorsTo sends the errors OpenTelemetry reports in the background (a
// collector that cannot be reached, spans dropped) to logger, rather than
// to the standard library's log. It sets a process-wide handler: herald
// serve calls it once.
func LogErrorsTo(logger *slog.Logger) {
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err)
	}))
}
