package loader

import (
	"context"
	"slices"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/erpclient"
)

// Reference data is the same for every user, so it is read with complete, fixed selections (whatever the
// operation selected): one shape that the synchronized copy and erpclient's read cache serve to everyone.
var (
	productProps  = []string{"PartNumber", "Name", "Description", "Active", "MeasurementUnit", "ProductGroup", "StandardPricePerLot"}
	namedProps    = []string{"Code", "Name"}
	currencyProps = []string{"CurrencySign", "Name"}
	balanceProps  = []string{"Product", "Store", "QuantityBase"}
)

// RefSource answers reference rows from a synchronized copy of their set (erpclient.Sync keeps one fresh in the
// background). ok is false while the set is not synchronized; the loader then reads ERP.net through erpclient,
// whose read cache serves repeated reads.
type RefSource interface {
	Lookup(set, id string) (row any, found, ok bool)
}

// refByIDs is byIDs for reference data: rows of a synchronized set are answered from the copy without a query,
// the rest are read with the fixed selection props. The access post-check runs on both.
func refByIDs[T any](b *batcher, set string, props []string, id func(*T) string) dataloader.BatchFunc[string, *T] {
	return traced(set, func(ctx context.Context, keys []string) []*dataloader.Result[*T] {
		scope, err := b.Scope(ctx)
		if err != nil {
			return fail[*T](len(keys), err)
		}
		found := make(map[string]*T, len(keys))
		missing := keys
		if f, err := scope.ScopeFilter(set); err == nil && f == nil && b.Ref != nil {
			missing = nil
			for _, k := range keys {
				row, ok, synced := b.Ref.Lookup(set, k)
				switch {
				case !synced:
					missing = append(missing, k)
				case ok:
					found[k] = row.(*T)
				}
			}
		}
		if len(missing) > 0 {
			q := erpclient.Query{Set: set, Select: props}
			scope.Apply(&q)
			rows, err := erpclient.ByIDs[T](ctx, b.ERP, q, missing)
			if err != nil && !noAccess(err) {
				return fail[*T](len(keys), err)
			}
			for i := range rows {
				r := &rows[i]
				found[id(r)] = r
			}
		}
		for k, r := range found {
			if scope.Check(set, r) != nil {
				delete(found, k)
			}
		}
		return inKeyOrder(set, keys, found)
	})
}

// stockByProduct reads the current balances of the products (keys) with one `Product in (...)` query (stock
// changes all day: erpclient's read cache keeps it for the document TTL).
func (b *batcher) stockByProduct(ctx context.Context, keys []string) []*dataloader.Result[[]*erpclient.CurrentBalance] {
	type balances = []*erpclient.CurrentBalance
	scope, err := b.Scope(ctx)
	if err != nil {
		return fail[balances](len(keys), err)
	}
	found := make(map[string]balances, len(keys))
	if missing := keys; len(missing) > 0 {
		q := erpclient.Query{Set: erpclient.SetCurrentBalances, Select: balanceProps}
		scope.Apply(&q)
		rows, err := allByRefs[erpclient.CurrentBalance](ctx, b, q, "Product", erpclient.SetProducts, missing)
		if err != nil && !noAccess(err) {
			return fail[balances](len(keys), err)
		}
		for i := range rows {
			r := &rows[i]
			if scope.Check(erpclient.SetCurrentBalances, r) == nil {
				p := refID(r.Product)
				found[p] = append(found[p], r)
			}
		}
		for _, k := range missing {
			if found[k] == nil {
				found[k] = balances{}
			}
		}
	}
	out := make([]*dataloader.Result[balances], len(keys))
	for i, k := range keys {
		if scope.Empty() {
			found[k] = balances{}
		}
		out[i] = &dataloader.Result[balances]{Data: found[k]}
	}
	return out
}

// ProductProps are the properties products are always read with (lists and loaders share the cache's shape).
func ProductProps() []string { return slices.Clone(productProps) }

// SyncSets are the reference sets the loaders can answer from a synchronized copy, read with the same fixed
// properties as the loaders read them.
func SyncSets() []erpclient.SyncSet {
	return []erpclient.SyncSet{
		erpclient.SyncOf(erpclient.SetProducts, productProps, func(e *erpclient.Product) string { return e.ID }),
		erpclient.SyncOf(erpclient.SetProductGroups, namedProps, func(e *erpclient.ProductGroup) string { return e.ID }),
		erpclient.SyncOf(erpclient.SetMeasurementUnits, namedProps, func(e *erpclient.MeasurementUnit) string { return e.ID }),
		erpclient.SyncOf(erpclient.SetCurrencies, currencyProps, func(e *erpclient.Currency) string { return e.ID }),
		erpclient.SyncOf(erpclient.SetStores, namedProps, func(e *erpclient.Store) string { return e.ID }),
	}
}
