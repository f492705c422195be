package erpsim

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// authorizeParams are the request parameters the login form carries along.
var authorizeParams = []string{
	"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "prompt", "login_hint", "ui_locales",
}

// authzRequest is a validated authorization request.
type authzRequest struct {
	app          fixture.App
	redirectURI  string
	hybrid       bool // response_type "code id_token"
	responseMode string
	scopes       []string
	state        string
	nonce        string
	challenge    string
	params       url.Values // the original parameters, for the login form
}

// authzError is a refused authorization request. Errors found before the
// client and redirect URI are trusted are shown on an error page; later ones
// go back to the client's redirect URI.
type authzError struct {
	redirect bool
	code     string
	desc     string
}

// parseAuthorize validates an authorization request (docs/erpnet.md § Identity server, OIDC core).
func (s *Sim) parseAuthorize(v url.Values) (*authzRequest, *authzError) {
	app, ok := s.apps[v.Get("client_id")]
	if !ok {
		return nil, &authzError{code: "invalid_client", desc: "Unknown client_id."}
	}
	if !app.IsEnabled {
		return nil, &authzError{code: "unauthorized_client", desc: "The application is disabled."}
	}
	ru := v.Get("redirect_uri")
	// Exact, case-sensitive match against ImpersonateLoginUrl (or, for
	// LoopbackAnyPort, a loopback one on another port); never redirect elsewhere.
	if ru == "" || !registered(app.RedirectURIs, ru, app.LoopbackAnyPort) {
		return nil, &authzError{code: "invalid_redirect_uri", desc: "redirect_uri is not registered for this application."}
	}
	req := &authzRequest{app: app, redirectURI: ru, state: v.Get("state"), nonce: v.Get("nonce"), params: url.Values{}}
	for _, p := range authorizeParams {
		if x := v.Get(p); x != "" {
			req.params.Set(p, x)
		}
	}
	rt := strings.Fields(v.Get("response_type"))
	sort.Strings(rt)
	switch strings.Join(rt, " ") {
	case "code":
	case "code id_token":
		req.hybrid = true
	default:
		req.responseMode = "query"
		return req, &authzError{redirect: true, code: "unsupported_response_type", desc: "response_type must be code or \"code id_token\"."}
	}
	switch rm := v.Get("response_mode"); {
	case rm == "" && req.hybrid:
		req.responseMode = "fragment"
	case rm == "":
		req.responseMode = "query"
	case rm == "query" && req.hybrid:
		req.responseMode = "fragment"
		return req, &authzError{redirect: true, code: "invalid_request", desc: "response_mode query is not allowed with an id_token in the response."}
	case rm == "query" || rm == "fragment" || rm == "form_post":
		req.responseMode = rm
	default:
		req.responseMode = "query"
		if req.hybrid {
			req.responseMode = "fragment"
		}
		return req, &authzError{redirect: true, code: "invalid_request", desc: "Unsupported response_mode."}
	}
	scopes := dedupe(strings.Fields(v.Get("scope")))
	if len(scopes) == 0 {
		return req, &authzError{redirect: true, code: "invalid_scope", desc: "scope is required."}
	}
	appScopes := strings.Fields(app.Scope)
	for _, sc := range scopes {
		if !slices.Contains(protocolScopes, sc) && !slices.Contains(appScopes, sc) && sc != scopeDomainAPI {
			return req, &authzError{redirect: true, code: "invalid_scope", desc: "Scope " + sc + " is not allowed for this application."}
		}
	}
	req.scopes = scopes
	if req.hybrid && (!slices.Contains(scopes, scopeOpenID) || req.nonce == "") {
		return req, &authzError{redirect: true, code: "invalid_request", desc: "response_type \"code id_token\" needs the openid scope and a nonce."}
	}
	req.challenge = v.Get("code_challenge")
	method := v.Get("code_challenge_method")
	switch {
	case req.challenge == "" && app.ClientType == "Public":
		return req, &authzError{redirect: true, code: "invalid_request", desc: "code_challenge is required for public clients."}
	case req.challenge == "" && method != "":
		return req, &authzError{redirect: true, code: "invalid_request", desc: "code_challenge_method without code_challenge."}
	case req.challenge != "" && method != "S256":
		return req, &authzError{redirect: true, code: "invalid_request", desc: "code_challenge_method must be S256."}
	case req.challenge != "" && !validPKCEValue(req.challenge):
		return req, &authzError{redirect: true, code: "invalid_request", desc: "Malformed code_challenge."}
	}
	return req, nil
}

// handleAuthorize answers a valid authorization request: silently when the
// browser has a single-sign-on session whose user may use the application
// (unless prompt=login), with login_required for prompt=none without one,
// and with the login page otherwise.
func (s *Sim) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	req, ok := s.readAuthorize(w, r)
	if !ok {
		return
	}
	prompt := strings.Fields(r.Form.Get("prompt"))
	if !slices.Contains(prompt, "login") {
		if sso, ok := s.ssoSession(r); ok && signInRefusal(req.app, sso.user) == "" {
			s.completeAuthorize(w, req, sso)
			return
		}
	}
	if slices.Contains(prompt, "none") {
		s.respondError(w, req, "login_required", "The user must sign in.")
		return
	}
	s.loginPage(w, http.StatusOK, req, r.Form.Get("login_hint"), "")
}

// readAuthorize parses and validates the authorization request in r (query
// or form); when it is refused, the refusal has been answered.
func (s *Sim) readAuthorize(w http.ResponseWriter, r *http.Request) (*authzRequest, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Malformed request.")
		return nil, false
	}
	req, aerr := s.parseAuthorize(r.Form)
	switch {
	case aerr == nil:
		return req, true
	case !aerr.redirect:
		s.errorPage(w, http.StatusBadRequest, aerr.code, aerr.desc)
	default:
		s.respondError(w, req, aerr.code, aerr.desc)
	}
	return nil, false
}

// respondError sends an authorization error, with the request's state, to the client.
func (s *Sim) respondError(w http.ResponseWriter, req *authzRequest, code, desc string) {
	out := url.Values{"error": {code}, "error_description": {desc}}
	if req.state != "" {
		out.Set("state", req.state)
	}
	s.respond(w, req, out)
}

// handleLogin checks the login form and completes the authorization request.
func (s *Sim) handleLogin(w http.ResponseWriter, r *http.Request) {
	req, ok := s.readAuthorize(w, r)
	if !ok {
		return
	}
	login := strings.TrimSpace(r.PostForm.Get("login"))
	u, ok := s.user(login)
	if !ok || u.Password == "" || r.PostForm.Get("password") != u.Password {
		s.loginPage(w, http.StatusUnauthorized, req, login, "Invalid login or password.")
		return
	}
	if msg := signInRefusal(req.app, u); msg != "" {
		s.loginPage(w, http.StatusForbidden, req, login, msg)
		return
	}
	sso := s.startSSO(w, u)
	s.completeAuthorize(w, req, sso)
}

// completeAuthorize issues the authorization code (and the front-channel
// id_token of the hybrid flow) for the signed-in user.
func (s *Sim) completeAuthorize(w http.ResponseWriter, req *authzRequest, sso ssoSession) {
	now := s.now()
	g := userGrant{ClientID: req.app.ClientID, User: sso.user, Scopes: req.scopes, SID: sso.sid, AuthTime: sso.authTime}
	code := randomToken()
	st := &s.idp
	st.mu.Lock()
	if len(st.codes) >= maxPendingCodes {
		// Codes nobody redeemed would pile up in long runs: drop the expired ones.
		for c, ac := range st.codes {
			if !now.Before(ac.expires) {
				delete(st.codes, c)
			}
		}
	}
	st.codes[code] = &authCode{grant: g, redirectURI: req.redirectURI, nonce: req.nonce, challenge: req.challenge, expires: now.Add(codeLifetime)}
	st.mu.Unlock()

	out := url.Values{"code": {code}, "scope": {strings.Join(req.scopes, " ")}, "session_state": {g.SID}}
	if req.state != "" {
		out.Set("state", req.state)
	}
	if req.hybrid {
		idt, err := s.mintIDToken(g, req.nonce, "", code, req.state, now)
		if err != nil {
			s.errorPage(w, http.StatusInternalServerError, "server_error", "Could not sign the id_token.")
			return
		}
		out.Set("id_token", idt)
	}
	s.respond(w, req, out)
}

// signInRefusal says why the user may not sign in to this application, or "".
func signInRefusal(app fixture.App, u fixture.User) string {
	switch {
	case !u.Active:
		return "This account is disabled."
	case u.UserType == fixture.SystemUserNoLogin:
		return "This account cannot sign in interactively."
	case u.UserType == fixture.InternalUser && !app.ImpersonateAsInternalUserAllowed:
		return "This application does not accept internal users."
	case u.UserType == fixture.ExternalCommunityUser && !app.ImpersonateAsCommunityUserAllowed:
		return "This application does not accept external (community) users."
	}
	return ""
}

// respond delivers an authorization response (or error) to the client's
// redirect URI in the requested response mode.
func (s *Sim) respond(w http.ResponseWriter, req *authzRequest, params url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	switch req.responseMode {
	case "form_post":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_ = formPostTmpl.Execute(w, formPostData{Action: req.redirectURI, Fields: params})
	case "fragment":
		w.Header().Set("Location", req.redirectURI+"#"+params.Encode())
		w.WriteHeader(http.StatusFound)
	default:
		w.Header().Set("Location", withQuery(req.redirectURI, params))
		w.WriteHeader(http.StatusFound)
	}
}

// withQuery appends params to a URL that may already have a query.
func withQuery(u string, params url.Values) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + params.Encode()
}

// handleEndSession signs the user out: their refresh tokens and Domain API
// session end, and the applications they signed in to get a back-channel
// logout. A registered post_logout_redirect_uri is honoured when the
// id_token_hint names the application.
func (s *Sim) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "invalid_request", "Malformed request.")
		return
	}
	var hint struct {
		Aud audience `json:"aud"`
		SID string   `json:"sid"`
	}
	if raw := r.Form.Get("id_token_hint"); raw != "" {
		// Expired hints are normal at logout; only the signature matters.
		typ, payload, err := s.keys.verify(raw)
		if err != nil || typ != "JWT" || json.Unmarshal(payload, &hint) != nil {
			s.errorPage(w, http.StatusBadRequest, "invalid_request", "id_token_hint is not an id_token of this identity server.")
			return
		}
	}
	sids := []string{hint.SID}
	if sso, ok := s.ssoSession(r); ok {
		sids = append(sids, sso.sid)
	}
	s.endSSO(w, r)
	for _, sid := range sids {
		s.EndSession(r.Context(), sid) // back-channel logout to the session's applications
	}
	if pl := r.Form.Get("post_logout_redirect_uri"); pl != "" {
		var app fixture.App
		if len(hint.Aud) == 1 {
			app = s.apps[hint.Aud[0]]
		}
		if !registered(app.PostLogoutRedirectURIs, pl, app.LoopbackAnyPort) {
			s.errorPage(w, http.StatusBadRequest, "invalid_request", "post_logout_redirect_uri is not registered for the application named by id_token_hint.")
			return
		}
		if st := r.Form.Get("state"); st != "" {
			pl = withQuery(pl, url.Values{"state": {st}})
		}
		w.Header().Set("Location", pl)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = signedOutTmpl.Execute(w, nil)
}

// pageHeaders forbid framing: ERP.net's login pages must be a popup or a top-level navigation.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
}

func (s *Sim) errorPage(w http.ResponseWriter, status int, code, desc string) {
	pageHeaders(w)
	w.WriteHeader(status)
	_ = errorTmpl.Execute(w, map[string]string{"Code": code, "Description": desc})
}

type loginUser struct {
	Login, Name, Type, Password string
	Allowed                     bool
	Refusal                     string
}

type loginData struct {
	App     string
	Action  string
	Fields  url.Values
	Login   string
	Error   string
	Users   []loginUser
	Portal  string // "portal.user001 … portal.user050" when erpsim generated portal users
	Scopes  string
	DBName  string
	BaseURL string
}

func (s *Sim) loginPage(w http.ResponseWriter, status int, req *authzRequest, login, errMsg string) {
	d := loginData{App: req.app.Name, Action: s.base + loginPath, Fields: req.params, Login: login, Error: errMsg,
		Scopes: strings.Join(req.scopes, " "), DBName: fixture.DBName, BaseURL: s.base}
	for _, u := range fixture.Users() {
		if u.Password == "" {
			continue
		}
		refusal := signInRefusal(req.app, u)
		d.Users = append(d.Users, loginUser{Login: u.Login, Name: u.Name, Type: u.UserType, Password: u.Password, Allowed: refusal == "", Refusal: refusal})
	}
	if n := s.opts.Users; n > 0 {
		d.Portal = fixture.GeneratedLogin(1) + " … " + fixture.GeneratedLogin(n)
	}
	pageHeaders(w)
	w.WriteHeader(status)
	_ = loginTmpl.Execute(w, d)
}

type formPostData struct {
	Action string
	Fields url.Values
}

const pageStyle = `<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left}
.err{color:#a00;font-weight:600}.muted{color:#777}input{padding:.35rem;margin:.2rem 0}button{padding:.4rem 1rem}</style>`

var loginTmpl = template.Must(template.Must(template.New("login").Parse(
	`{{define "fields"}}{{range $k, $vs := .}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}{{end}}`)).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · {{.DBName}}</title>` + pageStyle + `</head><body>
<h1>Sign in to {{.App}}</h1>
<p class="muted">erpsim identity server for database {{.DBName}} at {{.BaseURL}}. Requested scopes: {{.Scopes}}.</p>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{template "fields" .Fields}}
<label>Login<br><input name="login" value="{{.Login}}" autocomplete="username" required autofocus></label><br>
<label>Password<br><input name="password" type="password" autocomplete="current-password" required></label><br>
<button type="submit">Sign in</button>
</form>
<h2>Demo users</h2>
<table><tr><th>Login</th><th>Name</th><th>Type</th><th>Password</th><th>This application</th></tr>
{{range .Users}}<tr><td><code>{{.Login}}</code></td><td>{{.Name}}</td><td>{{.Type}}</td><td><code>{{.Password}}</code></td>
<td>{{if .Allowed}}<form method="post" action="{{$.Action}}">{{template "fields" $.Fields}}<input type="hidden" name="login" value="{{.Login}}"><input type="hidden" name="password" value="{{.Password}}"><button type="submit">Sign in as {{.Login}}</button></form>{{else}}<span class="muted">{{.Refusal}}</span>{{end}}</td></tr>
{{end}}</table>
{{if .Portal}}<p class="muted">Generated portal users (external, each with a customer of their own): {{.Portal}}, password <code>demo</code>.</p>{{end}}
</body></html>`))

var errorTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in error</title>` + pageStyle + `</head><body>
<h1>Sign-in error</h1><p class="err">{{.Code}}</p><p>{{.Description}}</p></body></html>`))

var formPostTmpl = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Submit this form</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="{{.Action}}">
{{range $k, $vs := .Fields}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<noscript><button type="submit">Continue</button></noscript>
</form></body></html>`))

var signedOutTmpl = template.Must(template.New("signed_out").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed out</title>` + pageStyle + `</head><body>
<h1>You are signed out</h1><p>You may close this window.</p></body></html>`))
