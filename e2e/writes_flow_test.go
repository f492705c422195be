package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

const orderFields = `salesOrder { id state void version lines { id lineNo quantity { value } } } userErrors { field message code } currentVersion`

func mustCreateOrder(t *testing.T, login string, customer int, qty ...string) orderPayload {
	t.Helper()
	r, _ := mutate(t, login, createMutation, map[string]any{"input": map[string]any{"customerId": customerID(customer), "lines": lines(qty...)}}, nil)
	p := decodePayload(t, r, "createSalesOrder")
	if p.code() != "OK" {
		t.Fatalf("create: %s %+v", r.Data, r.Errors)
	}
	return p
}

func update(t *testing.T, login string, input map[string]any) (orderPayload, response) {
	t.Helper()
	r, _ := mutate(t, login, `mutation($input: UpdateSalesOrderInput!) { updateSalesOrder(input: $input) { `+orderFields+` } }`,
		map[string]any{"input": input}, nil)
	return decodePayload(t, r, "updateSalesOrder"), r
}

func submit(t *testing.T, login, id string, version int) (orderPayload, response) {
	t.Helper()
	r, _ := mutate(t, login, `mutation($input: SubmitSalesOrderInput!) { submitSalesOrder(input: $input) { `+orderFields+` } }`,
		map[string]any{"input": map[string]any{"id": id, "expectedVersion": version}}, nil)
	return decodePayload(t, r, "submitSalesOrder"), r
}

func cancel(t *testing.T, login, id string, version int) (orderPayload, response) {
	t.Helper()
	r, _ := mutate(t, login, `mutation($input: CancelSalesOrderInput!) { cancelSalesOrder(input: $input) { `+orderFields+` deletedSalesOrderId } }`,
		map[string]any{"input": map[string]any{"id": id, "expectedVersion": version, "reason": "changed our mind"}}, nil)
	return decodePayload(t, r, "cancelSalesOrder"), r
}

// update → stale update (STALE_OBJECT with the current version and order) → submit → update of the submitted
// order (DOCUMENT_READ_ONLY) → cancel by the Orders role (FORBIDDEN) and by the Owner (void).
func TestWrites_UpdateSubmitCancel(t *testing.T) {
	o := mustCreateOrder(t, fixture.MultiLogin, 2, "1", "2").SalesOrder
	p, r := update(t, fixture.MultiLogin, map[string]any{"id": o.ID, "expectedVersion": o.Version, "notes": "second thoughts",
		"addLines":      []any{map[string]any{"productId": productID(5), "quantity": "4"}},
		"changeLines":   []any{map[string]any{"id": o.Lines[0].ID, "quantity": "7"}},
		"removeLineIds": []any{o.Lines[1].ID}})
	if p.code() != "OK" || len(p.SalesOrder.Lines) != 2 || p.SalesOrder.Lines[0].Quantity.Value != "7" || p.SalesOrder.Version <= o.Version {
		t.Fatalf("update: %s %+v", r.Data, r.Errors)
	}
	v2 := p.SalesOrder.Version

	p, r = update(t, fixture.MultiLogin, map[string]any{"id": o.ID, "expectedVersion": o.Version, "notes": "stale"})
	if p.code() != "STALE_OBJECT" || p.CurrentVersion == nil || *p.CurrentVersion != v2 || p.SalesOrder == nil || p.SalesOrder.Version != v2 {
		t.Fatalf("stale update: %s %+v", r.Data, r.Errors)
	}
	if p, r := update(t, fixture.OwnerLogin, map[string]any{"id": o.ID, "expectedVersion": v2, "notes": "foreign"}); p.code() != "NOT_FOUND" || p.SalesOrder != nil {
		t.Fatalf("foreign order: %s %+v", r.Data, r.Errors)
	}
	if p, r := update(t, fixture.MultiLogin, map[string]any{"id": o.ID, "expectedVersion": v2,
		"removeLineIds": []any{encodeID("SalesOrderLine", fixture.ID("Crm_Sales_SalesOrderLines", 1))}}); p.code() != "NOT_FOUND" {
		t.Fatalf("line of another order: %s %+v", r.Data, r.Errors)
	}
	if p, r := submit(t, fixture.MultiLogin, o.ID, o.Version); p.code() != "STALE_OBJECT" {
		t.Fatalf("stale submit: %s %+v", r.Data, r.Errors)
	}
	p, r = submit(t, fixture.MultiLogin, o.ID, v2)
	if p.code() != "OK" || p.SalesOrder.State != "PLANNED" {
		t.Fatalf("submit: %s %+v", r.Data, r.Errors)
	}
	v3 := p.SalesOrder.Version
	before, writesBefore := domainRequests(t), countWrites(t)
	if p, r := update(t, fixture.MultiLogin, map[string]any{"id": o.ID, "expectedVersion": v3, "notes": "late"}); p.code() != "DOCUMENT_READ_ONLY" {
		t.Fatalf("update of a submitted order: %s %+v", r.Data, r.Errors)
	}
	// The state needs the check's read; the payload reads the order and its lines; nothing is written.
	if n, w := domainRequests(t)-before, countWrites(t)-writesBefore; n != 3 || w != 0 {
		t.Errorf("DOCUMENT_READ_ONLY made %d upstream requests (%d writes), want 3 reads", n, w)
	}
	if p, r := cancel(t, fixture.MultiLogin, o.ID, v3); p.code() != "FORBIDDEN" {
		t.Fatalf("cancel of a submitted order by the Orders role: %s %+v", r.Data, r.Errors)
	}

	owned := mustCreateOrder(t, fixture.OwnerLogin, 1, "3").SalesOrder
	p, _ = submit(t, fixture.OwnerLogin, owned.ID, owned.Version)
	p, r = cancel(t, fixture.OwnerLogin, owned.ID, p.SalesOrder.Version)
	if p.code() != "OK" || p.SalesOrder == nil || !p.SalesOrder.Void {
		t.Fatalf("owner voids a submitted order: %s %+v", r.Data, r.Errors)
	}
	if p, r := cancel(t, fixture.OwnerLogin, owned.ID, p.SalesOrder.Version); p.code() != "DOCUMENT_READ_ONLY" {
		t.Fatalf("cancel of a void order: %s %+v", r.Data, r.Errors)
	}

	draft := mustCreateOrder(t, fixture.MultiLogin, 3, "1").SalesOrder
	p, r = cancel(t, fixture.MultiLogin, draft.ID, draft.Version)
	if p.code() != "OK" || p.DeletedSalesOrderID == nil || *p.DeletedSalesOrderID != draft.ID || p.SalesOrder != nil {
		t.Fatalf("delete a draft: %s %+v", r.Data, r.Errors)
	}
	rr, _ := mutate(t, fixture.MultiLogin, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": draft.ID}, nil)
	if rr.code() != "NOT_FOUND" {
		t.Errorf("deleted draft still readable: %s %+v", rr.Data, rr.Errors)
	}
}

// A released order (demo data) is read-only.
func TestWrites_ReleasedOrder(t *testing.T) {
	var page struct {
		SalesOrders struct {
			Nodes []struct {
				ID      string `json:"id"`
				Version int    `json:"version"`
			} `json:"nodes"`
		} `json:"salesOrders"`
	}
	r, _ := mutate(t, fixture.OwnerLogin, `{ salesOrders(first: 1, filter: {state: [RELEASED], void: false}) { nodes { id version } } }`, nil, nil)
	if err := jsonInto(r, &page); err != nil || len(page.SalesOrders.Nodes) == 0 {
		t.Fatalf("released order: %s %+v", r.Data, r.Errors)
	}
	o := page.SalesOrders.Nodes[0]
	if p, r := update(t, fixture.OwnerLogin, map[string]any{"id": o.ID, "expectedVersion": o.Version, "notes": "x"}); p.code() != "DOCUMENT_READ_ONLY" || p.SalesOrder == nil {
		t.Fatalf("update of a released order: %s %+v", r.Data, r.Errors)
	}
	if p, r := submit(t, fixture.OwnerLogin, o.ID, o.Version); p.code() != "DOCUMENT_READ_ONLY" {
		t.Fatalf("submit of a released order: %s %+v", r.Data, r.Errors)
	}
}

// Idempotency: a sequential replay returns the first outcome without writing and says so; the same key with
// another input is refused; the Idempotency-Key header works for a single mutation; ten concurrent requests with
// one key create exactly one order.
func TestWrites_Idempotency(t *testing.T) {
	input := map[string]any{"customerId": customerID(1), "lines": lines("2"), "idempotencyKey": "order-7f3a"}
	before := ordersOf(t, 1)
	r1, ext1 := mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": input}, nil)
	p1 := decodePayload(t, r1, "createSalesOrder")
	if p1.code() != "OK" || ext1["idempotency"] != nil {
		t.Fatalf("first: %s %v", r1.Data, ext1)
	}
	writesBefore := countWrites(t)
	r2, ext2 := mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": input}, nil)
	p2 := decodePayload(t, r2, "createSalesOrder")
	if p2.code() != "OK" || p2.SalesOrder.ID != p1.SalesOrder.ID || fmt.Sprint(ext2["idempotency"]) != "map[recovered:false replayed:true]" {
		t.Fatalf("replay: %s %v", r2.Data, ext2)
	}
	if n := countWrites(t) - writesBefore; n != 0 {
		t.Errorf("replay wrote %d times", n)
	}
	if after := ordersOf(t, 1); after != before+1 {
		t.Errorf("orders %d → %d", before, after)
	}
	other := map[string]any{"customerId": customerID(1), "lines": lines("3"), "idempotencyKey": "order-7f3a"}
	if p := decodePayload(t, firstOf(mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": other}, nil)), "createSalesOrder"); p.code() != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("reused key: %+v", p)
	}
	// Keys are per user: another user's identical key is a new request.
	mine := map[string]any{"customerId": customerID(2), "lines": lines("2"), "idempotencyKey": "order-7f3a"}
	if p := decodePayload(t, firstOf(mutate(t, fixture.MultiLogin, createMutation, map[string]any{"input": mine}, nil)), "createSalesOrder"); p.code() != "OK" || p.SalesOrder.ID == p1.SalesOrder.ID {
		t.Errorf("another user's key: %+v", p)
	}
	// The header, for a document with one mutation.
	hdr := map[string]string{"Idempotency-Key": "hdr-1"}
	plain := map[string]any{"customerId": customerID(1), "lines": lines("5")}
	a := decodePayload(t, firstOf(mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": plain}, hdr)), "createSalesOrder")
	b, ext := mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": plain}, hdr)
	if pb := decodePayload(t, b, "createSalesOrder"); a.code() != "OK" || pb.SalesOrder == nil || pb.SalesOrder.ID != a.SalesOrder.ID || ext["idempotency"] == nil {
		t.Errorf("header replay: %+v / %s %v", a, b.Data, ext)
	}

	before = ordersOf(t, 3)
	var wg sync.WaitGroup
	codes := make([]string, 10)
	ids := make([]string, 10)
	conc := map[string]any{"customerId": customerID(3), "lines": lines("1", "1"), "idempotencyKey": "concurrent-1"}
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := mutate(t, fixture.MultiLogin, createMutation, map[string]any{"input": conc}, nil)
			p := decodePayload(t, r, "createSalesOrder")
			codes[i] = p.code()
			if p.SalesOrder != nil {
				ids[i] = p.SalesOrder.ID
			}
		}()
	}
	wg.Wait()
	if after := ordersOf(t, 3); after != before+1 {
		t.Errorf("ten concurrent requests with one key: orders %d → %d (codes %v)", before, after, codes)
	}
	for i, c := range codes {
		if c != "OK" && c != "IDEMPOTENCY_IN_PROGRESS" || c == "OK" && ids[i] != ids[0] && ids[0] != "" {
			t.Errorf("concurrent answers: codes %v ids %v", codes, ids)
			break
		}
	}
}

func firstOf(r response, _ map[string]any) response { return r }

// countWrites counts the write requests erpsim executed (plain writes and requests inside changesets).
func countWrites(t *testing.T) int {
	s, _ := writer(t)
	return s.Stats().Writes
}

// The lost answer: ERP.net commits the create, then the connection drops. erpgraph answers UPSTREAM_UNAVAILABLE
// (outcome unknown); the client's replay with the same key finds the committed order through its key field and
// creates no duplicate.
func TestWrites_ReplayAfterCommitThenDrop(t *testing.T) {
	s, _ := writer(t)
	input := map[string]any{"customerId": customerID(2), "lines": lines("4", "1"), "idempotencyKey": "lost-answer-1"}
	before := ordersOf(t, 2)
	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/$batch", Method: "POST", CommitThenDrop: true, Count: 1})
	defer s.SetFaults()
	r, _ := mutate(t, fixture.MultiLogin, createMutation, map[string]any{"input": input}, nil)
	if p := decodePayload(t, r, "createSalesOrder"); p.code() != "UPSTREAM_UNAVAILABLE" || p.SalesOrder != nil {
		t.Fatalf("dropped answer: %s %+v", r.Data, r.Errors)
	}
	if after := ordersOf(t, 2); after != before+1 {
		t.Fatalf("the create did not commit: %d → %d", before, after)
	}
	r, ext := mutate(t, fixture.MultiLogin, createMutation, map[string]any{"input": input}, nil)
	p := decodePayload(t, r, "createSalesOrder")
	if p.code() != "OK" || p.SalesOrder == nil || fmt.Sprint(ext["idempotency"]) != "map[recovered:true replayed:true]" {
		t.Fatalf("replay: %s %v", r.Data, ext)
	}
	if after := ordersOf(t, 2); after != before+1 {
		t.Errorf("replay after a lost answer: orders %d → %d", before, after)
	}
}

// One audit record per mutation: request id, user, customer, action, entity id, outcome, a fingerprint of the
// idempotency key (not the key), the upstream requests, and no field values.
func TestWrites_Audit(t *testing.T) {
	_, _ = writer(t)
	n := len(writes.audit.records())
	r, _ := mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": map[string]any{
		"customerId": customerID(1), "lines": lines("9"), "notes": "secret-note-value", "idempotencyKey": "audit-key-123"}}, nil)
	p := decodePayload(t, r, "createSalesOrder")
	recs := writes.audit.records()[n:]
	if len(recs) != 1 {
		t.Fatalf("%d audit records for one mutation: %v", len(recs), recs)
	}
	rec := recs[0]
	if rec["action"] != "createSalesOrder" || rec["outcome"] != "OK" || rec["customer"] != fixture.CustomerID(1) ||
		rec["entity_id"] != guid(t, p.SalesOrder.ID) || rec["request_id"] == "" || rec["user"] == "" {
		t.Errorf("audit record %v", rec)
	}
	if fp, _ := rec["idempotency_key"].(string); len(fp) != 16 || strings.Contains(fmt.Sprint(rec), "audit-key-123") {
		t.Errorf("idempotency key in the record: %v", rec)
	}
	if up, _ := rec["upstream_requests"].(float64); up < 2 {
		t.Errorf("upstream_requests = %v, want the product check, the key lookup and the changeset", rec["upstream_requests"])
	}
	if strings.Contains(fmt.Sprint(rec), "secret-note-value") {
		t.Errorf("a field value reached the audit log: %v", rec)
	}
}
