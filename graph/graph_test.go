package graph_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph/model"
)

func TestHandler_Anonymous(t *testing.T) {
	prod := newEnv(t, envOptions{})
	dev := newEnv(t, envOptions{introspection: true})
	tests := []struct {
		name     string
		env      *env
		query    string
		wantCode string // "" = no error
		wantPath string // the refused root field's response name; "" when the whole operation is refused
	}{
		{"typename", prod, `{ __typename }`, "", ""},
		{"orders", prod, `{ salesOrders { totalCount } }`, "UNAUTHENTICATED", "salesOrders"},
		{"aliased", prod, `{ o: salesOrders { totalCount } }`, "UNAUTHENTICATED", "o"},
		{"me", prod, `{ me { login } }`, "UNAUTHENTICATED", "me"},
		{"node", prod, `{ node(id: "U2FsZXNPcmRlcjowNmU5MjM2NS02YzdjLTVlOGUtYjJlZS1hZDQzYjBhYWIzYzI") { id } }`, "UNAUTHENTICATED", "node"},
		{"introspection refused in production", prod, `{ __schema { queryType { name } } }`, "INTROSPECTION_DISABLED", ""}, // refused for the whole operation
		{"introspection in dev mode", dev, `{ __schema { queryType { name } } }`, "", ""},
		{"dev mode still needs a user for data", dev, `{ products { totalCount } }`, "UNAUTHENTICATED", "products"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.env.do(t, "", tt.query, nil, nil)
			if tt.wantCode == "" {
				if len(r.Errors) > 0 || len(r.Data) == 0 {
					t.Fatalf("got errors %+v data %s, want data", r.Errors, r.Data)
				}
				return
			}
			if got := r.codes(); len(got) != 1 || got[0] != tt.wantCode {
				t.Fatalf("codes = %v, want [%s] (%+v)", got, tt.wantCode, r.Errors)
			}
			if tt.wantCode == "UNAUTHENTICATED" && r.Errors[0].Extensions["requestId"] == "" {
				t.Errorf("no requestId in %+v", r.Errors[0])
			}
			if tt.wantPath == "" {
				return
			}
			if p := r.Errors[0].Path; len(p) != 1 || p[0] != tt.wantPath {
				t.Errorf("path = %v, want [%s]", p, tt.wantPath)
			}
			if l := r.Errors[0].Locations; len(l) != 1 || l[0].Line != 1 || l[0].Column < 3 {
				t.Errorf("locations = %v, want the root field's", l)
			}
		})
	}
}

func TestHandler_GET(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := url.Values{"query": {`{ me { login } }`}}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+e.token(t, fixture.OwnerLogin))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct{ Me struct{ Login string } }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || r.Data.Me.Login != fixture.OwnerLogin {
		t.Fatalf("GET: HTTP %d, login %q", resp.StatusCode, r.Data.Me.Login)
	}
}

func TestHandler_RequestIDFromServer(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := strings.NewReader(`{"query":"{ salesOrders { totalCount } }"}`)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) != 1 || r.Errors[0].Extensions["requestId"] != "req-42" {
		t.Fatalf("errors = %+v, want requestId req-42", r.Errors)
	}
}

// TestDashboard_UpstreamReads asserts the read plan: the deep dashboard query costs two reads whatever the number
// of orders, lines and invoices: the orders with their customers, parties, lines and products nested ($expand),
// and the invoice lines of those orders with their invoices nested.
func TestDashboard_UpstreamReads(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, login := range []string{fixture.OwnerLogin, fixture.MultiLogin} {
		t.Run(login, func(t *testing.T) {
			e.mustDo(t, login, `{ me { customerAccess { role } } }`, nil, nil) // resolve and cache the access scope
			e.count.reset()
			var data struct {
				SalesOrders struct {
					Nodes []struct {
						Customer struct{ Party struct{ Name string } }
						Lines    []struct {
							Product struct{ PartNumber string }
						}
						Invoices []struct{ DocumentNo string }
					}
				}
			}
			e.mustDo(t, login, dashboardQuery, nil, &data)
			httpReqs, sets := e.count.snapshot()
			orders := data.SalesOrders.Nodes
			lines, invoices := 0, 0
			for _, o := range orders {
				if o.Customer.Party.Name == "" {
					t.Errorf("order without customer party name")
				}
				for _, l := range o.Lines {
					lines++
					if l.Product.PartNumber == "" {
						t.Errorf("line without product")
					}
				}
				invoices += len(o.Invoices)
			}
			if len(orders) != 20 || lines < 20 {
				t.Fatalf("got %d orders with %d lines; want 20 orders with lines", len(orders), lines)
			}
			want := map[string]int{"Crm_Sales_SalesOrders": 1, "Crm_Invoicing_InvoiceLines": 1}
			if !maps.Equal(sets, want) {
				t.Errorf("reads %v, want %v", sets, want)
			}
			e.count.mu.Lock()
			targets := slices.Clone(e.count.targets)
			e.count.mu.Unlock()
			for _, u := range targets {
				switch setOf(u) {
				case "Crm_Sales_SalesOrders":
					for _, nested := range []string{"Customer($select=", "$expand=Party($select=", "Lines($select=", "$expand=Product($select="} {
						if !strings.Contains(u, nested) {
							t.Errorf("order read %s does not nest %s", u, nested)
						}
					}
				case "Crm_Invoicing_InvoiceLines":
					if !strings.Contains(u, "$expand=Invoice($select=") {
						t.Errorf("invoice line read %s does not nest the invoice", u)
					}
				}
			}
			if httpReqs > 2 {
				t.Errorf("%d upstream HTTP requests for %d orders, %d lines, %d invoices; want at most 2", httpReqs, len(orders), lines, invoices)
			}
			t.Logf("%d orders, %d lines, %d invoices: %d HTTP requests, reads %v", len(orders), lines, invoices, httpReqs, sets)
		})
	}
}

type pageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	EndCursor       *string
}

type orderPage struct {
	SalesOrders struct {
		TotalCount int
		PageInfo   pageInfo
		Edges      []struct {
			Cursor string
			Node   struct {
				ID           string
				DocumentNo   string
				DocumentDate string
			}
		}
	}
}

const pageQuery = `query($after: String, $order: DocumentOrder, $first: Int) {
  salesOrders(first: $first, after: $after, orderBy: $order) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { id documentNo documentDate } }
  }
}`

// allOrders pages through login's orders and returns them in order.
func allOrders(t *testing.T, e *env, login string, order map[string]any) (ids, dates []string, total int) {
	t.Helper()
	var after any
	for page := 0; ; page++ {
		if page > 50 {
			t.Fatal("paging does not end")
		}
		var p orderPage
		e.mustDo(t, login, pageQuery, map[string]any{"after": after, "order": order, "first": 37}, &p)
		if p.SalesOrders.PageInfo.HasPreviousPage != (page > 0) {
			t.Errorf("page %d: hasPreviousPage = %v", page, p.SalesOrders.PageInfo.HasPreviousPage)
		}
		total = p.SalesOrders.TotalCount
		for _, edge := range p.SalesOrders.Edges {
			ids = append(ids, edge.Node.ID)
			dates = append(dates, edge.Node.DocumentDate)
		}
		if !p.SalesOrders.PageInfo.HasNextPage {
			return ids, dates, total
		}
		after = *p.SalesOrders.PageInfo.EndCursor
	}
}

func TestSalesOrders_Paging(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tt := range []struct {
		name  string
		order map[string]any
	}{
		{"default order (keyset)", nil},
		{"by date descending (offset)", map[string]any{"field": "DOCUMENT_DATE", "direction": "DESC"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ids, dates, total := allOrders(t, e, fixture.MultiLogin, tt.order)
			if len(ids) != total || total == 0 {
				t.Fatalf("paged %d orders, totalCount %d", len(ids), total)
			}
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("order %s on two pages", id)
				}
				seen[id] = true
			}
			if tt.order != nil && !slices.IsSortedFunc(dates, func(a, b string) int { return strings.Compare(b, a) }) {
				t.Errorf("dates not descending: %v", dates)
			}
		})
	}
}

func TestQuery_BadUserInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	var p orderPage
	e.mustDo(t, fixture.OwnerLogin, pageQuery, map[string]any{"first": 2}, &p)
	keyset := *p.SalesOrders.PageInfo.EndCursor
	tests := []struct {
		name  string
		query string
		vars  map[string]any
	}{
		{"first 0", `{ salesOrders(first: 0) { totalCount } }`, nil},
		{"first 101", `{ salesOrders(first: 101) { totalCount } }`, nil},
		{"garbage cursor", `{ salesOrders(after: "not-a-cursor") { totalCount } }`, nil},
		{"cursor with a filter inside", `query($a: String) { salesOrders(after: $a) { totalCount } }`,
			map[string]any{"a": "bzoxJyBvciAnMSc9JzE"}},
		{"keyset cursor on an ordered list", `query($a: String) { salesOrders(after: $a, orderBy: {field: DOCUMENT_NO}) { totalCount } }`,
			map[string]any{"a": keyset}},
		{"negative offset cursor", `{ salesOrders(after: "bzotNQ") { totalCount } }`, nil},
		{"customer id of another type", `query($id: ID!) { salesOrders(filter: {customerIds: [$id]}) { totalCount } }`,
			map[string]any{"id": model.EncodeID("SalesOrder", fixture.CustomerID(1))}},
		{"malformed customer id", `{ salesOrders(filter: {customerIds: ["x') or ('1'='1"]}) { totalCount } }`, nil},
		{"empty customer ids", `{ invoices(filter: {customerIds: []}) { totalCount } }`, nil},
		{"empty document number filter", `{ salesOrders(filter: {documentNo: {}}) { totalCount } }`, nil},
		{"empty startsWith", `{ shipments(filter: {documentNo: {startsWith: ""}}) { totalCount } }`, nil},
		{"control character", `{ salesOrders(filter: {documentNo: {eq: "00\u0000"}}) { totalCount } }`, nil},
		{"text too long", `query($s: String) { products(filter: {nameContains: $s}) { totalCount } }`,
			map[string]any{"s": strings.Repeat("a", 101)}},
		{"inverted date range", `{ invoices(filter: {documentDate: {ge: "2026-02-01", le: "2026-01-01"}}) { totalCount } }`, nil},
		{"empty date range", `{ invoices(filter: {paymentDueDate: {}}) { totalCount } }`, nil},
		{"empty state list", `{ salesOrders(filter: {state: []}) { totalCount } }`, nil},
		{"malformed node id", `{ node(id: "%%%") { id } }`, nil},
		{"too many nodes", `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
			map[string]any{"ids": slices.Repeat([]string{model.EncodeID("Product", fixture.ID("General_Products_Products", 1))}, 101)}},
		{"bad language", `{ products(first: 1) { nodes { name(language: "english") } } }`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, fixture.OwnerLogin, tt.query, tt.vars, nil)
			if got := r.codes(); len(got) == 0 || got[0] != "BAD_USER_INPUT" {
				t.Fatalf("codes = %v, want BAD_USER_INPUT (%+v)", got, r.Errors)
			}
		})
	}
}

func TestNode_OthersAnswerLikeMissing(t *testing.T) {
	e := newEnv(t, envOptions{})
	var own struct {
		SalesOrders struct{ Nodes []struct{ ID string } }
	}
	e.mustDo(t, fixture.OwnerLogin, `{ salesOrders(first: 1) { nodes { id } } }`, nil, &own)
	var others struct {
		SalesOrders struct{ Nodes []struct{ ID string } }
	}
	e.mustDo(t, fixture.MultiLogin, `{ salesOrders(first: 1) { nodes { id } } }`, nil, &others)
	mine, theirs := own.SalesOrders.Nodes[0].ID, others.SalesOrders.Nodes[0].ID
	missing := model.EncodeID("SalesOrder", "00000000-0000-4000-8000-000000000001")

	const q = `query($id: ID!) { node(id: $id) { id ... on SalesOrder { documentNo } } }`
	var got struct{ Node *struct{ ID string } }
	e.mustDo(t, fixture.OwnerLogin, q, map[string]any{"id": mine}, &got)
	if got.Node == nil || got.Node.ID != mine {
		t.Fatalf("own order: %+v", got.Node)
	}
	rOther := e.do(t, fixture.OwnerLogin, q, map[string]any{"id": theirs}, nil)
	rMissing := e.do(t, fixture.OwnerLogin, q, map[string]any{"id": missing}, nil)
	if rOther.codes()[0] != "NOT_FOUND" || rOther.Errors[0].Message != rMissing.Errors[0].Message ||
		rOther.codes()[0] != rMissing.codes()[0] || string(rOther.Data) != string(rMissing.Data) {
		t.Fatalf("another customer's order: %+v %s; missing order: %+v %s", rOther.Errors, rOther.Data, rMissing.Errors, rMissing.Data)
	}

	var many struct{ Nodes []*struct{ ID string } }
	r := e.do(t, fixture.OwnerLogin, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
		map[string]any{"ids": []string{mine, theirs, missing}}, &many)
	if len(many.Nodes) != 3 || many.Nodes[0] == nil || many.Nodes[1] != nil || many.Nodes[2] != nil {
		t.Fatalf("nodes = %+v", many.Nodes)
	}
	if len(r.Errors) != 2 || r.codes()[0] != "NOT_FOUND" || r.codes()[1] != "NOT_FOUND" {
		t.Fatalf("errors = %+v", r.Errors)
	}
	paths := []string{}
	for _, e := range r.Errors {
		b, _ := json.Marshal(e.Path)
		paths = append(paths, string(b))
	}
	slices.Sort(paths)
	if want := []string{`["nodes",1]`, `["nodes",2]`}; !slices.Equal(paths, want) {
		t.Errorf("error paths = %v, want %v", paths, want)
	}
}

func TestLocalizedNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	const q = `{ products(first: 1, orderBy: {field: PART_NUMBER}) { nodes { en: name(language: "en") bg: name(language: "BG") plain: name } } }`
	type names struct {
		Products struct {
			Nodes []struct{ En, Bg, Plain string }
		}
	}
	var anna, boris names
	e.mustDo(t, fixture.OwnerLogin, q, nil, &anna)  // locale bg
	e.mustDo(t, fixture.MultiLogin, q, nil, &boris) // locale en
	a, b := anna.Products.Nodes[0], boris.Products.Nodes[0]
	if a.En == a.Bg || a.Plain != a.Bg || b.Plain != b.En {
		t.Fatalf("anna (bg) %+v, boris (en) %+v", a, b)
	}
	// Accept-Language wins over the user's locale.
	body := strings.NewReader(`{"query":"{ products(first: 1, orderBy: {field: PART_NUMBER}) { nodes { name } } }"}`)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Language", "bg-BG,bg;q=0.9,en;q=0.5")
	req.Header.Set("Authorization", "Bearer "+e.token(t, fixture.MultiLogin))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Products struct{ Nodes []struct{ Name string } }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if got := r.Data.Products.Nodes[0].Name; got != a.Bg {
		t.Errorf("with Accept-Language bg: %q, want %q", got, a.Bg)
	}
}

func TestErrors_UpstreamHidden(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mustDo(t, fixture.OwnerLogin, `{ me { customerAccess { role } } }`, nil, nil)
	e.sim.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Rate: 1, Status: http.StatusInternalServerError})
	r := e.do(t, fixture.OwnerLogin, `{ salesOrders { totalCount } }`, nil, nil)
	e.sim.SetFaults()
	// ERP.net failing (a 500 not about the request, still failing after retries) is an upstream outage.
	if got := r.codes(); len(got) != 1 || got[0] != "UPSTREAM_UNAVAILABLE" {
		t.Fatalf("codes = %v (%+v)", got, r.Errors)
	}
	if msg := r.Errors[0].Message; msg != "the ERP system is unavailable or busy; try again later" {
		t.Errorf("message leaks detail: %q", msg)
	}
	e.sim.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Rate: 1, Drop: true})
	r = e.do(t, fixture.OwnerLogin, `{ invoices { totalCount } }`, nil, nil)
	e.sim.SetFaults()
	if got := r.codes(); len(got) != 1 || got[0] != "UPSTREAM_UNAVAILABLE" {
		t.Fatalf("dropped connection: codes = %v (%+v)", got, r.Errors)
	}
	if strings.Contains(r.Errors[0].Message, "127.0.0.1") || strings.Contains(r.Errors[0].Message, "odata") {
		t.Errorf("message leaks the upstream: %q", r.Errors[0].Message)
	}
}

func TestInternalUsers(t *testing.T) {
	refused := newEnv(t, envOptions{})
	r := refused.do(t, fixture.InternalLogin, `{ salesOrders { totalCount } }`, nil, nil)
	if got := r.codes(); len(got) != 1 || got[0] != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "internal") {
		t.Fatalf("internal user: %+v", r.Errors)
	}
	allowed := newEnv(t, envOptions{allowInternal: true})
	var data struct {
		SalesOrders struct {
			Nodes []struct{ Customer struct{ Number string } }
		}
	}
	allowed.mustDo(t, fixture.InternalLogin, `{ salesOrders(first: 100) { nodes { customer { number } } } }`, nil, &data)
	customers := map[string]bool{}
	for _, o := range data.SalesOrders.Nodes {
		customers[o.Customer.Number] = true
	}
	if len(customers) < 2 {
		t.Errorf("an allowed internal user sees orders of %d customers, want several", len(customers))
	}
}

// TestSelect_OnlyWhatIsSelected checks $select: the selected fields, Id, and what the access check reads.
func TestSelect_OnlyWhatIsSelected(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.mustDo(t, fixture.OwnerLogin, `{ me { customerAccess { role } } }`, nil, nil) // the access lookup
	e.count.reset()
	e.mustDo(t, fixture.OwnerLogin, `{ salesOrders(first: 3) { nodes { documentNo } } }`, nil, nil)
	e.count.mu.Lock()
	targets := slices.Clone(e.count.targets)
	e.count.mu.Unlock()
	if len(targets) != 1 {
		t.Fatalf("upstream reads %v, want one", targets)
	}
	u, err := url.Parse(targets[0])
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(u.Query().Get("$select"), ",")
	slices.Sort(got)
	if want := []string{"Customer", "DocumentDate", "DocumentNo", "Id", "ShipToCustomer"}; !slices.Equal(got, want) {
		t.Errorf("$select = %v, want %v", got, want)
	}
}
