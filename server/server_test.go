package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// env is an erpsim instance, a verifier for it, and a server whose GraphQL
// handler records what reached it.
type env struct {
	sim    *erpsim.Sim
	v      *auth.Verifier
	srv    *server.Server
	http   *httptest.Server
	logs   *syncBuffer
	mu     sync.Mutex
	seen   []seenRequest
	handle http.HandlerFunc // optional override of the GraphQL handler
}

type seenRequest struct {
	user      *auth.User
	requestID string // from RequestID(ctx)
	header    string // X-Request-ID as the handler sees it
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T, edit func(*server.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: sim.IdentityURL(), ClientIDs: []string{fixture.PlaygroundClientID}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sim: sim, v: v, logs: &syncBuffer{}}
	cfg := server.Config{
		GraphQL:  http.HandlerFunc(e.graphql),
		Verifier: v,
		Readiness: func(ctx context.Context) server.Readiness {
			if err := v.Ping(ctx); err != nil {
				return server.Readiness{Status: server.StatusUnavailable, Error: "identity server not answering"}
			}
			return server.Readiness{Status: server.StatusOK}
		},
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	e.srv, err = server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.http.Close)
	return e
}

func (e *env) graphql(w http.ResponseWriter, r *http.Request) {
	u, _ := auth.FromContext(r.Context())
	e.mu.Lock()
	e.seen = append(e.seen, seenRequest{user: u, requestID: server.RequestID(r.Context()), header: r.Header.Get("X-Request-ID")})
	e.mu.Unlock()
	if e.handle != nil {
		e.handle(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"data":{"__typename":"Query"}}`)
}

func (e *env) lastSeen(t *testing.T) seenRequest {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		t.Fatal("the GraphQL handler was not called")
	}
	return e.seen[len(e.seen)-1]
}

func (e *env) calls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen)
}

func (e *env) post(t *testing.T, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.http.URL+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

type gqlErrors struct {
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code      string `json:"code"`
			RequestID string `json:"requestId"`
		} `json:"extensions"`
	} `json:"errors"`
}

func decodeErrors(t *testing.T, res *http.Response) gqlErrors {
	t.Helper()
	var body gqlErrors
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	if len(body.Errors) != 1 {
		t.Fatalf("errors = %+v, want one", body.Errors)
	}
	return body
}

func TestServer_RequestID(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, sent string
		keep       bool
	}{
		{"caller's sane id is kept", "req-42.a_b:c", true},
		{"missing id is generated", "", false},
		{"id with spaces is replaced", "bad id", false},
		{"id with a newline escape is replaced", "abc\\nFAKE", false},
		{"overlong id is replaced", strings.Repeat("a", 129), false},
	}
	ids := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.sent != "" {
				h.Set("X-Request-ID", tt.sent)
			}
			res := e.post(t, h)
			got := res.Header.Get("X-Request-ID")
			if tt.keep && got != tt.sent {
				t.Errorf("X-Request-ID = %q, want %q", got, tt.sent)
			}
			if !tt.keep && (got == "" || got == tt.sent || len(got) != 36) {
				t.Errorf("X-Request-ID = %q, want a generated UUID", got)
			}
			if ids[got] {
				t.Errorf("request id %q repeated", got)
			}
			ids[got] = true
			seen := e.lastSeen(t)
			// The ID is worked out once, here, and reaches handlers through RequestID(ctx) only: the inbound
			// header stays as the client sent it.
			if seen.requestID != got || seen.header != tt.sent {
				t.Errorf("handler saw id %q (ctx) and %q (header), response says %q", seen.requestID, seen.header, got)
			}
		})
	}
}

func TestServer_Authentication(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := e.sim.Login(context.Background(), fixture.PlaygroundClientID, fixture.OwnerLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.sim.Login(context.Background(), fixture.OtherClientID, fixture.OwnerLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("no token passes through without a user", func(t *testing.T) {
		res := e.post(t, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status = %d", res.StatusCode)
		}
		if u := e.lastSeen(t).user; u != nil {
			t.Errorf("handler saw user %+v", u)
		}
	})
	t.Run("valid token reaches the handler with its user", func(t *testing.T) {
		res := e.post(t, bearer(tok.AccessToken))
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status = %d", res.StatusCode)
		}
		if u := e.lastSeen(t).user; u == nil || u.Subject != fixture.OwnerLogin {
			t.Errorf("handler saw user %+v, want %s", u, fixture.OwnerLogin)
		}
	})
	t.Run("lower-case bearer scheme", func(t *testing.T) {
		res := e.post(t, http.Header{"Authorization": {"bearer " + tok.AccessToken}})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status = %d", res.StatusCode)
		}
	})

	refused := []struct {
		name   string
		header http.Header
		msg    string
	}{
		{"garbage token", bearer("not-a-token"), "malformed"},
		{"id_token", bearer(tok.IDToken), "not an access token"},
		{"another app's token", bearer(other.AccessToken), "application"},
		{"Basic scheme", http.Header{"Authorization": {"Basic YWRtaW46ZGVtbw=="}}, "Bearer"},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, "Bearer"},
		{"two Authorization headers", http.Header{"Authorization": {"Bearer " + tok.AccessToken, "Bearer x"}}, "Bearer"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := e.calls()
			res := e.post(t, tt.header)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", res.StatusCode)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			body := decodeErrors(t, res)
			got := body.Errors[0]
			if got.Extensions.Code != "UNAUTHENTICATED" || got.Extensions.RequestID != res.Header.Get("X-Request-ID") || got.Extensions.RequestID == "" {
				t.Errorf("error = %+v, request id header %q", got, res.Header.Get("X-Request-ID"))
			}
			if !strings.Contains(got.Message, tt.msg) {
				t.Errorf("message %q does not mention %q", got.Message, tt.msg)
			}
			if e.calls() != before {
				t.Error("the GraphQL handler ran for a refused token")
			}
		})
	}
}

// The access log names the request but holds no token and no query string
// (GET /graphql carries variables there).
func TestServer_AccessLogHidesSecrets(t *testing.T) {
	e := newEnv(t, nil)
	tok, err := e.sim.Login(context.Background(), fixture.PlaygroundClientID, fixture.MultiLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"query": {"query($p: String) { __typename }"}, "variables": {`{"p":"s3cr3t-variable"}`}}
	req, _ := http.NewRequest(http.MethodGet, e.http.URL+"/graphql?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("X-Request-ID", "log-test-1")
	req.Header.Set("Apollo-Require-Preflight", "true")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	bad, _ := http.NewRequest(http.MethodPost, e.http.URL+"/graphql", strings.NewReader("{}"))
	bad.Header.Set("Authorization", "Bearer forged.token.value")
	bad.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(bad)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()

	logs := e.logs.String()
	for _, secret := range []string{tok.AccessToken, "s3cr3t-variable", "forged.token.value", strings.Split(tok.AccessToken, ".")[2]} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["request_id"] == "log-test-1" && m["msg"] == "http request" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no access log line for the request:\n%s", logs)
	}
	if line["path"] != "/graphql" || line["user"] != fixture.MultiLogin || line["status"] != float64(200) || line["method"] != "GET" {
		t.Errorf("access log line = %v", line)
	}
	if !strings.Contains(logs, `"auth_refused":"malformed"`) {
		t.Errorf("refused request not logged with its reason:\n%s", logs)
	}
}

func TestServer_Probes(t *testing.T) {
	e := newEnv(t, nil)
	get := func(path string) (int, map[string]string) {
		t.Helper()
		res, err := http.Get(e.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	if code, body := get("/healthz"); code != 200 || body["status"] != "ok" {
		t.Errorf("/healthz = %d %v", code, body)
	}
	if code, body := get("/readyz"); code != 200 || body["status"] != "ok" {
		t.Errorf("/readyz = %d %v", code, body)
	}
	e.sim.SetFaults(erpsim.Fault{Path: "/id/", Rate: 1, Status: http.StatusServiceUnavailable})
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body["status"] != "unavailable" {
		t.Errorf("/readyz with the identity server down = %d %v", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz with the identity server down = %d, want 200", code)
	}
	e.sim.SetFaults()
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz after recovery = %d", code)
	}
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Errorf("GET / with the playground disabled = %d, want 404", code)
	}
}

func TestServer_Limits(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.MaxBodyBytes = 1024 })
	e.handle = func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, "too large", http.StatusRequestEntityTooLarge)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}
	big := strings.Repeat("x", 2048)
	res, err := http.Post(e.http.URL+"/graphql", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("declared oversized body: status %d, want 413", res.StatusCode)
	}
	calls := e.calls()
	// A chunked body has no length up front: the edge reads it up to the
	// limit and answers the same GraphQL-shaped 413.
	res, err = http.Post(e.http.URL+"/graphql", "application/json", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusRequestEntityTooLarge || e.calls() != calls {
		t.Errorf("streamed oversized body: status %d, handler calls %d", res.StatusCode, e.calls()-calls)
	}
	if got := decodeErrors(t, res).Errors[0].Extensions.Code; got != "BAD_REQUEST" {
		t.Errorf("streamed oversized body: code %q, want BAD_REQUEST", got)
	}
	res.Body.Close()
	req, _ := http.NewRequest(http.MethodDelete, e.http.URL+"/graphql", nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, POST" {
		t.Errorf("DELETE /graphql: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

func TestServer_RecoversPanics(t *testing.T) {
	e := newEnv(t, nil)
	e.handle = func(w http.ResponseWriter, r *http.Request) { panic("resolver bug") }
	res := e.post(t, nil)
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", res.StatusCode)
	}
	body := decodeErrors(t, res)
	if got := body.Errors[0]; got.Extensions.Code != "INTERNAL_SERVER_ERROR" || strings.Contains(got.Message, "resolver bug") {
		t.Errorf("error = %+v", got)
	}
	if !strings.Contains(e.logs.String(), "resolver bug") {
		t.Error("panic not logged")
	}
	e.handle = nil
	if res := e.post(t, nil); res.StatusCode != http.StatusOK {
		t.Errorf("after a panic: status %d", res.StatusCode)
	}
}

func TestNew_ConfigErrors(t *testing.T) {
	_, err := server.New(server.Config{MaxBodyBytes: -1})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"GraphQL handler", "token verifier", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
