package loader

import (
	"context"

	"github.com/graph-gophers/dataloader/v7"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/tracing"
)

// traced runs a batch function under a span of its own when the operation is
// traced: "loader <entity set>", with the set and the number of keys (never
// the keys), and at its end how many keys got an error (NOT_FOUND included).
// Its ERP.net requests are its children.
func traced[V any](set string, fn dataloader.BatchFunc[string, V]) dataloader.BatchFunc[string, V] {
	return func(ctx context.Context, keys []string) []*dataloader.Result[V] {
		if !tracing.On(ctx) {
			return fn(ctx, keys)
		}
		ctx, span := tracing.Start(ctx, "loader "+set, trace.WithAttributes(
			attribute.String("erp.entity_set", set), attribute.Int("loader.keys", len(keys))))
		defer span.End()
		out := fn(ctx, keys)
		failed := 0
		for _, r := range out {
			if r.Error != nil {
				failed++
			}
		}
		span.SetAttributes(attribute.Int("loader.failed_keys", failed))
		return out
	}
}
