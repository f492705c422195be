package loader

import (
	"context"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/erpclient"
)

// byIDs returns a batch function that reads set by `Id in (...)` under the user's scope, checks every row, and
// answers in key order with a per-key NOT_FOUND for rows that are missing or not visible. then, when given, runs
// on the visible rows before any caller sees them (to start the next level's loads with every key at once).
func byIDs[T any](b *batcher, set string, id func(*T) string, then ...func(context.Context, []*T)) dataloader.BatchFunc[string, *T] {
	return traced(set, func(ctx context.Context, keys []string) []*dataloader.Result[*T] {
		scope, err := b.Scope(ctx)
		if err != nil {
			return fail[*T](len(keys), err)
		}
		q := erpclient.Query{Set: set, Select: b.Select(ctx, set)}
		scope.Apply(&q)
		rows, err := erpclient.ByIDs[T](ctx, b.ERP, q, keys)
		if err != nil && !noAccess(err) {
			return fail[*T](len(keys), err)
		}
		found := make(map[string]*T, len(rows))
		visible := make([]*T, 0, len(rows))
		for i := range rows {
			r := &rows[i]
			if scope.Check(set, r) == nil {
				found[id(r)] = r
				visible = append(visible, r)
			}
		}
		for _, f := range then {
			f(ctx, visible)
		}
		return inKeyOrder(set, keys, found)
	})
}

// Start issues Load for every key without waiting, one after the other on this goroutine, so that all keys join
// the loader's current batch (LoadMany spreads them over goroutines, which can straddle two batches).
func Start[V any](ctx context.Context, ld *dataloader.Loader[string, V], keys []string) []dataloader.Thunk[V] {
	seen := make(map[string]bool, len(keys))
	thunks := make([]dataloader.Thunk[V], 0, len(keys))
	for _, k := range keys {
		if k != "" && !seen[k] {
			seen[k] = true
			thunks = append(thunks, ld.Load(ctx, k))
		}
	}
	return thunks
}

// prefetchParties starts loading the parties of customers when the operation selects them, before anyone asks
// for one: customers resolve concurrently, and their party loads would otherwise straddle batches.
func (b *batcher) prefetchParties(ctx context.Context, customers []*erpclient.Customer) {
	if !slices.Contains(b.Select(ctx, erpclient.SetCustomers), "Party") {
		return
	}
	ids := make([]string, 0, len(customers))
	for _, c := range customers {
		ids = append(ids, refID(c.Party))
	}
	Start(ctx, b.l.PartyByID, ids)
}

// byRef returns a batch function that reads set by `prop in ('refSet(key)', ...)`: one row per key (the first
// visible one), for references that point the other way (a party's customer).
func byRef[T any](b *batcher, set, prop, refSet string, key func(*T) string) dataloader.BatchFunc[string, *T] {
	return traced(set, func(ctx context.Context, keys []string) []*dataloader.Result[*T] {
		scope, err := b.Scope(ctx)
		if err != nil {
			return fail[*T](len(keys), err)
		}
		q := erpclient.Query{Set: set, Select: appendUnique(b.Select(ctx, set), prop)}
		scope.Apply(&q)
		rows, err := allByRefs[T](ctx, b, q, prop, refSet, keys)
		if err != nil && !noAccess(err) {
			return fail[*T](len(keys), err)
		}
		found := make(map[string]*T, len(rows))
		for i := range rows {
			r := &rows[i]
			if _, dup := found[key(r)]; !dup && scope.Check(set, r) == nil {
				found[key(r)] = r
			}
		}
		return inKeyOrder(set, keys, found)
	})
}

// childrenOf returns a batch function that reads the lines of parents (keys: parent GUIDs) with one
// `parentProp in (...)` query, ordered by line number. The parents are documents that already passed the access
// check (lines are reached only through them); every line is checked and must name one of the requested parents.
// When the operation selects the lines' products, they are expanded into the same query and primed into
// ProductByID, so products cost no request of their own. Lines are decoded once, as rows R, which split turns into
// the line and its expanded product.
func childrenOf[T, R any](b *batcher, set, parentProp, parentSet string, parent func(*T) (string, int),
	split func(*R) (*T, *erpclient.Product)) dataloader.BatchFunc[string, []*T] {
	return traced(set, func(ctx context.Context, keys []string) []*dataloader.Result[[]*T] {
		scope, err := b.Scope(ctx)
		if err != nil {
			return fail[[]*T](len(keys), err)
		}
		sel := appendUnique(b.Select(ctx, set), parentProp, "LineNo")
		q := erpclient.Query{Set: set, Select: sel}
		if slices.Contains(sel, "Product") {
			q.Expand = []erpclient.Expand{{Prop: "Product", Select: productProps}}
		}
		scope.Apply(&q)
		rows, err := allByRefs[R](ctx, b, q, parentProp, parentSet, keys)
		out := make([]*dataloader.Result[[]*T], len(keys))
		if err != nil && !noAccess(err) {
			return fail[[]*T](len(keys), err)
		}
		byParent := make(map[string][]*T, len(keys))
		for i := range rows {
			r, product := split(&rows[i])
			if p, _ := parent(r); p != "" && scope.Check(set, r) == nil {
				byParent[p] = append(byParent[p], r)
				b.l.primeProduct(ctx, scope, product)
			}
		}
		for i, k := range keys {
			lines := byParent[k]
			slices.SortStableFunc(lines, func(a, b *T) int { _, x := parent(a); _, y := parent(b); return x - y })
			if lines == nil {
				lines = []*T{}
			}
			out[i] = &dataloader.Result[[]*T]{Data: lines}
		}
		return out
	})
}

func splitOrderLine(r *SalesOrderLineRow) (*erpclient.SalesOrderLine, *erpclient.Product) {
	line := r.SalesOrderLine
	line.Product = entityRef(erpclient.SetProducts, productEntity(r.Product))
	return &line, r.Product
}

func splitInvoiceLine(r *InvoiceLineRow) (*erpclient.InvoiceLine, *erpclient.Product) {
	line := r.InvoiceLine
	line.Product = entityRef(erpclient.SetProducts, productEntity(r.Product))
	return &line, r.Product
}

func splitShipmentLine(r *ShipmentLineRow) (*erpclient.ShipmentLine, *erpclient.Product) {
	line := r.ShipmentLine
	line.Product = entityRef(erpclient.SetProducts, productEntity(r.Product))
	return &line, r.Product
}

func refIn(prop, set string, ids []string) erpclient.Filter {
	vs := make([]erpclient.Value, len(ids))
	for i, id := range ids {
		vs[i] = erpclient.RefTo(set, id)
	}
	return erpclient.In(prop, vs...)
}

func inKeyOrder[T any](set string, keys []string, found map[string]*T) []*dataloader.Result[*T] {
	out := make([]*dataloader.Result[*T], len(keys))
	for i, k := range keys {
		if r, ok := found[k]; ok {
			out[i] = &dataloader.Result[*T]{Data: r}
		} else {
			out[i] = &dataloader.Result[*T]{Error: notFound(set, k)}
		}
	}
	return out
}

// refsPerQuery bounds the references of one `prop in (...)` filter: each costs about 70 URL characters, and
// ERP.net's front ends refuse query strings much past 2,000.
const refsPerQuery = 20

// allByRefs reads every row of q whose prop references one of ids in set, in chunks of refsPerQuery that run
// concurrently (erpclient's scheduler packs concurrent reads into one $batch).
func allByRefs[T any](ctx context.Context, b *batcher, q erpclient.Query, prop, set string, ids []string) ([]T, error) {
	var chunks [][]string
	for len(ids) > 0 {
		n := min(refsPerQuery, len(ids))
		chunks = append(chunks, ids[:n])
		ids = ids[n:]
	}
	results := make([][]T, len(chunks))
	g, gctx := errgroup.WithContext(ctx)
	for i, chunk := range chunks {
		cq := q
		if q.Filter != nil {
			cq.Filter = erpclient.And(q.Filter, refIn(prop, set, chunk))
		} else {
			cq.Filter = refIn(prop, set, chunk)
		}
		g.Go(func() error {
			rows, err := erpclient.All[T](gctx, b.ERP, cq)
			results[i] = rows
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []T
	for _, r := range results {
		out = append(out, r...)
	}
	return out, nil
}
