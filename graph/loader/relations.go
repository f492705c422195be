package loader

import (
	"context"
	"errors"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/erpclient"
)

// invoicesBySalesOrder finds the invoices billing each order (keys: order GUIDs): one query on invoice lines
// (`SalesOrder in (...)`) for the invoice references, then the invoices themselves through InvoiceByID, which
// checks them. Users whose role has no billing get empty lists without a query.
func (b *batcher) invoicesBySalesOrder(ctx context.Context, keys []string) []*dataloader.Result[[]*erpclient.Invoice] {
	type invoices = []*erpclient.Invoice
	scope, err := b.Scope(ctx)
	if err != nil {
		return fail[invoices](len(keys), err)
	}
	q := erpclient.Query{Set: erpclient.SetInvoiceLines, Select: []string{"Invoice", "SalesOrder"}}
	scope.Apply(&q)
	rows, err := allByRefs[erpclient.InvoiceLine](ctx, b, q, "SalesOrder", erpclient.SetSalesOrders, keys)
	if err != nil && !noAccess(err) {
		return fail[invoices](len(keys), err)
	}
	perOrder := make(map[string][]string, len(keys))
	seen := map[[2]string]bool{}
	var invoiceIDs []string
	for i := range rows {
		r := &rows[i]
		o, inv := refID(r.SalesOrder), refID(r.Invoice)
		if o == "" || inv == "" || seen[[2]string{o, inv}] || scope.Check(erpclient.SetInvoiceLines, r) != nil {
			continue
		}
		seen[[2]string{o, inv}] = true
		perOrder[o] = append(perOrder[o], inv)
		invoiceIDs = append(invoiceIDs, inv)
	}
	loaded := map[string]*erpclient.Invoice{}
	for _, thunk := range Start(ctx, b.l.InvoiceByID, invoiceIDs) {
		inv, err := thunk()
		switch {
		case err == nil:
			loaded[inv.ID] = inv
		case errors.Is(err, ErrNotFound):
			// not visible (another window or customer): left out
		default:
			return fail[invoices](len(keys), err)
		}
	}
	out := make([]*dataloader.Result[invoices], len(keys))
	for i, k := range keys {
		list := invoices{}
		for _, id := range perOrder[k] {
			if inv, ok := loaded[id]; ok {
				list = append(list, inv)
			}
		}
		out[i] = &dataloader.Result[invoices]{Data: list}
	}
	return out
}
