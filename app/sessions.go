package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/server"
	"github.com/erpgraph/erpgraph/session"
)

// SessionConfig configures the server-side sign-in (package session).
type SessionConfig struct {
	// Enabled serves the login endpoints and lets /graphql accept the
	// session cookie. Default on in dev mode, off otherwise.
	Enabled bool
	// PublicURL is erpgraph's URL as browsers see it (behind a TLS proxy:
	// the https:// URL); the callback URL is built from it. Default: the
	// listen URL.
	PublicURL string
	// Keys seal refresh tokens and id_tokens at rest: comma-separated base64
	// 32-byte keys, the first seals, all open (rotation). Required outside
	// dev mode; dev mode makes a random one per process.
	Keys string
	// IdleTimeout (sliding) and Lifetime (absolute, at most the refresh
	// token's 30 days) of a session.
	IdleTimeout, Lifetime time.Duration
	// PathPrefix of the endpoints; default /auth.
	PathPrefix string
	// ResponseMode of the authorization response: query or form_post.
	ResponseMode string
	// CSRFHeaders: cookie requests must carry one of them; default X-CSRF.
	CSRFHeaders []string
	// Scopes asked at sign-in; default openid profile offline_access.
	Scopes []string
	// PostLogoutRedirectURL: where the identity server returns the browser
	// after sign-out; default the public URL + "/" (dev mode with the
	// portal: the portal).
	PostLogoutRedirectURL string
}

// The session settings, appended to the registry (settings.go) in this order.
var sessionRows = []setting{
	{env: "ERPGRAPH_SESSIONS", flag: "sessions", def: "on in dev mode, else off", boolean: true,
		help:        "server-side sign-in for same-origin frontends: " + session.DefaultPrefix + "/* endpoints, and /graphql accepts the session cookie (with X-CSRF: 1)",
		field:       onOff(func(c *Config) *bool { return &c.Session.Enabled }),
		modeDefault: func(c *Config, dev bool) { c.Session.Enabled = dev }},
	{env: "ERPGRAPH_PUBLIC_URL", flag: "public-url", def: "the listen URL",
		help:  "erpgraph's URL as browsers see it (https://portal.example.com behind a TLS proxy); callback URL and cookie prefix follow from it",
		field: text(func(c *Config) *string { return &c.Session.PublicURL }),
		check: func(c Config, _ *loaded) error {
			if c.Session.PublicURL == "" {
				return nil
			}
			u, err := url.Parse(c.Session.PublicURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" || u.RawQuery != "" {
				return errors.New("not scheme://host[:port] (no path)")
			}
			return nil
		}},
	{env: "ERPGRAPH_SESSION_KEYS", help: "keys sealing refresh tokens at rest: comma-separated base64 32-byte keys (`openssl rand -base64 32`); the first seals, all open (rotation); or ERPGRAPH_SESSION_KEYS_FILE",
		raw: true, secret: true,
		field: field{parse: func(c *Config, v string) error { c.Session.Keys = v; return nil },
			show: func(c Config) any { return c.Session.Keys != "" }},
		check: func(c Config, _ *loaded) error {
			if c.Session.Keys == "" {
				return nil
			}
			_, err := session.ParseKeys(c.Session.Keys)
			return err
		}},
	{env: "ERPGRAPH_SESSION_KEYS_FILE", flag: "session-keys-file", help: "file holding the session keys (one per line or comma-separated)",
		field: field{parse: func(c *Config, file string) error {
			if c.Session.Keys != "" {
				return errors.New("ERPGRAPH_SESSION_KEYS and ERPGRAPH_SESSION_KEYS_FILE are both set; use one")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c.Session.Keys = strings.TrimSpace(string(b))
			return nil
		}}},
	{env: "ERPGRAPH_SESSION_IDLE_TIMEOUT", flag: "session-idle-timeout", def: session.DefaultIdleTimeout.String(),
		help: "a session unused this long ends (sliding)", field: duration(func(c *Config) *time.Duration { return &c.Session.IdleTimeout }, session.DefaultIdleTimeout)},
	{env: "ERPGRAPH_SESSION_LIFETIME", flag: "session-lifetime", def: session.DefaultLifetime.String(),
		help:  "absolute end of a session after sign-in; at most 720h (ERP.net's refresh-token lifetime)",
		field: duration(func(c *Config) *time.Duration { return &c.Session.Lifetime }, session.DefaultLifetime),
		check: func(c Config, _ *loaded) error {
			if c.Session.Lifetime > session.MaxLifetime {
				return fmt.Errorf("%v is longer than the refresh token's %v", c.Session.Lifetime, session.MaxLifetime)
			}
			if c.Session.IdleTimeout > cmp.Or(c.Session.Lifetime, session.DefaultLifetime) {
				return errors.New("shorter than ERPGRAPH_SESSION_IDLE_TIMEOUT")
			}
			return nil
		}},
	{env: "ERPGRAPH_SESSION_PATH_PREFIX", flag: "session-path-prefix", def: session.DefaultPrefix,
		help:  "path prefix of the session endpoints (login, callback, user, logout, backchannel-logout)",
		field: text(func(c *Config) *string { return &c.Session.PathPrefix }),
		check: func(c Config, _ *loaded) error {
			p := c.Session.PathPrefix
			if p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#{} ") || p == "/graphql" || p == "/playground" || p == "/portal") {
				return errors.New("a path such as /auth (leading slash, no trailing one, not a path erpgraph uses)")
			}
			return nil
		}},
	{env: "ERPGRAPH_SESSION_RESPONSE_MODE", flag: "session-response-mode", def: "query",
		help:  "how the identity server returns to the callback: query (GET) or form_post (POST; needs HTTPS across sites)",
		field: text(func(c *Config) *string { return &c.Session.ResponseMode }),
		check: func(c Config, _ *loaded) error {
			if m := c.Session.ResponseMode; m != "" && m != "query" && m != "form_post" {
				return errors.New("not query or form_post")
			}
			return nil
		}},
	{env: "ERPGRAPH_SESSION_CSRF_HEADERS", flag: "session-csrf-headers", def: strings.Join(session.DefaultCSRFHeaders, ","),
		help:  "a request with the session cookie needs one of these headers, non-empty (else 401 CSRF_HEADER_MISSING)",
		field: words(func(c *Config) *[]string { return &c.Session.CSRFHeaders })},
	{env: "ERPGRAPH_SESSION_SCOPES", flag: "session-scopes", def: "openid profile offline_access",
		help:  "scopes asked at sign-in (offline_access brings the refresh token)",
		field: words(func(c *Config) *[]string { return &c.Session.Scopes })},
	{env: "ERPGRAPH_POST_LOGOUT_REDIRECT_URL", flag: "post-logout-redirect-url", def: "the public URL + /",
		help:  "where the identity server sends the browser after sign-out (must be registered)",
		field: text(func(c *Config) *string { return &c.Session.PostLogoutRedirectURL })},
	{env: "ERPGRAPH_STATIC_DIR", flag: "static-dir",
		help:  "a built frontend served at / (SPA fallback to index.html, hashed assets cached a year); the playground moves to /playground/",
		field: text(func(c *Config) *string { return &c.StaticDir }),
		check: func(c Config, _ *loaded) error {
			if c.StaticDir == "" {
				return nil
			}
			if st, err := os.Stat(filepath.Join(c.StaticDir, "index.html")); err != nil || st.IsDir() {
				return errors.New("has no index.html")
			}
			return nil
		}},
	{env: "ERPGRAPH_PORTAL", flag: "portal", def: "on in dev mode, else off", boolean: true,
		help:        "serve the example customer portal (cookie sign-in) at /portal/",
		field:       onOff(func(c *Config) *bool { return &c.Portal }),
		modeDefault: func(c *Config, dev bool) { c.Portal = dev }},
}

func init() { registry = append(registry, sessionRows...) }

// sessionRules tie the session settings to the others.
func sessionRules(c Config, _ *loaded) []error {
	if !c.Session.Enabled {
		if c.Portal {
			return []error{fmt.Errorf("%s is on but %s is off: the portal signs in with the session cookie", named("ERPGRAPH_PORTAL"), named("ERPGRAPH_SESSIONS"))}
		}
		return nil
	}
	var errs []error
	if !c.Dev() && c.Session.Keys == "" {
		errs = append(errs, fmt.Errorf("%s is on: %s (or _FILE) is required, so refresh tokens are sealed with a key that outlives the process", named("ERPGRAPH_SESSIONS"), named("ERPGRAPH_SESSION_KEYS")))
	}
	if !slices.Contains(c.TrustedClientIDs, c.ClientID) {
		errs = append(errs, fmt.Errorf("%s is on: %s must include ERP_CLIENT_ID (%s), whose user tokens the sessions hold", named("ERPGRAPH_SESSIONS"), named("ERPGRAPH_TRUSTED_CLIENT_IDS"), c.ClientID))
	}
	if pu, err := url.Parse(c.Session.PublicURL); err == nil && c.Session.PublicURL != "" && pu.Scheme == "http" && !c.Dev() && !loopback(pu.Hostname()) {
		errs = append(errs, fmt.Errorf("%s: plain http outside loopback would send the session cookie unencrypted; use https", named("ERPGRAPH_PUBLIC_URL")))
	}
	return errs
}

func init() { rules = append(rules, sessionRules) }

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sessionPublicURL is the public URL in force.
func (a *App) sessionPublicURL() string {
	return strings.TrimSuffix(cmp.Or(a.cfg.Session.PublicURL, a.url), "/")
}

// sessionPrefix is the endpoints' prefix in force.
func (a *App) sessionPrefix() string { return cmp.Or(a.cfg.Session.PathPrefix, session.DefaultPrefix) }

// postLogoutURL is the post-logout redirect in force.
func (a *App) postLogoutURL() string {
	if a.cfg.Session.PostLogoutRedirectURL != "" {
		return a.cfg.Session.PostLogoutRedirectURL
	}
	if a.cfg.Dev() && a.cfg.Portal && a.cfg.StaticDir == "" {
		return a.sessionPublicURL() + "/portal/"
	}
	return a.sessionPublicURL() + "/"
}

// newSessions builds the session manager on the verified identity server.
func (a *App) newSessions(_ context.Context) (*session.Manager, error) {
	var raw [][]byte
	if a.cfg.Session.Keys != "" {
		var err error
		if raw, err = session.ParseKeys(a.cfg.Session.Keys); err != nil {
			return nil, fmt.Errorf("app: %s: %w", named("ERPGRAPH_SESSION_KEYS"), err)
		}
	} else {
		// Dev mode (the rules require keys elsewhere): sessions live in
		// this process's memory anyway, so a key of its own is enough.
		raw = [][]byte{session.RandomKey()}
	}
	keys, err := session.NewKeys(raw...)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	m, err := session.New(session.Config{
		Verifier: a.verifier, Provider: a.verifier.Provider(), ClientID: a.cfg.ClientID, ClientSecret: a.cfg.ClientSecret,
		Scopes: a.cfg.Session.Scopes, PublicURL: a.sessionPublicURL(), Prefix: a.sessionPrefix(),
		ResponseMode: a.cfg.Session.ResponseMode, PostLogoutRedirectURL: a.postLogoutURL(),
		Store: a.sessionStore(), Keys: keys,
		IdleTimeout: a.cfg.Session.IdleTimeout, Lifetime: a.cfg.Session.Lifetime, CSRFHeaders: a.cfg.Session.CSRFHeaders,
		Logger: a.log.With("component", "session"), Audit: a.audit,
		RequestID: server.RequestID, OnEvent: a.metrics.Session,
		Features: map[string]bool{"writes": a.cfg.Writes.Enabled}, ClientIP: sessionClientIP,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return m, nil
}

// sessionClientIP is the client address the server resolved (trusted
// proxies applied), for the session audit records.
func sessionClientIP(r *http.Request) string {
	if rec := server.RecordOf(r.Context()); rec != nil {
		return rec.ClientIP.String()
	}
	return r.RemoteAddr
}
