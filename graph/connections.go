package graph

import (
	"context"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/loader"
	"github.com/erpgraph/erpgraph/graph/model"
)

// Root lists: validated arguments → list → connection model.

func edges[M, E any](nodes []*M, cursors []string, edge func(cursor string, node *M) *E) []*E {
	out := make([]*E, len(nodes))
	for i, n := range nodes {
		out[i] = edge(cursors[i], n)
	}
	return out
}

// prime stores the rows of a root list in the request's loader, so that nested fields that reach the same
// entities (a line's order, for its prices) do not read them again. The rows passed the same access check.
func prime[T any](ctx context.Context, ld *dataloader.Loader[string, *T], items []*T, id func(*T) string) {
	for _, it := range items {
		ld.Prime(ctx, id(it), it)
	}
}

func docKeyOf(e erpclient.Entity, d erpclient.Document) docKey {
	k := docKey{date: d.DocumentDate.Time(), no: d.DocumentNo, id: e.ID}
	if d.CreationTime != nil {
		k.created = d.CreationTime.Time()
	}
	return k
}

func (r *Resolver) salesOrders(ctx context.Context, first *int, after *string, f *model.SalesOrderFilter, o *model.DocumentOrder) (*model.SalesOrderConnection, error) {
	q, err := salesOrderQuery(f, o)
	if err != nil {
		return nil, err
	}
	q.first, q.after, q.expand = first, after, nestedOnNodes(ctx, "SalesOrder")
	p, rows, err := list(ctx, r.erp, q, (*loader.SalesOrderRow).Flat, func(e *erpclient.SalesOrder) string { return e.ID },
		func(e *erpclient.SalesOrder) docKey { return docKeyOf(e.Entity, e.Document) })
	if err != nil {
		return nil, err
	}
	l := loader.For(ctx)
	prime(ctx, l.SalesOrderByID, p.items, func(e *erpclient.SalesOrder) string { return e.ID })
	if s, err := scope(ctx); err == nil {
		l.PrimeSalesOrders(ctx, s, rows, p.items, loader.NestedOf(q.expand))
	}
	prefetchSalesOrders(ctx, p.items)
	nodes, info := connection(p, toSalesOrder)
	return &model.SalesOrderConnection{Nodes: nodes, PageInfo: info, TotalCount: p.total,
		Edges: edges(nodes, p.cursors, func(c string, n *model.SalesOrder) *model.SalesOrderEdge {
			return &model.SalesOrderEdge{Cursor: c, Node: n}
		})}, nil
}

func (r *Resolver) invoices(ctx context.Context, first *int, after *string, f *model.InvoiceFilter, o *model.DocumentOrder) (*model.InvoiceConnection, error) {
	q, err := invoiceQuery(f, o)
	if err != nil {
		return nil, err
	}
	q.first, q.after, q.expand = first, after, nestedOnNodes(ctx, "Invoice")
	p, rows, err := list(ctx, r.erp, q, (*loader.InvoiceRow).Flat, func(e *erpclient.Invoice) string { return e.ID },
		func(e *erpclient.Invoice) docKey { return docKeyOf(e.Entity, e.Document) })
	if err != nil {
		return nil, err
	}
	l := loader.For(ctx)
	prime(ctx, l.InvoiceByID, p.items, func(e *erpclient.Invoice) string { return e.ID })
	if s, err := scope(ctx); err == nil {
		l.PrimeInvoices(ctx, s, rows, p.items, loader.NestedOf(q.expand))
	}
	prefetchInvoices(ctx, p.items)
	nodes, info := connection(p, toInvoice)
	return &model.InvoiceConnection{Nodes: nodes, PageInfo: info, TotalCount: p.total,
		Edges: edges(nodes, p.cursors, func(c string, n *model.Invoice) *model.InvoiceEdge {
			return &model.InvoiceEdge{Cursor: c, Node: n}
		})}, nil
}

func (r *Resolver) shipments(ctx context.Context, first *int, after *string, f *model.ShipmentFilter, o *model.DocumentOrder) (*model.ShipmentConnection, error) {
	q, err := shipmentQuery(ctx, f, o)
	if err != nil {
		return nil, err
	}
	q.first, q.after, q.expand = first, after, nestedOnNodes(ctx, "Shipment")
	p, rows, err := list(ctx, r.erp, q, (*loader.ShipmentRow).Flat, func(e *erpclient.Shipment) string { return e.ID },
		func(e *erpclient.Shipment) docKey { return docKeyOf(e.Entity, e.Document) })
	if err != nil {
		return nil, err
	}
	l := loader.For(ctx)
	prime(ctx, l.ShipmentByID, p.items, func(e *erpclient.Shipment) string { return e.ID })
	if s, err := scope(ctx); err == nil {
		l.PrimeShipments(ctx, s, rows, p.items, loader.NestedOf(q.expand))
	}
	prefetchShipments(ctx, p.items)
	nodes, info := connection(p, toShipment)
	return &model.ShipmentConnection{Nodes: nodes, PageInfo: info, TotalCount: p.total,
		Edges: edges(nodes, p.cursors, func(c string, n *model.Shipment) *model.ShipmentEdge {
			return &model.ShipmentEdge{Cursor: c, Node: n}
		})}, nil
}

func (r *Resolver) customers(ctx context.Context, first *int, after *string, f *model.CustomerFilter) (*model.CustomerConnection, error) {
	q, err := customerQuery(f)
	if err != nil {
		return nil, err
	}
	q.first, q.after, q.expand = first, after, nestedOnNodes(ctx, "Customer")
	p, rows, err := list(ctx, r.erp, q, (*loader.CustomerRow).Flat, func(e *erpclient.Customer) string { return e.ID }, nil)
	if err != nil {
		return nil, err
	}
	l := loader.For(ctx)
	prime(ctx, l.CustomerByID, p.items, func(e *erpclient.Customer) string { return e.ID })
	if s, err := scope(ctx); err == nil {
		l.PrimeCustomers(ctx, s, rows, loader.NestedOf(q.expand))
	}
	prefetchParties(ctx, p.items)
	nodes, info := connection(p, toCustomer)
	return &model.CustomerConnection{Nodes: nodes, PageInfo: info, TotalCount: p.total,
		Edges: edges(nodes, p.cursors, func(c string, n *model.Customer) *model.CustomerEdge {
			return &model.CustomerEdge{Cursor: c, Node: n}
		})}, nil
}

func (r *Resolver) products(ctx context.Context, first *int, after *string, f *model.ProductFilter, o *model.ProductOrder) (*model.ProductConnection, error) {
	q, err := productQuery(f, o)
	if err != nil {
		return nil, err
	}
	q.first, q.after, q.selectProps = first, after, loader.ProductProps()
	p, _, err := list(ctx, r.erp, q, same[erpclient.Product], func(e *erpclient.Product) string { return e.ID }, nil)
	if err != nil {
		return nil, err
	}
	prime(ctx, loader.For(ctx).ProductByID, p.items, func(e *erpclient.Product) string { return e.ID })
	nodes, info := connection(p, toProduct)
	return &model.ProductConnection{Nodes: nodes, PageInfo: info, TotalCount: p.total,
		Edges: edges(nodes, p.cursors, func(c string, n *model.Product) *model.ProductEdge {
			return &model.ProductEdge{Cursor: c, Node: n}
		})}, nil
}
