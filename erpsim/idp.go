package erpsim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// Identity-server paths (relative to the instance base URL).
const (
	idPrefix      = "/id"
	discoveryPath = idPrefix + "/.well-known/openid-configuration"
	jwksPath      = discoveryPath + "/jwks"
	authorizePath = idPrefix + "/connect/authorize"
	loginPath     = idPrefix + "/account/login"
	tokenPath     = idPrefix + "/connect/token"
	userinfoPath  = idPrefix + "/connect/userinfo"
	endSessionURL = idPrefix + "/connect/endsession"
	// revocationPath is IdentityServer's RFC 7009 endpoint.
	revocationPath = idPrefix + "/connect/revocation"
)

// Lifetimes of the identity server's handles (docs/erpnet.md § Identity server).
const (
	codeLifetime                = 5 * time.Minute
	refreshLifetimeConfidential = 30 * 24 * time.Hour
	refreshLifetimePublic       = 24 * time.Hour
	maxPendingCodes             = 1000 // above this, issuing a code first drops expired ones
)

// authCode is an issued authorization code.
type authCode struct {
	grant       userGrant
	redirectURI string
	nonce       string
	challenge   string // S256 code_challenge; empty when the client sent none
	expires     time.Time
}

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	grant   userGrant
	expires time.Time
}

// idpState is the identity server's mutable state.
type idpState struct {
	mu             sync.Mutex
	codes          map[string]*authCode
	refresh        map[string]*refreshGrant
	sso            map[string]ssoSession // browser-session cookie → session
	issued         map[string]uint64     // access-token jti → issue sequence number
	seq            uint64
	revokedThrough uint64 // tokens with sequence ≤ this are revoked
	// clients are the applications that redeemed a code in each sid, the
	// ones end-session notifies by back-channel logout.
	clients map[string]map[string]bool
	// refreshFailure, when set, is the OAuth error every refresh_token
	// grant answers (the SetRefreshFailure knob).
	refreshFailure string
}

func (st *idpState) init() {
	st.codes = map[string]*authCode{}
	st.refresh = map[string]*refreshGrant{}
	st.sso = map[string]ssoSession{}
	st.issued = map[string]uint64{}
	st.clients = map[string]map[string]bool{}
}

// SetRefreshFailure makes every refresh_token grant fail with the OAuth
// error code (invalid_grant: the grant is gone, as after a password change or
// an administrator's revocation; temporarily_unavailable: a 503, the
// identity server is down), until it is called with "".
func (s *Sim) SetRefreshFailure(code string) {
	st := &s.idp
	st.mu.Lock()
	defer st.mu.Unlock()
	st.refreshFailure = code
}

func (s *Sim) recordIssued(jti string) {
	st := &s.idp
	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	st.issued[jti] = st.seq
}

// isRevoked reports whether the token with this jti was revoked. A jti this
// instance never issued counts as revoked.
func (s *Sim) isRevoked(jti string) bool {
	st := &s.idp
	st.mu.Lock()
	defer st.mu.Unlock()
	seq, ok := st.issued[jti]
	return !ok || seq <= st.revokedThrough
}

// RevokeTokens makes the Domain API refuse (401) every access token issued so
// far, as after sessions are revoked by an administrator.
func (s *Sim) RevokeTokens() {
	st := &s.idp
	st.mu.Lock()
	defer st.mu.Unlock()
	st.revokedThrough = st.seq
}

func (s *Sim) identityRoutes(mux *http.ServeMux) {
	mux.Handle("GET "+discoveryPath, s.cors(http.HandlerFunc(s.handleDiscovery)))
	mux.Handle("GET "+jwksPath, s.cors(http.HandlerFunc(s.handleJWKS)))
	mux.Handle("POST "+tokenPath, s.cors(http.HandlerFunc(s.handleToken)))
	mux.Handle("POST "+revocationPath, s.cors(http.HandlerFunc(s.handleRevocation)))
	mux.Handle("GET "+userinfoPath, s.cors(http.HandlerFunc(s.handleUserinfo)))
	mux.Handle("POST "+userinfoPath, s.cors(http.HandlerFunc(s.handleUserinfo)))
	for _, p := range []string{discoveryPath, jwksPath, tokenPath, userinfoPath, revocationPath} {
		mux.HandleFunc("OPTIONS "+p, s.handlePreflight)
	}
	mux.HandleFunc("GET "+authorizePath, s.handleAuthorize)
	mux.HandleFunc("POST "+authorizePath, s.handleAuthorize)
	mux.HandleFunc("POST "+loginPath, s.handleLogin)
	mux.HandleFunc("GET "+endSessionURL, s.handleEndSession)
	mux.HandleFunc("POST "+endSessionURL, s.handleEndSession)
}

// allowedOrigin reports whether a browser origin belongs to an enabled
// trusted application.
func (s *Sim) allowedOrigin(origin string) bool {
	if origin == "" {
		return false
	}
	for _, a := range s.appList {
		if a.IsEnabled && registered(a.AllowedOrigins, origin, a.LoopbackAnyPort) {
			return true
		}
	}
	return false
}

// cors adds the CORS response headers for allowed origins, so a browser app
// on another origin can discover, fetch keys, redeem codes and read userinfo.
func (s *Sim) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); s.allowedOrigin(origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		next.ServeHTTP(w, r)
	})
}

// handlePreflight answers CORS preflight requests. Origins of no trusted
// application get no CORS headers, so the browser blocks the real request.
func (s *Sim) handlePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if origin := r.Header.Get("Origin"); s.allowedOrigin(origin) {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, X-Requested-With")
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "erpsim: encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// scopesSupported lists every scope some enabled application may ask for.
func (s *Sim) scopesSupported() []string {
	out := slices.Clone(protocolScopes)
	for _, a := range s.appList {
		for _, sc := range strings.Fields(a.Scope) {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return append(out, scopeDomainAPI)
}

func (s *Sim) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := s.IdentityURL()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              s.base + jwksPath,
		"authorization_endpoint":                s.base + authorizePath,
		"token_endpoint":                        s.base + tokenPath,
		"userinfo_endpoint":                     s.base + userinfoPath,
		"end_session_endpoint":                  s.base + endSessionURL,
		"revocation_endpoint":                   s.base + revocationPath,
		"frontchannel_logout_supported":         false,
		"backchannel_logout_supported":          true,
		"backchannel_logout_session_supported":  true,
		"scopes_supported":                      s.scopesSupported(),
		"claims_supported":                      []string{"sub", "id", "sid", "name", "email", "email_verified", "locale", "user_type", "is_admin", "db", "auth_time", "idp", "amr"},
		"grant_types_supported":                 []string{"authorization_code", "client_credentials", "refresh_token"},
		"response_types_supported":              []string{"code", "code id_token"},
		"response_modes_supported":              []string{"form_post", "query", "fragment"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"subject_types_supported":               []string{"public"},
		"code_challenge_methods_supported":      []string{"S256"},
		"request_parameter_supported":           false,
	})
}

func (s *Sim) handleJWKS(w http.ResponseWriter, r *http.Request) {
	b, err := s.keys.jwksJSON()
	if err != nil {
		http.Error(w, "erpsim: jwks unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// oauthError is an OAuth 2.0 error response of the token and userinfo endpoints.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) write(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func badRequest(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc}
}

// clientAuth authenticates the client at the token endpoint: HTTP Basic or
// form fields; confidential clients need their secret, public clients must not
// send one; disabled applications are refused.
func (s *Sim) clientAuth(r *http.Request) (fixture.App, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: Basic credentials are form-urlencoded.
		if v, err := url.QueryUnescape(id); err == nil {
			id = v
		}
		if v, err := url.QueryUnescape(secret); err == nil {
			secret = v
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	invalid := &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed"}
	app, ok := s.apps[id]
	if id == "" || !ok {
		return fixture.App{}, invalid
	}
	if app.ClientType == "Public" {
		if secret != "" {
			return fixture.App{}, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "public clients must not send a client secret"}
		}
	} else {
		want := app.SecretHash()
		got := fixture.SecretHash(secret)
		if secret == "" || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return fixture.App{}, invalid
		}
	}
	if !app.IsEnabled {
		return fixture.App{}, badRequest("unauthorized_client", "the application is disabled")
	}
	return app, nil
}

// tokenResponse is the token endpoint's success body.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		badRequest("invalid_request", "the token request must be application/x-www-form-urlencoded").write(w)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		badRequest("invalid_request", "malformed form body").write(w)
		return
	}
	app, oerr := s.clientAuth(r)
	if oerr != nil {
		oerr.write(w)
		return
	}
	var resp *tokenResponse
	gt := r.PostForm.Get("grant_type")
	metaFrom(r.Context()).grantType = gt
	metaFrom(r.Context()).scope = r.PostForm.Get("scope")
	metaFrom(r.Context()).clientID = app.ClientID
	switch gt {
	case "":
		oerr = badRequest("invalid_request", "grant_type is required")
	case "authorization_code":
		resp, oerr = s.grantAuthorizationCode(app, r.PostForm)
	case "refresh_token":
		resp, oerr = s.grantRefreshToken(app, r.PostForm)
	case "client_credentials":
		resp, oerr = s.grantClientCredentials(app, r.PostForm)
	default:
		oerr = badRequest("unsupported_grant_type", "grant type "+gt+" is not supported")
	}
	if oerr != nil {
		s.log.Debug("erpsim: token request refused", "client_id", app.ClientID, "grant_type", gt, "error", oerr.code)
		oerr.write(w)
		return
	}
	s.log.Debug("erpsim: token issued", "client_id", app.ClientID, "grant_type", gt, "scope", resp.Scope)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

// pkceS256 is the S256 code challenge of a verifier.
func pkceS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validPKCEValue checks RFC 7636's length and alphabet for verifiers and challenges.
func validPKCEValue(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}

func (s *Sim) grantAuthorizationCode(app fixture.App, form url.Values) (*tokenResponse, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, badRequest("invalid_request", "code is required")
	}
	now := s.now()
	st := &s.idp
	st.mu.Lock()
	ac := st.codes[code]
	if ac != nil && ac.grant.ClientID == app.ClientID {
		delete(st.codes, code) // single use, even when the rest of the request fails
	}
	st.mu.Unlock()
	switch {
	case ac == nil || ac.grant.ClientID != app.ClientID:
		return nil, badRequest("invalid_grant", "the authorization code is invalid or was already used")
	case !now.Before(ac.expires):
		return nil, badRequest("invalid_grant", "the authorization code has expired")
	case form.Get("redirect_uri") != ac.redirectURI:
		return nil, badRequest("invalid_grant", "redirect_uri does not match the authorization request")
	}
	verifier := form.Get("code_verifier")
	switch {
	case ac.challenge == "" && verifier != "":
		return nil, badRequest("invalid_grant", "code_verifier sent but the authorization request had no code_challenge")
	case ac.challenge != "" && verifier == "":
		return nil, badRequest("invalid_grant", "code_verifier is required")
	case ac.challenge != "" && (!validPKCEValue(verifier) ||
		subtle.ConstantTimeCompare([]byte(pkceS256(verifier)), []byte(ac.challenge)) != 1):
		return nil, badRequest("invalid_grant", "code_verifier does not match the code_challenge")
	}
	if ac.grant.SID != "" {
		st.mu.Lock()
		if st.clients[ac.grant.SID] == nil {
			st.clients[ac.grant.SID] = map[string]bool{}
		}
		st.clients[ac.grant.SID][app.ClientID] = true
		st.mu.Unlock()
	}
	return s.issueUserTokens(app, ac.grant, ac.grant.Scopes, ac.nonce, now, true)
}

func (s *Sim) grantRefreshToken(app fixture.App, form url.Values) (*tokenResponse, *oauthError) {
	rt := form.Get("refresh_token")
	if rt == "" {
		return nil, badRequest("invalid_request", "refresh_token is required")
	}
	now := s.now()
	st := &s.idp
	st.mu.Lock()
	switch st.refreshFailure {
	case "":
	case "temporarily_unavailable", "server_error":
		code := st.refreshFailure
		st.mu.Unlock()
		return nil, &oauthError{status: http.StatusServiceUnavailable, code: code, desc: "the identity server cannot refresh tokens right now"}
	default:
		code := st.refreshFailure
		st.mu.Unlock()
		return nil, badRequest(code, "the refresh token was revoked")
	}
	rg := st.refresh[rt]
	if rg == nil || rg.grant.ClientID != app.ClientID {
		st.mu.Unlock()
		return nil, badRequest("invalid_grant", "the refresh token is invalid, expired or was already used")
	}
	if !now.Before(rg.expires) {
		delete(st.refresh, rt)
		st.mu.Unlock()
		return nil, badRequest("invalid_grant", "the refresh token has expired")
	}
	scopes := rg.grant.Scopes
	if req := strings.Fields(form.Get("scope")); len(req) > 0 {
		for _, sc := range req {
			if !slices.Contains(rg.grant.Scopes, sc) {
				st.mu.Unlock()
				return nil, badRequest("invalid_scope", "scope "+sc+" was not granted to this refresh token")
			}
		}
		scopes = dedupe(req)
	}
	delete(st.refresh, rt) // rotation: the presented token is spent
	st.mu.Unlock()
	resp, oerr := s.issueUserTokens(app, rg.grant, scopes, "", now, false)
	if oerr != nil {
		return nil, oerr
	}
	// The new refresh token keeps the original grant and absolute expiry.
	resp.RefreshToken = s.storeRefresh(rg.grant, rg.expires)
	return resp, nil
}

// issueUserTokens mints the access token, the id_token (openid) and, for a
// code exchange with offline_access, a refresh token.
func (s *Sim) issueUserTokens(app fixture.App, g userGrant, scopes []string, nonce string, now time.Time, newRefresh bool) (*tokenResponse, *oauthError) {
	g.Scopes = scopes
	at, err := s.mintUserAccess(g, now)
	if err != nil {
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "could not sign the token"}
	}
	resp := &tokenResponse{AccessToken: at.token, ExpiresIn: int(s.tokenLifetime().Seconds()), TokenType: "Bearer", Scope: strings.Join(scopes, " ")}
	if slices.Contains(scopes, scopeOpenID) {
		if resp.IDToken, err = s.mintIDToken(g, nonce, at.token, "", "", now); err != nil {
			return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "could not sign the id_token"}
		}
	}
	if newRefresh && slices.Contains(scopes, scopeOfflineAccess) {
		life := refreshLifetimeConfidential
		if app.ClientType == "Public" {
			life = refreshLifetimePublic
		}
		resp.RefreshToken = s.storeRefresh(g, now.Add(life))
	}
	return resp, nil
}

func (s *Sim) storeRefresh(g userGrant, expires time.Time) string {
	h := randomToken()
	st := &s.idp
	st.mu.Lock()
	defer st.mu.Unlock()
	st.refresh[h] = &refreshGrant{grant: g, expires: expires}
	return h
}

func (s *Sim) grantClientCredentials(app fixture.App, form url.Values) (*tokenResponse, *oauthError) {
	if !app.SystemUserAllowed || app.SystemUserLogin == "" {
		return nil, badRequest("unauthorized_client", "the application may not use client credentials (SystemUserAllowed is off)")
	}
	sys, ok := s.user(app.SystemUserLogin)
	if !ok || !sys.Active {
		return nil, badRequest("unauthorized_client", "the application's SystemUser is missing or inactive")
	}
	appScopes := strings.Fields(app.Scope)
	scopes := appScopes
	if req := strings.Fields(form.Get("scope")); len(req) > 0 {
		for _, sc := range req {
			if !slices.Contains(appScopes, sc) && sc != scopeDomainAPI {
				return nil, badRequest("invalid_scope", "scope "+sc+" is not allowed for this application")
			}
		}
		scopes = dedupe(req)
	}
	now := s.now()
	at, err := s.mintServiceAccess(app, sys, scopes, now)
	if err != nil {
		return nil, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "could not sign the token"}
	}
	return &tokenResponse{AccessToken: at.token, ExpiresIn: int(s.tokenLifetime().Seconds()), TokenType: "Bearer", Scope: strings.Join(scopes, " ")}, nil
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// handleUserinfo returns the signed-in user's claims for a user access token with openid.
func (s *Sim) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", "Bearer")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	claims, err := s.tokCache.verify(s, raw)
	if err != nil {
		writeInvalidToken(w)
		return
	}
	meta := metaFrom(r.Context())
	meta.clientID, meta.login = claims.ClientID, claims.login()
	u, found := s.user(claims.Subject)
	if claims.isService() || !found || !slices.Contains(claims.Scope, scopeOpenID) {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	out := map[string]any{"sub": u.Login}
	if slices.Contains(claims.Scope, scopeProfile) {
		for k, v := range profileClaims(u) {
			out[k] = v
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}
