package graph

import (
	"context"
	"slices"

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
// (through `nodes` or `edges { node }`), by name (a field selected under several aliases appears once per alias).
func selectedOnNodes(ctx context.Context) map[string][]graphql.CollectedField {
	out := map[string][]graphql.CollectedField{}
	if !graphql.HasOperationContext(ctx) {
		return out
	}
	oc := graphql.GetOperationContext(ctx)
	add := func(sel graphql.CollectedField) {
		for _, f := range graphql.CollectFields(oc, sel.Selections, nil) {
			out[f.Name] = append(out[f.Name], f)
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

// startLoads starts loading keys through ld without waiting; the results land in the loader's cache.
func startLoads[V any](ctx context.Context, ld *dataloader.Loader[string, V], keys []string) {
	loader.Start(ctx, ld, keys)
}

// prefetch starts, for every relation the operation selects on the list's nodes, its loads.
func prefetch(ctx context.Context, relations map[string]func()) {
	sel := selectedOnNodes(ctx)
	for name, start := range relations {
		if _, ok := sel[name]; ok {
			start()
		}
	}
}

func prefetchSalesOrders(ctx context.Context, rows []*erpclient.SalesOrder) {
	l := loader.For(ctx)
	ids, customers := make([]string, len(rows)), make([]string, len(rows))
	for i, o := range rows {
		ids[i], customers[i] = o.ID, refID(o.Customer)
	}
	prefetch(ctx, map[string]func(){
		"lines":    func() { startLoads(ctx, l.SalesOrderLinesByOrder, ids) },
		"invoices": func() { startLoads(ctx, l.InvoicesBySalesOrder, ids) },
		"customer": func() { startLoads(ctx, l.CustomerByID, customers) },
	})
}

func prefetchInvoices(ctx context.Context, rows []*erpclient.Invoice) {
	l := loader.For(ctx)
	ids, customers := make([]string, len(rows)), make([]string, len(rows))
	for i, o := range rows {
		ids[i], customers[i] = o.ID, refID(o.Customer)
	}
	prefetch(ctx, map[string]func(){
		"lines":    func() { startLoads(ctx, l.InvoiceLinesByInvoice, ids) },
		"customer": func() { startLoads(ctx, l.CustomerByID, customers) },
	})
}

func prefetchShipments(ctx context.Context, rows []*erpclient.Shipment) {
	l := loader.For(ctx)
	ids, parties := make([]string, len(rows)), make([]string, len(rows))
	for i, s := range rows {
		ids[i], parties[i] = s.ID, refID(s.ToParty)
	}
	prefetch(ctx, map[string]func(){
		"lines":     func() { startLoads(ctx, l.ShipmentLinesByShipment, ids) },
		"recipient": func() { startLoads(ctx, l.PartyByID, parties) },
		"customer":  func() { startLoads(ctx, l.CustomerByParty, parties) },
	})
}

// prefetchParties starts loading the parties of a list of customers when the operation selects them.
func prefetchParties(ctx context.Context, customers []*erpclient.Customer) {
	if !slices.Contains(requestFrom(ctx).Select(ctx, erpclient.SetCustomers), "Party") {
		return
	}
	ids := make([]string, len(customers))
	for i, c := range customers {
		ids[i] = refID(c.Party)
	}
	startLoads(ctx, loader.For(ctx).PartyByID, ids)
}
