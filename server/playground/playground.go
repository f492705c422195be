// Package playground serves GraphiQL with a "Sign in" control that runs the
// Authorization Code flow with PKCE (S256) in the browser against the ERP.net
// identity server, as a public client. The access token lives in a
// JavaScript variable only. Every file the page loads is embedded here
// (vendored from npm by update-assets.sh), under a strict
// Content-Security-Policy.
package playground

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// AssetsPath is the URL path prefix of the playground's static files.
const AssetsPath = "/playground/assets/"

// FaviconPath is where browsers look for an icon when a page names none; the
// playground's page names its own, and this path serves the same icon.
const FaviconPath = "/favicon.ico"

//go:embed index.html
var indexHTML string

//go:embed assets
var assetsFS embed.FS

//go:embed examples/*.graphql
var examplesFS embed.FS

// Config configures the playground.
type Config struct {
	Enabled bool // serve the playground at GET /
	// ClientID is the public trusted application (PKCE, no secret) the
	// browser signs in with; its redirect URI list must hold the
	// playground's URL (scheme://host/).
	ClientID              string
	AuthorizationEndpoint string // from the identity server's discovery
	TokenEndpoint         string // from the identity server's discovery; must allow the playground's origin (CORS)
	EndSessionEndpoint    string // optional: sign-out also ends the identity server session
	Scopes                string // requested scopes; default "openid profile"
	GraphQLPath           string // default "graphql" (relative to the page)
	// SignInHint is shown next to the Sign in button, e.g. the demo
	// sign-ins in dev mode. Plain text.
	SignInHint string
}

// Example is a preloaded query tab.
type Example struct {
	Name  string `json:"name"`
	Query string `json:"query"`
}

// Examples returns the preloaded example operations, in file name order.
func Examples() ([]Example, error) {
	files, err := fs.Glob(examplesFS, "examples/*.graphql")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	out := make([]Example, 0, len(files))
	for _, f := range files {
		b, err := examplesFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(path.Base(f), ".graphql")
		if first, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(first, "#") {
			name = strings.TrimSpace(strings.TrimPrefix(first, "#"))
		}
		out = append(out, Example{Name: name, Query: string(b)})
	}
	return out, nil
}

// pageConfig is what playground.js reads from the page.
type pageConfig struct {
	ClientID              string    `json:"clientId"`
	AuthorizationEndpoint string    `json:"authorizationEndpoint"`
	TokenEndpoint         string    `json:"tokenEndpoint"`
	EndSessionEndpoint    string    `json:"endSessionEndpoint,omitempty"`
	Scopes                string    `json:"scopes"`
	GraphQLPath           string    `json:"graphqlPath"`
	SignInHint            string    `json:"signInHint,omitempty"`
	Examples              []Example `json:"examples"`
}

type handler struct {
	page   []byte
	csp    string
	assets http.Handler
}

// New builds the playground handler. It serves GET /, GET AssetsPath* and GET FaviconPath.
func New(cfg Config) (http.Handler, error) {
	var errs []error
	if cfg.ClientID == "" {
		errs = append(errs, errors.New("the playground client id is required"))
	}
	tokenOrigin, err := origin(cfg.TokenEndpoint)
	if err != nil {
		errs = append(errs, fmt.Errorf("token endpoint: %w", err))
	}
	if _, err := origin(cfg.AuthorizationEndpoint); err != nil {
		errs = append(errs, fmt.Errorf("authorization endpoint: %w", err))
	}
	if cfg.EndSessionEndpoint != "" {
		if _, err := origin(cfg.EndSessionEndpoint); err != nil {
			errs = append(errs, fmt.Errorf("end session endpoint: %w", err))
		}
	}
	examples, err := Examples()
	if err != nil {
		errs = append(errs, fmt.Errorf("examples: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("playground: %w", err)
	}
	cfg.Scopes = cmp.Or(cfg.Scopes, "openid profile")
	cfg.GraphQLPath = cmp.Or(cfg.GraphQLPath, "graphql")
	tmpl, err := template.New("index").Parse(indexHTML)
	if err != nil {
		return nil, fmt.Errorf("playground: page template: %w", err)
	}
	var page bytes.Buffer
	err = tmpl.Execute(&page, pageConfig{
		ClientID: cfg.ClientID, AuthorizationEndpoint: cfg.AuthorizationEndpoint,
		TokenEndpoint: cfg.TokenEndpoint, EndSessionEndpoint: cfg.EndSessionEndpoint,
		Scopes: cfg.Scopes, GraphQLPath: cfg.GraphQLPath, SignInHint: cfg.SignInHint, Examples: examples,
	})
	if err != nil {
		return nil, fmt.Errorf("playground: render page: %w", err)
	}
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		return nil, err
	}
	return &handler{
		page:   page.Bytes(),
		csp:    contentSecurityPolicy(tokenOrigin),
		assets: http.StripPrefix(AssetsPath, newAssetServer(sub)),
	}, nil
}

// contentSecurityPolicy allows scripts from this origin only (no inline
// script: the page's configuration is a JSON data block), and network access
// to this origin and the identity server's token endpoint. Inline styles are
// allowed because GraphiQL's components inject <style> elements at run time;
// styles cannot run code.
func contentSecurityPolicy(tokenOrigin string) string {
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' data:",
		"font-src 'self' data:",
		"connect-src 'self' " + tokenOrigin,
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; ")
}

func origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	if strings.HasPrefix(r.URL.Path, AssetsPath) {
		h.assets.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == FaviconPath {
		r2 := r.Clone(r.Context())
		r2.URL.Path = AssetsPath + "favicon.svg"
		h.assets.ServeHTTP(w, r2)
		return
	}
	hdr.Set("Content-Security-Policy", h.csp)
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	// The page carries per-deployment configuration; the authorization
	// code arrives in its query string.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(h.page)
}

// assetServer serves the embedded files, gzip-compressed when the client
// accepts it (graphiql.min.js is 3.5 MB, about 0.8 MB compressed). Each
// file is compressed once, on first request.
type assetServer struct {
	fsys  fs.FS
	mu    sync.Mutex
	gzips map[string][]byte
}

func newAssetServer(fsys fs.FS) *assetServer {
	return &assetServer{fsys: fsys, gzips: map[string][]byte{}}
}

func (a *assetServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	body, err := fs.ReadFile(a.fsys, name)
	if err != nil || name == "" || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" || strings.HasPrefix(name, "LICENSE") || name == "VERSIONS" {
		ctype = "text/plain; charset=utf-8"
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Cache-Control", "public, max-age=3600")
	hdr.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		body = a.gzipped(name, body)
		hdr.Set("Content-Encoding", "gzip")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

func (a *assetServer) gzipped(name string, body []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	if z, ok := a.gzips[name]; ok {
		return z
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	a.gzips[name] = buf.Bytes()
	return buf.Bytes()
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
