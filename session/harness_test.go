package session_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/session"
)

// clock is a settable offset from the real time, for idle and absolute
// expiry without waiting.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.offset) }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// env is erpgraph's session endpoints in front of a protected handler, on
// an httptest server, against erpsim.
type env struct {
	t     testing.TB
	sim   *erpsim.Sim
	srv   *httptest.Server
	m     *session.Manager
	store *session.MemoryStore
	clock *clock
	ver   *auth.Verifier
}

type envOpts struct {
	tls    bool
	mode   string
	adjust func(*session.Config)
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{}}
	var handler http.Handler = http.NotFoundHandler()
	var hmu sync.RWMutex
	front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hmu.RLock()
		h := handler
		hmu.RUnlock()
		h.ServeHTTP(w, r)
	})
	if o.tls {
		e.srv = httptest.NewTLSServer(front)
	} else {
		e.srv = httptest.NewServer(front)
	}
	t.Cleanup(e.srv.Close)
	apps := fixture.Apps()
	for i := range apps {
		if apps[i].ClientID == fixture.BFFClientID {
			apps[i].RedirectURIs = []string{e.srv.URL + "/auth/callback"}
			apps[i].PostLogoutRedirectURIs = []string{e.srv.URL + "/"}
			apps[i].BackChannelLogoutURI = e.srv.URL + "/auth/backchannel-logout"
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := erpsim.Start(ctx, erpsim.Options{Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e.sim = sim
	e.ver, err = auth.NewVerifier(ctx, auth.Config{Issuer: sim.IdentityURL(), ClientIDs: []string{fixture.BFFClientID}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.NewKeys(session.RandomKey())
	if err != nil {
		t.Fatal(err)
	}
	e.store = session.NewMemoryStore(0, e.clock.now)
	cfg := session.Config{
		Verifier: e.ver, Provider: e.ver.Provider(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		PublicURL: e.srv.URL, ResponseMode: o.mode, Store: e.store, Keys: keys, Now: e.clock.now,
		IdleTimeout: 2 * time.Hour, Lifetime: 12 * time.Hour,
	}
	if o.tls {
		// erpsim (plain HTTP) calls back over TLS for back-channel logouts; not needed here.
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.adjust != nil {
		o.adjust(&cfg)
	}
	e.m, err = session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", e.m.Handler())
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		u, err := e.m.Authenticate(w, r)
		if err != nil {
			se := err.(*session.Error)
			http.Error(w, se.Code, se.Status)
			return
		}
		if u == nil {
			http.Error(w, "anonymous", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, u.Subject)
	})
	hmu.Lock()
	handler = mux
	hmu.Unlock()
	return e
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t   testing.TB
	e   *env
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if tr, ok := e.srv.Client().Transport.(*http.Transport); ok && e.srv.TLS != nil {
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs}}
	}
	return &browser{t: e.t, e: e, c: c, jar: jar}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, target string, form url.Values, hdr map[string]string) resp {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: string(raw)}
}

var csrf = map[string]string{"X-CSRF": "1"}

// startLogin asks the login endpoint and returns the authorization URL.
func (b *browser) startLogin(returnTo string) *url.URL {
	b.t.Helper()
	r := b.do("GET", b.e.srv.URL+"/auth/login?"+url.Values{"returnTo": {returnTo}}.Encode(), nil, nil)
	if r.status != http.StatusFound {
		b.t.Fatalf("login: %d %s", r.status, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

// signInAt posts erpsim's login form for an authorization URL and returns
// erpsim's answer (a redirect to the callback, or the form_post page).
func (b *browser) signInAt(authz *url.URL, login string) resp {
	b.t.Helper()
	form := authz.Query()
	form.Set("login", login)
	form.Set("password", fixture.DemoPassword)
	return b.do("POST", b.e.sim.IdentityURL()+"/account/login", form, nil)
}

// login runs the whole sign-in as login and returns the callback's answer.
func (b *browser) login(login, returnTo string) resp {
	b.t.Helper()
	back := b.signInAt(b.startLogin(returnTo), login)
	if back.status != http.StatusFound {
		b.t.Fatalf("erpsim sign-in: %d %s", back.status, back.body)
	}
	return b.do("GET", back.header.Get("Location"), nil, nil)
}

func (b *browser) mustLogin(login string) {
	b.t.Helper()
	if r := b.login(login, "/orders"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/orders" {
		b.t.Fatalf("callback: %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
}

func (b *browser) api() resp { b.t.Helper(); return b.do("GET", b.e.srv.URL+"/api", nil, csrf) }

func (b *browser) user() (int, map[string]any) {
	b.t.Helper()
	r := b.do("GET", b.e.srv.URL+"/auth/user", nil, csrf)
	var m map[string]any
	_ = json.Unmarshal([]byte(r.body), &m)
	return r.status, m
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var m struct {
		Errors []struct {
			Extensions struct{ Code string } `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &m); err != nil || len(m.Errors) == 0 {
		return ""
	}
	return m.Errors[0].Extensions.Code
}
