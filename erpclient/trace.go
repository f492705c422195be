package erpclient

import (
	"context"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/tracing"
)

// Spans of the ERP.net client, when the caller's context is traced (see
// package tracing): the scheduler wait of each call, each upstream HTTP
// request, and each service-token exchange. One upstream request serves the
// calls of several operations (a $batch, a shared GET): it is the child of
// the first traced caller's span and links to every other one. Attributes
// name entity sets, counts and statuses, never a query string (it holds
// filter values), a body or a token. The traceparent is not sent to ERP.net
// or its identity server: they report to no collector of ours, and a $batch
// made for several operations has no one parent to name.

// Span attribute keys of the ERP.net client.
const (
	attrRequest    = attribute.Key("erp.request")  // the call, as errors name it: "list Crm_Sales_SalesOrders"
	attrPriority   = attribute.Key("erp.priority") // a write, or a read a mutation needs
	attrBackground = attribute.Key("erp.background")
	attrCont       = attribute.Key("erp.continuation")      // a later call of an operation already admitted
	attrEstimate   = attribute.Key("erp.queue.estimate_ms") // the wait admission estimated (0: none)
	attrShared     = attribute.Key("erp.shared")            // joined an identical GET already in flight
	attrSets       = attribute.Key("erp.entity_sets")
	attrParts      = attribute.Key("erp.batch.parts") // requests in the upstream request (1: a plain request)
	attrFailed     = attribute.Key("erp.batch.failed_parts")
	attrCalls      = attribute.Key("erp.calls") // callers it answers
	attrHTTP       = attribute.Key("erp.http_requests")
	attrProbe      = attribute.Key("erp.breaker_probe")
	attrOutcome    = attribute.Key("erp.token.outcome")
	attrScopes     = attribute.Key("erp.token.scopes")
)

// traceRefused notes on the caller's span that the scheduler refused its
// calls before queueing them (busy, breaker open, closed).
func traceRefused(ctx context.Context, err error) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("erp.refused", trace.WithAttributes(attribute.String("error", err.Error())))
	}
}

// traceWaited records a call's scheduler wait, from its queueing to its
// dispatch (or to the end of the wait, for a call never sent), as a span of
// the caller's after the fact: the wait ends on the dispatcher's goroutine.
// Safe once wait returned: dispatched is written under the scheduler's lock
// before the answer or the caller's leave.
func traceWaited(ctx context.Context, cl *call, err error) {
	if !tracing.On(ctx) {
		return
	}
	end := cl.dispatched
	if end.IsZero() {
		end = time.Now()
	}
	_, span := tracing.Start(ctx, "erp.queue", trace.WithTimestamp(cl.queuedAt), trace.WithAttributes(
		attrRequest.String(cl.req.op), attrPriority.Bool(cl.priority), attrBackground.Bool(cl.background),
		attrCont.Bool(cl.cont), tracing.Ms(string(attrEstimate), cl.estimate), attrShared.Bool(cl.shared)))
	if cl.dispatched.IsZero() && err != nil {
		tracing.Fail(span, err)
	}
	span.End(trace.WithTimestamp(end))
}

// traceUnitLocked starts the span of an upstream request as it is
// dispatched, under the first traced caller's span, linked to the others';
// u.ctx carries it to the exchange (and the token exchange under it).
func (s *scheduler) traceUnitLocked(u *unit) {
	var parent trace.Span
	var links []trace.Link
	calls := 0
	for _, p := range u.parts {
		for _, cl := range p.calls {
			calls++
			sp := trace.SpanFromContext(cl.ctx)
			if !sp.IsRecording() {
				continue
			}
			if parent == nil {
				parent = sp
				continue
			}
			if sc := sp.SpanContext(); !sc.Equal(parent.SpanContext()) && !slices.ContainsFunc(links, func(l trace.Link) bool { return l.SpanContext.Equal(sc) }) {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
	}
	if parent == nil {
		return
	}
	method, name := u.parts[0].req.method, setOf(u.parts[0].req.path)
	if len(u.parts) > 1 {
		method, name = http.MethodPost, "$batch"
	}
	var sets []string
	for _, p := range u.parts {
		if set := setOf(p.req.path); !slices.Contains(sets, set) {
			sets = append(sets, set)
		}
	}
	u.ctx, _ = tracing.Start(trace.ContextWithSpan(u.ctx, parent), "erp "+method+" "+name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithLinks(links...), trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(method), semconv.ServerAddress(s.c.root.Hostname()),
			attrSets.StringSlice(sets), attrParts.Int(len(u.parts)), attrCalls.Int(calls), attrProbe.Bool(u.probe),
			tracing.Ms("erp.attempt_timeout_ms", u.attempt)))
}

// traceUnitDone ends the span of an upstream request with its answer.
func traceUnitDone(u *unit, outer *response, parts []*response, err error) {
	span := trace.SpanFromContext(u.ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrHTTP.Int(int(u.sent.Load())))
	if outer != nil {
		span.SetAttributes(semconv.HTTPResponseStatusCode(outer.status))
		if !outer.ok() {
			span.SetStatus(codes.Error, http.StatusText(outer.status))
		}
	}
	failed := 0
	for _, p := range parts {
		if !p.ok() {
			failed++
		}
	}
	if len(parts) > 0 {
		span.SetAttributes(attrFailed.Int(failed))
	}
	if err != nil {
		tracing.Fail(span, err)
	}
	span.End()
}

// startToken starts the span of a service-token exchange under the span of
// the request that needed it (parent; nil or unrecorded: none). The span
// says which scopes were asked for and how it went, never the token.
func (ts *tokenSource) startToken(ctx context.Context, parent trace.Span, background bool) (context.Context, trace.Span) {
	if parent == nil || !parent.IsRecording() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return tracing.Start(trace.ContextWithSpan(ctx, parent), "erp.token", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attrScopes.StringSlice(ts.conf.Scopes), attrBackground.Bool(background)))
}
