package session

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
)

// Handler serves the session endpoints under Prefix.
func (m *Manager) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+m.paths.Login, m.handleLogin)
	mux.HandleFunc("GET "+m.paths.Callback, m.handleCallback)
	mux.HandleFunc("POST "+m.paths.Callback, m.handleCallback) // response_mode=form_post
	mux.HandleFunc("GET "+m.paths.User, m.handleUser)
	mux.HandleFunc("POST "+m.paths.Logout, m.handleLogout)
	mux.HandleFunc("POST "+m.paths.BackChannelLogout, m.handleBackChannelLogout)
	mux.HandleFunc(m.cfg.Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		m.writeError(w, r, &Error{Status: http.StatusNotFound, Code: errcode.NotFound, Reason: "route", Msg: "no such endpoint (or wrong method)"})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		mux.ServeHTTP(w, r)
	})
}

// pendingLogin is what the login cookie carries (sealed) across the round
// trip to the identity server.
type pendingLogin struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	ReturnTo string    `json:"r"`
	Expires  time.Time `json:"e"`
}

const loginAD = "erpgraph-login"

// localPath reports whether p is a path on this origin: one leading slash,
// no scheme or host (not //evil or /\evil, which browsers read as hosts), no
// control characters.
func localPath(p string) bool {
	if p == "" || p[0] != '/' || len(p) > 2048 || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil
}

func (m *Manager) handleLogin(w http.ResponseWriter, r *http.Request) {
	// The login cookie must be set on the host the callback comes back to
	// (localhost and 127.0.0.1 are different sites to a browser): start
	// over on the public URL first. Only between loopback names: behind a
	// proxy that rewrites Host, redirecting would loop.
	if pu, err := url.Parse(m.cfg.PublicURL); err == nil && !strings.EqualFold(r.Host, pu.Host) && loopbackHost(r.Host) && loopbackHost(pu.Host) {
		http.Redirect(w, r, m.cfg.PublicURL+m.paths.Login+"?"+r.URL.RawQuery, http.StatusFound)
		return
	}
	returnTo := r.URL.Query().Get("returnTo")
	if returnTo == "" {
		returnTo = "/"
	}
	if !localPath(returnTo) {
		m.auditRequest(r, "session login refused", slog.String("reason", "return_to"))
		m.writeError(w, r, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Reason: "return_to", Msg: "returnTo must be a local path such as /orders"})
		return
	}
	pl := pendingLogin{State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo,
		Expires: m.now().Add(loginLifetime)}
	raw, _ := json.Marshal(pl)
	http.SetCookie(w, &http.Cookie{
		Name: m.loginCookie(pl.State), Value: b64(m.cfg.Keys.Seal(raw, []byte(loginAD))), Path: "/",
		MaxAge: int(loginLifetime.Seconds()), HttpOnly: true, Secure: m.secure, SameSite: m.loginSameSite(),
	})
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(pl.Verifier),
		oauth2.SetAuthURLParam("nonce", pl.Nonce), oauth2.SetAuthURLParam("response_mode", m.cfg.ResponseMode)}
	if p := r.URL.Query().Get("prompt"); p == "login" || p == "none" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", p))
	}
	http.Redirect(w, r, m.oauth.AuthCodeURL(pl.State, opts...), http.StatusFound)
}

// loopbackHost reports whether host[:port] names this machine.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// loginCookie names one pending login, so sign-ins started in two tabs do
// not overwrite each other.
func (m *Manager) loginCookie(state string) string { return m.loginPfx + keyOf(state)[:16] }

// loginSameSite: form_post arrives as a cross-site POST from the identity
// server, which carries only SameSite=None cookies (those must be Secure).
func (m *Manager) loginSameSite() http.SameSite {
	if m.cfg.ResponseMode == "form_post" && m.secure {
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

func (m *Manager) handleCallback(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/x-www-form-urlencoded" {
			m.loginFailed(w, r, "content_type", nil)
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		m.loginFailed(w, r, "malformed", err)
		return
	}
	form := r.Form
	if r.Method == http.MethodPost {
		form = r.PostForm // form_post: the response is the body, never the URL
	}
	state := form.Get("state")
	if state == "" || len(state) > 128 {
		m.loginFailed(w, r, "state", errors.New("no state"))
		return
	}
	name := m.loginCookie(state)
	c, err := r.Cookie(name)
	if err != nil {
		m.loginFailed(w, r, "state", errors.New("no pending sign-in for this state in this browser"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: m.secure, SameSite: m.loginSameSite()})
	var pl pendingLogin
	sealed, err := unb64(c.Value)
	if err == nil {
		var raw []byte
		if raw, err = m.cfg.Keys.Open(sealed, []byte(loginAD)); err == nil {
			err = json.Unmarshal(raw, &pl)
		}
	}
	switch {
	case err != nil:
		m.loginFailed(w, r, "state", err)
		return
	case subtle.ConstantTimeCompare([]byte(pl.State), []byte(state)) != 1:
		m.loginFailed(w, r, "state", errors.New("state does not match the pending sign-in"))
		return
	case !m.now().Before(pl.Expires):
		m.loginFailed(w, r, "state_expired", errors.New("the sign-in took too long"))
		return
	}
	if iss := form.Get("iss"); iss != "" && iss != m.cfg.Provider.Issuer { // RFC 9207 mix-up defence
		m.loginFailed(w, r, "issuer", errors.New("authorization response from another issuer"))
		return
	}
	if e := form.Get("error"); e != "" {
		m.loginFailed(w, r, "idp_"+sanitize(e), errors.New(form.Get("error_description")))
		return
	}
	code := form.Get("code")
	if code == "" {
		m.loginFailed(w, r, "code", errors.New("no code"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*callTimeout)
	defer cancel()
	tok, err := m.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, m.cfg.HTTPClient), code, oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		m.loginFailed(w, r, "code_exchange", err)
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := m.cfg.Verifier.VerifyIDToken(ctx, rawID, m.cfg.ClientID, pl.Nonce)
	if err != nil {
		m.loginFailed(w, r, "id_token_"+string(auth.ReasonOf(err)), err)
		return
	}
	u, err := m.cfg.Verifier.Verify(ctx, tok.AccessToken)
	if err != nil {
		m.loginFailed(w, r, "access_token_"+string(auth.ReasonOf(err)), err)
		return
	}
	if u.Subject != idt.Subject {
		m.loginFailed(w, r, "subject", errors.New("id_token and access token name different users"))
		return
	}
	// A fresh id on every sign-in: whatever cookie the browser had (even
	// one an attacker planted) names nothing afterwards.
	if old, err := r.Cookie(m.cookie); err == nil && len(old.Value) == 43 {
		_ = m.cfg.Store.Delete(ctx, keyOf(old.Value))
	}
	id := randomID()
	now := m.now()
	s := &Session{Key: keyOf(id), User: *u, SID: idt.SessionID, CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(m.cfg.Lifetime)}
	if tok.RefreshToken != "" {
		s.RefreshToken = m.cfg.Keys.Seal([]byte(tok.RefreshToken), []byte(s.Key))
	}
	s.IDToken = m.cfg.Keys.Seal([]byte(rawID), []byte(s.Key))
	if err := m.cfg.Store.Create(ctx, s); err != nil {
		m.log.ErrorContext(ctx, "session: store", "err", err)
		m.writeError(w, r, &Error{Status: http.StatusServiceUnavailable, Code: CodeUpstreamUnavailable, Reason: "store", Msg: "sessions are unavailable right now", Err: err})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: m.cookie, Value: id, Path: "/", HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode})
	m.audit(r.Context(), "session login", s, slog.String("client_ip", m.cfg.ClientIP(r)), slog.String("user_type", u.UserType),
		slog.Bool("refresh_token", tok.RefreshToken != ""), slog.Time("expires_at", s.ExpiresAt))
	m.cfg.OnEvent("created")
	http.Redirect(w, r, pl.ReturnTo, http.StatusSeeOther)
}

// sanitize keeps an identity-server error code fit for a log field.
func sanitize(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

func (m *Manager) loginFailed(w http.ResponseWriter, r *http.Request, reason string, err error) {
	m.log.InfoContext(r.Context(), "session: sign-in failed", "reason", reason, "err", err, "request_id", m.cfg.RequestID(r.Context()))
	m.auditRequest(r, "session login refused", slog.String("reason", reason))
	m.writeError(w, r, &Error{Status: http.StatusBadRequest, Code: CodeLoginFailed, Reason: reason,
		Msg: "the sign-in did not complete; start again"})
}

// userInfo is the answer of the user endpoint.
type userInfo struct {
	Name             string    `json:"name"`
	Login            string    `json:"login"`
	UserType         string    `json:"userType"`
	Email            string    `json:"email,omitempty"`
	SessionExpiresAt time.Time `json:"sessionExpiresAt"`
	// LogoutURL signs out without the CSRF header (a form POST from the page):
	// the sid parameter proves the request came from a page that read this answer.
	LogoutURL string `json:"logoutUrl"`
	// Features of this erpgraph the frontend may offer (Config.Features).
	Features map[string]bool `json:"features"`
}

func (m *Manager) handleUser(w http.ResponseWriter, r *http.Request) {
	if !m.hasCSRFHeader(r) {
		m.refuse(w, r, m.csrfError())
		return
	}
	c, err := r.Cookie(m.cookie)
	if err != nil {
		m.refuse(w, r, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Reason: "no_session", Msg: "not signed in"})
		return
	}
	s, serr := m.load(r.Context(), c.Value)
	if serr != nil {
		if serr.Code == CodeUnauthenticated {
			m.clearCookie(w)
		}
		m.refuse(w, r, serr)
		return
	}
	writeJSON(w, http.StatusOK, userInfo{Name: s.User.Name, Login: s.User.Subject, UserType: s.User.UserType, Email: s.User.Email,
		SessionExpiresAt: s.ends(m.cfg.IdleTimeout).UTC(), LogoutURL: m.paths.Logout + "?" + url.Values{"sid": {m.logoutSID(s)}}.Encode(), Features: m.features()})
}

func (m *Manager) features() map[string]bool {
	if m.cfg.Features == nil {
		return map[string]bool{}
	}
	return m.cfg.Features
}

// logoutSID is the value the logout endpoint takes instead of the CSRF
// header: the identity server's sid (as Duende BFF does), or a value derived
// from the session key when the identity server sends none.
func (m *Manager) logoutSID(s *Session) string {
	if s.SID != "" {
		return s.SID
	}
	return s.Key[:32]
}

func (m *Manager) csrfError() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeCSRFHeaderMissing, Reason: "csrf",
		Msg: "this request must carry the " + strings.Join(m.cfg.CSRFHeaders, " or ") + " header (X-CSRF: 1)"}
}

func (m *Manager) handleLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	_ = r.ParseForm()
	var s *Session
	if c, err := r.Cookie(m.cookie); err == nil && len(c.Value) == 43 {
		s, _ = m.cfg.Store.Get(r.Context(), keyOf(c.Value))
	}
	if !m.hasCSRFHeader(r) {
		sid := r.Form.Get("sid")
		if s == nil || sid == "" || subtle.ConstantTimeCompare([]byte(sid), []byte(m.logoutSID(s))) != 1 {
			m.refuse(w, r, m.csrfError())
			return
		}
	}
	m.clearCookie(w)
	target := m.cfg.PostLogoutRedirectURL
	if s != nil {
		_ = m.cfg.Store.Delete(r.Context(), s.Key)
		m.revoke(r.Context(), s)
		if ep := m.cfg.Provider.EndSessionEndpoint; ep != "" {
			q := url.Values{"post_logout_redirect_uri": {m.cfg.PostLogoutRedirectURL}}
			if idt, err := m.cfg.Keys.Open(s.IDToken, []byte(s.Key)); err == nil {
				q.Set("id_token_hint", string(idt))
			}
			target = withQuery(ep, q)
		}
		m.audit(r.Context(), "session ended", s, slog.String("reason", "logout"), slog.String("client_ip", m.cfg.ClientIP(r)))
		m.cfg.OnEvent("ended")
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"endSessionUrl": target})
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// revoke revokes the session's refresh token at the identity server (RFC
// 7009) when it has a revocation endpoint. Failures are logged: the session
// is ended here either way, and end-session ends the grant too.
func (m *Manager) revoke(ctx context.Context, s *Session) {
	ep := m.cfg.Provider.RevocationEndpoint
	if ep == "" || len(s.RefreshToken) == 0 {
		return
	}
	rt, err := m.cfg.Keys.Open(s.RefreshToken, []byte(s.Key))
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	form := url.Values{"token": {string(rt)}, "token_type_hint": {"refresh_token"}, "client_id": {m.cfg.ClientID}, "client_secret": {m.cfg.ClientSecret}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := m.cfg.HTTPClient.Do(req)
	if err != nil {
		m.log.WarnContext(ctx, "session: refresh-token revocation failed", "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		m.log.WarnContext(ctx, "session: refresh-token revocation refused", "status", resp.StatusCode)
	}
}

func (m *Manager) handleBackChannelLogout(w http.ResponseWriter, r *http.Request) {
	bad := func(reason, desc string, err error) {
		m.log.InfoContext(r.Context(), "session: back-channel logout refused", "reason", reason, "err", err)
		m.auditRequest(r, "session back-channel logout refused", slog.String("reason", reason))
		// Back-Channel Logout 1.0 §2.8: 400 with an OAuth-style error body.
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": desc})
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if ct != "application/x-www-form-urlencoded" || r.ParseForm() != nil {
		bad("malformed", "expected a form with logout_token", nil)
		return
	}
	lt, err := m.cfg.Verifier.VerifyLogoutToken(r.Context(), r.PostForm.Get("logout_token"), m.cfg.ClientID)
	if err != nil {
		bad("logout_token_"+string(auth.ReasonOf(err)), "the logout_token is invalid", err)
		return
	}
	ended, err := m.cfg.Store.DeleteMatching(r.Context(), lt.Subject, lt.SessionID)
	if err != nil {
		m.log.ErrorContext(r.Context(), "session: store", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	if len(ended) == 0 {
		bad("no_session", "no session matches the logout_token", nil)
		return
	}
	for _, s := range ended {
		m.audit(r.Context(), "session ended", s, slog.String("reason", "backchannel_logout"))
		m.cfg.OnEvent("ended")
	}
	w.WriteHeader(http.StatusOK)
}

func (m *Manager) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: m.cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteLaxMode})
}

// refuse answers a refused request and audits it.
func (m *Manager) refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	m.auditRequest(r, "session request refused", slog.String("path", r.URL.Path), slog.String("reason", e.Reason), slog.String("code", e.Code))
	m.writeError(w, r, e)
}

func (m *Manager) auditRequest(r *http.Request, msg string, attrs ...slog.Attr) {
	if m.cfg.Audit == nil {
		return
	}
	base := []slog.Attr{slog.String("request_id", m.cfg.RequestID(r.Context())), slog.String("client_ip", m.cfg.ClientIP(r))}
	m.cfg.Audit.LogAttrs(r.Context(), slog.LevelInfo, msg, append(base, attrs...)...)
}

// writeError answers in the GraphQL error shape the rest of erpgraph uses,
// or, for a browser navigation (login, callback, a logout form), a small page.
func (m *Manager) writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Cookie realm="erpgraph"`)
	}
	if !wantsJSON(r) && (r.URL.Path == m.paths.Login || r.URL.Path == m.paths.Callback || r.URL.Path == m.paths.Logout) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		w.WriteHeader(e.Status)
		_ = errorPage.Execute(w, map[string]string{"Code": e.Code, "Message": e.Msg, "Login": m.paths.Login})
		return
	}
	body := map[string]any{"errors": []map[string]any{{"message": e.Msg,
		"extensions": map[string]string{"code": e.Code, "requestId": m.cfg.RequestID(r.Context())}}}}
	writeJSON(w, e.Status, body)
}

var errorPage = template.Must(template.New("e").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in problem</title></head>
<body><h1>Sign-in problem</h1><p>{{.Message}}</p><p><code>{{.Code}}</code></p><p><a href="{{.Login}}">Sign in again</a></p></body></html>`))

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func withQuery(u string, q url.Values) string {
	if strings.Contains(u, "?") {
		return u + "&" + q.Encode()
	}
	return u + "?" + q.Encode()
}
