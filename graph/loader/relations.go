package loader

import (
	"context"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/erpclient"
)

// invoiceOfLine is an invoice line with its Invoice expanded.
type invoiceOfLine struct {
	erpclient.InvoiceLine
	Invoice *erpclient.Invoice `json:"Invoice,omitempty"`
}

// invoicesBySalesOrder finds the invoices billing each order (keys: order GUIDs) with one read: the invoice lines
// of the orders (`SalesOrder in (...)`, under the scope's invoice filter) with their Invoice expanded. Every line
// and every invoice is checked; the invoices are primed into InvoiceByID. Users whose role has no billing get
// empty lists without a query.
func (b *batcher) invoicesBySalesOrder(ctx context.Context, keys []string) []*dataloader.Result[[]*erpclient.Invoice] {
	type invoices = []*erpclient.Invoice
	scope, err := b.Scope(ctx)
	if err != nil {
		return fail[invoices](len(keys), err)
	}
	q := erpclient.Query{Set: erpclient.SetInvoiceLines, Select: []string{"Invoice", "SalesOrder"},
		Expand: []erpclient.Expand{{Prop: "Invoice", Select: b.Select(ctx, erpclient.SetInvoices)}}}
	scope.Apply(&q)
	rows, err := allByRefs[invoiceOfLine](ctx, b, q, "SalesOrder", erpclient.SetSalesOrders, keys)
	if err != nil && !noAccess(err) {
		return fail[invoices](len(keys), err)
	}
	perOrder := make(map[string]invoices, len(keys))
	seen := map[[2]string]bool{}
	visible := map[string]*erpclient.Invoice{}
	for i := range rows {
		r := &rows[i]
		if r.Invoice == nil || !expanded(&r.Invoice.Entity) {
			continue
		}
		line := r.InvoiceLine
		line.Invoice = &erpclient.Ref{Set: erpclient.SetInvoices, ID: r.Invoice.ID}
		o := refID(line.SalesOrder)
		if o == "" || seen[[2]string{o, line.Invoice.ID}] || scope.Check(erpclient.SetInvoiceLines, &line) != nil {
			continue
		}
		inv, ok := visible[r.Invoice.ID]
		if !ok {
			c := *r.Invoice
			if scope.Check(erpclient.SetInvoices, &c) != nil {
				continue // another window or customer: left out
			}
			inv = &c
			visible[c.ID] = inv
			b.l.InvoiceByID.Prime(ctx, c.ID, inv)
		}
		seen[[2]string{o, inv.ID}] = true
		perOrder[o] = append(perOrder[o], inv)
	}
	out := make([]*dataloader.Result[invoices], len(keys))
	for i, k := range keys {
		list := perOrder[k]
		if list == nil {
			list = invoices{}
		}
		out[i] = &dataloader.Result[invoices]{Data: list}
	}
	return out
}
