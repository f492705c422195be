package erpsim_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

func TestIdentity_RefreshRotationAndRevocation(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok := mustLogin(t, s, fixture.BFFClientID, fixture.OwnerLogin, "openid", "profile", "offline_access")
	next := refresh(t, s, fixture.BFFClientID, fixture.BFFSecret, tok.RefreshToken)
	if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh did not rotate the refresh token")
	}
	old := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret}}
	if status, body := tokenCall(t, s, old); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("spent refresh token: %d %v", status, body)
	}
	revoke := func(clientID, secret, token string) int {
		t.Helper()
		r := do(t, http.MethodPost, s.IdentityURL()+"/connect/revocation",
			url.Values{"token": {token}, "token_type_hint": {"refresh_token"}, "client_id": {clientID}, "client_secret": {secret}}, nil)
		return r.status
	}
	// Another application cannot revoke erpgraph's token; RFC 7009 answers 200 all the same.
	if st := revoke(fixture.OtherClientID, "other-demo-secret", next.RefreshToken); st != http.StatusOK {
		t.Errorf("revocation by another client: %d", st)
	}
	refresh(t, s, fixture.BFFClientID, fixture.BFFSecret, next.RefreshToken) // still valid, and spent now
	third := mustLogin(t, s, fixture.BFFClientID, fixture.OwnerLogin, "openid", "offline_access")
	if st := revoke(fixture.BFFClientID, "wrong", third.RefreshToken); st != http.StatusUnauthorized {
		t.Errorf("revocation with a wrong secret: %d", st)
	}
	if st := revoke(fixture.BFFClientID, fixture.BFFSecret, third.RefreshToken); st != http.StatusOK {
		t.Fatalf("revocation: %d", st)
	}
	old.Set("refresh_token", third.RefreshToken)
	if status, body := tokenCall(t, s, old); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("revoked refresh token: %d %v", status, body)
	}
	if got := s.Stats().Revocations; got != 3 {
		t.Errorf("Stats().Revocations = %d, want 3", got)
	}
}

func TestIdentity_RefreshFailureKnob(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok := mustLogin(t, s, fixture.BFFClientID, fixture.OwnerLogin, "openid", "offline_access")
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {fixture.BFFClientID}, "client_secret": {fixture.BFFSecret}}
	s.ResetRequests()
	s.SetRefreshFailure("temporarily_unavailable")
	if status, body := tokenCall(t, s, form); status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("transient failure: %d %v", status, body)
	}
	s.SetRefreshFailure("invalid_grant")
	if status, body := tokenCall(t, s, form); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("invalid_grant knob: %d %v", status, body)
	}
	s.SetRefreshFailure("")
	refresh(t, s, fixture.BFFClientID, fixture.BFFSecret, tok.RefreshToken) // the knob spent nothing
	if got := s.Stats().RefreshRequests; got != 3 {
		t.Errorf("Stats().RefreshRequests = %d, want 3", got)
	}
}

func TestIdentity_BackChannelLogout(t *testing.T) {
	var mu sync.Mutex
	var got []url.Values
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, r.PostForm)
		mu.Unlock()
	}))
	defer rp.Close()
	apps := fixture.Apps()
	for i := range apps {
		if apps[i].ClientID == fixture.BFFClientID {
			apps[i].BackChannelLogoutURI = rp.URL + "/auth/backchannel-logout"
		}
	}
	s := startSim(t, erpsim.Options{Apps: apps})
	disc := decodeJSON(t, get(t, s.IdentityURL()+"/.well-known/openid-configuration", "").body)
	if disc["backchannel_logout_supported"] != true || disc["backchannel_logout_session_supported"] != true || disc["revocation_endpoint"] == nil {
		t.Errorf("discovery: %v", disc)
	}
	tok := mustLogin(t, s, fixture.BFFClientID, fixture.OwnerLogin, "openid", "profile", "offline_access")
	mustLogin(t, s, fixture.PlaygroundClientID, fixture.MultiLogin) // another session, another app: not notified
	_, _, idc := verifiedClaims(t, s, tok.AccessToken)
	sid := idc["sid"].(string)
	q := url.Values{"id_token_hint": {tok.IDToken}}
	if r := do(t, http.MethodGet, s.IdentityURL()+"/connect/endsession?"+q.Encode(), nil, nil); r.status != http.StatusOK {
		t.Fatalf("endsession: %d", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("back-channel logouts: %d, want 1", len(got))
	}
	typ, _, claims := verifiedClaims(t, s, got[0].Get("logout_token"))
	if typ != "logout+jwt" || claims["sid"] != sid || claims["sub"] != fixture.OwnerLogin || claims["aud"] != fixture.BFFClientID ||
		claims["nonce"] != nil || claims["jti"] == nil {
		t.Errorf("logout_token typ %q claims %v", typ, claims)
	}
	if ev, ok := claims["events"].(map[string]any); !ok || ev["http://schemas.openid.net/event/backchannel-logout"] == nil {
		t.Errorf("logout_token events: %v", claims["events"])
	}
	// The session is gone: ending it again notifies nobody.
	s.EndSession(context.Background(), sid)
	if len(got) != 1 {
		t.Errorf("second EndSession notified again")
	}
}
