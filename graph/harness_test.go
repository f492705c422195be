package graph_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph"
)

// env is erpsim on loopback, an erpclient with the BFF's service session, and the GraphQL handler behind a
// Bearer middleware that verifies erpsim's user tokens, all over real HTTP.
type env struct {
	sim    *erpsim.Sim
	erp    *erpclient.Client
	srv    *httptest.Server
	count  *upstreamCounter // the Domain API reads of erp
	mu     sync.Mutex
	tokens map[string]string
}

type envOptions struct {
	allowInternal bool
	introspection bool
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatalf("erpsim: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	count := &upstreamCounter{next: http.DefaultTransport, sets: map[string]int{}}
	erp, err := erpclient.New(ctx, erpclient.Config{
		InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret, Scopes: []string{"read"},
		HTTPClient: &http.Client{Transport: count, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatalf("erpclient: %v", err)
	}
	t.Cleanup(erp.Close)
	ver, err := auth.NewVerifier(ctx, auth.Config{Issuer: sim.IdentityURL(), ClientIDs: []string{fixture.PlaygroundClientID, fixture.BFFClientID}})
	if err != nil {
		t.Fatalf("verifier: %v", err)
	}
	h := graph.NewHandler(graph.Config{
		RequestID: func(ctx context.Context) string { id, _ := ctx.Value(requestIDKey{}).(string); return id },
		ERP:       erp, Access: access.NewResolver(erp, access.Config{AllowInternalUsers: o.allowInternal}), Introspection: o.introspection,
	})
	srv := httptest.NewServer(bearer(ver, h))
	t.Cleanup(srv.Close)
	return &env{sim: sim, erp: erp, srv: srv, count: count, tokens: map[string]string{}}
}

type requestIDKey struct{}

// bearer is the part of the server's edge that graph relies on: the request ID (the client's X-Request-ID, else
// a new one) and a verified user in the context, 401 for an invalid token, and anonymous requests passed through.
func bearer(v *auth.Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := cmp.Or(r.Header.Get("X-Request-ID"), uuid.NewString())
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		u, err := v.Verify(r.Context(), raw)
		if err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), u)))
	})
}

// token signs login in at erpsim's identity server (once per env).
func (e *env) token(t testing.TB, login string) string {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if tok, ok := e.tokens[login]; ok {
		return tok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tk, err := e.sim.Login(ctx, fixture.PlaygroundClientID, login, fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		t.Fatalf("login %s: %v", login, err)
	}
	e.tokens[login] = tk.AccessToken
	return tk.AccessToken
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string `json:"message"`
	Path       []any  `json:"path"`
	Locations  []struct{ Line, Column int }
	Extensions map[string]any `json:"extensions"`
}

type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

func (r response) codes() []string {
	var out []string
	for _, e := range r.Errors {
		c, _ := e.Extensions["code"].(string)
		out = append(out, c)
	}
	return out
}

// do posts a GraphQL operation as login ("" for anonymous) and decodes the response into data.
func (e *env) do(t testing.TB, login, query string, vars map[string]any, data any) response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if login != "" {
		req.Header.Set("Authorization", "Bearer "+e.token(t, login))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var r response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decode response (HTTP %d): %v", resp.StatusCode, err)
	}
	if data != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, data); err != nil {
			t.Fatalf("decode data: %v in %s", err, r.Data)
		}
	}
	return r
}

// mustDo is do that fails the test on any error in the response.
func (e *env) mustDo(t testing.TB, login, query string, vars map[string]any, data any) {
	t.Helper()
	if r := e.do(t, login, query, vars, data); len(r.Errors) > 0 {
		t.Fatalf("errors: %+v", r.Errors)
	}
}
