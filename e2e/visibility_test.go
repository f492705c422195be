package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// demo users whose data the tests compare with the oracle
var externalUsers = []string{fixture.OwnerLogin, fixture.MultiLogin, fixture.BasicLogin, fixture.NoAccessLogin}

// roleLevel orders the fixture roles (ERP.net L-codes).
var roleLevel = map[string]int{
	fixture.RoleBasic: 10, fixture.RoleOrders: 20, fixture.RoleOrdersWithPrices: 30,
	fixture.RoleOrdersBilling: 40, fixture.RoleAdmin: 80, fixture.RoleOwner: 90,
}

func custRef(n int) string { return "'Crm_Sales_Customers(" + fixture.CustomerID(n) + ")'" }

// partyRef is the reference to customer n's party, read from the Domain API.
func partyRef(t *testing.T, n int) string {
	return "'" + oracleRef(t, "Crm_Sales_Customers", fixture.CustomerID(n), "Party") + "'"
}

// expected is what the oracle says login must see: the union over their grants of the documents the grant's role
// covers (orders from Orders, invoices from OrdersBilling, shipments from Basic), each within its window.
type expected struct {
	customers, orders, invoices, shipments map[string]bool
}

func expect(t *testing.T, login string) expected {
	t.Helper()
	e := expected{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
	for _, a := range fixture.Accesses() {
		if a.UserLogin != login {
			continue
		}
		e.customers[fixture.CustomerID(a.CustomerN)] = true
		window := ""
		if a.DaysBackAccess != nil {
			window = " and DocumentDate ge " + cutoff(*a.DaysBackAccess)
		}
		level := roleLevel[a.Role]
		maps.Copy(e.shipments, oracle(t, "Logistics_Shipment_Shipments", "ToParty eq "+partyRef(t, a.CustomerN)+window))
		if level >= 20 {
			maps.Copy(e.orders, oracle(t, "Crm_Sales_SalesOrders", "Customer eq "+custRef(a.CustomerN)+window))
		}
		if level >= 40 {
			maps.Copy(e.invoices, oracle(t, "Crm_Invoicing_Invoices", "Customer eq "+custRef(a.CustomerN)+window))
		}
	}
	return e
}

type node struct {
	ID       string
	Customer *struct{ ID string }
}

type connection struct {
	TotalCount int
	PageInfo   struct {
		HasNextPage bool
		EndCursor   *string
	}
	Nodes []struct {
		ID       string
		Customer *struct{ ID string }
		Lines    []struct {
			SalesOrder *struct{ ID string }
			Invoice    *struct{ ID string }
			Shipment   *struct{ ID string }
		}
		Invoices []struct{ ID string }
	}
}

// everything pages through a root list as login with the given selection and returns all nodes.
func everything(t *testing.T, login, field, selection string, vars map[string]any) []connection {
	t.Helper()
	q := fmt.Sprintf(`query($after: String, $filter: %sFilter) {
	  list: %s(first: 100, after: $after, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } nodes { %s } }
	}`, filterType[field], field, selection)
	var pages []connection
	var after any
	for i := 0; ; i++ {
		if i > 30 {
			t.Fatalf("%s: paging does not end", field)
		}
		vs := map[string]any{"after": after}
		maps.Copy(vs, vars)
		var data struct{ List connection }
		mustQuery(t, login, q, vs, &data)
		pages = append(pages, data.List)
		if !data.List.PageInfo.HasNextPage {
			return pages
		}
		after = *data.List.PageInfo.EndCursor
	}
}

var filterType = map[string]string{"salesOrders": "SalesOrder", "invoices": "Invoice", "shipments": "Shipment", "customers": "Customer"}

func ids(t *testing.T, pages []connection) map[string]bool {
	out := map[string]bool{}
	for _, p := range pages {
		for _, n := range p.Nodes {
			out[guid(t, n.ID)] = true
		}
	}
	return out
}

func sameSet(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	var extra, missing []string
	for id := range got {
		if !want[id] {
			extra = append(extra, id)
		}
	}
	for id := range want {
		if !got[id] {
			missing = append(missing, id)
		}
	}
	if len(extra) > 0 || len(missing) > 0 {
		t.Errorf("%s: %d seen that must not be (%v), %d missing (%v)", what, len(extra), first(extra), len(missing), first(missing))
	}
}

func first(s []string) []string {
	slices.Sort(s)
	return s[:min(len(s), 3)]
}

// TestVisibility_Lists checks, for every demo user, that the root lists and the nested paths under them show
// exactly what the oracle says, and that totalCount agrees.
func TestVisibility_Lists(t *testing.T) {
	forEachCache(t, func(t *testing.T) {
		for _, login := range externalUsers {
			t.Run(login, func(t *testing.T) {
				want := expect(t, login)
				for _, l := range []struct {
					field, selection string
					want             map[string]bool
				}{
					{"customers", "id", want.customers},
					{"salesOrders", "id customer { id } lines { salesOrder { id } } invoices { id }", want.orders},
					{"invoices", "id customer { id } lines { invoice { id } }", want.invoices},
					{"shipments", "id customer { id } lines { shipment { id } }", want.shipments},
				} {
					pages := everything(t, login, l.field, l.selection, nil)
					got := ids(t, pages)
					sameSet(t, login+" "+l.field, got, l.want)
					if pages[0].TotalCount != len(l.want) {
						t.Errorf("%s %s: totalCount %d, want %d", login, l.field, pages[0].TotalCount, len(l.want))
					}
					for _, p := range pages {
						for _, n := range p.Nodes {
							if n.Customer != nil && !want.customers[guid(t, n.Customer.ID)] {
								t.Errorf("%s %s: nested customer %s not granted", login, l.field, n.Customer.ID)
							}
							for _, line := range n.Lines {
								for _, parent := range []*struct{ ID string }{line.SalesOrder, line.Invoice, line.Shipment} {
									if parent != nil && parent.ID != n.ID {
										t.Errorf("%s %s: line of %s under %s", login, l.field, parent.ID, n.ID)
									}
								}
							}
							for _, inv := range n.Invoices {
								if !want.invoices[guid(t, inv.ID)] {
									t.Errorf("%s: invoice %s nested under order %s is not visible to the user", login, inv.ID, n.ID)
								}
							}
						}
					}
				}
			})
		}
	})
}

// TestVisibility_NodeAndFilters fetches every other user's entities by ID and filters by other customers: all
// answer exactly like entities that do not exist.
func TestVisibility_NodeAndFilters(t *testing.T) {
	forEachCache(t, func(t *testing.T) {
		// IDs each user can see, collected through the API
		seen := map[string][]string{}
		const q = `{ customers(first: 100) { nodes { id } }
		  salesOrders(first: 15) { nodes { id lines { id } } }
		  invoices(first: 15) { nodes { id lines { id } } }
		  shipments(first: 15) { nodes { id lines { id } } } }`
		for _, login := range externalUsers {
			var data map[string]struct {
				Nodes []struct {
					ID    string
					Lines []struct{ ID string }
				}
			}
			mustQuery(t, login, q, nil, &data)
			for _, c := range data {
				for _, n := range c.Nodes {
					seen[login] = append(seen[login], n.ID)
					for _, l := range n.Lines[:min(len(n.Lines), 2)] {
						seen[login] = append(seen[login], l.ID)
					}
				}
			}
		}
		for _, login := range externalUsers {
			own := map[string]bool{}
			for _, id := range seen[login] {
				own[id] = true
			}
			var foreign []string
			for other, list := range seen {
				if other == login {
					continue
				}
				for _, id := range list {
					if !own[id] {
						foreign = append(foreign, id)
					}
				}
			}
			if login != fixture.OwnerLogin && len(foreign) == 0 {
				continue
			}
			t.Run(login, func(t *testing.T) {
				var data struct{ Nodes []*struct{ ID string } }
				r := query(t, login, `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": foreign[:min(len(foreign), 100)]}, &data)
				for i, n := range data.Nodes {
					if n != nil {
						t.Errorf("%s sees %s of another user", login, foreign[i])
					}
				}
				for _, e := range r.Errors {
					if e.Extensions["code"] != "NOT_FOUND" || e.Message != "not found" {
						t.Errorf("%s: error %+v, want NOT_FOUND", login, e)
					}
				}
				if len(r.Errors) != min(len(foreign), 100) {
					t.Errorf("%s: %d errors for %d foreign IDs", login, len(r.Errors), min(len(foreign), 100))
				}
			})
		}
		// filtering by another user's customers yields nothing, never their documents
		for _, login := range externalUsers {
			for _, field := range []string{"salesOrders", "invoices", "shipments"} {
				var data struct{ List connection }
				others := []string{}
				for n := 1; n <= 6; n++ {
					others = append(others, encodeCustomer(n))
				}
				mustQuery(t, login, fmt.Sprintf(`query($c: [ID!]) { list: %s(first: 100, filter: {customerIds: $c}) { totalCount nodes { id customer { id } } } }`, field),
					map[string]any{"c": others}, &data)
				want := expect(t, login)
				wantSet := map[string]map[string]bool{"salesOrders": want.orders, "invoices": want.invoices, "shipments": want.shipments}[field]
				for _, n := range data.List.Nodes {
					if !wantSet[guid(t, n.ID)] {
						t.Errorf("%s %s filtered by customers: %s is not theirs", login, field, n.ID)
					}
				}
				if data.List.TotalCount != len(wantSet) {
					t.Errorf("%s %s filtered by all customers: totalCount %d, want %d", login, field, data.List.TotalCount, len(wantSet))
				}
			}
		}
	})
}

func encodeCustomer(n int) string { return encodeID("Customer", fixture.CustomerID(n)) }

func TestVisibility_Unauthenticated(t *testing.T) {
	r := query(t, "", `{ salesOrders { totalCount } }`, nil, nil)
	if r.code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous: %+v", r.Errors)
	}
	var typename struct {
		Typename string `json:"__typename"`
	}
	mustQuery(t, "", `{ __typename }`, nil, &typename)
	if typename.Typename != "Query" {
		t.Errorf("__typename = %q", typename.Typename)
	}
	if !strings.Contains(r.Errors[0].Message, "authentication") {
		t.Errorf("message %q", r.Errors[0].Message)
	}
}
