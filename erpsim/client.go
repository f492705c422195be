package erpsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// Tokens is a token endpoint response.
type Tokens struct {
	AccessToken  string
	IDToken      string
	RefreshToken string
	ExpiresIn    int
	Scope        string
}

// OAuthError is an error answered by the identity server: a token-endpoint
// error body, or an error delivered to the redirect URI.
type OAuthError struct {
	Status      int    // HTTP status (302 for errors sent to the redirect URI)
	Code        string // e.g. invalid_client, invalid_grant, invalid_scope
	Description string
}

func (e *OAuthError) Error() string {
	return fmt.Sprintf("erpsim: identity server: %s: %s (HTTP %d)", e.Code, e.Description, e.Status)
}

// flowClient does not follow redirects: the flows read the Location header.
var flowClient = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Login signs a user in to a trusted application over HTTP, as a browser and
// the application would: the authorization request (code flow, PKCE S256,
// state, nonce) shows the login page, the login form is posted, and the code
// is redeemed at the token endpoint (with the app's secret for confidential
// apps). The app's first redirect URI is used; scopes default to "openid profile".
func (s *Sim) Login(ctx context.Context, clientID, login, password string, scopes ...string) (*Tokens, error) {
	app, ok := s.apps[clientID]
	if !ok {
		return nil, fmt.Errorf("erpsim: login: unknown client %q", clientID)
	}
	return SignIn(ctx, s.base, app, login, password, scopes...)
}

// SignIn runs the same flow as Sim.Login against an erpsim at base (its
// instance URL, e.g. http://127.0.0.1:8089), for callers outside the process
// that started it, such as `erpgraph token`. app names the client id, its
// secret (confidential apps) and the redirect URI (the first one).
func SignIn(ctx context.Context, base string, app fixture.App, login, password string, scopes ...string) (*Tokens, error) {
	base = strings.TrimSuffix(base, "/")
	clientID := app.ClientID
	if len(app.RedirectURIs) == 0 {
		return nil, fmt.Errorf("erpsim: login: client %q has no redirect URI", clientID)
	}
	if len(scopes) == 0 {
		scopes = []string{scopeOpenID, scopeProfile}
	}
	verifier, state := randomToken(), randomHex(8)
	q := url.Values{
		"client_id": {clientID}, "redirect_uri": {app.RedirectURIs[0]}, "response_type": {"code"},
		"response_mode": {"query"}, "scope": {strings.Join(scopes, " ")}, "state": {state}, "nonce": {randomHex(8)},
		"code_challenge": {pkceS256(verifier)}, "code_challenge_method": {"S256"},
	}
	resp, err := flowDo(ctx, http.MethodGet, base+authorizePath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("erpsim: login: authorize: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("erpsim: login: authorize: %w", redirectError(resp))
	}
	form := url.Values{"login": {login}, "password": {password}}
	for k, v := range q {
		form[k] = v
	}
	resp, err = flowDo(ctx, http.MethodPost, base+loginPath, form)
	if err != nil {
		return nil, fmt.Errorf("erpsim: login: sign in: %w", err)
	}
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("erpsim: login: sign in as %q refused (HTTP %d)", login, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, fmt.Errorf("erpsim: login: bad redirect: %w", err)
	}
	back := loc.Query()
	if back.Get("error") != "" {
		return nil, fmt.Errorf("erpsim: login: %w", redirectError(resp))
	}
	if back.Get("state") != state {
		return nil, fmt.Errorf("erpsim: login: state mismatch in the authorization response")
	}
	tf := url.Values{
		"grant_type": {"authorization_code"}, "code": {back.Get("code")}, "redirect_uri": {app.RedirectURIs[0]},
		"code_verifier": {verifier}, "client_id": {clientID},
	}
	if app.Secret != "" {
		tf.Set("client_secret", app.Secret)
	}
	return tokenRequest(ctx, base, tf)
}

// ServiceToken gets a client-credentials token for a trusted application,
// with its demo secret; no scopes means all the application's scopes.
func (s *Sim) ServiceToken(ctx context.Context, clientID string, scopes ...string) (*Tokens, error) {
	app, ok := s.apps[clientID]
	if !ok {
		return nil, fmt.Errorf("erpsim: service token: unknown client %q", clientID)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {app.Secret}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return tokenRequest(ctx, s.base, form)
}

// tokenRequest posts a form to the token endpoint of the erpsim at base.
func tokenRequest(ctx context.Context, base string, form url.Values) (*Tokens, error) {
	resp, err := flowDo(ctx, http.MethodPost, base+tokenPath, form)
	if err != nil {
		return nil, fmt.Errorf("erpsim: token request: %w", err)
	}
	var body struct {
		tokenResponse
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		return nil, fmt.Errorf("erpsim: token response (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &OAuthError{Status: resp.StatusCode, Code: body.Error, Description: body.Description}
	}
	return &Tokens{AccessToken: body.AccessToken, IDToken: body.IDToken, RefreshToken: body.RefreshToken, ExpiresIn: body.ExpiresIn, Scope: body.Scope}, nil
}

// flowResponse is a response read to the end.
type flowResponse struct {
	*http.Response
	body []byte
}

func flowDo(ctx context.Context, method, target string, form url.Values) (*flowResponse, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := flowClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &flowResponse{Response: resp, body: b}, nil
}

// redirectError turns an error redirect (or an error page) into an OAuthError.
func redirectError(resp *flowResponse) error {
	if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.Query().Get("error") != "" {
		return &OAuthError{Status: resp.StatusCode, Code: loc.Query().Get("error"), Description: loc.Query().Get("error_description")}
	}
	return fmt.Errorf("unexpected HTTP %d", resp.StatusCode)
}
