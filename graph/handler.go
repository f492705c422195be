package graph

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/generated"
	"github.com/erpgraph/erpgraph/graph/loader"
	"github.com/erpgraph/erpgraph/mutation"
)

// Config configures the GraphQL handler.
type Config struct {
	ERP    *erpclient.Client
	Access *access.Resolver
	Logger *slog.Logger
	// Introspection allows introspection (also without a user) and field suggestions ("Did you mean ...") in
	// validation errors; off, introspection is refused with INTROSPECTION_DISABLED and suggestions are left out.
	Introspection bool
	// Ref answers reference data from a synchronized copy (erpclient.Sync); nil reads ERP.net (through
	// erpclient's read cache, when it has one).
	Ref loader.RefSource
	// Limits bound each operation (see Limits); zero fields take the defaults.
	Limits Limits
	// APQCacheSize is how many automatic persisted queries (Apollo's sha256 extension) are remembered; 0 means
	// 1000, negative turns automatic persisted queries off.
	APQCacheSize int
	// PersistedQueries keeps the automatic persisted queries; nil = in memory, per replica, APQCacheSize documents.
	PersistedQueries PersistedQueryStore
	// TrustedDocuments are operations clients may send by id (LoadTrustedDocuments); nil for none.
	TrustedDocuments *TrustedDocuments
	// TrustedDocumentsOnly refuses every operation that is not a trusted document (OPERATION_NOT_ALLOWED),
	// including automatic persisted queries of other documents.
	TrustedDocumentsOnly bool
	// RequestID returns the ID of the request ctx belongs to (the server's, which works it out), for the
	// requestId of errors and the logs; nil leaves it out.
	RequestID func(ctx context.Context) string
	// Extensions are added to the executor before graph's own (trusted documents, limits, persisted queries),
	// so they see each request as the client sent it and each answer as the client gets it: the server's request
	// record (server.RecordExtension) is one.
	Extensions []graphql.HandlerExtension
	// Writes runs the mutations; nil (or one not enabled) answers every mutation WRITES_DISABLED.
	Writes *mutation.Service
	// CacheMaxAge is the max-age of successful GET query answers (private for signed-in users); 0 means
	// "no-cache" (cacheable, but revalidated on every use).
	CacheMaxAge time.Duration
}

// NewHandler returns the GraphQL endpoint: GraphQL over HTTP (see httpTransport) on gqlgen's executor, with
// trusted documents, automatic persisted queries, the operation limits, per-request loaders, the error
// presenter and panic recovery. The user comes from auth.FromContext
// and may be absent: every root field except __typename (and introspection in dev mode) then answers
// UNAUTHENTICATED.
// DefaultAPQCacheSize is how many automatic persisted queries are remembered by default.
const DefaultAPQCacheSize = 1000

func NewHandler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = discardLogger
	}
	limits := cfg.Limits
	if cfg.APQCacheSize == 0 {
		cfg.APQCacheSize = DefaultAPQCacheSize
	}
	r := &Resolver{erp: cfg.ERP, access: cfg.Access, logger: cfg.Logger, introspection: cfg.Introspection, writes: cfg.Writes}
	exec := executor.New(generated.NewExecutableSchema(generated.Config{Resolvers: r}))
	// Caches keep small documents only: 1000 entries of documents near the body limit would hold a gigabyte.
	exec.SetQueryCache(smallOnly[*ast.QueryDocument]{lru.New[*ast.QueryDocument](1000), func(q string, _ *ast.QueryDocument) int { return len(q) }})
	exec.SetDisableSuggestion(!cfg.Introspection)
	for _, ext := range cfg.Extensions {
		exec.Use(ext)
	}
	if cfg.Introspection {
		exec.Use(extension.Introspection{})
	}
	// Order matters: trusted documents resolve their ids first; tokens are counted before automatic persisted
	// queries store a document, so every document they hand out later was counted once.
	limits = limits.withDefaults()
	exec.Use(persisted{docs: cfg.TrustedDocuments, only: cfg.TrustedDocumentsOnly})
	exec.Use(&limiter{limits: limits, introspection: cfg.Introspection})
	if cfg.APQCacheSize > 0 {
		store := cfg.PersistedQueries
		if store == nil {
			store = NewMemoryPersistedQueries(cfg.APQCacheSize)
		}
		exec.Use(extension.AutomaticPersistedQuery{Cache: apqCache{store: store, log: cfg.Logger}})
	}
	exec.AroundOperations(prioritizeMutations)
	exec.Use(dataAge{})
	exec.SetErrorPresenter(r.presentError)
	exec.SetRecoverFunc(r.recoverPanic)
	exec.AroundRootFields(r.requireUser)
	srv := &httpTransport{exec: exec, cacheMaxAge: cfg.CacheMaxAge, maxTokens: max(limits.MaxTokens, 0)}

	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, _ := auth.FromContext(req.Context())
		id := ""
		if cfg.RequestID != nil {
			id = cfg.RequestID(req.Context())
		}
		rq := &request{user: u, languages: acceptLanguages(req), id: id, access: r.access}
		l := loader.New(loader.Deps{ERP: r.erp, Scope: rq.Scope, Select: rq.Select, Ref: cfg.Ref})
		ctx := req.Context()
		if _, ok := erpclient.FreshnessFrom(ctx); !ok { // the server's request record may have one already
			ctx, _ = erpclient.WithFreshness(ctx)
		}
		ctx = loader.NewContext(withRequest(ctx, rq), l)
		ctx = withIdempotencyHeader(ctx, req.Header.Get("Idempotency-Key"))
		srv.ServeHTTP(w, req.WithContext(ctx))
	})
}

// maxCachedDocument is the largest document (in bytes) the parsed-document and persisted-query caches keep;
// larger ones still run, parsed each time.
const maxCachedDocument = 32 << 10

// smallOnly is a cache that ignores entries larger than maxCachedDocument.
type smallOnly[T any] struct {
	graphql.Cache[T]
	size func(key string, v T) int
}

func (c smallOnly[T]) Add(ctx context.Context, key string, v T) {
	if c.size(key, v) <= maxCachedDocument {
		c.Cache.Add(ctx, key, v)
	}
}

// requireUser answers UNAUTHENTICATED for root fields of anonymous requests, except __typename and, in dev mode,
// the introspection fields; outside dev mode introspection is refused for everyone. It intercepts root fields only
// (a field interceptor would run for every field of every answer): a refusal is reported as the field's own error
// would be, at its path and location, and the field is null.
func (r *Resolver) requireUser(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	rc := graphql.GetRootFieldContext(ctx)
	if rc == nil || rc.Field.Name == "__typename" {
		return next(ctx)
	}
	var err error
	switch {
	case rc.Field.Name == "__schema" || rc.Field.Name == "__type":
		if !r.introspection {
			err = errIntrospectionDisabled
		}
	case requestFrom(ctx).user == nil:
		err = errNoUser
	}
	if err == nil {
		return next(ctx)
	}
	parent := graphql.GetFieldContext(ctx) // the root object's (its RootFieldContext's Object is the field name)
	fc := &graphql.FieldContext{Parent: parent, Field: rc.Field, IsMethod: true, IsResolver: true}
	if parent != nil {
		fc.Object = parent.Object
	}
	fctx := graphql.WithFieldContext(ctx, fc)
	graphql.GetOperationContext(ctx).Error(fctx, graphql.AddFieldLocationToError(fctx, err))
	return graphql.Null
}
