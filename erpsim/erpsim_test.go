package erpsim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// startSim starts an instance on 127.0.0.1:0 that stops with the test.
func startSim(t testing.TB, opts erpsim.Options) *erpsim.Sim {
	t.Helper()
	s, err := erpsim.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// noRedirect is an HTTP client that returns redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; form (if not nil) is posted url-encoded; hdr are extra headers.
func do(t testing.TB, method, target string, form url.Values, hdr map[string]string) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, target, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// get sends a GET with a bearer token (none if token is "").
func get(t testing.TB, target, token string) response {
	t.Helper()
	hdr := map[string]string{}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	return do(t, http.MethodGet, target, nil, hdr)
}

func decodeJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// verifiedClaims checks a token's signature against the sim's published JWKS
// (fetched over HTTP) and returns its protected header typ, kid and claims.
func verifiedClaims(t testing.TB, s *erpsim.Sim, raw string) (typ, kid string, claims map[string]any) {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), s.IdentityURL()+"/.well-known/openid-configuration/jwks")
	if err != nil {
		t.Fatalf("fetch jwks: %v", err)
	}
	payload, err := jws.Verify([]byte(raw), jws.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)))
	if err != nil {
		t.Fatalf("verify token: %v", err)
	}
	msg, err := jws.ParseString(raw)
	if err != nil {
		t.Fatalf("parse token: %v", err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	return h.Type(), h.KeyID(), decodeJSON(t, payload)
}

func mustLogin(t testing.TB, s *erpsim.Sim, clientID, login string, scopes ...string) *erpsim.Tokens {
	t.Helper()
	tok, err := s.Login(context.Background(), clientID, login, fixture.DemoPassword, scopes...)
	if err != nil {
		t.Fatalf("Login(%s, %s): %v", clientID, login, err)
	}
	return tok
}

func mustServiceToken(t testing.TB, s *erpsim.Sim, scopes ...string) string {
	t.Helper()
	tok, err := s.ServiceToken(context.Background(), fixture.BFFClientID, scopes...)
	if err != nil {
		t.Fatalf("ServiceToken: %v", err)
	}
	return tok.AccessToken
}

func TestStart_AutoDiscovery(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	for _, path := range []string{"/sys/auto-discovery", "/tools/auto-discovery"} {
		r := get(t, s.URL()+path, "")
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d", path, r.status)
		}
		var doc struct {
			Host     string
			DbName   string
			WebSites []struct {
				Type, Status, Url    string
				System               bool
				AdditionalProperties map[string]string
			}
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc.DbName != fixture.DBName || !strings.Contains(s.URL(), doc.Host) {
			t.Errorf("%s: DbName %q Host %q", path, doc.DbName, doc.Host)
		}
		urls := map[string]string{}
		for _, ws := range doc.WebSites {
			urls[ws.Type] = ws.Url
			if ws.Type == "DomainAPI" && ws.AdditionalProperties["ODataServiceRoot"] != s.ODataURL() {
				t.Errorf("%s: ODataServiceRoot %q, want %q", path, ws.AdditionalProperties["ODataServiceRoot"], s.ODataURL())
			}
		}
		if urls["ID"] != s.IdentityURL() || urls["UserProfile"] != s.URL()+"/profile" {
			t.Errorf("%s: sites %v", path, urls)
		}
	}
	if s.IdentityURL() != s.URL()+"/id" || s.ODataURL() != s.URL()+"/api/domain/odata/" {
		t.Errorf("URLs: %s %s", s.IdentityURL(), s.ODataURL())
	}
	if r := get(t, s.URL()+"/tools/ver", ""); r.status != http.StatusOK || string(r.body) != erpsim.PlatformVersion {
		t.Errorf("/tools/ver: %d %q", r.status, r.body)
	}
}

func TestStart_PublicURLAndClose(t *testing.T) {
	s := startSim(t, erpsim.Options{PublicURL: "https://demo.example.test/"})
	if s.URL() != "https://demo.example.test" || s.IdentityURL() != "https://demo.example.test/id" {
		t.Errorf("URL %q IdentityURL %q", s.URL(), s.IdentityURL())
	}
	ctx, cancel := context.WithCancel(context.Background())
	s2, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(s2.URL(), "http://")
	cancel() // ctx done stops the server
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := http.Get("http://" + addr + "/tools/ver")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still answering after its context was cancelled")
		}
		time.Sleep(10 * time.Millisecond) // polling for shutdown, bounded by the deadline
	}
	if err := s2.Close(); err != nil {
		t.Errorf("Close after ctx done: %v", err)
	}
}

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		s, err := erpsim.Start(context.Background(), erpsim.Options{})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}

// BenchmarkDomainGet50 measures a 50-row GET through the whole instance
// handler (token check, session, limiter, OData engine) without TCP.
func BenchmarkDomainGet50(b *testing.B) {
	s := startSim(b, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(b, s)
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, s.ODataURL()+"Crm_Sales_SalesOrders?$top=50", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
