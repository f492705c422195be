package access

import (
	"fmt"
	"strconv"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

// docRule says how a document set (or its lines, through the owning document) is restricted.
type docRule struct {
	perm   Permission
	prefix string // path to the owning document for line sets, e.g. "SalesOrder/"; "" for the documents
	// byParty: the document names its customer only through ToParty (shipments); the grant's party is compared
	byParty bool
	// shipTo is the document's ship-to customer property; "" when the set has none, in which case grants limited
	// to a ship-to customer do not cover the set (nothing says where its documents go)
	shipTo string
}

var docRules = map[string]docRule{
	erpclient.SetSalesOrders:     {perm: ViewSalesOrders, shipTo: "ShipToCustomer"},
	erpclient.SetSalesOrderLines: {perm: ViewSalesOrders, prefix: "SalesOrder/", shipTo: "ShipToCustomer"},
	erpclient.SetInvoices:        {perm: ViewInvoices},
	erpclient.SetInvoiceLines:    {perm: ViewInvoices, prefix: "Invoice/"},
	erpclient.SetShipments:       {perm: ViewShipments, byParty: true},
	erpclient.SetShipmentLines:   {perm: ViewShipments, prefix: "Shipment/", byParty: true},
}

// partySets are the sets of parties; a user sees the parties of their customers.
var partySets = map[string]bool{erpclient.SetParties: true, erpclient.SetCompanies: true, erpclient.SetPersons: true}

// refSets are reference data, the same for every user who may act for at least one customer.
var refSets = map[string]bool{
	erpclient.SetProducts: true, erpclient.SetProductGroups: true, erpclient.SetMeasurementUnits: true,
	erpclient.SetCurrencies: true, erpclient.SetCurrentBalances: true, erpclient.SetStores: true,
}

// eligible returns the grants that cover set under rule.
func (s *Scope) eligible(r docRule) []Grant {
	var out []Grant
	for _, g := range s.grants {
		if !g.Role.Allows(r.perm) {
			continue
		}
		if g.ShipToCustomerID != "" && !r.byParty && r.shipTo == "" {
			continue
		}
		out = append(out, g)
	}
	return out
}

// ownerID is what a document of rule must name to belong to g: the party for byParty sets, else the customer.
func (r docRule) ownerID(g Grant) string {
	if !r.byParty {
		return g.CustomerID
	}
	if g.ShipToCustomerID != "" {
		return g.ShipToParty.ID
	}
	return g.CustomerParty.ID
}

func (r docRule) ownerValue(g Grant) erpclient.Value {
	if !r.byParty {
		return erpclient.RefTo(erpclient.SetCustomers, g.CustomerID)
	}
	if g.ShipToCustomerID != "" {
		return g.ShipToParty.Value()
	}
	return g.CustomerParty.Value()
}

func (r docRule) ownerProp() string {
	if r.byParty {
		return r.prefix + "ToParty"
	}
	return r.prefix + "Customer"
}

// ScopeFilter implements erpclient.ScopeFilter: the mandatory filter for a query on set. For document sets it is
// the union of the user's grants (customer in ... and, when every grant has a window, the earliest date); when
// grants differ in window or ship-to customer the union is wider than any one grant, so Check removes what it lets
// through, and root lists that must page exactly query each grant group on its own (see Exact and Split).
// A set the user cannot see at all answers ErrNoAccess, so no query is sent.
func (s *Scope) ScopeFilter(set string) (erpclient.Filter, error) {
	if s.internal {
		return nil, nil
	}
	if r, ok := docRules[set]; ok {
		gs := s.eligible(r)
		if len(gs) == 0 {
			return nil, fmt.Errorf("%w: %s", ErrNoAccess, set)
		}
		return r.filter(s, gs, len(s.groups(set)) == 1), nil
	}
	switch {
	case set == erpclient.SetCustomers:
		return s.idsFilter(set, func(g Grant) []string { return []string{g.CustomerID, g.ShipToCustomerID} })
	case partySets[set]:
		return s.idsFilter(set, func(g Grant) []string { return []string{g.CustomerParty.ID, g.ShipToParty.ID} })
	case refSets[set]:
		if len(s.grants) == 0 {
			return nil, fmt.Errorf("%w: %s", ErrNoAccess, set)
		}
		return nil, nil
	}
	// Everything else (users, external access rows, service agreements ...) is not served to users.
	return nil, fmt.Errorf("%w: %s", ErrNoAccess, set)
}

// idsFilter is `Id in (...)` over the non-empty ids that of gives for each grant.
func (s *Scope) idsFilter(set string, of func(Grant) []string) (erpclient.Filter, error) {
	if len(s.grants) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoAccess, set)
	}
	var ids []erpclient.Value
	seen := map[string]bool{}
	for _, g := range s.grants {
		for _, id := range of(g) {
			if id != "" && !seen[id] {
				seen[id] = true
				ids = append(ids, erpclient.GUID(id))
			}
		}
	}
	return erpclient.In("Id", ids...), nil
}

// filter builds the filter of grants gs. exact grants form one group (same window and ship-to customer), so the
// ship-to condition can be added.
func (r docRule) filter(s *Scope, gs []Grant, exact bool) erpclient.Filter {
	var owners []erpclient.Value
	seen := map[string]bool{}
	var earliest *time.Time
	unlimited := false
	for _, g := range gs {
		if id := r.ownerID(g); !seen[id] {
			seen[id] = true
			owners = append(owners, r.ownerValue(g))
		}
		c := s.cutoff(g)
		switch {
		case c == nil:
			unlimited = true
		case earliest == nil || c.Before(*earliest):
			earliest = c
		}
	}
	fs := []erpclient.Filter{erpclient.In(r.ownerProp(), owners...)}
	if exact && r.shipTo != "" && gs[0].ShipToCustomerID != "" {
		fs = append(fs, erpclient.Eq(r.prefix+r.shipTo, erpclient.RefTo(erpclient.SetCustomers, gs[0].ShipToCustomerID)))
	}
	if !unlimited && earliest != nil {
		fs = append(fs, erpclient.Ge(r.prefix+"DocumentDate", erpclient.Date(*earliest)))
	}
	if len(fs) == 1 {
		return fs[0]
	}
	return erpclient.And(fs...)
}

// groups splits the grants that cover set into groups that one exact filter can express: the same days-back
// window, and for sets with a ship-to customer the same ship-to restriction.
func (s *Scope) groups(set string) [][]Grant {
	r, ok := docRules[set]
	if !ok || s.internal {
		return nil
	}
	var keys []string
	byKey := map[string][]Grant{}
	for _, g := range s.eligible(r) {
		key := "unlimited"
		if g.DaysBack != nil {
			key = strconv.Itoa(*g.DaysBack)
		}
		if !r.byParty && g.ShipToCustomerID != "" {
			key += "|" + g.ShipToCustomerID + "|" + g.CustomerID
		}
		if _, ok := byKey[key]; !ok {
			keys = append(keys, key)
		}
		byKey[key] = append(byKey[key], g)
	}
	out := make([][]Grant, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

// Exact reports whether ScopeFilter(set) selects exactly the visible rows of set, so that paging and counts over
// it are exact. It is false only for document sets whose grants differ in days-back window or ship-to customer.
func (s *Scope) Exact(set string) bool {
	return len(s.groups(set)) <= 1
}

// Split returns one scope per group of grants that an exact filter can express, for root lists of a set that is
// not Exact. Their results are disjoint: a document has one customer, and grants of one customer share a group
// unless they differ in ship-to customer, which documents name exactly once.
func (s *Scope) Split(set string) []*Scope {
	gs := s.groups(set)
	if len(gs) <= 1 {
		return []*Scope{s}
	}
	out := make([]*Scope, 0, len(gs))
	for _, g := range gs {
		out = append(out, s.withGrants(g))
	}
	return out
}
