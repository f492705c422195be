package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// edge is an erpgraph in production mode (no introspection, no playground) on an erpsim of its own, so that a
// test can assert that a refused operation cost ERP.net nothing: erpsim's Domain API request count stays 0.
type edge struct {
	sim   *erpsim.Sim
	url   string // .../graphql
	token string // anna.petrova's access token
}

// startEdge starts erpsim and erpgraph with the edge's rate limits off (they are tested in server and app; here
// they would only make request counts depend on timing) and cfg's changes applied.
func startEdge(t *testing.T, change func(*app.Config)) *edge {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := erpsim.Start(ctx, erpsim.Options{Limits: erpsim.Limits{RequestsPerMinute: -1}})
	if err != nil {
		t.Fatalf("erpsim: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	cfg := app.Config{
		Addr: "127.0.0.1:0", InstanceURL: s.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		TrustedClientIDs: []string{fixture.PlaygroundClientID, fixture.BFFClientID},
		Logger:           slog.New(slog.DiscardHandler),
		RateLimit:        server.RateLimitConfig{UserRate: -1, AnonRate: -1, MaxConcurrent: -1},
		// these tests count the Domain API requests an operation causes: no background sync alongside
		ReadCache: app.ReadCacheConfig{SyncInterval: -1},
	}
	if change != nil {
		change(&cfg)
	}
	a, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	go a.Serve(ctx)
	tk, err := s.Login(ctx, fixture.PlaygroundClientID, "anna.petrova", fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return &edge{sim: s, url: a.URL() + "/graphql", token: tk.AccessToken}
}

// reply is one HTTP answer of /graphql.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]json.RawMessage
	errs   []gqlError
}

func (r reply) code() string {
	if len(r.errs) == 0 {
		return ""
	}
	c, _ := r.errs[0].Extensions["code"].(string)
	return c
}

func (r reply) String() string { return fmt.Sprintf("HTTP %d %s", r.status, r.raw) }

// do sends req (signed in as anna unless anonymous) and decodes the answer.
func (e *edge) do(t *testing.T, req *http.Request, anonymous bool) reply {
	t.Helper()
	if !anonymous {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /graphql: %v", req.Method, err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	r.raw, _ = io.ReadAll(resp.Body)
	if err := json.Unmarshal(r.raw, &r.body); err == nil {
		_ = json.Unmarshal(r.body["errors"], &r.errs)
	}
	return r
}

// post sends a JSON body.
func (e *edge) post(t *testing.T, body any) reply {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return e.do(t, req, false)
}

// get sends the GraphQL parameters in the URL, with the header that lets a GET past CSRF prevention.
func (e *edge) get(t *testing.T, params url.Values) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+"?"+params.Encode(), nil)
	req.Header.Set("Apollo-Require-Preflight", "true")
	return e.do(t, req, false)
}

// assertNoERPCalls fails when erpsim's Domain API saw any request since the last reset.
func (e *edge) assertNoERPCalls(t *testing.T) {
	t.Helper()
	if n := e.sim.Stats().DomainRequests; n != 0 {
		t.Errorf("erpsim saw %d Domain API requests; want 0 (the operation must be refused before any ERP call)", n)
	}
}

func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
		b.WriteByte(' ')
	}
	return b.String()
}

func TestLimits_AttacksRefusedBeforeERP(t *testing.T) {
	e := startEdge(t, nil)
	tests := []struct {
		name, query, code string
	}{
		{"alias overload (120 aliases)", "{ me { " + repeat(120, func(i int) string { return fmt.Sprintf("a%d: login", i) }) + "} }", "TOO_MANY_ALIASES"},
		{"deep nesting", `{ salesOrders { nodes { lines { salesOrder { lines { salesOrder { customer { party { name } } } } } } } } }`, "QUERY_TOO_DEEP"},
		{"field duplication (2,000 repeats)", "{ me { " + repeat(2000, func(int) string { return "login" }) + "} }", "TOO_MANY_TOKENS"},
		{"directive overload (60 directives)", "{ me { " + repeat(60, func(int) string { return "login @include(if: true)" }) + "} }", "TOO_MANY_DIRECTIVES"},
		{"circular fragments", `{ me { ...A } } fragment A on Viewer { login ...B } fragment B on Viewer { name ...A }`, "GRAPHQL_VALIDATION_FAILED"},
		{"token overload (a 3,000-element list)", `{ nodes(ids: [` + repeat(3000, func(int) string { return `"x"` }) + `]) { id } }`, "TOO_MANY_TOKENS"},
		{"cost overload (100 orders → lines → order → lines)", `{ salesOrders(first: 100) { nodes { id documentNo lines { salesOrder { lines { product { partNumber name } } } } } } }`, "QUERY_TOO_COMPLEX"},
		{"cost overload (five aliased lists of 100 with lines, products and invoices)", "{ " + repeat(5, func(i int) string {
			return fmt.Sprintf("o%d: salesOrders(first: 100) { nodes { id lines { product { name } } invoices { lines { product { name } } } } } ", i)
		}) + "}", "QUERY_TOO_COMPLEX"},
		{"root field overload (11 root fields)", "{ " + repeat(11, func(i int) string { return fmt.Sprintf("m%d: me { login }", i) }) + "}", "TOO_MANY_ROOT_FIELDS"},
		{"introspection in production", `{ __schema { types { name } } }`, "INTROSPECTION_DISABLED"},
		{"introspection of one type in production", `{ __type(name: "SalesOrder") { fields { name } } }`, "INTROSPECTION_DISABLED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.sim.ResetRequests()
			r := e.post(t, map[string]any{"query": tt.query})
			if r.code() != tt.code {
				t.Fatalf("code %q, want %q (%v)", r.code(), tt.code, r)
			}
			if _, ok := r.body["data"]; ok {
				t.Errorf("a refused operation has a data entry: %s", r.raw)
			}
			if r.status != http.StatusOK {
				t.Errorf("status %d; want 200 (application/json)", r.status)
			}
			e.assertNoERPCalls(t)
		})
	}

	t.Run("JSON array batching", func(t *testing.T) {
		e.sim.ResetRequests()
		r := e.post(t, []map[string]string{{"query": "{ me { login } }"}, {"query": "{ customers { totalCount } }"}})
		if r.status != http.StatusBadRequest || r.code() != "BATCHING_NOT_SUPPORTED" {
			t.Fatalf("got %v; want 400 BATCHING_NOT_SUPPORTED", r)
		}
		e.assertNoERPCalls(t)
	})

	t.Run("no field suggestions in production", func(t *testing.T) {
		r := e.post(t, map[string]any{"query": "{ salesOrder { id } }"})
		if r.code() != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(string(r.raw), "Did you mean") {
			t.Fatalf("got %v; want a validation error without suggestions", r)
		}
	})

	// The control: the counter does count, and an operation under the limits runs.
	t.Run("an operation under the limits reaches ERP.net", func(t *testing.T) {
		e.sim.ResetRequests()
		r := e.post(t, map[string]any{"query": `{ salesOrders(first: 5) { nodes { id lines { id product { name } } } } }`})
		if len(r.errs) > 0 {
			t.Fatalf("errors: %v", r)
		}
		if e.sim.Stats().DomainRequests == 0 {
			t.Fatal("erpsim counted no Domain API request for a real query; the zero counts above prove nothing")
		}
	})
}

func TestLimits_Configurable(t *testing.T) {
	e := startEdge(t, func(c *app.Config) {
		c.QueryLimits.MaxAliases = -1 // off
		c.QueryLimits.MaxDepth = 2
	})
	aliases := "{ me { " + repeat(40, func(i int) string { return fmt.Sprintf("a%d: login", i) }) + "} }"
	if r := e.post(t, map[string]any{"query": aliases}); len(r.errs) > 0 {
		t.Errorf("aliases with the limit off: %v", r)
	}
	if r := e.post(t, map[string]any{"query": `{ salesOrders { nodes { customer { id } } } }`}); r.code() != "QUERY_TOO_DEEP" {
		t.Errorf("depth 3 with a limit of 2: %v", r)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func persistedExt(hash string) string {
	return fmt.Sprintf(`{"persistedQuery":{"version":1,"sha256Hash":%q}}`, hash)
}

func TestPersistedQueries_APQRoundTripOverGET(t *testing.T) {
	e := startEdge(t, nil)
	q := `query Customers { customers(first: 2) { nodes { number } } }`
	hash := sha(q)

	e.sim.ResetRequests()
	r := e.get(t, url.Values{"extensions": {persistedExt(hash)}})
	if r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("unknown hash: %v; want PERSISTED_QUERY_NOT_FOUND", r)
	}
	e.assertNoERPCalls(t)

	r = e.get(t, url.Values{"query": {q}, "extensions": {persistedExt(hash)}})
	if len(r.errs) > 0 || !bytes.Contains(r.body["data"], []byte(`"number"`)) {
		t.Fatalf("query with its hash: %v", r)
	}
	r = e.get(t, url.Values{"extensions": {persistedExt(hash)}})
	if len(r.errs) > 0 || !bytes.Contains(r.body["data"], []byte(`"number"`)) {
		t.Fatalf("hash only, after registration: %v", r)
	}
	if cc := r.header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Errorf("Cache-Control %q of a signed-in GET answer; want private", cc)
	}
	if vary := strings.Join(r.header.Values("Vary"), ", "); !strings.Contains(vary, "Authorization") {
		t.Errorf("Vary %q; want Authorization in it", vary)
	}

	t.Run("hash mismatch", func(t *testing.T) {
		e.sim.ResetRequests()
		r := e.post(t, map[string]any{"query": q, "extensions": json.RawMessage(persistedExt(sha("{ me { login } }")))})
		if r.code() != "PERSISTED_QUERY_HASH_MISMATCH" {
			t.Fatalf("got %v; want PERSISTED_QUERY_HASH_MISMATCH", r)
		}
		e.assertNoERPCalls(t)
	})
	t.Run("POST answers are not cacheable", func(t *testing.T) {
		r := e.post(t, map[string]any{"query": q})
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q; want no-store", cc)
		}
	})
}

func TestPersistedQueries_TrustedDocumentsOnly(t *testing.T) {
	allowed := `query MyCustomers { customers(first: 3) { nodes { number } } }`
	manifest := map[string]any{
		"format": "apollo-persisted-query-manifest", "version": 1,
		"operations": []map[string]string{
			{"id": sha(allowed), "body": allowed, "name": "MyCustomers", "type": "query"},
			{"id": "me-v1", "body": `query Me { me { login } }`, "name": "Me", "type": "query"},
		},
	}
	path := filepath.Join(t.TempDir(), "manifest.json")
	b, _ := json.Marshal(manifest)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEdge(t, func(c *app.Config) {
		c.TrustedDocuments, c.TrustedDocumentsOnly = path, true
		c.CacheMaxAge = time.Minute
	})

	t.Run("an ad-hoc query is refused", func(t *testing.T) {
		e.sim.ResetRequests()
		r := e.post(t, map[string]any{"query": `{ customers { nodes { number } } }`})
		if r.code() != "OPERATION_NOT_ALLOWED" {
			t.Fatalf("got %v; want OPERATION_NOT_ALLOWED", r)
		}
		e.assertNoERPCalls(t)
	})
	t.Run("an ad-hoc automatic persisted query cannot register", func(t *testing.T) {
		e.sim.ResetRequests()
		q := `{ invoices { totalCount } }`
		r := e.post(t, map[string]any{"query": q, "extensions": json.RawMessage(persistedExt(sha(q)))})
		if r.code() != "OPERATION_NOT_ALLOWED" {
			t.Fatalf("got %v; want OPERATION_NOT_ALLOWED", r)
		}
		if r = e.get(t, url.Values{"extensions": {persistedExt(sha(q))}}); r.code() != "OPERATION_NOT_ALLOWED" {
			t.Fatalf("hash only: %v; want OPERATION_NOT_ALLOWED", r)
		}
		e.assertNoERPCalls(t)
	})
	t.Run("a manifest operation runs over GET by hash", func(t *testing.T) {
		r := e.get(t, url.Values{"extensions": {persistedExt(sha(allowed))}})
		if len(r.errs) > 0 || !bytes.Contains(r.body["data"], []byte(`"number"`)) {
			t.Fatalf("got %v", r)
		}
		if cc := r.header.Get("Cache-Control"); cc != "private, max-age=60" {
			t.Errorf("Cache-Control %q; want private, max-age=60", cc)
		}
	})
	t.Run("a manifest operation runs by a custom id", func(t *testing.T) {
		r := e.get(t, url.Values{"extensions": {persistedExt("me-v1")}})
		if len(r.errs) > 0 || !bytes.Contains(r.body["data"], []byte(`"anna.petrova"`)) {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("a manifest operation runs by documentId (GraphQL-over-HTTP persisted documents)", func(t *testing.T) {
		r := e.get(t, url.Values{"documentId": {"me-v1"}})
		if len(r.errs) > 0 || !bytes.Contains(r.body["data"], []byte(`"anna.petrova"`)) {
			t.Fatalf("GET: %v", r)
		}
		if r = e.post(t, map[string]any{"documentId": "sha256:" + sha(allowed)}); len(r.errs) > 0 {
			t.Fatalf("POST: %v", r)
		}
		if r = e.post(t, map[string]any{"documentId": "unknown"}); r.code() != "OPERATION_NOT_ALLOWED" {
			t.Fatalf("unknown id: %v; want OPERATION_NOT_ALLOWED", r)
		}
	})
	t.Run("a manifest document sent in full runs", func(t *testing.T) {
		if r := e.post(t, map[string]any{"query": allowed}); len(r.errs) > 0 {
			t.Fatalf("got %v", r)
		}
	})
	t.Run("an id with another document is refused", func(t *testing.T) {
		r := e.post(t, map[string]any{"query": `{ me { name } }`, "extensions": json.RawMessage(persistedExt("me-v1"))})
		if r.code() != "PERSISTED_QUERY_HASH_MISMATCH" {
			t.Fatalf("got %v; want PERSISTED_QUERY_HASH_MISMATCH", r)
		}
	})
}
