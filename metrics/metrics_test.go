package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/metrics"
)

func scrape(t *testing.T, r *metrics.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return string(b)
}

// series counts the lines of one metric family's samples.
func series(text, name string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			out = append(out, line)
		}
	}
	return out
}

// Operation names are chosen by clients: past the cap, and for names that
// are not GraphQL names or did not validate, they collapse to one value, so
// no client can grow the series without bound.
func TestRegistry_OperationNamesAreBounded(t *testing.T) {
	r := metrics.New(metrics.Config{MaxOperationNames: 3})
	for i := range 50 {
		r.ObserveOperation(metrics.Operation{Name: fmt.Sprintf("Op%d", i), Type: "query", Valid: true})
	}
	r.ObserveOperation(metrics.Operation{Name: "Op1", Type: "query", Valid: true}) // already known: still itself
	r.ObserveOperation(metrics.Operation{Name: "user@example.com", Type: "query", Valid: true})
	r.ObserveOperation(metrics.Operation{Name: "Unvalidated", Type: "query", Outcome: "GRAPHQL_VALIDATION_FAILED"})
	r.ObserveOperation(metrics.Operation{Type: "mutation", Outcome: "FORBIDDEN", Codes: []string{"FORBIDDEN", "not a code"}, Valid: true})
	r.ObserveOperation(metrics.Operation{Name: "Op2", Type: "bogus", Valid: true})
	text := scrape(t, r)
	ops := series(text, "erpgraph_graphql_operations_total")
	want := []string{
		`erpgraph_graphql_operations_total{operation="Op0",outcome="OK",type="query"} 1`,
		`erpgraph_graphql_operations_total{operation="Op1",outcome="OK",type="query"} 2`,
		`erpgraph_graphql_operations_total{operation="Op2",outcome="OK",type="query"} 1`,
		`erpgraph_graphql_operations_total{operation="Op2",outcome="OK",type="unknown"} 1`,
		`erpgraph_graphql_operations_total{operation="__anonymous__",outcome="FORBIDDEN",type="mutation"} 1`,
		`erpgraph_graphql_operations_total{operation="__other__",outcome="GRAPHQL_VALIDATION_FAILED",type="query"} 1`,
		`erpgraph_graphql_operations_total{operation="__other__",outcome="OK",type="query"} 48`,
	}
	if strings.Join(ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("operation series:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(want, "\n"))
	}
	errs := series(text, "erpgraph_graphql_errors_total")
	if want := []string{`erpgraph_graphql_errors_total{code="FORBIDDEN"} 1`, `erpgraph_graphql_errors_total{code="OTHER"} 1`}; strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("error series: %q, want %q", errs, want)
	}
	if strings.Contains(text, "user@example.com") {
		t.Error("a client-chosen non-name reached a label")
	}
}

// With a known set (the trusted documents), only those names are labels.
func TestRegistry_KnownOperations(t *testing.T) {
	r := metrics.New(metrics.Config{KnownOperations: []string{"Dashboard"}})
	r.ObserveOperation(metrics.Operation{Name: "Dashboard", Type: "query", Valid: true})
	r.ObserveOperation(metrics.Operation{Name: "Other", Type: "query", Valid: true})
	ops := series(scrape(t, r), "erpgraph_graphql_operations_total")
	want := []string{
		`erpgraph_graphql_operations_total{operation="Dashboard",outcome="OK",type="query"} 1`,
		`erpgraph_graphql_operations_total{operation="__other__",outcome="OK",type="query"} 1`,
	}
	if strings.Join(ops, "\n") != strings.Join(want, "\n") {
		t.Errorf("operation series: %q, want %q", ops, want)
	}
}

// Paths outside erpgraph's routes share one label; methods likewise.
func TestRegistry_MiddlewareBoundsRoutes(t *testing.T) {
	r := metrics.New(metrics.Config{})
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/graphql" {
			http.NotFound(w, req)
		}
	}))
	for _, target := range []string{"/graphql", "/graphql", "/x/1", "/x/2", "/playground/assets/app.js"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, target, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/graphql", nil))
	got := series(scrape(t, r), "erpgraph_http_requests_total")
	want := []string{
		`erpgraph_http_requests_total{code="200",method="GET",route="/graphql"} 2`,
		`erpgraph_http_requests_total{code="200",method="other",route="/graphql"} 1`,
		`erpgraph_http_requests_total{code="404",method="GET",route="/playground/assets"} 1`,
		`erpgraph_http_requests_total{code="404",method="GET",route="other"} 2`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("request series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A nil Registry (metrics off) accepts every call.
func TestRegistry_Nil(t *testing.T) {
	var r *metrics.Registry
	r.Refused("rate")
	r.ObserveOperation(metrics.Operation{Name: "X"})
	r.CacheLookup("read", metrics.CacheHit)
	r.Session("created")
	r.IdempotentReplay()
	r.StoreFailed("ratelimit")
	if err := r.WatchERP(nil, metrics.ERPLimits{}); err != nil {
		t.Fatal(err)
	}
	h := http.NotFoundHandler()
	if got := r.Middleware(h); fmt.Sprint(got) != fmt.Sprint(h) {
		t.Error("a nil Registry wraps the handler")
	}
}
