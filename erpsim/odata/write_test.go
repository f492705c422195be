package odata_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// freshStore is a private store for tests that write.
func freshStore() *odata.Store { return odata.NewStore(1, testNow) }

func productRef(n int) map[string]string {
	return map[string]string{"@odata.id": "General_Products_Products(" + fixture.ID("General_Products_Products", n) + ")"}
}

func newOrder(customer int, lines ...int) map[string]any {
	var ls []any
	for i, p := range lines {
		ls = append(ls, map[string]any{"Product": productRef(p), "Quantity": map[string]any{"Value": i + 2}})
	}
	return map[string]any{"Customer": map[string]string{"@odata.id": customerRef(customer)}, "Lines": ls}
}

func mustCreate(t *testing.T, srv *server, body map[string]any) response {
	t.Helper()
	r := srv.do(t, http.MethodPost, "Crm_Sales_SalesOrders", body)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	return r
}

func wantError(t *testing.T, r response, status, code int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if got, _ := r.errorCode(t); got != code {
		t.Fatalf("code %d, want %d: %s", got, code, r.raw)
	}
}

func TestWrite_CreateOrder(t *testing.T) {
	srv := newServer(t, freshStore())
	before := srv.count(t, "Crm_Sales_SalesOrders", "")
	r := mustCreate(t, srv, newOrder(2, 1, 5, 9))
	o := r.obj
	if o["State"] != "New" || num(t, o["ObjectVersion"]) != 1 || o["DocumentNo"] == "" || o["Id"] == nil {
		t.Fatalf("created = %s", r.raw)
	}
	if got := refID(t, o["ToParty"]); got != "General_Contacts_Companies("+companyID(2)+")" {
		t.Errorf("ToParty = %s", got)
	}
	if got := r.header.Get("Location"); got != srv.root+o["@odata.id"].(string) {
		t.Errorf("Location = %q", got)
	}
	lines := o["Lines"].([]any)
	if len(lines) != 3 {
		t.Fatalf("lines = %v", lines)
	}
	for i, l := range lines {
		lm := l.(map[string]any)
		qty := num(t, lm["Quantity"].(map[string]any)["Value"])
		price := num(t, lm["UnitPrice"].(map[string]any)["Value"])
		if num(t, lm["LineNo"]) != float64(10*(i+1)) || num(t, lm["LineAmount"].(map[string]any)["Value"]) != float64(int(qty*price*100+0.5))/100 {
			t.Errorf("line %d = %v", i, lm)
		}
	}
	if after := srv.count(t, "Crm_Sales_SalesOrders", ""); after != before+1 {
		t.Errorf("orders %d → %d", before, after)
	}
	id := o["Id"].(string)
	if n := srv.count(t, "Crm_Sales_SalesOrderLines", "SalesOrder eq 'Crm_Sales_SalesOrders("+id+")'"); n != 3 {
		t.Errorf("lines by index = %d", n)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrders", "Customer eq '"+customerRef(2)+"' and Id eq "+id); n != 1 {
		t.Errorf("new order not found through the customer index: %d", n)
	}

	for name, body := range map[string]map[string]any{
		"no customer":     {"Lines": []any{}},
		"unknown product": newOrder(1, 9999),
		"zero quantity":   {"Customer": map[string]string{"@odata.id": customerRef(1)}, "Lines": []any{map[string]any{"Product": productRef(1), "Quantity": map[string]any{"Value": 0}}}},
		"unknown prop":    {"Customer": map[string]string{"@odata.id": customerRef(1)}, "Colour": "red"},
		"read-only prop":  {"Customer": map[string]string{"@odata.id": customerRef(1)}, "State": "Released"},
		"bad ref":         {"Customer": map[string]string{"@odata.id": "General_Products_Products(" + fixture.ID("General_Products_Products", 1) + ")"}},
		"bad date":        {"Customer": map[string]string{"@odata.id": customerRef(1)}, "DocumentDate": "yesterday"},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, srv.do(t, http.MethodPost, "Crm_Sales_SalesOrders", body), 500, 2000)
		})
	}
	if after := srv.count(t, "Crm_Sales_SalesOrders", ""); after != before+1 {
		t.Errorf("failed creates left rows: %d → %d", before+1, after)
	}
	bound := srv.do(t, http.MethodPost, "Crm_Sales_SalesOrders", map[string]any{"Customer@odata.bind": customerRef(3)})
	if bound.status != http.StatusCreated || refID(t, bound.obj["Customer"]) != customerRef(3) {
		t.Errorf("@odata.bind create: %d %s", bound.status, bound.raw)
	}
}

func TestWrite_PatchStateAndVersion(t *testing.T) {
	srv := newServer(t, freshStore())
	o := mustCreate(t, srv, newOrder(1, 3)).obj
	self := o["@odata.id"].(string)

	r := srv.do(t, http.MethodPatch, self, map[string]any{"ObjectVersion": 1, "CustomerPurchaseOrderNo": "PO-1", "DocumentNotes": "ring twice"})
	if r.status != http.StatusNoContent {
		t.Fatalf("patch: %d %s", r.status, r.raw)
	}
	got := srv.mustGet(t, self, "$select", "default,ObjectVersion").obj
	if got["CustomerPurchaseOrderNo"] != "PO-1" || num(t, got["ObjectVersion"]) != 2 {
		t.Fatalf("after patch: %v", got)
	}
	wantError(t, srv.do(t, http.MethodPatch, self, map[string]any{"ObjectVersion": 1, "DocumentNotes": "stale"}), 500, 2106)
	if srv.mustGet(t, self).obj["DocumentNotes"] != "ring twice" {
		t.Error("stale patch was applied")
	}
	// A line change bumps the order's version and recalculates the amount.
	line := o["Lines"].([]any)[0].(map[string]any)["@odata.id"].(string)
	if r := srv.do(t, http.MethodPatch, line, map[string]any{"Quantity": map[string]any{"Value": 10}, "LineCustomDiscountPercent": 50}); r.status != 204 {
		t.Fatalf("line patch: %d %s", r.status, r.raw)
	}
	l := srv.mustGet(t, line, "$select", "default,ObjectVersion").obj
	price := num(t, l["UnitPrice"].(map[string]any)["Value"])
	if num(t, l["LineAmount"].(map[string]any)["Value"]) != float64(int(10*price*0.5*100+0.5))/100 || num(t, l["ObjectVersion"]) != 3 {
		t.Errorf("line after patch: %v", l)
	}
	// ChangeState: Released documents are read-only.
	if r := srv.do(t, http.MethodPost, self+"/ChangeState", map[string]any{"newState": "Released"}); r.status != 204 {
		t.Fatalf("ChangeState: %d %s", r.status, r.raw)
	}
	got = srv.mustGet(t, self, "$select", "State,ObjectVersion").obj
	if got["State"] != "Released" || num(t, got["ObjectVersion"]) != 4 {
		t.Errorf("after ChangeState: %v", got)
	}
	wantError(t, srv.do(t, http.MethodPatch, self, map[string]any{"DocumentNotes": "late"}), 500, 2029)
	wantError(t, srv.do(t, http.MethodPatch, line, map[string]any{"Quantity": map[string]any{"Value": 1}}), 500, 2029)
	wantError(t, srv.do(t, http.MethodDelete, self, nil), 500, 2029)
	wantError(t, srv.do(t, http.MethodPost, self+"/ChangeState", map[string]any{"newState": "Shipped"}), 500, 2000)
	// Demo documents past New are read-only too.
	released := srv.mustGet(t, "Crm_Sales_SalesOrders", "$filter", "State eq 'Completed'", "$top", "1").rows(t)[0]["@odata.id"].(string)
	wantError(t, srv.do(t, http.MethodPatch, released, map[string]any{"DocumentNotes": "x"}), 500, 2029)
	wantError(t, srv.do(t, http.MethodPatch, "Crm_Sales_SalesOrders("+fixture.ID("nope", 1)+")", map[string]any{}), 404, 1004)
}

func TestWrite_Delete(t *testing.T) {
	srv := newServer(t, freshStore())
	o := mustCreate(t, srv, newOrder(1, 3, 4)).obj
	self, id := o["@odata.id"].(string), o["Id"].(string)
	line := o["Lines"].([]any)[0].(map[string]any)["@odata.id"].(string)
	if r := srv.do(t, http.MethodDelete, line, nil); r.status != 204 {
		t.Fatalf("delete line: %d %s", r.status, r.raw)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrderLines", "SalesOrder eq '"+self+"'"); n != 1 {
		t.Errorf("lines after delete = %d", n)
	}
	if r := srv.do(t, http.MethodDelete, self, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	wantError(t, srv.get(t, self), 404, 1004)
	if n := srv.count(t, "Crm_Sales_SalesOrderLines", "SalesOrder/Id eq "+id); n != 0 {
		t.Errorf("orphan lines: %d", n)
	}
}

func TestWrite_NeedsUpdateScope(t *testing.T) {
	srv := newServer(t, freshStore(), "read")
	wantError(t, srv.do(t, http.MethodPost, "Crm_Sales_SalesOrders", newOrder(1, 1)), 403, 1003)
	srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1")
	body, ct := batchBody(t, []part{{changeset: []req{{id: "1", method: "POST", url: "Crm_Sales_SalesOrders", body: newOrder(1, 1)}}}})
	parts := postBatch(t, srv, body, ct)
	if len(parts) != 1 || parts[0].status != 403 {
		t.Fatalf("batch without update: %+v", parts)
	}
}

// Batch helpers: build a multipart/mixed request and read the response.
type req struct {
	id, method, url string
	body            any
}

type part struct {
	get       *req
	changeset []req
}

func writeReq(t *testing.T, w io.Writer, r req) {
	t.Helper()
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\n", r.method, r.url)
	if r.body != nil {
		b, err := jsonMarshal(r.body)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "Content-Type: application/json\r\n\r\n%s", b)
		return
	}
	fmt.Fprint(w, "\r\n")
}

func batchBody(t *testing.T, parts []part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		if p.get != nil {
			pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/http"}, "Content-Transfer-Encoding": {"binary"}})
			writeReq(t, pw, *p.get)
			continue
		}
		var cs bytes.Buffer
		cw := multipart.NewWriter(&cs)
		for _, r := range p.changeset {
			pw, _ := cw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/http"}, "Content-Transfer-Encoding": {"binary"}, "Content-ID": {r.id}})
			writeReq(t, pw, r)
		}
		cw.Close()
		pw, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"multipart/mixed; boundary=" + cw.Boundary()}})
		pw.Write(cs.Bytes())
	}
	mw.Close()
	return buf.Bytes(), "multipart/mixed; boundary=" + mw.Boundary()
}

// answer is one application/http response part, flattened in order.
type answer struct {
	status    int
	contentID string
	body      string
	inSet     int // changeset index + 1, 0 outside changesets
}

func postBatch(t *testing.T, srv *server, body []byte, ct string) []answer {
	t.Helper()
	hreq, _ := http.NewRequest(http.MethodPost, srv.root+"$batch", bytes.NewReader(body))
	hreq.Header.Set("Content-Type", ct)
	res, err := srv.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("$batch: %d %s", res.StatusCode, b)
	}
	if res.Header.Get("OData-Version") != "4.0" {
		t.Error("$batch without OData-Version")
	}
	_, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var out []answer
	sets := 0
	var read func(r io.Reader, boundary string, inSet int)
	read = func(r io.Reader, boundary string, inSet int) {
		mr := multipart.NewReader(r, boundary)
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			mt, pp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if mt == "multipart/mixed" {
				sets++
				read(p, pp["boundary"], sets)
				continue
			}
			resp, err := http.ReadResponse(bufioReader(p), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			out = append(out, answer{status: resp.StatusCode, contentID: p.Header.Get("Content-ID"), body: string(b), inSet: inSet})
		}
	}
	read(res.Body, params["boundary"], 0)
	return out
}

func TestBatch_ChangesetsAndReads(t *testing.T) {
	srv := newServer(t, freshStore())
	before := srv.count(t, "Crm_Sales_SalesOrders", "")
	linesBefore := srv.count(t, "Crm_Sales_SalesOrderLines", "")
	ok := []req{
		{id: "1", method: "POST", url: "Crm_Sales_SalesOrders", body: newOrder(1, 1)},
		{id: "2", method: "POST", url: "Crm_Sales_SalesOrderLines", body: map[string]any{"SalesOrder": map[string]string{"@odata.id": "$1"}, "Product": productRef(2), "Quantity": map[string]any{"Value": 4}}},
		{id: "3", method: "PATCH", url: "$1", body: map[string]any{"DocumentNotes": "from batch"}},
	}
	failing := []req{
		{id: "1", method: "POST", url: "Crm_Sales_SalesOrders", body: newOrder(2, 1)},
		{id: "2", method: "PATCH", url: "$1", body: map[string]any{"ObjectVersion": 99, "DocumentNotes": "stale"}},
	}
	get := req{method: "GET", url: "Crm_Sales_Customers?$select=Number&$top=2"}
	abs := req{method: "GET", url: srv.root + "Crm_Sales_SalesOrders/$count"}
	body, ct := batchBody(t, []part{{get: &get}, {changeset: ok}, {changeset: failing}, {get: &abs}})
	answers := postBatch(t, srv, body, ct)
	if len(answers) != 6 {
		t.Fatalf("%d answers: %+v", len(answers), answers)
	}
	if answers[0].status != 200 || !strings.Contains(answers[0].body, `"Number":"C000`) {
		t.Errorf("GET part: %+v", answers[0])
	}
	for i, want := range []int{201, 201, 204} {
		a := answers[1+i]
		if a.status != want || a.contentID != ok[i].id || a.inSet != 1 {
			t.Errorf("changeset part %d: %+v", i, a)
		}
	}
	if a := answers[4]; a.status != 500 || !strings.Contains(a.body, "ObjectVersion") || a.inSet != 0 {
		t.Errorf("failing changeset answer: %+v", a)
	}
	if answers[5].status != 200 || answers[5].body != fmt.Sprint(before+1) {
		t.Errorf("count part after the batch's writes: %+v (want %d)", answers[5], before+1)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrders", ""); n != before+1 {
		t.Errorf("orders %d → %d: the failing changeset wrote", before, n)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrderLines", ""); n != linesBefore+2 {
		t.Errorf("lines %d → %d", linesBefore, n)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrders", "DocumentNotes eq 'from batch' and Customer eq '"+customerRef(1)+"'"); n != 1 {
		t.Errorf("patched order by $1: %d", n)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrders", "State eq 'New' and Customer eq '"+customerRef(2)+"' and DocumentDate ge "+testNow.Format("2006-01-02")); n != 0 {
		t.Errorf("rolled-back order is visible: %d", n)
	}
}

func TestBatch_Malformed(t *testing.T) {
	srv := newServer(t, readStore())
	for name, tc := range map[string]struct{ ct, body string }{
		"not multipart": {"application/json", "{}"},
		"no boundary":   {"multipart/mixed", "x"},
		"bad part":      {"multipart/mixed; boundary=b", "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			hreq, _ := http.NewRequest(http.MethodPost, srv.root+"$batch", strings.NewReader(tc.body))
			hreq.Header.Set("Content-Type", tc.ct)
			res, err := srv.Client().Do(hreq)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 400 {
				t.Errorf("status %d, want 400", res.StatusCode)
			}
		})
	}
}

func TestBatch_PartLatencyPerPart(t *testing.T) {
	var calls atomic.Int32
	s := freshStore()
	mux := http.NewServeMux()
	h := http.StripPrefix("/api/domain/odata", odata.NewHandler(s, odata.Options{PartLatency: func() time.Duration { calls.Add(1); return time.Microsecond }}))
	mux.Handle("/api/domain/odata/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(odata.NewContext(r.Context(), odata.Principal{Scopes: []string{"read", "update"}})))
	}))
	srv := &server{Server: newHTTPTest(t, mux)}
	srv.root = srv.URL + "/api/domain/odata/"
	get := req{method: "GET", url: "Crm_Sales_Customers?$top=1"}
	body, ct := batchBody(t, []part{{get: &get}, {get: &get}, {changeset: []req{{id: "1", method: "POST", url: "Crm_Sales_SalesOrders", body: newOrder(1, 1)}, {id: "2", method: "PATCH", url: "$1", body: map[string]any{"DocumentNotes": "x"}}}}})
	if a := postBatch(t, srv, body, ct); len(a) != 4 {
		t.Fatalf("answers: %+v", a)
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("PartLatency called %d times, want 4 (once per part)", got)
	}
}

// checkEDMX parses $metadata and checks every set and navigation names a declared type.
func checkEDMX(t *testing.T, raw []byte) {
	t.Helper()
	var doc struct {
		Schemas []struct {
			Types []struct {
				Name string `xml:"Name,attr"`
				Navs []struct {
					Name string `xml:"Name,attr"`
					Type string `xml:"Type,attr"`
				} `xml:"NavigationProperty"`
			} `xml:"EntityType"`
			Sets []struct {
				Name string `xml:"Name,attr"`
				Type string `xml:"EntityType,attr"`
			} `xml:"EntityContainer>EntitySet"`
		} `xml:"DataServices>Schema"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("$metadata is not XML: %v", err)
	}
	if len(doc.Schemas) != 1 {
		t.Fatalf("%d schemas", len(doc.Schemas))
	}
	types := map[string]bool{}
	for _, ty := range doc.Schemas[0].Types {
		types["Erp."+ty.Name] = true
	}
	sets := map[string]bool{}
	for _, s := range doc.Schemas[0].Sets {
		sets[s.Name] = true
		if !types[s.Type] {
			t.Errorf("set %s has undeclared type %s", s.Name, s.Type)
		}
	}
	for _, want := range []string{"Crm_Sales_SalesOrders", "Crm_Sales_SalesOrderLines", "Crm_Invoicing_Invoices", "Logistics_Shipment_ShipmentLines", "General_Contacts_Parties", "Systems_Security_Users", "Logistics_Inventory_CurrentBalances"} {
		if !sets[want] {
			t.Errorf("$metadata lacks %s", want)
		}
	}
	for _, ty := range doc.Schemas[0].Types {
		for _, n := range ty.Navs {
			name := strings.TrimSuffix(strings.TrimPrefix(n.Type, "Collection("), ")")
			if !types[name] {
				t.Errorf("%s.%s has undeclared type %s", ty.Name, n.Name, n.Type)
			}
		}
	}
}

// TestConcurrentReadsAndWrites runs readers, writers and batches at once;
// under -race it proves the store's locking.
func TestConcurrentReadsAndWrites(t *testing.T) {
	srv := newServer(t, freshStore())
	before := srv.count(t, "Crm_Sales_SalesOrders", "")
	const writers, readers, each = 3, 3, 5
	done := make(chan error, writers+readers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				r, err := srv.try(http.MethodPost, "Crm_Sales_SalesOrders", newOrder(1+i%4, 1+i, 2+i))
				if err != nil || r.status != http.StatusCreated {
					done <- fmt.Errorf("create: %d %s %v", r.status, r.raw, err)
					return
				}
				self := r.obj["@odata.id"].(string)
				if p, err := srv.try(http.MethodPatch, self, map[string]any{"ObjectVersion": 1, "DocumentNotes": "n"}); err != nil || p.status != 204 {
					done <- fmt.Errorf("patch: %d %s %v", p.status, p.raw, err)
					return
				}
			}
			done <- nil
		}()
	}
	for r := 0; r < readers; r++ {
		go func() {
			for i := 0; i < each; i++ {
				g, err := srv.try(http.MethodGet, "Crm_Sales_SalesOrders"+query("$filter", "Customer eq '"+customerRef(1)+"'", "$expand", "Lines", "$top", "20"), nil)
				if err != nil || g.status != 200 {
					done <- fmt.Errorf("get: %d %s %v", g.status, g.raw, err)
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < writers+readers; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.count(t, "Crm_Sales_SalesOrders", ""); n != before+writers*each {
		t.Errorf("orders %d → %d, want +%d", before, n, writers*each)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrders", "DocumentNotes eq 'n'"); n != writers*each {
		t.Errorf("patched %d, want %d", n, writers*each)
	}
}

func TestWrite_Errors(t *testing.T) {
	srv := newServer(t, freshStore())
	o := mustCreate(t, srv, newOrder(1, 3)).obj
	self := o["@odata.id"].(string)
	invoice := srv.mustGet(t, "Crm_Invoicing_Invoices", "$top", "1").rows(t)[0]["@odata.id"].(string)
	customer := "Crm_Sales_Customers(" + fixture.CustomerID(5) + ")"
	tests := []struct {
		name, method, target string
		body                 any
		status, code         int
	}{
		{"create unsupported set", http.MethodPost, "Crm_Invoicing_Invoices", map[string]any{}, 405, 1005},
		{"delete an invoice", http.MethodDelete, invoice, nil, 405, 1005},
		{"change state of a customer", http.MethodPost, customer + "/ChangeState", map[string]any{"newState": "Released"}, 405, 1005},
		{"change state without newState", http.MethodPost, self + "/ChangeState", map[string]any{}, 500, 2000},
		{"patch unknown property", http.MethodPatch, self, map[string]any{"Colour": "red"}, 500, 2000},
		{"patch Lines", http.MethodPatch, self, map[string]any{"Lines": []any{}}, 500, 2000},
		{"patch wrong type", http.MethodPatch, self, map[string]any{"DocumentNotes": 5}, 500, 2000},
		{"patch a property of another set", http.MethodPatch, customer, map[string]any{"Number": "C9", "Notes": 1}, 500, 2000},
		{"patch version not a number", http.MethodPatch, self, map[string]any{"ObjectVersion": "one"}, 500, 2000},
		{"body not JSON", http.MethodPatch, self, "not an object", 500, 2000},
		{"line for a released order", http.MethodPost, "Crm_Sales_SalesOrderLines", map[string]any{
			"SalesOrder": map[string]string{"@odata.id": srv.mustGet(t, "Crm_Sales_SalesOrders", "$filter", "State eq 'Released'", "$top", "1").rows(t)[0]["@odata.id"].(string)},
			"Product":    productRef(1), "Quantity": map[string]any{"Value": 1}}, 500, 2029},
		{"line without order", http.MethodPost, "Crm_Sales_SalesOrderLines", map[string]any{"Product": productRef(1)}, 500, 2000},
		{"price in another currency", http.MethodPost, "Crm_Sales_SalesOrders", map[string]any{
			"Customer": map[string]string{"@odata.id": customerRef(1)},
			"Lines": []any{map[string]any{"Product": productRef(1), "Quantity": map[string]any{"Value": 1},
				"UnitPrice": map[string]any{"Value": 2, "Currency": "USD"}}}}, 500, 2000},
		{"PUT", http.MethodPut, self, map[string]any{}, 405, 1005},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, srv.do(t, tt.method, tt.target, tt.body), tt.status, tt.code)
		})
	}
	got := srv.mustGet(t, self, "$select", "ObjectVersion,State").obj
	if num(t, got["ObjectVersion"]) != 1 || got["State"] != "New" {
		t.Errorf("failed writes changed the order: %v", got)
	}
	// A multi-language property takes only the known languages.
	wantError(t, srv.do(t, http.MethodPatch, "General_Products_Products("+fixture.ID("General_Products_Products", 1)+")",
		map[string]any{"Name": map[string]string{"EN": "x", "FR": "y"}}), 500, 2000)
	if r := srv.do(t, http.MethodPatch, "General_Products_Products("+fixture.ID("General_Products_Products", 1)+")",
		map[string]any{"Name": map[string]string{"EN": "Espresso", "BG": "Еспресо"}}); r.status != 204 {
		t.Fatalf("patch ML: %d %s", r.status, r.raw)
	}
	if n := srv.count(t, "General_Products_Products", "startswith(Name,'еспресо')"); n != 1 {
		t.Errorf("patched ML name found %d times", n)
	}
}

func TestBatch_ContentIDActionsAndAbsoluteURLs(t *testing.T) {
	srv := newServer(t, freshStore())
	body, ct := batchBody(t, []part{{changeset: []req{
		{id: "a", method: "POST", url: srv.root + "Crm_Sales_SalesOrders", body: newOrder(3, 7)},
		{id: "b", method: "POST", url: "$a/ChangeState", body: map[string]any{"newState": "Released"}},
		{id: "c", method: "PATCH", url: "/api/domain/odata/Crm_Sales_Customers(" + fixture.CustomerID(3) + ")", body: map[string]any{"DefaultPaymentTermDays": 21}},
	}}})
	answers := postBatch(t, srv, body, ct)
	if len(answers) != 3 || answers[0].status != 201 || answers[1].status != 204 || answers[2].status != 204 {
		t.Fatalf("answers: %+v", answers)
	}
	if n := srv.count(t, "Crm_Sales_SalesOrders", "Customer eq '"+customerRef(3)+"' and State eq 'Released' and DocumentDate ge "+testNow.Format("2006-01-02")); n != 1 {
		t.Errorf("released new order: %d", n)
	}
	if c := srv.mustGet(t, "Crm_Sales_Customers("+fixture.CustomerID(3)+")").obj; num(t, c["DefaultPaymentTermDays"]) != 21 {
		t.Errorf("customer after batch: %v", c)
	}
	// A URL outside the service root is refused as a malformed batch.
	bad, ct := batchBody(t, []part{{get: &req{method: "GET", url: "/elsewhere/Crm_Sales_Customers"}}})
	hreq, _ := http.NewRequest(http.MethodPost, srv.root+"$batch", bytes.NewReader(bad))
	hreq.Header.Set("Content-Type", ct)
	res, err := srv.Client().Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("outside the root: %d", res.StatusCode)
	}
}

// Validation failures answer ERP.net's envelope (500, code 2000) and write
// nothing: an inactive or unknown product, a non-positive quantity, an
// inactive customer, a ToParty that is not the customer's party.
func TestWrite_OrderValidation(t *testing.T) {
	srv := newServer(t, freshStore())
	before := srv.count(t, "Crm_Sales_SalesOrders", "")
	line := func(p int, q any) map[string]any {
		return map[string]any{"Product": productRef(p), "Quantity": map[string]any{"Value": q}}
	}
	cust := func(n int) map[string]string { return map[string]string{"@odata.id": customerRef(n)} }
	for name, tc := range map[string]struct {
		body map[string]any
		msg  string
	}{
		"inactive product":  {map[string]any{"Customer": cust(1), "Lines": []any{line(1, 1), line(37, 1)}}, "Line 2: The product"},
		"unknown product":   {newOrder(1, 1, 99999), "does not exist"},
		"negative quantity": {map[string]any{"Customer": cust(1), "Lines": []any{line(1, -3)}}, "positive Quantity"},
		"inactive customer": {newOrder(24, 1), "is not active"},
		"customer mismatch": {map[string]any{"Customer": cust(1), "ToParty": map[string]string{"@odata.id": "General_Contacts_Companies(" + companyID(2) + ")"}, "Lines": []any{line(1, 1)}}, "does not match"},
	} {
		t.Run(name, func(t *testing.T) {
			r := srv.do(t, http.MethodPost, "Crm_Sales_SalesOrders", tc.body)
			wantError(t, r, 500, 2000)
			if !strings.Contains(string(r.raw), tc.msg) {
				t.Errorf("answer %s lacks %q", r.raw, tc.msg)
			}
		})
	}
	if after := srv.count(t, "Crm_Sales_SalesOrders", ""); after != before {
		t.Errorf("failed creates left orders: %d → %d", before, after)
	}
}

// ChangeState follows the document life cycle; MakeVoid annuls a planned or
// released document; a version check (PATCH with ObjectVersion alone) in the
// same changeset as ChangeState makes the state change conditional.
func TestWrite_StateTransitionsAndVoid(t *testing.T) {
	srv := newServer(t, freshStore())
	self := mustCreate(t, srv, newOrder(1, 3)).obj["@odata.id"].(string)
	state := func(s string) response {
		return srv.do(t, http.MethodPost, self+"/ChangeState", map[string]any{"newState": s})
	}
	wantError(t, state("New"), 500, 2031)
	wantError(t, state("Completed"), 500, 2031)
	wantError(t, state("Adjustment"), 500, 2031)
	wantError(t, srv.do(t, http.MethodPost, self+"/MakeVoid", map[string]any{"reason": "x"}), 500, 2031)
	for _, s := range []string{"Planned", "New", "FirmPlanned", "Released"} {
		if r := state(s); r.status != 204 {
			t.Fatalf("ChangeState %s: %d %s", s, r.status, r.raw)
		}
	}
	wantError(t, state("Planned"), 500, 2031)
	wantError(t, srv.do(t, http.MethodPost, self+"/MakeVoid", map[string]any{}), 500, 2000)
	v := num(t, srv.mustGet(t, self, "$select", "ObjectVersion").obj["ObjectVersion"])

	// A stale version check rolls the state change of its changeset back.
	draft := mustCreate(t, srv, newOrder(2, 3)).obj["@odata.id"].(string)
	conditional := func(version int) []answer {
		body, ct := batchBody(t, []part{{changeset: []req{
			{id: "1", method: "PATCH", url: draft, body: map[string]any{"ObjectVersion": version}},
			{id: "2", method: "POST", url: draft + "/ChangeState", body: map[string]any{"newState": "Planned"}},
		}}})
		return postBatch(t, srv, body, ct)
	}
	if a := conditional(7); len(a) != 1 || a[0].status != 500 || !strings.Contains(a[0].body, "2106") {
		t.Fatalf("stale conditional ChangeState: %+v", a)
	}
	if got := srv.mustGet(t, draft, "$select", "State").obj["State"]; got != "New" {
		t.Fatalf("state after the failed changeset = %v", got)
	}
	if a := conditional(1); len(a) != 2 || a[1].status != 204 {
		t.Fatalf("conditional ChangeState: %+v", a)
	}
	if got := srv.mustGet(t, draft, "$select", "State").obj["State"]; got != "Planned" {
		t.Fatalf("state after the changeset = %v", got)
	}
	if r := srv.do(t, http.MethodPost, self+"/MakeVoid", map[string]any{"reason": "customer cancelled", "voidType": "Void"}); r.status != 204 {
		t.Fatalf("MakeVoid: %d %s", r.status, r.raw)
	}
	got := srv.mustGet(t, self, "$select", "Void,VoidReason,ObjectVersion").obj
	if got["Void"] != true || got["VoidReason"] != "customer cancelled" || num(t, got["ObjectVersion"]) != v+1 {
		t.Errorf("after MakeVoid: %v", got)
	}
	wantError(t, srv.do(t, http.MethodPost, self+"/MakeVoid", map[string]any{"reason": "again"}), 500, 2029)
	wantError(t, state("Completed"), 500, 2029)
}

// ReferenceDocumentNo is writable and filterable with eq (erpgraph looks
// orders up by the idempotency fingerprint it carries).
func TestWrite_ReferenceDocumentNo(t *testing.T) {
	srv := newServer(t, freshStore())
	body := newOrder(2, 1)
	body["ReferenceDocumentNo"] = "eg-abc123"
	mustCreate(t, srv, body)
	if n := srv.count(t, "Crm_Sales_SalesOrders", "ReferenceDocumentNo eq 'eg-abc123' and Customer eq '"+customerRef(2)+"'"); n != 1 {
		t.Errorf("orders by ReferenceDocumentNo = %d", n)
	}
}
