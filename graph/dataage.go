package graph

import (
	"context"
	"math"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgraph/erpgraph/erpclient"
)

// dataAge adds extensions.dataAge to every response whose data came from ERP.net reads, so clients know how old
// what they show is: erpclient's read cache may answer within a set's TTL, and past it while revalidating or
// while ERP.net fails (see the README's freshness section).
//
//	"dataAge": {"seconds": 3, "stale": false, "cachedReads": 2, "liveReads": 1}
//
// seconds is the age of the oldest answer used (0 when every read was live, rounded down like HTTP's Age), stale
// says whether an answer past its TTL was served.
type dataAge struct{}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = dataAge{}

// InterceptOperation makes every read of a mutation live: what a write checks and what it answers must be
// ERP.net's current state, not a cached answer (the live answers still refresh the cache).
func (dataAge) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if oc := graphql.GetOperationContext(ctx); oc != nil && oc.Operation != nil && oc.Operation.Operation == ast.Mutation {
		ctx = erpclient.WithoutCache(ctx)
	}
	return next(ctx)
}

func (dataAge) ExtensionName() string                   { return "DataAge" }
func (dataAge) Validate(graphql.ExecutableSchema) error { return nil }
func (dataAge) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	f, ok := erpclient.FreshnessFrom(ctx)
	if resp == nil || !ok {
		return resp
	}
	r := f.Report()
	if r.Hits+r.Misses == 0 {
		return resp
	}
	if resp.Extensions == nil {
		resp.Extensions = map[string]any{}
	}
	resp.Extensions["dataAge"] = map[string]any{
		"seconds": int64(math.Floor(r.Age.Seconds())), "stale": r.Stale, "cachedReads": r.Hits, "liveReads": r.Misses,
	}
	return resp
}
