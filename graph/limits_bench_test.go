package graph_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/graph"
)

// BenchmarkLimits measures what the handler spends on an operation it refuses: a document near the 1 MiB body
// limit is refused after 1,000 tokens, before gqlparser parses it; the other cases are parsed, validated and
// measured.
func BenchmarkLimits(b *testing.B) {
	h := graph.NewHandler(graph.Config{})
	cases := []struct{ name, query string }{
		{"1MiB of tokens", "{ " + strings.Repeat("__typename ", 100_000) + "}"},
		{"120 aliases", "{ me { " + strings.Repeat("a: login ", 120) + "} }"},
		{"cost overload", `{ salesOrders(first: 100) { nodes { lines { salesOrder { lines { product { name } } } } } } }`},
		{"accepted (anonymous)", dashboardQuery},
	}
	for _, c := range cases {
		body, _ := json.Marshal(map[string]string{"query": c.query})
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d", rec.Code)
				}
			}
		})
	}
}
