package erpclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// cachedClient is a client with a read cache on clock (documents: TTL 5s, stale-while-revalidate 10s,
// stale-if-error 1m).
func cachedClient(t *testing.T, s *erpsim.Sim, clock *testClock, mods ...func(*erpclient.Config)) *erpclient.Client {
	t.Helper()
	return simClient(t, s, func(cfg *erpclient.Config) {
		cfg.Clock = clock.Now
		cfg.Cache = erpclient.CacheConfig{Store: erpclient.NewMemoryCache(8 << 20),
			Documents: erpclient.CachePolicy{TTL: 5 * time.Second, StaleWhileRevalidate: 10 * time.Second, StaleIfError: time.Minute},
			Reference: erpclient.DefaultReferencePolicy}
		for _, m := range mods {
			m(cfg)
		}
	})
}

func ordersOf(ctx context.Context, c *erpclient.Client, customer int) (erpclient.Page[erpclient.SalesOrder], error) {
	return erpclient.List[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders,
		Scope: customerScope(customer), Select: []string{"Customer", "DocumentNo"}, Top: 5})
}

func TestCache_FreshStaleAndBounds(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited()})
	c := cachedClient(t, s, clock)
	ctx := context.Background()

	first, err := ordersOf(ctx, c, 1)
	if err != nil || len(first.Items) == 0 {
		t.Fatalf("orders: %d, %v", len(first.Items), err)
	}
	base := len(domainRequests(s))
	// within the TTL: from the cache, and each caller owns its page
	fctx, fresh := erpclient.WithFreshness(ctx)
	again, err := ordersOf(fctx, c, 1)
	if err != nil || len(again.Items) != len(first.Items) || len(domainRequests(s)) != base {
		t.Fatalf("fresh read: %d items, %v, %d upstream requests", len(again.Items), err, len(domainRequests(s))-base)
	}
	if r := fresh.Report(); r.Hits != 1 || r.Stale || r.Misses != 0 {
		t.Errorf("fresh read reported %+v", r)
	}
	again.Items[0].DocumentNo = "changed by one caller"
	if p, _ := ordersOf(ctx, c, 1); p.Items[0].DocumentNo == "changed by one caller" {
		t.Error("one caller's change to its page reached the cache")
	}
	// another scope is another request: never this entry
	other, err := ordersOf(ctx, c, 2)
	if err != nil || len(domainRequests(s)) != base+1 {
		t.Fatalf("other scope: %v, %d upstream requests", err, len(domainRequests(s))-base)
	}
	for _, o := range other.Items {
		if o.Customer.ID != fixture.CustomerID(2) {
			t.Fatalf("customer 2 got order %s of %s", o.ID, o.Customer.ID)
		}
	}

	// past the TTL, within stale-while-revalidate: served at once, one background refresh
	clock.Advance(7 * time.Second)
	sctx, stale := erpclient.WithFreshness(ctx)
	for range 3 {
		if _, err := ordersOf(sctx, c, 1); err != nil {
			t.Fatal(err)
		}
	}
	if r := stale.Report(); !r.Stale || r.Hits != 3 || r.Age < 7*time.Second {
		t.Errorf("stale-while-revalidate reported %+v", r)
	}
	waitFor(t, "the background refresh", func() bool { return c.Stats().CacheRefreshes == 1 && len(domainRequests(s)) == base+2 })
	waitFor(t, "the refreshed entry", func() bool {
		fctx, f := erpclient.WithFreshness(ctx)
		_, err := ordersOf(fctx, c, 1)
		return err == nil && !f.Report().Stale
	})
	if got := c.Stats().CacheRefreshes; got != 1 {
		t.Errorf("%d background refreshes for one key, want 1", got)
	}

	// ERP.net fails: past stale-while-revalidate but within stale-if-error the entry is served, and says so
	clock.Advance(20 * time.Second)
	s.SetFaults(erpsim.Fault{Path: gateway, Status: http.StatusBadGateway})
	ectx, ef := erpclient.WithFreshness(ctx)
	p, err := ordersOf(ectx, c, 1)
	if err != nil || len(p.Items) != len(first.Items) {
		t.Fatalf("stale-if-error: %d items, %v", len(p.Items), err)
	}
	if r := ef.Report(); !r.Stale || r.Age < 20*time.Second || r.Served != 1 {
		t.Errorf("stale-if-error reported %+v", r)
	}
	// never past its bound
	clock.Advance(time.Minute)
	if _, err := ordersOf(ctx, c, 1); !errors.Is(err, erpclient.ErrUnavailable) {
		t.Errorf("past the stale bound: %v, want ErrUnavailable", err)
	}
	s.SetFaults()
}

func TestCache_InvalidationAndWrites(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited()})
	c := cachedClient(t, s, clock)
	ctx := context.Background()
	count := func() int {
		t.Helper()
		n, err := erpclient.Count(ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: customerScope(1)})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	base := len(domainRequests(s))
	if count() != before || len(domainRequests(s)) != base {
		t.Fatal("a repeated count was not served from the cache")
	}
	c.Invalidate(erpclient.SetSalesOrderLines) // lines share the orders' aggregate
	if count(); len(domainRequests(s)) != base+1 {
		t.Fatal("Invalidate of the lines kept the orders' entry")
	}
	// a write through the client drops what it changes
	rwc := simClient(t, s, func(cfg *erpclient.Config) {
		cfg.Clock, cfg.Scopes = clock.Now, []string{"read", "update"}
		cfg.Cache = erpclient.CacheConfig{Store: erpclient.NewMemoryCache(1 << 20), Documents: erpclient.DefaultDocumentPolicy}
	})
	c = rwc
	before = count()
	newOrder(t, rwc)
	if after := count(); after != before+1 {
		t.Errorf("after a write through the client the count is %d, want %d", after, before+1)
	}
}

// Identical misses under concurrent load share one upstream read: callers that miss the cache while the read is
// in flight join it, and callers that come after it find the entry. There is no gap between the two in which a
// second request goes out.
func TestCache_ConcurrentMissesShareOneRead(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited()})
	c := cachedClient(t, s, clock)
	ctx := context.Background()
	for customer := 1; customer <= 4; customer++ {
		base := len(domainRequests(s))
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 64 {
			wg.Go(func() {
				<-start
				p, err := ordersOf(ctx, c, customer)
				if err == nil && len(p.Items) == 0 {
					err = errors.New("no orders")
				}
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := len(domainRequests(s)) - base; got != 1 {
			t.Errorf("customer %d: 64 concurrent identical reads made %d upstream requests, want 1", customer, got)
		}
	}

	// the same entries gone stale, read concurrently: served at once, one refresh each
	clock.Advance(7 * time.Second)
	base := len(domainRequests(s))
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if _, err := ordersOf(ctx, c, 1+i%4); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitFor(t, "the refreshed entries", func() bool {
		for customer := 1; customer <= 4; customer++ {
			fctx, f := erpclient.WithFreshness(ctx)
			if _, err := ordersOf(fctx, c, customer); err != nil || f.Report().Stale {
				return false
			}
		}
		return true
	})
	if got := len(domainRequests(s)) - base; got == 0 || got > 4 {
		t.Errorf("the refreshes of 4 keys made %d upstream requests", got)
	}
	if st := c.Stats(); st.CacheRefreshes != 4 {
		t.Errorf("%d background refreshes for 4 stale keys read 64 times, want 4", st.CacheRefreshes)
	}
}

// Background refreshes are bounded: with ERP.net hanging, stale entries are still served at once, but no more
// than MaxRefreshes refreshes wait for it; the other stale reads start none.
func TestCache_RefreshesAreBounded(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited()})
	c := cachedClient(t, s, clock, func(cfg *erpclient.Config) { cfg.Scheduler.RequestsPerMinute = 1 << 20 })
	ctx := context.Background()
	const keys = 3 * erpclient.MaxRefreshes
	read := func(top int) error {
		_, err := erpclient.List[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders,
			Scope: customerScope(1), Select: []string{"DocumentNo"}, Top: top})
		return err
	}
	for top := 1; top <= keys; top++ {
		if err := read(top); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(7 * time.Second) // past the TTL, within stale-while-revalidate
	s.SetFaults(erpsim.Fault{Path: gateway, Delay: time.Hour})
	for range 2 {
		for top := 1; top <= keys; top++ {
			if err := read(top); err != nil {
				t.Fatalf("a stale read while ERP.net hangs: %v", err)
			}
		}
	}
	st := c.Stats()
	// each pass: the keys refreshing already start nothing, the others find no room
	if skipped := int64(2 * (keys - erpclient.MaxRefreshes)); st.CacheRefreshes != erpclient.MaxRefreshes || st.CacheRefreshesSkipped != skipped {
		t.Errorf("%d refreshes started, %d skipped; want %d and %d", st.CacheRefreshes, st.CacheRefreshesSkipped,
			erpclient.MaxRefreshes, skipped)
	}
	if st.CacheStale != 2*keys {
		t.Errorf("%d stale answers, want %d", st.CacheStale, 2*keys)
	}
}

// Stale-if-error is bounded by the entry's age when it is served, not when it was looked up: a read that fails
// after the bound passed while it waited gets the failure, not the expired answer.
func TestCache_StaleIfErrorBoundHoldsAfterASlowFailure(t *testing.T) {
	clock := newTestClock()
	var s *erpsim.Sim
	var slow atomic.Bool
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() && strings.HasPrefix(r.URL.Path, gateway) {
			clock.Advance(30 * time.Second) // ERP.net takes its time to fail
		}
		s.Handler().ServeHTTP(w, r)
	}))
	s = startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited(), PublicURL: "http://" + proxy.Listener.Addr().String()})
	proxy.Start()
	t.Cleanup(proxy.Close)
	c := cachedClient(t, s, clock)
	ctx := context.Background()
	if _, err := ordersOf(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	// TTL 5s + stale-if-error 1m: at 50s the entry may still be served if ERP.net fails at once...
	clock.Advance(50 * time.Second)
	s.SetFaults(erpsim.Fault{Path: gateway, Status: http.StatusBadGateway})
	if _, err := ordersOf(ctx, c, 1); err != nil {
		t.Fatalf("within stale-if-error: %v", err)
	}
	// ...but not when the failure comes after the bound
	slow.Store(true)
	fctx, f := erpclient.WithFreshness(ctx)
	if _, err := ordersOf(fctx, c, 1); !errors.Is(err, erpclient.ErrUnavailable) {
		t.Errorf("a failure that ended past the stale bound: %v, %+v; want ErrUnavailable", err, f.Report())
	}
}
