package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/erpgraph/erpgraph/internal/loadclient"
)

// The operations a simulated portal user runs, with their weights in the mix.
const (
	dashboardQuery = loadclient.DashboardQuery
	ordersQuery    = `query Orders($after: String, $filter: SalesOrderFilter) {
  salesOrders(first: 10, after: $after, filter: $filter, orderBy: {field: DOCUMENT_DATE, direction: DESC}) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id documentNo documentDate state void customer { id number } }
  }
}`
	nodesQuery = `query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    id
    ... on SalesOrder { documentNo state customer { id } }
    ... on Invoice { documentNo customer { id } }
    ... on Product { partNumber name }
  }
}`
	productsQuery = `query Products($q: String) {
  products(first: 20, filter: {nameContains: $q}) {
    totalCount
    nodes { id partNumber name active group { name } }
  }
}`
	invoicesQuery = `query Invoices {
  invoices(first: 20, orderBy: {field: DOCUMENT_DATE, direction: DESC}) {
    totalCount
    nodes { id documentNo documentDate paymentDueDate customer { id number } }
  }
}`
	shipmentsQuery = `query Shipments {
  shipments(first: 20) {
    totalCount
    nodes { id documentNo documentDate customer { id } }
  }
}`
)

type opKind struct {
	name   string
	weight int
}

var opMix = []opKind{
	{"dashboard", 25}, {"orders", 25}, {"nodes", 15}, {"products", 20}, {"invoices", 10}, {"shipments", 5},
}

var productWords = []string{"coffee", "tea", "cable", "cheese", "juice", "set", "box", "water", "pro", "tape"}

// orderFilters vary the order list the way a portal's filter bar would.
func orderFilters(today time.Time) []map[string]any {
	return []map[string]any{
		nil,
		{"state": []string{"RELEASED", "COMPLETED"}},
		{"void": false},
		{"documentDate": map[string]any{"ge": today.AddDate(0, 0, -90).Format(time.DateOnly)}},
	}
}

// user is one simulated portal user: a signed-in session (loadclient.User,
// which refreshes its token), the IDs it has seen (for node lookups) and its
// own random source.
type user struct {
	*loadclient.User
	url  string
	http *http.Client
	rnd  *rand.Rand

	seen []string // global IDs from earlier answers, bounded

	// The write side (writes.go): the ledger of the run, the oracle to tell of placed orders, the customer this
	// user orders for (nil until looked up) and its count of keys.
	led      *ledger
	owners   *owners
	orderFor *string
	orderSeq int
}

func (u *user) pick() string {
	mix := opMix
	if u.led != nil {
		mix = append(slices.Clone(opMix), opKind{"order", writeWeight})
	}
	total := 0
	for _, k := range mix {
		total += k.weight
	}
	n := u.rnd.IntN(total)
	for _, k := range mix {
		if n < k.weight {
			return k.name
		}
		n -= k.weight
	}
	return opMix[0].name
}

// run executes one operation of kind (some are several requests: paging)
// and hands every response to check.
func (u *user) run(ctx context.Context, kind string, check func(resp *gqlResponse, status int, err error)) {
	switch kind {
	case "dashboard":
		u.remember(u.post(ctx, dashboardQuery, nil, check))
	case "orders":
		filters := orderFilters(time.Now())
		vars := map[string]any{"filter": filters[u.rnd.IntN(len(filters))]}
		for range 1 + u.rnd.IntN(3) { // one to three pages
			r := u.post(ctx, ordersQuery, vars, check)
			u.remember(r)
			var page struct {
				SalesOrders struct {
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
			if r == nil || json.Unmarshal(r.Data, &page) != nil || !page.SalesOrders.PageInfo.HasNextPage {
				return
			}
			vars["after"] = page.SalesOrders.PageInfo.EndCursor
		}
	case "nodes":
		if len(u.seen) == 0 {
			u.remember(u.post(ctx, dashboardQuery, nil, check))
			return
		}
		ids := make([]string, 0, 5)
		for range min(5, len(u.seen)) {
			ids = append(ids, u.seen[u.rnd.IntN(len(u.seen))])
		}
		u.post(ctx, nodesQuery, map[string]any{"ids": ids}, check)
	case "products":
		u.remember(u.post(ctx, productsQuery, map[string]any{"q": productWords[u.rnd.IntN(len(productWords))]}, check))
	case "invoices":
		u.remember(u.post(ctx, invoicesQuery, nil, check))
	case "shipments":
		u.post(ctx, shipmentsQuery, nil, check)
	case "order":
		u.placeOrder(ctx, check)
	}
}

const maxSeen = 200

// remember keeps the global IDs of an answer for later node lookups.
func (u *user) remember(r *gqlResponse) {
	if r == nil || len(r.Data) == 0 {
		return
	}
	var v any
	if json.Unmarshal(r.Data, &v) != nil {
		return
	}
	walk(v, func(obj map[string]any) {
		if id, ok := obj["id"].(string); ok {
			if len(u.seen) < maxSeen {
				u.seen = append(u.seen, id)
			} else {
				u.seen[u.rnd.IntN(maxSeen)] = id
			}
		}
	})
}

type (
	gqlError    = loadclient.Error
	gqlResponse = loadclient.Response
)

// post sends one GraphQL request; the decoded answer (nil if none) goes to
// check and is returned.
func (u *user) post(ctx context.Context, query string, vars map[string]any, check func(*gqlResponse, int, error)) *gqlResponse {
	r, err := loadclient.Post(ctx, u.http, u.url, u.User, query, vars)
	if err != nil {
		status := 0
		if r != nil {
			status = r.Status
		}
		check(nil, status, err)
		return nil
	}
	check(r, r.Status, nil)
	return r
}

// walk calls fn for every JSON object in v, depth first.
func walk(v any, fn func(map[string]any)) {
	switch t := v.(type) {
	case map[string]any:
		fn(t)
		for _, c := range t {
			walk(c, fn)
		}
	case []any:
		for _, c := range t {
			walk(c, fn)
		}
	}
}
