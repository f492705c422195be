package access

import (
	"errors"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

func TestParseRole(t *testing.T) {
	tests := []struct {
		in   string
		want Role
	}{
		{"Basic", RoleBasic}, {"L10", RoleBasic}, {"l20", RoleOrders}, {"Orders", RoleOrders},
		{"OrdersWithPrices", RoleOrdersWithPrices}, {"Orders with prices", RoleOrdersWithPrices}, {"L30", RoleOrdersWithPrices},
		{"OrdersBilling", RoleOrdersBilling}, {"Billing", RoleOrdersBilling}, {"L40", RoleOrdersBilling},
		{"Admin", RoleAdmin}, {"L80", RoleAdmin}, {"owner", RoleOwner}, {"L90", RoleOwner},
	}
	for _, tt := range tests {
		if got, err := ParseRole(tt.in); err != nil || got != tt.want {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "L50", "Superuser", "L", "10"} {
		if _, err := ParseRole(bad); err == nil {
			t.Errorf("ParseRole(%q) accepted", bad)
		}
	}
}

func TestRole_Allows(t *testing.T) {
	tests := []struct {
		role Role
		want []Permission
	}{
		{RoleBasic, []Permission{ViewCustomer, ViewShipments}},
		{RoleOrders, []Permission{ViewCustomer, ViewShipments, ViewSalesOrders}},
		{RoleOrdersWithPrices, []Permission{ViewCustomer, ViewShipments, ViewSalesOrders, ViewPrices}},
		{RoleOrdersBilling, []Permission{ViewCustomer, ViewShipments, ViewSalesOrders, ViewPrices, ViewInvoices}},
		{RoleOwner, []Permission{ViewCustomer, ViewShipments, ViewSalesOrders, ViewPrices, ViewInvoices}},
	}
	for _, tt := range tests {
		got := tt.role.Permissions()
		if len(got) != len(tt.want) {
			t.Errorf("%v: permissions %v, want %v", tt.role, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%v: permissions %v, want %v", tt.role, got, tt.want)
			}
		}
	}
}

const (
	custA   = "0a000000-0000-4000-8000-00000000000a"
	custB   = "0b000000-0000-4000-8000-00000000000b"
	custC   = "0c000000-0000-4000-8000-00000000000c"
	partyA  = "1a000000-0000-4000-8000-00000000000a"
	partyB  = "1b000000-0000-4000-8000-00000000000b"
	partyC  = "1c000000-0000-4000-8000-00000000000c"
	other   = "0f000000-0000-4000-8000-00000000000f"
	otherPt = "1f000000-0000-4000-8000-00000000000f"
)

var today = time.Date(2026, 11, 29, 15, 4, 5, 0, time.UTC)

func days(n int) *int { return &n }

func company(id string) erpclient.Ref { return erpclient.Ref{Set: erpclient.SetCompanies, ID: id} }

func testScope(gs ...Grant) *Scope {
	return &Scope{userID: "u", grants: gs, now: func() time.Time { return today }}
}

func filterText(t *testing.T, s *Scope, set string) string {
	t.Helper()
	f, err := s.ScopeFilter(set)
	if err != nil {
		return "error: " + err.Error()
	}
	if f == nil {
		return ""
	}
	txt, err := erpclient.FilterString(f)
	if err != nil {
		t.Fatalf("%s: %v", set, err)
	}
	return txt
}

func TestScope_Filters(t *testing.T) {
	orders := Grant{CustomerID: custA, CustomerParty: company(partyA), Role: RoleOrders, DaysBack: days(365)}
	billing := Grant{CustomerID: custB, CustomerParty: company(partyB), Role: RoleOrdersBilling, DaysBack: days(365)}
	basic30 := Grant{CustomerID: custC, CustomerParty: company(partyC), Role: RoleBasic, DaysBack: days(30)}
	same := testScope(orders, billing)
	mixed := testScope(orders, billing, basic30)

	tests := []struct {
		name  string
		scope *Scope
		set   string
		want  string
	}{
		{"orders of both customers, one window", same, erpclient.SetSalesOrders,
			"Customer in ('Crm_Sales_Customers(" + custA + ")','Crm_Sales_Customers(" + custB + ")') and DocumentDate ge 2025-11-29"},
		{"invoices only for billing", same, erpclient.SetInvoices,
			"Customer in ('Crm_Sales_Customers(" + custB + ")') and DocumentDate ge 2025-11-29"},
		{"lines through their order", same, erpclient.SetSalesOrderLines,
			"SalesOrder/Customer in ('Crm_Sales_Customers(" + custA + ")','Crm_Sales_Customers(" + custB + ")') and SalesOrder/DocumentDate ge 2025-11-29"},
		{"shipments by party, widest window", mixed, erpclient.SetShipments,
			"ToParty in ('General_Contacts_Companies(" + partyA + ")','General_Contacts_Companies(" + partyB + ")','General_Contacts_Companies(" + partyC + ")') and DocumentDate ge 2025-11-29"},
		{"customers", mixed, erpclient.SetCustomers, "Id in (" + custA + "," + custB + "," + custC + ")"},
		{"parties", mixed, erpclient.SetParties, "Id in (" + partyA + "," + partyB + "," + partyC + ")"},
		{"basic role sees no orders", testScope(basic30), erpclient.SetSalesOrders, "error: access: no access to this data: Crm_Sales_SalesOrders"},
		{"no grants see no customers", testScope(), erpclient.SetCustomers, "error: access: no access to this data: Crm_Sales_Customers"},
		{"reference data for customers' users", same, erpclient.SetProducts, ""},
		{"no reference data without grants", testScope(), erpclient.SetProducts, "error: access: no access to this data: General_Products_Products"},
		{"users are never served", same, erpclient.SetUsers, "error: access: no access to this data: Systems_Security_Users"},
		{"unlimited window adds no date", testScope(Grant{CustomerID: custA, CustomerParty: company(partyA), Role: RoleOwner}), erpclient.SetInvoices,
			"Customer in ('Crm_Sales_Customers(" + custA + ")')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := filterText(t, tt.scope, tt.set); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestScope_SplitByWindow(t *testing.T) {
	long := Grant{CustomerID: custA, CustomerParty: company(partyA), Role: RoleOwner, DaysBack: days(365)}
	short := Grant{CustomerID: custB, CustomerParty: company(partyB), Role: RoleOwner, DaysBack: days(30)}
	s := testScope(long, short)
	if s.Exact(erpclient.SetSalesOrders) {
		t.Fatal("grants with different windows reported exact")
	}
	parts := s.Split(erpclient.SetSalesOrders)
	if len(parts) != 2 {
		t.Fatalf("split into %d scopes, want 2", len(parts))
	}
	want := []string{
		"Customer in ('Crm_Sales_Customers(" + custA + ")') and DocumentDate ge 2025-11-29",
		"Customer in ('Crm_Sales_Customers(" + custB + ")') and DocumentDate ge 2026-10-30",
	}
	for i, p := range parts {
		if !p.Exact(erpclient.SetSalesOrders) {
			t.Errorf("part %d not exact", i)
		}
		if got := filterText(t, p, erpclient.SetSalesOrders); got != want[i] {
			t.Errorf("part %d: got %s, want %s", i, got, want[i])
		}
	}
	// the union filter lets the wider window through; Check removes what the narrower grant does not cover
	old := &erpclient.SalesOrder{Customer: &erpclient.Ref{Set: erpclient.SetCustomers, ID: custB}}
	old.DocumentDate = erpclient.DateTime(today.AddDate(0, 0, -100))
	if err := s.Check(erpclient.SetSalesOrders, old); !errors.Is(err, ErrNotVisible) {
		t.Errorf("order of B 100 days back: Check = %v, want ErrNotVisible", err)
	}
	old.Customer.ID = custA
	if err := s.Check(erpclient.SetSalesOrders, old); err != nil {
		t.Errorf("order of A 100 days back: Check = %v", err)
	}
}

func TestScope_ShipTo(t *testing.T) {
	g := Grant{CustomerID: custA, CustomerParty: company(partyA), ShipToCustomerID: custC, ShipToParty: company(partyC), Role: RoleOwner}
	s := testScope(g)
	if got, want := filterText(t, s, erpclient.SetSalesOrders),
		"Customer in ('Crm_Sales_Customers("+custA+")') and ShipToCustomer eq 'Crm_Sales_Customers("+custC+")'"; got != want {
		t.Errorf("orders: got %s, want %s", got, want)
	}
	if got, want := filterText(t, s, erpclient.SetShipments), "ToParty in ('General_Contacts_Companies("+partyC+")')"; got != want {
		t.Errorf("shipments: got %s, want %s", got, want)
	}
	if got := filterText(t, s, erpclient.SetInvoices); got != "error: access: no access to this data: Crm_Invoicing_Invoices" {
		t.Errorf("invoices (no ship-to on invoices): %s", got)
	}
}

func TestScope_Check(t *testing.T) {
	s := testScope(
		Grant{CustomerID: custA, CustomerParty: company(partyA), Role: RoleOrders, DaysBack: days(30)},
		Grant{CustomerID: custB, CustomerParty: company(partyB), Role: RoleOrdersBilling},
	)
	date := func(daysBack int) erpclient.DateTime {
		return erpclient.DateTime(today.AddDate(0, 0, -daysBack).Truncate(24 * time.Hour))
	}
	ref := func(set, id string) *erpclient.Ref { return &erpclient.Ref{Set: set, ID: id} }
	order := func(cust string, back int) *erpclient.SalesOrder {
		o := &erpclient.SalesOrder{Customer: ref(erpclient.SetCustomers, cust)}
		o.DocumentDate = date(back)
		return o
	}
	invoice := func(cust string, back int) *erpclient.Invoice {
		i := &erpclient.Invoice{Customer: ref(erpclient.SetCustomers, cust)}
		i.DocumentDate = date(back)
		return i
	}
	shipment := func(party string, back int) *erpclient.Shipment {
		sh := &erpclient.Shipment{}
		sh.ToParty, sh.DocumentDate = ref(erpclient.SetCompanies, party), date(back)
		return sh
	}
	customer := func(id string) *erpclient.Customer { c := &erpclient.Customer{}; c.ID = id; return c }
	party := func(id string) *erpclient.Party { p := &erpclient.Party{}; p.ID = id; return p }
	tests := []struct {
		name   string
		set    string
		entity any
		ok     bool
	}{
		{"own order in window", erpclient.SetSalesOrders, order(custA, 30), true},
		{"own order before window", erpclient.SetSalesOrders, order(custA, 31), false},
		{"unlimited grant", erpclient.SetSalesOrders, order(custB, 3000), true},
		{"other customer's order", erpclient.SetSalesOrders, order(other, 1), false},
		{"order without customer", erpclient.SetSalesOrders, &erpclient.SalesOrder{}, false},
		{"invoice without billing role", erpclient.SetInvoices, invoice(custA, 1), false},
		{"invoice with billing role", erpclient.SetInvoices, invoice(custB, 1), true},
		{"shipment to own party", erpclient.SetShipments, shipment(partyA, 2), true},
		{"shipment to other party", erpclient.SetShipments, shipment(otherPt, 2), false},
		{"own customer", erpclient.SetCustomers, customer(custB), true},
		{"other customer", erpclient.SetCustomers, customer(other), false},
		{"own party", erpclient.SetParties, party(partyA), true},
		{"other party", erpclient.SetParties, party(otherPt), false},
		{"order checked as another set", erpclient.SetInvoices, order(custB, 1), false},
		{"line with its order named", erpclient.SetSalesOrderLines, &erpclient.SalesOrderLine{SalesOrder: ref(erpclient.SetSalesOrders, other)}, true},
		{"line without order", erpclient.SetSalesOrderLines, &erpclient.SalesOrderLine{}, false},
		{"product", erpclient.SetProducts, &erpclient.Product{}, true},
		{"value instead of pointer", erpclient.SetSalesOrders, *order(custA, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(tt.set, tt.entity)
			if (err == nil) != tt.ok {
				t.Errorf("Check = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrNotVisible) {
				t.Errorf("Check error %v is not ErrNotVisible", err)
			}
		})
	}
	if err := testScope().Check(erpclient.SetProducts, &erpclient.Product{}); err == nil {
		t.Error("a user without grants sees products")
	}
	internal := &Scope{internal: true, now: time.Now}
	if err := internal.Check(erpclient.SetSalesOrders, order(other, 5000)); err != nil {
		t.Errorf("internal scope: %v", err)
	}
}
