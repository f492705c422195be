// Package spantest records the spans of a test in memory (the SDK's
// tracetest exporter) and lets the test wait for the ones it expects: a
// server span ends after its answer reached the client.
package spantest

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Recorder is a span exporter that keeps every span and signals each export.
type Recorder struct {
	exp     *tracetest.InMemoryExporter
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every export
}

// New returns an empty recorder.
func New() *Recorder {
	return &Recorder{exp: tracetest.NewInMemoryExporter(), changed: make(chan struct{})}
}

// Provider is a tracer provider that records every span, synchronously, into r.
func (r *Recorder) Provider() *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSyncer(r), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
}

// ExportSpans implements sdktrace.SpanExporter.
func (r *Recorder) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := r.exp.ExportSpans(ctx, spans)
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	return err
}

// Shutdown implements sdktrace.SpanExporter; the spans stay readable.
func (r *Recorder) Shutdown(context.Context) error { return nil }

// Spans are the spans ended so far.
func (r *Recorder) Spans() tracetest.SpanStubs { return r.exp.GetSpans() }

// Reset forgets the spans ended so far.
func (r *Recorder) Reset() { r.exp.Reset() }

// Wait returns the spans once done says they are complete; it fails t when
// that has not happened within a minute (a bound, not a timing assertion).
func (r *Recorder) Wait(t testing.TB, what string, done func(tracetest.SpanStubs) bool) tracetest.SpanStubs {
	t.Helper()
	limit := time.NewTimer(time.Minute)
	defer limit.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if spans := r.Spans(); done(spans) {
			return spans
		}
		select {
		case <-changed:
		case <-limit.C:
			t.Fatalf("spans: no %s after a minute; have %s", what, Names(r.Spans()))
		}
	}
}

// Server returns the first server span (kind server) named name.
func Server(spans tracetest.SpanStubs, name string) (tracetest.SpanStub, bool) {
	for _, s := range spans {
		if s.SpanKind == trace.SpanKindServer && s.Name == name {
			return s, true
		}
	}
	return tracetest.SpanStub{}, false
}

// Names lists the spans' names with their parents, for failure messages.
func Names(spans tracetest.SpanStubs) []string {
	byID := map[trace.SpanID]string{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s.Name
	}
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
		if p, ok := byID[s.Parent.SpanID()]; ok {
			out[i] = p + " > " + s.Name
		}
	}
	return out
}
