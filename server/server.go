// Package server is erpgraph's HTTP edge: routes, middleware (request ID,
// recovery and access log, body limit, authentication), health and
// readiness probes, the playground, and graceful shutdown. It knows the
// GraphQL handler only as an http.Handler.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/metrics"
	"github.com/erpgraph/erpgraph/server/playground"
)

// TokenVerifier verifies a bearer token; *auth.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*auth.User, error)
}

// Sessions is the server-side sign-in (package session): its endpoints are
// served under Prefix, and /graphql accepts its cookie as an alternative to a
// Bearer token. *session.Manager implements it.
type Sessions interface {
	Handler() http.Handler
	Prefix() string
	// HasCookie reports whether the request carries a session cookie.
	HasCookie(r *http.Request) bool
	// Authenticate returns the cookie's user (refreshing the session when
	// due) or a *session.Error; it checks the CSRF header itself.
	Authenticate(w http.ResponseWriter, r *http.Request) (*auth.User, error)
	// CSRFHeaders are the headers one of which a cookie request carries.
	CSRFHeaders() []string
}

// PlaygroundConfig configures the GraphiQL playground at GET /.
type PlaygroundConfig = playground.Config

// Config configures a Server. GraphQL and Verifier are required.
type Config struct {
	GraphQL  http.Handler  // serves POST and GET /graphql
	Verifier TokenVerifier // verifies Bearer tokens on /graphql
	// Sessions, when set, serves the session endpoints and lets /graphql
	// accept the session cookie. With both a Bearer token and the cookie,
	// the Bearer token wins and the cookie is not looked at.
	Sessions Sessions
	// Readiness reports the state of the upstreams (identity server, Domain
	// API, a service token) for /readyz; nil means always ready.
	Readiness  func(ctx context.Context) Readiness
	Logger     *slog.Logger // JSON access and error log; default: discard
	Playground PlaygroundConfig

	// Static, when set, is a built frontend served at / (SPA fallback to
	// index.html); the playground then moves to PlaygroundSubPath.
	Static fs.FS
	// Portal, when set, is a frontend served at PortalPath (the example
	// portal in dev mode).
	Portal fs.FS
	// FormActions are origins the frontends' forms may be redirected to
	// (the identity server: the sign-out form ends up there).
	FormActions []string

	// Audit receives the audit records (operations, refusals, first use of
	// each user token); nil = no audit log.
	Audit *slog.Logger
	// FirstUses remembers the user tokens already used, for the audit log's
	// first-use records; nil = in memory, per replica, at most
	// RateLimit.MaxClients tokens. A store that fails audits the use again.
	FirstUses FirstUseStore
	// AuditVariables is what the audit log says of variables:
	// AuditVariablesNone (default) or AuditVariablesNames. Never values.
	AuditVariables string
	// CountsUpstream says the GraphQL handler counts the ERP.net requests it
	// makes into Record.Upstream (app does, with erpclient.CountUpstream), so
	// the audit log's upstream_requests is meaningful.
	CountsUpstream bool

	// Metrics counts requests, refusals and operations; nil = none.
	Metrics *metrics.Registry
	// TracerProvider, when set, traces every request but the probes: one
	// server span each (otelhttp), under which the GraphQL operation, its
	// loaders and its ERP.net requests start their spans. A caller among
	// RateLimit.TrustedProxies continues the trace its W3C traceparent names;
	// any other caller's request starts a new trace, linked to the one it
	// named. nil = no tracing, at no cost.
	TracerProvider trace.TracerProvider

	RateLimit RateLimitConfig
	CORS      CORSConfig
	// CSRFHeaders: a GET or a simple-content-type POST must carry one of them
	// (non-empty); default DefaultCSRFHeaders.
	CSRFHeaders []string
	// TLSCertificate makes the server speak HTTPS only (TLS 1.2 or later).
	// The caller loads it (app reads the PEM files once, at start-up).
	TLSCertificate *tls.Certificate

	MaxBodyBytes     int64         // request body limit; default 1 MiB
	OperationTimeout time.Duration // deadline of one GraphQL request, inherited by ERP.net calls; default 15s
	ShutdownGrace    time.Duration // time in-flight requests get on shutdown; default 15s
	// ShutdownDelay is how long the server keeps serving after shutdown
	// begins while /readyz already answers 503, so load balancers stop
	// routing to it before it refuses requests; default 0 (drain at once).
	ShutdownDelay     time.Duration
	ReadHeaderTimeout time.Duration // default 10s
	ReadTimeout       time.Duration // whole request incl. body; default 30s
	WriteTimeout      time.Duration // from end of headers to end of response; default 60s
	IdleTimeout       time.Duration // keep-alive; default 120s
	ReadyTimeout      time.Duration // bound on one Readiness call; default 5s
}

// Defaults of the zero Config values (production-safe).
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultOperationTimeout  = 15 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultCORSMaxAge        = 10 * time.Minute
	DefaultUserRate          = 10 // requests per second per user
	DefaultUserBurst         = 30
	DefaultAnonRate          = 2 // requests per second per client IP without a token
	DefaultAnonBurst         = 10
	DefaultMaxConcurrent     = 6 // operations in flight per user or IP
	DefaultConcurrencyWait   = 100 * time.Millisecond
	DefaultMaxClients        = 100_000
)

// Server is the HTTP edge. Build it with New, run it with Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	audit    *slog.Logger // nil = off
	rates    RateStore
	slots    *slots
	seen     FirstUseStore
	tls      *tls.Config // nil = plain HTTP
	handler  http.Handler
	stopping atomic.Bool // set when shutdown starts: /readyz answers 503
	gate     gate        // in-flight requests; refuses new ones while draining
}

// New builds the server's routes and middleware.
func New(cfg Config) (*Server, error) {
	var errs []error
	if cfg.GraphQL == nil {
		errs = append(errs, errors.New("a GraphQL handler is required"))
	}
	if cfg.Verifier == nil {
		errs = append(errs, errors.New("a token verifier is required"))
	}
	if cfg.MaxBodyBytes < 0 || cfg.ShutdownGrace < 0 || cfg.ShutdownDelay < 0 || cfg.OperationTimeout < 0 || cfg.ReadHeaderTimeout < 0 ||
		cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 || cfg.IdleTimeout < 0 || cfg.RateLimit.ConcurrencyWait < 0 ||
		cfg.RateLimit.MaxClients < 0 || cfg.RateLimit.UserBurst < 0 || cfg.RateLimit.AnonBurst < 0 {
		errs = append(errs, errors.New("limits and timeouts must not be negative"))
	}
	for _, o := range cfg.CORS.Origins {
		if !ValidOrigin(o) {
			errs = append(errs, fmt.Errorf("CORS origin %q is not scheme://host[:port] (no wildcards, paths or trailing slash)", o))
		}
	}
	switch cfg.AuditVariables {
	case "", AuditVariablesNone, AuditVariablesNames:
	default:
		errs = append(errs, fmt.Errorf("audit variables %q is not %q or %q", cfg.AuditVariables, AuditVariablesNone, AuditVariablesNames))
	}
	var tlsCfg *tls.Config
	if cfg.TLSCertificate != nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cfg.TLSCertificate}}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("server: config: %w", err)
	}
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	cfg.OperationTimeout = cmp.Or(cfg.OperationTimeout, DefaultOperationTimeout)
	cfg.AuditVariables = cmp.Or(cfg.AuditVariables, AuditVariablesNone)
	cfg.CORS.MaxAge = cmp.Or(cfg.CORS.MaxAge, DefaultCORSMaxAge)
	if cfg.CSRFHeaders == nil {
		cfg.CSRFHeaders = DefaultCSRFHeaders
	}
	if cfg.Sessions != nil {
		// The session's CSRF header (X-CSRF: 1) is as good a proof of a
		// preflight as Apollo's headers.
		cfg.CSRFHeaders = append(append([]string(nil), cfg.CSRFHeaders...), cfg.Sessions.CSRFHeaders()...)
	}
	cfg.RateLimit.defaults()
	if cfg.FirstUses == nil {
		cfg.FirstUses = NewMemoryFirstUseStore(cfg.RateLimit.MaxClients)
	}
	cfg.ShutdownGrace = cmp.Or(cfg.ShutdownGrace, 15*time.Second)
	cfg.ReadHeaderTimeout = cmp.Or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	cfg.ReadTimeout = cmp.Or(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.ReadyTimeout = cmp.Or(cfg.ReadyTimeout, 5*time.Second)
	s := &Server{cfg: cfg, log: cfg.Logger, audit: cfg.Audit, rates: cfg.RateLimit.Store,
		slots: newSlots(cfg.RateLimit.MaxConcurrent, cfg.RateLimit.ConcurrencyWait),
		seen:  cfg.FirstUses, tls: tlsCfg}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	mux := http.NewServeMux()
	// Order per docs/architecture.md § One request, limits after authentication so that a user is
	// counted as themselves; nothing reaches GraphQL (or ERP.net) before
	// CSRF, authentication and limits passed.
	graphql := s.apiHeaders(s.cors(s.preventCSRF(s.authenticate(s.limit(s.prepare(cfg.GraphQL))))))
	mux.Handle("GET /graphql", graphql)
	mux.Handle("POST /graphql", graphql)
	mux.Handle("OPTIONS /graphql", graphql)
	mux.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, POST")
		writeError(w, r, http.StatusMethodNotAllowed, errcode.BadRequest, "use GET or POST on /graphql")
	})
	if cfg.Sessions != nil {
		// Only the callback costs an identity-server call (the code
		// exchange): it gets the per-IP limit. The other endpoints answer
		// from the store, and a per-IP limit would throttle users behind one
		// NAT (or the identity server's back-channel logouts).
		sh := cfg.Sessions.Handler()
		mux.Handle(cfg.Sessions.Prefix()+"/", s.apiHeaders(sh))
		mux.Handle(cfg.Sessions.Prefix()+"/callback", s.apiHeaders(s.limit(sh)))
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Playground.Enabled {
		if cfg.Static != nil && cfg.Playground.GraphQLPath == "" {
			cfg.Playground.GraphQLPath = "/graphql"
		}
		pg, err := playground.New(cfg.Playground)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		mux.Handle("GET "+s.PlaygroundPath()+"{$}", pg)
		mux.Handle("GET "+playground.AssetsPath, pg)
		if cfg.Static == nil { // a frontend at / serves its own icon
			mux.Handle("GET "+playground.FaviconPath, pg)
		}
	}
	csp := StaticCSP(cfg.FormActions...)
	if cfg.Static != nil {
		mux.Handle("/", Static(cfg.Static, "/", csp)) // every method: Static answers 405 itself (a "GET /" pattern would conflict with "/auth/")
	}
	if cfg.Portal != nil {
		mux.Handle("GET "+PortalPath, Static(cfg.Portal, PortalPath, csp))
	}
	s.handler = s.traced(cfg.Metrics.Middleware(s.record(s.recoverAndLog(s.admit(s.limitBody(mux))))))
	return s, nil
}

// PortalPath is where Config.Portal is served.
const PortalPath = "/portal/"

// PlaygroundSubPath is the playground's path when a frontend is served at /.
const PlaygroundSubPath = "/playground/"

// PlaygroundPath is where the playground is served: / , or
// PlaygroundSubPath when a frontend is served at /.
func (s *Server) PlaygroundPath() string {
	if s.cfg.Static != nil {
		return PlaygroundSubPath
	}
	return "/"
}

// Handler is the server's complete handler (routes and middleware), for tests
// and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// TLS reports whether the server speaks HTTPS.
func (s *Server) TLS() bool { return s.tls != nil }

// apiHeaders are the baseline headers of every /graphql answer: the body is
// JSON, never to be sniffed as something else.
func (s *Server) apiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// Serve serves on ln until ctx is done, then shuts down gracefully:
//  1. /readyz answers 503 at once, while requests are still served for
//     ShutdownDelay (load balancers notice and stop routing here);
//  2. new requests are refused with 503 SHUTTING_DOWN and the requests in
//     flight get up to ShutdownGrace to finish;
//  3. the listener and the idle connections close; whatever is left after
//     the grace period is cut off and Serve reports it.
//
// Serve returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig:         s.tls,
	}
	done := make(chan error, 1)
	go func() {
		if s.tls != nil {
			done <- srv.ServeTLS(ln, "", "") // certificates are in TLSConfig
			return
		}
		done <- srv.Serve(ln)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	s.log.Info("server: shutting down", "delay", s.cfg.ShutdownDelay.String(), "grace", s.cfg.ShutdownGrace.String())
	var served error // set when the HTTP server ended by itself
	if s.cfg.ShutdownDelay > 0 {
		delay := time.NewTimer(s.cfg.ShutdownDelay)
		select {
		case <-delay.C:
		case served = <-done: // the listener failed: nothing left to keep serving
			delay.Stop()
		}
	}
	// ctx is already done: the grace period needs a timer of its own.
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	var err error
	select {
	case <-s.gate.drain():
	case <-grace.C:
		err = fmt.Errorf("server: shutdown: in-flight requests did not finish within %v", s.cfg.ShutdownGrace)
	}
	if served != nil {
		return errors.Join(err, fmt.Errorf("server: %w", served))
	}
	// Nothing is in flight any more (or the grace is over): close the
	// listener and the idle connections; Shutdown waits only for responses
	// still being written.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTail)
	defer cancel()
	if err != nil || srv.Shutdown(sctx) != nil {
		_ = srv.Close()
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("server: %w", serr))
	}
	return err
}

// shutdownTail bounds the last step of a shutdown, after the in-flight
// requests finished: closing connections whose last bytes are still on the way.
const shutdownTail = 5 * time.Second
