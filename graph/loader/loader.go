// Package loader holds erpgraph's per-request dataloaders: one batched, access-checked ERP.net query per entity
// set per level of a GraphQL operation, whatever the list sizes. A Loaders value is built for every request by
// graph's HTTP middleware and read with For.
package loader

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
)

// ErrNotFound is the per-key error of an entity that does not exist or that the user may not see; it matches
// erpclient.ErrNotFound so that one presenter maps both to NOT_FOUND.
var ErrNotFound = fmt.Errorf("loader: %w", erpclient.ErrNotFound)

// ErrNoUser is returned by Loaders.Scope for a request without a signed-in user.
var ErrNoUser = fmt.Errorf("loader: no signed-in user: %w", auth.ErrUnauthenticated)

// Selector gives the properties of set that the current operation needs, besides Id (the graph package derives
// them from the operation's selection sets).
type Selector func(ctx context.Context, set string) []string

// Config holds what every request's loaders share.
type Config struct {
	ERP    *erpclient.Client
	Access *access.Resolver
	Select Selector
	Ref    *RefCache // reference data shared across requests; nil disables it
	// Wait is how long a loader collects keys before it queries; default 5 ms. gqlgen resolves the elements of a
	// list concurrently, so the keys of one level arrive within microseconds of each other.
	Wait time.Duration
}

// maxBatch bounds the keys of one upstream query, so that the `Id in (...)` filter of a batch stays a safe URL.
const maxBatch = 100

// Request holds the facts of one HTTP request that resolvers need.
type Request struct {
	User      *auth.User // the verified user; nil for anonymous requests
	Languages []string   // preferred languages from Accept-Language, best first (ISO 639-1 codes)
	RequestID string     // the request ID for logs and error extensions
}

// Loaders are the dataloaders and request facts of one request.
type Loaders struct {
	cfg Config
	req Request

	scopeOnce sync.Once
	scope     *access.Scope
	scopeErr  error

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

// New builds the loaders of one request.
func New(cfg Config, req Request) *Loaders {
	if cfg.Wait == 0 {
		cfg.Wait = 5 * time.Millisecond
	}
	l := &Loaders{cfg: cfg, req: req}
	l.SalesOrderByID = newLoader(cfg, byIDs(l, erpclient.SetSalesOrders, func(e *erpclient.SalesOrder) string { return e.ID }))
	l.InvoiceByID = newLoader(cfg, byIDs(l, erpclient.SetInvoices, func(e *erpclient.Invoice) string { return e.ID }))
	l.ShipmentByID = newLoader(cfg, byIDs(l, erpclient.SetShipments, func(e *erpclient.Shipment) string { return e.ID }))
	l.CustomerByID = newLoader(cfg, byIDs(l, erpclient.SetCustomers, func(e *erpclient.Customer) string { return e.ID }, l.PrefetchParties))
	l.CustomerByParty = newLoader(cfg, byRef(l, erpclient.SetCustomers, "Party", erpclient.SetParties,
		func(e *erpclient.Customer) string { return refID(e.Party) }))
	l.PartyByID = newLoader(cfg, byIDs(l, erpclient.SetParties, func(e *erpclient.Party) string { return e.ID }))
	l.SalesOrderLineByID = newLoader(cfg, byIDs(l, erpclient.SetSalesOrderLines, func(e *erpclient.SalesOrderLine) string { return e.ID }))
	l.InvoiceLineByID = newLoader(cfg, byIDs(l, erpclient.SetInvoiceLines, func(e *erpclient.InvoiceLine) string { return e.ID }))
	l.ShipmentLineByID = newLoader(cfg, byIDs(l, erpclient.SetShipmentLines, func(e *erpclient.ShipmentLine) string { return e.ID }))

	l.SalesOrderLinesByOrder = newLoader(cfg, childrenOf(l, erpclient.SetSalesOrderLines, "SalesOrder", erpclient.SetSalesOrders,
		func(e *erpclient.SalesOrderLine) (string, int) { return refID(e.SalesOrder), e.LineNo }))
	l.InvoiceLinesByInvoice = newLoader(cfg, childrenOf(l, erpclient.SetInvoiceLines, "Invoice", erpclient.SetInvoices,
		func(e *erpclient.InvoiceLine) (string, int) { return refID(e.Invoice), e.LineNo }))
	l.ShipmentLinesByShipment = newLoader(cfg, childrenOf(l, erpclient.SetShipmentLines, "Shipment", erpclient.SetShipments,
		func(e *erpclient.ShipmentLine) (string, int) { return refID(e.Shipment), e.LineNo }))
	l.InvoicesBySalesOrder = newLoader(cfg, l.invoicesBySalesOrder)

	l.ProductByID = newLoader(cfg, refByIDs(l, erpclient.SetProducts, productProps, func(e *erpclient.Product) string { return e.ID }))
	l.ProductGroupByID = newLoader(cfg, refByIDs(l, erpclient.SetProductGroups, namedProps, func(e *erpclient.ProductGroup) string { return e.ID }))
	l.MeasurementUnitByID = newLoader(cfg, refByIDs(l, erpclient.SetMeasurementUnits, namedProps, func(e *erpclient.MeasurementUnit) string { return e.ID }))
	l.CurrencyByID = newLoader(cfg, refByIDs(l, erpclient.SetCurrencies, currencyProps, func(e *erpclient.Currency) string { return e.ID }))
	l.StoreByID = newLoader(cfg, refByIDs(l, erpclient.SetStores, namedProps, func(e *erpclient.Store) string { return e.ID }))
	l.StockByProduct = newLoader(cfg, l.stockByProduct)
	return l
}

func newLoader[V any](cfg Config, fn dataloader.BatchFunc[string, V]) *dataloader.Loader[string, V] {
	return dataloader.NewBatchedLoader(fn, dataloader.WithWait[string, V](cfg.Wait), dataloader.WithBatchCapacity[string, V](maxBatch))
}

// User is the request's signed-in user, or nil.
func (l *Loaders) User() *auth.User { return l.req.User }

// Languages are the request's preferred languages (from Accept-Language), best first.
func (l *Loaders) Languages() []string { return l.req.Languages }

// RequestID is the request's ID.
func (l *Loaders) RequestID() string { return l.req.RequestID }

// Scope resolves the user's access scope once per request.
func (l *Loaders) Scope(ctx context.Context) (*access.Scope, error) {
	l.scopeOnce.Do(func() {
		if l.req.User == nil {
			l.scopeErr = ErrNoUser
			return
		}
		l.scope, l.scopeErr = l.cfg.Access.Scope(ctx, l.req.User)
	})
	return l.scope, l.scopeErr
}

// ERP is the ERP.net client, for root lists that the graph package queries itself.
func (l *Loaders) ERP() *erpclient.Client { return l.cfg.ERP }

// priceProps are the properties only roles with prices may see, per set.
var priceProps = map[string][]string{
	erpclient.SetSalesOrderLines: {"UnitPrice", "LineAmount", "LineCustomDiscountPercent"},
	erpclient.SetCustomers:       {"CreditLimit"},
}

// Select returns the properties of set that the operation needs, plus those access checks read. Prices are not
// even read for users none of whose roles include them.
func (l *Loaders) Select(ctx context.Context, set string) []string {
	var props []string
	if l.cfg.Select != nil {
		props = slices.Clone(l.cfg.Select(ctx, set))
	}
	if hidden := priceProps[set]; len(hidden) > 0 {
		if s, err := l.Scope(ctx); err == nil && !s.AllowsAny(access.ViewPrices) {
			props = slices.DeleteFunc(props, func(p string) bool { return slices.Contains(hidden, p) })
		}
	}
	return appendUnique(props, access.CheckProps(set)...)
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
