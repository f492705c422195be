// Package tracing is erpgraph's OpenTelemetry plumbing: the tracer provider
// that exports over OTLP/HTTP, the sampler named by OTEL_TRACES_SAMPLER, the
// helper every package starts its spans with, and the slog handler that puts
// the trace id on each log line of a traced request.
//
// Spans are started at the seams only (the server's HTTP span, the GraphQL
// operation, the loaders, the scheduler and each ERP.net request), always as
// children of the span in ctx and with its provider: no package keeps a
// tracer, and with tracing off (no span in ctx) Start costs one context
// lookup and allocates nothing.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of erpgraph's own spans.
const Scope = "github.com/erpgraph/erpgraph"

// Config configures the tracer provider.
type Config struct {
	// Endpoint is the OTLP/HTTP traces URL, path included
	// (http://collector:4318/v1/traces). Required unless Exporter is set.
	Endpoint string
	// ServiceName is the resource's service.name; default "erpgraph".
	ServiceName string
	// Sampler decides which new traces are recorded; default
	// parentbased_always_on (OpenTelemetry's default).
	Sampler sdktrace.Sampler
	// Exporter replaces the OTLP exporter (tests: tracetest's in-memory
	// exporter); it is called synchronously at each span's end.
	Exporter sdktrace.SpanExporter
}

// New builds the tracer provider: spans are batched (OTEL_BSP_* tune the
// batching) and sent to cfg.Endpoint as OTLP protobuf over HTTP, with the
// headers, timeout, compression and certificates of OTEL_EXPORTER_OTLP_*
// in the process environment. Shut it down to flush what is left.
func New(ctx context.Context, cfg Config) (*sdktrace.TracerProvider, error) {
	var export sdktrace.TracerProviderOption
	switch {
	case cfg.Exporter != nil:
		export = sdktrace.WithSyncer(cfg.Exporter)
	case cfg.Endpoint != "":
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		if err != nil {
			return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
		}
		export = sdktrace.WithBatcher(exp)
	default:
		return nil, errors.New("tracing: no OTLP endpoint")
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		// one id per process: each replica is an ERP.net session of its own,
		// and its spans should say which
		resource.WithAttributes(semconv.ServiceName("erpgraph"), semconv.ServiceInstanceID(uuid.NewString())),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	if cfg.ServiceName != "" {
		if res, err = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName))); err != nil {
			return nil, fmt.Errorf("tracing: resource: %w", err)
		}
	}
	sampler := cfg.Sampler
	if sampler == nil {
		sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	return sdktrace.NewTracerProvider(export, sdktrace.WithResource(res), sdktrace.WithSampler(sampler)), nil
}

// Samplers are the values of OTEL_TRACES_SAMPLER erpgraph accepts (the
// specification's built-in samplers).
var Samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// ParseSampler is the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// name; an empty name is the default, parentbased_always_on. Unlike the SDK,
// which logs a bad value and samples everything, it refuses one.
func ParseSampler(name, arg string) (sdktrace.Sampler, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	ratio := 1.0
	if strings.HasSuffix(name, "traceidratio") && strings.TrimSpace(arg) != "" {
		r, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("sampler argument %q is not a ratio in [0, 1]", arg)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	}
	return nil, fmt.Errorf("sampler %q is not one of %s", name, strings.Join(Samplers, ", "))
}

// On reports whether ctx's span is recording, so that spans started under it
// are too: callers build attributes only then.
func On(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// Start starts a span named name under ctx's span, with that span's provider,
// when ctx's span is recording. Otherwise (tracing off, or a trace the
// sampler dropped) it returns ctx itself and a no-op span: nothing below an
// unrecorded span is recorded either.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return parent.TracerProvider().Tracer(Scope).Start(ctx, name, opts...)
}

// Fail marks span as failed with err's message (erpgraph's own errors, which
// carry no tokens or bodies).
func Fail(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// Ms is a duration as fractional milliseconds, for attributes.
func Ms(key string, d time.Duration) attribute.KeyValue {
	return attribute.Float64(key, float64(d.Microseconds())/1000)
}

// LogHandler wraps h so that every record logged with a context that carries
// a valid span context gets trace_id and span_id: the log lines of a traced
// request lead to its trace (and back). Records without one pass unchanged.
func LogHandler(h slog.Handler) slog.Handler { return logHandler{h} }

type logHandler struct{ slog.Handler }

func (l logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return l.Handler.Handle(ctx, r)
}

func (l logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{l.Handler.WithAttrs(attrs)}
}

func (l logHandler) WithGroup(name string) slog.Handler { return logHandler{l.Handler.WithGroup(name)} }
