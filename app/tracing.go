package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/tracing"
)

// TracingConfig configures OpenTelemetry traces, read from the standard
// OTEL_* variables (see the README's "Traces"). Tracing is on when an OTLP
// endpoint is set (or, in code, an Exporter) and OTEL_SDK_DISABLED is not
// true. Spans go out as OTLP protobuf over HTTP; the exporter reads the rest
// of OTEL_EXPORTER_OTLP_* (headers, timeout, compression, certificates) and
// OTEL_BSP_* from the process environment itself.
type TracingConfig struct {
	// Disabled turns tracing off whatever else is set. OTEL_SDK_DISABLED.
	Disabled bool
	// NoExporter says spans are not exported (OTEL_TRACES_EXPORTER=none), which
	// turns tracing off too.
	NoExporter bool
	// Endpoint is the OTLP/HTTP base URL; traces go to its /v1/traces.
	// OTEL_EXPORTER_OTLP_ENDPOINT.
	Endpoint string
	// TracesEndpoint is the full traces URL, used as is; it wins over
	// Endpoint. OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
	TracesEndpoint string
	// ServiceName is the service.name of the spans; default "erpgraph".
	// OTEL_SERVICE_NAME.
	ServiceName string
	// Sampler and SamplerArg choose which traces are recorded (the
	// specification's samplers); default parentbased_always_on.
	// OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG.
	Sampler, SamplerArg string
	// Exporter receives the spans instead of an OTLP endpoint, synchronously
	// (tests: tracetest's in-memory exporter). Not configurable by environment.
	Exporter sdktrace.SpanExporter
}

// on reports whether traces are recorded and exported.
func (t TracingConfig) on() bool {
	return !t.Disabled && !t.NoExporter && (t.Exporter != nil || t.Endpoint != "" || t.TracesEndpoint != "")
}

// url is where the spans go: the traces endpoint as is, or the base
// endpoint's /v1/traces (as the OTLP exporter specification derives it).
func (t TracingConfig) url() string {
	if t.TracesEndpoint != "" {
		return t.TracesEndpoint
	}
	if t.Endpoint == "" {
		return ""
	}
	return strings.TrimSuffix(t.Endpoint, "/") + "/v1/traces"
}

// tracingRows are the registry's rows of the traces. OTLP's variables have no
// flags: they are the same in every OpenTelemetry program.
func tracingRows() []setting {
	endpoint := func(p func(*Config) *string) field {
		return field{
			parse: func(c *Config, v string) error {
				u, err := url.Parse(v)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return fmt.Errorf("%q is not an http(s) URL", v)
				}
				*p(c) = v
				return nil
			},
			show: func(c Config) any { // a URL may carry credentials
				if u, err := url.Parse(*p(&c)); err == nil && *p(&c) != "" {
					return u.Redacted()
				}
				return ""
			},
		}
	}
	protocol := field{parse: func(_ *Config, v string) error {
		if v != "http/protobuf" {
			return fmt.Errorf("%q: erpgraph exports OTLP over HTTP only (http/protobuf)", v)
		}
		return nil
	}}
	return []setting{
		{env: "OTEL_EXPORTER_OTLP_ENDPOINT", help: "OTLP/HTTP collector base URL (http://collector:4318); traces go to its /v1/traces. Traces are off when neither endpoint is set",
			field: endpoint(func(c *Config) *string { return &c.Tracing.Endpoint })},
		{env: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", help: "full OTLP/HTTP traces URL, instead of the base URL",
			field: endpoint(func(c *Config) *string { return &c.Tracing.TracesEndpoint })},
		{env: "OTEL_EXPORTER_OTLP_PROTOCOL", def: "http/protobuf", help: "the only protocol erpgraph speaks; other OTEL_EXPORTER_OTLP_* (headers, timeout, compression, certificates) are read by the exporter",
			field: protocol},
		{env: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", def: "http/protobuf", help: "the same, for traces", field: protocol},
		{env: "OTEL_SERVICE_NAME", def: "erpgraph", help: "service.name of the spans (OTEL_RESOURCE_ATTRIBUTES adds more)",
			field: text(func(c *Config) *string { return &c.Tracing.ServiceName }),
			fill:  func(c *Config) { c.Tracing.ServiceName = strings.TrimSpace(c.Tracing.ServiceName) }},
		{env: "OTEL_TRACES_SAMPLER", def: "parentbased_always_on", help: "which traces are recorded: " + strings.Join(tracing.Samplers, ", "),
			field: text(func(c *Config) *string { return &c.Tracing.Sampler }),
			check: func(c Config, _ *loaded) error {
				_, err := tracing.ParseSampler(c.Tracing.Sampler, c.Tracing.SamplerArg)
				return err
			}},
		{env: "OTEL_TRACES_SAMPLER_ARG", def: "1.0", help: "the ratio of the *traceidratio samplers, in [0, 1]",
			field: text(func(c *Config) *string { return &c.Tracing.SamplerArg })},
		{env: "OTEL_TRACES_EXPORTER", def: "otlp", help: `"otlp", or "none" to turn tracing off`,
			field: field{parse: func(c *Config, v string) error {
				switch v {
				case "otlp":
				case "none":
					c.Tracing.NoExporter = true
				default:
					return fmt.Errorf("%q: erpgraph exports traces over OTLP only (otlp or none)", v)
				}
				return nil
			}}},
		{env: "OTEL_SDK_DISABLED", def: "false", help: "true turns tracing off even with an endpoint set",
			field: field{parse: func(c *Config, v string) error {
				b, ok := parseSwitch(v)
				if !ok {
					return errors.New("not true or false")
				}
				c.Tracing.Disabled = b
				return nil
			}, show: func(c Config) any { return c.Tracing.Disabled }}},
	}
}

// openTracing builds the tracer provider when tracing is on, and from then on
// every log and audit line of a traced request carries its trace_id.
func (a *App) openTracing(ctx context.Context) error {
	t := a.cfg.Tracing
	if !t.on() {
		return nil
	}
	sampler, err := tracing.ParseSampler(t.Sampler, t.SamplerArg)
	if err != nil {
		return fmt.Errorf("app: tracing: %w", err)
	}
	a.tracer, err = tracing.New(ctx, tracing.Config{Endpoint: t.url(), ServiceName: t.ServiceName, Sampler: sampler, Exporter: t.Exporter})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.log = slog.New(tracing.LogHandler(a.log.Handler()))
	// The SDK reports export failures (a collector down) to one process-wide
	// handler, by default the standard logger's plain text on stderr.
	log := a.log.With("component", "tracing")
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: spans not exported", "err", err) }))
	if a.audit != nil {
		a.audit = slog.New(tracing.LogHandler(a.audit.Handler()))
	}
	return nil
}

// closeTracing sends the spans still buffered, for at most 5 s. Spans that
// cannot be sent are logged, not a failed shutdown: the traces are a
// diagnostic, the shutdown is what the load balancer waits for.
func (a *App) closeTracing() {
	if a.tracer == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.tracer.Shutdown(ctx); err != nil {
		a.log.Warn("tracing: spans still buffered at shutdown not exported", "err", err)
	}
}

// tracerProvider is the provider for the server, nil (no tracing) when off:
// a nil *sdktrace.TracerProvider in the interface would not be nil.
func (a *App) tracerProvider() trace.TracerProvider {
	if a.tracer == nil {
		return nil
	}
	return a.tracer
}
