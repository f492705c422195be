package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/erpgraph/erpgraph/erpclient"
)

// Reads are planned from the whole selection: the to-one references and child lines that an operation selects on
// a root list's nodes are read inside the list's own read, with $expand and a nested $select, in ERP.net's
// dialect; the loaders are primed with what passes the access post-check (loader.Nested). What cannot nest
// (reverse relations such as an order's invoices) stays with the loaders, which batch it per level.

// nesting is a relation that can be expanded into its parent's read.
type nesting struct {
	field string // GraphQL field of the parent type
	prop  string // ERP.net navigation property
	set   string // the target's entity set
	typ   string // the target's GraphQL type (for what nests below it)
	// also are properties the parent field reads on the target besides those of its selection (a customer's
	// name is its party's name)
	also []string
}

// productNesting selects what the operation selects on products anywhere: the products it primes serve only this
// operation (the loader and the products list read them whole for the shared reference cache).
var productNesting = nesting{field: "product", prop: "Product", set: erpclient.SetProducts, typ: "Product"}

// nestings are, per GraphQL parent type, the relations that nest. Each must have a primer in graph/loader.
var nestings = map[string][]nesting{
	"SalesOrder": {
		{field: "customer", prop: "Customer", set: erpclient.SetCustomers, typ: "Customer"},
		{field: "lines", prop: "Lines", set: erpclient.SetSalesOrderLines, typ: "SalesOrderLine"},
	},
	"Invoice": {
		{field: "customer", prop: "Customer", set: erpclient.SetCustomers, typ: "Customer"},
		{field: "lines", prop: "Lines", set: erpclient.SetInvoiceLines, typ: "InvoiceLine"},
	},
	"Shipment": {
		{field: "lines", prop: "Lines", set: erpclient.SetShipmentLines, typ: "ShipmentLine"},
	},
	"Customer": {
		{field: "party", prop: "Party", set: erpclient.SetParties, typ: "Party"},
		{field: "name", prop: "Party", set: erpclient.SetParties, typ: "Party", also: []string{"PartyName"}},
	},
	"SalesOrderLine": {productNesting},
	"InvoiceLine":    {productNesting},
	"ShipmentLine":   {productNesting},
}

// nestedOnNodes returns the expansions for the relations the operation selects on the nodes of the connection
// being resolved (a root list of GraphQL type typ).
func nestedOnNodes(ctx context.Context, typ string) []erpclient.Expand {
	if !graphql.HasOperationContext(ctx) {
		return nil
	}
	var fields []graphql.CollectedField
	for _, f := range selectedOnNodes(ctx) {
		fields = append(fields, f...)
	}
	return expandsFor(ctx, graphql.GetOperationContext(ctx), typ, fields)
}

// expandsFor returns the expansions of the relations of typ that fields select, each with its nested $select
// and, recursively, its own nested relations.
func expandsFor(ctx context.Context, oc *graphql.OperationContext, typ string, fields []graphql.CollectedField) []erpclient.Expand {
	var out []erpclient.Expand
	at := map[string]int{} // index in out by navigation property: customer { party } and customer { name } share one
	rq := requestFrom(ctx)
	for _, n := range nestings[typ] {
		var sub []graphql.CollectedField
		found := false
		for _, f := range fields {
			if f.Name == n.field {
				found = true
				sub = append(sub, graphql.CollectFields(oc, f.Selections, nil)...)
			}
		}
		if !found {
			continue
		}
		i, ok := at[n.prop]
		if !ok {
			out = append(out, erpclient.Expand{Prop: n.prop, Select: rq.Select(ctx, n.set)})
			i = len(out) - 1
			at[n.prop] = i
		}
		for _, p := range n.also {
			out[i].Select = appendNew(out[i].Select, p)
		}
		for _, e := range expandsFor(ctx, oc, n.typ, sub) {
			if !hasExpand(out[i].Expand, e.Prop) {
				out[i].Expand = append(out[i].Expand, e)
			}
		}
	}
	return out
}

func hasExpand(es []erpclient.Expand, prop string) bool {
	for _, e := range es {
		if e.Prop == prop {
			return true
		}
	}
	return false
}

func appendNew(list []string, v string) []string {
	for _, have := range list {
		if have == v {
			return list
		}
	}
	return append(list, v)
}
