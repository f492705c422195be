package session_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/session"
)

func TestSession_SignInUserAndLogout(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	b.mustLogin(fixture.OwnerLogin)
	if r := b.api(); r.status != 200 || r.body != fixture.OwnerLogin {
		t.Fatalf("api with the session: %d %q", r.status, r.body)
	}
	status, u := b.user()
	if status != 200 || u["login"] != fixture.OwnerLogin || u["name"] != "Anna Petrova" || u["userType"] != "ExternalCommunityUser" || u["sessionExpiresAt"] == nil {
		t.Fatalf("/auth/user: %d %v", status, u)
	}
	r := b.do("POST", e.srv.URL+"/auth/logout", nil, map[string]string{"X-CSRF": "1", "Accept": "application/json"})
	var out struct {
		EndSessionURL string `json:"endSessionUrl"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); r.status != 200 || err != nil {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	es, _ := url.Parse(out.EndSessionURL)
	if !strings.HasPrefix(out.EndSessionURL, e.sim.IdentityURL()+"/connect/endsession?") || es.Query().Get("id_token_hint") == "" ||
		es.Query().Get("post_logout_redirect_uri") != e.srv.URL+"/" {
		t.Errorf("end-session URL %q", out.EndSessionURL)
	}
	if got := e.sim.Stats().Revocations; got != 1 {
		t.Errorf("refresh token revocations at erpsim: %d, want 1", got)
	}
	if r := b.api(); r.status != http.StatusUnauthorized {
		t.Errorf("api after logout: %d %q", r.status, r.body)
	}
	if status, _ := b.user(); status != http.StatusUnauthorized {
		t.Errorf("/auth/user after logout: %d", status)
	}
	// The identity server accepts the hint and redirects back; its
	// back-channel logout then finds no session left (already ended here).
	if r := b.do("GET", out.EndSessionURL, nil, nil); r.status != http.StatusFound || r.header.Get("Location") != e.srv.URL+"/" {
		t.Errorf("end-session: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestSession_LogoutFormWithSID(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	b.mustLogin(fixture.MultiLogin)
	_, u := b.user()
	logout, _ := url.Parse(u["logoutUrl"].(string))
	sid := logout.Query().Get("sid")
	if logout.Path != "/auth/logout" || sid == "" {
		t.Fatalf("logoutUrl %v", u["logoutUrl"])
	}
	// A cross-site form cannot know the sid: refused, and the session stays.
	if r := b.do("POST", e.srv.URL+"/auth/logout", url.Values{"sid": {"guess"}}, nil); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "CSRF_HEADER_MISSING") {
		t.Errorf("logout with a wrong sid: %d %s", r.status, r.body)
	}
	if r := b.do("POST", e.srv.URL+"/auth/logout", nil, nil); r.status != http.StatusUnauthorized {
		t.Errorf("logout with neither header nor sid: %d", r.status)
	}
	if r := b.api(); r.status != 200 {
		t.Fatalf("session ended by a refused logout: %d", r.status)
	}
	r := b.do("POST", e.srv.URL+"/auth/logout", url.Values{"sid": {sid}}, nil)
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "/connect/endsession?") {
		t.Fatalf("form logout: %d %q", r.status, r.header.Get("Location"))
	}
	if r := b.api(); r.status != http.StatusUnauthorized {
		t.Errorf("api after form logout: %d", r.status)
	}
}

func TestSession_ReturnToMustBeLocal(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	for _, rt := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "evil", "javascript:alert(1)", "/ok\r\nSet-Cookie: x=1"} {
		r := b.do("GET", e.srv.URL+"/auth/login?"+url.Values{"returnTo": {rt}}.Encode(), nil, map[string]string{"Accept": "application/json"})
		if r.status != http.StatusBadRequest || errorCode(t, r.body) != session.CodeBadRequest {
			t.Errorf("returnTo %q: %d %s", rt, r.status, r.body)
		}
	}
	if r := b.login(fixture.OwnerLogin, "/orders/42?tab=lines#top"); r.status != http.StatusSeeOther || r.header.Get("Location") != "/orders/42?tab=lines#top" {
		t.Errorf("local returnTo: %d %q", r.status, r.header.Get("Location"))
	}
}

func TestSession_CallbackRefusals(t *testing.T) {
	e := newEnv(t, envOpts{})
	failed := func(t *testing.T, r resp, why string) {
		t.Helper()
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, session.CodeLoginFailed) {
			t.Errorf("%s: %d %s", why, r.status, r.body)
		}
		if strings.Contains(r.header.Get("Set-Cookie"), "erpgraph-session=") && !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Errorf("%s: a session cookie was set", why)
		}
	}
	t.Run("state from another browser", func(t *testing.T) {
		victim, attacker := e.browser(), e.browser()
		// Login CSRF: the attacker signs in and sends the victim the callback URL.
		back := attacker.signInAt(attacker.startLogin("/"), fixture.NoAccessLogin)
		failed(t, victim.do("GET", back.header.Get("Location"), nil, nil), "callback in a browser that did not start the sign-in")
	})
	t.Run("state mismatch", func(t *testing.T) {
		b := e.browser()
		back := b.signInAt(b.startLogin("/"), fixture.OwnerLogin)
		loc, _ := url.Parse(back.header.Get("Location"))
		q := loc.Query()
		q.Set("state", q.Get("state")+"x")
		loc.RawQuery = q.Encode()
		failed(t, b.do("GET", loc.String(), nil, nil), "altered state")
	})
	t.Run("nonce mismatch", func(t *testing.T) {
		b := e.browser()
		authz := b.startLogin("/")
		q := authz.Query()
		q.Set("nonce", "not-the-one-erpgraph-sent")
		authz.RawQuery = q.Encode()
		back := b.signInAt(authz, fixture.OwnerLogin)
		failed(t, b.do("GET", back.header.Get("Location"), nil, nil), "id_token with another nonce")
	})
	t.Run("replayed code", func(t *testing.T) {
		b := e.browser()
		authz := b.startLogin("/")
		back := b.signInAt(authz, fixture.OwnerLogin)
		srv, _ := url.Parse(e.srv.URL)
		saved := b.jar.Cookies(srv) // the login cookie, as an attacker who copied it would have it
		if r := b.do("GET", back.header.Get("Location"), nil, nil); r.status != http.StatusSeeOther {
			t.Fatalf("first callback: %d %s", r.status, r.body)
		}
		replay := e.browser()
		replay.jar.SetCookies(srv, saved)
		failed(t, replay.do("GET", back.header.Get("Location"), nil, nil), "the same code again")
	})
	t.Run("identity server error", func(t *testing.T) {
		b := e.browser()
		authz := b.startLogin("/")
		q := authz.Query()
		loc := e.srv.URL + "/auth/callback?" + url.Values{"state": {q.Get("state")}, "error": {"access_denied"}}.Encode()
		failed(t, b.do("GET", loc, nil, nil), "error response")
	})
	t.Run("no state", func(t *testing.T) {
		failed(t, e.browser().do("GET", e.srv.URL+"/auth/callback?code=x", nil, nil), "no state")
	})
}

func TestSession_FormPost(t *testing.T) {
	e := newEnv(t, envOpts{mode: "form_post"})
	b := e.browser()
	page := b.signInAt(b.startLogin("/dash"), fixture.OwnerLogin)
	if page.status != 200 || !strings.Contains(page.body, `action="`+e.srv.URL+`/auth/callback"`) {
		t.Fatalf("form_post page: %d %s", page.status, page.body)
	}
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(page.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if r := b.do("POST", e.srv.URL+"/auth/callback", form, nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/dash" {
		t.Fatalf("form_post callback: %d %s", r.status, r.body)
	}
	if r := b.api(); r.status != 200 {
		t.Errorf("api: %d", r.status)
	}
	// The response in the URL of a POST does not count.
	b2 := e.browser()
	page = b2.signInAt(b2.startLogin("/"), fixture.OwnerLogin)
	form = url.Values{}
	for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(page.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if r := b2.do("POST", e.srv.URL+"/auth/callback?"+form.Encode(), url.Values{}, nil); r.status != http.StatusBadRequest {
		t.Errorf("form_post callback with the response in the query: %d", r.status)
	}
}

func TestSession_CSRFHeaderRequired(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	b.mustLogin(fixture.OwnerLogin)
	if r := b.do("GET", e.srv.URL+"/api", nil, nil); r.status != http.StatusUnauthorized || !strings.Contains(r.body, session.CodeCSRFHeaderMissing) {
		t.Errorf("api without X-CSRF: %d %q", r.status, r.body)
	}
	r := b.do("GET", e.srv.URL+"/auth/user", nil, nil)
	if r.status != http.StatusUnauthorized || errorCode(t, r.body) != session.CodeCSRFHeaderMissing {
		t.Errorf("/auth/user without X-CSRF: %d %s", r.status, r.body)
	}
	if r := b.api(); r.status != 200 {
		t.Errorf("the refusals ended the session: %d", r.status)
	}
}

func TestSession_CookieFlags(t *testing.T) {
	for _, tc := range []struct {
		name, cookie string
		tls          bool
	}{{"plain HTTP (dev)", "erpgraph-session", false}, {"HTTPS", "__Host-erpgraph-session", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{tls: tc.tls})
			b := e.browser()
			login := b.do("GET", e.srv.URL+"/auth/login?returnTo=/", nil, nil)
			lc := login.header.Get("Set-Cookie")
			back := b.signInAt(mustParse(t, login.header.Get("Location")), fixture.OwnerLogin)
			r := b.do("GET", back.header.Get("Location"), nil, nil)
			var sc string
			for _, v := range r.header.Values("Set-Cookie") {
				if strings.HasPrefix(v, tc.cookie+"=") {
					sc = v
				}
			}
			for _, c := range []struct{ what, v string }{{"session", sc}, {"login", lc}} {
				parts := strings.Split(c.v, "; ")
				has := func(p string) bool {
					for _, x := range parts {
						if strings.EqualFold(x, p) {
							return true
						}
					}
					return false
				}
				if !has("HttpOnly") || !has("Path=/") || !has("SameSite=Lax") || has("Secure") != tc.tls || strings.Contains(c.v, "Domain=") {
					t.Errorf("%s cookie flags: %q", c.what, c.v)
				}
				if tc.tls != strings.HasPrefix(c.v, "__Host-") {
					t.Errorf("%s cookie prefix: %q", c.what, c.v)
				}
			}
			if sc == "" || strings.Contains(sc, "Max-Age") || strings.Contains(sc, "Expires") {
				t.Errorf("session cookie %q: want a browser-session cookie", sc)
			}
			// The value is a random id, not a token.
			val := strings.TrimPrefix(strings.Split(sc, ";")[0], tc.cookie+"=")
			if len(val) != 43 || strings.Count(val, ".") > 0 {
				t.Errorf("cookie value %q is not a 32-byte random id", val)
			}
			if r := b.api(); r.status != 200 {
				t.Errorf("api: %d", r.status)
			}
		})
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSession_FixationAndUnknownIDs(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	srv := mustParse(t, e.srv.URL)
	planted := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" // 43 characters, as erpgraph's ids
	b.jar.SetCookies(srv, []*http.Cookie{{Name: e.m.CookieName(), Value: planted, Path: "/"}})
	r := b.api()
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("planted id: %d, Set-Cookie %q (want 401 and the cookie cleared)", r.status, r.header.Get("Set-Cookie"))
	}
	b.jar.SetCookies(srv, []*http.Cookie{{Name: e.m.CookieName(), Value: planted, Path: "/"}})
	b.mustLogin(fixture.OwnerLogin)
	if got := b.cookie(e.m.CookieName()); got == nil || got.Value == planted {
		t.Fatalf("sign-in kept the planted session id")
	}
	attacker := e.browser()
	attacker.jar.SetCookies(srv, []*http.Cookie{{Name: e.m.CookieName(), Value: planted, Path: "/"}})
	if r := attacker.api(); r.status != http.StatusUnauthorized {
		t.Errorf("the planted id works after the victim signed in: %d", r.status)
	}
	for _, v := range []string{"x", strings.Repeat("A", 500), "eyJhbGciOiJSUzI1NiJ9.e30.sig"} {
		attacker.jar.SetCookies(srv, []*http.Cookie{{Name: e.m.CookieName(), Value: v, Path: "/"}})
		if r := attacker.api(); r.status != http.StatusUnauthorized {
			t.Errorf("cookie %q: %d", v, r.status)
		}
	}
}

func TestSession_Expiry(t *testing.T) {
	e := newEnv(t, envOpts{adjust: func(c *session.Config) { c.IdleTimeout, c.Lifetime = 20*time.Minute, 45*time.Minute }})
	b := e.browser()
	b.mustLogin(fixture.OwnerLogin)
	// Sliding: activity every 15 minutes keeps it alive past the idle timeout...
	e.clock.advance(15 * time.Minute)
	if r := b.api(); r.status != 200 {
		t.Fatalf("after 15m: %d", r.status)
	}
	e.clock.advance(15 * time.Minute)
	if r := b.api(); r.status != 200 {
		t.Fatalf("after 30m with activity: %d", r.status)
	}
	// ...but not past the absolute lifetime.
	e.clock.advance(16 * time.Minute)
	if r := b.api(); r.status != http.StatusUnauthorized {
		t.Errorf("past the absolute lifetime: %d", r.status)
	}
	b2 := e.browser()
	b2.mustLogin(fixture.OwnerLogin)
	e.clock.advance(21 * time.Minute)
	if r := b2.api(); r.status != http.StatusUnauthorized {
		t.Errorf("idle past the timeout: %d", r.status)
	}
	if status, _ := b2.user(); status != http.StatusUnauthorized {
		t.Errorf("/auth/user of an expired session: %d", status)
	}
}

func TestSession_RefreshSingleFlight(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	e.sim.SetTokenLifetime(90 * time.Second) // inside the 2-minute refresh window at once
	b.mustLogin(fixture.OwnerLogin)
	e.sim.SetTokenLifetime(0)
	e.sim.ResetRequests()
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = b.api().status
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if got := e.sim.Stats().RefreshRequests; got != 1 {
		t.Errorf("erpsim saw %d refreshes for %d concurrent requests, want 1", got, n)
	}
	if r := b.api(); r.status != 200 || e.sim.Stats().RefreshRequests != 1 {
		t.Errorf("after the refresh: %d, refreshes %d", r.status, e.sim.Stats().RefreshRequests)
	}
}

func TestSession_RefreshFailures(t *testing.T) {
	e := newEnv(t, envOpts{})
	b := e.browser()
	e.sim.SetTokenLifetime(90 * time.Second)
	b.mustLogin(fixture.OwnerLogin)
	e.sim.SetTokenLifetime(0)
	// The identity server is down, the token still valid: served as is.
	e.sim.SetRefreshFailure("temporarily_unavailable")
	if r := b.api(); r.status != 200 {
		t.Errorf("refresh unavailable, token still valid: %d", r.status)
	}
	// Once the token expired, the answer is 503 and the session stays.
	e.clock.advance(2 * time.Minute)
	if r := b.api(); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, session.CodeUpstreamUnavailable) {
		t.Errorf("refresh unavailable, token expired: %d %s", r.status, r.body)
	}
	// invalid_grant ends the session for good.
	e.sim.SetRefreshFailure("invalid_grant")
	if r := b.api(); r.status != http.StatusUnauthorized || !strings.Contains(r.body, session.CodeUnauthenticated) {
		t.Errorf("refresh refused: %d %s", r.status, r.body)
	}
	e.sim.SetRefreshFailure("")
	if r := b.api(); r.status != http.StatusUnauthorized {
		t.Errorf("the session came back after invalid_grant: %d", r.status)
	}
}

func TestSession_BackChannelLogout(t *testing.T) {
	e := newEnv(t, envOpts{})
	anna, boris := e.browser(), e.browser()
	anna.mustLogin(fixture.OwnerLogin)
	boris.mustLogin(fixture.MultiLogin)
	post := func(tok string) resp {
		return e.browser().do("POST", e.srv.URL+"/auth/backchannel-logout", url.Values{"logout_token": {tok}}, nil)
	}
	_, u := anna.user()
	sid := mustParse(t, u["logoutUrl"].(string)).Query().Get("sid")

	wrongSID, err := e.sim.LogoutToken(fixture.BFFClientID, "", "0000DEADBEEF")
	if err != nil {
		t.Fatal(err)
	}
	if r := post(wrongSID); r.status != http.StatusBadRequest {
		t.Errorf("wrong sid: %d %s", r.status, r.body)
	}
	otherApp, _ := e.sim.LogoutToken(fixture.OtherClientID, fixture.OwnerLogin, sid)
	if r := post(otherApp); r.status != http.StatusBadRequest {
		t.Errorf("logout_token for another application: %d", r.status)
	}
	if r := post(forgedLogoutToken(t, e.sim.IdentityURL(), sid)); r.status != http.StatusBadRequest {
		t.Errorf("forged logout_token: %d", r.status)
	}
	idLike, _ := e.sim.Login(context.Background(), fixture.BFFClientID, fixture.OwnerLogin, fixture.DemoPassword)
	if r := post(idLike.IDToken); r.status != http.StatusBadRequest {
		t.Errorf("an id_token as logout_token: %d", r.status)
	}
	if r := post(""); r.status != http.StatusBadRequest {
		t.Errorf("no logout_token: %d", r.status)
	}
	if anna.api().status != 200 || boris.api().status != 200 {
		t.Fatal("a refused back-channel logout ended a session")
	}
	good, _ := e.sim.LogoutToken(fixture.BFFClientID, fixture.OwnerLogin, sid)
	if r := post(good); r.status != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", r.status, r.body)
	}
	if r := anna.api(); r.status != http.StatusUnauthorized {
		t.Errorf("anna after back-channel logout: %d", r.status)
	}
	if r := boris.api(); r.status != 200 {
		t.Errorf("boris was signed out too: %d", r.status)
	}
	if r := post(good); r.status != http.StatusBadRequest {
		t.Errorf("replayed logout_token with nothing left to end: %d", r.status)
	}
	// End to end: ending the identity-server session signs boris out here.
	_, bu := boris.user()
	e.sim.EndSession(context.Background(), mustParse(t, bu["logoutUrl"].(string)).Query().Get("sid"))
	if r := boris.api(); r.status != http.StatusUnauthorized {
		t.Errorf("boris after end-session at erpsim: %d", r.status)
	}
}

// forgedLogoutToken is a well-formed logout_token signed by a key that is
// not the identity server's.
func forgedLogoutToken(t *testing.T, iss, sid string) string {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := jwk.FromRaw(priv)
	_ = key.Set(jwk.KeyIDKey, "0123456789ABCDEF0123456789ABCDEF")
	tok := jwt.New()
	now := time.Now()
	for k, v := range map[string]any{"iss": iss, "aud": fixture.BFFClientID, "iat": now, "exp": now.Add(time.Minute), "jti": "forged", "sid": sid,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}} {
		_ = tok.Set(k, v)
	}
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.TypeKey, "logout+jwt")
	raw, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestKeys_Rotation(t *testing.T) {
	oldKey, newKey := session.RandomKey(), session.RandomKey()
	before, _ := session.NewKeys(oldKey)
	sealed := before.Seal([]byte("refresh-token"), []byte("session-a"))
	rotated, err := session.NewKeys(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := rotated.Open(sealed, []byte("session-a")); err != nil || string(pt) != "refresh-token" {
		t.Errorf("old key no longer opens: %q %v", pt, err)
	}
	if _, err := rotated.Open(sealed, []byte("session-b")); err == nil {
		t.Error("a sealed token opened for another session")
	}
	fresh := rotated.Seal([]byte("x"), nil)
	if _, err := before.Open(fresh, nil); err == nil {
		t.Error("the new key did not seal")
	}
	dropped, _ := session.NewKeys(newKey)
	if _, err := dropped.Open(sealed, []byte("session-a")); err == nil {
		t.Error("a dropped key still opens")
	}
	if _, err := session.ParseKeys("short"); err == nil {
		t.Error("ParseKeys accepted a short key")
	}
	if _, err := session.NewKeys(oldKey, oldKey); err == nil {
		t.Error("NewKeys accepted a duplicate key")
	}
}

// A sign-in started on localhost continues on the public URL's 127.0.0.1
// first, so the login cookie is where the callback comes back.
func TestSession_LoginMovesToThePublicHost(t *testing.T) {
	e := newEnv(t, envOpts{})
	alias := strings.Replace(e.srv.URL, "127.0.0.1", "localhost", 1)
	r := e.browser().do("GET", alias+"/auth/login?returnTo=/x", nil, nil)
	if r.status != http.StatusFound || r.header.Get("Location") != e.srv.URL+"/auth/login?returnTo=/x" || r.header.Get("Set-Cookie") != "" {
		t.Errorf("login on an alias host: %d %q cookie %q", r.status, r.header.Get("Location"), r.header.Get("Set-Cookie"))
	}
}
