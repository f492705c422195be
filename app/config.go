// Package app reads erpgraph's configuration and wires the program:
// erpclient (service session) → auth (user tokens) → access (what a user may
// see) → graph (GraphQL) → server (HTTP edge). Without an ERP.net instance it
// starts erpsim in-process (dev mode), so `go run .` works out of the box and
// tests run the real program.
//
// The configuration is split by concern: config.go is the Config type and
// its defaults, settings.go the registry (one row per environment variable:
// name, flag, default, documentation, parsing, check), env.go reading the
// environment and flags, validate.go the checks that run once at start-up.
package app

import (
	"log/slog"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/server"
)

// Config is every setting of `erpgraph serve`. ConfigFromEnv fills it from
// the environment and flags; tests and tools build it directly. The
// registry (settings.go) names each field's variable, flag and default.
// Zero values take the defaults; a negative limit or count is off.
type Config struct {
	// Addr is the listen address of the GraphQL server.
	Addr string

	// InstanceURL is the ERP.net instance, e.g. https://demo.my.erp.net; its
	// auto-discovery finds the identity server and the Domain API. With no
	// instance, identity or OData URL erpgraph runs in dev mode on an
	// in-process erpsim.
	InstanceURL string
	// IdentityURL and ODataURL are the explicit alternative to InstanceURL:
	// the identity server (the token issuer, e.g. https://demo.my.erp.net/id)
	// and the Domain API service root (…/api/domain/odata/).
	IdentityURL string
	ODataURL    string

	// ClientID is erpgraph's confidential Trusted Application (ApplicationUri),
	// whose SystemUser the service session runs as.
	ClientID string
	// ClientSecret is that application's secret (no flag for the secret
	// itself: command lines are visible to other processes). Never logged.
	ClientSecret string
	// Scopes of the service token; default read, or read update with writes on.
	Scopes []string
	// Writes configures the mutations (app/writes.go).
	Writes WritesConfig

	// TrustedClientIDs are the applications whose user tokens are accepted.
	TrustedClientIDs []string
	// Audience, when set, must be among a user token's aud values.
	Audience string
	// AllowInternalUsers lets internal ERP.net users through. ERP.net
	// licensing expects each internal user to hold their own session, so it
	// is off by default.
	AllowInternalUsers bool

	// Playground serves GraphiQL with sign-in at GET /.
	Playground bool
	// PlaygroundClientID is the public Trusted Application (PKCE) the
	// playground signs in with; its redirect URIs must include the
	// playground's URL.
	PlaygroundClientID string
	// Introspection allows schema introspection (needed by the playground's
	// docs), also without a signed-in user.
	Introspection bool

	// LogLevel of the JSON log on stderr.
	LogLevel slog.Level
	// GCPercent is the Go garbage collector's target (GOGC, runtime/debug.SetGCPercent), applied by New for the
	// whole process: 0 means DefaultGCPercent, negative turns the collector off.
	GCPercent int
	// ShutdownGrace is how long in-flight requests may take after SIGTERM.
	ShutdownGrace time.Duration
	// ShutdownDelay is how long the server keeps serving after SIGTERM while
	// /readyz already answers 503, so load balancers stop routing to it
	// before it refuses new requests (often needed on Kubernetes, where
	// endpoints are removed asynchronously).
	ShutdownDelay time.Duration
	// RedisURL is the Redis that replicas share state in (login sessions
	// now; see README "Running several replicas"). Empty = each process
	// keeps its state in memory.
	RedisURL string
	// MetricsAddr is where Prometheus metrics are served (GET /metrics), on a
	// listener of its own so they never share the public port. Empty = off.
	MetricsAddr string
	// SimScale multiplies erpsim's demo data in dev mode (1 = 1,000 sales orders).
	SimScale int
	// SimUsers is how many portal users erpsim generates in dev mode besides
	// the demo users (portal.user001..., password demo, each the customer
	// contact of a customer of their own).
	SimUsers int
	// Scheduler sets erpclient's upstream limits. Raise them only when the
	// instance's site configuration allows more.
	Scheduler erpclient.SchedulerConfig
	// SimAddr is where erpsim listens in dev mode. Empty means DefaultSimAddr
	// when that port is free (so `erpgraph token` finds it), else any free
	// loopback port; a set address must be free.
	SimAddr string

	// MaxBodyBytes limits request bodies (413 beyond).
	MaxBodyBytes int64
	// OperationTimeout is the deadline of one GraphQL request; its ERP.net
	// calls inherit it.
	OperationTimeout time.Duration
	// HTTP server timeouts: ReadHeaderTimeout cuts off slow clients.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	// RateLimit bounds each client: per signed-in user, per client IP without
	// a token, and operations in flight per user or IP.
	RateLimit server.RateLimitConfig
	// CORS lets browser apps on other origins call /graphql (no wildcard).
	CORS server.CORSConfig
	// CSRFHeaders: a GET or a form/text POST must carry one of these headers.
	CSRFHeaders []string

	// AuditLog is where the JSON audit records go: "stderr", "stdout", "off"
	// or a file path (opened for appending); empty: the log's destination,
	// with "log":"audit".
	AuditLog string
	// AuditVariables is what audit records say of GraphQL variables: "none"
	// or "names" (never values).
	AuditVariables string

	// TLSCertFile and TLSKeyFile (PEM) make erpgraph serve HTTPS (TLS 1.2+);
	// both or neither.
	TLSCertFile, TLSKeyFile string

	// QueryLimits bound each GraphQL operation; refusals happen before any
	// ERP.net call.
	QueryLimits graph.Limits
	// APQCacheSize is how many automatic persisted queries are remembered.
	APQCacheSize int
	// TrustedDocuments is a manifest of allowed operations (Apollo's
	// persisted-query manifest or a JSON object of id → document).
	TrustedDocuments string
	// TrustedDocumentsOnly refuses every other operation with
	// OPERATION_NOT_ALLOWED.
	TrustedDocumentsOnly bool
	// CacheMaxAge is the max-age of successful GET query answers
	// (Cache-Control private for signed-in users); 0: "no-cache".
	CacheMaxAge time.Duration

	// Session is the server-side sign-in of the monolithic deployment
	// (app/sessions.go): login endpoints, the session cookie on /graphql.
	Session SessionConfig
	// StaticDir is a built frontend served at / (the playground moves to
	// /playground/).
	StaticDir string
	// Portal serves the example customer portal at /portal/.
	Portal bool
	// ReadCache configures the shared read cache and the background sync of
	// reference data (app/cache.go).
	ReadCache ReadCacheConfig
	// Tracing configures OpenTelemetry traces (app/tracing.go).
	Tracing TracingConfig

	// Logger overrides the JSON stderr log (tests). Not configurable by environment.
	Logger *slog.Logger
	// AuditLogger overrides AuditLog (tests). Not configurable by environment.
	AuditLogger *slog.Logger
}

// Dev reports whether no ERP.net instance is configured: erpgraph then runs
// on an in-process erpsim.
func (c Config) Dev() bool {
	return c.InstanceURL == "" && c.IdentityURL == "" && c.ODataURL == ""
}

// Defaults that are erpgraph's own (the components' defaults are theirs).
const (
	DefaultAddr          = "127.0.0.1:8080"
	DefaultSimAddr       = "127.0.0.1:8089"
	DefaultShutdownGrace = 15 * time.Second
	// DefaultGCPercent is erpgraph's garbage collector target, twice Go's: an operation allocates about a hundred
	// times the heap it keeps, so the collector ran every dozen dashboards and took a fifth of the CPU; at 200 it
	// takes half that, for a heap that peaks at about three times the live one instead of two.
	DefaultGCPercent = 200
	// DefaultPlaygroundClientID is the public Trusted Application the
	// playground signs in with unless configured; erpsim registers the same.
	DefaultPlaygroundClientID = "com.erpgraph/playground"
)

// WithDefaults fills the empty fields that have a default of erpgraph's own
// (each row's fill) and, in dev mode without credentials, erpsim's erpgraph
// application. On/off switches keep their value (false is a choice);
// ConfigFromEnv defaults them by mode. Limits left zero take their
// component's default there.
func (c Config) WithDefaults() Config {
	for _, s := range registry {
		if s.fill != nil {
			s.fill(&c)
		}
	}
	return c
}

// LogValue is the configuration in force, defaults applied, one attribute per
// setting (named after its flag); the secret shows only whether it is set.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Bool("dev", c.Dev())}
	for _, s := range registry {
		if s.show == nil {
			continue
		}
		key := s.logKey()
		if s.secret {
			key += "_set"
		}
		attrs = append(attrs, slog.Any(key, s.show(c)))
	}
	return slog.GroupValue(attrs...)
}
