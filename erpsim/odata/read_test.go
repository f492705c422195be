package odata_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

const (
	jsonCT = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)

func customerRef(n int) string { return "Crm_Sales_Customers(" + fixture.CustomerID(n) + ")" }
func companyID(n int) string   { return fixture.ID("General_Contacts_Parties", 1000+n) }

func TestGet_HeadersAndContext(t *testing.T) {
	srv := newServer(t, readStore())
	r := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1")
	if got := r.header.Get("OData-Version"); got != "4.0" {
		t.Errorf("OData-Version = %q", got)
	}
	if got := r.header.Get("Content-Type"); got != jsonCT {
		t.Errorf("Content-Type = %q", got)
	}
	if got, want := r.obj["@odata.context"], srv.root+"$metadata#Crm_Sales_SalesOrders"; got != want {
		t.Errorf("@odata.context = %v, want %v", got, want)
	}
	e := srv.get(t, "Nope")
	if e.status != http.StatusNotFound || e.header.Get("OData-Version") != "4.0" || e.header.Get("Content-Type") != jsonCT {
		t.Errorf("unknown set: %d %v", e.status, e.header)
	}
	e.errorCode(t)
}

func TestGet_SelectDefaults(t *testing.T) {
	srv := newServer(t, readStore())
	row := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1").rows(t)[0]
	for _, absent := range []string{"Id", "ObjectVersion", "Lines"} {
		if _, ok := row[absent]; ok {
			t.Errorf("default $select includes %s", absent)
		}
	}
	for _, present := range []string{"@odata.id", "DocumentNo", "DocumentDate", "State", "Void", "Customer", "ToParty", "CreationTime", "DisplayText"} {
		if _, ok := row[present]; !ok {
			t.Errorf("default $select lacks %s", present)
		}
	}
	if !strings.HasPrefix(refID(t, row["Customer"]), "Crm_Sales_Customers(") {
		t.Errorf("Customer = %v", row["Customer"])
	}
	if !strings.HasPrefix(refID(t, row["ToParty"]), "General_Contacts_Companies(") {
		t.Errorf("ToParty = %v", row["ToParty"])
	}

	row = srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1", "$select", "Id,DocumentNo").rows(t)[0]
	if len(row) != 3 || row["Id"] == nil || row["DocumentNo"] == nil {
		t.Errorf("$select=Id,DocumentNo gave %v", row)
	}
	if want := "Crm_Sales_SalesOrders(" + row["Id"].(string) + ")"; row["@odata.id"] != want {
		t.Errorf("@odata.id = %v, want %v", row["@odata.id"], want)
	}
	row = srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1", "$select", "default,ObjectVersion").rows(t)[0]
	if row["ObjectVersion"] == nil || row["DocumentDate"] == nil || row["Id"] != nil {
		t.Errorf("$select=default,ObjectVersion gave %v", row)
	}
	if e := srv.get(t, "Crm_Sales_SalesOrders", "$select", "Nope"); e.status != 500 {
		t.Errorf("unknown $select property: %d", e.status)
	}
	row = srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1", "$select", "DocumentNotes,CustomerPurchaseOrderNo,ShipToCustomer", "options", "skipnulls").rows(t)[0]
	for k, v := range row {
		if v == nil {
			t.Errorf("options=skipnulls kept null %s", k)
		}
	}
}

func TestGet_MultiLanguageAndAmounts(t *testing.T) {
	srv := newServer(t, readStore())
	row := srv.mustGet(t, "General_Products_Products", "$top", "1").rows(t)[0]
	name := row["Name"].(map[string]any)
	if name["EN"] == nil || name["BG"] == nil {
		t.Errorf("Name = %v, want EN and BG", name)
	}
	price := row["StandardPricePerLot"].(map[string]any)
	if num(t, price["Value"]) <= 0 || price["Currency"] != "BGN" {
		t.Errorf("StandardPricePerLot = %v", price)
	}
	line := srv.mustGet(t, "Crm_Sales_SalesOrderLines", "$top", "1").rows(t)[0]
	if q := line["Quantity"].(map[string]any); q["Unit"] == "" || num(t, q["Value"]) <= 0 {
		t.Errorf("Quantity = %v", q)
	}
}

func TestGet_Filter(t *testing.T) {
	srv := newServer(t, readStore())
	cust1 := customerRef(1)
	total := srv.count(t, "Crm_Sales_SalesOrders", "")
	if total != 1000 {
		t.Fatalf("orders = %d, want 1000", total)
	}
	tests := []struct {
		name, set, filter string
		check             func(t *testing.T, row map[string]any) bool
	}{
		{"ref eq", "Crm_Sales_SalesOrders", "Customer eq '" + cust1 + "'",
			func(t *testing.T, r map[string]any) bool { return refID(t, r["Customer"]) == cust1 }},
		{"enum eq", "Crm_Sales_SalesOrders", "State eq 'Released'",
			func(t *testing.T, r map[string]any) bool { return r["State"] == "Released" }},
		{"enum ge (ordered)", "Crm_Sales_SalesOrders", "State ge 'Completed'",
			func(t *testing.T, r map[string]any) bool { return r["State"] == "Completed" || r["State"] == "Closed" }},
		{"date range and ref", "Crm_Sales_SalesOrders", "Customer eq '" + cust1 + "' and DocumentDate ge 2026-10-30 and DocumentDate le 2026-11-29T23:59:59Z",
			func(t *testing.T, r map[string]any) bool {
				d := mustTime(t, r["DocumentDate"])
				return refID(t, r["Customer"]) == cust1 && !d.Before(testNow.AddDate(0, 0, -30).Truncate(24*60*60*1e9))
			}},
		{"in", "Crm_Sales_SalesOrders", "State in ('New','Planned')",
			func(t *testing.T, r map[string]any) bool { return r["State"] == "New" || r["State"] == "Planned" }},
		{"parentheses", "Crm_Sales_SalesOrders", "(State eq 'New') and (Void eq false)",
			func(t *testing.T, r map[string]any) bool { return r["State"] == "New" && r["Void"] == false }},
		{"bool", "Crm_Sales_SalesOrders", "Void eq true",
			func(t *testing.T, r map[string]any) bool { return r["Void"] == true }},
		{"null", "Crm_Sales_SalesOrders", "DocumentNotes eq null",
			func(t *testing.T, r map[string]any) bool { return r["DocumentNotes"] == nil }},
		{"startswith", "General_Products_Products", "startswith(PartNumber,'cof')",
			func(t *testing.T, r map[string]any) bool { return strings.HasPrefix(r["PartNumber"].(string), "COF") }},
		{"endswith", "General_Products_Products", "endswith(PartNumber,'-003')",
			func(t *testing.T, r map[string]any) bool { return strings.HasSuffix(r["PartNumber"].(string), "-003") }},
		{"contains ML in BG", "General_Products_Products", "contains(Name,'кафе')",
			func(t *testing.T, r map[string]any) bool {
				n := r["Name"].(map[string]any)
				return strings.Contains(strings.ToLower(n["BG"].(string)), "кафе")
			}},
		{"amount value", "General_Products_Products", "StandardPricePerLotValue ge 50 and StandardPricePerLotValue le 60",
			func(t *testing.T, r map[string]any) bool {
				v := num(t, r["StandardPricePerLot"].(map[string]any)["Value"])
				return v >= 50 && v <= 60
			}},
		{"quantity value", "Crm_Sales_SalesOrderLines", "QuantityValue ge 49",
			func(t *testing.T, r map[string]any) bool {
				return num(t, r["Quantity"].(map[string]any)["Value"]) >= 49
			}},
		{"party ref by base set", "Logistics_Shipment_Shipments", "ToParty eq 'General_Contacts_Parties(" + companyID(4) + ")'",
			func(t *testing.T, r map[string]any) bool {
				return refID(t, r["ToParty"]) == "General_Contacts_Companies("+companyID(4)+")"
			}},
		{"party ref by derived set", "Crm_Sales_SalesOrders", "ToParty eq 'General_Contacts_Companies(" + companyID(2) + ")'",
			func(t *testing.T, r map[string]any) bool {
				return refID(t, r["ToParty"]) == "General_Contacts_Companies("+companyID(2)+")"
			}},
		{"ref path", "Crm_Sales_SalesOrderLines", "SalesOrder/State eq 'New' and SalesOrder/Customer eq '" + cust1 + "'",
			func(t *testing.T, r map[string]any) bool { return r["SalesOrder"] != nil }},
		{"Id in", "Crm_Sales_Customers", "Id in (" + fixture.CustomerID(1) + "," + fixture.CustomerID(3) + ")",
			func(t *testing.T, r map[string]any) bool { return r["Number"] == "C00001" || r["Number"] == "C00003" }},
		{"equalnull", "Crm_Sales_SalesOrders", "equalnull(ShipToCustomer,'" + cust1 + "')",
			func(t *testing.T, r map[string]any) bool {
				return r["ShipToCustomer"] == nil || refID(t, r["ShipToCustomer"]) == cust1
			}},
		{"access by user", "Crm_Sales_CustomerExternalAccess", "User eq 'Systems_Security_Users(" + mustUser(t, fixture.MultiLogin).ID() + ")'",
			func(t *testing.T, r map[string]any) bool {
				return r["Role"] == "Orders" || r["Role"] == "OrdersBilling"
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := srv.mustGet(t, tt.set, "$filter", tt.filter).rows(t)
			if len(rows) == 0 {
				t.Fatalf("no rows match %q; the demo data should have some", tt.filter)
			}
			for _, r := range rows {
				if !tt.check(t, r) {
					t.Fatalf("row does not satisfy %q: %v", tt.filter, r)
				}
			}
			if n := srv.count(t, tt.set, tt.filter); n != len(rows) {
				t.Errorf("$count = %d, rows = %d", n, len(rows))
			}
			if tt.set == "Crm_Sales_SalesOrders" && len(rows) >= total {
				t.Errorf("filter %q selects everything", tt.filter)
			}
		})
	}
}

func mustUser(t *testing.T, login string) fixture.User {
	t.Helper()
	u, ok := fixture.UserByLogin(login)
	if !ok {
		t.Fatalf("no fixture user %s", login)
	}
	return u
}

func TestGet_FilterErrors(t *testing.T) {
	srv := newServer(t, readStore())
	tests := []struct {
		filter string
		want   string // in the message
	}{
		{"State eq 'New' or State eq 'Planned'", "'or'"},
		{"State ne 'New'", "'ne'"},
		{"DocumentDate gt 2026-01-01", "'gt'"},
		{"DocumentDate lt 2026-01-01", "'lt'"},
		{"not (Void eq true)", "'not'"},
		{"Nope eq 1", "Nope"},
		{"DocumentNo eq 5", "string"},
		{"DocumentNo eq 'unterminated", "Unterminated"},
		{"State eq 'Shipped'", "DocumentState"},
		{"Customer eq 'Crm_Sales_Customers(not-a-guid)'", "key"},
		{"Customer eq 'General_Products_Products(" + fixture.CustomerID(1) + ")'", "refers to"},
		{"DocumentCurrency ge 'General_Currencies_Currencies(" + fixture.CustomerID(1) + ")'", "eq"},
		{"length(DocumentNo) eq 7", "length"},
		{"(State eq 'New'", "expected"},
		{"State eq 'New' State", "and"},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			r := srv.get(t, "Crm_Sales_SalesOrders", "$filter", tt.filter)
			if r.status != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500: %s", r.status, r.raw)
			}
			r.errorCode(t)
			if msg := r.obj["error"].(map[string]any)["message"].(string); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not mention %q", msg, tt.want)
			}
		})
	}
	for _, tt := range []struct{ set, filter string }{
		{"General_Products_Products", "Name eq 'Cocoa'"},
		{"General_Products_Products", "StandardPricePerLot eq 5"},
	} {
		if r := srv.get(t, tt.set, "$filter", tt.filter); r.status != 500 {
			t.Errorf("%s: status %d, want 500", tt.filter, r.status)
		}
	}
	for _, opt := range [][]string{{"$top", "-1"}, {"$skip", "x"}, {"$skiptoken", "nope"}, {"$count", "maybe"}, {"$orderby", "Nope"}, {"$expand", "DocumentNo"}, {"$bogus", "1"}, {"$orderby", "DocumentNo sideways"}} {
		if r := srv.get(t, "Crm_Sales_SalesOrders", opt...); r.status != 500 {
			t.Errorf("%v: status %d, want 500", opt, r.status)
		} else {
			r.errorCode(t)
		}
	}
}

// TestGet_LiteralEscaping: quotes inside literals are data, never syntax.
func TestGet_LiteralEscaping(t *testing.T) {
	srv := newServer(t, freshStore())
	created := srv.do(t, http.MethodPost, "Crm_Sales_SalesOrders", map[string]any{
		"Customer":                map[string]string{"@odata.id": customerRef(1)},
		"CustomerPurchaseOrderNo": "PO O'Brien's",
		"Lines":                   []any{map[string]any{"Product": map[string]string{"@odata.id": "General_Products_Products(" + fixture.ID("General_Products_Products", 1) + ")"}, "Quantity": map[string]any{"Value": 1}}},
	})
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	rows := srv.mustGet(t, "Crm_Sales_SalesOrders", "$filter", "CustomerPurchaseOrderNo eq 'PO O''Brien''s'").rows(t)
	if len(rows) != 1 || rows[0]["CustomerPurchaseOrderNo"] != "PO O'Brien's" {
		t.Fatalf("escaped literal matched %v", rows)
	}
	for _, injection := range []string{"x' or 1 eq 1 or 'a", "'') or (State eq 'New"} {
		f := "CustomerPurchaseOrderNo eq '" + strings.ReplaceAll(injection, "'", "''") + "'"
		if r := srv.mustGet(t, "Crm_Sales_SalesOrders", "$filter", f).rows(t); len(r) != 0 {
			t.Errorf("%q matched %d rows", injection, len(r))
		}
	}
}

func TestGet_ExpandNested(t *testing.T) {
	srv := newServer(t, readStore())
	rows := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "5",
		"$select", "DocumentNo",
		"$expand", "Lines($select=LineNo,Quantity;$expand=Product($select=PartNumber,Name;$expand=ProductGroup($select=Code));$filter=QuantityValue ge 1;$top=3),Customer($select=Number;$expand=Party($select=Name))").rows(t)
	for _, r := range rows {
		lines := r["Lines"].([]any)
		if len(lines) == 0 || len(lines) > 3 {
			t.Fatalf("Lines = %d items", len(lines))
		}
		prev := 0.0
		for _, l := range lines {
			lm := l.(map[string]any)
			if n := num(t, lm["LineNo"]); n <= prev {
				t.Errorf("lines not in LineNo order: %v", lines)
			} else {
				prev = n
			}
			p := lm["Product"].(map[string]any)
			if p["PartNumber"] == nil || p["@odata.id"] == nil || p["ProductGroup"].(map[string]any)["Code"] == nil {
				t.Errorf("expanded product = %v", p)
			}
			if _, ok := lm["UnitPrice"]; ok {
				t.Errorf("nested $select ignored: %v", lm)
			}
		}
		party := r["Customer"].(map[string]any)["Party"].(map[string]any)
		if party["Name"].(map[string]any)["EN"] == nil {
			t.Errorf("expanded party = %v", party)
		}
		if _, ok := r["DocumentDate"]; ok {
			t.Errorf("$select=DocumentNo still has DocumentDate")
		}
	}
	// $top inside $expand limits lines per order; an order with more lines proves it.
	all := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "20", "$expand", "Lines($select=LineNo)").rows(t)
	most := 0
	for _, r := range all {
		most = max(most, len(r["Lines"].([]any)))
	}
	if most <= 3 {
		t.Errorf("no order with more than 3 lines among 20; the $top=3 check proves nothing")
	}
}

func TestGet_OneAndCount(t *testing.T) {
	srv := newServer(t, readStore())
	id := fixture.CustomerID(2)
	r := srv.mustGet(t, "Crm_Sales_Customers("+id+")", "$select", "Id,Number", "$expand", "Party")
	if r.obj["Id"] != id || r.obj["Number"] != "C00002" || r.obj["@odata.context"] != srv.root+"$metadata#Crm_Sales_Customers/$entity" {
		t.Errorf("single entity = %s", r.raw)
	}
	if party := r.obj["Party"].(map[string]any); party["PartyName"].(map[string]any)["EN"] != "Beta Foods" {
		t.Errorf("Party = %v", party)
	}
	for _, p := range []string{"Crm_Sales_Customers(" + fixture.ID("nope", 1) + ")", "Crm_Sales_Customers(xyz)", "Crm_Customers", "Crm_Sales_Customers/Nope"} {
		if r := srv.get(t, p); r.status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, r.status)
		} else {
			r.errorCode(t)
		}
	}
	if msg := srv.get(t, "Crm_Customers").obj["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "Crm_Sales_Customers") {
		t.Errorf("renamed set message %q lacks the new name", msg)
	}
	withCount := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "2", "$count", "true", "$filter", "State eq 'Closed'")
	if got, want := int(num(t, withCount.obj["@odata.count"])), srv.count(t, "Crm_Sales_SalesOrders", "State eq 'Closed'"); got != want || got <= 2 {
		t.Errorf("@odata.count = %d, $count = %d", got, want)
	}
}

func TestGet_OrderBy(t *testing.T) {
	srv := newServer(t, readStore())
	rows := srv.mustGet(t, "Crm_Sales_SalesOrders", "$orderby", "DocumentDate desc,DocumentNo", "$select", "DocumentDate,DocumentNo", "$top", "200").rows(t)
	for i := 1; i < len(rows); i++ {
		a, b := mustTime(t, rows[i-1]["DocumentDate"]), mustTime(t, rows[i]["DocumentDate"])
		if a.Before(b) || a.Equal(b) && rows[i-1]["DocumentNo"].(string) > rows[i]["DocumentNo"].(string) {
			t.Fatalf("rows %d,%d out of order: %v %v", i-1, i, rows[i-1], rows[i])
		}
	}
}

// collect follows @odata.nextLink to the end and returns the Ids in order.
func collect(t *testing.T, srv *server, first response) ([]string, int) {
	t.Helper()
	var ids []string
	pages := 0
	for r := first; ; {
		pages++
		for _, row := range r.rows(t) {
			ids = append(ids, row["Id"].(string))
		}
		next, ok := r.obj["@odata.nextLink"].(string)
		if !ok {
			return ids, pages
		}
		if !strings.HasPrefix(next, srv.root) {
			t.Fatalf("nextLink %q is not absolute under %s", next, srv.root)
		}
		r = srv.do(t, http.MethodGet, next, nil)
		if r.status != 200 {
			t.Fatalf("nextLink %s: %d %s", next, r.status, r.raw)
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
	}
}

func TestGet_Paging(t *testing.T) {
	srv := newServer(t, readStore())
	filter := "State ge 'Released' and DocumentDate ge 2026-01-01"
	all := srv.mustGet(t, "Crm_Sales_SalesOrders", "$filter", filter, "$select", "Id")
	if _, ok := all.obj["@odata.nextLink"]; ok {
		t.Error("nextLink without $top")
	}
	want := map[string]bool{}
	for _, r := range all.rows(t) {
		want[r["Id"].(string)] = true
	}
	tests := []struct {
		name string
		opts []string
		keys string // the paging parameter the links must use
	}{
		{"keyset", []string{"$filter", filter, "$select", "Id", "$top", "37"}, "$skiptoken="},
		{"keyset after skip", []string{"$filter", filter, "$select", "Id", "$top", "50", "$skip", "5"}, "$skiptoken="},
		{"orderby uses skip", []string{"$filter", filter, "$select", "Id,DocumentNo", "$top", "41", "$orderby", "DocumentNo desc"}, "$skip="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := srv.mustGet(t, "Crm_Sales_SalesOrders", tt.opts...)
			if next, _ := first.obj["@odata.nextLink"].(string); !strings.Contains(next, tt.keys) {
				t.Fatalf("nextLink %q lacks %s", next, tt.keys)
			}
			ids, pages := collect(t, srv, first)
			seen := map[string]bool{}
			for _, id := range ids {
				if seen[id] {
					t.Fatalf("duplicate %s", id)
				}
				seen[id] = true
				if !want[id] {
					t.Fatalf("%s does not match the filter", id)
				}
			}
			skipped := 0
			if tt.name == "keyset after skip" {
				skipped = 5
			}
			if len(ids) != len(want)-skipped {
				t.Fatalf("paged %d rows over %d pages, want %d", len(ids), pages, len(want)-skipped)
			}
			if pages < 3 {
				t.Errorf("only %d pages", pages)
			}
		})
	}
	// The last page ends exactly: no link when the rows end at a page boundary.
	n := len(want)
	last := srv.mustGet(t, "Crm_Sales_SalesOrders", "$filter", filter, "$top", fmt.Sprint(n))
	if _, ok := last.obj["@odata.nextLink"]; ok {
		t.Error("nextLink although $top covers every row")
	}
	// Views page with $skip even without $orderby.
	view := srv.mustGet(t, "Logistics_Inventory_CurrentBalances", "$top", "10")
	if next, _ := view.obj["@odata.nextLink"].(string); !strings.Contains(next, "$skip=10") {
		t.Errorf("view nextLink = %q", next)
	}
}

func TestDemoData_Shape(t *testing.T) {
	srv := newServer(t, readStore())
	for set, atLeast := range map[string]int{
		"Crm_Sales_Customers": 20, "General_Products_Products": 200, "Crm_Sales_SalesOrders": 1000,
		"Crm_Invoicing_Invoices": 300, "Logistics_Shipment_Shipments": 300, "General_Contacts_Companies": 21,
		"General_Contacts_Persons": 5, "Systems_Security_Users": len(fixture.Users()), "Crm_Sales_CustomerExternalAccess": len(fixture.Accesses()),
		"General_Products_ProductGroups": 5, "General_Products_MeasurementUnits": 3, "General_Currencies_Currencies": 2,
		"General_EnterpriseCompanies": 1, "Systems_Documents_DocumentTypes": 3, "Logistics_Inventory_CurrentBalances": 200,
		"Logistics_Inventory_Stores": 2, "General_Contacts_PartyContactMechanisms": 20, "General_Contacts_ContactMechanisms": 20,
		"Applications_Service_ServiceAgreements": 4, "Crm_Invoicing_InvoiceLines": 300, "Logistics_Shipment_ShipmentLines": 300,
	} {
		if n := srv.count(t, set, ""); n < atLeast {
			t.Errorf("%s has %d rows, want >= %d", set, n, atLeast)
		}
	}
	if parties, persons, companies := srv.count(t, "General_Contacts_Parties", ""), srv.count(t, "General_Contacts_Persons", ""), srv.count(t, "General_Contacts_Companies", ""); parties != persons+companies {
		t.Errorf("parties %d != persons %d + companies %d", parties, persons, companies)
	}
	for n, name := range []string{"Alpha Trading", "Beta Foods", "Gamma Build", "Delta Retail"} {
		c := srv.mustGet(t, "Crm_Sales_Customers("+fixture.CustomerID(n+1)+")", "$expand", "Party")
		if got := refID(t, c.obj["Party"]); got != "General_Contacts_Companies("+companyID(n+1)+")" {
			t.Errorf("customer %d party = %s", n+1, got)
		}
		if got := c.obj["Party"].(map[string]any)["PartyName"].(map[string]any)["EN"]; got != name {
			t.Errorf("customer %d is %v, want %s", n+1, got, name)
		}
	}
	for _, u := range fixture.Users() {
		r := srv.mustGet(t, "Systems_Security_Users("+u.ID()+")")
		if r.obj["Login"] != u.Login || r.obj["UserType"] != u.UserType {
			t.Errorf("user %s = %s", u.Login, r.raw)
		}
		if u.PersonN > 0 && refID(t, r.obj["Person"]) != "General_Contacts_Persons("+fixture.ID("General_Contacts_Parties", u.PersonN)+")" {
			t.Errorf("user %s person = %v", u.Login, r.obj["Person"])
		}
	}
	for _, a := range fixture.Accesses() {
		r := srv.mustGet(t, "Crm_Sales_CustomerExternalAccess("+fixture.ID("Crm_Sales_CustomerExternalAccess", a.N)+")")
		if r.obj["Role"] != a.Role || refID(t, r.obj["Customer"]) != customerRef(a.CustomerN) {
			t.Errorf("access %d = %s", a.N, r.raw)
		}
	}
	// Every order has 1..10 lines, numbered 10, 20, ...
	for _, o := range srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "100", "$expand", "Lines($select=LineNo)").rows(t) {
		lines := o["Lines"].([]any)
		if len(lines) < 1 || len(lines) > 10 {
			t.Fatalf("order with %d lines", len(lines))
		}
		for i, l := range lines {
			if num(t, l.(map[string]any)["LineNo"]) != float64(10*(i+1)) {
				t.Fatalf("line numbers %v", lines)
			}
		}
	}
}

// TestDemoData_DaysBackWindows: every fixture customer has documents inside
// and outside 30 days, so days-back rules select real subsets.
func TestDemoData_DaysBackWindows(t *testing.T) {
	srv := newServer(t, readStore())
	since := testNow.AddDate(0, 0, -30).Format("2006-01-02")
	for n := 1; n <= 4; n++ {
		for _, doc := range []struct{ set, by string }{
			{"Crm_Sales_SalesOrders", "Customer eq '" + customerRef(n) + "'"},
			{"Crm_Invoicing_Invoices", "Customer eq '" + customerRef(n) + "'"},
			{"Logistics_Shipment_Shipments", "ToParty eq 'General_Contacts_Companies(" + companyID(n) + ")'"},
		} {
			all := srv.count(t, doc.set, doc.by)
			recent := srv.count(t, doc.set, doc.by+" and DocumentDate ge "+since)
			if recent == 0 || recent == all {
				t.Errorf("customer %d %s: %d of %d inside 30 days", n, doc.set, recent, all)
			}
		}
	}
	states := map[string]bool{}
	for _, r := range srv.mustGet(t, "Crm_Sales_SalesOrders", "$select", "State,DocumentCurrency").rows(t) {
		states[r["State"].(string)] = true
	}
	for _, s := range []string{"New", "Adjustment", "Planned", "FirmPlanned", "Released", "Completed", "Closed"} {
		if !states[s] {
			t.Errorf("no order in state %s", s)
		}
	}
	if srv.count(t, "Crm_Sales_SalesOrders", "Void eq true") == 0 {
		t.Error("no void orders")
	}
	eur := "General_Currencies_Currencies(" + fixture.ID("General_Currencies_Currencies", 2) + ")"
	if srv.count(t, "Crm_Sales_SalesOrders", "DocumentCurrency eq '"+eur+"'") == 0 {
		t.Error("no EUR orders")
	}
}

func TestMetadataAndFunctions(t *testing.T) {
	srv := newServer(t, readStore())
	r := srv.do(t, http.MethodGet, "$metadata", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/xml") {
		t.Fatalf("$metadata: %d %s", r.status, r.header.Get("Content-Type"))
	}
	checkEDMX(t, r.raw)
	v := srv.do(t, http.MethodGet, "GetVersion", nil)
	if v.status != 200 || v.obj["version"] == "" {
		t.Errorf("GetVersion: %d %s", v.status, v.raw)
	}
	ren := srv.do(t, http.MethodGet, "GetRenamedEntityTypes", nil)
	if ren.status != 200 || len(ren.rows(t)) == 0 {
		t.Errorf("GetRenamedEntityTypes: %d %s", ren.status, ren.raw)
	}
	doc := srv.do(t, http.MethodGet, "", nil)
	if doc.status != 200 || len(doc.rows(t)) < 20 {
		t.Errorf("service document: %d %s", doc.status, doc.raw)
	}
}

func TestGet_BaseSetAndTopZero(t *testing.T) {
	srv := newServer(t, readStore())
	// Polymorphic references: ToParty points at a company; expanding it
	// through the base type still reaches the company's own properties.
	o := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1", "$select", "ToParty", "$expand", "ToParty($select=PartyCode,Name)").rows(t)[0]
	party := o["ToParty"].(map[string]any)
	if party["PartyCode"] == nil || party["Name"] == nil || !strings.HasPrefix(party["@odata.id"].(string), "General_Contacts_Companies(") {
		t.Errorf("expanded ToParty = %v", party)
	}
	// Rows of the base set keep their concrete @odata.id and show the base properties.
	for _, r := range srv.mustGet(t, "General_Contacts_Parties", "$filter", "PartyType eq 'Person'").rows(t) {
		if !strings.HasPrefix(r["@odata.id"].(string), "General_Contacts_Persons(") || r["FirstName"] != nil {
			t.Errorf("party row = %v", r)
		}
	}
	z := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "0", "$count", "true")
	if len(z.rows(t)) != 0 || num(t, z.obj["@odata.count"]) != 1000 {
		t.Errorf("$top=0: %s", z.raw)
	}
	if _, ok := z.obj["@odata.nextLink"]; ok {
		t.Error("$top=0 has a nextLink")
	}
}
