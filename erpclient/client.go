// Package erpclient is the ERP.net Domain API client of erpgraph: discovery,
// the process's one service token (client credentials), typed OData query
// building with a single literal-escaping function, decoding of ERP.net JSON,
// typed errors, and the upstream scheduler that keeps ERP.net's session
// limits while serving many concurrent callers (deduplicated GETs and
// multipart $batch).
//
// It shares no code with erpsim: it implements the protocol as ERP.net
// documents it (docs.erp.net; the facts erpgraph relies on are in docs/erpnet.md),
// and its tests run against erpsim over TCP.
//
// Reads: build a Query (typed filters, the caller's access Scope), then
// List (one page), All (every page), Get, ByIDs or Count. Every request goes
// through the scheduler, which keeps ERP.net's per-session limits (one in
// flight, 600 a minute) and serves concurrent callers together. Writes:
// CreateSalesOrder/Create, Patch, ChangeState and atomic Changesets. Errors
// wrap the sentinels (ErrNotFound, ErrConflict, ErrBusy, ErrUnauthorized,
// ErrForbidden, ErrUnavailable, ErrInvalidQuery, ErrScopeRequired).
package erpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

// Client talks to one ERP.net instance's Domain API with the process's
// service token. Build one per process with New; it is safe for concurrent use.
type Client struct {
	http   *http.Client
	issuer string
	root   *url.URL // OData service root, ends with "/"
	tokens *tokenSource
	sched  *scheduler
	log    *slog.Logger
	audit  *slog.Logger
	stats  counters
	cancel context.CancelFunc
	closed atomic.Bool
	cache  *readCache // nil when Config.Cache has no store
	pings  singleflight.Group
}

// maxBody bounds any upstream body read into memory.
const maxBody = 64 << 20

// codeRE accepts OAuth error codes worth repeating in an error.
var codeRE = regexp.MustCompile(`^[a-z_]{1,40}$`)

// New validates cfg, discovers the instance's endpoints and builds the
// client. ctx is the application's lifetime: the token source keeps it for
// exchanges, and the scheduler stops when it ends (or on Close). New does not
// fetch a token; Ping does.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	// never follow redirects: a redirect would carry the bearer token or the
	// client secret to a place nobody configured
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	audit := cfg.Audit
	if audit == nil {
		audit = logger
	}
	clock := cfg.Clock
	if clock == nil {
		clock = time.Now
	}

	issuer, odataRoot := strings.TrimRight(cfg.IdentityURL, "/"), cfg.ODataURL
	if cfg.InstanceURL != "" {
		var err error
		issuer, odataRoot, err = discoverInstance(ctx, &noRedirect, cfg.InstanceURL, cfg.AllowInsecure)
		if err != nil {
			return nil, err
		}
	}
	if !strings.HasSuffix(odataRoot, "/") {
		odataRoot += "/"
	}
	root, err := url.Parse(odataRoot)
	if err != nil {
		return nil, fmt.Errorf("erpclient: OData root: %w", err)
	}
	tokenURL, err := discoverTokenEndpoint(ctx, &noRedirect, issuer, cfg.AllowInsecure)
	if err != nil {
		return nil, err
	}

	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"read"}
	}
	appCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() { // the application's end stops the client too
		select {
		case <-ctx.Done():
		case <-appCtx.Done():
		}
		cancel()
	}()
	c := &Client{http: &noRedirect, issuer: issuer, root: root, log: logger, audit: audit, cancel: cancel}
	c.tokens = &tokenSource{
		conf: &clientcredentials.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, TokenURL: tokenURL, Scopes: scopes,
			AuthStyle: oauth2.AuthStyleInParams, // ERP.net documents the form-post style
		},
		appCtx:   context.WithValue(appCtx, oauth2.HTTPClient, &noRedirect),
		now:      clock,
		audit:    audit,
		clientID: cfg.ClientID,
		stats:    &c.stats,
	}
	c.sched = newScheduler(appCtx, cfg.Scheduler.withDefaults(), c, clock)
	c.cache = newReadCache(cfg.Cache, clock)
	logger.LogAttrs(ctx, slog.LevelInfo, "erpclient ready",
		slog.String("issuer", issuer), slog.String("token_endpoint", tokenURL), slog.String("odata_root", root.String()),
		slog.String("client_id", cfg.ClientID), slog.String("scopes", strings.Join(scopes, " ")))
	return c, nil
}

// Close stops the scheduler; waiting calls fail with ErrClosed. Requests in
// flight finish or fail on their own.
func (c *Client) Close() {
	if c.closed.CompareAndSwap(false, true) {
		c.sched.close()
		c.cancel()
		// kept-alive connections hold a goroutine each until they time out
		c.http.CloseIdleConnections()
	}
}

// IdentityURL is the instance identity server (the issuer of user tokens),
// as discovered or configured, without a trailing slash.
func (c *Client) IdentityURL() string { return c.issuer }

// ODataURL is the Domain API service root, ending with "/".
func (c *Client) ODataURL() string { return c.root.String() }

// Ping checks readiness: a service token is obtainable and the Domain API
// answers. An upstream answer within PingFresh, with no failure after it,
// already proves that, so a Ping then costs no ERP.net request: load balancers and kubelets probe every
// few seconds, and each probe would otherwise spend the session's 600 a minute
// that users need. Otherwise it sends a minimal read through the scheduler;
// concurrent Pings share that one read.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.tokens.token(ctx); err != nil {
		return fmt.Errorf("erpclient: ping: %w", err)
	}
	if c.answeredWithin(PingFresh) {
		return nil
	}
	ch := c.pings.DoChan("ping", func() (any, error) {
		// detached from the first caller's cancellation, bounded by its deadline
		pctx := context.WithoutCancel(ctx)
		if d, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			pctx, cancel = context.WithDeadline(pctx, d)
			defer cancel()
		}
		_, err := c.send(pctx, &request{
			method: http.MethodGet, path: SetCurrencies, query: "$top=1&$select=Id",
			op: "ping", read: true,
		})
		return nil, err
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return fmt.Errorf("erpclient: ping: %w", ctx.Err())
	}
}

// PingFresh is how recent an upstream answer must be for Ping to take it as
// proof that ERP.net answers, instead of sending a read of its own.
const PingFresh = 10 * time.Second

// answeredWithin reports whether the last upstream outcome (any caller's) was
// an answer, within d by the client's clock, with the breaker closed.
func (c *Client) answeredWithin(d time.Duration) bool {
	s := c.sched
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.breaker
	if b.state != BreakerClosed || b.lastOK.IsZero() || !b.lastOK.After(b.lastFailed) {
		return false
	}
	return b.now().Sub(b.lastOK) < d
}

// --- discovery ---

type autoDiscovery struct {
	WebSites []struct {
		Type                 string            `json:"Type"`
		Status               string            `json:"Status"`
		URL                  string            `json:"Url"`
		AdditionalProperties map[string]string `json:"AdditionalProperties"`
	} `json:"WebSites"`
}

// discoverInstance reads {instance}/sys/auto-discovery (docs/erpnet.md § Instance discovery): the
// site of Type "ID" is the issuer, the "DomainAPI" site names the OData root.
func discoverInstance(ctx context.Context, hc *http.Client, instance string, allowInsecure bool) (issuer, odataRoot string, err error) {
	var d autoDiscovery
	if err := getJSON(ctx, hc, strings.TrimRight(instance, "/")+"/sys/auto-discovery", &d); err != nil {
		return "", "", fmt.Errorf("erpclient: auto-discovery: %w", err)
	}
	for _, s := range d.WebSites {
		switch s.Type {
		case "ID":
			issuer = strings.TrimRight(s.URL, "/")
		case "DomainAPI":
			odataRoot = s.AdditionalProperties["ODataServiceRoot"]
			if odataRoot == "" && s.URL != "" {
				odataRoot = strings.TrimRight(s.URL, "/") + "/domain/odata/"
			}
		}
	}
	if issuer == "" || odataRoot == "" {
		return "", "", fmt.Errorf("erpclient: auto-discovery: %w: the instance lists no ID or DomainAPI site", ErrUnavailable)
	}
	if err := checkURL(issuer, allowInsecure); err != nil {
		return "", "", fmt.Errorf("erpclient: auto-discovery: identity site: %w", err)
	}
	if err := checkURL(odataRoot, allowInsecure); err != nil {
		return "", "", fmt.Errorf("erpclient: auto-discovery: OData root: %w", err)
	}
	return issuer, odataRoot, nil
}

// discoverTokenEndpoint reads the issuer's OpenID configuration.
func discoverTokenEndpoint(ctx context.Context, hc *http.Client, issuer string, allowInsecure bool) (string, error) {
	var d struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := getJSON(ctx, hc, issuer+"/.well-known/openid-configuration", &d); err != nil {
		return "", fmt.Errorf("erpclient: OpenID discovery: %w", err)
	}
	if d.Issuer != "" && !strings.EqualFold(strings.TrimRight(d.Issuer, "/"), issuer) {
		return "", fmt.Errorf("erpclient: OpenID discovery: %w: the document names issuer %q, expected %q", ErrUnavailable, d.Issuer, issuer)
	}
	if d.TokenEndpoint == "" {
		return "", fmt.Errorf("erpclient: OpenID discovery: %w: no token_endpoint", ErrUnavailable)
	}
	if err := checkURL(d.TokenEndpoint, allowInsecure); err != nil {
		return "", fmt.Errorf("erpclient: OpenID discovery: token endpoint: %w", err)
	}
	return d.TokenEndpoint, nil
}

// getJSON is an unauthenticated GET for discovery documents.
func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, stripURL(err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, stripURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, stripURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: status %d", ErrUnavailable, resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: malformed JSON: %w", ErrUnavailable, err)
	}
	return nil
}

// stripURL removes the URL that *url.Error puts in its text.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// --- one upstream exchange ---

// request is one Domain API operation, relative to the service root.
type request struct {
	method      string
	path        string // "Crm_Sales_SalesOrders", "Crm_Sales_SalesOrders(guid)/ChangeState", "$batch"
	query       string // encoded query options
	body        []byte
	contentType string
	op          string // for errors and logs, e.g. "list Crm_Sales_SalesOrders"
	read        bool   // idempotent GET: may be shared, batched and retried
	// decode turns a 2xx body into the caller's value, once for every call
	// sharing the answer; its error is an ErrUnavailable (a malformed answer
	// is retried like an outage). kind names the decoded type: calls share
	// an answer only when they decode it alike.
	decode func(body []byte) (any, error)
	kind   string
	// noCache: always read live (the background sync must see ERP.net itself)
	noCache bool
	// keep, when set, gets the decoded 2xx answer before identical reads can
	// no longer join this one: the read cache stores it there, so a read that
	// missed the cache either joins this request or finds the entry.
	keep func(*response)
	// missedAt is scheduler.kept+1 as it was before the read missed the cache (0: not looked up)
	missedAt uint64
}

func (r *request) key() string {
	if !r.read {
		return ""
	}
	return r.path + "?" + r.query + "#" + r.kind
}

// target is the request's URL: the service root plus the relative path.
func (c *Client) target(r *request) string {
	u := *c.root
	u.Path += r.path
	u.RawPath = ""
	u.RawQuery = r.query
	return u.String()
}

// accept is the media type each kind of request answers with: $batch
// answers multipart, $count plain text, everything else JSON. Strict OData
// servers refuse (406) an Accept their answer cannot meet.
func accept(target string) string {
	path, _, _ := strings.Cut(target, "?")
	switch {
	case strings.HasSuffix(path, "/$batch"):
		return "multipart/mixed"
	case strings.HasSuffix(path, "/$count"):
		return "text/plain, application/json;q=0.5"
	}
	return "application/json"
}

// tokenFailure is an exchange that failed for want of a service token: the
// identity server's trouble, not the Domain API's (the breaker ignores it).
type tokenFailure struct{ err error }

func (e *tokenFailure) Error() string { return e.err.Error() }
func (e *tokenFailure) Unwrap() error { return e.err }

// response is an upstream answer, status and body kept as they came.
type response struct {
	status int
	header http.Header
	body   []byte
	val    any // request.decode's result; shared by the calls of one part
}

func (r *response) ok() bool { return r.status >= 200 && r.status < 300 }

// exchange performs one HTTP request with the service token. A 401
// invalidates the token and the request is repeated once with a fresh one
// (a 401 means the request was refused before it ran, so this is safe for writes too).
func (c *Client) exchange(ctx context.Context, method, target, contentType string, body []byte) (*response, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.token(ctx)
		if err != nil {
			return nil, &tokenFailure{err}
		}
		req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("build request: %w", stripURL(err))
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Accept", accept(target))
		req.Header.Set("OData-Version", "4.0")
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		c.stats.upstream.Add(1)
		if n, ok := ctx.Value(sentKey{}).(*atomic.Int32); ok {
			n.Add(1)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() == nil { // not a request abandoned by all its callers
				c.stats.transportErrors.Add(1)
			}
			return nil, stripURL(err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			c.stats.transportErrors.Add(1)
			return nil, fmt.Errorf("read body: %w", stripURL(err))
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			c.stats.status401.Add(1)
			if attempt == 0 {
				trace.SpanFromContext(ctx).AddEvent("erp.token_refused") // the repeat is this span's second HTTP request
				c.log.LogAttrs(ctx, slog.LevelInfo, "ERP.net refused the service token; fetching a new one",
					slog.String("fingerprint", fingerprint(tok.AccessToken)))
				c.tokens.invalidate(tok)
				// the repeat is a request of its own for ERP.net's per-minute count
				if err := c.sched.limiter.Wait(ctx); err != nil {
					return nil, err
				}
				continue
			}
		case http.StatusTooManyRequests:
			c.stats.status429.Add(1)
		case http.StatusServiceUnavailable:
			c.stats.status503.Add(1)
		}
		return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
	}
}
