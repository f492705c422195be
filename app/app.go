package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/graph/loader"
	"github.com/erpgraph/erpgraph/metrics"
	"github.com/erpgraph/erpgraph/mutation"
	"github.com/erpgraph/erpgraph/portal"
	"github.com/erpgraph/erpgraph/redisstore"
	"github.com/erpgraph/erpgraph/server"
	"github.com/erpgraph/erpgraph/session"
)

// App is the wired program: a bound listener, the ERP.net client, the token
// verifier, the access resolver, the GraphQL handler and the HTTP server,
// plus erpsim in dev mode.
type App struct {
	cfg      Config
	log      *slog.Logger
	ln       net.Listener
	url      string
	sim      *erpsim.Sim // nil unless dev mode
	erp      *erpclient.Client
	verifier *auth.Verifier
	sessions *session.Manager // nil unless ERPGRAPH_SESSIONS
	sync     *erpclient.Sync  // nil when the sync is off
	built    bool             // New succeeded (the sync runs)
	srv      *server.Server
	metrics  *metrics.Registry        // nil when metrics are off
	redis    *redisstore.Client       // nil unless ERPGRAPH_REDIS_URL
	metLn    net.Listener             // the metrics listener, when on
	tracer   *sdktrace.TracerProvider // nil when tracing is off
	audit    *slog.Logger             // nil when the audit log is off
	auditOut io.Closer                // the audit file, if any
	stop     context.CancelFunc       // ends the components' lifetime (Close)
}

// New validates cfg (after WithDefaults), binds the listener (so URL is known
// before Serve), starts erpsim in dev mode, and wires everything.
//
// Cancelling ctx while New runs aborts it. Afterwards the long-lived parts
// (the service token source and scheduler, the key set refresh, erpsim) live
// until Close, not until ctx ends: when ctx ends Serve drains in-flight
// requests, and those still need ERP.net.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg, files, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	return build(ctx, cfg, files)
}

// NewFromEnv is ConfigFromEnv and New in one, validating the configuration
// (and reading its files) once: what `erpgraph serve` runs.
func NewFromEnv(ctx context.Context, getenv func(string) string, args []string) (*App, error) {
	cfg, problems, err := parseEnv(getenv, args)
	if err != nil {
		return nil, err
	}
	cfg, files, err := cfg.resolve(problems...)
	if err != nil {
		return nil, err
	}
	return build(ctx, cfg, files)
}

// build wires a resolved configuration.
func build(ctx context.Context, cfg Config, files *loaded) (*App, error) {
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	abortSetup := context.AfterFunc(ctx, stop)
	defer abortSetup()
	a := &App{cfg: cfg, log: cfg.Logger, stop: stop}
	debug.SetGCPercent(cmp.Or(cfg.GCPercent, DefaultGCPercent)) // process-wide, like GOGC itself
	if a.log == nil {
		a.log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	built := false
	defer func() {
		a.built = built
		if !built {
			_ = a.Close()
		}
	}()
	var err error
	if err = a.openAudit(); err != nil {
		return nil, err
	}
	if err = a.openTracing(life); err != nil {
		return nil, err
	}
	if err = a.openRedis(); err != nil {
		return nil, err
	}
	a.ln, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("app: listen on %s: %w", cfg.Addr, err)
	}
	a.url = baseURL(a.ln.Addr(), cfg.TLSCertFile != "")
	if cfg.MetricsAddr != "" {
		if a.metLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("app: listen on %s (metrics): %w", cfg.MetricsAddr, err)
		}
		a.metrics = metrics.New(metrics.Config{})
	}

	erpCfg := erpclient.Config{
		InstanceURL: cfg.InstanceURL, IdentityURL: cfg.IdentityURL, ODataURL: cfg.ODataURL,
		ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Scopes: cfg.Scopes,
		Scheduler: cfg.Scheduler, Logger: a.log.With("component", "erpclient"), Audit: a.audit,
		Cache: a.sharedCache(cfg.ReadCache.cacheConfig()),
	}
	if erpCfg.Audit == nil { // erpclient's default would be its operational log
		erpCfg.Audit = slog.New(slog.DiscardHandler)
	}
	if cfg.Dev() {
		if a.sim, err = a.startSim(life); err != nil {
			return nil, err
		}
		erpCfg.InstanceURL = a.sim.URL()
	}
	if a.erp, err = erpclient.New(life, erpCfg); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if err = a.metrics.WatchERP(a.erp, metrics.ERPLimits{
		MaxInFlight:       cmp.Or(cfg.Scheduler.MaxInFlight, erpclient.DefaultMaxInFlight),
		RequestsPerMinute: cmp.Or(cfg.Scheduler.RequestsPerMinute, erpclient.DefaultRequestsPerMinute),
	}); err != nil {
		return nil, fmt.Errorf("app: metrics: %w", err)
	}
	a.verifier, err = auth.NewVerifier(life, auth.Config{
		Issuer: a.erp.IdentityURL(), ClientIDs: cfg.TrustedClientIDs, Audience: cfg.Audience,
		Logger: a.log.With("component", "auth"),
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	resolver := access.NewResolver(a.erp, access.Config{
		AllowInternalUsers: cfg.AllowInternalUsers, Logger: a.log.With("component", "access"), Cache: a.grantCache(),
	})
	writes, err := mutation.New(mutation.Config{
		ERP: a.erp, Enabled: cfg.Writes.Enabled, KeyTTL: cfg.Writes.IdempotencyTTL, Keys: a.idempotencyKeys(),
		SubmitState: erpclient.DocumentState(cfg.Writes.SubmitState), RatePerMinute: cfg.Writes.PerMinute, Rates: a.writeRates(),
		Audit: cmp.Or(a.audit, slog.New(slog.DiscardHandler)), Logger: a.log.With("component", "mutation"),
		OnReplay: a.metrics.IdempotentReplay, OnKeysUnavailable: func() { a.metrics.StoreFailed("idempotency") },
		AddUpstream: func(ctx context.Context, n int64) {
			if rec := server.RecordOf(ctx); rec != nil {
				rec.Upstream.Add(n)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	var ref loader.RefSource
	if sc, ok := cfg.ReadCache.syncConfig(); ok {
		sc.Logger = a.log.With("component", "sync")
		a.sync = erpclient.NewSync(a.erp, sc, loader.SyncSets()...)
		ref = a.sync
	}
	gql := graph.NewHandler(graph.Config{
		ERP: a.erp, Access: resolver, Logger: a.log.With("component", "graph"), Introspection: cfg.Introspection, Ref: ref,
		Limits: cfg.QueryLimits, APQCacheSize: cfg.APQCacheSize, TrustedDocuments: files.trusted,
		TrustedDocumentsOnly: cfg.TrustedDocumentsOnly, CacheMaxAge: cfg.CacheMaxAge, Writes: writes,
		RequestID: server.RequestID, Extensions: []graphql.HandlerExtension{server.RecordExtension{}},
		PersistedQueries: a.persistedQueries(),
	})
	p := a.verifier.Provider()
	pg := server.PlaygroundConfig{
		Enabled: cfg.Playground, ClientID: cfg.PlaygroundClientID,
		AuthorizationEndpoint: p.AuthorizationEndpoint, TokenEndpoint: p.TokenEndpoint, EndSessionEndpoint: p.EndSessionEndpoint,
	}
	if a.sim != nil {
		pg.SignInHint = "Demo sign-ins, password " + fixture.DemoPassword + ": " + strings.Join(demoLogins(), ", ")
	}
	var sessions server.Sessions
	if cfg.Session.Enabled {
		if a.sessions, err = a.newSessions(life); err != nil {
			return nil, err
		}
		sessions = a.sessions
	}
	var static fs.FS
	if cfg.StaticDir != "" {
		static = os.DirFS(cfg.StaticDir)
	}
	var portalFS fs.FS
	if cfg.Portal {
		portalFS = portal.FS()
	}
	var formActions []string
	if u, err := url.Parse(p.EndSessionEndpoint); err == nil && u.Host != "" {
		formActions = append(formActions, u.Scheme+"://"+u.Host) // the sign-out form is redirected there
	}
	a.srv, err = server.New(server.Config{
		Sessions: sessions, Static: static, Portal: portalFS, FormActions: formActions,
		GraphQL: upstreamFor(gql), Verifier: a.verifier, Readiness: a.readiness, Logger: a.log.With("component", "server"),
		Playground: pg, ShutdownGrace: cfg.ShutdownGrace, ShutdownDelay: cfg.ShutdownDelay,
		Audit: a.audit, AuditVariables: cfg.AuditVariables, CountsUpstream: true, Metrics: a.metrics, TracerProvider: a.tracerProvider(),
		RateLimit: a.rateLimit(), FirstUses: a.firstUses(), CORS: cfg.CORS, CSRFHeaders: cfg.CSRFHeaders,
		TLSCertificate: files.cert,
		MaxBodyBytes:   cfg.MaxBodyBytes, OperationTimeout: cfg.OperationTimeout,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if !abortSetup() { // ctx ended just now: the parts may already be stopping
		return nil, fmt.Errorf("app: %w", context.Cause(ctx))
	}
	built = true
	if a.sync != nil {
		go a.sync.Run(life)
	}
	a.log.Info("app: ready", "url", a.url, "writes", cfg.writesMode(), "config", cfg)
	return a, nil
}

// startSim starts erpsim with the playground application extended to this
// server's URL, so the in-browser sign-in may redirect back here.
func (a *App) startSim(ctx context.Context) (*erpsim.Sim, error) {
	apps := fixture.Apps()
	// Browsers treat localhost and 127.0.0.1 as different origins; people type either.
	origins := []string{a.url}
	for _, swap := range [][2]string{{"://127.0.0.1:", "://localhost:"}, {"://localhost:", "://127.0.0.1:"}} {
		if alt := strings.Replace(a.url, swap[0], swap[1], 1); alt != a.url {
			origins = append(origins, alt)
		}
	}
	if pu := a.cfg.Session.PublicURL; pu != "" {
		origins = appendNew(origins, strings.TrimSuffix(pu, "/"))
	}
	pgPath := "/"
	if a.cfg.StaticDir != "" {
		pgPath = server.PlaygroundSubPath
	}
	prefix := a.sessionPrefix()
	for i := range apps {
		switch apps[i].ClientID {
		case a.cfg.PlaygroundClientID:
			for _, o := range origins {
				apps[i].RedirectURIs = appendNew(apps[i].RedirectURIs, o+pgPath)
				apps[i].PostLogoutRedirectURIs = appendNew(apps[i].PostLogoutRedirectURIs, o+pgPath)
				apps[i].AllowedOrigins = appendNew(apps[i].AllowedOrigins, o)
			}
		case a.cfg.ClientID:
			// erpgraph's own sign-in (sessions): the real callback on
			// whatever port this process listens on.
			for _, o := range origins {
				apps[i].RedirectURIs = appendNew(apps[i].RedirectURIs, o+prefix+"/callback")
				apps[i].PostLogoutRedirectURIs = appendNew(apps[i].PostLogoutRedirectURIs, o+"/")
				apps[i].PostLogoutRedirectURIs = appendNew(apps[i].PostLogoutRedirectURIs, o+server.PortalPath)
			}
			if pl := a.cfg.Session.PostLogoutRedirectURL; pl != "" {
				apps[i].PostLogoutRedirectURIs = appendNew(apps[i].PostLogoutRedirectURIs, pl)
			}
			apps[i].BackChannelLogoutURI = a.url + prefix + "/backchannel-logout"
		}
	}
	opts := erpsim.Options{Addr: a.cfg.SimAddr, Apps: apps, Scale: a.cfg.SimScale, Users: a.cfg.SimUsers, Logger: a.log.With("component", "erpsim")}
	opts.Addr = cmp.Or(opts.Addr, DefaultSimAddr)
	sim, err := erpsim.Start(ctx, opts)
	if err != nil && a.cfg.SimAddr == "" && ctx.Err() == nil {
		// The usual port is taken (another erpgraph, a test): any port will do.
		a.log.Warn("app: erpsim's usual address is busy; using a free port", "addr", opts.Addr, "err", err)
		opts.Addr = "127.0.0.1:0"
		sim, err = erpsim.Start(ctx, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("app: start erpsim: %w", err)
	}
	return sim, nil
}

func appendNew(list []string, v string) []string {
	for _, have := range list {
		if have == v {
			return list
		}
	}
	return append(list, v)
}

// baseURL is the http(s) URL of a bound address; an unspecified host
// (0.0.0.0, ::) is shown as localhost, which browsers can open.
func baseURL(addr net.Addr, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + net.JoinHostPort(host, port)
}

// openAudit sets up the audit stream: a JSON log of its own (so it can go to
// its own file), by default next to the operational log.
func (a *App) openAudit() error {
	var out io.Writer
	switch dest := a.cfg.AuditLog; {
	case a.cfg.AuditLogger != nil:
		a.audit = a.cfg.AuditLogger
		return nil
	case dest == "off":
		return nil
	case dest == "" && a.cfg.Logger != nil:
		a.audit = a.cfg.Logger.With("log", "audit")
		return nil
	case dest == "" || dest == "stderr":
		out = os.Stderr
	case dest == "stdout":
		out = os.Stdout
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("app: audit log: %w", err)
		}
		a.auditOut, out = f, f
	}
	a.audit = slog.New(slog.NewJSONHandler(out, nil)).With("log", "audit")
	return nil
}

// readiness is the readiness report. The instance can serve while the Domain
// API answers with a valid service token, so an identity-server outage alone
// leaves it ready but degraded: user tokens keep verifying with the cached
// signing keys and the service token stays in use until it expires. Once the
// Domain API or the service token fails, nothing works: not ready. Each call
// checks afresh, so recovery needs no restart.
func (a *App) readiness(ctx context.Context) server.Readiness {
	var idErr error
	identity := make(chan struct{})
	go func() {
		defer close(identity)
		idErr = a.verifier.Ping(ctx)
	}()
	var red server.Component
	var hasRedis bool
	redisDone := make(chan struct{})
	go func() {
		defer close(redisDone)
		red, hasRedis = a.redisComponent(ctx)
	}()
	erpErr := a.erp.Ping(ctx) // through the breaker: an open one fails fast, a half-open one lets this probe
	<-identity
	<-redisDone
	h := a.erp.Health()

	rep := server.Readiness{Status: server.StatusOK, Components: map[string]server.Component{}}
	id := server.Component{Status: server.StatusOK}
	if idErr != nil {
		a.log.Warn("app: identity server not answering", "err", idErr)
		id = server.Component{Status: server.StatusDown,
			Detail: "identity server unreachable: signed-in users' tokens still verify with the cached signing keys; new sign-ins fail"}
	}
	erp := server.Component{Status: server.StatusOK}
	switch {
	case erpErr != nil:
		a.log.Warn("app: ERP.net not answering", "err", erpErr, "breaker", h.Breaker, "token", h.Token)
		erp = server.Component{Status: server.StatusDown, Detail: erpDownDetail(h)}
	case h.Degraded():
		erp = server.Component{Status: server.StatusDegraded, Detail: erpDegradedDetail(h)}
	}
	rep.Components["identity"], rep.Components["erp"] = id, erp
	rep.Components["writes"] = a.cfg.writesComponent()
	if hasRedis {
		rep.Components["redis"] = red
	}
	// informative only: until the first sync finishes, reference data is read from ERP.net as needed
	rep.Components["sync"] = syncComponent(a.sync)
	switch {
	case erp.Status == server.StatusDown:
		rep.Status, rep.Error = server.StatusUnavailable, "ERP.net cannot be used"
	case id.Status != server.StatusOK || erp.Status != server.StatusOK || hasRedis && red.Status != server.StatusOK:
		rep.Status = server.StatusDegraded
	}
	return rep
}

// erpDownDetail says, in public words, why ERP.net cannot be used.
func erpDownDetail(h erpclient.Health) string {
	switch {
	case h.Token == erpclient.TokenExpired || h.Token == erpclient.TokenNone && h.TokenError != "":
		return "no valid service token: the identity server does not issue one"
	case h.Breaker == erpclient.BreakerOpen:
		return "ERP.net keeps failing: calls fail fast until a probe succeeds"
	}
	return "ERP.net's Domain API does not answer"
}

// erpDegradedDetail says why ERP.net works but may soon not.
func erpDegradedDetail(h erpclient.Health) string {
	if h.Token == erpclient.TokenStale {
		return "the service token cannot be renewed; the current one stays in use until " + h.TokenExpiry.UTC().Format(time.RFC3339)
	}
	return "ERP.net is recovering from failures (circuit breaker " + string(h.Breaker) + ")"
}

// Serve serves HTTP until ctx is done, then shuts down gracefully (in-flight
// requests get Config.ShutdownGrace).
//
// The metrics listener, when on, serves until the GraphQL server has
// drained, so the shutdown itself can be watched.
func (a *App) Serve(ctx context.Context) error {
	if a.metLn == nil {
		return a.srv.Serve(ctx, a.ln)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- msrv.Serve(a.metLn) }()
	err := a.srv.Serve(ctx, a.ln)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if serr := msrv.Shutdown(sctx); serr != nil {
		_ = msrv.Close()
	}
	if merr := <-served; !errors.Is(merr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("app: metrics server: %w", merr))
	}
	return err
}

// MetricsURL is the metrics endpoint, e.g. http://127.0.0.1:9090/metrics,
// or "" when metrics are off.
func (a *App) MetricsURL() string {
	if a.metLn == nil {
		return ""
	}
	return baseURL(a.metLn.Addr(), false) + "/metrics"
}

// URL is the server's base URL, e.g. http://127.0.0.1:8080 (GraphQL at
// URL()+"/graphql", the playground at URL()+"/").
func (a *App) URL() string { return a.url }

// Sessions is the server-side sign-in, or nil when ERPGRAPH_SESSIONS is off.
func (a *App) Sessions() *session.Manager { return a.sessions }

// Sim is the in-process erpsim in dev mode, else nil.
func (a *App) Sim() *erpsim.Sim { return a.sim }

// Config is the effective configuration (with defaults).
func (a *App) Config() Config { return a.cfg }

// Close releases what New acquired: the ERP.net client, the key set
// refresh, erpsim and the listener (if Serve did not run). Call it after
// Serve returns.
func (a *App) Close() error {
	defer a.stop()
	var errs []error
	if a.sync != nil && a.built {
		a.stop()
		<-a.sync.Done()
	}
	if a.erp != nil {
		a.erp.Close()
	}
	a.closeTracing()
	if a.redis != nil {
		if err := a.redis.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: %w", err))
		}
	}
	if a.sim != nil {
		if err := a.sim.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: close erpsim: %w", err))
		}
	}
	for _, ln := range []net.Listener{a.ln, a.metLn} {
		if ln == nil {
			continue
		}
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("app: close listener: %w", err))
		}
	}
	if a.auditOut != nil {
		if err := a.auditOut.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: close audit log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// upstreamFor marks the ERP.net calls of each GraphQL request as made for
// its user (the request record's UserKey): erpclient's scheduler then shares
// the one ERP.net session fairly between users (and caps each user's queue);
// and it counts the upstream requests they take part in into the record, for
// the audit log's upstream_requests. Requests without a user share one
// anonymous key.
func upstreamFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if rec := server.RecordOf(ctx); rec != nil {
			ctx = erpclient.CountUpstream(erpclient.WithOperation(erpclient.WithCaller(ctx, rec.UserKey)), &rec.Upstream)
			ctx, rec.Cache = erpclient.WithFreshness(ctx) // extensions.dataAge and the record read the same tally
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
