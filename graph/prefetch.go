package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/loader"
)

// Prefetching makes batching deterministic. gqlgen resolves the elements of a list concurrently and each asks
// its loader for its own key; the loader waits a moment to collect them, but on a busy machine the stragglers
// miss the batch and cost a second upstream read. A root list knows all its rows at once, so it starts the
// loads of the relations the operation selects on them with every key in one call.

// selectedOnNodes returns the fields the operation selects on the nodes of the connection being resolved
// (through `nodes` or `edges { node }`), by name.
func selectedOnNodes(ctx context.Context) map[string]graphql.CollectedField {
	out := map[string]graphql.CollectedField{}
	if !graphql.HasOperationContext(ctx) {
		return out
	}
	oc := graphql.GetOperationContext(ctx)
	add := func(sel graphql.CollectedField) {
		for _, f := range graphql.CollectFields(oc, sel.Selections, nil) {
			out[f.Name] = f
		}
	}
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		switch f.Name {
		case "nodes":
			add(f)
		case "edges":
			for _, e := range graphql.CollectFields(oc, f.Selections, nil) {
				if e.Name == "node" {
					add(e)
				}
			}
		}
	}
	return out
}

// has reports whether sub selects field name.
func has(ctx context.Context, sub graphql.CollectedField, name string) bool {
	for _, f := range graphql.CollectFields(graphql.GetOperationContext(ctx), sub.Selections, nil) {
		if f.Name == name {
			return true
		}
	}
	return false
}

// startLoads starts loading keys through ld without waiting; the results land in the loader's cache.
func startLoads[V any](ctx context.Context, ld *dataloader.Loader[string, V], keys []string) dataloader.ThunkMany[V] {
	if len(keys) == 0 {
		return nil
	}
	return ld.LoadMany(ctx, unique(keys))
}

func unique(keys []string) []string {
	seen := make(map[string]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if k != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// prefetchCustomers starts loading customers and, when their party is selected, then their parties.
func prefetchCustomers(ctx context.Context, sel graphql.CollectedField, ids []string) {
	l := loader.For(ctx)
	thunk := startLoads(ctx, l.CustomerByID, ids)
	if thunk == nil || !(has(ctx, sel, "party") || has(ctx, sel, "name")) {
		return
	}
	go func() {
		customers, _ := thunk()
		var parties []string
		for _, c := range customers {
			if c != nil {
				parties = append(parties, refID(c.Party))
			}
		}
		startLoads(ctx, l.PartyByID, parties)
	}()
}

func prefetchSalesOrders(ctx context.Context, rows []*erpclient.SalesOrder) {
	l, sel := loader.For(ctx), selectedOnNodes(ctx)
	ids := make([]string, len(rows))
	var customers []string
	for i, o := range rows {
		ids[i] = o.ID
		customers = append(customers, refID(o.Customer))
	}
	if _, ok := sel["lines"]; ok {
		startLoads(ctx, l.SalesOrderLinesByOrder, ids)
	}
	if _, ok := sel["invoices"]; ok {
		startLoads(ctx, l.InvoicesBySalesOrder, ids)
	}
	if f, ok := sel["customer"]; ok {
		prefetchCustomers(ctx, f, customers)
	}
}

func prefetchInvoices(ctx context.Context, rows []*erpclient.Invoice) {
	l, sel := loader.For(ctx), selectedOnNodes(ctx)
	ids := make([]string, len(rows))
	var customers []string
	for i, o := range rows {
		ids[i] = o.ID
		customers = append(customers, refID(o.Customer))
	}
	if _, ok := sel["lines"]; ok {
		startLoads(ctx, l.InvoiceLinesByInvoice, ids)
	}
	if f, ok := sel["customer"]; ok {
		prefetchCustomers(ctx, f, customers)
	}
}

func prefetchShipments(ctx context.Context, rows []*erpclient.Shipment) {
	l, sel := loader.For(ctx), selectedOnNodes(ctx)
	ids := make([]string, len(rows))
	var parties []string
	for i, s := range rows {
		ids[i] = s.ID
		parties = append(parties, refID(s.ToParty))
	}
	if _, ok := sel["lines"]; ok {
		startLoads(ctx, l.ShipmentLinesByShipment, ids)
	}
	if _, ok := sel["recipient"]; ok {
		startLoads(ctx, l.PartyByID, parties)
	}
	if _, ok := sel["customer"]; ok {
		startLoads(ctx, l.CustomerByParty, parties)
	}
}
