package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// TestRoles checks what each role shows beyond row visibility: prices, invoices, days back, and the refusals.
func TestRoles(t *testing.T) {
	forEachCache(t, func(t *testing.T) {
		t.Run("prices only where the role includes them", func(t *testing.T) {
			var data struct {
				SalesOrders struct {
					Nodes []struct {
						Customer struct {
							ID          string
							Role        string
							CreditLimit *struct{ Amount string }
						}
						Lines []struct {
							UnitPrice  *struct{ Amount string }
							LineAmount *struct{ Amount string }
						}
					}
				}
			}
			r := query(t, fixture.MultiLogin, `{ salesOrders(first: 100) { nodes { customer { id role creditLimit { amount } } lines { unitPrice { amount } lineAmount { amount } } } } }`, nil, &data)
			if len(r.Errors) > 0 {
				t.Fatalf("hidden prices must not be errors: %+v", r.Errors)
			}
			priced := map[string]int{}
			unpriced := map[string]int{}
			for _, o := range data.SalesOrders.Nodes {
				for _, l := range o.Lines {
					if l.UnitPrice != nil && l.LineAmount != nil {
						priced[o.Customer.Role]++
					} else if l.UnitPrice == nil && l.LineAmount == nil {
						unpriced[o.Customer.Role]++
					}
				}
				if (o.Customer.Role == "ORDERS") != (o.Customer.CreditLimit == nil) {
					t.Errorf("customer with role %s: credit limit %v", o.Customer.Role, o.Customer.CreditLimit)
				}
			}
			if priced["ORDERS"] != 0 || unpriced["ORDERS"] == 0 || priced["ORDERS_BILLING"] == 0 || unpriced["ORDERS_BILLING"] != 0 {
				t.Errorf("priced lines %v, unpriced lines %v: want prices for ORDERS_BILLING only", priced, unpriced)
			}
		})
		t.Run("products show prices to roles with prices", func(t *testing.T) {
			const q = `{ products(first: 5) { nodes { standardPrice { amount } } } }`
			for login, want := range map[string]bool{fixture.OwnerLogin: true, fixture.MultiLogin: true, fixture.BasicLogin: false} {
				var data struct {
					Products struct {
						Nodes []struct{ StandardPrice *struct{ Amount string } }
					}
				}
				mustQuery(t, login, q, nil, &data)
				for _, p := range data.Products.Nodes {
					if (p.StandardPrice != nil) != want {
						t.Errorf("%s: standard price %v, want shown=%v", login, p.StandardPrice, want)
					}
				}
			}
		})
		t.Run("basic role: profile and shipments only", func(t *testing.T) {
			var data struct {
				Me struct {
					CustomerAccess []struct {
						Role        string
						DaysBack    *int
						Permissions []string
					}
				}
				SalesOrders struct{ TotalCount int }
				Invoices    struct{ TotalCount int }
				Shipments   struct {
					TotalCount int
					Nodes      []struct{ DocumentDate string }
				}
			}
			mustQuery(t, fixture.BasicLogin, `{ me { customerAccess { role daysBack permissions } }
			  salesOrders { totalCount } invoices { totalCount } shipments(first: 100) { totalCount nodes { documentDate } } }`, nil, &data)
			if a := data.Me.CustomerAccess; len(a) != 1 || a[0].Role != "BASIC" || a[0].DaysBack == nil || *a[0].DaysBack != 30 ||
				strings.Join(a[0].Permissions, ",") != "VIEW_CUSTOMER,VIEW_SHIPMENTS" {
				t.Errorf("customerAccess = %+v", a)
			}
			if data.SalesOrders.TotalCount != 0 || data.Invoices.TotalCount != 0 || data.Shipments.TotalCount == 0 {
				t.Errorf("orders %d, invoices %d, shipments %d", data.SalesOrders.TotalCount, data.Invoices.TotalCount, data.Shipments.TotalCount)
			}
			for _, s := range data.Shipments.Nodes {
				if s.DocumentDate < cutoff(30) {
					t.Errorf("shipment dated %s is older than 30 days", s.DocumentDate)
				}
			}
		})
		t.Run("no access: empty lists, identity still known", func(t *testing.T) {
			var data struct {
				Me struct {
					Login          string
					CustomerAccess []any
				}
				Customers, SalesOrders, Invoices, Shipments, Products struct{ TotalCount int }
				Currencies                                            []any
			}
			mustQuery(t, fixture.NoAccessLogin, `{ me { login customerAccess { role } } customers { totalCount } salesOrders { totalCount }
			  invoices { totalCount } shipments { totalCount } products { totalCount } currencies { code } }`, nil, &data)
			if data.Me.Login != fixture.NoAccessLogin || len(data.Me.CustomerAccess) != 0 || data.Customers.TotalCount+data.SalesOrders.TotalCount+
				data.Invoices.TotalCount+data.Shipments.TotalCount+data.Products.TotalCount+len(data.Currencies) != 0 {
				t.Errorf("dimitar sees %+v", data)
			}
		})
		t.Run("internal users are refused", func(t *testing.T) {
			for _, login := range []string{fixture.InternalLogin, fixture.AdminLogin} {
				r := query(t, login, `{ salesOrders { totalCount } }`, nil, nil)
				if r.code() != "FORBIDDEN" || !strings.Contains(r.Errors[0].Message, "internal ERP.net users") {
					t.Errorf("%s: %+v", login, r.Errors)
				}
			}
		})
		// Both internal users, the administrator too, get the same: `me` says who
		// they are (from their own token, no ERP.net data), so a frontend can tell
		// them why they are refused; whatever reads ERP.net, me.customerAccess
		// included, is FORBIDDEN.
		t.Run("internal users: me from the token, ERP.net data refused", func(t *testing.T) {
			for _, login := range []string{fixture.InternalLogin, fixture.AdminLogin} {
				var data struct {
					Me struct{ Login, UserType string }
				}
				mustQuery(t, login, `{ me { login userType } }`, nil, &data)
				if data.Me.Login != login || data.Me.UserType != "INTERNAL_USER" {
					t.Errorf("%s: me = %+v", login, data.Me)
				}
				r := query(t, login, `{ me { login customerAccess { role } } }`, nil, nil)
				if r.code() != "FORBIDDEN" || len(r.Errors) != 1 || fmt.Sprint(r.Errors[0].Path) != "[me customerAccess]" {
					t.Errorf("%s: me.customerAccess: %+v", login, r.Errors)
				}
			}
		})
	})
}

// TestCursors_HandCrafted sends cursors that erpgraph did not issue: another user's order ID as a keyset
// position, offsets, and cursors that try to carry query text. They page within the user's own data or are
// refused; they never reach other data.
func TestCursors_HandCrafted(t *testing.T) {
	var others struct {
		SalesOrders struct{ Nodes []struct{ ID string } }
	}
	mustQuery(t, fixture.MultiLogin, `{ salesOrders(first: 5) { nodes { id } } }`, nil, &others)
	want := expect(t, fixture.OwnerLogin).orders
	cur := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	valid := []string{cur("o:0"), cur("o:3"), cur("o:100000")}
	for _, o := range others.SalesOrders.Nodes {
		valid = append(valid, cur("k:"+guid(t, o.ID)))
	}
	for _, after := range valid {
		var data struct {
			SalesOrders struct{ Nodes []struct{ ID string } }
		}
		mustQuery(t, fixture.OwnerLogin, `query($a: String) { salesOrders(first: 100, after: $a) { nodes { id } } }`, map[string]any{"a": after}, &data)
		for _, n := range data.SalesOrders.Nodes {
			if !want[guid(t, n.ID)] {
				t.Errorf("cursor %q: anna sees %s", after, n.ID)
			}
		}
	}
	invalid := []string{
		cur("o:-1"), cur("o:1000001"), cur("o:1 or 1 eq 1"), cur("k:' or '1'='1"), cur("k:" + fixture.CustomerID(2) + "&$filter=Id ne null"),
		cur("$skip=0&$filter=true"), "bzo", "!!!", strings.Repeat("A", 500),
		base64.StdEncoding.EncodeToString([]byte("k:" + fixture.CustomerID(2) + "'")),
	}
	for _, after := range invalid {
		r := query(t, fixture.OwnerLogin, `query($a: String) { salesOrders(after: $a) { nodes { id } } }`, map[string]any{"a": after}, nil)
		if r.code() != "BAD_USER_INPUT" {
			t.Errorf("cursor %q: %+v %s, want BAD_USER_INPUT", after, r.Errors, r.Data)
		}
	}
}

// TestInjection sends hostile text through every string filter. Each answer is either BAD_USER_INPUT or data
// the user may see; never another customer's documents.
func TestInjection(t *testing.T) {
	forEachCache(t, func(t *testing.T) {
		payloads := []string{
			`'`, `''`, `') or ('1'='1`, `' or Customer ne '`, `x' or 1 eq 1 or 'x`, `%27`, `)`, `*`, `\`, `"`,
			`' and Customer eq 'Crm_Sales_Customers(` + fixture.CustomerID(2) + `)`, `Ж'ü€😀`, "\u202e'", "a\u0000b", "a\nb",
			strings.Repeat("'", 100),
		}
		filters := []struct {
			field, arg, set string
		}{
			{"salesOrders", "documentNo: {eq: $s}", "orders"},
			{"salesOrders", "documentNo: {startsWith: $s}", "orders"},
			{"salesOrders", "customerPurchaseOrderNo: {eq: $s}", "orders"},
			{"salesOrders", "customerPurchaseOrderNo: {startsWith: $s}", "orders"},
			{"invoices", "documentNo: {eq: $s}", "invoices"},
			{"invoices", "documentNo: {startsWith: $s}", "invoices"},
			{"shipments", "documentNo: {eq: $s}", "shipments"},
			{"shipments", "documentNo: {startsWith: $s}", "shipments"},
			{"customers", "number: {eq: $s}", "customers"},
			{"customers", "number: {startsWith: $s}", "customers"},
			{"customers", "number: {contains: $s}", "customers"},
			{"products", "partNumber: {eq: $s}", ""},
			{"products", "partNumber: {startsWith: $s}", ""},
			{"products", "partNumber: {contains: $s}", ""},
			{"products", "nameContains: $s", ""},
		}
		// erpgraph's client keeps ERP.net's 600 requests per minute, so the full payload list goes through one filter
		// and the sharpest payloads through every filter.
		sharp := []string{`'`, `') or ('1'='1`, `' or Customer ne '`, `Ж'ü€😀`, "a\u0000b"}
		login := fixture.MultiLogin // two customers with different roles: the user with the most to leak between
		want := expect(t, login)
		sets := map[string]map[string]bool{"orders": want.orders, "invoices": want.invoices, "shipments": want.shipments, "customers": want.customers}
		for i, f := range filters {
			ps := sharp
			if i == 0 {
				ps = payloads
			}
			for _, p := range ps {
				q := fmt.Sprintf(`query($s: String) { list: %s(first: 100, filter: {%s}) { nodes { id } } }`, f.field, f.arg)
				var data struct {
					List struct{ Nodes []struct{ ID string } }
				}
				r := query(t, login, q, map[string]any{"s": p}, &data)
				switch r.code() {
				case "":
				case "BAD_USER_INPUT":
					continue
				default:
					t.Errorf("%s %q: %+v", f.arg, p, r.Errors)
					continue
				}
				if f.set == "" {
					continue
				}
				for _, n := range data.List.Nodes {
					if !sets[f.set][guid(t, n.ID)] {
						t.Errorf("%s(%s) with %q returned %s, which is not theirs", f.field, f.arg, p, n.ID)
					}
				}
			}
		}
		// a real document number of another customer finds nothing
		var boris struct {
			SalesOrders struct{ Nodes []struct{ DocumentNo string } }
		}
		mustQuery(t, fixture.MultiLogin, `{ salesOrders(first: 1) { nodes { documentNo } } }`, nil, &boris)
		var anna struct {
			SalesOrders struct{ TotalCount int }
		}
		mustQuery(t, fixture.OwnerLogin, `query($n: String) { salesOrders(filter: {documentNo: {eq: $n}}) { totalCount } }`,
			map[string]any{"n": boris.SalesOrders.Nodes[0].DocumentNo}, &anna)
		if anna.SalesOrders.TotalCount != 0 {
			t.Errorf("anna finds boris's order %s", boris.SalesOrders.Nodes[0].DocumentNo)
		}
		mustQuery(t, fixture.MultiLogin, `query($n: String) { salesOrders(filter: {documentNo: {eq: $n}}) { totalCount } }`,
			map[string]any{"n": boris.SalesOrders.Nodes[0].DocumentNo}, &anna)
		if anna.SalesOrders.TotalCount != 1 {
			t.Errorf("boris finds his own order %s %d times, want 1", boris.SalesOrders.Nodes[0].DocumentNo, anna.SalesOrders.TotalCount)
		}
	})
}

// TestDashboard_UpstreamRequests runs the portal start page query over HTTP and counts what reached erpsim: two
// reads (the orders with customers, parties, lines and products nested; the invoice lines with their invoices).
func TestDashboard_UpstreamRequests(t *testing.T) {
	// read planning, counted without the cache (cache_test.go counts what the cache saves)
	withCache(t, false, func() {
		const dashboard = `{ salesOrders(first: 20) { totalCount nodes { id documentNo documentDate state
		  customer { number party { name } } lines { lineNo quantity { value unit } unitPrice { amount currency } product { partNumber name } }
		  invoices { documentNo documentDate } } } }`
		for _, login := range []string{fixture.OwnerLogin, fixture.MultiLogin} {
			mustQuery(t, login, `{ me { customerAccess { role } } }`, nil, nil) // the access lookup is cached per user
			sim.ResetRequests()
			var data struct {
				SalesOrders struct {
					Nodes []struct{ Lines []any }
				}
			}
			mustQuery(t, login, dashboard, nil, &data)
			reads := 0
			var paths []string
			for _, r := range sim.Requests() {
				if !strings.HasPrefix(r.Path, "/api/domain/odata/") || r.Method != http.MethodGet && r.BatchParts == 0 {
					continue
				}
				paths = append(paths, strings.TrimPrefix(r.Path, "/api/domain/odata/"))
				if r.BatchParts > 0 {
					reads += r.BatchParts
				} else {
					reads++
				}
			}
			if len(data.SalesOrders.Nodes) != 20 {
				t.Fatalf("%s: %d orders", login, len(data.SalesOrders.Nodes))
			}
			if reads != 2 || len(paths) > 2 {
				t.Errorf("%s: %d reads in %d HTTP requests (%v), want 2", login, reads, len(paths), paths)
			}
			t.Logf("%s: %d reads in %d HTTP requests", login, reads, len(paths))
		}
		// the schema advertises pages of 100, and the cost limit follows the upstream: the dashboard at first: 100 fits
		// the default limit; it is one read of orders and one of invoice lines per 20 orders (the URL bound of an in
		// list of references)
		sim.ResetRequests()
		var big struct {
			SalesOrders struct{ Nodes []struct{ Lines []any } }
		}
		mustQuery(t, fixture.OwnerLogin, strings.Replace(dashboard, "first: 20", "first: 100", 1), nil, &big)
		orders := len(big.SalesOrders.Nodes)
		if n, want := sim.Stats().Reads, 1+(orders+19)/20; orders <= 20 || n != want {
			t.Errorf("dashboard at first: 100: %d orders in %d reads, want more than 20 in %d", orders, n, want)
		}
	})
}
