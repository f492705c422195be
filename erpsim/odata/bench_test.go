package odata_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// BenchmarkNewStore measures start-up: building the demo data.
func BenchmarkNewStore(b *testing.B) {
	for _, bc := range []struct {
		name  string
		scale int
	}{{"scale=1", 1}, {"scale=100", 100}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				odata.NewStore(bc.scale, testNow)
			}
		})
	}
}

// BenchmarkGet50Rows measures the CPU of a typical erpgraph page: 50 sales
// orders of one customer in a date window, with $select, through the handler.
func BenchmarkGet50Rows(b *testing.B) {
	for _, bc := range []struct {
		name, query string
		scale       int
	}{
		{"filter+select", "$filter=Customer%20eq%20'" + customerRef(1) + "'%20and%20DocumentDate%20ge%202025-01-01&$select=Id,DocumentNo,DocumentDate,State,Customer,DocumentCurrency&$top=50", 1},
		{"filter+select/scale=100", "$filter=Customer%20eq%20'" + customerRef(1) + "'%20and%20DocumentDate%20ge%202025-01-01&$select=Id,DocumentNo,DocumentDate,State,Customer,DocumentCurrency&$top=50", 100},
		{"default+expand-lines", "$filter=State%20ge%20'Released'&$expand=Lines($select=LineNo,Product,Quantity,LineAmount)&$top=50", 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := odata.NewStore(bc.scale, testNow)
			h := odata.NewHandler(s, odata.Options{ServiceRoot: "http://127.0.0.1:1/api/domain/odata/"})
			req := httptest.NewRequest(http.MethodGet, "/Crm_Sales_SalesOrders?"+bc.query, nil)
			req = req.WithContext(odata.NewContext(req.Context(), odata.Principal{Scopes: []string{"read"}}))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
