package erpclient_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
)

var syncProps = []string{"PartNumber", "Name"}

func productSync(c *erpclient.Client, cfg erpclient.SyncConfig) *erpclient.Sync {
	return erpclient.NewSync(c, cfg,
		erpclient.SyncOf(erpclient.SetProducts, syncProps, func(e *erpclient.Product) string { return e.ID }),
		erpclient.SyncOf(erpclient.SetStores, []string{"Code", "Name"}, func(e *erpclient.Store) string { return e.ID }))
}

func runSync(t *testing.T, s *erpclient.Sync) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	t.Cleanup(func() { cancel(); <-s.Done() })
	waitFor(t, "the first sync", func() bool { return s.Status().Ready })
}

// syncRequests are erpsim's requests made by the sync (they alone select AggregateLastUpdateTimeUtc or pull
// whole reference sets page by page).
func syncRequests(s *erpsim.Sim) (all, incremental int) {
	for _, r := range domainRequests(s) {
		if strings.Contains(r.RawQuery, "AggregateLastUpdateTimeUtc") || strings.Contains(r.RawQuery, "%24top=") && !strings.Contains(r.RawQuery, "PartNumber%20") {
			all++
		}
		if strings.Contains(r.RawQuery, "AggregateLastUpdateTimeUtc%20ge%20") {
			incremental++
		}
	}
	return all, incremental
}

func productName(t *testing.T, s *erpclient.Sync, id string) string {
	t.Helper()
	row, found, ok := s.Lookup(erpclient.SetProducts, id)
	if !ok || !found {
		t.Fatalf("product %s: found %v, synchronized %v", id, found, ok)
	}
	return row.(*erpclient.Product).Name.Get("EN")
}

// A product change in ERP.net arrives with the next incremental pull, and drops the read cache's product entries.
func TestSync_IncrementalPull(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited()})
	c := cachedClient(t, s, clock)
	sy := productSync(c, erpclient.SyncConfig{Interval: 10 * time.Millisecond, PageSize: 40, BudgetShare: 1})
	runSync(t, sy)
	if st := sy.Status(); st.Mode != erpclient.SyncIncremental || st.LastError != "" {
		t.Fatalf("status %+v", st)
	}
	ctx := context.Background()
	list := func() erpclient.Product {
		p, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Select: syncProps, Top: 1})
		if err != nil || len(p.Items) != 1 {
			t.Fatalf("products: %v", err)
		}
		return p.Items[0]
	}
	first := list()
	if got := productName(t, sy, first.ID); got != first.Name.Get("EN") {
		t.Fatalf("synchronized name %q, read %q", got, first.Name.Get("EN"))
	}
	if err := s.RenameProduct(first.ID, "Renamed by the test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change to arrive", func() bool { return productName(t, sy, first.ID) == "Renamed by the test" })
	if _, inc := syncRequests(s); inc == 0 {
		t.Error("no incremental pull (AggregateLastUpdateTimeUtc ge ...) was made")
	}
	if got := list().Name.Get("EN"); got != "Renamed by the test" {
		t.Errorf("the read cache still answers %q after the sync saw the change", got)
	}
}

// Instances before v26.2 lack AggregateLastUpdateTimeUtc: the sync pulls in full at every interval, and says so.
func TestSync_Before262FallsBackToFullPulls(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited(), Before262: true})
	c := simClient(t, s, nil)
	sy := productSync(c, erpclient.SyncConfig{Interval: 10 * time.Millisecond, BudgetShare: 1})
	runSync(t, sy)
	if st := sy.Status(); st.Mode != erpclient.SyncTTL {
		t.Fatalf("mode %q, want ttl", st.Mode)
	}
	p, err := erpclient.List[erpclient.Product](context.Background(), c, erpclient.Query{Set: erpclient.SetProducts, Top: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RenameProduct(p.Items[0].ID, "Renamed on an old instance"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change to arrive", func() bool { return productName(t, sy, p.Items[0].ID) == "Renamed on an old instance" })
}

// Under interactive load the sync yields, and it never takes more than its share of the session's budget: its
// requests stay within share x requests-per-minute over the time it ran (plus the limiter's burst of one).
func TestSync_StaysWithinBudgetUnderLoad(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	const rpm, share = 1200, 0.05 // one sync request per second at most
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Scheduler.RequestsPerMinute = rpm })
	sy := productSync(c, erpclient.SyncConfig{Interval: time.Millisecond, PageSize: 10, BudgetShare: share})
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 { // interactive load alongside
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				_ = listProduct(ctx, c, (w*100+n)%90+10)
			}
		})
	}
	go sy.Run(ctx)
	waitFor(t, "a few sync requests", func() bool { return sy.Status().Requests >= 3 })
	cancel()
	wg.Wait()
	<-sy.Done()
	elapsed := time.Since(start)
	made := sy.Status().Requests
	allowed := 1 + int64(elapsed.Seconds()*rpm*share/60)
	if made > allowed {
		t.Errorf("the sync made %d requests in %s; its share allows %d", made, elapsed.Round(time.Millisecond), allowed)
	}
	if seen, _ := syncRequests(s); int64(seen) > made {
		t.Errorf("erpsim saw %d sync requests, the sync counted %d", seen, made)
	}
}

// A product deleted in ERP.net has no AggregateLastUpdateTimeUtc left to pull by: the key-only reconcile finds
// it gone, drops it from the synchronized copy and drops the read cache's product entries.
func TestSync_ReconcileSeesDeletions(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited()})
	added, err := s.AddProduct("TEST-DELETE-1", "Deleted by the test")
	if err != nil {
		t.Fatal(err)
	}
	c := cachedClient(t, s, clock)
	sy := productSync(c, erpclient.SyncConfig{Interval: 10 * time.Millisecond, BudgetShare: 1, ReconcileInterval: time.Nanosecond})
	runSync(t, sy)
	if got := productName(t, sy, added); got != "Deleted by the test" {
		t.Fatalf("synchronized name %q", got)
	}
	ctx := context.Background()
	catalogue := func() int {
		t.Helper()
		n, err := erpclient.Count(ctx, c, erpclient.Query{Set: erpclient.SetProducts, Unscoped: true})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := catalogue() // now cached
	if err := s.DeleteProduct(added); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion to arrive", func() bool {
		_, found, ok := sy.Lookup(erpclient.SetProducts, added)
		return ok && !found
	})
	if st := sy.Status(); st.Deleted != 1 || st.LastReconcile.IsZero() || st.Mode != erpclient.SyncIncremental {
		t.Errorf("status %+v, want one deletion seen by an incremental sync's reconcile", st)
	}
	if after := catalogue(); after != before-1 {
		t.Errorf("the cached count is %d after the deletion, want %d", after, before-1)
	}
	keyOnly := 0
	for _, r := range domainRequests(s) {
		if v, err := url.ParseQuery(r.RawQuery); err == nil && v.Get("$select") == "Id" && v.Get("$filter") == "" {
			keyOnly++
		}
	}
	if keyOnly == 0 {
		t.Error("no key-only ($select=Id) reconcile pull reached erpsim")
	}
	// a referenced product cannot be deleted (erpsim's stand-in for ERP.net's referential checks)
	p, err := erpclient.List[erpclient.SalesOrderLine](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrderLines, Unscoped: true, Top: 1})
	if err != nil || len(p.Items) != 1 || p.Items[0].Product == nil {
		t.Fatalf("an order line: %v", err)
	}
	if err := s.DeleteProduct(p.Items[0].Product.ID); err == nil {
		t.Error("erpsim deleted a product an order line refers to")
	}
}
