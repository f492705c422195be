package erpsim_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

var jsonUnmarshal = json.Unmarshal

const (
	bffRedirect        = "http://localhost:8080/auth/callback"
	playgroundRedirect = "http://localhost:5173/"
	testVerifier       = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-long-enough"
)

func challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authzParams is a valid authorization request of the erpgraph app.
func authzParams() url.Values {
	return url.Values{
		"client_id": {fixture.BFFClientID}, "redirect_uri": {bffRedirect}, "response_type": {"code"},
		"scope": {"openid profile offline_access"}, "state": {"st-123"}, "nonce": {"n-456"},
		"code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"},
	}
}

// signIn posts the login form for an authorization request.
func signIn(t *testing.T, s *erpsim.Sim, params url.Values, login, password string) response {
	t.Helper()
	form := url.Values{"login": {login}, "password": {password}}
	for k, v := range params {
		form[k] = v
	}
	return do(t, http.MethodPost, s.IdentityURL()+"/account/login", form, nil)
}

// redirectParams returns the query of a redirect response.
func redirectParams(t *testing.T, r response) url.Values {
	t.Helper()
	if r.status != http.StatusFound {
		t.Fatalf("status %d, want a redirect: %s", r.status, r.body)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// codeFor signs in and returns the authorization code.
func codeFor(t *testing.T, s *erpsim.Sim, params url.Values, login string) string {
	t.Helper()
	q := redirectParams(t, signIn(t, s, params, login, fixture.DemoPassword))
	if q.Get("code") == "" || q.Get("state") != params.Get("state") {
		t.Fatalf("redirect %v", q)
	}
	return q.Get("code")
}

func tokenCall(t *testing.T, s *erpsim.Sim, form url.Values) (int, map[string]any) {
	t.Helper()
	r := do(t, http.MethodPost, s.IdentityURL()+"/connect/token", form, nil)
	return r.status, decodeJSON(t, r.body)
}

func exchange(code string, extra url.Values) url.Values {
	f := url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {bffRedirect},
		"code_verifier": {testVerifier}, "client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func refresh(t *testing.T, s *erpsim.Sim, clientID, secret, rt string) *erpsim.Tokens {
	t.Helper()
	status, body := tokenCall(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}, "client_secret": {secret}})
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, body)
	}
	at, _ := body["access_token"].(string)
	nrt, _ := body["refresh_token"].(string)
	return &erpsim.Tokens{AccessToken: at, RefreshToken: nrt}
}

var upperHex32 = regexp.MustCompile(`^[0-9A-F]{32}$`)

func TestIdentity_DiscoveryAndJWKS(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	r := get(t, s.IdentityURL()+"/.well-known/openid-configuration", "")
	if r.status != http.StatusOK {
		t.Fatalf("discovery: %d", r.status)
	}
	d := decodeJSON(t, r.body)
	want := map[string]string{
		"issuer": s.IdentityURL(), "jwks_uri": s.IdentityURL() + "/.well-known/openid-configuration/jwks",
		"authorization_endpoint": s.IdentityURL() + "/connect/authorize", "token_endpoint": s.IdentityURL() + "/connect/token",
		"userinfo_endpoint": s.IdentityURL() + "/connect/userinfo", "end_session_endpoint": s.IdentityURL() + "/connect/endsession",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %s", k, d[k], v)
		}
	}
	r = get(t, s.IdentityURL()+"/.well-known/openid-configuration/jwks", "")
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks %s: %v", r.body, err)
	}
	k := set.Keys[0]
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || !upperHex32.MatchString(k["kid"].(string)) || k["d"] != nil {
		t.Errorf("jwk %v", k)
	}
}

func TestIdentity_ServiceTokenClaims(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok, err := s.ServiceToken(context.Background(), fixture.BFFClientID)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 3600 || tok.Scope != "read update" || tok.RefreshToken != "" || tok.IDToken != "" {
		t.Errorf("response %+v", tok)
	}
	typ, kid, c := verifiedClaims(t, s, tok.AccessToken)
	if typ != "at+jwt" || !upperHex32.MatchString(kid) {
		t.Errorf("header typ %q kid %q", typ, kid)
	}
	svc, _ := fixture.UserByLogin(fixture.ServiceUserLogin)
	for k, v := range map[string]any{
		"iss": s.IdentityURL(), "client_id": fixture.BFFClientID, "client_system_user": fixture.ServiceUserLogin,
		"client_system_user_type": fixture.SystemUserNoLogin, "client_system_user_id": svc.ID(), "client_db": fixture.DBName,
	} {
		if c[k] != v {
			t.Errorf("%s = %v, want %v", k, c[k], v)
		}
	}
	if c["sub"] != nil || c["jti"] == nil {
		t.Errorf("sub %v jti %v", c["sub"], c["jti"])
	}
	if got := strings.Join(toStrings(c["scope"]), " "); got != "read update" {
		t.Errorf("scope %v", c["scope"])
	}
	wantAud := []string{"DomainAPI", "TableAPI", "OLAP", "AppServer", s.IdentityURL() + "/resources"}
	if !slices.Equal(toStrings(c["aud"]), wantAud) {
		t.Errorf("aud %v, want %v", c["aud"], wantAud)
	}
	if c["exp"].(float64)-c["iat"].(float64) != 3600 || c["nbf"] != c["iat"] {
		t.Errorf("iat %v nbf %v exp %v", c["iat"], c["nbf"], c["exp"])
	}
	sub, err := s.ServiceToken(context.Background(), fixture.BFFClientID, "read")
	if err != nil || sub.Scope != "read" {
		t.Errorf("scope subset: %+v %v", sub, err)
	}
}

func toStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, x)
	case []any:
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
	}
	return out
}

func TestIdentity_TokenEndpointErrors(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	cc := func(id, secret, scope string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
		if scope != "" {
			f.Set("scope", scope)
		}
		return f
	}
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantCode   string
	}{
		{"bad secret", cc(fixture.BFFClientID, "wrong", ""), 401, "invalid_client"},
		{"no secret", cc(fixture.BFFClientID, "", ""), 401, "invalid_client"},
		{"unknown client", cc("com.example/nobody", "x", ""), 401, "invalid_client"},
		{"public client sends a secret", cc(fixture.PlaygroundClientID, "x", ""), 401, "invalid_client"},
		{"public client without SystemUser", cc(fixture.PlaygroundClientID, "", ""), 400, "unauthorized_client"},
		{"disabled app", cc(fixture.DisabledClientID, "disabled-demo-secret", ""), 400, "unauthorized_client"},
		{"scope not on the app", cc(fixture.OtherClientID, "other-demo-secret", "read update"), 400, "invalid_scope"},
		{"unknown scope", cc(fixture.BFFClientID, fixture.BFFSecret, "read sec"), 400, "invalid_scope"},
		{"protocol scope in client credentials", cc(fixture.BFFClientID, fixture.BFFSecret, "openid"), 400, "invalid_scope"},
		{"no grant type", url.Values{"client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret}}, 400, "invalid_request"},
		{"password grant", url.Values{"grant_type": {"password"}, "client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret}}, 400, "unsupported_grant_type"},
		{"unknown code", exchange("nope", nil), 400, "invalid_grant"},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}, "client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret}}, 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := tokenCall(t, s, tt.form)
			if status != tt.wantStatus || body["error"] != tt.wantCode {
				t.Errorf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantCode)
			}
			if body["access_token"] != nil {
				t.Error("error response carries a token")
			}
		})
	}
	t.Run("JSON body refused", func(t *testing.T) {
		r := do(t, http.MethodPost, s.IdentityURL()+"/connect/token", nil, map[string]string{"Content-Type": "application/json"})
		if r.status != 400 || decodeJSON(t, r.body)["error"] != "invalid_request" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("basic auth accepted", func(t *testing.T) {
		req := url.Values{"grant_type": {"client_credentials"}}
		r := do(t, http.MethodPost, s.IdentityURL()+"/connect/token", req, map[string]string{
			"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(fixture.BFFClientID)+":"+fixture.BFFSecret)),
		})
		if r.status != 200 {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	var oe *erpsim.OAuthError
	if _, err := s.ServiceToken(context.Background(), fixture.DisabledClientID); !errors.As(err, &oe) || oe.Code != "unauthorized_client" {
		t.Errorf("ServiceToken(disabled) = %v", err)
	}
}

func TestIdentity_LoginUserClaims(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok := mustLogin(t, s, fixture.BFFClientID, fixture.OwnerLogin, "openid", "profile", "read")
	typ, _, c := verifiedClaims(t, s, tok.AccessToken)
	anna, _ := fixture.UserByLogin(fixture.OwnerLogin)
	if typ != "at+jwt" {
		t.Errorf("typ %q", typ)
	}
	for k, v := range map[string]any{
		"iss": s.IdentityURL(), "sub": anna.Login, "id": anna.ID(), "name": anna.Name, "email": anna.Email,
		"email_verified": "false", "locale": "bg", "user_type": fixture.ExternalCommunityUser, "is_admin": "false",
		"db": fixture.DBName, "client_id": fixture.BFFClientID, "idp": "local",
	} {
		if c[k] != v {
			t.Errorf("%s = %#v, want %#v", k, c[k], v)
		}
	}
	if !upperHex32.MatchString(c["sid"].(string)) || c["auth_time"] == nil || c["jti"] == nil {
		t.Errorf("sid %v auth_time %v jti %v", c["sid"], c["auth_time"], c["jti"])
	}
	if !slices.Equal(toStrings(c["scope"]), []string{"openid", "profile", "read"}) || !slices.Equal(toStrings(c["amr"]), []string{"pwd"}) {
		t.Errorf("scope %v amr %v", c["scope"], c["amr"])
	}
	if !slices.Equal(toStrings(c["aud"]), []string{"DomainAPI", s.IdentityURL() + "/resources"}) {
		t.Errorf("aud %v", c["aud"])
	}

	idTyp, _, idc := verifiedClaims(t, s, tok.IDToken)
	sum := sha256.Sum256([]byte(tok.AccessToken))
	if idTyp != "JWT" || idc["aud"] != fixture.BFFClientID || idc["sid"] != c["sid"] || idc["nonce"] == nil ||
		idc["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) || idc["exp"].(float64)-idc["iat"].(float64) != 300 {
		t.Errorf("id_token typ %q claims %v", idTyp, idc)
	}

	admin := mustLogin(t, s, fixture.PlaygroundClientID, fixture.AdminLogin)
	_, _, ac := verifiedClaims(t, s, admin.AccessToken)
	if ac["is_admin"] != "true" || ac["aud"] != s.IdentityURL()+"/resources" || ac["client_id"] != fixture.PlaygroundClientID {
		t.Errorf("admin openid-profile token: is_admin %v aud %v client %v", ac["is_admin"], ac["aud"], ac["client_id"])
	}
}

func TestIdentity_AuthorizePage(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	r := do(t, http.MethodGet, s.IdentityURL()+"/connect/authorize?"+authzParams().Encode(), nil, nil)
	if r.status != http.StatusOK || r.header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("login page: %d, X-Frame-Options %q", r.status, r.header.Get("X-Frame-Options"))
	}
	page := html.UnescapeString(string(r.body))
	for _, u := range fixture.Users() {
		if shown := strings.Contains(page, u.Login); shown != (u.Password != "") {
			t.Errorf("user %s shown=%v", u.Login, shown)
		}
	}
	for _, want := range []string{`name="login"`, `name="password"`, `name="code_challenge"`, `value="st-123"`, "/id/account/login", "Sign in as anna.petrova"} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
}

func TestIdentity_AuthorizationCodeFlow(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	code := codeFor(t, s, authzParams(), fixture.MultiLogin)
	status, body := tokenCall(t, s, exchange(code, nil))
	if status != http.StatusOK || body["id_token"] == nil || body["refresh_token"] == nil || body["token_type"] != "Bearer" {
		t.Fatalf("exchange: %d %v", status, body)
	}
	_, _, idc := verifiedClaims(t, s, body["id_token"].(string))
	if idc["nonce"] != "n-456" || idc["sub"] != fixture.MultiLogin {
		t.Errorf("id_token nonce %v sub %v", idc["nonce"], idc["sub"])
	}
	t.Run("reused code", func(t *testing.T) {
		status, body := tokenCall(t, s, exchange(code, nil))
		if status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("got %d %v", status, body)
		}
	})
	failures := []struct {
		name  string
		extra url.Values
		code  string
	}{
		{"PKCE mismatch", url.Values{"code_verifier": {strings.Repeat("x", 43)}}, "invalid_grant"},
		{"missing verifier", url.Values{"code_verifier": nil}, "invalid_grant"},
		{"redirect mismatch", url.Values{"redirect_uri": {"http://127.0.0.1:8080/auth/callback"}}, "invalid_grant"},
		{"bad secret", url.Values{"client_secret": {"nope"}}, "invalid_client"},
		{"other client", url.Values{"client_id": {fixture.OtherClientID}, "client_secret": {"other-demo-secret"}}, "invalid_grant"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			c := codeFor(t, s, authzParams(), fixture.MultiLogin)
			status, body := tokenCall(t, s, exchange(c, tt.extra))
			if body["error"] != tt.code || status == 200 {
				t.Errorf("got %d %v, want %s", status, body, tt.code)
			}
		})
	}
	t.Run("code without offline_access gets no refresh token", func(t *testing.T) {
		p := authzParams()
		p.Set("scope", "openid")
		_, body := tokenCall(t, s, exchange(codeFor(t, s, p, fixture.MultiLogin), nil))
		if body["access_token"] == nil || body["refresh_token"] != nil {
			t.Errorf("response %v", body)
		}
	})
	t.Run("confidential client without PKCE", func(t *testing.T) {
		p := authzParams()
		p.Del("code_challenge")
		p.Del("code_challenge_method")
		_, body := tokenCall(t, s, exchange(codeFor(t, s, p, fixture.MultiLogin), url.Values{"code_verifier": nil}))
		if body["access_token"] == nil {
			t.Errorf("response %v", body)
		}
	})
}

func TestIdentity_AuthorizeRefusals(t *testing.T) {
	internalOnly := fixture.App{
		ClientID: "com.example/internal-only", Name: "Back office", ClientType: "Confidential", Secret: "internal-secret",
		ImpersonateAsInternalUserAllowed: true, RedirectURIs: []string{"http://localhost:7070/cb"}, Scope: "read", IsEnabled: true,
	}
	s := startSim(t, erpsim.Options{Apps: append(fixture.Apps(), internalOnly)})
	with := func(mod func(url.Values)) url.Values {
		p := authzParams()
		mod(p)
		return p
	}
	pages := []struct {
		name   string
		params url.Values
	}{
		{"unregistered redirect", with(func(p url.Values) { p.Set("redirect_uri", "http://evil.example/cb") })},
		{"redirect differs in case", with(func(p url.Values) { p.Set("redirect_uri", "http://localhost:8080/Auth/callback") })},
		{"unknown client", with(func(p url.Values) { p.Set("client_id", "com.example/nobody") })},
		{"disabled app", with(func(p url.Values) {
			p.Set("client_id", fixture.DisabledClientID)
			p.Set("redirect_uri", "http://localhost:9091/callback")
		})},
	}
	for _, tt := range pages {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodGet, s.IdentityURL()+"/connect/authorize?"+tt.params.Encode(), nil, nil)
			if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
				t.Errorf("got %d Location %q, want an error page", r.status, r.header.Get("Location"))
			}
		})
	}
	redirects := []struct {
		name, code string
		params     url.Values
	}{
		{"invalid scope", "invalid_scope", with(func(p url.Values) { p.Set("scope", "openid sec") })},
		{"scope the app lacks", "invalid_scope", with(func(p url.Values) {
			p.Set("client_id", fixture.PlaygroundClientID)
			p.Set("redirect_uri", playgroundRedirect)
			p.Set("scope", "openid update")
		})},
		{"public client without PKCE", "invalid_request", with(func(p url.Values) {
			p.Set("client_id", fixture.PlaygroundClientID)
			p.Set("redirect_uri", playgroundRedirect)
			p.Del("code_challenge")
			p.Del("code_challenge_method")
		})},
		{"plain PKCE", "invalid_request", with(func(p url.Values) { p.Set("code_challenge_method", "plain") })},
		{"token response type", "unsupported_response_type", with(func(p url.Values) { p.Set("response_type", "token") })},
		{"prompt none", "login_required", with(func(p url.Values) { p.Set("prompt", "none") })},
	}
	for _, tt := range redirects {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, http.MethodGet, s.IdentityURL()+"/connect/authorize?"+tt.params.Encode(), nil, nil)
			q := redirectParams(t, r)
			if !strings.HasPrefix(r.header.Get("Location"), tt.params.Get("redirect_uri")+"?") || q.Get("error") != tt.code || q.Get("state") != "st-123" {
				t.Errorf("Location %q, want error %s with state", r.header.Get("Location"), tt.code)
			}
		})
	}
	logins := []struct {
		name, client, redirect, login, password string
		want                                    int
	}{
		{"wrong password", fixture.BFFClientID, bffRedirect, fixture.OwnerLogin, "nope", http.StatusUnauthorized},
		{"unknown user", fixture.BFFClientID, bffRedirect, "nobody", "demo", http.StatusUnauthorized},
		{"service user", fixture.BFFClientID, bffRedirect, fixture.ServiceUserLogin, "", http.StatusUnauthorized},
		{"external user at internal-only app", internalOnly.ClientID, "http://localhost:7070/cb", fixture.OwnerLogin, "demo", http.StatusForbidden},
		{"internal user at internal-only app", internalOnly.ClientID, "http://localhost:7070/cb", fixture.InternalLogin, "demo", http.StatusFound},
	}
	for _, tt := range logins {
		t.Run(tt.name, func(t *testing.T) {
			p := authzParams()
			p.Set("client_id", tt.client)
			p.Set("redirect_uri", tt.redirect)
			p.Set("scope", "openid")
			if r := signIn(t, s, p, tt.login, tt.password); r.status != tt.want {
				t.Errorf("status %d, want %d", r.status, tt.want)
			}
		})
	}
	var oe *erpsim.OAuthError
	if _, err := s.Login(context.Background(), fixture.BFFClientID, fixture.OwnerLogin, fixture.DemoPassword, "openid", "sec"); !errors.As(err, &oe) || oe.Code != "invalid_scope" {
		t.Errorf("Login with an invalid scope: %v", err)
	}
	if _, err := s.Login(context.Background(), fixture.BFFClientID, fixture.OwnerLogin, "wrong"); err == nil {
		t.Error("Login with a wrong password succeeded")
	}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func TestIdentity_FormPostHybrid(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	p := authzParams()
	p.Set("response_type", "code id_token")
	p.Set("response_mode", "form_post")
	r := signIn(t, s, p, fixture.OwnerLogin, fixture.DemoPassword)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `action="`+bffRedirect+`"`) {
		t.Fatalf("form_post: %d %s", r.status, r.body)
	}
	fields := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(string(r.body), -1) {
		fields.Set(m[1], html.UnescapeString(m[2]))
	}
	if fields.Get("state") != "st-123" || fields.Get("code") == "" || fields.Get("id_token") == "" {
		t.Fatalf("posted fields %v", fields)
	}
	_, _, idc := verifiedClaims(t, s, fields.Get("id_token"))
	sum := sha256.Sum256([]byte(fields.Get("code")))
	if idc["nonce"] != "n-456" || idc["c_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) || idc["aud"] != fixture.BFFClientID {
		t.Errorf("front-channel id_token %v", idc)
	}
	if status, body := tokenCall(t, s, exchange(fields.Get("code"), nil)); status != 200 {
		t.Errorf("exchange: %d %v", status, body)
	}
	p.Set("response_mode", "query")
	q := redirectParams(t, do(t, http.MethodGet, s.IdentityURL()+"/connect/authorize?"+p.Encode(), nil, nil))
	if q.Get("error") != "" { // tokens never go into a query: the error is sent in the fragment
		t.Errorf("hybrid query error in query: %v", q)
	}
}

func TestIdentity_RefreshRotation(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok := mustLogin(t, s, fixture.BFFClientID, fixture.OwnerLogin, "openid", "profile", "offline_access")
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}
	next := refresh(t, s, fixture.BFFClientID, fixture.BFFSecret, tok.RefreshToken)
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken || next.AccessToken == "" {
		t.Fatalf("refresh response %+v", next)
	}
	_, _, c1 := verifiedClaims(t, s, tok.AccessToken)
	_, _, c2 := verifiedClaims(t, s, next.AccessToken)
	if c1["sid"] != c2["sid"] || c1["jti"] == c2["jti"] {
		t.Errorf("sid %v→%v jti %v→%v", c1["sid"], c2["sid"], c1["jti"], c2["jti"])
	}
	rt := url.Values{"grant_type": {"refresh_token"}, "client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret}}
	rt.Set("refresh_token", tok.RefreshToken)
	if status, body := tokenCall(t, s, rt); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("old refresh token: %d %v, want invalid_grant", status, body)
	}
	rt.Set("refresh_token", next.RefreshToken)
	rt.Set("scope", "openid read")
	if status, body := tokenCall(t, s, rt); status != 400 || body["error"] != "invalid_scope" {
		t.Errorf("widening scope: %d %v, want invalid_scope", status, body)
	}
	rt.Set("scope", "openid")
	status, body := tokenCall(t, s, rt)
	if status != 200 || body["scope"] != "openid" {
		t.Errorf("narrowing scope: %d %v", status, body)
	}
	pub := mustLogin(t, s, fixture.PlaygroundClientID, fixture.AdminLogin, "openid", "offline_access")
	if r := refresh(t, s, fixture.PlaygroundClientID, "", pub.RefreshToken); r.RefreshToken == "" {
		t.Error("public client refresh without rotation")
	}
}

func TestIdentity_KeyRotation(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	before := mustServiceToken(t, s)
	_, kid1, _ := verifiedClaims(t, s, before)
	kid2 := s.RotateKey()
	if kid2 == kid1 || !upperHex32.MatchString(kid2) {
		t.Fatalf("new kid %q (old %q)", kid2, kid1)
	}
	after := mustServiceToken(t, s)
	_, kid, _ := verifiedClaims(t, s, after)
	if kid != kid2 {
		t.Errorf("new token kid %q, want %q", kid, kid2)
	}
	r := get(t, s.IdentityURL()+"/.well-known/openid-configuration/jwks", "")
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("jwks after rotation: %s", r.body)
	}
	for _, tok := range []string{before, after} {
		if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
			t.Errorf("token by kid %s refused: %d", kid, r.status)
		}
	}
}

func TestIdentity_CORS(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	const allowed, denied = "http://localhost:5173", "http://evil.example"
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/openid-configuration/jwks", "/connect/token", "/connect/userinfo"} {
		for _, origin := range []string{allowed, denied} {
			r := do(t, http.MethodOptions, s.IdentityURL()+path, nil, map[string]string{
				"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
			})
			got := r.header.Get("Access-Control-Allow-Origin")
			if want := map[string]string{allowed: allowed, denied: ""}[origin]; got != want || r.status != http.StatusNoContent {
				t.Errorf("preflight %s from %s: %d ACAO %q, want %q", path, origin, r.status, got, want)
			}
			if origin == allowed && !strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
				t.Errorf("preflight %s: methods %q", path, r.header.Get("Access-Control-Allow-Methods"))
			}
		}
	}
	r := do(t, http.MethodGet, s.IdentityURL()+"/.well-known/openid-configuration", nil, map[string]string{"Origin": allowed})
	if r.header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("discovery GET: ACAO %q", r.header.Get("Access-Control-Allow-Origin"))
	}
	r = do(t, http.MethodPost, s.IdentityURL()+"/connect/token", url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Origin": denied})
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("token POST from a foreign origin: ACAO %q", r.header.Get("Access-Control-Allow-Origin"))
	}
}

func TestIdentity_UserinfoAndProfile(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	user := mustLogin(t, s, fixture.BFFClientID, fixture.MultiLogin)
	svc := mustServiceToken(t, s)
	r := get(t, s.IdentityURL()+"/connect/userinfo", user.AccessToken)
	if r.status != 200 {
		t.Fatalf("userinfo: %d", r.status)
	}
	if u := decodeJSON(t, r.body); u["sub"] != fixture.MultiLogin || u["name"] != "Boris Georgiev" || u["user_type"] != fixture.ExternalCommunityUser {
		t.Errorf("userinfo %v", u)
	}
	if r := get(t, s.IdentityURL()+"/connect/userinfo", svc); r.status != http.StatusForbidden {
		t.Errorf("userinfo with a service token: %d", r.status)
	}
	if r := get(t, s.IdentityURL()+"/connect/userinfo", ""); r.status != http.StatusUnauthorized {
		t.Errorf("userinfo without token: %d", r.status)
	}
	r = get(t, s.URL()+"/profile/me", user.AccessToken)
	boris, _ := fixture.UserByLogin(fixture.MultiLogin)
	if me := decodeJSON(t, r.body); r.status != 200 || me["login"] != fixture.MultiLogin || me["id"] != boris.ID() {
		t.Errorf("/profile/me: %d %v", r.status, me)
	}
	if r := get(t, s.URL()+"/profile/me", svc); r.status != http.StatusForbidden {
		t.Errorf("/profile/me with a service token: %d", r.status)
	}
}

func TestIdentity_EndSession(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok := mustLogin(t, s, fixture.BFFClientID, fixture.OwnerLogin, "openid", "offline_access")
	q := url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {"http://localhost:8080/"}, "state": {"bye"}}
	r := do(t, http.MethodGet, s.IdentityURL()+"/connect/endsession?"+q.Encode(), nil, nil)
	if r.status != http.StatusFound || r.header.Get("Location") != "http://localhost:8080/?state=bye" {
		t.Fatalf("endsession: %d Location %q", r.status, r.header.Get("Location"))
	}
	rt := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret}}
	if status, body := tokenCall(t, s, rt); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh after sign-out: %d %v", status, body)
	}
	q.Set("post_logout_redirect_uri", "http://evil.example/")
	if r := do(t, http.MethodGet, s.IdentityURL()+"/connect/endsession?"+q.Encode(), nil, nil); r.status != http.StatusBadRequest {
		t.Errorf("unregistered post-logout URI: %d", r.status)
	}
	if r := do(t, http.MethodGet, s.IdentityURL()+"/connect/endsession", nil, nil); r.status != http.StatusOK {
		t.Errorf("plain sign-out page: %d", r.status)
	}
}

func TestIdentity_SingleSignOn(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, CheckRedirect: noRedirect.CheckRedirect}
	send := func(method, target string, form url.Values) *http.Response {
		t.Helper()
		var resp *http.Response
		var err error
		if form != nil {
			resp, err = browser.PostForm(target, form)
		} else {
			resp, err = browser.Get(target)
		}
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	location := func(resp *http.Response) url.Values {
		t.Helper()
		u, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		return u.Query()
	}
	p := authzParams()
	p.Set("prompt", "none")
	if q := location(send(http.MethodGet, s.IdentityURL()+"/connect/authorize?"+p.Encode(), nil)); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none before sign-in: %v", q)
	}
	form := url.Values{"login": {fixture.OwnerLogin}, "password": {fixture.DemoPassword}}
	for k, v := range authzParams() {
		form[k] = v
	}
	first := location(send(http.MethodPost, s.IdentityURL()+"/account/login", form))

	other := url.Values{
		"client_id": {fixture.PlaygroundClientID}, "redirect_uri": {playgroundRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s2"}, "code_challenge": {challenge(testVerifier)}, "code_challenge_method": {"S256"},
		"prompt": {"none"},
	}
	silent := location(send(http.MethodGet, s.IdentityURL()+"/connect/authorize?"+other.Encode(), nil))
	if silent.Get("code") == "" || silent.Get("session_state") != first.Get("session_state") || silent.Get("state") != "s2" {
		t.Fatalf("silent sign-in to a second app: %v (first %v)", silent, first)
	}
	status, body := tokenCall(t, s, url.Values{"grant_type": {"authorization_code"}, "code": {silent.Get("code")},
		"redirect_uri": {playgroundRedirect}, "code_verifier": {testVerifier}, "client_id": {fixture.PlaygroundClientID}})
	if status != 200 {
		t.Fatalf("silent code exchange: %d %v", status, body)
	}
	if _, _, c := verifiedClaims(t, s, body["access_token"].(string)); c["sub"] != fixture.OwnerLogin || c["sid"] != first.Get("session_state") {
		t.Errorf("silent token sub %v sid %v", c["sub"], c["sid"])
	}
	other.Set("prompt", "login")
	if resp := send(http.MethodGet, s.IdentityURL()+"/connect/authorize?"+other.Encode(), nil); resp.StatusCode != http.StatusOK {
		t.Errorf("prompt=login with a session: %d, want the login page", resp.StatusCode)
	}
	send(http.MethodGet, s.IdentityURL()+"/connect/endsession", nil)
	other.Set("prompt", "none")
	if q := location(send(http.MethodGet, s.IdentityURL()+"/connect/authorize?"+other.Encode(), nil)); q.Get("error") != "login_required" {
		t.Errorf("prompt=none after sign-out: %v", q)
	}
}
