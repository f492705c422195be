// Package graph is erpgraph's GraphQL layer: the gqlgen executor generated from schema.graphqls, thin resolvers
// that read through the per-request loaders, and the one error presenter.
package graph

import (
	"log/slog"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
)

// Resolver holds the dependencies every resolver shares; per-request state lives in loader.For(ctx).
type Resolver struct {
	erp    *erpclient.Client
	access *access.Resolver
	logger *slog.Logger
	dev    bool
}
