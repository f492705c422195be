package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// The write tests run their own erpsim and erpgraph with ERPGRAPH_WRITES on: they change data, which the read
// tests' oracle must not see.
var writes struct {
	once  sync.Once
	sim   *erpsim.Sim
	url   string
	audit *lockedBuffer
	err   error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the audit records with msg "mutation".
func (l *lockedBuffer) records() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "mutation" {
			out = append(out, m)
		}
	}
	return out
}

// writer starts (once) the write-enabled erpgraph on its own erpsim.
func writer(t testing.TB) (*erpsim.Sim, string) {
	t.Helper()
	writes.once.Do(func() {
		ctx := context.Background()
		writes.sim, writes.err = erpsim.Start(ctx, erpsim.Options{Limits: erpsim.Unlimited()})
		if writes.err != nil {
			return
		}
		writes.audit = &lockedBuffer{}
		a, err := app.New(ctx, app.Config{
			Addr: "127.0.0.1:0", InstanceURL: writes.sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
			TrustedClientIDs: []string{fixture.PlaygroundClientID, fixture.BFFClientID},
			Logger:           slog.New(slog.DiscardHandler),
			AuditLogger:      slog.New(slog.NewJSONHandler(writes.audit, nil)),
			Writes:           app.WritesConfig{Enabled: true, PerMinute: -1},
			// The concurrency tests send ten requests of one user at once.
			RateLimit: server.RateLimitConfig{MaxConcurrent: -1},
		})
		if err != nil {
			writes.err = err
			return
		}
		go a.Serve(ctx)
		writes.url = a.URL() + "/graphql"
	})
	if writes.err != nil {
		t.Fatalf("write harness: %v", writes.err)
	}
	return writes.sim, writes.url
}

// mutate posts a mutation as login to the write-enabled server, with extra headers.
func mutate(t testing.TB, login, q string, vars map[string]any, hdr map[string]string) (response, map[string]any) {
	t.Helper()
	_, u := writer(t)
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+writerToken(t, login))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r struct {
		response
		Extensions map[string]any `json:"extensions"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("HTTP %d, body %q: %v", resp.StatusCode, raw, err)
	}
	return r.response, r.Extensions
}

var writerTokens sync.Map

func writerToken(t testing.TB, login string) string {
	t.Helper()
	if tk, ok := writerTokens.Load(login); ok {
		return tk.(string)
	}
	s, _ := writer(t)
	tk, err := s.Login(context.Background(), fixture.PlaygroundClientID, login, fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		t.Fatalf("login %s: %v", login, err)
	}
	writerTokens.Store(login, tk.AccessToken)
	return tk.AccessToken
}

const createMutation = `mutation($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) {
    salesOrder { id documentNo state version customer { number } lines { id lineNo quantity { value } product { partNumber } unitPrice { amount } } }
    userErrors { field message code }
    clientMutationId
  }
}`

type orderPayload struct {
	SalesOrder *struct {
		ID         string `json:"id"`
		DocumentNo string `json:"documentNo"`
		State      string `json:"state"`
		Version    int    `json:"version"`
		Void       bool   `json:"void"`
		Lines      []struct {
			ID       string `json:"id"`
			LineNo   int    `json:"lineNo"`
			Quantity struct {
				Value string `json:"value"`
			} `json:"quantity"`
			UnitPrice *struct {
				Amount string `json:"amount"`
			} `json:"unitPrice"`
		} `json:"lines"`
	} `json:"salesOrder"`
	DeletedSalesOrderID *string `json:"deletedSalesOrderId"`
	UserErrors          []struct {
		Field   []string `json:"field"`
		Message string   `json:"message"`
		Code    string   `json:"code"`
	} `json:"userErrors"`
	CurrentVersion   *int    `json:"currentVersion"`
	ClientMutationID *string `json:"clientMutationId"`
}

func (p orderPayload) code() string {
	if len(p.UserErrors) == 0 {
		return "OK"
	}
	return p.UserErrors[0].Code
}

// decodePayload reads data.<field> of a mutation answer.
func decodePayload(t testing.TB, r response, field string) orderPayload {
	t.Helper()
	var data map[string]json.RawMessage
	if err := json.Unmarshal(r.Data, &data); err != nil {
		t.Fatalf("data %s: %v (errors %+v)", r.Data, err, r.Errors)
	}
	var p orderPayload
	if err := json.Unmarshal(data[field], &p); err != nil {
		t.Fatalf("%s %s: %v", field, data[field], err)
	}
	return p
}

func productID(n int) string  { return encodeID("Product", fixture.ID("General_Products_Products", n)) }
func customerID(n int) string { return encodeID("Customer", fixture.CustomerID(n)) }

func lines(qty ...string) []any {
	var out []any
	for i, q := range qty {
		out = append(out, map[string]any{"productId": productID(i + 1), "quantity": q})
	}
	return out
}

// domainRequests counts the Domain API requests of the write harness's erpsim so far.
func domainRequests(t testing.TB) int {
	s, _ := writer(t)
	return s.Stats().DomainRequests
}

// warm resolves login's access scope (one upstream read, then cached), so refusals can be counted from zero.
func warm(t testing.TB, login string) {
	t.Helper()
	r, _ := mutate(t, login, `{ me { customerAccess { role } } }`, nil, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("me: %+v", r.Errors)
	}
}

// ordersWithReference counts the orders erpsim holds whose ReferenceDocumentNo starts with "eg" for customer n.
func ordersOf(t testing.TB, customer int) int {
	t.Helper()
	s, _ := writer(t)
	tk, err := s.ServiceToken(context.Background(), fixture.OtherClientID)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.ODataURL()+"Crm_Sales_SalesOrders/$count?$filter="+
		url.QueryEscape(fmt.Sprintf("Customer eq 'Crm_Sales_Customers(%s)'", fixture.CustomerID(customer))), nil)
	req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var n int
	if err := json.Unmarshal(raw, &n); err != nil {
		t.Fatalf("count: %s: %v", raw, err)
	}
	return n
}

// The owner creates an order with three lines: one changeset, state NEW, a version, the lines in order, prices
// shown (Owner sees prices); the next read shows it.
func TestWrites_CreateSalesOrder(t *testing.T) {
	before := ordersOf(t, 1)
	r, _ := mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": map[string]any{
		"customerId": customerID(1), "lines": lines("2", "1.5", "10"), "customerReference": "PO-e2e-1",
		"notes": "leave at the gate", "requiredDeliveryDate": "2030-01-15", "clientMutationId": "m1",
	}}, nil)
	p := decodePayload(t, r, "createSalesOrder")
	if p.code() != "OK" || p.SalesOrder == nil || p.SalesOrder.State != "NEW" || p.SalesOrder.Version < 1 ||
		len(p.SalesOrder.Lines) != 3 || p.ClientMutationID == nil || *p.ClientMutationID != "m1" {
		t.Fatalf("payload %s errors %+v", r.Data, r.Errors)
	}
	if p.SalesOrder.Lines[1].Quantity.Value != "1.5" || p.SalesOrder.Lines[0].UnitPrice == nil {
		t.Errorf("lines %+v", p.SalesOrder.Lines)
	}
	if after := ordersOf(t, 1); after != before+1 {
		t.Errorf("orders of customer 1: %d → %d", before, after)
	}
	var got struct {
		Node struct {
			CustomerPurchaseOrderNo string `json:"customerPurchaseOrderNo"`
			Notes                   string `json:"notes"`
			Version                 int    `json:"version"`
		} `json:"node"`
	}
	rr, _ := mutate(t, fixture.OwnerLogin, `query($id: ID!) { node(id: $id) { ... on SalesOrder { customerPurchaseOrderNo notes version } } }`,
		map[string]any{"id": p.SalesOrder.ID}, nil)
	if err := json.Unmarshal(rr.Data, &got); err != nil || got.Node.CustomerPurchaseOrderNo != "PO-e2e-1" ||
		got.Node.Notes != "leave at the gate" || got.Node.Version != p.SalesOrder.Version {
		t.Errorf("read back %s (%v)", rr.Data, rr.Errors)
	}
}

// Every role, allowed and refused, and foreign or malformed ids: refusals decided from the request and the
// user's scope cost zero upstream requests.
func TestWrites_CreateAccess(t *testing.T) {
	tests := []struct {
		name, login string
		input       map[string]any
		want        string
	}{
		{"owner", fixture.OwnerLogin, map[string]any{"customerId": customerID(1), "lines": lines("1")}, "OK"},
		{"orders role", fixture.MultiLogin, map[string]any{"customerId": customerID(2), "lines": lines("1")}, "OK"},
		{"orders-billing role", fixture.MultiLogin, map[string]any{"customerId": customerID(3), "lines": lines("1")}, "OK"},
		{"basic role", fixture.BasicLogin, map[string]any{"customerId": customerID(4), "lines": lines("1")}, "FORBIDDEN"},
		{"foreign customer", fixture.MultiLogin, map[string]any{"customerId": customerID(1), "lines": lines("1")}, "NOT_FOUND"},
		{"no access", fixture.NoAccessLogin, map[string]any{"customerId": customerID(1), "lines": lines("1")}, "NOT_FOUND"},
		{"missing customer", fixture.OwnerLogin, map[string]any{"customerId": customerID(999), "lines": lines("1")}, "NOT_FOUND"},
		{"id of another type", fixture.OwnerLogin, map[string]any{"customerId": productID(1), "lines": lines("1")}, "NOT_FOUND"},
		{"garbage id", fixture.OwnerLogin, map[string]any{"customerId": "x'); DROP", "lines": lines("1")}, "NOT_FOUND"},
		{"zero quantity", fixture.OwnerLogin, map[string]any{"customerId": customerID(1), "lines": lines("0")}, "BAD_USER_INPUT"},
		{"negative quantity", fixture.OwnerLogin, map[string]any{"customerId": customerID(1), "lines": lines("-2")}, "BAD_USER_INPUT"},
		{"huge quantity", fixture.OwnerLogin, map[string]any{"customerId": customerID(1), "lines": lines("1000000000")}, "BAD_USER_INPUT"},
		{"no lines", fixture.OwnerLogin, map[string]any{"customerId": customerID(1), "lines": []any{}}, "BAD_USER_INPUT"},
		{"too many lines", fixture.OwnerLogin, map[string]any{"customerId": customerID(1), "lines": manyLines(101)}, "BAD_USER_INPUT"},
		{"long reference", fixture.OwnerLogin, map[string]any{"customerId": customerID(1), "lines": lines("1"), "customerReference": strings.Repeat("x", 21)}, "BAD_USER_INPUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warm(t, tc.login)
			before := domainRequests(t)
			r, _ := mutate(t, tc.login, createMutation, map[string]any{"input": tc.input}, nil)
			p := decodePayload(t, r, "createSalesOrder")
			if p.code() != tc.want {
				t.Fatalf("code %s, want %s: %s %+v", p.code(), tc.want, r.Data, r.Errors)
			}
			if tc.want != "OK" {
				if p.SalesOrder != nil {
					t.Errorf("refused create answered an order: %s", r.Data)
				}
				if n := domainRequests(t) - before; n != 0 && tc.name != "missing customer" {
					t.Errorf("refusal made %d upstream requests, want 0", n)
				}
			}
		})
	}
}

func manyLines(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"productId": productID(1), "quantity": "1"}
	}
	return out
}

// A product that does not exist is NOT_FOUND at its line; an inactive one makes ERP.net refuse the whole
// changeset (REJECTED_BY_ERP, with a safe message) and nothing is written: not the order, not the other lines.
func TestWrites_AtomicChangeset(t *testing.T) {
	before := ordersOf(t, 1)
	r, _ := mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": map[string]any{
		"customerId": customerID(1), "lines": []any{
			map[string]any{"productId": productID(1), "quantity": "1"},
			map[string]any{"productId": productID(99999), "quantity": "1"},
		}}}, nil)
	if p := decodePayload(t, r, "createSalesOrder"); p.code() != "NOT_FOUND" || strings.Join(p.UserErrors[0].Field, ".") != "input.lines.1.productId" {
		t.Errorf("missing product: %s", r.Data)
	}
	r, _ = mutate(t, fixture.OwnerLogin, createMutation, map[string]any{"input": map[string]any{
		"customerId": customerID(1), "lines": []any{
			map[string]any{"productId": productID(1), "quantity": "1"},
			map[string]any{"productId": productID(2), "quantity": "3"},
			map[string]any{"productId": productID(37), "quantity": "1"}, // inactive in the demo data
		}}}, nil)
	p := decodePayload(t, r, "createSalesOrder")
	if p.code() != "REJECTED_BY_ERP" || p.SalesOrder != nil {
		t.Fatalf("inactive product: %s %+v", r.Data, r.Errors)
	}
	if msg := p.UserErrors[0].Message; strings.Contains(msg, "Aloe") || strings.Contains(msg, "active") || strings.Contains(msg, "Line") {
		t.Errorf("ERP.net's text reached the user: %q", msg)
	}
	if after := ordersOf(t, 1); after != before {
		t.Errorf("a refused changeset wrote: orders %d → %d", before, after)
	}
}

// With writes off (the read tests' server) every mutation answers WRITES_DISABLED without an ERP.net call, and
// the service token asked for `read` only; the write server's asked for `read update`.
func TestWrites_DisabledAndScopes(t *testing.T) {
	query(t, fixture.OwnerLogin, `{ me { customerAccess { role } } }`, nil, nil)
	before := sim.Stats().DomainRequests
	r := query(t, fixture.OwnerLogin, createMutation, map[string]any{"input": map[string]any{"customerId": customerID(1), "lines": lines("1")}}, nil)
	if r.code() != "WRITES_DISABLED" || !strings.Contains(string(r.Data), `"createSalesOrder":null`) {
		t.Fatalf("writes off: %s %+v", r.Data, r.Errors)
	}
	if n := sim.Stats().DomainRequests - before; n != 0 {
		t.Errorf("WRITES_DISABLED made %d upstream requests", n)
	}
	// Both servers' service tokens, as the write harness's erpsim saw them asked for: one erpgraph with writes on,
	// then one more with writes off on the same instance.
	ws, _ := writer(t)
	warm(t, fixture.OwnerLogin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ro, err := app.New(ctx, app.Config{
		Addr: "127.0.0.1:0", InstanceURL: ws.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		TrustedClientIDs: []string{fixture.PlaygroundClientID}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	go ro.Serve(ctx)
	body := strings.NewReader(`{"query":"{ me { customerAccess { role } } }"}`)
	req, _ := http.NewRequest(http.MethodPost, ro.URL()+"/graphql", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+writerToken(t, fixture.OwnerLogin))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var got []string
	for _, r := range ws.Requests() {
		if r.GrantType == "client_credentials" && r.ClientID == fixture.BFFClientID {
			got = append(got, r.Scope)
		}
	}
	if len(got) != 2 || got[0] != "read update" || got[1] != "read" {
		t.Errorf("service token scopes asked (writes on, then off): %q", got)
	}
}

func jsonInto(r response, out any) error { return json.Unmarshal(r.Data, out) }
