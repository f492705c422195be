package app_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// cookieBrowser is an HTTP client with a cookie jar that does not follow
// redirects, signed in through erpgraph's /auth endpoints.
type cookieBrowser struct {
	t *testing.T
	a *app.App
	c *http.Client
}

func signedIn(t *testing.T, a *app.App, login string) *cookieBrowser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &cookieBrowser{t: t, a: a, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	res := b.do(http.MethodGet, a.URL()+"/auth/login?returnTo=/portal/", nil, nil)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("login: %d", res.StatusCode)
	}
	authz, _ := url.Parse(res.Header.Get("Location"))
	form := authz.Query()
	form.Set("login", login)
	form.Set("password", fixture.DemoPassword)
	res = b.do(http.MethodPost, a.Sim().IdentityURL()+"/account/login", strings.NewReader(form.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusFound {
		t.Fatalf("erpsim sign-in: %d", res.StatusCode)
	}
	res = b.do(http.MethodGet, res.Header.Get("Location"), nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/portal/" {
		t.Fatalf("callback: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	return b
}

func (b *cookieBrowser) do(method, target string, body io.Reader, hdr map[string]string) *http.Response {
	b.t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// graphql posts a query with the session cookie (and hdr).
func (b *cookieBrowser) graphql(query string, hdr map[string]string) answer {
	b.t.Helper()
	req := newPost(b.t, b.a, "", "application/json", jsonBody(query, nil))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(b.t, b.c, req)
}

var xcsrf = map[string]string{"X-CSRF": "1"}

const meQuery = `{ me { login } }`

func meLogin(a answer) any {
	me, _ := a.body.Data["me"].(map[string]any)
	return me["login"]
}

func TestApp_SessionCookieOnGraphQL(t *testing.T) {
	cfg := devConfig(t)
	audit := &syncBuffer{}
	cfg.AuditLogger = slog.New(slog.NewJSONHandler(audit, nil))
	a := run(t, cfg)
	b := signedIn(t, a, fixture.OwnerLogin)

	if got := b.graphql(meQuery, xcsrf); got.status != 200 || meLogin(got) != fixture.OwnerLogin {
		t.Fatalf("cookie + X-CSRF: %d %v %+v", got.status, got.body.Data, got.body.Errors)
	}
	a.Sim().ResetRequests()
	if got := b.graphql(meQuery, nil); got.status != http.StatusUnauthorized || got.code() != "CSRF_HEADER_MISSING" {
		t.Errorf("cookie without X-CSRF: %d %q", got.status, got.code())
	}
	noDomainRequests(t, a, "a cookie request without the CSRF header")
	// Both: the Bearer token wins, the cookie is not looked at.
	boris := login(t, a, fixture.MultiLogin)
	if got := b.graphql(meQuery, map[string]string{"Authorization": "Bearer " + boris}); got.status != 200 || meLogin(got) != fixture.MultiLogin {
		t.Errorf("Bearer and cookie: %d %v", got.status, got.body.Data)
	}
	// A cookie the server never issued.
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(a.URL())
	jar.SetCookies(u, []*http.Cookie{{Name: a.Sessions().CookieName(), Value: strings.Repeat("A", 43)}})
	forged := &cookieBrowser{t: t, a: a, c: &http.Client{Jar: jar}}
	if got := forged.graphql(meQuery, xcsrf); got.status != http.StatusUnauthorized || got.code() != "UNAUTHENTICATED" {
		t.Errorf("unknown session id: %d %q", got.status, got.code())
	}
	// Sign out: the cookie stops working.
	if res := b.do(http.MethodPost, a.URL()+"/auth/logout", nil, xcsrf); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	// The logout cleared the cookie: the request is anonymous now.
	if got := b.graphql(meQuery, xcsrf); got.code() != "UNAUTHENTICATED" || meLogin(got) != nil {
		t.Errorf("after logout: %d %q", got.status, got.code())
	}
	log := audit.String()
	for _, want := range []string{`"msg":"session login"`, `"auth":"session"`, `"reason":"csrf"`, `"outcome":"CSRF_HEADER_MISSING"`,
		`"auth_reason":"session_unknown_session"`, `"reason":"logout"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	if strings.Contains(log, "eyJ") {
		t.Error("a token is in the audit log")
	}
}

func TestApp_SessionRefreshSingleFlightAndFailure(t *testing.T) {
	cfg := devConfig(t)
	cfg.RateLimit = server.RateLimitConfig{MaxConcurrent: -1, UserRate: -1}
	a := run(t, cfg)
	sim := a.Sim()
	sim.SetTokenLifetime(90 * time.Second) // within the refresh window from the start
	b := signedIn(t, a, fixture.OwnerLogin)
	sim.SetTokenLifetime(0)
	sim.ResetRequests()
	const n = 12
	var wg sync.WaitGroup
	got := make([]answer, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = b.graphql(meQuery, xcsrf) }()
	}
	wg.Wait()
	for i, g := range got {
		if g.status != 200 || meLogin(g) != fixture.OwnerLogin {
			t.Errorf("request %d: %d %+v", i, g.status, g.body.Errors)
		}
	}
	if r := sim.Stats().RefreshRequests; r != 1 {
		t.Errorf("erpsim saw %d refreshes for %d concurrent requests of one session, want 1", r, n)
	}

	c := signedIn(t, a, fixture.MultiLogin)
	sim.SetTokenLifetime(90 * time.Second)
	d := signedIn(t, a, fixture.BasicLogin)
	sim.SetTokenLifetime(0)
	sim.SetRefreshFailure("invalid_grant")
	if g := d.graphql(meQuery, xcsrf); g.status != http.StatusUnauthorized || g.code() != "UNAUTHENTICATED" {
		t.Errorf("refresh refused with invalid_grant: %d %q", g.status, g.code())
	}
	sim.SetRefreshFailure("")
	if g := d.graphql(meQuery, xcsrf); g.code() != "UNAUTHENTICATED" || meLogin(g) != nil {
		t.Errorf("the ended session came back: %d", g.status)
	}
	if g := c.graphql(meQuery, xcsrf); g.status != 200 || meLogin(g) != fixture.MultiLogin {
		t.Errorf("another session was affected: %d", g.status)
	}
}

func TestApp_StaticFrontendAndPortal(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"index.html":                "<!doctype html><title>spa</title>",
		"assets/app-3f9a1c2b.js":    "console.log(1)",
		"assets/logo.svg":           "<svg/>",
		"deep/page/index.html":      "<p>deep</p>",
		"assets/index-Bx7kQ2p9.css": "body{}",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := devConfig(t)
	cfg.StaticDir = dir
	a := run(t, cfg)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(a.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	tests := []struct {
		path, body, cache string
		status            int
	}{
		{"/", "spa", "no-cache", 200},
		{"/orders/42", "spa", "no-cache", 200}, // client-side route: index.html
		{"/assets/missing.js", "", "", 404},    // a missing asset is not the SPA
		{"/assets/app-3f9a1c2b.js", "console", "public, max-age=31536000, immutable", 200},
		{"/assets/index-Bx7kQ2p9.css", "body", "public, max-age=31536000, immutable", 200},
		{"/assets/logo.svg", "svg", "no-cache", 200}, // not hashed: revalidated
		{"/deep/page/", "deep", "no-cache", 200},
		{"/../../etc/passwd", "spa", "no-cache", 200}, // cleaned to /etc/passwd: no such file, a route
	}
	for _, tt := range tests {
		res, body := get(tt.path)
		if res.StatusCode != tt.status || !strings.Contains(body, tt.body) || (tt.cache != "" && res.Header.Get("Cache-Control") != tt.cache) {
			t.Errorf("GET %s: %d %q Cache-Control %q", tt.path, res.StatusCode, body, res.Header.Get("Cache-Control"))
		}
		if csp := res.Header.Get("Content-Security-Policy"); res.StatusCode == 200 && (!strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'")) {
			t.Errorf("GET %s: CSP %q", tt.path, csp)
		}
	}
	// The playground moved aside; the portal, GraphQL and the session endpoints stay.
	res, page := get("/playground/")
	if res.StatusCode != 200 || !strings.Contains(page, "graphiql") && !strings.Contains(page, "GraphiQL") {
		t.Errorf("playground at /playground/: %d", res.StatusCode)
	}
	// Every file the moved page names must load from where a browser resolves it (relative names under
	// /playground/ would point into /playground/playground/).
	refs := regexp.MustCompile(`(?:href|src)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) == 0 {
		t.Error("the playground page names no assets")
	}
	base, _ := url.Parse(a.URL() + "/playground/")
	for _, m := range refs {
		ref, err := base.Parse(m[1])
		if err != nil || ref.Host != base.Host {
			continue
		}
		if res, _ := get(ref.Path); res.StatusCode != 200 {
			t.Errorf("playground asset %s (named %q): %d", ref.Path, m[1], res.StatusCode)
		}
	}
	if res, body := get("/portal/"); res.StatusCode != 200 || !strings.Contains(body, "app.js") {
		t.Errorf("portal: %d %q", res.StatusCode, body)
	}
	if res, _ := get("/portal/app.js"); res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
		t.Errorf("portal module: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if res, _ := get("/auth/user"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/auth/user without a session: %d", res.StatusCode)
	}
	if res, _ := get("/healthz"); res.StatusCode != 200 {
		t.Errorf("/healthz: %d", res.StatusCode)
	}
	var body map[string]any
	res, err := http.Post(a.URL()+"/graphql", "application/json", strings.NewReader(`{"query":"{ __typename }"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 200 || body["data"] == nil {
		t.Errorf("/graphql next to the frontend: %d %v", res.StatusCode, body)
	}
}

func TestConfigFromEnv_SessionRules(t *testing.T) {
	prod := map[string]string{"ERP_INSTANCE_URL": "https://demo.my.erp.net", "ERP_CLIENT_ID": "com.example/bff", "ERP_CLIENT_SECRET": "s"}
	with := func(kv map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range prod {
			out[k] = v
		}
		for k, v := range kv {
			out[k] = v
		}
		return out
	}
	key := "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	tests := []struct {
		name string
		env  map[string]string
		want string // "" = valid
	}{
		{"production default: sessions off", with(nil), ""},
		{"sessions need keys", with(map[string]string{"ERPGRAPH_SESSIONS": "on"}), "ERPGRAPH_SESSION_KEYS"},
		{"sessions with keys", with(map[string]string{"ERPGRAPH_SESSIONS": "on", "ERPGRAPH_SESSION_KEYS": key, "ERPGRAPH_PUBLIC_URL": "https://portal.example.com"}), ""},
		{"short key", with(map[string]string{"ERPGRAPH_SESSIONS": "on", "ERPGRAPH_SESSION_KEYS": "c2hvcnQ="}), "32"},
		{"plain http public URL", with(map[string]string{"ERPGRAPH_SESSIONS": "on", "ERPGRAPH_SESSION_KEYS": key, "ERPGRAPH_PUBLIC_URL": "http://portal.example.com"}), "https"},
		{"lifetime beyond the refresh token", with(map[string]string{"ERPGRAPH_SESSIONS": "on", "ERPGRAPH_SESSION_KEYS": key, "ERPGRAPH_SESSION_LIFETIME": "1000h"}), "refresh token"},
		{"client not trusted", with(map[string]string{"ERPGRAPH_SESSIONS": "on", "ERPGRAPH_SESSION_KEYS": key, "ERPGRAPH_TRUSTED_CLIENT_IDS": "com.example/spa"}), "ERPGRAPH_TRUSTED_CLIENT_IDS"},
		{"portal without sessions", with(map[string]string{"ERPGRAPH_PORTAL": "on"}), "ERPGRAPH_SESSIONS"},
		{"static dir without index.html", with(map[string]string{"ERPGRAPH_STATIC_DIR": t.TempDir()}), "index.html"},
		{"bad response mode", with(map[string]string{"ERPGRAPH_SESSIONS": "on", "ERPGRAPH_SESSION_KEYS": key, "ERPGRAPH_SESSION_RESPONSE_MODE": "fragment"}), "form_post"},
		{"dev mode: on without keys", map[string]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := app.ConfigFromEnv(envOf(tt.env), nil)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
			if tt.name == "dev mode: on without keys" && (!cfg.Session.Enabled || !cfg.Portal) {
				t.Errorf("dev mode: sessions %v, portal %v", cfg.Session.Enabled, cfg.Portal)
			}
		})
	}
}

// Only the callback (which calls the identity server) is rate limited per
// IP: the user endpoint is not, so users behind one NAT are not throttled.
func TestApp_SessionEndpointsRateLimit(t *testing.T) {
	cfg := devConfig(t)
	cfg.RateLimit = server.RateLimitConfig{AnonRate: 0.01, AnonBurst: 2}
	a := run(t, cfg)
	for i := range 5 {
		res, err := http.Get(a.URL() + "/auth/user")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/auth/user %d: %d, want 401 (not rate limited)", i+1, res.StatusCode)
		}
	}
	var last int
	for range 3 {
		res, err := http.Get(a.URL() + "/auth/callback?state=x&code=y")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		last = res.StatusCode
	}
	if last != http.StatusTooManyRequests {
		t.Errorf("third callback over a burst of 2: %d, want 429", last)
	}
}
