package graph

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph/generated"
	"github.com/erpgraph/erpgraph/graph/loader"
)

// Config configures the GraphQL handler.
type Config struct {
	ERP    *erpclient.Client
	Access *access.Resolver
	Logger *slog.Logger
	Dev    bool // introspection allowed (also without a user)
	// RefCacheTTL is how long reference data (products, units, currencies, stores, stock) is reused across
	// requests; 0 means 60 s, negative disables the cache.
	RefCacheTTL time.Duration
	// ComplexityLimit bounds an operation's complexity (every field counts 1); 0 means 2000.
	ComplexityLimit int
}

// requestIDHeader is set by the server in front of this handler (it overwrites the inbound value with the ID it
// settled on); the handler makes one up when used alone.
const requestIDHeader = "X-Request-ID"

// NewHandler returns the GraphQL endpoint: POST (queries) and GET (queries only; gqlgen's GET transport refuses
// mutations), per-request loaders, the error presenter and panic recovery. The user comes from auth.FromContext
// and may be absent: every root field except __typename (and introspection in dev mode) then answers
// UNAUTHENTICATED.
func NewHandler(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = discardLogger
	}
	if cfg.RefCacheTTL == 0 {
		cfg.RefCacheTTL = 60 * time.Second
	}
	if cfg.ComplexityLimit == 0 {
		cfg.ComplexityLimit = 2000
	}
	r := &Resolver{logger: cfg.Logger, dev: cfg.Dev}
	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: r}))
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if cfg.Dev {
		srv.Use(extension.Introspection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	srv.SetErrorPresenter(r.presentError)
	srv.SetRecoverFunc(r.recoverPanic)
	srv.AroundFields(r.requireUser)

	ref := loader.NewRefCache(cfg.RefCacheTTL, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, _ := auth.FromContext(req.Context())
		id := req.Header.Get(requestIDHeader)
		if id == "" {
			id = uuid.NewString()
		}
		p := &plans{}
		l := loader.New(loader.Config{ERP: cfg.ERP, Access: cfg.Access, Select: p.selectFor, Ref: ref},
			loader.Request{User: u, Languages: acceptLanguages(req), RequestID: id})
		srv.ServeHTTP(w, req.WithContext(loader.NewContext(req.Context(), l)))
	})
}

// requireUser answers UNAUTHENTICATED for root fields of anonymous requests, except __typename and, in dev mode,
// the introspection fields; outside dev mode introspection is refused for everyone.
func (r *Resolver) requireUser(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Parent == nil || fc.Parent.Parent != nil || fc.Field.Name == "__typename" {
		return next(ctx)
	}
	if fc.Field.Name == "__schema" || fc.Field.Name == "__type" {
		if !r.dev {
			return nil, errIntrospectionDisabled
		}
		return next(ctx)
	}
	if loader.For(ctx).User() == nil {
		return nil, loader.ErrNoUser
	}
	return next(ctx)
}
