package erpclient_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// TestScheduler_WriteNotStarvedBehindReads: while the session's one slot is
// busy, ten users queue reads (five $batch requests' worth) and then one user
// a write; the write goes out in the very next request, and the reads follow.
func TestScheduler_WriteNotStarvedBehindReads(t *testing.T) {
	_, c, release, log := recordedSim(t, func(cfg *erpclient.Config) {
		cfg.Scheduler.MaxBatchParts = 2
		cfg.Scopes = []string{"read", "update"}
	})
	ctx := context.Background()
	first := runConcurrently(1, func(int) error { return c.Ping(ctx) })
	waitFor(t, "the first request held", func() bool { return c.Stats().InFlight == 1 })
	reads := runConcurrently(10, func(i int) error {
		_, err := erpclient.List[erpclient.Product](erpclient.WithCaller(ctx, fmt.Sprintf("reader-%d", i)), c,
			erpclient.Query{Set: erpclient.SetProducts, Filter: erpclient.Eq("PartNumber", erpclient.String(fmt.Sprintf("R-%d", i))), Select: []string{"PartNumber"}})
		return err
	})
	waitFor(t, "the reads queued", func() bool { return c.Stats().Queued == 10 })
	write := runConcurrently(1, func(int) error {
		cs := &erpclient.Changeset{}
		cs.Create(erpclient.SetSalesOrders, map[string]any{
			"Customer": erpclient.Ref{Set: erpclient.SetCustomers, ID: fixture.CustomerID(1)},
			"Lines":    []any{map[string]any{"Product": erpclient.Ref{Set: erpclient.SetProducts, ID: fixture.ID("General_Products_Products", 1)}, "Quantity": map[string]any{"Value": 1}}},
		})
		_, err := c.Apply(erpclient.WithCaller(ctx, "writer"), cs)
		return err
	})
	waitFor(t, "the write queued", func() bool { return c.Stats().Queued == 11 })
	release()
	for _, wait := range []func() []error{first, reads, write} {
		for _, err := range wait() {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	got := log()
	if len(got) < 3 || !strings.Contains(got[1], "/Crm_Sales_SalesOrders HTTP/1.1") {
		t.Fatalf("the write was not next after the held request:\n%s", strings.Join(got, "\n----\n"))
	}
	if !strings.Contains(got[2], "PartNumber") {
		t.Errorf("reads did not resume after the write:\n%s", got[2])
	}
}
