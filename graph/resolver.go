// Package graph is erpgraph's GraphQL layer: the gqlgen executor generated from schema.graphqls, thin resolvers
// that read through the per-request loaders, and the one error presenter.
package graph

import (
	"log/slog"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/mutation"
)

// Resolver holds what every resolver shares: the ERP.net client (root lists query it; the per-request loaders,
// reached through loader.For(ctx), batch nested reads on it), the access resolver (each request's scope comes from
// it, once, see request.Scope), the logger, and whether introspection is allowed.
type Resolver struct {
	erp           *erpclient.Client
	access        *access.Resolver
	logger        *slog.Logger
	introspection bool
	writes        *mutation.Service // nil: read-only
}
