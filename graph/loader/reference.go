package loader

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/erpclient"
)

// Reference data is the same for every user, so it is read with complete, fixed selections (whatever the
// operation selected) and cached briefly across requests.
var (
	productProps  = []string{"PartNumber", "Name", "Description", "Active", "MeasurementUnit", "ProductGroup", "StandardPricePerLot"}
	namedProps    = []string{"Code", "Name"}
	currencyProps = []string{"CurrencySign", "Name"}
	balanceProps  = []string{"Product", "Store", "QuantityBase"}
)

// RefCache caches reference data (products, groups, units, currencies, stores, stock) across requests for a short
// time. It is safe for concurrent use.
type RefCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[refKey]refEntry
}

type refKey struct{ set, id string }

type refEntry struct {
	v       any
	expires time.Time
}

// maxRefEntries bounds the cache; when full, expired entries are swept, then everything.
const maxRefEntries = 50000

// NewRefCache returns a cache that keeps entries for ttl (ttl <= 0: nothing is cached).
func NewRefCache(ttl time.Duration, now func() time.Time) *RefCache {
	if now == nil {
		now = time.Now
	}
	return &RefCache{ttl: ttl, now: now, entries: map[refKey]refEntry{}}
}

func (c *RefCache) get(set, id string) (any, bool) {
	if c == nil || c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[refKey{set, id}]
	if !ok || !c.now().Before(e.expires) {
		return nil, false
	}
	return e.v, true
}

func (c *RefCache) put(set, id string, v any) {
	if c == nil || c.ttl <= 0 {
		return
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxRefEntries {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxRefEntries {
			clear(c.entries)
		}
	}
	c.entries[refKey{set, id}] = refEntry{v: v, expires: now.Add(c.ttl)}
}

// refByIDs is byIDs for reference data: cached rows are answered without a query, the rest are read with the
// fixed selection props.
func refByIDs[T any](b *batcher, set string, props []string, id func(*T) string) dataloader.BatchFunc[string, *T] {
	return func(ctx context.Context, keys []string) []*dataloader.Result[*T] {
		scope, err := b.Scope(ctx)
		if err != nil {
			return fail[*T](len(keys), err)
		}
		found := make(map[string]*T, len(keys))
		var missing []string
		for _, k := range keys {
			if v, ok := b.Ref.get(set, k); ok {
				found[k] = v.(*T)
			} else {
				missing = append(missing, k)
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
				b.Ref.put(set, id(r), r)
			}
		}
		for k, r := range found {
			if scope.Check(set, r) != nil {
				delete(found, k)
			}
		}
		return inKeyOrder(set, keys, found)
	}
}

// stockByProduct reads the current balances of the products (keys) with one `Product in (...)` query; cached
// per product briefly like other reference data.
func (b *batcher) stockByProduct(ctx context.Context, keys []string) []*dataloader.Result[[]*erpclient.CurrentBalance] {
	type balances = []*erpclient.CurrentBalance
	scope, err := b.Scope(ctx)
	if err != nil {
		return fail[balances](len(keys), err)
	}
	found := make(map[string]balances, len(keys))
	var missing []string
	for _, k := range keys {
		if v, ok := b.Ref.get(erpclient.SetCurrentBalances, k); ok {
			found[k] = v.(balances)
		} else {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
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
			b.Ref.put(erpclient.SetCurrentBalances, k, found[k])
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
