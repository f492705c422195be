package loader

import (
	"context"
	"slices"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
)

// Nested reads: a root list asks ERP.net for the to-one references and child lines its operation selects inside
// the same read ($expand with a nested $select), decodes the answer once into the row types below, and primes the
// loaders with every nested entity that passes the access post-check, so the resolvers find them without a read.
// A nested entity the user may not see is left out; its resolver then asks the loader, whose scoped read answers
// NOT_FOUND exactly as without nesting.
//
// A row's nested field shadows the embedded entity's reference of the same name (encoding/json decodes the
// shallower field), so a reference is decoded once, into the row, whether ERP.net expanded it or not. Rows may be
// shared by callers of the same upstream answer: they are read, never written; the entities handed out are copies.

// CustomerRow is a customer with its Party possibly expanded.
type CustomerRow struct {
	erpclient.Customer
	Party *erpclient.Party `json:"Party,omitempty"`
}

// SalesOrderRow is a sales order with its Customer and Lines possibly expanded.
type SalesOrderRow struct {
	erpclient.SalesOrder
	Customer *CustomerRow        `json:"Customer,omitempty"`
	Lines    []SalesOrderLineRow `json:"Lines,omitempty"`
}

// SalesOrderLineRow is an order line with its Product possibly expanded.
type SalesOrderLineRow struct {
	erpclient.SalesOrderLine
	Product *erpclient.Product `json:"Product,omitempty"`
}

// InvoiceRow is an invoice with its Customer and Lines possibly expanded.
type InvoiceRow struct {
	erpclient.Invoice
	Customer *CustomerRow     `json:"Customer,omitempty"`
	Lines    []InvoiceLineRow `json:"Lines,omitempty"`
}

// InvoiceLineRow is an invoice line with its Product possibly expanded.
type InvoiceLineRow struct {
	erpclient.InvoiceLine
	Product *erpclient.Product `json:"Product,omitempty"`
}

// ShipmentRow is a shipment with its Lines possibly expanded.
type ShipmentRow struct {
	erpclient.Shipment
	Lines []ShipmentLineRow `json:"Lines,omitempty"`
}

// ShipmentLineRow is a shipment line with its Product possibly expanded.
type ShipmentLineRow struct {
	erpclient.ShipmentLine
	Product *erpclient.Product `json:"Product,omitempty"`
}

// entityRef is the reference to e: from its Id when ERP.net expanded it, else from its @odata.id.
func entityRef(set string, e *erpclient.Entity) *erpclient.Ref {
	switch {
	case e == nil:
		return nil
	case e.ODataID != "":
		if r, err := erpclient.ParseRef(e.ODataID); err == nil {
			return &r
		}
	case e.ID != "":
		return &erpclient.Ref{Set: set, ID: e.ID}
	}
	return nil
}

// expanded reports whether e came back expanded: nested $select always asks for Id, a bare reference has none.
func expanded(e *erpclient.Entity) bool { return e != nil && e.ID != "" }

func partyEntity(p *erpclient.Party) *erpclient.Entity {
	if p == nil {
		return nil
	}
	return &p.Entity
}

func productEntity(p *erpclient.Product) *erpclient.Entity {
	if p == nil {
		return nil
	}
	return &p.Entity
}

func customerEntity(c *CustomerRow) *erpclient.Entity {
	if c == nil {
		return nil
	}
	return &c.Entity
}

// Flat returns the customer with its references.
func (r *CustomerRow) Flat() *erpclient.Customer {
	c := r.Customer
	c.Party = entityRef(erpclient.SetParties, partyEntity(r.Party))
	return &c
}

// Flat returns the order with its references (its lines are primed separately).
func (r *SalesOrderRow) Flat() *erpclient.SalesOrder {
	o := r.SalesOrder
	o.Customer = entityRef(erpclient.SetCustomers, customerEntity(r.Customer))
	return &o
}

// Flat returns the invoice with its references.
func (r *InvoiceRow) Flat() *erpclient.Invoice {
	o := r.Invoice
	o.Customer = entityRef(erpclient.SetCustomers, customerEntity(r.Customer))
	return &o
}

// Flat returns the shipment.
func (r *ShipmentRow) Flat() *erpclient.Shipment {
	o := r.Shipment
	return &o
}

// Nested says which relations a root list's read expanded.
type Nested struct {
	Customer, Party, Lines, Product bool
}

// NestedOf reads the plan of a root read from its expansions.
func NestedOf(exps []erpclient.Expand) Nested {
	var n Nested
	for _, e := range exps {
		switch e.Prop {
		case "Customer":
			n.Customer = true
			n.Party = n.Party || slices.ContainsFunc(e.Expand, func(x erpclient.Expand) bool { return x.Prop == "Party" })
		case "Party":
			n.Party = true
		case "Lines":
			n.Lines = true
			n.Product = n.Product || slices.ContainsFunc(e.Expand, func(x erpclient.Expand) bool { return x.Prop == "Product" })
		}
	}
	return n
}

func (l *Loaders) primeCustomer(ctx context.Context, scope *access.Scope, r *CustomerRow, withParty bool) {
	if r == nil || !expanded(&r.Entity) {
		return
	}
	c := r.Flat()
	if scope.Check(erpclient.SetCustomers, c) != nil {
		return
	}
	l.CustomerByID.Prime(ctx, c.ID, c)
	if withParty && r.Party != nil && expanded(&r.Party.Entity) {
		p := *r.Party
		if scope.Check(erpclient.SetParties, &p) == nil {
			l.PartyByID.Prime(ctx, p.ID, &p)
		}
	}
}

// primeProduct primes an expanded product the user may see and returns it (nil if it was not primed).
func (l *Loaders) primeProduct(ctx context.Context, scope *access.Scope, p *erpclient.Product) *erpclient.Product {
	if p == nil || !expanded(&p.Entity) {
		return nil
	}
	c := *p
	if scope.Check(erpclient.SetProducts, &c) != nil {
		return nil
	}
	l.ProductByID.Prime(ctx, c.ID, &c)
	return &c
}

// PrimeCustomers primes the parties expanded into customers that passed the access check.
func (l *Loaders) PrimeCustomers(ctx context.Context, scope *access.Scope, rows []*CustomerRow, n Nested) {
	if !n.Party {
		return
	}
	for _, r := range rows {
		if r.Party != nil && expanded(&r.Party.Entity) {
			p := *r.Party
			if scope.Check(erpclient.SetParties, &p) == nil {
				l.PartyByID.Prime(ctx, p.ID, &p)
			}
		}
	}
}

// PrimeSalesOrders primes the customers, parties, lines and products expanded into orders that passed the access
// check (orders[i] is rows[i]'s entity).
func (l *Loaders) PrimeSalesOrders(ctx context.Context, scope *access.Scope, rows []*SalesOrderRow, orders []*erpclient.SalesOrder, n Nested) {
	for i, r := range rows {
		if n.Customer {
			l.primeCustomer(ctx, scope, r.Customer, n.Party)
		}
		if n.Lines {
			primeLines(ctx, l, scope, l.SalesOrderLinesByOrder, erpclient.SetSalesOrderLines, erpclient.SetSalesOrders, orders[i].ID,
				r.Lines, splitOrderLine, func(e *erpclient.SalesOrderLine) (**erpclient.Ref, int) { return &e.SalesOrder, e.LineNo }, n.Product)
		}
	}
}

// PrimeInvoices primes the customers, parties, lines and products expanded into invoices that passed the access
// check (invoices[i] is rows[i]'s entity).
func (l *Loaders) PrimeInvoices(ctx context.Context, scope *access.Scope, rows []*InvoiceRow, invoices []*erpclient.Invoice, n Nested) {
	for i, r := range rows {
		if n.Customer {
			l.primeCustomer(ctx, scope, r.Customer, n.Party)
		}
		if n.Lines {
			primeLines(ctx, l, scope, l.InvoiceLinesByInvoice, erpclient.SetInvoiceLines, erpclient.SetInvoices, invoices[i].ID,
				r.Lines, splitInvoiceLine, func(e *erpclient.InvoiceLine) (**erpclient.Ref, int) { return &e.Invoice, e.LineNo }, n.Product)
		}
	}
}

// PrimeShipments primes the lines and products expanded into shipments that passed the access check
// (shipments[i] is rows[i]'s entity).
func (l *Loaders) PrimeShipments(ctx context.Context, scope *access.Scope, rows []*ShipmentRow, shipments []*erpclient.Shipment, n Nested) {
	if !n.Lines {
		return
	}
	for i, r := range rows {
		primeLines(ctx, l, scope, l.ShipmentLinesByShipment, erpclient.SetShipmentLines, erpclient.SetShipments, shipments[i].ID,
			r.Lines, splitShipmentLine, func(e *erpclient.ShipmentLine) (**erpclient.Ref, int) { return &e.Shipment, e.LineNo }, n.Product)
	}
}

// primeLines primes ld with the lines expanded into document id (in line order), each checked and naming that
// document (a nested line names its parent implicitly when its reference was not selected), and with their
// expanded products.
func primeLines[T, R any](ctx context.Context, l *Loaders, scope *access.Scope, ld *dataloader.Loader[string, []*T], set, parentSet, id string,
	rows []R, split func(*R) (*T, *erpclient.Product), parent func(*T) (**erpclient.Ref, int), withProduct bool) {
	lines := make([]*T, 0, len(rows))
	for j := range rows {
		line, product := split(&rows[j])
		ref, _ := parent(line)
		if *ref == nil {
			*ref = &erpclient.Ref{Set: parentSet, ID: id}
		}
		if (*ref).ID != id || scope.Check(set, line) != nil {
			continue
		}
		lines = append(lines, line)
		if withProduct {
			l.primeProduct(ctx, scope, product)
		}
	}
	slices.SortStableFunc(lines, func(a, b *T) int { _, x := parent(a); _, y := parent(b); return x - y })
	ld.Prime(ctx, id, lines)
}
