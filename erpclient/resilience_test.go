package erpclient_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// These tests drive the client through erpsim's fault knobs: the breaker,
// retries of each fault kind, and an identity-server outage. They count
// upstream requests; nothing here asserts how long anything took.

// testClock is a settable clock shared by erpsim and the client.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now()} }

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *testClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func listProduct(ctx context.Context, c *erpclient.Client, n int) error {
	_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Top: 1,
		Filter: erpclient.StartsWith("PartNumber", fmt.Sprint(n))})
	return err
}

const gateway = "/api/domain/odata/"

func TestSim_BreakerOpensFailsFastAndRecovers(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Unlimited()})
	c := simClient(t, s, func(cfg *erpclient.Config) {
		cfg.Clock = clock.Now
		cfg.Scheduler.BreakerThreshold = 3
		cfg.Scheduler.BreakerCooldown = time.Minute
	})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if h := c.Health(); h.Breaker != erpclient.BreakerClosed || h.Token != erpclient.TokenValid || h.Degraded() {
		t.Fatalf("healthy client reports %+v", h)
	}

	// ERP.net's gateway fails: the third consecutive failure opens the
	// breaker, and the read's last retry is refused without a request
	s.SetFaults(erpsim.Fault{Path: gateway, Status: 502})
	s.ResetRequests()
	err := listProduct(ctx, c, 1)
	if !errors.Is(err, erpclient.ErrCircuitOpen) || !errors.Is(err, erpclient.ErrUnavailable) {
		t.Fatalf("read against a failing ERP.net: %v, want ErrCircuitOpen (an ErrUnavailable)", err)
	}
	if got := len(domainRequests(s)); got != 3 {
		t.Errorf("%d upstream requests before the breaker opened, want 3", got)
	}
	h := c.Health()
	if h.Breaker != erpclient.BreakerOpen || h.ConsecutiveFailures != 3 || h.LastFailure != "status" || !h.Degraded() || h.ProbeAt.IsZero() {
		t.Errorf("after 3 failures: %+v", h)
	}

	// open: every call fails fast, nothing reaches ERP.net
	s.ResetRequests()
	const n = 20
	errs := runConcurrently(n, func(i int) error { return listProduct(ctx, c, 100+i) })()
	for _, err := range errs {
		if !errors.Is(err, erpclient.ErrCircuitOpen) {
			t.Fatalf("call while open: %v, want ErrCircuitOpen", err)
		}
	}
	if got := len(domainRequests(s)); got != 0 {
		t.Errorf("%d upstream requests while the breaker is open, want 0", got)
	}
	if st := c.Stats(); st.BreakerOpened != 1 || st.CircuitRefused < n {
		t.Errorf("stats while open: %d openings, %d refused calls", st.BreakerOpened, st.CircuitRefused)
	}

	// after the cool-down, still failing: exactly one probe goes out, however
	// many callers arrive, and its failure opens the breaker again
	clock.Advance(time.Minute + time.Second)
	errs = runConcurrently(n, func(i int) error { return listProduct(ctx, c, 200+i) })()
	for _, err := range errs {
		if !errors.Is(err, erpclient.ErrUnavailable) {
			t.Fatalf("call while the probe fails: %v, want ErrUnavailable", err)
		}
	}
	if got := len(domainRequests(s)); got != 1 {
		t.Errorf("%d upstream requests after the cool-down, want 1 probe", got)
	}
	if h := c.Health(); h.Breaker != erpclient.BreakerOpen || h.ConsecutiveFailures != 4 {
		t.Errorf("after a failed probe: %+v", h)
	}

	// ERP.net is back: the next probe closes the breaker and everyone is served
	s.SetFaults()
	clock.Advance(time.Minute + time.Second)
	s.ResetRequests()
	noErrors(t, runConcurrently(n, func(i int) error { return listProduct(ctx, c, 300+i) })())
	if h := c.Health(); h.Breaker != erpclient.BreakerClosed || h.ConsecutiveFailures != 0 || h.Degraded() {
		t.Errorf("after recovery: %+v", h)
	}
	if got := len(domainRequests(s)); got == 0 || got > n {
		t.Errorf("%d upstream requests for %d calls after recovery", got, n)
	}
}

func TestSim_BreakerIgnoresAnswersOfAWorkingERP(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Scheduler.BreakerThreshold = 2 })
	ctx := context.Background()
	// 404s, 403s and operation failures (500 with ERP.net's envelope) are
	// answers, not outages: many in a row do not open the breaker
	for _, f := range []erpsim.Fault{{Path: gateway, Status: 404}, {Path: gateway, Status: 403}, {Path: gateway, Status: 500}} {
		s.SetFaults(f)
		for i := range 3 {
			// a 500 that outlives its retries is unavailable, but never a refusal of the breaker
			err := listProduct(ctx, c, i)
			if err == nil || errors.Is(err, erpclient.ErrCircuitOpen) || (f.Status != 500 && errors.Is(err, erpclient.ErrUnavailable)) {
				t.Fatalf("status %d: %v", f.Status, err)
			}
		}
	}
	if h := c.Health(); h.Breaker != erpclient.BreakerClosed || h.ConsecutiveFailures != 0 {
		t.Errorf("after 4xx and operation failures: %+v", h)
	}
	// disabled breaker: outages are retried, never refused
	s.SetFaults(erpsim.Fault{Path: gateway, Status: 504})
	off := simClient(t, s, func(cfg *erpclient.Config) { cfg.Scheduler.BreakerThreshold = -1 })
	for i := range 3 {
		if err := listProduct(ctx, off, i); !errors.Is(err, erpclient.ErrUnavailable) || errors.Is(err, erpclient.ErrCircuitOpen) {
			t.Fatalf("disabled breaker: %v", err)
		}
	}
	if h := off.Health(); h.Breaker != erpclient.BreakerClosed {
		t.Errorf("disabled breaker reports %s", h.Breaker)
	}
}

// faultKinds are the upstream failures a read survives by retrying.
var faultKinds = []struct {
	name  string
	fault erpsim.Fault
}{
	{"502", erpsim.Fault{Path: gateway, Status: 502}},
	{"504", erpsim.Fault{Path: gateway, Status: 504}},
	{"malformed JSON", erpsim.Fault{Path: gateway, Malformed: true}},
	{"dropped connection", erpsim.Fault{Path: gateway, Drop: true}},
	{"hung request", erpsim.Fault{Path: gateway, Delay: time.Hour}},
}

func TestSim_ReadsRetryEveryFaultKind(t *testing.T) {
	for _, tt := range faultKinds {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
			c := simClient(t, s, nil)
			// a deadline: the hung attempt gets half of it, the retry the rest
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			defer cancel()
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}

			// a plain GET: two failures, then the answer
			f := tt.fault
			f.Count = 2
			s.SetFaults(f)
			s.ResetRequests()
			if tt.name == "hung request" {
				f.Count = 1 // one hung attempt uses half the deadline; one is enough
				s.SetFaults(f)
			}
			if err := listProduct(ctx, c, 1); err != nil {
				t.Fatalf("read after %d faults: %v", f.Count, err)
			}
			// (a dropped GET may also be repeated by net/http itself on a reused
			// connection, so only the $batch below counts requests exactly)

			// a $batch (a POST: net/http never repeats it): exactly one more
			// request per fault, all chunks retried together
			s.SetFaults(f)
			before := c.Stats()
			ids := make([]string, 100)
			for i := range ids {
				ids[i] = fixture.ID("General_Products_Products", i+1)
			}
			got, err := erpclient.ByIDs[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts}, ids)
			if err != nil || len(got) == 0 {
				t.Fatalf("ByIDs after %d faults: %d products, %v", f.Count, len(got), err)
			}
			// the client's own count: erpsim logs a hung request only when it ends
			after := c.Stats()
			if got := after.UpstreamRequests - before.UpstreamRequests; got != int64(f.Count+1) || after.Batches-before.Batches != got {
				t.Errorf("%d upstream requests (%d $batch), want %d $batch", got, after.Batches-before.Batches, f.Count+1)
			}
			if after.Retries == before.Retries {
				t.Error("no retries counted")
			}
			if h := c.Health(); h.Breaker != erpclient.BreakerClosed {
				t.Errorf("breaker %s after isolated faults", h.Breaker)
			}
		})
	}
}

func TestSim_WritesAreNeverRetried(t *testing.T) {
	for _, tt := range faultKinds {
		t.Run(tt.name, func(t *testing.T) {
			s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
			c := simClient(t, s, func(cfg *erpclient.Config) {
				cfg.Scopes = []string{"read", "update"}
				cfg.Scheduler.AttemptTimeout = 2 * time.Second // the hung write
			})
			ctx := context.Background()
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			f := tt.fault
			f.Count = 1
			f.Method = "POST"
			s.SetFaults(f)
			before := c.Stats().UpstreamRequests
			_, err := c.CreateSalesOrder(ctx, erpclient.NewSalesOrder{
				Customer: erpclient.Ref{Set: erpclient.SetCustomers, ID: fixture.CustomerID(1)},
				Lines: []erpclient.NewSalesOrderLine{{
					Product:  erpclient.Ref{Set: erpclient.SetProducts, ID: fixture.ID("General_Products_Products", 1)},
					Quantity: erpclient.Quantity{Value: "1"}}},
			})
			if !errors.Is(err, erpclient.ErrUnavailable) {
				t.Fatalf("write under %s: %v, want ErrUnavailable", tt.name, err)
			}
			if got := c.Stats().UpstreamRequests - before; got != 1 {
				t.Errorf("%d upstream requests for one failed write, want 1", got)
			}
			if st := c.Stats(); st.Retries != 0 {
				t.Errorf("%d retries of a write", st.Retries)
			}
		})
	}
}

func TestSim_IdentityOutage(t *testing.T) {
	clock := newTestClock()
	s := startSim(t, erpsim.Options{Clock: clock.Now, TokenLifetime: 10 * time.Minute, Limits: erpsim.Unlimited()})
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Clock = clock.Now })
	ctx := context.Background()
	if err := listProduct(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	first := c.Health().TokenExpiry

	// the identity server goes down; the token is due for refresh (8 of its
	// 10 minutes) but still valid: calls keep being served with it
	s.SetFaults(erpsim.Fault{Path: "/id/connect/token", Status: 503})
	clock.Advance(9 * time.Minute)
	if err := listProduct(ctx, c, 2); err != nil {
		t.Fatalf("read with a valid token while the identity server is down: %v", err)
	}
	waitFor(t, "the failed refresh", func() bool { return c.Health().Token == erpclient.TokenStale })
	for i := range 5 {
		if err := listProduct(ctx, c, 10+i); err != nil {
			t.Fatalf("read with a valid token while the identity server is down: %v", err)
		}
	}
	h := c.Health()
	if !h.TokenExpiry.Equal(first) || !h.Degraded() || h.TokenError == "" || h.Breaker != erpclient.BreakerClosed {
		t.Errorf("while refresh fails: %+v", h)
	}
	// the failed refresh backs off: one attempt, not one per call
	if got := c.Stats().TokenRequests; got != 2 {
		t.Errorf("%d token requests, want 2 (the first and one failed refresh)", got)
	}

	// the token expires: calls fail with ErrUnavailable without reaching the
	// Domain API, and the identity server is asked again only after a back-off
	clock.Advance(2 * time.Minute)
	s.ResetRequests()
	for i := range 3 {
		if err := listProduct(ctx, c, 20+i); !errors.Is(err, erpclient.ErrUnavailable) {
			t.Fatalf("read after expiry during the outage: %v, want ErrUnavailable", err)
		}
	}
	if got := len(domainRequests(s)); got != 0 {
		t.Errorf("%d Domain API requests without a valid token", got)
	}
	if got := c.Stats().TokenRequests; got != 3 {
		t.Errorf("%d token requests, want 3 (one more after expiry)", got)
	}
	if h := c.Health(); h.Token != erpclient.TokenExpired || !h.Degraded() || h.Breaker != erpclient.BreakerClosed {
		t.Errorf("after expiry: %+v", h)
	}

	// the identity server is back: the next call after the back-off recovers
	s.SetFaults()
	clock.Advance(time.Minute)
	if err := listProduct(ctx, c, 30); err != nil {
		t.Fatalf("read after the outage: %v", err)
	}
	if h := c.Health(); h.Token != erpclient.TokenValid || h.Degraded() || h.TokenError != "" {
		t.Errorf("after recovery: %+v", h)
	}
}

func TestClient_NoGoroutinesAfterClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newTestClock()
	s, err := erpsim.Start(ctx, erpsim.Options{Clock: clock.Now, TokenLifetime: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := erpclient.New(ctx, erpclient.Config{InstanceURL: s.URL(), ClientID: fixture.BFFClientID,
		ClientSecret: fixture.BFFSecret, Clock: clock.Now,
		Scheduler: erpclient.SchedulerConfig{BreakerThreshold: 2, BreakerCooldown: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	// traffic of every kind: shared and batched reads, cancelled callers, a
	// background token refresh, an open breaker
	noErrors(t, runConcurrently(30, func(i int) error { return listProduct(ctx, c, i%10) })())
	short, stop := context.WithCancel(ctx)
	wait := runConcurrently(10, func(i int) error { return listProduct(short, c, 100+i) })
	stop()
	wait()
	clock.Advance(9 * time.Minute)
	if err := listProduct(ctx, c, 1); err != nil {
		t.Fatal(err)
	}
	s.SetFaults(erpsim.Fault{Path: gateway, Drop: true})
	_ = listProduct(ctx, c, 2)
	c.Close()
	if err := listProduct(ctx, c, 3); !errors.Is(err, erpclient.ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
	s.Close()
}

func TestSim_BreakerCountsBatchesWhosePartsAllFail(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Scheduler.BreakerThreshold = 2 })
	ctx := context.Background()
	ids := make([]string, 100) // three chunks: one $batch
	for i := range ids {
		ids[i] = fixture.ID("General_Products_Products", i+1)
	}
	if _, err := erpclient.ByIDs[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts}, ids); err != nil {
		t.Fatal(err)
	}
	// the $batch itself is answered 200, but every part is a gateway error
	s.SetFaults(erpsim.Fault{Path: gateway + erpclient.SetProducts, Status: 502})
	before := c.Stats().UpstreamRequests
	_, err := erpclient.ByIDs[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts}, ids)
	if !errors.Is(err, erpclient.ErrCircuitOpen) {
		t.Fatalf("ByIDs with every part failing: %v, want ErrCircuitOpen", err)
	}
	if got := c.Stats().UpstreamRequests - before; got != 2 {
		t.Errorf("%d upstream requests, want 2 before the breaker opened", got)
	}
	if h := c.Health(); h.Breaker != erpclient.BreakerOpen || h.LastFailure != "status" {
		t.Errorf("after failed parts: %+v", h)
	}
}

func TestSim_SharedAnswerIsEachCallersOwn(t *testing.T) {
	ctx := context.Background()
	s, c, release := gatedSim(t)
	first := runConcurrently(1, func(int) error { return c.Ping(ctx) })
	waitFor(t, "the first request held", func() bool { return c.Stats().InFlight == 1 })
	const n = 10
	pages := make([]erpclient.Page[erpclient.Product], n)
	wait := runConcurrently(n, func(i int) error {
		p, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Top: 2, Count: true})
		if err != nil {
			return err
		}
		if len(p.Items) != 2 || p.Count == nil {
			return fmt.Errorf("call %d: %d items, count %v", i, len(p.Items), p.Count)
		}
		// a caller changing its page must not change anyone else's
		p.Items[0].PartNumber, *p.Count = fmt.Sprint("mine-", i), i
		p.Items = append(p.Items[:1], erpclient.Product{})
		pages[i] = p
		return nil
	})
	reqs := releaseQueued(t, s, c, n, release, first, wait)
	if len(reqs) != 2 {
		t.Fatalf("%d upstream requests, want the held one and one shared GET", len(reqs))
	}
	for i, p := range pages {
		if p.Items[0].PartNumber != fmt.Sprint("mine-", i) || *p.Count != i || p.Items[1].ID != "" {
			t.Errorf("call %d sees another caller's changes: %q, count %d", i, p.Items[0].PartNumber, *p.Count)
		}
	}
}

func TestSim_HungRequestGivesItsSlotUp(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	c := simClient(t, s, func(cfg *erpclient.Config) {
		cfg.Scheduler.SlowAfter = 50 * time.Millisecond
		cfg.Scheduler.AttemptTimeout = time.Hour
	})
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// one read hangs (at the gateway, so erpsim's session slot stays free)
	s.SetFaults(erpsim.Fault{Path: gateway + erpclient.SetCurrencies, Delay: time.Hour})
	hungCtx, cancel := context.WithCancel(ctx)
	hung := runConcurrently(1, func(int) error {
		_, err := erpclient.List[erpclient.Currency](hungCtx, c, erpclient.Query{Set: erpclient.SetCurrencies})
		return err
	})
	waitFor(t, "the hung read in flight", func() bool { return c.Stats().InFlight == 1 })
	// others are served meanwhile, though the client allows one request in flight
	bounded, stop := context.WithTimeout(ctx, 10*time.Second) // a generous bound, not a measurement
	defer stop()
	for i := range 5 {
		if err := listProduct(bounded, c, i); err != nil {
			t.Fatalf("read while another hangs: %v", err)
		}
	}
	if st := c.Stats(); st.InFlight != 1 || st.Calls < 6 {
		t.Errorf("stats while one read hangs: %+v", st)
	}
	cancel()
	if err := hung()[0]; !errors.Is(err, context.Canceled) {
		t.Errorf("hung read: %v, want its caller's cancellation", err)
	}
}

func TestSim_ReadsRetryTransient500s(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	c := simClient(t, s, nil)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// ERP.net's envelope with an exception that is not about the request
	// (erpsim's injected fault): the read is asked again
	s.SetFaults(erpsim.Fault{Path: gateway, Status: 500, Count: 2})
	before := c.Stats()
	if err := listProduct(ctx, c, 1); err != nil {
		t.Fatalf("read after two 500s: %v", err)
	}
	after := c.Stats()
	if got := after.UpstreamRequests - before.UpstreamRequests; got != 3 || after.Retries-before.Retries != 2 {
		t.Errorf("%d upstream requests, %d retries; want 3 and 2", got, after.Retries-before.Retries)
	}
	// a 500 about the request itself (no such property) is final
	s.SetFaults()
	before = c.Stats()
	_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts, Filter: erpclient.Eq("NoSuchProperty", erpclient.String("x"))})
	var e *erpclient.Error
	if !errors.As(err, &e) || e.Status != 500 {
		t.Fatalf("unknown property: %v, want ERP.net's 500", err)
	}
	if got := c.Stats().UpstreamRequests - before.UpstreamRequests; got != 1 {
		t.Errorf("%d upstream requests for a failing query, want 1", got)
	}
	if h := c.Health(); h.Breaker != erpclient.BreakerClosed || h.ConsecutiveFailures != 0 {
		t.Errorf("operation failures moved the breaker: %+v", h)
	}
}
