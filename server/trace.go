package server

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/errcode"
)

// Span attributes of erpgraph's own (the semantic conventions have none for
// them). They never hold a user id, a token, a variable value or a document.
const (
	AttrRequestID = attribute.Key("erpgraph.request_id")
	AttrOutcome   = attribute.Key("erpgraph.outcome")  // the record's outcome: OK or the first extensions.code
	AttrDenied    = attribute.Key("erpgraph.denied")   // why the edge refused the request
	AttrUpstream  = attribute.Key("erpgraph.upstream") // ERP.net HTTP requests made for the request
	AttrDocHash   = attribute.Key("erpgraph.graphql.document_sha256")
	AttrErrors    = attribute.Key("erpgraph.graphql.errors")
)

// traced wraps the whole server in otelhttp's server span when tracing is on.
// Only W3C trace context is read (no baggage: nothing a caller sends becomes
// an attribute), and only from trusted proxies; the probes are not traced
// (a load balancer polls them every few seconds).
func (s *Server) traced(next http.Handler) http.Handler {
	if s.cfg.TracerProvider == nil {
		return next
	}
	return otelhttp.NewHandler(next, "erpgraph",
		otelhttp.WithTracerProvider(s.cfg.TracerProvider),
		otelhttp.WithMeterProvider(noop.NewMeterProvider()), // metrics are the metrics package's
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithPublicEndpointFn(func(r *http.Request) bool { return !s.trusted(addrOf(r.RemoteAddr)) }),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" }),
		otelhttp.WithSpanNameFormatter(spanName),
	)
}

// spanName is "POST /graphql" for the API and the bare method elsewhere (as
// the semantic conventions name a span without a route): paths outside
// /graphql are the caller's to choose and would make names unbounded.
func spanName(_ string, r *http.Request) string {
	m := r.Method
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodOptions, http.MethodHead, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodTrace:
	default:
		m = "HTTP"
	}
	if r.URL.Path == "/graphql" {
		return m + " /graphql"
	}
	return m
}

// traceStart notes on the server span what the record knows from the start:
// the request ID, and the client as the trusted proxies name it (otelhttp
// believes any X-Forwarded-For).
func traceStart(ctx context.Context, rec *Record) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(AttrRequestID.String(rec.RequestID), semconv.ClientAddress(rec.ClientIP.String()))
	}
}

// traceEnd notes how the request ended, from the record.
func traceEnd(ctx context.Context, rec *Record) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(AttrOutcome.String(rec.outcome()))
	if rec.Denied != "" {
		span.SetAttributes(AttrDenied.String(rec.Denied))
	}
	if rec.GraphQL != nil {
		span.SetAttributes(AttrUpstream.Int64(rec.Upstream.Load()))
	}
	if rec.Outcome == errcode.Internal {
		span.SetStatus(codes.Error, rec.Outcome) // otelhttp marks 5xx itself; a 200 can still carry it
	}
}
