package odata_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// FuzzQueryOptions: any $filter/$select/$expand/$orderby text is answered
// with 200 or an ERP.net envelope, never a panic or a broken body.
func FuzzQueryOptions(f *testing.F) {
	for _, seed := range [][4]string{
		{"State eq 'New' and DocumentDate ge 2026-01-01", "DocumentNo,Id", "Lines($select=LineNo;$top=2)", "DocumentNo desc"},
		{"contains(DocumentNotes,'it''s')", "default,ObjectVersion", "Customer($expand=Party)", ""},
		{"Customer eq 'Crm_Sales_Customers(6f1c2a4e-9b1d-4c8e-a7f2-3d5e6b7c8a90)'", "", "", "CreationTime"},
		{"(((", ",,", "Lines(;;)", "asc desc"},
		{"SalesOrder/Customer/Party/PartyName eq null", "*", "ToParty($select=Name)", "ToParty/PartyCode"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3])
	}
	h := odata.NewHandler(readStore(), odata.Options{ServiceRoot: "http://erpsim.test/api/domain/odata/"})
	f.Fuzz(func(t *testing.T, filter, sel, expand, orderby string) {
		v := url.Values{"$top": {"3"}}
		for k, s := range map[string]string{"$filter": filter, "$select": sel, "$expand": expand, "$orderby": orderby} {
			if s != "" {
				v.Set(k, s)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/Crm_Sales_SalesOrders?"+v.Encode(), nil))
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("status %d, body is not JSON: %v\n%s", w.Code, err, w.Body)
		}
		switch w.Code {
		case http.StatusOK:
			if _, ok := body["value"]; !ok {
				t.Fatalf("200 without value: %s", w.Body)
			}
		case http.StatusInternalServerError:
			e, ok := body["error"].(map[string]any)
			if !ok || e["message"] == "" || e["code"] == float64(1) {
				t.Fatalf("500 without a query error envelope (internal error?): %s", w.Body)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	})
}
