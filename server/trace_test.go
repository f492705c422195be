package server_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/internal/spantest"
	"github.com/erpgraph/erpgraph/server"
)

// A W3C traceparent continues its trace only when the caller (the peer, not
// X-Forwarded-For) is a trusted proxy; any other caller's request starts a
// new trace, linked to the one it named. The GraphQL handler runs under the
// server span either way, and the probes are not traced.
func TestServer_TraceParent(t *testing.T) {
	const (
		callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan  = "00f067aa0ba902b7"
	)
	tests := []struct {
		name      string
		proxies   []netip.Prefix
		continued bool
	}{
		{"trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, true},
		{"untrusted caller", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, false},
		{"no trusted proxies", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := spantest.New()
			e := newEnv(t, func(c *server.Config) {
				c.TracerProvider = rec.Provider()
				c.RateLimit.TrustedProxies = tc.proxies
			})
			var inside trace.SpanContext
			e.handle = func(w http.ResponseWriter, r *http.Request) {
				inside = trace.SpanContextFromContext(r.Context())
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"data":{"__typename":"Query"}}`))
			}
			probe, err := http.Get(e.http.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			probe.Body.Close()
			res := e.post(t, http.Header{"Traceparent": {"00-" + callerTrace + "-" + callerSpan + "-01"},
				"X-Forwarded-For": {"203.0.113.9"}})
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			spans := rec.Wait(t, "server span", func(s tracetest.SpanStubs) bool { _, ok := spantest.Server(s, "POST /graphql"); return ok })
			s, _ := spantest.Server(spans, "POST /graphql")
			if len(spans) != 1 {
				t.Errorf("spans %v, want the POST alone (probes are not traced)", spantest.Names(spans))
			}
			if inside.SpanID() != s.SpanContext.SpanID() {
				t.Errorf("the handler ran under span %s, want the server span %s", inside.SpanID(), s.SpanContext.SpanID())
			}
			got := s.SpanContext.TraceID().String()
			if tc.continued {
				if got != callerTrace || s.Parent.SpanID().String() != callerSpan || !s.Parent.IsRemote() {
					t.Errorf("trace %s parent %s, want the caller's %s/%s", got, s.Parent.SpanID(), callerTrace, callerSpan)
				}
				return
			}
			if got == callerTrace || s.Parent.IsValid() {
				t.Errorf("trace %s with parent %v: an untrusted caller's traceparent was continued", got, s.Parent)
			}
			if len(s.Links) != 1 || s.Links[0].SpanContext.TraceID().String() != callerTrace {
				t.Errorf("links %v, want one to the caller's trace", s.Links)
			}
			for _, a := range s.Attributes {
				if a.Key == "client.address" && a.Value.AsString() != "127.0.0.1" {
					t.Errorf("client.address %q: an untrusted X-Forwarded-For was believed", a.Value.AsString())
				}
				if v := a.Value.Emit(); strings.Contains(v, "Bearer") {
					t.Errorf("attribute %s = %q", a.Key, v)
				}
			}
		})
	}
}
