package access

import (
	"fmt"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

// Check is the post-check of every entity read from set before it reaches a resolver: nil when the scope may see
// it, ErrNotVisible otherwise (callers answer that exactly like a missing entity). It needs the properties the
// filters use: Customer, ShipToCustomer and DocumentDate of orders; Customer and DocumentDate of invoices; ToParty
// and DocumentDate of shipments; the parent reference of lines. Lines carry no customer of their own: Check
// verifies the user may see the set and that the line names its document; callers must check that document too
// (erpgraph's loaders fetch lines only for documents that passed Check, and check a line's document when a line is
// fetched by ID). Entities must be passed as pointers; any other value is refused.
func (s *Scope) Check(set string, entity any) error {
	if s.internal {
		return nil
	}
	ok := false
	switch e := entity.(type) {
	case *erpclient.SalesOrder:
		ok = set == erpclient.SetSalesOrders && s.checkDoc(set, refID(e.Customer), refID(e.ShipToCustomer), e.DocumentDate.Time())
	case *erpclient.Invoice:
		ok = set == erpclient.SetInvoices && s.checkDoc(set, refID(e.Customer), "", e.DocumentDate.Time())
	case *erpclient.Shipment:
		ok = set == erpclient.SetShipments && s.checkDoc(set, refID(e.ToParty), "", e.DocumentDate.Time())
	case *erpclient.SalesOrderLine:
		ok = set == erpclient.SetSalesOrderLines && e.SalesOrder != nil && s.canSee(set)
	case *erpclient.InvoiceLine:
		ok = set == erpclient.SetInvoiceLines && e.Invoice != nil && s.canSee(set)
	case *erpclient.ShipmentLine:
		ok = set == erpclient.SetShipmentLines && e.Shipment != nil && s.canSee(set)
	case *erpclient.Customer:
		ok = set == erpclient.SetCustomers && s.seesCustomer(e.ID)
	case *erpclient.Party:
		ok = partySets[set] && s.seesParty(e.ID)
	case *erpclient.Company:
		ok = partySets[set] && s.seesParty(e.ID)
	case *erpclient.Person:
		ok = partySets[set] && s.seesParty(e.ID)
	case *erpclient.Product, *erpclient.ProductGroup, *erpclient.MeasurementUnit, *erpclient.Currency,
		*erpclient.CurrentBalance, *erpclient.Store:
		ok = refSets[set] && len(s.grants) > 0
	default:
		return fmt.Errorf("%w: %s: no check for %T", ErrNotVisible, set, entity)
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotVisible, set)
	}
	return nil
}

func refID(r *erpclient.Ref) string {
	if r == nil {
		return ""
	}
	return r.ID
}

// canSee reports whether any grant covers set.
func (s *Scope) canSee(set string) bool {
	r, ok := docRules[set]
	return ok && len(s.eligible(r)) > 0
}

// checkDoc reports whether a grant covers a document of set naming owner (customer, or party for shipments) and
// shipTo, dated date.
func (s *Scope) checkDoc(set, owner, shipTo string, date time.Time) bool {
	r := docRules[set]
	if owner == "" || date.IsZero() {
		return false
	}
	for _, g := range s.eligible(r) {
		if r.ownerID(g) != owner {
			continue
		}
		if !r.byParty && g.ShipToCustomerID != "" && g.ShipToCustomerID != shipTo {
			continue
		}
		if c := s.cutoff(g); c != nil && date.Before(*c) {
			continue
		}
		return true
	}
	return false
}

func (s *Scope) seesCustomer(id string) bool {
	for _, g := range s.grants {
		if id != "" && (g.CustomerID == id || g.ShipToCustomerID == id) {
			return true
		}
	}
	return false
}

func (s *Scope) seesParty(id string) bool {
	for _, g := range s.grants {
		if id != "" && (g.CustomerParty.ID == id || g.ShipToParty.ID == id) {
			return true
		}
	}
	return false
}

// checkProps are the properties Check reads, per set.
var checkProps = map[string][]string{
	erpclient.SetSalesOrders:     {"Customer", "ShipToCustomer", "DocumentDate"},
	erpclient.SetInvoices:        {"Customer", "DocumentDate"},
	erpclient.SetShipments:       {"ToParty", "DocumentDate"},
	erpclient.SetSalesOrderLines: {"SalesOrder"},
	erpclient.SetInvoiceLines:    {"Invoice"},
	erpclient.SetShipmentLines:   {"Shipment"},
}

// CheckProps returns the properties of set that Check needs besides Id; every query whose results are checked
// must select them.
func CheckProps(set string) []string { return checkProps[set] }
