package graph

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/model"
)

// maxPageSize is the largest `first` of a connection.
const maxPageSize = 100

// maxSplitOffset bounds paging depth for users whose grants need one query per grant group (see listSplit):
// each such page reads offset+first rows per group.
const maxSplitOffset = 1000

// listQuery is a root list: a set, the validated filter and ordering from the arguments, and paging.
type listQuery struct {
	set     string
	filter  erpclient.Filter // nil: no condition beyond the scope
	orderBy []erpclient.OrderBy
	first   *int
	after   *string
	empty   bool // the filter can match nothing (e.g. customerIds outside the user's customers)
	// selectProps replaces the operation's selection (reference data, read whole and cached)
	selectProps []string
	// expand nests the relations the operation selects on the nodes into the same read (see nestings)
	expand []erpclient.Expand
}

// docKey is what documents are ordered by when per-group results are merged.
type docKey struct {
	date, created time.Time
	no, id        string
}

// page is one page of a connection, before conversion to models.
type page[T any] struct {
	items   []*T
	cursors []string
	hasNext bool
	hasPrev bool
	total   int
}

func pageSize(first *int) (int, error) {
	n := 20
	if first != nil {
		n = *first
	}
	if n < 1 || n > maxPageSize {
		return 0, inputErrorf("first must be between 1 and %d", maxPageSize)
	}
	return n, nil
}

// wantsTotal reports whether the connection's totalCount is selected, so $count is requested only then.
func wantsTotal(ctx context.Context) bool {
	if !graphql.HasOperationContext(ctx) {
		return false
	}
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if f.Name == "totalCount" {
			return true
		}
	}
	return false
}

// list reads one page of q for the signed-in user: one ERP.net query carrying the scope when the user's grants
// form one group, else one per group merged in order (key orders documents; nil for sets that never split).
// Rows are decoded once as R (the entity with what q.expand nests into it) and flat gives their entity T; every
// entity is checked before it is returned, and the rows of the returned items come with them, in their order.
func list[R, T any](ctx context.Context, erp *erpclient.Client, q listQuery, flat func(*R) *T, id func(*T) string,
	key func(*T) docKey) (page[T], []*R, error) {
	first, err := pageSize(q.first)
	if err != nil {
		return page[T]{}, nil, err
	}
	rq := requestFrom(ctx)
	scope, err := rq.Scope(ctx)
	if err != nil {
		return page[T]{}, nil, err
	}
	exact := scope.Exact(q.set) || key == nil
	ordered := len(q.orderBy) > 0 || !exact
	pos, err := decodeCursor(q.after, ordered)
	if err != nil {
		return page[T]{}, nil, err
	}
	empty := page[T]{items: []*T{}, cursors: []string{}, hasPrev: pos.offset > 0 || pos.after != ""}
	if q.empty || scope.Empty() {
		return empty, nil, nil
	}
	sel := q.selectProps
	if sel == nil {
		sel = rq.Select(ctx, q.set)
	}
	base := erpclient.Query{Set: q.set, Filter: q.filter, Select: sel, Expand: q.expand, OrderBy: q.orderBy, Count: wantsTotal(ctx)}
	if !exact {
		return listSplit(ctx, erp, scope, base, pos, first, flat, id, key)
	}
	base.Top, base.Cursor = first, pos.cursor()
	scope.Apply(&base)
	res, err := erpclient.List[R](ctx, erp, base)
	if isNoAccess(err) {
		return empty, nil, nil
	}
	if err != nil {
		return page[T]{}, nil, err
	}
	p := empty
	p.hasNext = res.Next != nil
	if res.Count != nil {
		p.total = *res.Count
	}
	rows := make([]*R, 0, len(res.Items))
	for i := range res.Items {
		r := &res.Items[i]
		e := flat(r)
		if scope.Check(q.set, e) != nil {
			continue
		}
		p.items = append(p.items, e)
		rows = append(rows, r)
		if ordered {
			p.cursors = append(p.cursors, offsetCursor(pos.offset+i+1))
		} else {
			p.cursors = append(p.cursors, keysetCursor(id(e)))
		}
	}
	return p, rows, nil
}

// same is flat for lists that nest nothing.
func same[T any](r *T) *T { return r }

// listSplit serves users whose grants differ in days-back window (or ship-to customer): no single ERP.net filter
// expresses their access exactly, so each grant group is queried with its own exact filter and the ordered
// results are merged. Pages are offsets into the merged order.
func listSplit[R, T any](ctx context.Context, erp *erpclient.Client, scope *access.Scope, base erpclient.Query, pos position,
	first int, flat func(*R) *T, id func(*T) string, key func(*T) docKey) (page[T], []*R, error) {
	if pos.offset > maxSplitOffset {
		return page[T]{}, nil, inputErrorf("after: paging deeper than %d is not supported for this account; narrow the list with a filter (customerIds or documentDate)", maxSplitOffset)
	}
	if len(base.OrderBy) == 0 {
		base.OrderBy = []erpclient.OrderBy{{Prop: "DocumentDate", Desc: true}}
	}
	cmp := docCompare(base.OrderBy[0])
	base.Top = pos.offset + first + 1
	if pos.offset > 0 {
		// each group reads the rows before the page too; their nested relations would be read for nothing, so
		// deeper pages leave them to the loaders
		base.Expand = nil
	}
	type item struct {
		e *T
		r *R
	}
	var merged []item
	seen := map[string]bool{}
	total := 0
	more := false
	for _, sub := range scope.Split(base.Set) {
		q := base
		sub.Apply(&q)
		res, err := erpclient.List[R](ctx, erp, q)
		if isNoAccess(err) {
			continue
		}
		if err != nil {
			return page[T]{}, nil, err
		}
		if res.Count != nil {
			total += *res.Count
		}
		more = more || res.Next != nil
		for i := range res.Items {
			r := &res.Items[i]
			e := flat(r)
			if !seen[id(e)] && scope.Check(base.Set, e) == nil {
				seen[id(e)] = true
				merged = append(merged, item{e, r})
			}
		}
	}
	slices.SortStableFunc(merged, func(a, b item) int { return cmp(key(a.e), key(b.e)) })
	p := page[T]{items: []*T{}, cursors: []string{}, hasPrev: pos.offset > 0, total: total}
	var rows []*R
	for i := pos.offset; i < len(merged) && len(p.items) < first; i++ {
		p.items = append(p.items, merged[i].e)
		rows = append(rows, merged[i].r)
		p.cursors = append(p.cursors, offsetCursor(i+1))
	}
	p.hasNext = len(merged) > pos.offset+len(p.items) || more
	return p, rows, nil
}

// docCompare orders document keys like ERP.net's $orderby on o, with the Id as a stable tie-break.
func docCompare(o erpclient.OrderBy) func(a, b docKey) int {
	return func(a, b docKey) int {
		c := 0
		switch o.Prop {
		case "DocumentNo":
			c = strings.Compare(a.no, b.no)
		case "CreationTime":
			c = a.created.Compare(b.created)
		default:
			c = a.date.Compare(b.date)
		}
		if o.Desc {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(a.id, b.id)
		}
		return c
	}
}

func isNoAccess(err error) bool { return err != nil && errors.Is(err, access.ErrNoAccess) }

// connection converts a page with f into the parts every connection type has.
func connection[T, M any](p page[T], f func(*T) *M) (nodes []*M, info *model.PageInfo) {
	nodes = convertAll(p.items, f)
	info = &model.PageInfo{HasNextPage: p.hasNext, HasPreviousPage: p.hasPrev}
	if len(p.cursors) > 0 {
		info.StartCursor, info.EndCursor = &p.cursors[0], &p.cursors[len(p.cursors)-1]
	}
	return nodes, info
}
