package erpsim_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// A fault aimed at one entity set fires on the $batch parts that read it
// (ERP.net runs each part as its own request) while the other parts and the
// batch itself succeed; a fault on the Domain API root fires once, on the
// outer request, not again on every part.
func TestDomainAPI_FaultsOnBatchParts(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(t, s)
	ct, body := batchBody("General_Products_Products?$top=1", "Crm_Sales_Customers?$top=1", "General_Products_Products?$top=2")
	post := func() (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.ODataURL()+"$batch", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/General_Products_Products", Status: http.StatusInternalServerError})
	status, got := post()
	if status != http.StatusOK || strings.Count(got, "HTTP/1.1 500") != 2 || strings.Count(got, "HTTP/1.1 200") != 1 ||
		!strings.Contains(got, "InjectedFaultException") {
		t.Errorf("set fault: batch %d, parts:\n%s", status, got)
	}
	// A direct read of the set fails too, and another set does not.
	if r := get(t, s.ODataURL()+"General_Products_Products?$top=1", tok); r.status != http.StatusInternalServerError {
		t.Errorf("direct read of the faulty set: %d", r.status)
	}
	if r := get(t, s.ODataURL()+"Crm_Sales_Customers?$top=1", tok); r.status != http.StatusOK {
		t.Errorf("direct read of another set: %d", r.status)
	}

	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/General_Products_Products", Status: http.StatusInternalServerError, Count: 1})
	if _, got := post(); strings.Count(got, "HTTP/1.1 500") != 1 || strings.Count(got, "HTTP/1.1 200") != 2 {
		t.Errorf("set fault with count 1: parts:\n%s", got)
	}

	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Status: http.StatusBadGateway, Count: 1})
	if status, _ := post(); status != http.StatusBadGateway {
		t.Errorf("root fault: batch %d, want 502", status)
	}
	if status, got := post(); status != http.StatusOK || strings.Count(got, "HTTP/1.1 200") != 3 {
		t.Errorf("root fault with count 1 fired on parts too: %d\n%s", status, got)
	}

	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/General_Products_Products", Malformed: true, Count: 1})
	if _, got := post(); !strings.Contains(got, `"value":[{"DocumentNo":"00`) || strings.Count(got, "HTTP/1.1 200") != 3 {
		t.Errorf("malformed part: parts:\n%s", got)
	}
	s.SetFaults()
}

// Held counts the requests the latency knob holds, so tests can act once a
// request reached the Domain API; releasing the latency empties it.
func TestSim_Held(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(t, s)
	s.SetLatency(time.Hour, 0)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.ODataURL()+"General_Currencies_Currencies?$top=1", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := noRedirect.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.Held() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Held = %d, want 1", s.Held())
		}
		runtime.Gosched()
	}
	s.SetLatency(0, 0)
	if got := <-done; got != http.StatusOK {
		t.Errorf("released request: %d", got)
	}
	if n := s.Held(); n != 0 {
		t.Errorf("Held after release = %d", n)
	}
}

// CommitThenDrop lets a write commit and then drops the connection: the
// client sees a transport error, yet the order exists.
func TestDomainAPI_CommitThenDrop(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(t, s, "read", "update")
	count := func() string {
		t.Helper()
		r := get(t, s.ODataURL()+"Crm_Sales_SalesOrders/$count?$filter=ReferenceDocumentNo%20eq%20'eg-drop-1'", tok)
		return strings.TrimSpace(string(r.body))
	}
	if n := count(); n != "0" {
		t.Fatalf("before: %s", n)
	}
	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/Crm_Sales_SalesOrders", Method: http.MethodPost, CommitThenDrop: true, Count: 1})
	body := `{"Customer":{"@odata.id":"Crm_Sales_Customers(` + fixture.CustomerID(1) + `)"},"ReferenceDocumentNo":"eg-drop-1",` +
		`"Lines":[{"Product":{"@odata.id":"General_Products_Products(` + fixture.ID("General_Products_Products", 1) + `)"},"Quantity":{"Value":1}}]}`
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.ODataURL()+"Crm_Sales_SalesOrders", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := noRedirect.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the connection was not dropped: %d", resp.StatusCode)
	}
	if n := count(); n != "1" {
		t.Fatalf("after the dropped answer: %s orders, want the committed one", n)
	}
}
