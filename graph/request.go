package graph

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
)

// errNoUser is the error of a request without a signed-in user.
var errNoUser = fmt.Errorf("graph: no signed-in user: %w", auth.ErrUnauthenticated)

// request holds the facts of one HTTP request that resolvers need, and what is worked out once per request: the
// user's access scope and the selection plan of the operation.
type request struct {
	user      *auth.User // the verified user; nil for anonymous requests
	languages []string   // preferred languages from Accept-Language, best first (ISO 639-1 codes)
	id        string     // the request ID for logs and error extensions
	access    *access.Resolver

	scopeOnce sync.Once
	scope     *access.Scope
	scopeErr  error

	plans plans
}

type requestKey struct{}

func withRequest(ctx context.Context, rq *request) context.Context {
	return context.WithValue(ctx, requestKey{}, rq)
}

// requestFrom returns the request's facts; outside the handler (a test calling a helper directly) an anonymous
// request without facts.
func requestFrom(ctx context.Context) *request {
	if rq, ok := ctx.Value(requestKey{}).(*request); ok {
		return rq
	}
	return &request{}
}

// Scope resolves the user's access scope once per request.
func (rq *request) Scope(ctx context.Context) (*access.Scope, error) {
	rq.scopeOnce.Do(func() {
		if rq.user == nil || rq.access == nil {
			rq.scopeErr = errNoUser
			return
		}
		rq.scope, rq.scopeErr = rq.access.Scope(ctx, rq.user)
	})
	return rq.scope, rq.scopeErr
}

// priceProps are the properties only roles with prices may see, per set.
var priceProps = map[string][]string{
	erpclient.SetSalesOrderLines: {"UnitPrice", "LineAmount", "LineCustomDiscountPercent"},
	erpclient.SetCustomers:       {"CreditLimit"},
}

// Select returns the properties of set that the operation needs, plus those access checks read. Prices are not
// even read for users none of whose roles include them.
func (rq *request) Select(ctx context.Context, set string) []string {
	props := slices.Clone(rq.plans.selectFor(ctx, set))
	if hidden := priceProps[set]; len(hidden) > 0 {
		if s, err := rq.Scope(ctx); err == nil && !s.AllowsAny(access.ViewPrices) {
			props = slices.DeleteFunc(props, func(p string) bool { return slices.Contains(hidden, p) })
		}
	}
	for _, p := range access.CheckProps(set) {
		if !slices.Contains(props, p) {
			props = append(props, p)
		}
	}
	return props
}
