package graph_test

import (
	"testing"

	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/internal/storetest"
)

func TestMemoryPersistedQueries(t *testing.T) {
	storetest.PersistedQueryStore(t, func(*testing.T) graph.PersistedQueryStore { return graph.NewMemoryPersistedQueries(10) })
}
