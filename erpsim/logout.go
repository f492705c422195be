package erpsim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// backChannelEvent is the events member that marks a logout_token
// (OpenID Connect Back-Channel Logout 1.0 §2.4).
const backChannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// backChannelTimeout bounds one back-channel logout delivery; a relying party
// that does not answer must not hold the user's sign-out.
const backChannelTimeout = 5 * time.Second

// handleRevocation is RFC 7009 token revocation: a client revokes one of its
// own refresh tokens (or access tokens, by their jti). The answer is 200
// whether or not the token was valid, as the RFC says, so it reveals nothing.
func (s *Sim) handleRevocation(w http.ResponseWriter, r *http.Request) {
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
	meta := metaFrom(r.Context())
	meta.clientID = app.ClientID
	tok := r.PostForm.Get("token")
	if tok == "" {
		badRequest("invalid_request", "token is required").write(w)
		return
	}
	hint := r.PostForm.Get("token_type_hint")
	if hint != "" && hint != "refresh_token" && hint != "access_token" {
		badRequest("unsupported_token_type", "token_type_hint must be refresh_token or access_token").write(w)
		return
	}
	st := &s.idp
	st.mu.Lock()
	if rg := st.refresh[tok]; rg != nil && rg.grant.ClientID == app.ClientID {
		delete(st.refresh, tok)
	}
	st.mu.Unlock()
	if strings.Count(tok, ".") == 2 {
		if c, err := s.verifyAccess(tok); err == nil && c.ClientID == app.ClientID {
			st.mu.Lock()
			delete(st.issued, c.JTI) // an unknown jti counts as revoked, also for cached verifications
			st.mu.Unlock()
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// LogoutToken signs a logout_token for clientID about the user sub in the
// identity-server session sid (either may be empty, not both), exactly as
// end-session sends it. Tests use it to call a relying party's back-channel
// logout endpoint directly.
func (s *Sim) LogoutToken(clientID, sub, sid string) (string, error) {
	if sub == "" && sid == "" {
		return "", fmt.Errorf("erpsim: logout token: sub or sid is required")
	}
	now := s.now()
	claims := map[string]any{
		"iss": s.IdentityURL(), "aud": clientID, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(2 * time.Minute).Unix(), "jti": randomHex(16),
		"events": map[string]any{backChannelEvent: map[string]any{}},
	}
	if sub != "" {
		claims["sub"] = sub
	}
	if sid != "" {
		claims["sid"] = sid
	}
	return s.keys.sign("logout+jwt", claims)
}

// EndSession ends the identity-server session sid as end-session does: its
// refresh tokens and Domain API session end, and every application that
// signed a user in through it and registered a back-channel logout URI is
// told so. It returns when those notifications were answered (or timed out).
func (s *Sim) EndSession(ctx context.Context, sid string) {
	if sid == "" {
		return
	}
	st := &s.idp
	st.mu.Lock()
	var sub string
	for h, rg := range st.refresh {
		if rg.grant.SID == sid {
			sub = rg.grant.User.Login
			delete(st.refresh, h)
		}
	}
	for h, sso := range st.sso {
		if sso.sid == sid {
			sub = sso.user.Login
			delete(st.sso, h)
		}
	}
	clients := st.clients[sid]
	delete(st.clients, sid)
	st.mu.Unlock()
	s.sessions.end("sid:" + sid)
	for id := range clients {
		app, ok := s.apps[id]
		if !ok || app.BackChannelLogoutURI == "" {
			continue
		}
		s.sendBackChannelLogout(ctx, app.ClientID, app.BackChannelLogoutURI, sub, sid)
	}
}

// sendBackChannelLogout posts a logout_token to a relying party (§2.5). A
// failure is logged: the user is signed out at the identity server anyway.
func (s *Sim) sendBackChannelLogout(ctx context.Context, clientID, uri, sub, sid string) {
	tok, err := s.LogoutToken(clientID, sub, sid)
	if err != nil {
		s.log.Warn("erpsim: back-channel logout: sign", "client_id", clientID, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backChannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		s.log.Warn("erpsim: back-channel logout: request", "client_id", clientID, "err", err)
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := flowClient.Do(req)
	if err != nil {
		s.log.Warn("erpsim: back-channel logout not delivered", "client_id", clientID, "uri", uri, "err", err)
		return
	}
	defer resp.Body.Close()
	var body json.RawMessage
	_ = json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 4<<10)).Decode(&body)
	s.log.Debug("erpsim: back-channel logout delivered", "client_id", clientID, "uri", uri, "status", resp.StatusCode)
}
