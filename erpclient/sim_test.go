package erpclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// These tests run the client against erpsim over TCP: discovery, the real
// token endpoint, the Domain API with ERP.net's session limits.

func startSim(t *testing.T, opts erpsim.Options) *erpsim.Sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := erpsim.Start(ctx, opts)
	if err != nil {
		cancel()
		t.Fatalf("erpsim.Start: %v", err)
	}
	t.Cleanup(func() { s.Close(); cancel() })
	return s
}

func simClient(t *testing.T, s *erpsim.Sim, mod func(*erpclient.Config)) *erpclient.Client {
	t.Helper()
	return newClient(t, erpclient.Config{InstanceURL: s.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret}, mod)
}

// domainRequests is erpsim's log of Domain API requests.
func domainRequests(s *erpsim.Sim) []erpsim.Request {
	var out []erpsim.Request
	for _, r := range s.Requests() {
		if strings.HasPrefix(r.Path, "/api/domain/odata/") {
			out = append(out, r)
		}
	}
	return out
}

// gatedSim starts erpsim behind a proxy (its public URL) whose first Domain
// API request waits until released: while it is held, the client's callers
// queue up, so what the scheduler does with them is deterministic.
func gatedSim(t *testing.T) (s *erpsim.Sim, c *erpclient.Client, release func()) {
	t.Helper()
	gate := make(chan struct{})
	var once, closeOnce sync.Once
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/domain/odata/") {
			held := false
			once.Do(func() { held = true })
			if held {
				<-gate
			}
		}
		s.Handler().ServeHTTP(w, r)
	}))
	s = startSim(t, erpsim.Options{PublicURL: "http://" + proxy.Listener.Addr().String()})
	proxy.Start()
	release = func() { closeOnce.Do(func() { close(gate) }) }
	t.Cleanup(proxy.Close)
	t.Cleanup(release)
	return s, simClient(t, s, nil), release
}

func customerScope(n ...int) scope {
	var s scope
	for _, i := range n {
		s.customers = append(s.customers, fixture.CustomerID(i))
	}
	return s
}

func TestSim_PagingToTheEnd(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	c := simClient(t, s, nil)
	ctx := context.Background()

	total, err := erpclient.Count(ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true})
	if err != nil {
		t.Fatal(err)
	}
	s.ResetRequests()
	orders, err := erpclient.All[erpclient.SalesOrder](ctx, c, erpclient.Query{
		Set: erpclient.SetSalesOrders, Unscoped: true, Top: 150, Select: []string{"DocumentNo", "State", "Customer", "DocumentDate"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != total || total < 1000 {
		t.Fatalf("All read %d orders, $count says %d", len(orders), total)
	}
	seen := map[string]bool{}
	for _, o := range orders {
		if o.ID == "" || seen[o.ID] || o.Customer == nil || !o.State.Valid() || o.DocumentDate.IsZero() {
			t.Fatalf("bad or repeated order %+v", o)
		}
		seen[o.ID] = true
	}
	if got, want := len(domainRequests(s)), (total+149)/150; got != want {
		t.Errorf("%d upstream requests for %d pages", got, want)
	}

	// one page with a cursor, then the next from the cursor
	p1, err := erpclient.List[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true, Top: 7, Count: true})
	if err != nil || len(p1.Items) != 7 || p1.Next == nil || p1.Count == nil || *p1.Count != total {
		t.Fatalf("first page: %d items, next %v, count %v, %v", len(p1.Items), p1.Next, p1.Count, err)
	}
	cur, err := erpclient.DecodeCursor(p1.Next.Encode())
	if err != nil {
		t.Fatal(err)
	}
	p2, err := erpclient.List[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true, Top: 7, Cursor: cur})
	if err != nil || len(p2.Items) != 7 || p2.Items[0].ID == p1.Items[6].ID || seen[p2.Items[0].ID] != true {
		t.Fatalf("second page: %+v, %v", p2.Items, err)
	}

	// ordered paging uses $skip
	sorted, err := erpclient.All[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true, Top: 400,
		OrderBy: []erpclient.OrderBy{{Prop: "DocumentNo", Desc: true}}, Select: []string{"DocumentNo"}})
	if err != nil || len(sorted) != total {
		t.Fatalf("ordered: %d, %v", len(sorted), err)
	}
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1].DocumentNo < sorted[i].DocumentNo {
			t.Fatalf("not in descending order at %d: %s < %s", i, sorted[i-1].DocumentNo, sorted[i].DocumentNo)
		}
	}
}

func TestSim_ScopedReads(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	c := simClient(t, s, nil)
	ctx := context.Background()
	sc := customerScope(1)
	mine, err := erpclient.All[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: sc, Select: []string{"Customer"}})
	if err != nil || len(mine) == 0 {
		t.Fatalf("scoped orders: %d, %v", len(mine), err)
	}
	for _, o := range mine {
		if o.Customer.ID != fixture.CustomerID(1) {
			t.Fatalf("order %s of customer %s leaked into customer 1's scope", o.ID, o.Customer.ID)
		}
	}
	n, err := erpclient.Count(ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: sc})
	if err != nil || n != len(mine) {
		t.Errorf("scoped count %d, %v; list has %d", n, err, len(mine))
	}

	// another customer's order is not found within this scope
	other, err := erpclient.List[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: customerScope(2), Top: 1})
	if err != nil || len(other.Items) == 0 {
		t.Fatalf("customer 2's orders: %v", err)
	}
	if _, err := erpclient.Get[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: sc}, other.Items[0].ID); !errors.Is(err, erpclient.ErrNotFound) {
		t.Errorf("Get of another customer's order: %v, want ErrNotFound", err)
	}
	got, err := erpclient.Get[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: sc, Expand: []erpclient.Expand{{Prop: "Lines"}}}, mine[0].ID)
	if err != nil || got.ID != mine[0].ID || len(got.Lines) == 0 || got.Lines[0].Quantity == nil {
		t.Errorf("Get with lines: %+v, %v", got, err)
	}

	// ByIDs over many ids: chunks in one $batch, only the scope's rows come back
	all, err := erpclient.All[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true, Top: 300, Select: []string{"Customer"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	wantMine := 0
	for _, o := range all[:300] {
		ids = append(ids, o.ID)
		if o.Customer.ID == fixture.CustomerID(1) {
			wantMine++
		}
	}
	s.ResetRequests()
	byID, err := erpclient.ByIDs[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: sc, Select: []string{"Customer"}}, ids)
	if err != nil || len(byID) != wantMine {
		t.Fatalf("ByIDs: %d rows (want %d), %v", len(byID), wantMine, err)
	}
	for _, r := range domainRequests(s) {
		if len(r.RawQuery) > 2000 {
			t.Errorf("URL query of %d bytes", len(r.RawQuery))
		}
	}
	// the chunks are queued together: one $batch carries them all
	if reqs := domainRequests(s); len(reqs) != 1 || reqs[0].BatchParts < 2 {
		t.Errorf("ByIDs of %d ids: %+v, want one $batch with every chunk", len(ids), reqs)
	}
	unscoped, err := erpclient.ByIDs[erpclient.SalesOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true}, ids)
	if err != nil || len(unscoped) != len(ids) {
		t.Fatalf("unscoped ByIDs: %d of %d, %v", len(unscoped), len(ids), err)
	}
}

func TestSim_ErrorMappings(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Scopes = []string{"read", "update"} })
	ctx := context.Background()
	list := func(ctx context.Context) error {
		_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Top: 1})
		return err
	}
	if err := list(ctx); err != nil {
		t.Fatal(err)
	}
	bounded := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	// retries: how many times the client tries again (3 for outages, within
	// a deadline long enough for its backoff; none when Retry-After outlasts
	// the deadline or the answer is final)
	tests := []struct {
		name    string
		fault   erpsim.Fault
		want    error
		retries int64
	}{
		{"429", erpsim.Fault{Path: "/api/domain/odata/", Status: 429, RetryAfter: 30}, erpclient.ErrBusy, 0},
		{"503", erpsim.Fault{Path: "/api/domain/odata/", Status: 503, RetryAfter: 60}, erpclient.ErrBusy, 0},
		{"502", erpsim.Fault{Path: "/api/domain/odata/", Status: 502}, erpclient.ErrUnavailable, 3},
		{"malformed", erpsim.Fault{Path: "/api/domain/odata/", Malformed: true}, erpclient.ErrUnavailable, 3},
		{"dropped", erpsim.Fault{Path: "/api/domain/odata/", Drop: true}, erpclient.ErrUnavailable, 3},
		{"404", erpsim.Fault{Path: "/api/domain/odata/", Status: 404}, erpclient.ErrNotFound, 0},
		{"403", erpsim.Fault{Path: "/api/domain/odata/", Status: 403}, erpclient.ErrForbidden, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// a fresh instance each: a 429/503 pauses the whole client, as it should
			s := startSim(t, erpsim.Options{})
			c := simClient(t, s, nil)
			s.SetFaults(tt.fault)
			ctx := bounded()
			if tt.retries > 0 {
				ctx = context.Background() // the retries are bounded by count
			}
			_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Top: 1})
			if !errors.Is(err, tt.want) || c.Stats().Retries != tt.retries {
				t.Errorf("err %v after %d retries, want %v after %d", err, c.Stats().Retries, tt.want, tt.retries)
			}
		})
	}

	// a connection dropped once is survived (by the transport's own retry of
	// an idempotent GET on a reused connection, or by the client's retry)
	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Drop: true, Count: 1})
	if err := list(ctx); err != nil {
		t.Errorf("read after one drop: %v", err)
	}
	s.SetFaults()

	// real answers: unknown set, stale ObjectVersion, released document, bad filter
	if _, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: "General_Products_Nope"}); !errors.Is(err, erpclient.ErrNotFound) {
		t.Errorf("unknown set: %v", err)
	}
	order := newOrder(t, c)
	stale := 0
	if order.ObjectVersion != nil {
		stale = *order.ObjectVersion + 5
	}
	err := c.Patch(ctx, erpclient.SetSalesOrders, order.ID, &stale, erpclient.Prop{Name: "DocumentNotes", Value: "x"})
	if !errors.Is(err, erpclient.ErrConflict) {
		t.Errorf("stale ObjectVersion: %v, want ErrConflict", err)
	}
	if err := c.ChangeState(ctx, erpclient.SetSalesOrders, order.ID, erpclient.StateReleased); err != nil {
		t.Fatal(err)
	}
	err = c.Patch(ctx, erpclient.SetSalesOrders, order.ID, nil, erpclient.Prop{Name: "DocumentNotes", Value: "x"})
	if !errors.Is(err, erpclient.ErrConflict) {
		t.Errorf("released order: %v, want ErrConflict", err)
	}
	// read-only client: writes are forbidden by the missing update scope
	ro := simClient(t, s, nil)
	err = ro.Patch(ctx, erpclient.SetSalesOrders, order.ID, nil, erpclient.Prop{Name: "DocumentNotes", Value: "x"})
	if !errors.Is(err, erpclient.ErrForbidden) {
		t.Errorf("write without update scope: %v, want ErrForbidden", err)
	}
	// wrong secret
	bad := simClient(t, s, func(cfg *erpclient.Config) { cfg.ClientSecret = "nope" })
	if err := bad.Ping(ctx); !errors.Is(err, erpclient.ErrUnauthorized) {
		t.Errorf("wrong secret: %v, want ErrUnauthorized", err)
	}
}

func newOrder(t *testing.T, c *erpclient.Client) erpclient.SalesOrder {
	t.Helper()
	ctx := context.Background()
	prods, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Top: 2})
	if err != nil || len(prods.Items) < 2 {
		t.Fatalf("products: %v", err)
	}
	o, err := c.CreateSalesOrder(ctx, erpclient.NewSalesOrder{
		Customer:                erpclient.Ref{Set: erpclient.SetCustomers, ID: fixture.CustomerID(1)},
		CustomerPurchaseOrderNo: "PO-erpclient",
		Lines: []erpclient.NewSalesOrderLine{
			{Product: erpclient.Ref{Set: erpclient.SetProducts, ID: prods.Items[0].ID}, Quantity: erpclient.Quantity{Value: "2"}},
			{Product: erpclient.Ref{Set: erpclient.SetProducts, ID: prods.Items[1].ID}, Quantity: erpclient.Quantity{Value: "1.5"}},
		},
	})
	if err != nil {
		t.Fatalf("CreateSalesOrder: %v", err)
	}
	if o.ID == "" || o.DocumentNo == "" || o.State != erpclient.StateNew || o.Customer.ID != fixture.CustomerID(1) {
		t.Fatalf("created order %+v", o)
	}
	return o
}

func TestSim_Writes(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Scopes = []string{"read", "update"} })
	ctx := context.Background()
	order := newOrder(t, c)
	q := erpclient.Query{Set: erpclient.SetSalesOrders, Scope: customerScope(1), Select: []string{"ObjectVersion", "DocumentNotes", "State"}, Expand: []erpclient.Expand{{Prop: "Lines"}}}
	got, err := erpclient.Get[erpclient.SalesOrder](ctx, c, q, order.ID)
	if err != nil || got.ObjectVersion == nil || len(got.Lines) != 2 || got.Lines[1].Quantity.Value != "1.5" {
		t.Fatalf("read back: %+v, %v", got, err)
	}
	if err := c.Patch(ctx, erpclient.SetSalesOrders, order.ID, got.ObjectVersion, erpclient.Prop{Name: "DocumentNotes", Value: "leave at the door"}); err != nil {
		t.Fatalf("Patch: %v", err)
	}
	got2, err := erpclient.Get[erpclient.SalesOrder](ctx, c, q, order.ID)
	if err != nil || got2.DocumentNotes != "leave at the door" || *got2.ObjectVersion == *got.ObjectVersion {
		t.Fatalf("after patch: %+v, %v", got2, err)
	}

	// a changeset that creates and releases an order applies as one
	before, _ := erpclient.Count(ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true})
	cs := &erpclient.Changeset{}
	h := cs.Create(erpclient.SetSalesOrders, erpclient.NewSalesOrder{
		Customer: erpclient.Ref{Set: erpclient.SetCustomers, ID: fixture.CustomerID(1)},
		Lines:    []erpclient.NewSalesOrderLine{{Product: *got.Lines[0].Product, Quantity: erpclient.Quantity{Value: "1"}}},
	})
	cs.ChangeState(erpclient.SetSalesOrders, h, erpclient.StateReleased)
	res, err := c.Apply(ctx, cs)
	if err != nil || len(res) != 2 {
		t.Fatalf("Apply: %v, %v", res, err)
	}
	after, _ := erpclient.Count(ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true})
	if after != before+1 {
		t.Errorf("orders %d → %d", before, after)
	}

	// a changeset whose second operation fails applies nothing
	cs = &erpclient.Changeset{}
	cs.Create(erpclient.SetSalesOrders, erpclient.NewSalesOrder{
		Customer: erpclient.Ref{Set: erpclient.SetCustomers, ID: fixture.CustomerID(1)},
		Lines:    []erpclient.NewSalesOrderLine{{Product: *got.Lines[0].Product, Quantity: erpclient.Quantity{Value: "1"}}},
	})
	stale := *got2.ObjectVersion - 1
	cs.Patch(erpclient.SetSalesOrders, order.ID, &stale, erpclient.Prop{Name: "DocumentNotes", Value: "lost"})
	if _, err := c.Apply(ctx, cs); !errors.Is(err, erpclient.ErrConflict) {
		t.Errorf("failing changeset: %v, want ErrConflict", err)
	}
	if n, _ := erpclient.Count(ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true}); n != after {
		t.Errorf("failed changeset left %d orders, want %d", n, after)
	}
}

func TestSim_TokenRefresh(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := startSim(t, erpsim.Options{Clock: clock, Limits: erpsim.Unlimited()})
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Clock = clock })
	ctx := context.Background()
	const n = 25
	callAll := func(round int) {
		t.Helper()
		wait := runConcurrently(n, func(i int) error {
			_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Top: 1,
				Filter: erpclient.StartsWith("PartNumber", fmt.Sprint(round*100+i))})
			return err
		})
		for _, err := range wait() {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	callAll(1)
	if got := s.Stats().TokenRequests; got != 1 {
		t.Fatalf("%d token requests for %d concurrent calls, want 1", got, n)
	}

	// the token nears expiry (both clocks move): one refresh for everyone
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	callAll(2)
	// The refresh runs in the background (the calls keep the valid token):
	// wait until its token is in hand, then count the exchanges.
	firstExpiry := now.Add(time.Minute)
	waitFor(t, "the refreshed token", func() bool { return c.Health().TokenExpiry.After(firstExpiry) })
	if got := s.Stats().TokenRequests; got != 2 {
		t.Fatalf("%d token requests after expiry, want 2", got)
	}

	// the instance refuses every token issued so far: one new exchange, no failures
	s.RevokeTokens()
	callAll(3)
	st := s.Stats()
	if st.TokenRequests != 3 || st.Status401 == 0 {
		t.Fatalf("after revocation: %d token requests (want 3), %d 401s", st.TokenRequests, st.Status401)
	}
}

// releaseQueued waits until n calls queue behind the held request, releases
// it, checks that every call succeeded and returns the Domain API requests
// erpsim saw from the release on.
func releaseQueued(t *testing.T, s *erpsim.Sim, c *erpclient.Client, n int, release func(), calls ...func() []error) []erpsim.Request {
	t.Helper()
	waitFor(t, "all calls queued", func() bool { return c.Stats().Queued == int64(n) })
	s.ResetRequests()
	release()
	for _, wait := range calls {
		noErrors(t, wait())
	}
	return domainRequests(s)
}

func TestSim_Coalescing(t *testing.T) {
	ctx := context.Background()
	// hold runs Ping (token, then one GET held at the gate) and waits until it is in flight
	hold := func(t *testing.T) (*erpsim.Sim, *erpclient.Client, func(), func() []error) {
		s, c, release := gatedSim(t)
		first := runConcurrently(1, func(int) error { return c.Ping(ctx) })
		waitFor(t, "the first request held", func() bool { return c.Stats().InFlight == 1 })
		return s, c, release, first
	}
	t.Run("distinct reads become one $batch", func(t *testing.T) {
		s, c, release, first := hold(t)
		const n = 12
		wait := runConcurrently(n, func(i int) error {
			p, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Top: 1, Cursor: &erpclient.Cursor{Skip: i + 1},
				OrderBy: []erpclient.OrderBy{{Prop: "PartNumber"}}, Select: []string{"PartNumber"}})
			if err == nil && len(p.Items) != 1 {
				err = fmt.Errorf("call %d: %d items", i, len(p.Items))
			}
			return err
		})
		reqs := releaseQueued(t, s, c, n, release, first, wait)
		if len(reqs) != 2 || reqs[1].BatchParts != n {
			t.Errorf("upstream: %+v, want the held GET and one $batch of %d parts", reqs, n)
		}
	})
	t.Run("identical reads become one GET", func(t *testing.T) {
		s, c, release, first := hold(t)
		const n = 40
		q := erpclient.Query{Set: erpclient.SetProducts, Top: 3, Select: []string{"PartNumber"}}
		wait := runConcurrently(n, func(i int) error {
			p, err := erpclient.List[erpclient.Product](ctx, c, q)
			if err == nil && len(p.Items) != 3 {
				err = fmt.Errorf("call %d: %d items", i, len(p.Items))
			}
			return err
		})
		reqs := releaseQueued(t, s, c, n, release, first, wait)
		if len(reqs) != 2 || reqs[1].Method != http.MethodGet || reqs[1].BatchParts != 0 {
			t.Errorf("upstream: %+v, want the held GET and one GET", reqs)
		}
	})
	t.Run("a cancelled caller's part is dropped", func(t *testing.T) {
		s, c, release, first := hold(t)
		cctx, cancel := context.WithCancel(ctx)
		gone := runConcurrently(1, func(int) error {
			_, err := erpclient.List[erpclient.Product](cctx, c, erpclient.Query{Set: erpclient.SetProducts, Filter: erpclient.Eq("PartNumber", erpclient.String("gone"))})
			return err
		})
		stay := runConcurrently(3, func(i int) error {
			_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Filter: erpclient.Eq("PartNumber", erpclient.String(fmt.Sprint(i)))})
			return err
		})
		waitFor(t, "all reads queued", func() bool { return c.Stats().Queued == 4 })
		cancel()
		if err := gone()[0]; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled caller: %v", err)
		}
		s.ResetRequests()
		release()
		noErrors(t, first(), stay())
		reqs := domainRequests(s)
		if len(reqs) != 2 || reqs[1].BatchParts != 3 {
			t.Errorf("upstream: %+v, want the held GET and a $batch of 3 parts", reqs)
		}
	})
}

// TestSim_NoRefusalsAtDefaultLimits: 200 concurrent callers against
// ERP.net's default session limits (1 in flight, queue 5, 600 a minute)
// never see a 429: the scheduler keeps the session inside them.
func TestSim_NoRefusalsAtDefaultLimits(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	c := simClient(t, s, nil)
	ctx := context.Background()
	const callers = 200
	wait := runConcurrently(callers, func(i int) error {
		for j := range 2 {
			q := erpclient.Query{Set: erpclient.SetProducts, Top: 1, Cursor: &erpclient.Cursor{Skip: 1 + (i*2+j)%150},
				OrderBy: []erpclient.OrderBy{{Prop: "PartNumber"}}, Select: []string{"PartNumber"}}
			if _, err := erpclient.List[erpclient.Product](ctx, c, q); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, cs := s.Stats(), c.Stats()
	if st.Status429 != 0 || st.Status503 != 0 || cs.Status429 != 0 {
		t.Errorf("erpsim answered %d 429s and %d 503s", st.Status429, st.Status503)
	}
	if cs.UpstreamRequests >= callers {
		t.Errorf("%d upstream requests for %d calls: reads were not batched", cs.UpstreamRequests, callers*2)
	}
	t.Logf("%d calls → %d upstream requests (%d batches, %d parts, %d coalesced)", cs.Calls, cs.UpstreamRequests, cs.Batches, cs.BatchParts, cs.Coalesced)
}
