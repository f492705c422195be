package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph/model"
)

// serviceRequest sends a Domain API request to erpsim with the BFF's service token (read update) and returns the
// status and body.
func (e *env) serviceRequest(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tk, err := e.sim.ServiceToken(ctx, fixture.BFFClientID, "read", "update")
	if err != nil {
		t.Fatal(err)
	}
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequestWithContext(ctx, method, e.sim.ODataURL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// oracleIDs reads the Ids of set matching filter directly from erpsim.
func (e *env) oracleIDs(t *testing.T, set, filter string) map[string]bool {
	t.Helper()
	status, raw := e.serviceRequest(t, http.MethodGet, set+"?"+url.Values{"$select": {"Id"}, "$filter": {filter}}.Encode(), nil)
	var body struct {
		Value []struct {
			ID string `json:"Id"`
		} `json:"value"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || status != http.StatusOK {
		t.Fatalf("oracle: HTTP %d %v", status, err)
	}
	out := map[string]bool{}
	for _, v := range body.Value {
		out[v.ID] = true
	}
	return out
}

func dateCutoff(days int) string {
	now := time.Now().UTC()
	return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -days).Format("2006-01-02")
}

// TestSalesOrders_SplitWindows gives boris different days-back windows for his two customers, which no single
// ERP.net filter expresses: the lists query each window on its own and merge, and must still show exactly his
// documents, page without gaps or repeats, and count them exactly.
func TestSalesOrders_SplitWindows(t *testing.T) {
	e := newEnv(t, envOptions{})
	status, _ := e.serviceRequest(t, http.MethodPatch, "Crm_Sales_CustomerExternalAccess("+fixture.ID("Crm_Sales_CustomerExternalAccess", 3)+")",
		map[string]any{"DaysBackAccess": 60})
	if status != http.StatusNoContent {
		t.Fatalf("PATCH access row: HTTP %d", status)
	}
	ref := func(n int) string { return "'Crm_Sales_Customers(" + fixture.CustomerID(n) + ")'" }
	want := e.oracleIDs(t, "Crm_Sales_SalesOrders", "Customer eq "+ref(2)+" and DocumentDate ge "+dateCutoff(365))
	for id := range e.oracleIDs(t, "Crm_Sales_SalesOrders", "Customer eq "+ref(3)+" and DocumentDate ge "+dateCutoff(60)) {
		want[id] = true
	}
	for _, order := range []map[string]any{nil, {"field": "DOCUMENT_NO", "direction": "ASC"}} {
		ids, dates, total := allOrders(t, e, fixture.MultiLogin, order)
		if total != len(want) || len(ids) != len(want) {
			t.Errorf("order %v: paged %d, totalCount %d, want %d", order, len(ids), total, len(want))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			_, g, err := model.DecodeID(id)
			if err != nil || !want[g] || seen[g] {
				t.Errorf("order %v: %s unexpected or repeated", order, id)
			}
			seen[g] = true
		}
		if order == nil {
			for i := 1; i < len(dates); i++ {
				if dates[i] > dates[i-1] {
					t.Fatalf("merged pages not in date order at %d: %s after %s", i, dates[i], dates[i-1])
				}
			}
		}
	}
	var p orderPage
	e.mustDo(t, fixture.OwnerLogin, pageQuery, map[string]any{"first": 1}, &p)
	r := e.do(t, fixture.MultiLogin, pageQuery, map[string]any{"after": *p.SalesOrders.PageInfo.EndCursor}, nil)
	if got := r.codes(); len(got) != 1 || got[0] != "BAD_USER_INPUT" {
		t.Errorf("keyset cursor on a merged list: %+v", r.Errors)
	}
}

// TestPrices_NotReadWithoutPriceRole makes boris an Orders-only user: prices are null and are not even read.
func TestPrices_NotReadWithoutPriceRole(t *testing.T) {
	e := newEnv(t, envOptions{})
	status, _ := e.serviceRequest(t, http.MethodPatch, "Crm_Sales_CustomerExternalAccess("+fixture.ID("Crm_Sales_CustomerExternalAccess", 3)+")",
		map[string]any{"Role": "Orders"})
	if status != http.StatusNoContent {
		t.Fatalf("PATCH access row: HTTP %d", status)
	}
	e.count.reset()
	var data struct {
		SalesOrders struct {
			Nodes []struct {
				Customer struct{ CreditLimit *model.Money }
				Lines    []struct{ UnitPrice, LineAmount *model.Money }
			}
		}
	}
	e.mustDo(t, fixture.MultiLogin, `{ salesOrders(first: 10) { nodes { customer { creditLimit { amount } } lines { unitPrice { amount } lineAmount { amount } } } } }`, nil, &data)
	lines := 0
	for _, o := range data.SalesOrders.Nodes {
		if o.Customer.CreditLimit != nil {
			t.Error("credit limit shown to an Orders-only user")
		}
		for _, l := range o.Lines {
			lines++
			if l.UnitPrice != nil || l.LineAmount != nil {
				t.Error("line price shown to an Orders-only user")
			}
		}
	}
	e.count.mu.Lock()
	targets := e.count.targets
	e.count.mu.Unlock()
	for _, u := range targets {
		if strings.Contains(u, "UnitPrice") || strings.Contains(u, "LineAmount") || strings.Contains(u, "CreditLimit") {
			t.Errorf("prices read for an Orders-only user: %s", u)
		}
	}
	if lines == 0 || len(targets) == 0 {
		t.Fatalf("%d lines, %d upstream reads: nothing was tested", lines, len(targets))
	}
}
