// Package graph is erpgraph's GraphQL layer: the gqlgen executor generated from schema.graphqls, thin resolvers
// that read through the per-request loaders, and the one error presenter.
package graph

import "log/slog"

// Resolver holds what every resolver shares; the ERP.net client, the user's access scope and the per-request
// loaders are reached through loader.For(ctx).
type Resolver struct {
	logger *slog.Logger
	dev    bool
}
