package server_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

type refuseAll struct{}

func (refuseAll) Verify(context.Context, string) (*auth.User, error) {
	return nil, auth.ErrUnauthenticated
}

// newBareEnv is a server for tests of anonymous requests: no erpsim, and a
// verifier that refuses every token.
func newBareEnv(t *testing.T, edit func(*server.Config)) *env {
	t.Helper()
	e := &env{logs: &syncBuffer{}}
	cfg := server.Config{GraphQL: http.HandlerFunc(e.graphql), Verifier: refuseAll{}}
	if edit != nil {
		edit(&cfg)
	}
	var err error
	if e.srv, err = server.New(cfg); err != nil {
		t.Fatal(err)
	}
	e.http = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.http.Close)
	return e
}

func (e *env) token(t *testing.T, login string) string {
	t.Helper()
	tok, err := e.sim.Login(context.Background(), fixture.PlaygroundClientID, login, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// A user over the concurrency cap is refused with RATE_LIMITED while their
// other operation runs; another user is not affected, and the slot is free
// again when the first operation ends.
func TestServer_ConcurrencyCap(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	e := newEnv(t, func(c *server.Config) {
		c.RateLimit = server.RateLimitConfig{MaxConcurrent: 1, ConcurrencyWait: time.Millisecond}
	})
	e.handle = func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			entered <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, `{"data":{}}`)
	}
	anna, boris := e.token(t, fixture.OwnerLogin), e.token(t, fixture.MultiLogin)
	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/graphql", strings.NewReader(`{"query":"{a}"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+anna)
		req.Header.Set("X-Hold", "1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- 0
			return
		}
		res.Body.Close()
		held <- res.StatusCode
	}()
	<-entered
	calls := e.calls()
	res := e.post(t, bearer(anna))
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("second operation of the same user: status %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if got := decodeErrors(t, res).Errors[0].Extensions.Code; got != "RATE_LIMITED" {
		t.Errorf("code %q, want RATE_LIMITED", got)
	}
	if e.calls() != calls {
		t.Error("the refused operation reached the GraphQL handler")
	}
	if res := e.post(t, bearer(boris)); res.StatusCode != http.StatusOK {
		t.Errorf("another user: status %d", res.StatusCode)
	}
	close(release)
	if got := <-held; got != http.StatusOK {
		t.Errorf("held operation: status %d", got)
	}
	if res := e.post(t, bearer(anna)); res.StatusCode != http.StatusOK {
		t.Errorf("after the first ended: status %d", res.StatusCode)
	}
	if n := e.sim.Stats().DomainRequests; n != 0 {
		t.Errorf("erpsim saw %d Domain API requests", n)
	}
}

func postFrom(t *testing.T, e *env, forwardedFor string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	req.Header.Set("Content-Type", "application/json")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Anonymous requests are counted per client IP; X-Forwarded-For names the
// client only when the peer is a trusted proxy, and its right-most untrusted
// entry counts (the left part is whatever the client sent).
func TestServer_ClientIP(t *testing.T) {
	limits := server.RateLimitConfig{AnonRate: 0.01, AnonBurst: 1}
	t.Run("untrusted peer: X-Forwarded-For ignored", func(t *testing.T) {
		e := newBareEnv(t, func(c *server.Config) { c.RateLimit = limits })
		if got := postFrom(t, e, "203.0.113.1"); got != http.StatusOK {
			t.Fatalf("first: %d", got)
		}
		if got := postFrom(t, e, "203.0.113.2"); got != http.StatusTooManyRequests {
			t.Errorf("spoofed X-Forwarded-For got a fresh bucket: %d", got)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		l := limits
		l.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
		e := newBareEnv(t, func(c *server.Config) { c.RateLimit = l })
		steps := []struct {
			xff  string
			want int
		}{
			{"203.0.113.1", http.StatusOK},
			{"203.0.113.2", http.StatusOK},
			{"203.0.113.1", http.StatusTooManyRequests},
			{"198.51.100.9, 203.0.113.1, 10.1.2.3", http.StatusTooManyRequests}, // the client prepended a fake hop
			{"203.0.113.3, 10.1.2.3", http.StatusOK},
		}
		for _, s := range steps {
			if got := postFrom(t, e, s.xff); got != s.want {
				t.Errorf("X-Forwarded-For %q: %d, want %d", s.xff, got, s.want)
			}
		}
	})
	t.Run("bounded memory: the least recently seen client is forgotten", func(t *testing.T) {
		l := limits
		l.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		l.MaxClients = 1
		e := newBareEnv(t, func(c *server.Config) { c.RateLimit = l })
		for _, s := range []struct {
			xff  string
			want int
		}{{"203.0.113.1", 200}, {"203.0.113.1", 429}, {"203.0.113.2", 200}, {"203.0.113.1", 200}} {
			if got := postFrom(t, e, s.xff); got != s.want {
				t.Errorf("%s: %d, want %d", s.xff, got, s.want)
			}
		}
	})
}

func preflight(t *testing.T, e *env, origin, method string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, e.http.URL+"/graphql", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestServer_CORS(t *testing.T) {
	const allowed = "https://portal.example.com"
	e := newBareEnv(t, func(c *server.Config) {
		c.CORS = server.CORSConfig{Origins: []string{allowed}, MaxAge: 5 * time.Minute}
	})
	res := preflight(t, e, allowed, http.MethodPost)
	h := res.Header
	if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != allowed ||
		h.Get("Access-Control-Max-Age") != "300" || h.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("allowed preflight: %d %v", res.StatusCode, h)
	}
	for _, want := range []string{"Authorization", "Content-Type", "X-Request-ID", "Apollo-Require-Preflight", "X-Apollo-Operation-Name", "Apollographql-Client-Name"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Errorf("methods %q, vary %q", h.Get("Access-Control-Allow-Methods"), h.Values("Vary"))
	}
	calls := e.calls()
	for _, tt := range []struct{ origin, method string }{
		{"https://evil.example.com", http.MethodPost},
		{"https://portal.example.com.evil.example", http.MethodPost},
		{"null", http.MethodPost},
		{allowed, http.MethodDelete},
	} {
		res := preflight(t, e, tt.origin, tt.method)
		if res.StatusCode != http.StatusForbidden || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s for %s: %d, allow-origin %q", tt.origin, tt.method, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	if e.calls() != calls {
		t.Error("a preflight reached the GraphQL handler")
	}
	// Actual requests: the allowed origin may read the answer, others may not.
	res = e.post(t, http.Header{"Origin": {allowed}})
	if res.Header.Get("Access-Control-Allow-Origin") != allowed || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Errorf("allowed origin: %v", res.Header)
	}
	res = e.post(t, http.Header{"Origin": {"https://evil.example.com"}})
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin got Access-Control-Allow-Origin %q", res.Header.Get("Access-Control-Allow-Origin"))
	}
	// OPTIONS that is not a preflight is not a GraphQL method.
	req, _ := http.NewRequest(http.MethodOptions, e.http.URL+"/graphql", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("plain OPTIONS: %d", res.StatusCode)
	}
}

func TestNew_EdgeConfigErrors(t *testing.T) {
	for _, cfg := range []server.Config{
		{CORS: server.CORSConfig{Origins: []string{"*"}}},
		{CORS: server.CORSConfig{Origins: []string{"https://a.example.com/"}}},
		{AuditVariables: "values"},
		{RateLimit: server.RateLimitConfig{ConcurrencyWait: -1}},
	} {
		cfg.GraphQL, cfg.Verifier = http.NotFoundHandler(), refuseAll{}
		if _, err := server.New(cfg); err == nil {
			t.Errorf("server.New(%+v) accepted", cfg)
		}
	}
}

// The GraphQL handler runs with the operation deadline, and answers carry the
// baseline headers: nosniff always, no-store when a user is signed in.
func TestServer_OperationDeadlineAndHeaders(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.OperationTimeout = 3 * time.Second })
	deadlines := make(chan time.Time, 2)
	e.handle = func(w http.ResponseWriter, r *http.Request) {
		d, _ := r.Context().Deadline()
		deadlines <- d
		_, _ = io.WriteString(w, `{"data":{}}`)
	}
	tok := e.token(t, fixture.OwnerLogin)
	before := time.Now()
	res := e.post(t, bearer(tok))
	deadline := <-deadlines
	hasDeadline := !deadline.IsZero()
	if !hasDeadline || deadline.Before(before) || deadline.After(time.Now().Add(3*time.Second)) {
		t.Errorf("handler deadline %v (set %v), want within 3s of the request", deadline, hasDeadline)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers of an authenticated answer: %v", res.Header)
	}
	if res := e.post(t, nil); res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers of an anonymous answer: %v", res.Header)
	}
}

// A client that does not finish its request headers within
// ReadHeaderTimeout is cut off before anything runs.
func TestServer_SlowClient(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.ReadHeaderTimeout = 50 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-served })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server must end the connection by itself; the deadline only keeps
	// a broken server from hanging the test.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Errorf("slow client answered %d", res.StatusCode)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server kept the slow client's connection open")
	}
	if e.calls() != 0 {
		t.Error("the slow client's request reached the GraphQL handler")
	}
}

// The audit stream of the edge alone: a rate-limit refusal and a CORS refusal
// are recorded with their reasons.
func TestServer_AuditDenials(t *testing.T) {
	audit := &syncBuffer{}
	e := newBareEnv(t, func(c *server.Config) {
		c.Audit = slog.New(slog.NewJSONHandler(audit, nil))
		c.RateLimit = server.RateLimitConfig{AnonRate: 0.01, AnonBurst: 1}
	})
	e.post(t, nil)
	e.post(t, nil)
	preflight(t, e, "https://evil.example.com", http.MethodPost)
	logs := audit.String()
	for _, want := range []string{`"reason":"rate"`, `"outcome":"RATE_LIMITED"`, `"reason":"cors"`, `"outcome":"OK"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("audit lacks %s:\n%s", want, logs)
		}
	}
}
