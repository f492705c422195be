package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/graph/model"
	"github.com/erpgraph/erpgraph/internal/loadclient"
)

// The write side of the mix: a simulated user places an order with an idempotency key, retries the same key when
// the outcome is unknown (as an offline queue would), and now and then replays an acknowledged key. The ledger
// checks, at the end against the Domain API read directly: no key produced two orders, and every acknowledged
// order exists (no lost acknowledged write).

const placeOrderMutation = `mutation Place($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) {
    salesOrder { id documentNo state version customer { id } }
    userErrors { code }
  }
}`

const accessQuery = `{ me { customerAccess { customer { id } role } } }`

// writeWeight is the order placement's weight in the mix (the reads' weights add up to 100).
const writeWeight = 5

// maxKeyAttempts bounds how often a user sends one key before it gives up (the outcome stays unknown).
const maxKeyAttempts = 6

// ledger is what the write side acknowledged.
type ledger struct {
	mu         sync.Mutex
	acked      map[string]string // idempotency key → order GUID of the first acknowledgement
	unknown    map[string]bool   // keys given up with the outcome unknown
	replays    int
	mismatches []string // a key acknowledged with two different orders
}

func newLedger() *ledger { return &ledger{acked: map[string]string{}, unknown: map[string]bool{}} }

func (l *ledger) ack(key, order string, replay bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if replay {
		l.replays++
	}
	if first, ok := l.acked[key]; ok && first != order {
		l.mismatches = appendFew(l.mismatches, fmt.Sprintf("key %s acknowledged as order %s and as %s", key, first, order))
		return
	}
	l.acked[key] = order
	delete(l.unknown, key)
}

func (l *ledger) giveUp(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.acked[key]; !ok {
		l.unknown[key] = true
	}
}

// orderCustomer picks the customer the user may order for (Orders role and above), once.
func (u *user) orderCustomer(ctx context.Context, check func(*gqlResponse, int, error)) string {
	if u.orderFor != nil {
		return *u.orderFor
	}
	r := u.post(ctx, accessQuery, nil, check)
	var me struct {
		Me struct {
			CustomerAccess []struct {
				Customer *struct{ ID string }
				Role     string
			}
		}
	}
	if r == nil || json.Unmarshal(r.Data, &me) != nil {
		return ""
	}
	pick := ""
	for _, ca := range me.Me.CustomerAccess {
		if ca.Customer != nil && ca.Role != "BASIC" {
			pick = ca.Customer.ID
			break
		}
	}
	u.orderFor = &pick
	return pick
}

// placeOrder runs one keyed create to an answer: retries while the outcome is unknown, replays an acknowledged key
// one time in three.
func (u *user) placeOrder(ctx context.Context, check func(*gqlResponse, int, error)) {
	led := u.led
	customer := u.orderCustomer(ctx, check)
	if customer == "" {
		return // Basic and no-access users cannot order
	}
	u.orderSeq++
	key := fmt.Sprintf("soak-%s-%d", u.Login, u.orderSeq)
	input := map[string]any{"customerId": customer, "idempotencyKey": key,
		"lines": []any{map[string]any{"productId": u.product(), "quantity": fmt.Sprint(1 + u.rnd.IntN(9))}}}
	acked := false
	for attempt := 0; attempt < maxKeyAttempts && ctx.Err() == nil; attempt++ {
		r := u.post(ctx, placeOrderMutation, map[string]any{"input": input}, func(resp *gqlResponse, status int, err error) {
			// The new order is the user's: tell the oracle before it judges the answer (the ledger's final read
			// checks ERP.net holds it for that customer).
			if order, code := createOutcome(resp); code == "OK" && order != "" {
				if _, cust, err := model.DecodeID(customer); err == nil {
					u.owners.addOrder(order, cust)
				}
			}
			check(resp, status, err)
		})
		order, code := createOutcome(r)
		switch {
		case code == "OK" && order != "":
			led.ack(key, order, attempt > 0 || acked)
			if acked || u.rnd.IntN(3) != 0 {
				return
			}
			acked = true // replay the acknowledged key once
			continue
		case code == errcode.UpstreamUnavailable || code == errcode.IdempotencyInProgress || code == "TRANSPORT":
			loadclient.Pause(ctx, time.Duration(100+u.rnd.IntN(400))*time.Millisecond)
			continue // the outcome is unknown: the same key again, as an offline queue does
		}
		return // refused for good (a typed userError): nothing was written
	}
	if !acked {
		led.giveUp(key)
	}
}

// createOutcome reads the order GUID and the first code of a createSalesOrder answer ("TRANSPORT" for none).
func createOutcome(r *gqlResponse) (order, code string) {
	if r == nil {
		return "", "TRANSPORT"
	}
	if len(r.Errors) > 0 {
		c, _ := r.Errors[0].Extensions["code"].(string)
		return "", c
	}
	var data struct {
		CreateSalesOrder *struct {
			SalesOrder *struct{ ID string }
			UserErrors []struct{ Code string }
		}
	}
	if json.Unmarshal(r.Data, &data) != nil || data.CreateSalesOrder == nil {
		return "", "TRANSPORT"
	}
	if len(data.CreateSalesOrder.UserErrors) > 0 {
		return "", data.CreateSalesOrder.UserErrors[0].Code
	}
	if data.CreateSalesOrder.SalesOrder == nil {
		return "", "OK"
	}
	_, g, err := model.DecodeID(data.CreateSalesOrder.SalesOrder.ID)
	if err != nil {
		return "", "TRANSPORT"
	}
	return g, "OK"
}

// verify reads every order that carries an idempotency fingerprint straight from the Domain API and checks the
// ledger against it: one order per fingerprint, every acknowledged order present, no more orders than keys.
func (l *ledger) verify(ctx context.Context, odataURL, token string, before int, o *owners) (orders int, failed []string, err error) {
	q := url.Values{"$select": {"Id,ReferenceDocumentNo,Customer"}, "$filter": {"startswith(ReferenceDocumentNo,'eg')"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, odataURL+"Crm_Sales_SalesOrders?"+q.Encode(), nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Value []struct {
			ID       string          `json:"Id"`
			Ref      string          `json:"ReferenceDocumentNo"`
			Customer json.RawMessage `json:"Customer"`
		} `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		return 0, nil, fmt.Errorf("read keyed orders: HTTP %d %v", resp.StatusCode, err)
	}
	byRef := map[string]int{}
	exists := map[string]bool{}
	wrong := 0
	for _, row := range body.Value {
		byRef[row.Ref]++
		exists[row.ID] = true
		var ref struct {
			ID string `json:"@odata.id"`
		}
		_ = json.Unmarshal(row.Customer, &ref)
		o.mu.RLock()
		want, placed := o.docCustomer[row.ID]
		o.mu.RUnlock()
		if placed && refGUID(map[string]any{"@odata.id": ref.ID}) != want {
			wrong++
		}
	}
	if wrong > 0 {
		failed = append(failed, fmt.Sprintf("%d placed orders belong in ERP.net to another customer than the one ordered for", wrong))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for ref, n := range byRef {
		if n > 1 {
			failed = append(failed, fmt.Sprintf("%d orders carry the idempotency fingerprint %s: a duplicate order for one key", n, ref))
		}
	}
	lost := 0
	for key, id := range l.acked {
		if !exists[id] {
			lost++
			if lost <= 3 {
				failed = append(failed, fmt.Sprintf("acknowledged order %s (key %s) is not in ERP.net: a lost acknowledged write", id, key))
			}
		}
	}
	orders = len(body.Value) - before
	if orders > len(l.acked)+len(l.unknown) {
		failed = append(failed, fmt.Sprintf("%d keyed orders were created for %d keys", orders, len(l.acked)+len(l.unknown)))
	}
	failed = append(failed, l.mismatches...)
	return orders, failed, nil
}

// counts are the ledger's totals: keys acknowledged, replayed answers, keys given up.
func (l *ledger) counts() (keys, replays, unknown int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked), l.replays, len(l.unknown)
}

// product is a catalogue product for a new line (the first 30 demo products are active).
func (u *user) product() string {
	return model.EncodeID("Product", fixture.ID("General_Products_Products", 1+u.rnd.IntN(30)))
}

// countKeyed counts the orders that carry an idempotency fingerprint.
func countKeyed(ctx context.Context, odataURL, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, odataURL+"Crm_Sales_SalesOrders/$count?$filter="+
		url.QueryEscape("startswith(ReferenceDocumentNo,'eg')"), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var n int
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil {
		return 0, fmt.Errorf("count keyed orders: HTTP %d: %w", resp.StatusCode, err)
	}
	return n, nil
}
