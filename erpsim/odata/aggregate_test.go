package odata_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// movingClock is a test clock that only moves when told to.
type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// AggregateLastUpdateTimeUtc as ERP.net documents it (v26.2+): selectable but not in the default $select,
// filterable with ge, on aggregate roots only, and moved by every change to the aggregate, lines included.
func TestAggregateLastUpdateTimeUtc(t *testing.T) {
	clock := &movingClock{t: testNow.AddDate(0, 0, 1)}
	store := freshStore()
	srv := newServerAt(t, store, clock.now)
	const prop = "AggregateLastUpdateTimeUtc"

	if row := srv.mustGet(t, "Crm_Sales_SalesOrders", "$top", "1").rows(t)[0]; row[prop] != nil {
		t.Errorf("default $select includes %s", prop)
	}
	product := srv.mustGet(t, "General_Products_Products", "$top", "1", "$select", "Id,"+prop).rows(t)[0]
	old, err := time.Parse(time.RFC3339, product[prop].(string))
	if err != nil || !old.Before(testNow) {
		t.Fatalf("untouched product: %s = %v (%v)", prop, product[prop], err)
	}
	if e := srv.get(t, "Crm_Sales_SalesOrderLines", "$select", prop); e.status != http.StatusInternalServerError {
		t.Errorf("lines are not aggregate roots, but selecting %s gave %d", prop, e.status)
	}

	since := func(set string, at time.Time) []map[string]any {
		return srv.mustGet(t, set, "$select", "Id,"+prop, "$filter", prop+" ge "+at.UTC().Format(time.RFC3339)).rows(t)
	}
	if n := len(since("General_Products_Products", clock.now())); n != 0 {
		t.Fatalf("%d products changed before anything changed", n)
	}
	// an edit in ERP.net moves the product's time
	if err := store.RenameProduct(uuid.MustParse(product["Id"].(string)), "Renamed", clock.now()); err != nil {
		t.Fatal(err)
	}
	if rows := since("General_Products_Products", clock.now()); len(rows) != 1 || rows[0]["Id"] != product["Id"] {
		t.Fatalf("after a rename, changed products = %v", rows)
	}

	// a new order is stamped with its creation; a write to one of its lines moves the order's time
	o := mustCreate(t, srv, newOrder(1, 3)).obj
	self := o["@odata.id"].(string)
	stamp := func() string { return srv.mustGet(t, self, "$select", prop).obj[prop].(string) }
	created := stamp()
	if created != clock.now().UTC().Format(time.RFC3339) {
		t.Errorf("new order: %s = %s, want %s", prop, created, clock.now().UTC().Format(time.RFC3339))
	}
	clock.add(90 * time.Second)
	line := o["Lines"].([]any)[0].(map[string]any)["@odata.id"].(string)
	if r := srv.do(t, http.MethodPatch, line, map[string]any{"Quantity": map[string]any{"Value": 4}}); r.status != http.StatusNoContent {
		t.Fatalf("line patch: %d %s", r.status, r.raw)
	}
	if got, want := stamp(), clock.now().UTC().Format(time.RFC3339); got != want {
		t.Errorf("after a line write: %s = %s, want %s", prop, got, want)
	}
	// a refused write leaves it alone
	clock.add(time.Minute)
	before := stamp()
	wantError(t, srv.do(t, http.MethodPatch, self, map[string]any{"ObjectVersion": 1, "DocumentNotes": "stale"}), 500, 2106)
	if stamp() != before {
		t.Errorf("a refused write moved %s", prop)
	}
}

// Instances older than v26.2 know no AggregateLastUpdateTimeUtc.
func TestAggregateLastUpdateTimeUtc_Before262(t *testing.T) {
	store := odata.NewStore(1, testNow)
	store.DropAggregateTimestamps()
	srv := newServer(t, store)
	if e := srv.get(t, "General_Products_Products", "$select", "Id,AggregateLastUpdateTimeUtc"); e.status != http.StatusInternalServerError {
		t.Errorf("selecting AggregateLastUpdateTimeUtc before v26.2 gave %d", e.status)
	}
	if e := srv.get(t, "General_Products_Products", "$filter", "AggregateLastUpdateTimeUtc ge 2026-01-01T00:00:00Z"); e.status != http.StatusInternalServerError {
		t.Errorf("filtering on AggregateLastUpdateTimeUtc before v26.2 gave %d", e.status)
	}
}

// A product added to the catalogue is pulled by its AggregateLastUpdateTimeUtc; a deleted one is simply gone (no
// row, no timestamp: only a listing of the keys shows it), and a product that rows refer to cannot be deleted.
func TestStore_AddAndDeleteProduct(t *testing.T) {
	clock := &movingClock{t: testNow.AddDate(0, 0, 1)}
	store := freshStore()
	srv := newServerAt(t, store, clock.now)
	const set, prop = "General_Products_Products", "AggregateLastUpdateTimeUtc"
	keys := func() map[string]bool {
		out := map[string]bool{}
		for _, r := range srv.mustGet(t, set, "$select", "Id", "$top", "1000").rows(t) {
			out[r["Id"].(string)] = true
		}
		return out
	}
	before := len(keys())
	id, err := store.AddProduct("NEW-001", "New product", clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AddProduct("NEW-001", "Same part number", clock.now()); err == nil {
		t.Error("a second product with the same PartNumber was added")
	}
	rows := srv.mustGet(t, set, "$select", "Id,Name,"+prop, "$filter", prop+" ge "+clock.now().UTC().Format(time.RFC3339)).rows(t)
	if len(rows) != 1 || rows[0]["Id"] != id.String() {
		t.Fatalf("changed since the add: %v", rows)
	}
	if k := keys(); len(k) != before+1 || !k[id.String()] {
		t.Fatalf("%d keys after the add, want %d with %s", len(k), before+1, id)
	}
	clock.add(time.Minute)
	if err := store.DeleteProduct(id); err != nil {
		t.Fatal(err)
	}
	if k := keys(); len(k) != before || k[id.String()] {
		t.Errorf("%d keys after the delete, want %d without %s", len(k), before, id)
	}
	if r := srv.get(t, set+"("+id.String()+")"); r.status != http.StatusNotFound {
		t.Errorf("GET of the deleted product: %d", r.status)
	}
	if err := store.DeleteProduct(id); err == nil {
		t.Error("a deleted product was deleted again")
	}
	used := uuid.MustParse(srv.mustGet(t, "Crm_Sales_SalesOrderLines", "$top", "1", "$select", "Product").rows(t)[0]["Product"].(map[string]any)["@odata.id"].(string)[len(set)+1 : len(set)+37])
	if err := store.DeleteProduct(used); err == nil {
		t.Error("a product an order line refers to was deleted")
	}
}
