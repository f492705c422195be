package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph/model"
	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/redisstore"
)

const createOrder = `mutation($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) { salesOrder { id } userErrors { code message } }
}`

// orderInput is a one-line order for the owner's customer, with key as its
// idempotency key ("" for none).
func orderInput(key string) map[string]any {
	in := map[string]any{"customerId": model.EncodeID("Customer", fixture.CustomerID(1)),
		"lines": []any{map[string]any{"productId": model.EncodeID("Product", fixture.ID("General_Products_Products", 1)), "quantity": "1"}}}
	if key != "" {
		in["idempotencyKey"] = key
	}
	return map[string]any{"input": in}
}

// placed is the created order's id and the answer's idempotency extension.
type placed struct {
	status     int
	retryAfter string
	orderID    string
	code       string // the first userError's or error's code; "" for none
	replayed   bool
}

// placeOrder sends createSalesOrder to r; it only reports, so it may run
// on any goroutine.
func placeOrder(r *app.App, token, key string) (placed, error) {
	body, _ := json.Marshal(map[string]any{"query": createOrder, "variables": orderInput(key)})
	req, err := http.NewRequest(http.MethodPost, r.URL()+"/graphql", strings.NewReader(string(body)))
	if err != nil {
		return placed{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return placed{}, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out struct {
		Data struct {
			CreateSalesOrder *struct {
				SalesOrder *struct{ ID string }
				UserErrors []struct{ Code string }
			}
		}
		Errors []struct {
			Extensions struct {
				Code       string
				RetryAfter int
			}
		}
		Extensions struct {
			Idempotency struct{ Replayed bool }
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return placed{}, fmt.Errorf("status %d, body %q: %w", res.StatusCode, raw, err)
	}
	p := placed{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), replayed: out.Extensions.Idempotency.Replayed}
	if c := out.Data.CreateSalesOrder; c != nil {
		if c.SalesOrder != nil {
			p.orderID = c.SalesOrder.ID
		}
		if len(c.UserErrors) > 0 {
			p.code = c.UserErrors[0].Code
		}
	}
	if len(out.Errors) > 0 && p.code == "" {
		p.code = out.Errors[0].Extensions.Code
	}
	return p, nil
}

// ordersOfCustomer counts customer n's orders in erpsim, read with a
// service token of another client so erpgraph's session is not involved.
func ordersOfCustomer(t *testing.T, sim *erpsim.Sim, n int) int {
	t.Helper()
	tk, err := sim.ServiceToken(context.Background(), fixture.OtherClientID)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, sim.ODataURL()+"Crm_Sales_SalesOrders/$count?$filter="+
		url.QueryEscape(fmt.Sprintf("Customer eq 'Crm_Sales_Customers(%s)'", fixture.CustomerID(n))), nil)
	req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var count int
	if err := json.NewDecoder(res.Body).Decode(&count); err != nil {
		t.Fatalf("$count: %v", err)
	}
	return count
}

// waitForKey returns once an idempotency key is claimed in the Redis at url;
// it fails the test if done closes first.
func waitForKey(t *testing.T, url string, done <-chan struct{}) {
	t.Helper()
	c, err := redisstore.New(redisstore.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			t.Fatal("the first request ended without claiming its key in Redis")
		case <-tick.C:
		}
		keys, err := c.Redis().Keys(context.Background(), redisstore.DefaultPrefix+"idem:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			return
		}
	}
}

func mustPlace(t *testing.T, r *app.App, token, key string) placed {
	t.Helper()
	p, err := placeOrder(r, token, key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Two replicas on one Redis: one idempotency key sent to both at once
// creates exactly one order, and both answer with it. With Redis down a
// write with a key is refused (IDEMPOTENCY_UNAVAILABLE, Retry-After) and
// writes nothing, a write without a key still runs, and once Redis is back
// the key works without a restart.
func TestApp_RedisSharesIdempotencyKeys(t *testing.T) {
	redis := redistest.Start(t)
	a, b := twoReplicas(t, redis.URL(), nil, func(c *app.Config) {
		c.Writes.Enabled, c.Writes.PerMinute, c.Scopes = true, -1, []string{"read", "update"}
	})
	sim := a.Sim()
	owner := login(t, a, fixture.OwnerLogin)
	before := ordersOfCustomer(t, sim, 1)

	// The first request's write is held at ERP.net for a while; the second,
	// to the other replica, is sent once the first holds the key in Redis,
	// so it arrives while the first is in progress. A store per replica
	// would let it look for the order (not there yet) and create a second.
	sim.SetFaults(erpsim.Fault{Path: "/api/domain/odata/Crm_Sales_SalesOrders", Method: http.MethodPost, Delay: 3 * time.Second, Count: 1})
	defer sim.SetFaults()
	var got [2]placed
	first := make(chan struct{})
	go func() {
		defer close(first)
		p, err := placeOrder(a, owner, "two-replicas-1")
		if err != nil {
			t.Error(err)
		}
		got[0] = p
	}()
	waitForKey(t, redis.URL(), first)
	got[1] = mustPlace(t, b, owner, "two-replicas-1")
	<-first
	if got[0].orderID == "" || got[0].orderID != got[1].orderID || got[0].code != "" || got[1].code != "" {
		t.Fatalf("one key on two replicas: %+v and %+v, want the same order", got[0], got[1])
	}
	if got[0].replayed || !got[1].replayed {
		t.Errorf("replayed %v and %v: want the second answer replayed", got[0].replayed, got[1].replayed)
	}
	if after := ordersOfCustomer(t, sim, 1); after != before+1 {
		t.Fatalf("orders of customer 1: %d → %d, want exactly one more", before, after)
	}
	if p := mustPlace(t, b, owner, "two-replicas-1"); p.orderID != got[0].orderID || !p.replayed {
		t.Errorf("the key again on b: %+v, want a replay of %s", p, got[0].orderID)
	}

	redis.Stop()
	p := mustPlace(t, b, owner, "two-replicas-2")
	if p.code != "IDEMPOTENCY_UNAVAILABLE" || p.orderID != "" || p.retryAfter != "5" {
		t.Errorf("a key with Redis down: %+v, want IDEMPOTENCY_UNAVAILABLE with Retry-After 5", p)
	}
	if after := ordersOfCustomer(t, sim, 1); after != before+1 {
		t.Errorf("a refused write wrote: %d orders, want %d", after, before+1)
	}
	if p := mustPlace(t, a, owner, ""); p.code != "" || p.orderID == "" {
		t.Errorf("a write without a key with Redis down: %+v, want it to run", p)
	}

	redis.Restart()
	if p := mustPlace(t, b, owner, "two-replicas-2"); p.code != "" || p.orderID == "" || p.replayed {
		t.Errorf("the refused key after Redis came back: %+v, want a new order", p)
	}
	if after := ordersOfCustomer(t, sim, 1); after != before+3 {
		t.Errorf("orders of customer 1 at the end: %d, want %d", after, before+3)
	}
}

// A user's write budget (ERPGRAPH_WRITES_PER_MINUTE, burst 10) is one budget across replicas on one Redis:
// twelve writes sent in turn to two replicas get ten orders and two RATE_LIMITED refusals, where a budget per
// replica would have let all twelve through.
func TestApp_RedisSharesWriteLimits(t *testing.T) {
	redis := redistest.Start(t)
	a, b := twoReplicas(t, redis.URL(), nil, func(c *app.Config) {
		c.Writes.Enabled, c.Writes.PerMinute, c.Scopes = true, 1, []string{"read", "update"}
	})
	sim := a.Sim()
	owner := login(t, a, fixture.OwnerLogin)
	before := ordersOfCustomer(t, sim, 1)
	placedN, limited := 0, 0
	for i := range 12 {
		p := mustPlace(t, []*app.App{a, b}[i%2], owner, "")
		switch {
		case p.code == "" && p.orderID != "":
			placedN++
		case p.code == "RATE_LIMITED":
			limited++
		default:
			t.Fatalf("write %d: %+v", i+1, p)
		}
	}
	if placedN != 10 || limited != 2 {
		t.Errorf("12 writes across two replicas: %d placed, %d RATE_LIMITED; want 10 and 2 (one budget of burst 10)", placedN, limited)
	}
	if after := ordersOfCustomer(t, sim, 1); after != before+placedN {
		t.Errorf("orders of customer 1: %d → %d, want %d more", before, after, placedN)
	}
}
