// Package loader holds erpgraph's per-request dataloaders: one batched, access-checked ERP.net query per entity
// set per level of a GraphQL operation, whatever the list sizes. A Loaders value is built for every request by
// graph's HTTP middleware and read with For.
package loader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
)

// ErrNotFound is the per-key error of an entity that does not exist or that the user may not see; it matches
// erpclient.ErrNotFound so that one presenter maps both to NOT_FOUND.
var ErrNotFound = fmt.Errorf("loader: %w", erpclient.ErrNotFound)

// Selector gives the properties of set that the current operation needs besides Id, including those the access
// post-check reads, and without prices the user may not see (the graph package derives them from the operation's
// selection sets and the user's roles).
type Selector func(ctx context.Context, set string) []string

// Deps are what the batch functions of one request's loaders read with; the Loaders value itself holds only the
// loaders.
type Deps struct {
	ERP *erpclient.Client
	// Scope is the signed-in user's access scope (resolved once per request by the caller): every query carries
	// its mandatory filters and every row passes its post-check.
	Scope  func(ctx context.Context) (*access.Scope, error)
	Select Selector
	Ref    RefSource // synchronized reference data (erpclient.Sync); nil: always read ERP.net
	// Wait is how long a loader collects keys before it queries; default 5 ms. gqlgen resolves the elements of a
	// list concurrently, so the keys of one level arrive within microseconds of each other.
	Wait time.Duration
}

// maxBatch bounds the keys of one upstream query, so that the `Id in (...)` filter of a batch stays a safe URL.
const maxBatch = 100

// Loaders are the dataloaders of one request.
type Loaders struct {
	SalesOrderByID     *dataloader.Loader[string, *erpclient.SalesOrder]
	InvoiceByID        *dataloader.Loader[string, *erpclient.Invoice]
	ShipmentByID       *dataloader.Loader[string, *erpclient.Shipment]
	CustomerByID       *dataloader.Loader[string, *erpclient.Customer]
	CustomerByParty    *dataloader.Loader[string, *erpclient.Customer]
	PartyByID          *dataloader.Loader[string, *erpclient.Party]
	SalesOrderLineByID *dataloader.Loader[string, *erpclient.SalesOrderLine]
	InvoiceLineByID    *dataloader.Loader[string, *erpclient.InvoiceLine]
	ShipmentLineByID   *dataloader.Loader[string, *erpclient.ShipmentLine]

	SalesOrderLinesByOrder  *dataloader.Loader[string, []*erpclient.SalesOrderLine]
	InvoiceLinesByInvoice   *dataloader.Loader[string, []*erpclient.InvoiceLine]
	ShipmentLinesByShipment *dataloader.Loader[string, []*erpclient.ShipmentLine]
	InvoicesBySalesOrder    *dataloader.Loader[string, []*erpclient.Invoice]
	StockByProduct          *dataloader.Loader[string, []*erpclient.CurrentBalance]
	ProductByID             *dataloader.Loader[string, *erpclient.Product]
	ProductGroupByID        *dataloader.Loader[string, *erpclient.ProductGroup]
	MeasurementUnitByID     *dataloader.Loader[string, *erpclient.MeasurementUnit]
	CurrencyByID            *dataloader.Loader[string, *erpclient.Currency]
	StoreByID               *dataloader.Loader[string, *erpclient.Store]
}

// batcher is what the batch functions close over: the request's dependencies and its loaders (a batch primes the
// loaders of the entities it read along the way).
type batcher struct {
	Deps
	l *Loaders
}

// New builds the loaders of one request.
func New(deps Deps) *Loaders {
	if deps.Wait == 0 {
		deps.Wait = 5 * time.Millisecond
	}
	l := &Loaders{}
	b := &batcher{Deps: deps, l: l}
	w := deps.Wait
	l.SalesOrderByID = newLoader(w, byIDs(b, erpclient.SetSalesOrders, func(e *erpclient.SalesOrder) string { return e.ID }))
	l.InvoiceByID = newLoader(w, byIDs(b, erpclient.SetInvoices, func(e *erpclient.Invoice) string { return e.ID }))
	l.ShipmentByID = newLoader(w, byIDs(b, erpclient.SetShipments, func(e *erpclient.Shipment) string { return e.ID }))
	l.CustomerByID = newLoader(w, byIDs(b, erpclient.SetCustomers, func(e *erpclient.Customer) string { return e.ID }, b.prefetchParties))
	l.CustomerByParty = newLoader(w, byRef(b, erpclient.SetCustomers, "Party", erpclient.SetParties,
		func(e *erpclient.Customer) string { return refID(e.Party) }))
	l.PartyByID = newLoader(w, byIDs(b, erpclient.SetParties, func(e *erpclient.Party) string { return e.ID }))
	l.SalesOrderLineByID = newLoader(w, byIDs(b, erpclient.SetSalesOrderLines, func(e *erpclient.SalesOrderLine) string { return e.ID }))
	l.InvoiceLineByID = newLoader(w, byIDs(b, erpclient.SetInvoiceLines, func(e *erpclient.InvoiceLine) string { return e.ID }))
	l.ShipmentLineByID = newLoader(w, byIDs(b, erpclient.SetShipmentLines, func(e *erpclient.ShipmentLine) string { return e.ID }))

	l.SalesOrderLinesByOrder = newLoader(w, childrenOf(b, erpclient.SetSalesOrderLines, "SalesOrder", erpclient.SetSalesOrders,
		func(e *erpclient.SalesOrderLine) (string, int) { return refID(e.SalesOrder), e.LineNo }, splitOrderLine))
	l.InvoiceLinesByInvoice = newLoader(w, childrenOf(b, erpclient.SetInvoiceLines, "Invoice", erpclient.SetInvoices,
		func(e *erpclient.InvoiceLine) (string, int) { return refID(e.Invoice), e.LineNo }, splitInvoiceLine))
	l.ShipmentLinesByShipment = newLoader(w, childrenOf(b, erpclient.SetShipmentLines, "Shipment", erpclient.SetShipments,
		func(e *erpclient.ShipmentLine) (string, int) { return refID(e.Shipment), e.LineNo }, splitShipmentLine))
	l.InvoicesBySalesOrder = newLoader(w, traced(erpclient.SetInvoiceLines, b.invoicesBySalesOrder))

	l.ProductByID = newLoader(w, refByIDs(b, erpclient.SetProducts, productProps, func(e *erpclient.Product) string { return e.ID }))
	l.ProductGroupByID = newLoader(w, refByIDs(b, erpclient.SetProductGroups, namedProps, func(e *erpclient.ProductGroup) string { return e.ID }))
	l.MeasurementUnitByID = newLoader(w, refByIDs(b, erpclient.SetMeasurementUnits, namedProps, func(e *erpclient.MeasurementUnit) string { return e.ID }))
	l.CurrencyByID = newLoader(w, refByIDs(b, erpclient.SetCurrencies, currencyProps, func(e *erpclient.Currency) string { return e.ID }))
	l.StoreByID = newLoader(w, refByIDs(b, erpclient.SetStores, namedProps, func(e *erpclient.Store) string { return e.ID }))
	l.StockByProduct = newLoader(w, traced(erpclient.SetCurrentBalances, b.stockByProduct))
	return l
}

func newLoader[V any](wait time.Duration, fn dataloader.BatchFunc[string, V]) *dataloader.Loader[string, V] {
	return dataloader.NewBatchedLoader(fn, dataloader.WithWait[string, V](wait), dataloader.WithBatchCapacity[string, V](maxBatch))
}

type ctxKey struct{}

// NewContext returns ctx carrying l.
func NewContext(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// For returns the request's loaders. It panics when the middleware did not install them: that is a wiring bug
// that every test would hit, not a request condition.
func For(ctx context.Context) *Loaders {
	l, ok := Lookup(ctx)
	if !ok {
		panic("loader: no loaders in context; wrap the handler with the loader middleware")
	}
	return l
}

// Lookup returns the request's loaders, if the middleware installed them.
func Lookup(ctx context.Context) (*Loaders, bool) {
	l, ok := ctx.Value(ctxKey{}).(*Loaders)
	return l, ok
}

func refID(r *erpclient.Ref) string {
	if r == nil {
		return ""
	}
	return r.ID
}

func appendUnique(dst []string, add ...string) []string {
	for _, a := range add {
		dup := false
		for _, d := range dst {
			if d == a {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, a)
		}
	}
	return dst
}

// notFound is the per-key error for id of set.
func notFound(set, id string) error {
	return fmt.Errorf("%w: %s(%s)", ErrNotFound, set, id)
}

// noAccess reports whether err says the scope cannot see the set at all.
func noAccess(err error) bool { return errors.Is(err, access.ErrNoAccess) }

// fail returns n results that all carry err.
func fail[V any](n int, err error) []*dataloader.Result[V] {
	out := make([]*dataloader.Result[V], n)
	for i := range out {
		out[i] = &dataloader.Result[V]{Error: err}
	}
	return out
}
