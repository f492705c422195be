package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/erpgraph/erpgraph/auth"
)

// Verifier verifies the identity server's tokens; *auth.Verifier implements
// it, so session tokens are checked exactly as Bearer tokens are.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*auth.User, error)
	VerifyIDToken(ctx context.Context, raw, clientID, nonce string) (*auth.IDToken, error)
	VerifyLogoutToken(ctx context.Context, raw, clientID string) (*auth.LogoutToken, error)
}

// Config configures a Manager.
type Config struct {
	Verifier Verifier
	Provider auth.Provider // authorization, token, end-session and revocation endpoints
	// ClientID and ClientSecret are erpgraph's confidential Trusted Application.
	ClientID, ClientSecret string
	// Scopes asked at sign-in; default openid profile offline_access
	// (offline_access brings the refresh token).
	Scopes []string
	// PublicURL is erpgraph's URL as browsers see it (scheme://host[:port],
	// no path): the callback URL is built from it, and an https URL makes the
	// cookies Secure and __Host- prefixed.
	PublicURL string
	// Prefix of the endpoints; default /auth (/auth/login, /auth/callback,
	// /auth/user, /auth/logout, /auth/backchannel-logout).
	Prefix string
	// ResponseMode of the authorization response: "query" (default) or
	// "form_post".
	ResponseMode string
	// PostLogoutRedirectURL is where the identity server sends the browser
	// after sign-out; default PublicURL + "/". It must be registered.
	PostLogoutRedirectURL string
	Store                 Store
	Keys                  *Keys
	// IdleTimeout ends a session unused this long (sliding); default 30m.
	IdleTimeout time.Duration
	// Lifetime is the absolute end of a session from sign-in; default 12h,
	// at most MaxLifetime (ERP.net's refresh-token lifetime).
	Lifetime time.Duration
	// RefreshBefore is how long before the access token's expiry it is
	// refreshed; default 2m.
	RefreshBefore time.Duration
	// CSRFHeaders: a cookie-authenticated request must carry one of them,
	// non-empty; default X-CSRF (send X-CSRF: 1).
	CSRFHeaders []string
	HTTPClient  *http.Client // identity-server calls; default 10s timeout
	Logger      *slog.Logger // default discard
	Audit       *slog.Logger // sign-ins, refreshes, sign-outs, refusals; nil = off
	RequestID   func(context.Context) string
	// Features are told to the frontend in /auth/user ("features"), e.g.
	// {"writes": true} when mutations are enabled, so a page shows only what
	// this erpgraph offers.
	Features map[string]bool
	// OnEvent counts session events for metrics: created, refreshed,
	// ended (logout, back-channel logout, refresh refused), expired,
	// refresh_failed (identity server unreachable). Nil: none.
	OnEvent  func(event string)
	ClientIP func(*http.Request) string
	Now      func() time.Time // default time.Now
}

// Defaults and bounds.
const (
	DefaultPrefix        = "/auth"
	DefaultIdleTimeout   = 30 * time.Minute
	DefaultLifetime      = 12 * time.Hour
	DefaultRefreshBefore = 2 * time.Minute
	// MaxLifetime is ERP.net's refresh-token lifetime for confidential
	// clients (docs/erpnet.md § Identity server): a session cannot outlive its refresh token.
	MaxLifetime = 30 * 24 * time.Hour
	// loginLifetime bounds the round trip to the identity server.
	loginLifetime = 10 * time.Minute
	// touchEvery throttles the sliding-expiry writes to the store.
	touchEvery     = time.Minute
	refreshLockTTL = 30 * time.Second
	callTimeout    = 10 * time.Second
)

// DefaultCSRFHeaders is Duende BFF's anti-forgery header.
var DefaultCSRFHeaders = []string{"X-CSRF"}

// Manager runs the server-side sign-in and serves the session endpoints.
type Manager struct {
	cfg      Config
	oauth    *oauth2.Config
	secure   bool
	cookie   string // session cookie name
	loginPfx string // login-cookie name prefix
	paths    Paths
	now      func() time.Time
	log      *slog.Logger
	flight   singleflight.Group
}

// Paths are the endpoint paths.
type Paths struct{ Login, Callback, User, Logout, BackChannelLogout string }

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Verifier == nil {
		add("a token verifier is required")
	}
	if c.Store == nil || c.Keys == nil {
		add("a store and keys are required")
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		add("the confidential client id and secret are required")
	}
	if c.Provider.AuthorizationEndpoint == "" || c.Provider.TokenEndpoint == "" {
		add("the identity server's discovery names no authorization or token endpoint")
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		add("public URL %q is not scheme://host[:port]", c.PublicURL)
	}
	if c.Prefix != "" && (!strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") || strings.ContainsAny(c.Prefix, "?#{} ")) {
		add("path prefix %q must start with / and not end with one", c.Prefix)
	}
	switch c.ResponseMode {
	case "", "query", "form_post":
	default:
		add("response mode %q is not query or form_post", c.ResponseMode)
	}
	if c.Lifetime < 0 || c.Lifetime > MaxLifetime {
		add("session lifetime %v is outside (0, %v] (the refresh token's lifetime)", c.Lifetime, MaxLifetime)
	}
	if c.IdleTimeout < 0 || (c.IdleTimeout > 0 && c.Lifetime > 0 && c.IdleTimeout > c.Lifetime) {
		add("idle timeout %v must be positive and at most the lifetime", c.IdleTimeout)
	}
	if c.RefreshBefore < 0 || c.RefreshBefore > 30*time.Minute {
		add("refresh-before %v is outside [0, 30m]", c.RefreshBefore)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("session: config: %w", err)
	}
	return nil
}

// New builds a Manager.
func New(cfg Config) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.ResponseMode == "" {
		cfg.ResponseMode = "query"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile", "offline_access"}
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		cfg.Scopes = append([]string{"openid"}, cfg.Scopes...)
	}
	if cfg.PostLogoutRedirectURL == "" {
		cfg.PostLogoutRedirectURL = cfg.PublicURL + "/"
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.IdleTimeout > cfg.Lifetime {
		cfg.IdleTimeout = cfg.Lifetime
	}
	if cfg.RefreshBefore == 0 {
		cfg.RefreshBefore = DefaultRefreshBefore
	}
	if len(cfg.CSRFHeaders) == 0 {
		cfg.CSRFHeaders = DefaultCSRFHeaders
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: callTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestID == nil {
		cfg.RequestID = func(context.Context) string { return "" }
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(string) {}
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	m := &Manager{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	p := cfg.Prefix
	m.paths = Paths{Login: p + "/login", Callback: p + "/callback", User: p + "/user", Logout: p + "/logout", BackChannelLogout: p + "/backchannel-logout"}
	// Browsers refuse __Host- cookies that are not Secure, and Secure
	// cookies over plain HTTP: on http:// (dev mode) the names lose the prefix.
	m.secure = strings.HasPrefix(cfg.PublicURL, "https://")
	m.cookie, m.loginPfx = "erpgraph-session", "erpgraph-login-"
	if m.secure {
		m.cookie, m.loginPfx = "__Host-erpgraph-session", "__Host-erpgraph-login-"
	}
	m.oauth = &oauth2.Config{
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Scopes: cfg.Scopes,
		RedirectURL: cfg.PublicURL + m.paths.Callback,
		Endpoint: oauth2.Endpoint{AuthURL: cfg.Provider.AuthorizationEndpoint, TokenURL: cfg.Provider.TokenEndpoint,
			AuthStyle: oauth2.AuthStyleInParams}, // the form post ERP.net documents
	}
	return m, nil
}

// Paths returns the endpoint paths.
func (m *Manager) Paths() Paths { return m.paths }

// Prefix is the endpoints' path prefix, e.g. /auth.
func (m *Manager) Prefix() string { return m.cfg.Prefix }

// CallbackURL is the redirect URI to register at the identity server.
func (m *Manager) CallbackURL() string { return m.oauth.RedirectURL }

// BackChannelLogoutURL is the back-channel logout URI to register.
func (m *Manager) BackChannelLogoutURL() string { return m.cfg.PublicURL + m.paths.BackChannelLogout }

// PostLogoutRedirectURL is the post-logout redirect URI to register.
func (m *Manager) PostLogoutRedirectURL() string { return m.cfg.PostLogoutRedirectURL }

// CookieName is the session cookie's name.
func (m *Manager) CookieName() string { return m.cookie }

// CSRFHeaders are the headers one of which a cookie request must carry.
func (m *Manager) CSRFHeaders() []string { return m.cfg.CSRFHeaders }

// HasCookie reports whether r carries a session cookie (valid or not).
func (m *Manager) HasCookie(r *http.Request) bool {
	_, err := r.Cookie(m.cookie)
	return err == nil
}

// hasCSRFHeader reports whether r carries one of the CSRF headers. Browsers
// let a page add such a header only to same-origin requests or after a CORS
// preflight, which erpgraph never grants with credentials.
func (m *Manager) hasCSRFHeader(r *http.Request) bool {
	for _, h := range m.cfg.CSRFHeaders {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Authenticate returns the user of r's session cookie, refreshing the access
// token first when it is about to expire. No cookie: (nil, nil). A refused
// request gets an *Error, and the cookie is cleared when the session is gone.
func (m *Manager) Authenticate(w http.ResponseWriter, r *http.Request) (*auth.User, error) {
	c, err := r.Cookie(m.cookie)
	if err != nil {
		return nil, nil
	}
	if !m.hasCSRFHeader(r) {
		return nil, &Error{Status: http.StatusUnauthorized, Code: CodeCSRFHeaderMissing, Reason: "csrf",
			Msg: "a request with the session cookie must carry the " + strings.Join(m.cfg.CSRFHeaders, " or ") + " header (X-CSRF: 1)"}
	}
	s, serr := m.load(r.Context(), c.Value)
	if serr != nil {
		if serr.Code == CodeUnauthenticated {
			m.clearCookie(w)
		}
		return nil, serr
	}
	u := s.User
	return &u, nil
}

// load finds, checks, touches and (when due) refreshes the session of a cookie value.
func (m *Manager) load(ctx context.Context, id string) (*Session, *Error) {
	unauth := func(reason, msg string, err error) *Error {
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Reason: reason, Msg: msg, Err: err}
	}
	if len(id) != 43 { // what randomID makes; anything else was never issued here
		return nil, unauth("unknown_session", "no session: sign in", nil)
	}
	key := keyOf(id)
	s, err := m.cfg.Store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return nil, unauth("unknown_session", "no session: sign in", nil)
	}
	if err != nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUpstreamUnavailable, Reason: "store", Msg: "sessions are unavailable right now", Err: err}
	}
	now := m.now()
	if !now.Before(s.ends(m.cfg.IdleTimeout)) {
		_ = m.cfg.Store.Delete(ctx, key)
		m.audit(ctx, "session ended", s, slog.String("reason", "expired"))
		m.cfg.OnEvent("expired")
		return nil, unauth("expired", "the session has expired: sign in again", nil)
	}
	if now.Sub(s.LastSeen) >= touchEvery {
		s.LastSeen = now
		if err := m.cfg.Store.Update(ctx, s); errors.Is(err, ErrNotFound) {
			return nil, unauth("ended", "the session has ended: sign in again", nil)
		}
	}
	if now.Before(s.AccessExpiresAt().Add(-m.cfg.RefreshBefore)) {
		return s, nil
	}
	return m.refresh(ctx, s)
}

// refresh renews the access token, once across concurrent requests of this
// process (singleflight) and across replicas (the store's lock, then a fresh
// read: another holder may have refreshed already).
func (m *Manager) refresh(ctx context.Context, stale *Session) (*Session, *Error) {
	v, err, _ := m.flight.Do(stale.Key, func() (any, error) {
		// The refresh outlives a caller that gives up: the others wait for it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*callTimeout)
		defer cancel()
		unlock, err := m.cfg.Store.Lock(ctx, stale.Key, refreshLockTTL)
		if err != nil {
			return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUpstreamUnavailable, Reason: "lock", Msg: "the session could not be renewed right now", Err: err}
		}
		defer unlock()
		s, err := m.cfg.Store.Get(ctx, stale.Key)
		if err != nil {
			return nil, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Reason: "ended", Msg: "the session has ended: sign in again", Err: err}
		}
		if m.now().Before(s.AccessExpiresAt().Add(-m.cfg.RefreshBefore)) {
			return s, nil // refreshed by another request or replica meanwhile
		}
		return m.refreshLocked(ctx, s)
	})
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			if se.Code == CodeUpstreamUnavailable && m.now().Before(stale.AccessExpiresAt()) {
				return stale, nil // not expired yet: serve, and try again on the next request
			}
			return nil, se
		}
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUpstreamUnavailable, Reason: "refresh", Msg: "the session could not be renewed right now", Err: err}
	}
	return v.(*Session), nil
}

// refreshLocked runs the refresh_token grant for s (lock held).
func (m *Manager) refreshLocked(ctx context.Context, s *Session) (*Session, error) {
	rt, err := m.cfg.Keys.Open(s.RefreshToken, []byte(s.Key))
	if err != nil || len(rt) == 0 {
		_ = m.cfg.Store.Delete(ctx, s.Key)
		m.audit(ctx, "session ended", s, slog.String("reason", "refresh_token_unreadable"))
		m.cfg.OnEvent("ended")
		return nil, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Reason: "refresh_unreadable", Msg: "the session has ended: sign in again", Err: err}
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, m.cfg.HTTPClient)
	tok, err := m.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: string(rt)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.ErrorCode == "unauthorized_client" || re.ErrorCode == "invalid_client") {
			// The grant is gone (revoked, password changed, app disabled): so is the session.
			_ = m.cfg.Store.Delete(ctx, s.Key)
			m.audit(ctx, "session refresh refused", s, slog.String("reason", re.ErrorCode))
			m.cfg.OnEvent("ended")
			return nil, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Reason: "refresh_invalid", Msg: "the session has ended: sign in again", Err: err}
		}
		m.log.WarnContext(ctx, "session: refresh failed", "err", err)
		m.audit(ctx, "session refresh failed", s, slog.String("reason", "identity_server"))
		m.cfg.OnEvent("refresh_failed")
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUpstreamUnavailable, Reason: "refresh_unavailable", Msg: "the identity server cannot renew the session right now", Err: err}
	}
	u, err := m.cfg.Verifier.Verify(ctx, tok.AccessToken)
	if err != nil || u.Subject != s.User.Subject {
		_ = m.cfg.Store.Delete(ctx, s.Key)
		m.audit(ctx, "session refresh refused", s, slog.String("reason", "access_token"))
		m.cfg.OnEvent("ended")
		return nil, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Reason: "refresh_token_refused", Msg: "the session has ended: sign in again", Err: err}
	}
	s.User = *u
	if tok.RefreshToken != "" { // rotation: the old one is spent
		s.RefreshToken = m.cfg.Keys.Seal([]byte(tok.RefreshToken), []byte(s.Key))
	}
	if err := m.cfg.Store.Update(ctx, s); err != nil {
		return nil, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Reason: "ended", Msg: "the session has ended: sign in again", Err: err}
	}
	m.audit(ctx, "session refreshed", s, slog.Time("access_expires_at", u.ExpiresAt))
	m.cfg.OnEvent("refreshed")
	return s, nil
}

// audit writes one audit record about a session.
func (m *Manager) audit(ctx context.Context, msg string, s *Session, attrs ...slog.Attr) {
	if m.cfg.Audit == nil {
		return
	}
	base := []slog.Attr{slog.String("request_id", m.cfg.RequestID(ctx))}
	if s != nil {
		base = append(base, slog.String("subject", s.User.Subject), slog.String("user_id", s.User.ID),
			slog.String("session_key_sha256", s.Key[:16]), slog.String("sid_sha256", hashPrefix(s.SID)))
	}
	m.cfg.Audit.LogAttrs(ctx, slog.LevelInfo, msg, append(base, attrs...)...)
}

func hashPrefix(v string) string {
	if v == "" {
		return ""
	}
	return keyOf(v)[:16]
}
