package graph_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/graph"
)

// limitsServer is the GraphQL handler alone: operations refused by the limits never reach a resolver, so no
// ERP.net client is needed; anonymous operations that pass answer UNAUTHENTICATED.
func limitsServer(t *testing.T, cfg graph.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(graph.NewHandler(cfg))
	t.Cleanup(srv.Close)
	return srv
}

type gqlReply struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (r gqlReply) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func postQuery(t *testing.T, url, query string) gqlReply {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"query": query})
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r gqlReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("HTTP %d: %v", resp.StatusCode, err)
	}
	return r
}

func TestLimits_CostFromPageSizes(t *testing.T) {
	// one read of 100 orders with their lines nested: 50 + 100 rows + 100 × 10 lines = 1,150
	const q = `{ salesOrders(first: 100) { nodes { lines { id } } } }`
	dashboard100 := strings.Replace(dashboardQuery, "first: 20", "first: 100", 1)
	tests := []struct {
		name     string
		maxCost  int
		query    string
		wantCode string
	}{
		{"at the limit", 1150, q, "UNAUTHENTICATED"},
		{"one over the limit", 1149, q, "QUERY_TOO_COMPLEX"},
		{"first scales the cost", 1149, `{ salesOrders(first: 50) { nodes { lines { id } } } }`, "UNAUTHENTICATED"},
		{"first from a variable counts too", 1149, `query ($n: Int = 100) { salesOrders(first: $n) { nodes { lines { id } } } }`, "QUERY_TOO_COMPLEX"},
		{"the default page size is 20", 270, `{ salesOrders { nodes { lines { id } } } }`, "UNAUTHENTICATED"},
		{"scalars cost nothing beyond their row", 270, `{ salesOrders { nodes { id documentNo documentDate state lines { id lineNo quantity { value unit } } } } }`, "UNAUTHENTICATED"},
		{"nodes(ids) costs a read per 20 ids and a row each", 56, `{ nodes(ids: ["a","b","c","d","e","f"]) { id } }`, "UNAUTHENTICATED"},
		{"nodes(ids) over the limit", 56, `{ nodes(ids: ["a","b","c","d","e","f","g","h","i","j"]) { id } }`, "QUERY_TOO_COMPLEX"},
		// a relation a loader reads costs its reads: the invoices of 20 orders are one more read
		{"a loader's read counts", 319, `{ salesOrders { nodes { invoices { id } } } }`, "QUERY_TOO_COMPLEX"},
		{"a loader's read at the limit", 320, `{ salesOrders { nodes { invoices { id } } } }`, "UNAUTHENTICATED"},
		// the dashboard: orders, customer, party, lines and products in one read, invoices in another
		{"the dashboard costs 760", 760, dashboardQuery, "UNAUTHENTICATED"},
		{"the dashboard at first: 100 fits the default", 0, dashboard100, "UNAUTHENTICATED"},
		// what a page of 100 orders can fan out to: each line's order, and that order's lines, read again
		{"orders → lines → order → lines refused by the default", 0, `{ salesOrders(first: 100) { nodes { lines { salesOrder { lines { product { name } } } } } } }`, "QUERY_TOO_COMPLEX"},
		{"five aliased dashboards of 100 refused by the default", 0, "{" + aliased(dashboard100, 5) + " }", "QUERY_TOO_COMPLEX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := limitsServer(t, graph.Config{Limits: graph.Limits{MaxCost: tt.maxCost}})
			r := postQuery(t, srv.URL, tt.query)
			if r.code() != tt.wantCode {
				t.Fatalf("code %q, want %q (%+v)", r.code(), tt.wantCode, r.Errors)
			}
		})
	}
}

func TestLimits_Boundaries(t *testing.T) {
	srv := limitsServer(t, graph.Config{})
	aliases := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "a%d: login ", i)
		}
		return "{ me { " + b.String() + "} }"
	}
	directives := func(n int) string {
		return "{ me { " + strings.Repeat("login @include(if: true) ", n) + "} }"
	}
	tests := []struct {
		name, query, wantCode string
	}{
		{"15 aliases pass", aliases(15), "UNAUTHENTICATED"},
		{"16 aliases are refused", aliases(16), "TOO_MANY_ALIASES"},
		{"50 directives pass", directives(50), "UNAUTHENTICATED"},
		{"51 directives are refused", directives(51), "TOO_MANY_DIRECTIVES"},
		{"10 root fields pass", "{ " + strings.Repeat("__typename ", 10) + "}", ""},
		{"11 root fields are refused", "{ " + strings.Repeat("__typename ", 11) + "}", "TOO_MANY_ROOT_FIELDS"},
		{"depth 6 passes", `{ salesOrders { nodes { lines { salesOrder { customer { party { name } } } } } } }`, "UNAUTHENTICATED"},
		{"depth 7 is refused", `{ salesOrders { nodes { lines { salesOrder { lines { product { unit { code } } } } } } } }`, "QUERY_TOO_DEEP"},
		{"fragments count where they are spread", `{ salesOrders { ...O } } fragment O on SalesOrderConnection { nodes { lines { salesOrder { lines { salesOrder { customer { id } } } } } } }`, "QUERY_TOO_DEEP"},
		{"1000 tokens pass", "{ " + strings.Repeat("__typename ", 998) + "}", "TOO_MANY_ROOT_FIELDS"},
		{"1001 tokens are refused before parsing", "{ " + strings.Repeat("__typename ", 999) + "}", "TOO_MANY_TOKENS"},
		{"a lexical error is the parser's", "{ \"unterminated }", "GRAPHQL_PARSE_FAILED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postQuery(t, srv.URL, tt.query)
			if r.code() != tt.wantCode {
				t.Fatalf("code %q, want %q (%+v)", r.code(), tt.wantCode, r.Errors)
			}
		})
	}
}

// A chain of fragments that each spread the next twice expands to 2^40 fields; it must be measured (and
// refused) without expanding it.
func TestLimits_FragmentChainIsNotExpanded(t *testing.T) {
	srv := limitsServer(t, graph.Config{Limits: graph.Limits{MaxTokens: -1}})
	var b strings.Builder
	b.WriteString("{ me { ...F0 } }\n")
	const n = 40
	for i := range n {
		fmt.Fprintf(&b, "fragment F%d on Viewer { x%d: login ...F%d ...F%d }\n", i, i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Viewer { login }\n", n)
	r := postQuery(t, srv.URL, b.String())
	if r.code() != "TOO_MANY_ALIASES" {
		t.Fatalf("code %q, want TOO_MANY_ALIASES (%+v)", r.code(), r.Errors)
	}
}

func TestLimits_IntrospectionInDevMode(t *testing.T) {
	srv := limitsServer(t, graph.Config{Introspection: true})
	r := postQuery(t, srv.URL, introspectionQuery)
	if len(r.Errors) > 0 || !bytes.Contains(r.Data, []byte(`"SalesOrder"`)) {
		t.Fatalf("GraphiQL's introspection query in dev mode: %+v", r.Errors)
	}
	if r := postQuery(t, srv.URL, `{ salesOrdr { id } }`); r.code() != "GRAPHQL_VALIDATION_FAILED" || !strings.Contains(r.Errors[0].Message, "Did you mean") {
		t.Errorf("dev mode keeps field suggestions: %+v", r.Errors)
	}
	prod := limitsServer(t, graph.Config{})
	if r := postQuery(t, prod.URL, introspectionQuery); r.code() != "INTROSPECTION_DISABLED" {
		t.Errorf("production: code %q, want INTROSPECTION_DISABLED", r.code())
	}
	if r := postQuery(t, prod.URL, `{ salesOrdr { id } }`); r.code() != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(r.Errors[0].Message, "Did you mean") {
		t.Errorf("production leaves suggestions out: %+v", r.Errors)
	}
}

// introspectionQuery is the query GraphiQL sends (graphql-js getIntrospectionQuery with descriptions).
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

func TestParseTrustedDocuments(t *testing.T) {
	tests := []struct {
		name, manifest string
		wantLen        int
		wantErr        string
	}{
		{"apollo manifest", `{"format":"apollo-persisted-query-manifest","version":1,"operations":[{"id":"a1","body":"{ me { login } }","name":"Me","type":"query"}]}`, 1, ""},
		{"plain map", `{"0f1e":"{ me { login } }","9a8b":"{ __typename }"}`, 2, ""},
		{"unknown format", `{"format":"something-else","operations":[]}`, 0, "unknown manifest format"},
		{"not JSON", `nope`, 0, "not an Apollo persisted-query manifest"},
		{"empty", `{}`, 0, "no operation"},
		{"empty document", `{"a":""}`, 0, "empty document"},
		{"one id, two documents", `{"format":"apollo-persisted-query-manifest","operations":[{"id":"x","body":"{ a }"},{"id":"x","body":"{ b }"}]}`, 0, "two different documents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, err := graph.ParseTrustedDocuments([]byte(tt.manifest))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || td.Len() != tt.wantLen {
				t.Fatalf("got %v documents, err %v; want %d", td, err, tt.wantLen)
			}
		})
	}
}

// A document over the token limit is refused before automatic persisted queries store it, so its hash stays
// unknown and cannot be used to run it later.
func TestLimits_TokensCountedBeforeAPQStores(t *testing.T) {
	srv := limitsServer(t, graph.Config{})
	q := "{ " + strings.Repeat("__typename ", 1200) + "}"
	sum := sha256.Sum256([]byte(q))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	send := func(body map[string]any) gqlReply {
		b, _ := json.Marshal(body)
		resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r gqlReply
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := send(map[string]any{"query": q, "extensions": ext}); r.code() != "TOO_MANY_TOKENS" {
		t.Fatalf("registration: code %q, want TOO_MANY_TOKENS", r.code())
	}
	if r := send(map[string]any{"extensions": ext}); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("hash only: code %q, want PERSISTED_QUERY_NOT_FOUND", r.code())
	}
}

// aliased returns n copies of the root selection of query, each under its own alias.
func aliased(query string, n int) string {
	body := strings.TrimSpace(strings.TrimPrefix(query, "query Dashboard"))
	body = strings.TrimSuffix(strings.TrimPrefix(body, "{"), "}")
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " d%d: %s", i, strings.TrimSpace(body))
	}
	return b.String()
}
