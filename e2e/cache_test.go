package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// The shared read cache, end to end: erpgraph with the cache on, erpsim over TCP, users signed in at erpsim.

// dataAge is the response's extensions.dataAge.
type dataAge struct {
	Seconds     int  `json:"seconds"`
	Stale       bool `json:"stale"`
	CachedReads int  `json:"cachedReads"`
	LiveReads   int  `json:"liveReads"`
}

func ageOf(t *testing.T, r reply) dataAge {
	t.Helper()
	var ext struct {
		DataAge *dataAge `json:"dataAge"`
	}
	if err := json.Unmarshal(r.body["extensions"], &ext); err != nil || ext.DataAge == nil {
		t.Fatalf("no extensions.dataAge in %s", r)
	}
	return *ext.DataAge
}

// eventually polls f (which answers whether the awaited event happened) until it does, within a generous bound.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two users of different customers run the identical query at the same time, cold and then warm: each only ever
// gets their own customers' orders, and the warm answers come from the cache.
func TestCache_UsersNeverShareScopes(t *testing.T) {
	withCache(t, true, func() {
		const q = `{ salesOrders(first: 50) { totalCount nodes { id customer { id } lines { product { name } } } } }`
		logins := []string{fixture.OwnerLogin, fixture.MultiLogin}
		type answer struct {
			login string
			body  []byte
			ext   map[string]any
		}
		for round := range 3 { // cold, then warm twice
			var wg sync.WaitGroup
			answers := make(chan answer, 2*len(logins))
			for range 2 {
				for _, login := range logins {
					tk := token(t, login)
					wg.Go(func() {
						b, _ := json.Marshal(map[string]any{"query": q})
						req, _ := http.NewRequest(http.MethodPost, gqlURL, bytes.NewReader(b))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+tk)
						res, err := http.DefaultClient.Do(req)
						if err != nil {
							answers <- answer{login: login}
							return
						}
						defer res.Body.Close()
						var out struct {
							Data       json.RawMessage
							Extensions map[string]any
						}
						_ = json.NewDecoder(res.Body).Decode(&out)
						answers <- answer{login, out.Data, out.Extensions}
					})
				}
			}
			wg.Wait()
			close(answers)
			for a := range answers {
				var data struct {
					SalesOrders struct {
						Nodes []struct {
							Customer struct{ ID string }
						}
					}
				}
				if err := json.Unmarshal(a.body, &data); err != nil || len(data.SalesOrders.Nodes) == 0 {
					t.Fatalf("round %d, %s: no orders in %s (%v)", round, a.login, a.body, err)
				}
				mine := expect(t, a.login).customers
				for _, n := range data.SalesOrders.Nodes {
					if !mine[guid(t, n.Customer.ID)] {
						t.Fatalf("round %d: %s received an order of customer %s, not theirs", round, a.login, n.Customer.ID)
					}
				}
				age, _ := a.ext["dataAge"].(map[string]any)
				if round == 2 && (age == nil || age["cachedReads"].(float64) == 0) {
					t.Errorf("round %d, %s: warm answer not from the cache: dataAge %v", round, a.login, age)
				}
			}
		}
	})
}

// cacheEdge is erpgraph with its own erpsim and the given read cache settings.
func cacheEdge(t *testing.T, rc app.ReadCacheConfig) *edge {
	return startEdge(t, func(c *app.Config) { c.ReadCache = rc })
}

func totalOrders(t *testing.T, e *edge) (int, dataAge) {
	t.Helper()
	r := e.post(t, map[string]any{"query": `{ salesOrders(first: 1) { totalCount } }`})
	var data struct {
		SalesOrders struct{ TotalCount int }
	}
	if len(r.errs) > 0 || json.Unmarshal(r.body["data"], &data) != nil {
		t.Fatalf("orders: %s", r)
	}
	return data.SalesOrders.TotalCount, ageOf(t, r)
}

// A write made in ERP.net (not through erpgraph, so nothing invalidates) shows up once the document TTL is over.
func TestCache_WriteInERPShowsAfterTTL(t *testing.T) {
	e := cacheEdge(t, app.ReadCacheConfig{SyncInterval: -1,
		Documents: erpclient.CachePolicy{TTL: 300 * time.Millisecond, StaleWhileRevalidate: time.Second, StaleIfError: -1}})
	before, _ := totalOrders(t, e)
	if n, age := totalOrders(t, e); n != before || age.CachedReads == 0 {
		t.Logf("second read not cached (TTL passed on a slow machine?): %d, %+v", n, age)
	}
	other := erpWriter(t, e.sim)
	customer := ""
	for id := range expect(t, fixture.OwnerLogin).customers {
		customer = id
	}
	products, err := erpclient.List[erpclient.Product](context.Background(), other, erpclient.Query{Set: erpclient.SetProducts, Top: 1,
		Filter: erpclient.Eq("Active", erpclient.Bool(true))})
	if err != nil || len(products.Items) == 0 {
		t.Fatalf("products: %v", err)
	}
	if _, err := other.CreateSalesOrder(context.Background(), erpclient.NewSalesOrder{
		Customer: erpclient.Ref{Set: erpclient.SetCustomers, ID: customer},
		Lines:    []erpclient.NewSalesOrderLine{{Product: erpclient.Ref{Set: erpclient.SetProducts, ID: products.Items[0].ID}, Quantity: erpclient.Quantity{Value: "1"}}},
	}); err != nil {
		t.Fatalf("write in ERP.net: %v", err)
	}
	eventually(t, "the new order to show", func() bool {
		n, age := totalOrders(t, e)
		if n == before && age.Seconds > 2 {
			t.Fatalf("an answer %d s old was served with a 300ms TTL and 1s stale-while-revalidate: %+v", age.Seconds, age)
		}
		return n == before+1
	})
}

// erpWriter is another application's client of the same ERP.net, allowed to write.
func erpWriter(t *testing.T, s *erpsim.Sim) *erpclient.Client {
	t.Helper()
	c, err := erpclient.New(context.Background(), erpclient.Config{InstanceURL: s.URL(), ClientID: fixture.BFFClientID,
		ClientSecret: fixture.BFFSecret, Scopes: []string{"read", "update"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A product changed in ERP.net shows up after the next sync, both where the synchronized copy answers (a product
// by id) and in product lists served by the read cache.
func TestCache_ProductChangeArrivesWithTheSync(t *testing.T) {
	e := cacheEdge(t, app.ReadCacheConfig{SyncInterval: 50 * time.Millisecond, SyncBudget: 1})
	const list = `{ products(first: 1) { nodes { id name(language: "en") } } }`
	r := e.post(t, map[string]any{"query": list})
	var data struct {
		Products struct{ Nodes []struct{ ID, Name string } }
	}
	if len(r.errs) > 0 || json.Unmarshal(r.body["data"], &data) != nil || len(data.Products.Nodes) != 1 {
		t.Fatalf("products: %s", r)
	}
	p := data.Products.Nodes[0]
	byID := `query($id: ID!) { node(id: $id) { ... on Product { name(language: "en") } } }`
	name := func(q string, vars map[string]any) string {
		r := e.post(t, map[string]any{"query": q, "variables": vars})
		var d struct {
			Products struct{ Nodes []struct{ Name string } }
			Node     struct{ Name string }
		}
		if len(r.errs) > 0 || json.Unmarshal(r.body["data"], &d) != nil {
			t.Fatalf("%s", r)
		}
		if len(d.Products.Nodes) > 0 {
			return d.Products.Nodes[0].Name
		}
		return d.Node.Name
	}
	if got := name(byID, map[string]any{"id": p.ID}); got != p.Name {
		t.Fatalf("product by id: %q, in the list %q", got, p.Name)
	}
	if err := e.sim.RenameProduct(guid(t, p.ID), "Renamed in ERP.net"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the renamed product by id", func() bool { return name(byID, map[string]any{"id": p.ID}) == "Renamed in ERP.net" })
	eventually(t, "the renamed product in the list", func() bool { return name(list, nil) == "Renamed in ERP.net" })
}

// During an outage, answers within the stale-if-error window are served and say they are stale; past the window
// the operation fails: stale data is never served beyond its bound.
func TestCache_StaleIfErrorDuringOutage(t *testing.T) {
	const bound = 3 * time.Second
	e := cacheEdge(t, app.ReadCacheConfig{SyncInterval: -1,
		Documents: erpclient.CachePolicy{TTL: 100 * time.Millisecond, StaleWhileRevalidate: -1, StaleIfError: bound}})
	before, _ := totalOrders(t, e)
	e.sim.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Status: http.StatusBadGateway})
	defer e.sim.SetFaults()
	served := 0
	eventually(t, "the stale bound to end the stale answers", func() bool {
		r := e.post(t, map[string]any{"query": `{ salesOrders(first: 1) { totalCount } }`})
		var data struct {
			SalesOrders *struct{ TotalCount int }
		}
		_ = json.Unmarshal(r.body["data"], &data)
		if data.SalesOrders == nil {
			if c := r.code(); c != "UPSTREAM_UNAVAILABLE" {
				t.Fatalf("outage past the bound: %s, want UPSTREAM_UNAVAILABLE", r)
			}
			return true
		}
		age := ageOf(t, r)
		if data.SalesOrders.TotalCount != before || age.Seconds > int(bound.Seconds()) || age.LiveReads > 0 {
			t.Fatalf("during the outage: count %d (want %d), dataAge %+v (want cached, at most %s old)", data.SalesOrders.TotalCount, before, age, bound)
		}
		if age.Stale {
			served++
		}
		return false
	})
	if served == 0 {
		t.Error("no stale answer said so in dataAge during the outage")
	}
}

// A write through erpgraph drops the cached answers it changes at once, long before their TTL: the order just
// created is in the next list, read live, and the read after that is cached again.
func TestCache_WriteThroughErpgraphInvalidates(t *testing.T) {
	e := startEdge(t, func(c *app.Config) {
		c.Writes = app.WritesConfig{Enabled: true, PerMinute: -1}
		c.ReadCache.Documents = erpclient.CachePolicy{TTL: time.Hour, StaleWhileRevalidate: -1, StaleIfError: -1}
	})
	before, _ := totalOrders(t, e)
	if n, age := totalOrders(t, e); n != before || age.CachedReads == 0 || age.LiveReads != 0 {
		t.Fatalf("the repeated list was not answered by the cache: %d, %+v", n, age)
	}
	r := e.post(t, map[string]any{"query": createMutation, "variables": map[string]any{"input": map[string]any{
		"customerId": customerID(1), "lines": lines("2")}}})
	var data struct {
		CreateSalesOrder struct {
			SalesOrder *struct{ ID string }
		}
	}
	if len(r.errs) > 0 || json.Unmarshal(r.body["data"], &data) != nil || data.CreateSalesOrder.SalesOrder == nil {
		t.Fatalf("create: %s", r)
	}
	n, age := totalOrders(t, e)
	if n != before+1 {
		t.Errorf("after a write through erpgraph the list counts %d orders, want %d (served from the cache: %+v)", n, before+1, age)
	}
	if age.LiveReads == 0 {
		t.Errorf("the list after the write was not read live: %+v", age)
	}
	if n, age := totalOrders(t, e); n != before+1 || age.CachedReads == 0 {
		t.Errorf("the list after that: %d, %+v; want %d from the cache", n, age, before+1)
	}
}
