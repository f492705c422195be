package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph/model"
	"github.com/erpgraph/erpgraph/internal/loadclient"
)

const createOrder = `mutation($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) { salesOrder { id } userErrors { code message } }
}`

// order is one answer to createOrder.
type order struct {
	status   int
	id       string // the created (or replayed) order, "" when none
	code     string // the first userError's or error's code, "" for none
	replayed bool   // extensions.idempotency.replayed
	replica  string
}

// placeOrder sends a one-line order for the owner's customer with idempotency key through replica name.
func placeOrder(c *cluster, u *loadclient.User, key, name string) (order, error) {
	in := map[string]any{"customerId": model.EncodeID("Customer", fixture.CustomerID(1)), "idempotencyKey": key,
		"lines": []any{map[string]any{"productId": model.EncodeID("Product", fixture.ID("General_Products_Products", 1)), "quantity": "1"}}}
	r, err := loadclient.PostHeader(context.Background(), c.http, c.url+"/graphql", u, createOrder, map[string]any{"input": in}, pinned(name))
	if err != nil {
		return order{}, err
	}
	o := order{status: r.Status, code: r.Code(), replica: r.Header.Get("X-Replica")}
	var data struct {
		CreateSalesOrder *struct {
			SalesOrder *struct{ ID string }
			UserErrors []struct{ Code string }
		}
	}
	if len(r.Data) > 0 {
		if err := json.Unmarshal(r.Data, &data); err != nil {
			return o, err
		}
	}
	if p := data.CreateSalesOrder; p != nil {
		if p.SalesOrder != nil {
			o.id = p.SalesOrder.ID
		}
		if len(p.UserErrors) > 0 {
			o.code = p.UserErrors[0].Code
		}
	}
	idem, _ := r.Extensions["idempotency"].(map[string]any)
	o.replayed, _ = idem["replayed"].(bool)
	return o, nil
}

// writeBatches counts the $batch requests with a changeset (one per created order) that erpgraph sent to erpsim
// after the first from entries of its request log.
func writeBatches(c *cluster, from int) int {
	n := 0
	for _, r := range c.sim.Requests()[from:] {
		if r.ClientID == fixture.BFFClientID && r.ChangesetParts > 0 {
			n++
		}
	}
	return n
}

func newKey() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "replicas-" + hex.EncodeToString(b[:])
}

// idempotencyShared: one idempotency key sent to two replicas at once creates exactly one order; both answers
// (or the one that did not wait, IDEMPOTENCY_IN_PROGRESS) name it, and a third replica replays it.
func idempotencyShared(t *testing.T, c *cluster, owner *loadclient.User) {
	key, from := newKey(), len(c.sim.Requests())
	var wg sync.WaitGroup
	answers := make([]order, 2)
	errs := make([]error, 2)
	for i, name := range replicaNames[:2] {
		wg.Go(func() { answers[i], errs[i] = placeOrder(c, owner, key, name) })
	}
	wg.Wait()
	id := ""
	for i, a := range answers {
		switch {
		case errs[i] != nil:
			t.Fatalf("%s: %v", replicaNames[i], errs[i])
		case a.replica != replicaNames[i]:
			t.Fatalf("pinned to %s, answered by %q", replicaNames[i], a.replica)
		case a.status == http.StatusOK && a.code == "" && a.id != "":
			if id != "" && a.id != id {
				t.Errorf("the key created two orders, %s and %s", id, a.id)
			}
			id = a.id
		case a.status == http.StatusOK && a.code == "IDEMPOTENCY_IN_PROGRESS":
		default:
			t.Errorf("%s: %+v", replicaNames[i], a)
		}
	}
	if id == "" {
		t.Fatalf("no order created: %+v", answers)
	}
	t.Logf("one key on two replicas: %+v", answers)
	if got, err := placeOrder(c, owner, key, "r3"); err != nil || got.id != id || !got.replayed {
		t.Errorf("the key again on r3: %+v %v, want order %s replayed", got, err, id)
	}
	if n := writeBatches(c, from); n != 1 {
		t.Errorf("erpgraph sent %d write requests to ERP.net for one key, want 1", n)
	}
}

// writesRefusedWithoutRedis: with the shared key store down, a mutation with an idempotency key is refused with
// a typed, retryable error and nothing reaches ERP.net (a duplicate is worse than a retry).
func writesRefusedWithoutRedis(t *testing.T, c *cluster, owner *loadclient.User) {
	from := len(c.sim.Requests())
	for _, n := range replicaNames {
		got, err := placeOrder(c, owner, newKey(), n)
		if err != nil {
			t.Fatal(err)
		}
		if got.code != "IDEMPOTENCY_UNAVAILABLE" || got.id != "" {
			t.Errorf("an order with a key on %s with Redis down: %+v, want IDEMPOTENCY_UNAVAILABLE", n, got)
		}
	}
	if n := writeBatches(c, from); n != 0 {
		t.Errorf("with Redis down, %d write requests reached ERP.net", n)
	}
}

const orderCount = `query OrderCount { salesOrders(first: 1) { totalCount } }`

// orderCounts is how many orders the owner sees through each replica (each answers from its read cache when it
// can).
func orderCounts(t *testing.T, c *cluster, owner *loadclient.User) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, n := range replicaNames {
		r, err := loadclient.PostHeader(context.Background(), c.http, c.url+"/graphql", owner, orderCount, nil, pinned(n))
		if err != nil || r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("order count through %s: %v %+v", n, err, r)
		}
		var data struct{ SalesOrders struct{ TotalCount int } }
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatal(err)
		}
		counts[n] = data.SalesOrders.TotalCount
	}
	return counts
}

// cacheInvalidatedEverywhere: an order created through one replica shows at once through every replica, although
// each had the count in its read cache: the write's invalidation reached them all through Redis.
func cacheInvalidatedEverywhere(t *testing.T, c *cluster, owner *loadclient.User) {
	before := orderCounts(t, c, owner)
	if got, err := placeOrder(c, owner, newKey(), "r1"); err != nil || got.id == "" {
		t.Fatalf("an order through r1: %+v %v", got, err)
	}
	after := orderCounts(t, c, owner)
	for _, n := range replicaNames {
		if after[n] != before[n]+1 {
			t.Errorf("%s counts %d orders after one was created through r1, before %d", n, after[n], before[n])
		}
	}
}
