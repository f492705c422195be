package loader_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/graph-gophers/dataloader/v7"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph/loader"
)

// env is erpsim on loopback, the BFF's erpclient with batching off (so every upstream read is one GET whose query
// the request log shows), and a signed-in user's access scope.
type env struct {
	sim *erpsim.Sim
	erp *erpclient.Client
	acc *access.Resolver
	ver *auth.Verifier
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	erp, err := erpclient.New(ctx, erpclient.Config{
		InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret, Scopes: []string{"read"},
		Scheduler: erpclient.SchedulerConfig{MaxBatchParts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(erp.Close)
	ver, err := auth.NewVerifier(ctx, auth.Config{Issuer: sim.IdentityURL(), ClientIDs: []string{fixture.PlaygroundClientID}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, erp: erp, acc: access.NewResolver(erp, access.Config{}), ver: ver}
}

// loaders signs login in and returns the loaders of one of their requests, selecting props for every set.
func (e *env) loaders(t *testing.T, login string, props map[string][]string) *loader.Loaders {
	t.Helper()
	scope := e.scope(t, login)
	return loader.New(loader.Deps{
		ERP:   e.erp,
		Scope: func(context.Context) (*access.Scope, error) { return scope, nil },
		Select: func(_ context.Context, set string) []string {
			return append(slices.Clone(props[set]), access.CheckProps(set)...)
		},
	})
}

// reads returns the $filter of every Domain API read of set since the last ResetRequests.
func (e *env) reads(t *testing.T, set string) []string {
	t.Helper()
	var out []string
	for _, r := range e.sim.Requests() {
		if r.Path != "/api/domain/odata/"+set {
			continue
		}
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			t.Fatalf("query of %s: %v", r.Path, err)
		}
		out = append(out, q.Get("$filter"))
	}
	return out
}

// loadAll starts every key in one batch, then waits for each.
func loadAll[V any](ctx context.Context, ld *dataloader.Loader[string, V], keys []string) ([]V, []error) {
	thunks := make([]dataloader.Thunk[V], len(keys))
	for i, k := range keys {
		thunks[i] = ld.Load(ctx, k)
	}
	vs, errs := make([]V, len(keys)), make([]error, len(keys))
	for i, th := range thunks {
		vs[i], errs[i] = th()
	}
	return vs, errs
}

// A batch answers every key in key order: the user's own entities, and a per-key NOT_FOUND for one that does not
// exist and for another customer's (indistinguishable), in one upstream read.
func TestLoaders_KeyOrderAndNotFound(t *testing.T) {
	e := newEnv(t)
	l := e.loaders(t, fixture.MultiLogin, map[string][]string{erpclient.SetCustomers: {"Number"}})
	missing := uuid.NewString()
	keys := []string{fixture.CustomerID(3), missing, fixture.CustomerID(1), fixture.CustomerID(2)}
	e.sim.ResetRequests()
	got, errs := loadAll(context.Background(), l.CustomerByID, keys)
	for i, k := range keys {
		visible := k == fixture.CustomerID(2) || k == fixture.CustomerID(3)
		switch {
		case visible && (errs[i] != nil || got[i] == nil || got[i].ID != k):
			t.Errorf("key %d (%s): got %+v, %v; want that customer", i, k, got[i], errs[i])
		case !visible && !errors.Is(errs[i], loader.ErrNotFound):
			t.Errorf("key %d (%s): got %+v, %v; want ErrNotFound", i, k, got[i], errs[i])
		}
	}
	if got[0] != nil && got[0].Number == "" {
		t.Errorf("customer read without the selected Number: %+v", got[0])
	}
	if r := e.reads(t, erpclient.SetCustomers); len(r) != 1 {
		t.Errorf("%d customer reads %q, want 1", len(r), r)
	}
}

// The same key asked for many times is read once: one upstream read that names each id once, and every caller
// gets the same entity.
func TestLoaders_Deduplicates(t *testing.T) {
	e := newEnv(t)
	l := e.loaders(t, fixture.OwnerLogin, nil)
	c := fixture.CustomerID(1)
	e.sim.ResetRequests()
	got, errs := loadAll(context.Background(), l.CustomerByID, []string{c, c, c, c, c})
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("caller %d: %p, %v; want the one customer %p", i, got[i], errs[i], got[0])
		}
	}
	again, err := l.CustomerByID.Load(context.Background(), c)()
	if err != nil || again != got[0] {
		t.Errorf("a later load: %p, %v; want the cached %p", again, err, got[0])
	}
	r := e.reads(t, erpclient.SetCustomers)
	if len(r) != 1 || !strings.HasPrefix(r[0], "Id in ("+c+")") { // the keys, then the user's scope
		t.Errorf("reads %q, want one naming %s once", r, c)
	}
}

// Long key lists are chunked so that no URL outgrows what ERP.net's front ends accept: `Id in (...)` by URL
// length and `SalesOrder in (...)` by 20 references, and the answer is still one result per key in key order.
func TestLoaders_ChunksLongInLists(t *testing.T) {
	e := newEnv(t)
	l := e.loaders(t, fixture.OwnerLogin, map[string][]string{
		erpclient.SetSalesOrders: {"DocumentNo"}, erpclient.SetSalesOrderLines: {"LineNo", "Product"},
	})
	ctx := context.Background()
	orders, err := erpclient.All[erpclient.SalesOrder](ctx, e.erp, erpclient.Query{Set: erpclient.SetSalesOrders,
		Select: []string{"DocumentNo"}, Filter: erpclient.Eq("Customer", erpclient.RefTo(erpclient.SetCustomers, fixture.CustomerID(1))),
		Unscoped: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) < 30 {
		t.Fatalf("anna has %d orders; the test needs at least 30", len(orders))
	}
	// the user's orders interleaved with ids that do not exist: 100 keys, a full batch
	var keys []string
	for i := 0; len(keys) < 100; i++ {
		if i%2 == 0 && i/2 < len(orders) {
			keys = append(keys, orders[i/2].ID)
		} else {
			keys = append(keys, uuid.NewString())
		}
	}
	e.sim.ResetRequests()
	got, errs := loadAll(ctx, l.SalesOrderByID, keys)
	for i, k := range keys {
		if errs[i] == nil && got[i].ID != k {
			t.Fatalf("key %d: got order %s, want %s", i, got[i].ID, k)
		}
		if errs[i] != nil && !errors.Is(errs[i], loader.ErrNotFound) {
			t.Fatalf("key %d: %v", i, errs[i])
		}
	}
	reads := e.reads(t, erpclient.SetSalesOrders)
	if len(reads) < 2 {
		t.Errorf("100 ids in %d read(s); want them chunked", len(reads))
	}
	named := 0
	for _, r := range reads {
		named += strings.Count(r, "-") / 4 // a GUID has four hyphens
		if len(url.QueryEscape(r)) > 2000 {
			t.Errorf("a filter of %d bytes: %.120s...", len(r), r)
		}
	}
	if named < 100 {
		t.Errorf("the chunks name %d ids, want all 100", named)
	}

	ids := make([]string, 45)
	for i := range ids {
		ids[i] = orders[i%len(orders)].ID
		if i >= len(orders) {
			ids[i] = uuid.NewString()
		}
	}
	e.sim.ResetRequests()
	lines, errs := loadAll(ctx, l.SalesOrderLinesByOrder, ids)
	for i, k := range ids {
		if errs[i] != nil {
			t.Fatalf("lines of %s: %v", k, errs[i])
		}
		for j, line := range lines[i] {
			if line.SalesOrder == nil || line.SalesOrder.ID != k {
				t.Errorf("lines of key %d: line %d belongs to %v", i, j, line.SalesOrder)
			}
			if j > 0 && line.LineNo < lines[i][j-1].LineNo {
				t.Errorf("lines of key %d out of line order", i)
			}
		}
	}
	if len(lines[0]) == 0 {
		t.Errorf("the first order has no lines")
	}
	reads = e.reads(t, erpclient.SetSalesOrderLines)
	if len(reads) != 3 {
		t.Errorf("45 orders' lines in %d reads, want 3 (20 references each)", len(reads))
	}
	for _, r := range reads {
		if n := strings.Count(r, erpclient.SetSalesOrders+"("); n > 20 {
			t.Errorf("one read names %d orders, want at most 20", n)
		}
	}
}

// Entities nested into a root read pass the same post-check as entities read on their own: an expanded customer,
// party or line the user may not see is not primed (a later load asks ERP.net under the scope and answers
// NOT_FOUND), while the user's own are primed and cost no read.
func TestLoaders_NestedEntitiesArePostChecked(t *testing.T) {
	e := newEnv(t)
	l := e.loaders(t, fixture.MultiLogin, nil)
	scope := e.scope(t, fixture.MultiLogin)
	own, foreign := fixture.CustomerID(2), fixture.CustomerID(1) // boris's, anna's
	foreignParty, order, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	lineOwn, lineOther := uuid.NewString(), uuid.NewString()
	// as ERP.net would answer a read of orders that nests Customer(Party) and Lines, had it let foreign rows through
	body := `[{"@odata.id":"Crm_Sales_SalesOrders(` + order + `)","Id":"` + order + `","DocumentDate":"2026-11-01T00:00:00Z",
	  "Customer":{"@odata.id":"Crm_Sales_Customers(` + foreign + `)","Id":"` + foreign + `","Number":"C1",
	    "Party":{"@odata.id":"General_Contacts_Parties(` + foreignParty + `)","Id":"` + foreignParty + `","PartyName":{"EN":"Alpha"}}},
	  "Lines":[{"@odata.id":"Crm_Sales_SalesOrderLines(` + lineOther + `)","Id":"` + lineOther + `","LineNo":1,
	      "SalesOrder":{"@odata.id":"Crm_Sales_SalesOrders(` + other + `)"}},
	    {"@odata.id":"Crm_Sales_SalesOrderLines(` + lineOwn + `)","Id":"` + lineOwn + `","LineNo":2,
	      "SalesOrder":{"@odata.id":"Crm_Sales_SalesOrders(` + order + `)"}}]},
	 {"@odata.id":"Crm_Sales_SalesOrders(` + other + `)","Id":"` + other + `","DocumentDate":"2026-11-01T00:00:00Z",
	  "Customer":{"@odata.id":"Crm_Sales_Customers(` + own + `)","Id":"` + own + `","Number":"C2"},"Lines":[]}]`
	var rows []loader.SalesOrderRow
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		t.Fatal(err)
	}
	ptrs := []*loader.SalesOrderRow{&rows[0], &rows[1]}
	orders := []*erpclient.SalesOrder{rows[0].Flat(), rows[1].Flat()}
	if orders[0].Customer == nil || orders[0].Customer.ID != foreign {
		t.Fatalf("flat order's customer = %+v, want the reference to %s", orders[0].Customer, foreign)
	}
	ctx := context.Background()
	l.PrimeSalesOrders(ctx, scope, ptrs, orders, loader.Nested{Customer: true, Party: true, Lines: true})

	e.sim.ResetRequests()
	if c, err := l.CustomerByID.Load(ctx, own)(); err != nil || c.Number != "C2" {
		t.Errorf("own nested customer: %+v, %v; want it primed", c, err)
	}
	if n := len(e.reads(t, erpclient.SetCustomers)); n != 0 {
		t.Errorf("the primed customer cost %d reads", n)
	}
	if c, err := l.CustomerByID.Load(ctx, foreign)(); !errors.Is(err, loader.ErrNotFound) {
		t.Errorf("foreign nested customer: %+v, %v; want NOT_FOUND", c, err)
	}
	if p, err := l.PartyByID.Load(ctx, foreignParty)(); !errors.Is(err, loader.ErrNotFound) {
		t.Errorf("foreign nested party: %+v, %v; want NOT_FOUND", p, err)
	}
	lines, err := l.SalesOrderLinesByOrder.Load(ctx, order)()
	if err != nil || len(lines) != 1 || lines[0].ID != lineOwn {
		t.Errorf("lines of the order: %+v, %v; want only the line that names it", lines, err)
	}
	if lines, err := l.SalesOrderLinesByOrder.Load(ctx, other)(); err != nil || len(lines) != 0 {
		t.Errorf("lines of the other order: %+v, %v; want the (expanded, empty) list primed", lines, err)
	}
	if n := len(e.reads(t, erpclient.SetSalesOrderLines)); n != 0 {
		t.Errorf("primed lines cost %d reads", n)
	}
}

// scope resolves login's access scope.
func (e *env) scope(t *testing.T, login string) *access.Scope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tk, err := e.sim.Login(ctx, fixture.PlaygroundClientID, login, fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.ver.Verify(ctx, tk.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.acc.Scope(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
