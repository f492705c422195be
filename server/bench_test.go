package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/server"
)

// BenchmarkServer_Edge measures what the edge adds to one anonymous POST
// /graphql (request ID, access log, CORS, CSRF, rate limit, body read and,
// with audit, the operation description and record) around a handler that
// answers at once.
func BenchmarkServer_Edge(b *testing.B) {
	const body = `{"query":"query Dashboard($first: Int) { salesOrders(first: $first) { nodes { id documentNo } } }","operationName":"Dashboard","variables":{"first":20}}`
	for _, audit := range []bool{false, true} {
		name := "audit=off"
		cfg := server.Config{
			GraphQL: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, `{"data":{"salesOrders":{"nodes":[]}}}`)
			}),
			Verifier:  refuseAll{},
			Logger:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
			RateLimit: server.RateLimitConfig{AnonRate: -1, MaxConcurrent: -1},
		}
		if audit {
			name = "audit=on"
			cfg.Audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
		}
		srv, err := server.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		h := srv.Handler()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
