// Package app reads erpgraph's configuration and wires the program:
// erpclient (service session) → auth (user tokens) → access (what a user may
// see) → graph (GraphQL) → server (HTTP edge). Without an ERP.net instance it
// starts erpsim in-process (dev mode), so `go run .` works out of the box and
// tests run the real program.
package app

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/server"
)

// Config is every setting of `erpgraph serve`. ConfigFromEnv fills it from
// environment variables (each field names its variable and flag); tests build
// it directly.
type Config struct {
	// Addr is the listen address of the GraphQL server.
	// ERPGRAPH_ADDR, -addr; default 127.0.0.1:8080.
	Addr string

	// InstanceURL is the ERP.net instance, e.g. https://demo.my.erp.net; its
	// auto-discovery finds the identity server and the Domain API.
	// ERP_INSTANCE_URL, -instance-url. With no instance, identity or OData URL
	// erpgraph runs in dev mode on an in-process erpsim.
	InstanceURL string
	// IdentityURL and ODataURL are the explicit alternative to InstanceURL:
	// the identity server (the token issuer, e.g. https://demo.my.erp.net/id)
	// and the Domain API service root (…/api/domain/odata/).
	// ERP_IDENTITY_URL, -identity-url; ERP_ODATA_URL, -odata-url.
	IdentityURL string
	ODataURL    string

	// ClientID is erpgraph's confidential Trusted Application (ApplicationUri),
	// whose SystemUser the service session runs as. ERP_CLIENT_ID, -client-id;
	// dev mode default com.erpgraph/bff.
	ClientID string
	// ClientSecret is that application's secret. ERP_CLIENT_SECRET, or a file
	// holding it in ERP_CLIENT_SECRET_FILE / -client-secret-file (no flag for
	// the secret itself: command lines are visible to other processes).
	// Never logged.
	ClientSecret string
	// Scopes of the service token. ERP_SCOPES, -scopes (space or comma
	// separated); default "read".
	Scopes []string

	// TrustedClientIDs are the applications whose user tokens are accepted.
	// ERPGRAPH_TRUSTED_CLIENT_IDS, -trusted-client-ids (comma separated);
	// default ERP_CLIENT_ID plus the playground client id.
	TrustedClientIDs []string
	// Audience, when set, must be among a user token's aud values.
	// ERPGRAPH_AUDIENCE, -audience; default none.
	Audience string
	// AllowInternalUsers lets internal ERP.net users through. ERP.net
	// licensing expects each internal user to hold their own session, so it
	// is off by default. ERPGRAPH_ALLOW_INTERNAL_USERS, -allow-internal-users.
	AllowInternalUsers bool

	// Playground serves GraphiQL with sign-in at GET /.
	// ERPGRAPH_PLAYGROUND, -playground (on/off); default on in dev mode, off otherwise.
	Playground bool
	// PlaygroundClientID is the public Trusted Application (PKCE) the
	// playground signs in with; its redirect URIs must include the
	// playground's URL. ERPGRAPH_PLAYGROUND_CLIENT_ID, -playground-client-id;
	// default com.erpgraph/playground.
	PlaygroundClientID string
	// Introspection allows schema introspection (needed by the playground's
	// docs), also without a signed-in user. ERPGRAPH_INTROSPECTION,
	// -introspection (on/off); default on in dev mode, off otherwise.
	Introspection bool

	// LogLevel of the JSON log on stderr. ERPGRAPH_LOG_LEVEL, -log-level
	// (debug, info, warn, error); default info.
	LogLevel slog.Level
	// ShutdownGrace is how long in-flight requests may take after SIGTERM.
	// ERPGRAPH_SHUTDOWN_GRACE, -shutdown-grace; default 15s.
	ShutdownGrace time.Duration
	// ShutdownDelay is how long the server keeps serving after SIGTERM while
	// /readyz already answers 503, so load balancers stop routing to it
	// before it refuses new requests (often needed on Kubernetes, where
	// endpoints are removed asynchronously). ERPGRAPH_SHUTDOWN_DELAY,
	// -shutdown-delay; default 0 (drain at once).
	ShutdownDelay time.Duration
	// SimScale multiplies erpsim's demo data in dev mode (1 = 1,000 sales
	// orders). ERPSIM_SCALE, -sim-scale; default 1.
	SimScale int
	// SimUsers is how many portal users erpsim generates in dev mode besides
	// the demo users (portal.user001..., password demo, each the customer
	// contact of a customer of their own). ERPSIM_USERS, -sim-users; default 0.
	SimUsers int
	// Scheduler sets erpclient's upstream limits: ERP_MAX_IN_FLIGHT (default 1,
	// ERP.net's SessionConcurrentRequests), ERP_REQUESTS_PER_MINUTE (540, below
	// SessionRpm 600), ERP_BATCH_PARTS (20 GETs per $batch; 1 = no batching),
	// ERP_BREAKER_THRESHOLD (5 failures; "off"), ERP_BREAKER_COOLDOWN (10s),
	// ERP_MAX_QUEUE_PER_USER (100 waiting reads per user; "off").
	// Raise them only when the instance's site configuration allows more.
	Scheduler erpclient.SchedulerConfig
	// SimAddr is where erpsim listens in dev mode. ERPSIM_ADDR, -sim-addr.
	// Empty means DefaultSimAddr when that port is free (so `erpgraph token`
	// finds it), else any free loopback port; a set address must be free.
	SimAddr string

	// MaxBodyBytes limits request bodies (413 beyond).
	// ERPGRAPH_MAX_BODY_BYTES, -max-body-bytes; default 1 MiB.
	MaxBodyBytes int64
	// OperationTimeout is the deadline of one GraphQL request; its ERP.net
	// calls inherit it. ERPGRAPH_OPERATION_TIMEOUT, -operation-timeout; default 15s.
	OperationTimeout time.Duration
	// HTTP server timeouts: ERPGRAPH_READ_HEADER_TIMEOUT (default 10s; cuts
	// off slow clients), ERPGRAPH_READ_TIMEOUT (30s), ERPGRAPH_WRITE_TIMEOUT
	// (60s), ERPGRAPH_IDLE_TIMEOUT (120s); flags of the same names.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration

	// RateLimit bounds each client: ERPGRAPH_RATE_LIMIT (requests per second
	// per signed-in user, default 10, "off"), ERPGRAPH_RATE_BURST (30),
	// ERPGRAPH_ANON_RATE_LIMIT (per client IP without a token, default 2,
	// "off"), ERPGRAPH_ANON_RATE_BURST (10), ERPGRAPH_MAX_CONCURRENT
	// (operations in flight per user or IP, default 6, "off"),
	// ERPGRAPH_CONCURRENCY_WAIT (how long an operation over that waits for a
	// slot, default 100ms), ERPGRAPH_TRUSTED_PROXIES (CIDRs or IPs whose
	// X-Forwarded-For is believed; default none). Zero fields take the
	// defaults; negative rates or MaxConcurrent turn that limit off.
	RateLimit server.RateLimitConfig
	// CORS lets browser apps on other origins call /graphql:
	// ERPGRAPH_CORS_ORIGINS (comma-separated scheme://host[:port]; default
	// none, no wildcard) and ERPGRAPH_CORS_MAX_AGE (preflight cache, 10m).
	CORS server.CORSConfig
	// CSRFHeaders: a GET or a form/text POST must carry one of these headers.
	// ERPGRAPH_CSRF_HEADERS, -csrf-headers; default
	// X-Apollo-Operation-Name,Apollo-Require-Preflight.
	CSRFHeaders []string

	// AuditLog is where the JSON audit records go: "stderr", "stdout", "off"
	// or a file path (opened for appending). ERPGRAPH_AUDIT_LOG, -audit-log;
	// default: the log's destination (stderr), with "log":"audit".
	AuditLog string
	// AuditVariables is what audit records say of GraphQL variables: "none"
	// or "names" (never values). ERPGRAPH_AUDIT_VARIABLES, -audit-variables;
	// default none.
	AuditVariables string

	// TLSCertFile and TLSKeyFile (PEM) make erpgraph serve HTTPS (TLS 1.2+).
	// ERPGRAPH_TLS_CERT_FILE, -tls-cert-file; ERPGRAPH_TLS_KEY_FILE,
	// -tls-key-file; both or neither.
	TLSCertFile, TLSKeyFile string

	// QueryLimits bound each GraphQL operation; refusals happen before any
	// ERP.net call, with the codes TOO_MANY_TOKENS, QUERY_TOO_DEEP,
	// TOO_MANY_ALIASES, TOO_MANY_ROOT_FIELDS, TOO_MANY_DIRECTIVES and
	// QUERY_TOO_COMPLEX. ERPGRAPH_MAX_TOKENS (default 1000),
	// ERPGRAPH_MAX_DEPTH (6), ERPGRAPH_MAX_ALIASES (15),
	// ERPGRAPH_MAX_ROOT_FIELDS (10), ERPGRAPH_MAX_DIRECTIVES (50),
	// ERPGRAPH_MAX_COST (5000); each also "off". Zero fields take the
	// defaults, negative ones are off.
	QueryLimits graph.Limits
	// APQCacheSize is how many automatic persisted queries are remembered.
	// ERPGRAPH_APQ_CACHE_SIZE, -apq-cache-size; default 1000, "off" disables them.
	APQCacheSize int
	// TrustedDocuments is a manifest of allowed operations (Apollo's
	// persisted-query manifest or a JSON object of id → document).
	// ERPGRAPH_TRUSTED_DOCUMENTS, -trusted-documents; default none.
	TrustedDocuments string
	// TrustedDocumentsOnly refuses every other operation with
	// OPERATION_NOT_ALLOWED. ERPGRAPH_TRUSTED_DOCUMENTS_ONLY,
	// -trusted-documents-only (on/off); default off.
	TrustedDocumentsOnly bool
	// CacheMaxAge is the max-age of successful GET query answers
	// (Cache-Control private for signed-in users). ERPGRAPH_CACHE_MAX_AGE,
	// -cache-max-age; default 0: "no-cache".
	CacheMaxAge time.Duration

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

// Defaults.
const (
	DefaultAddr          = "127.0.0.1:8080"
	DefaultSimAddr       = "127.0.0.1:8089"
	DefaultShutdownGrace = 15 * time.Second
)

// Setting describes one environment variable (and its flag).
type Setting struct {
	Env, Flag, Default, Help string
	Bool                     bool // on/off value; the flag may be given without one
}

// Settings lists every environment variable ConfigFromEnv reads, in the order
// of Config's fields; -h prints them.
func Settings() []Setting {
	return []Setting{
		{Env: "ERPGRAPH_ADDR", Flag: "addr", Default: DefaultAddr, Help: "listen address (host:port)"},
		{Env: "ERP_INSTANCE_URL", Flag: "instance-url", Help: "ERP.net instance URL, e.g. https://demo.my.erp.net (auto-discovery); none of the three URLs = dev mode on erpsim"},
		{Env: "ERP_IDENTITY_URL", Flag: "identity-url", Help: "identity server (issuer) URL, instead of ERP_INSTANCE_URL, with ERP_ODATA_URL"},
		{Env: "ERP_ODATA_URL", Flag: "odata-url", Help: "Domain API service root, instead of ERP_INSTANCE_URL, with ERP_IDENTITY_URL"},
		{Env: "ERP_CLIENT_ID", Flag: "client-id", Default: "com.erpgraph/bff in dev mode", Help: "erpgraph's confidential Trusted Application id"},
		{Env: "ERP_CLIENT_SECRET", Help: "its secret (or use ERP_CLIENT_SECRET_FILE)"},
		{Env: "ERP_CLIENT_SECRET_FILE", Flag: "client-secret-file", Help: "file holding the secret"},
		{Env: "ERP_SCOPES", Flag: "scopes", Default: "read", Help: "scopes of the service token"},
		{Env: "ERP_MAX_IN_FLIGHT", Flag: "erp-max-in-flight", Default: strconv.Itoa(erpclient.DefaultMaxInFlight), Help: "ERP.net requests in flight (the site's SessionConcurrentRequests)"},
		{Env: "ERP_REQUESTS_PER_MINUTE", Flag: "erp-requests-per-minute", Default: strconv.Itoa(erpclient.DefaultRequestsPerMinute), Help: "ERP.net requests per minute, below the site's SessionRpm (600 by default)"},
		{Env: "ERP_BATCH_PARTS", Flag: "erp-batch-parts", Default: strconv.Itoa(erpclient.DefaultMaxBatchParts), Help: "waiting reads packed into one $batch (1 = no batching)"},
		{Env: "ERP_MAX_QUEUE_PER_USER", Flag: "erp-max-queue-per-user", Default: strconv.Itoa(erpclient.DefaultMaxQueuePerCaller), Help: `ERP.net reads one user may have waiting (fair share of the session; excess gets UPSTREAM_UNAVAILABLE at once; "off")`},
		{Env: "ERP_BREAKER_THRESHOLD", Flag: "erp-breaker-threshold", Default: strconv.Itoa(erpclient.DefaultBreakerThreshold), Help: `consecutive ERP.net failures that open the circuit breaker ("off" to disable)`},
		{Env: "ERP_BREAKER_COOLDOWN", Flag: "erp-breaker-cooldown", Default: erpclient.DefaultBreakerCooldown.String(), Help: "how long the breaker stays open before one probe request"},
		{Env: "ERPGRAPH_TRUSTED_CLIENT_IDS", Flag: "trusted-client-ids", Default: "ERP_CLIENT_ID and the playground client id", Help: "comma-separated applications whose user tokens are accepted"},
		{Env: "ERPGRAPH_AUDIENCE", Flag: "audience", Help: "required aud value of user tokens (none by default)"},
		{Env: "ERPGRAPH_ALLOW_INTERNAL_USERS", Flag: "allow-internal-users", Default: "off", Bool: true, Help: "let internal ERP.net users in (ERP.net licensing: each needs their own session)"},
		{Env: "ERPGRAPH_PLAYGROUND", Flag: "playground", Default: "on in dev mode, else off", Bool: true, Help: "serve the GraphiQL playground at /"},
		{Env: "ERPGRAPH_PLAYGROUND_CLIENT_ID", Flag: "playground-client-id", Default: fixture.PlaygroundClientID, Help: "public Trusted Application (PKCE) the playground signs in with"},
		{Env: "ERPGRAPH_INTROSPECTION", Flag: "introspection", Default: "on in dev mode, else off", Bool: true, Help: "allow GraphQL introspection"},
		{Env: "ERPGRAPH_LOG_LEVEL", Flag: "log-level", Default: "info", Help: "debug, info, warn or error"},
		{Env: "ERPGRAPH_SHUTDOWN_GRACE", Flag: "shutdown-grace", Default: DefaultShutdownGrace.String(), Help: "time in-flight requests get on shutdown"},
		{Env: "ERPGRAPH_SHUTDOWN_DELAY", Flag: "shutdown-delay", Default: "0s", Help: "time the server keeps serving after SIGTERM with /readyz already 503, before it drains"},
		{Env: "ERPSIM_ADDR", Flag: "sim-addr", Default: DefaultSimAddr + " if free, else any free port", Help: "dev mode: where the in-process erpsim listens (`erpgraph token` signs in there)"},
		{Env: "ERPSIM_SCALE", Flag: "sim-scale", Default: "1", Help: "dev mode: erpsim demo data multiplier (1 = 1,000 sales orders)"},
		{Env: "ERPSIM_USERS", Flag: "sim-users", Default: "0", Help: "dev mode: extra erpsim portal users portal.user001, ... (password demo), each with a customer and 24×scale orders of their own"},
		{Env: "ERPGRAPH_MAX_BODY_BYTES", Flag: "max-body-bytes", Default: strconv.Itoa(server.DefaultMaxBodyBytes), Help: "request body limit in bytes (413 beyond)"},
		{Env: "ERPGRAPH_OPERATION_TIMEOUT", Flag: "operation-timeout", Default: server.DefaultOperationTimeout.String(), Help: "deadline of one GraphQL request, inherited by its ERP.net calls"},
		{Env: "ERPGRAPH_READ_HEADER_TIMEOUT", Flag: "read-header-timeout", Default: server.DefaultReadHeaderTimeout.String(), Help: "time a client has to send the request headers (slow clients are cut off)"},
		{Env: "ERPGRAPH_READ_TIMEOUT", Flag: "read-timeout", Default: server.DefaultReadTimeout.String(), Help: "time a client has to send the whole request"},
		{Env: "ERPGRAPH_WRITE_TIMEOUT", Flag: "write-timeout", Default: server.DefaultWriteTimeout.String(), Help: "time from the end of the request headers to the end of the response"},
		{Env: "ERPGRAPH_IDLE_TIMEOUT", Flag: "idle-timeout", Default: server.DefaultIdleTimeout.String(), Help: "keep-alive time of an idle connection"},
		{Env: "ERPGRAPH_RATE_LIMIT", Flag: "rate-limit", Default: strconv.Itoa(server.DefaultUserRate), Help: `requests per second per signed-in user (token bucket; "off" to disable); excess gets 429 RATE_LIMITED`},
		{Env: "ERPGRAPH_RATE_BURST", Flag: "rate-burst", Default: strconv.Itoa(server.DefaultUserBurst), Help: "bucket size per signed-in user"},
		{Env: "ERPGRAPH_ANON_RATE_LIMIT", Flag: "anon-rate-limit", Default: strconv.Itoa(server.DefaultAnonRate), Help: `requests per second per client IP without a token ("off" to disable)`},
		{Env: "ERPGRAPH_ANON_RATE_BURST", Flag: "anon-rate-burst", Default: strconv.Itoa(server.DefaultAnonBurst), Help: "bucket size per client IP without a token"},
		{Env: "ERPGRAPH_MAX_CONCURRENT", Flag: "max-concurrent", Default: strconv.Itoa(server.DefaultMaxConcurrent), Help: `operations in flight per user (or IP) ("off" to disable)`},
		{Env: "ERPGRAPH_CONCURRENCY_WAIT", Flag: "concurrency-wait", Default: server.DefaultConcurrencyWait.String(), Help: "how long an operation over ERPGRAPH_MAX_CONCURRENT waits for a slot before 429"},
		{Env: "ERPGRAPH_TRUSTED_PROXIES", Flag: "trusted-proxies", Help: "comma-separated CIDRs/IPs of reverse proxies whose X-Forwarded-For names the client (none by default)"},
		{Env: "ERPGRAPH_CORS_ORIGINS", Flag: "cors-origins", Help: "comma-separated origins (https://app.example.com) allowed to call /graphql from browsers (none by default; no wildcard)"},
		{Env: "ERPGRAPH_CORS_MAX_AGE", Flag: "cors-max-age", Default: server.DefaultCORSMaxAge.String(), Help: "how long browsers cache a CORS preflight answer"},
		{Env: "ERPGRAPH_CSRF_HEADERS", Flag: "csrf-headers", Default: strings.Join(server.DefaultCSRFHeaders, ","), Help: "a GET or form/text POST needs one of these headers (else 400 CSRF_PREVENTED)"},
		{Env: "ERPGRAPH_AUDIT_LOG", Flag: "audit-log", Default: "stderr", Help: `audit records (JSON): "stderr", "stdout", "off" or a file path (appended)`},
		{Env: "ERPGRAPH_AUDIT_VARIABLES", Flag: "audit-variables", Default: server.AuditVariablesNone, Help: `what audit records say of GraphQL variables: "none" or "names" (never values)`},
		{Env: "ERPGRAPH_TLS_CERT_FILE", Flag: "tls-cert-file", Help: "PEM certificate (chain); with ERPGRAPH_TLS_KEY_FILE erpgraph serves HTTPS (TLS 1.2+)"},
		{Env: "ERPGRAPH_TLS_KEY_FILE", Flag: "tls-key-file", Help: "PEM private key of that certificate"},
		{Env: "ERPGRAPH_MAX_TOKENS", Flag: "max-tokens", Default: strconv.Itoa(graph.DefaultMaxTokens), Help: `lexical tokens per GraphQL document ("off" to disable); beyond: TOO_MANY_TOKENS`},
		{Env: "ERPGRAPH_MAX_DEPTH", Flag: "max-depth", Default: strconv.Itoa(graph.DefaultMaxDepth), Help: `nesting of selection sets ("off"); beyond: QUERY_TOO_DEEP`},
		{Env: "ERPGRAPH_MAX_ALIASES", Flag: "max-aliases", Default: strconv.Itoa(graph.DefaultMaxAliases), Help: `aliased fields per operation ("off"); beyond: TOO_MANY_ALIASES`},
		{Env: "ERPGRAPH_MAX_ROOT_FIELDS", Flag: "max-root-fields", Default: strconv.Itoa(graph.DefaultMaxRootFields), Help: `top-level fields per operation ("off"); beyond: TOO_MANY_ROOT_FIELDS`},
		{Env: "ERPGRAPH_MAX_DIRECTIVES", Flag: "max-directives", Default: strconv.Itoa(graph.DefaultMaxDirectives), Help: `directive uses per operation ("off"); beyond: TOO_MANY_DIRECTIVES`},
		{Env: "ERPGRAPH_MAX_COST", Flag: "max-cost", Default: strconv.Itoa(graph.DefaultMaxCost), Help: `estimated values per operation, lists counted by first ("off"); beyond: QUERY_TOO_COMPLEX`},
		{Env: "ERPGRAPH_APQ_CACHE_SIZE", Flag: "apq-cache-size", Default: "1000", Help: `automatic persisted queries remembered ("off" disables them)`},
		{Env: "ERPGRAPH_TRUSTED_DOCUMENTS", Flag: "trusted-documents", Help: "manifest of trusted operations (Apollo persisted-query manifest or {\"<id>\": \"<document>\"})"},
		{Env: "ERPGRAPH_TRUSTED_DOCUMENTS_ONLY", Flag: "trusted-documents-only", Default: "off", Bool: true, Help: "run only the trusted documents; anything else gets OPERATION_NOT_ALLOWED"},
		{Env: "ERPGRAPH_CACHE_MAX_AGE", Flag: "cache-max-age", Default: "0s (no-cache)", Help: "max-age of successful GET query answers (private for signed-in users)"},
	}
}

// rawFlag is a string flag that may also be given alone (-playground) when
// its setting is an on/off switch.
type rawFlag struct {
	v      *string
	isBool bool
}

func (f rawFlag) String() string {
	if f.v == nil {
		return ""
	}
	return *f.v
}
func (f rawFlag) Set(s string) error { *f.v = s; return nil }
func (f rawFlag) IsBoolFlag() bool   { return f.isBool }

// ConfigFromEnv reads the settings from getenv, lets flags in args override
// them, applies the defaults (which depend on dev mode) and validates the
// result. It reports every problem at once. -h returns flag.ErrHelp after
// printing the settings to stderr.
func ConfigFromEnv(getenv func(string) string, args []string) (Config, error) {
	raw := map[string]*string{}
	fs := flag.NewFlagSet("erpgraph serve", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	for _, s := range Settings() {
		v := getenv(s.Env)
		raw[s.Env] = &v
		if s.Flag != "" {
			fs.Var(rawFlag{v: raw[s.Env], isBool: s.Bool}, s.Flag, s.Help+" ($"+s.Env+")")
		}
	}
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: erpgraph serve [flags]\n\nEvery flag has an environment variable; flags win.")
		for _, s := range Settings() {
			name := "(env only)"
			if s.Flag != "" {
				name = "-" + s.Flag
			}
			def := ""
			if s.Default != "" {
				def = " (default " + s.Default + ")"
			}
			fmt.Fprintf(fs.Output(), "  %-32s %-22s %s%s\n", s.Env, name, s.Help, def)
		}
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	get := func(env string) string { return strings.TrimSpace(*raw[env]) }

	var errs []error
	cfg := Config{
		Addr:               get("ERPGRAPH_ADDR"),
		InstanceURL:        get("ERP_INSTANCE_URL"),
		IdentityURL:        get("ERP_IDENTITY_URL"),
		ODataURL:           get("ERP_ODATA_URL"),
		ClientID:           get("ERP_CLIENT_ID"),
		ClientSecret:       *raw["ERP_CLIENT_SECRET"], // a secret's spaces may be significant
		Scopes:             list(get("ERP_SCOPES")),
		TrustedClientIDs:   list(get("ERPGRAPH_TRUSTED_CLIENT_IDS")),
		Audience:           get("ERPGRAPH_AUDIENCE"),
		PlaygroundClientID: get("ERPGRAPH_PLAYGROUND_CLIENT_ID"),
	}
	dev := cfg.Dev()
	if file := get("ERP_CLIENT_SECRET_FILE"); file != "" {
		if cfg.ClientSecret != "" {
			errs = append(errs, errors.New("ERP_CLIENT_SECRET and ERP_CLIENT_SECRET_FILE are both set; use one"))
		} else if b, err := os.ReadFile(file); err != nil {
			errs = append(errs, fmt.Errorf("ERP_CLIENT_SECRET_FILE: %w", err))
		} else {
			cfg.ClientSecret = strings.TrimRight(string(b), "\r\n")
		}
	}
	onOff := func(env string, def bool) bool {
		v := get(env)
		if v == "" {
			return def
		}
		b, ok := parseSwitch(v)
		if !ok {
			errs = append(errs, fmt.Errorf("%s=%q is not on/off", env, v))
		}
		return b
	}
	cfg.AllowInternalUsers = onOff("ERPGRAPH_ALLOW_INTERNAL_USERS", false)
	cfg.TrustedDocumentsOnly = onOff("ERPGRAPH_TRUSTED_DOCUMENTS_ONLY", false)
	cfg.Playground = onOff("ERPGRAPH_PLAYGROUND", dev)
	cfg.Introspection = onOff("ERPGRAPH_INTROSPECTION", dev)
	if v := get("ERPGRAPH_LOG_LEVEL"); v != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("ERPGRAPH_LOG_LEVEL=%q is not debug, info, warn or error", v))
		}
	}
	if v := get("ERPGRAPH_SHUTDOWN_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("ERPGRAPH_SHUTDOWN_GRACE=%q is not a duration (like 15s)", v))
		}
		cfg.ShutdownGrace = d
		if d == 0 {
			errs = append(errs, errors.New("ERPGRAPH_SHUTDOWN_GRACE must be more than 0"))
		}
	}
	if v := get("ERPSIM_ADDR"); v != "" {
		if !dev {
			errs = append(errs, errors.New("ERPSIM_ADDR applies only in dev mode (no ERP.net instance configured)"))
		} else if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("ERPSIM_ADDR=%q is not host:port", v))
		} else {
			cfg.SimAddr = v
		}
	}
	if v := get("ERPSIM_SCALE"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("ERPSIM_SCALE=%q is not a whole number", v))
		case !dev:
			errs = append(errs, errors.New("ERPSIM_SCALE applies only in dev mode (no ERP.net instance configured)"))
		default:
			cfg.SimScale = n
		}
	}
	if v := get("ERPSIM_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("ERPSIM_USERS=%q is not a whole number", v))
		case !dev:
			errs = append(errs, errors.New("ERPSIM_USERS applies only in dev mode (no ERP.net instance configured)"))
		default:
			cfg.SimUsers = n
		}
	}
	errs = append(errs, edgeFromEnv(&cfg, get)...)
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return cfg, newConfigError(errs)
	}
	return cfg, nil
}

// edgeFromEnv reads the HTTP edge's settings (limits, timeouts, CORS, CSRF,
// audit, TLS). Unset values stay zero: the server's defaults apply.
func edgeFromEnv(cfg *Config, get func(string) string) []error {
	var errs []error
	duration := func(env string, dst *time.Duration) {
		v := get(env)
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q is not a positive duration (like 15s)", env, v))
			return
		}
		*dst = d
	}
	// number reads a positive number, or "off" (stored as -1) where allowed.
	number := func(env string, offOK bool) float64 {
		v := get(env)
		if v == "" {
			return 0
		}
		if b, ok := parseSwitch(v); ok && !b && offOK {
			return -1
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1e9 {
			off := ""
			if offOK {
				off = ` or "off"`
			}
			errs = append(errs, fmt.Errorf("%s=%q is not a positive number%s", env, v, off))
			return 0
		}
		return f
	}
	whole := func(env string, offOK bool) int {
		f := number(env, offOK)
		if f != float64(int(f)) {
			errs = append(errs, fmt.Errorf("%s=%q is not a whole number", env, get(env)))
		}
		return int(f)
	}
	cfg.MaxBodyBytes = int64(whole("ERPGRAPH_MAX_BODY_BYTES", false))
	duration("ERPGRAPH_OPERATION_TIMEOUT", &cfg.OperationTimeout)
	duration("ERPGRAPH_SHUTDOWN_DELAY", &cfg.ShutdownDelay)
	duration("ERPGRAPH_READ_HEADER_TIMEOUT", &cfg.ReadHeaderTimeout)
	duration("ERPGRAPH_READ_TIMEOUT", &cfg.ReadTimeout)
	duration("ERPGRAPH_WRITE_TIMEOUT", &cfg.WriteTimeout)
	duration("ERPGRAPH_IDLE_TIMEOUT", &cfg.IdleTimeout)
	cfg.RateLimit.UserRate = number("ERPGRAPH_RATE_LIMIT", true)
	cfg.RateLimit.UserBurst = whole("ERPGRAPH_RATE_BURST", false)
	cfg.RateLimit.AnonRate = number("ERPGRAPH_ANON_RATE_LIMIT", true)
	cfg.RateLimit.AnonBurst = whole("ERPGRAPH_ANON_RATE_BURST", false)
	cfg.RateLimit.MaxConcurrent = whole("ERPGRAPH_MAX_CONCURRENT", true)
	duration("ERPGRAPH_CONCURRENCY_WAIT", &cfg.RateLimit.ConcurrencyWait)
	for _, v := range list(get("ERPGRAPH_TRUSTED_PROXIES")) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			ip, ierr := netip.ParseAddr(v)
			if ierr != nil {
				errs = append(errs, fmt.Errorf("ERPGRAPH_TRUSTED_PROXIES: %q is not a CIDR (10.0.0.0/8) or an IP", v))
				continue
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		cfg.RateLimit.TrustedProxies = append(cfg.RateLimit.TrustedProxies, p.Masked())
	}
	cfg.CORS.Origins = list(get("ERPGRAPH_CORS_ORIGINS"))
	duration("ERPGRAPH_CORS_MAX_AGE", &cfg.CORS.MaxAge)
	cfg.CSRFHeaders = list(get("ERPGRAPH_CSRF_HEADERS"))
	cfg.AuditLog = get("ERPGRAPH_AUDIT_LOG")
	cfg.AuditVariables = strings.ToLower(get("ERPGRAPH_AUDIT_VARIABLES"))
	cfg.TLSCertFile, cfg.TLSKeyFile = get("ERPGRAPH_TLS_CERT_FILE"), get("ERPGRAPH_TLS_KEY_FILE")
	cfg.Scheduler = erpclient.SchedulerConfig{
		MaxInFlight: whole("ERP_MAX_IN_FLIGHT", false), RequestsPerMinute: whole("ERP_REQUESTS_PER_MINUTE", false),
		MaxBatchParts: whole("ERP_BATCH_PARTS", false), BreakerThreshold: whole("ERP_BREAKER_THRESHOLD", true),
		MaxQueuePerCaller: whole("ERP_MAX_QUEUE_PER_USER", true),
	}
	duration("ERP_BREAKER_COOLDOWN", &cfg.Scheduler.BreakerCooldown)
	cfg.QueryLimits = graph.Limits{
		MaxTokens: whole("ERPGRAPH_MAX_TOKENS", true), MaxDepth: whole("ERPGRAPH_MAX_DEPTH", true),
		MaxAliases: whole("ERPGRAPH_MAX_ALIASES", true), MaxRootFields: whole("ERPGRAPH_MAX_ROOT_FIELDS", true),
		MaxDirectives: whole("ERPGRAPH_MAX_DIRECTIVES", true), MaxCost: whole("ERPGRAPH_MAX_COST", true),
	}
	cfg.APQCacheSize = whole("ERPGRAPH_APQ_CACHE_SIZE", true)
	cfg.TrustedDocuments = get("ERPGRAPH_TRUSTED_DOCUMENTS")
	if v := get("ERPGRAPH_CACHE_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("ERPGRAPH_CACHE_MAX_AGE=%q is not a duration (like 60s)", v))
		}
		cfg.CacheMaxAge = d
	}
	return errs
}

// newConfigError flattens joined errors (erpclient's own validation joins
// its problems) so that each problem is one line.
func newConfigError(errs []error) *ConfigError {
	var flat []error
	var walk func(error)
	walk = func(err error) {
		if multi, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range multi.Unwrap() {
				walk(e)
			}
			return
		}
		// "erpclient: invalid configuration: %w" around a join: list the join's items.
		if inner := errors.Unwrap(err); inner != nil {
			if _, ok := inner.(interface{ Unwrap() []error }); ok {
				walk(inner)
				return
			}
		}
		flat = append(flat, err)
	}
	for _, e := range errs {
		walk(e)
	}
	return &ConfigError{Problems: flat}
}

// ConfigError lists every problem of a configuration, one per line.
type ConfigError struct{ Problems []error }

func (e *ConfigError) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, "  - "+strings.ReplaceAll(p.Error(), "\n", "\n    "))
	}
	return "invalid configuration:\n" + strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (e *ConfigError) Unwrap() []error { return e.Problems }

// WithDefaults fills the empty fields that have a default: Addr, Scopes,
// PlaygroundClientID, TrustedClientIDs, ShutdownGrace, SimScale and, in dev
// mode without credentials, erpsim's erpgraph application. On/off switches
// keep their value (false is a choice); ConfigFromEnv defaults them by mode.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Dev() && c.ClientID == "" && c.ClientSecret == "" {
		c.ClientID, c.ClientSecret = fixture.BFFClientID, fixture.BFFSecret
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"read"}
	}
	if c.PlaygroundClientID == "" {
		c.PlaygroundClientID = fixture.PlaygroundClientID
	}
	if len(c.TrustedClientIDs) == 0 {
		c.TrustedClientIDs = nonEmpty(c.ClientID, c.PlaygroundClientID)
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.SimScale == 0 {
		c.SimScale = 1
	}
	return c
}

// Validate reports every problem of the configuration at once, as a
// *ConfigError. Call it on WithDefaults' result (New does).
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		add("ERPGRAPH_ADDR=%q is not host:port", c.Addr)
	}
	if c.Dev() {
		if c.ClientID == "" || c.ClientSecret == "" {
			add("dev mode: ERP_CLIENT_ID and ERP_CLIENT_SECRET go together (or leave both unset for erpsim's %s)", fixture.BFFClientID)
		}
		if c.SimScale < 1 || c.SimScale > 1000 {
			add("ERPSIM_SCALE=%d is outside 1..1000", c.SimScale)
		}
		if c.SimUsers < 0 || c.SimUsers > fixture.MaxGeneratedUsers {
			add("ERPSIM_USERS=%d is outside 0..%d", c.SimUsers, fixture.MaxGeneratedUsers)
		}
	} else {
		// erpclient owns the rules for instance URLs, client id and secret;
		// its messages say what is missing in plain words.
		ec := erpclient.Config{InstanceURL: c.InstanceURL, IdentityURL: c.IdentityURL, ODataURL: c.ODataURL,
			ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: c.Scopes}
		if err := ec.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.TrustedClientIDs) == 0 {
		add("ERPGRAPH_TRUSTED_CLIENT_IDS: no trusted application; user tokens could never be accepted")
	}
	if c.Playground && c.PlaygroundClientID == "" {
		add("ERPGRAPH_PLAYGROUND is on but ERPGRAPH_PLAYGROUND_CLIENT_ID is empty")
	}
	if c.ShutdownGrace <= 0 || c.ShutdownGrace > 10*time.Minute {
		add("ERPGRAPH_SHUTDOWN_GRACE=%v is outside (0, 10m]", c.ShutdownGrace)
	}
	if c.ShutdownDelay < 0 || c.ShutdownDelay > 5*time.Minute {
		add("ERPGRAPH_SHUTDOWN_DELAY=%v is outside [0, 5m]", c.ShutdownDelay)
	}
	errs = append(errs, c.validateEdge()...)
	if len(errs) > 0 {
		return newConfigError(errs)
	}
	return nil
}

// validateEdge checks the HTTP edge's settings.
func (c Config) validateEdge() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, o := range c.CORS.Origins {
		switch {
		case o == "*" || strings.Contains(o, "*"):
			add("ERPGRAPH_CORS_ORIGINS: %q: list each origin; wildcards are not allowed", o)
		case !server.ValidOrigin(o):
			add("ERPGRAPH_CORS_ORIGINS: %q is not an origin like https://app.example.com (no path, no trailing slash)", o)
		}
	}
	op, wt := cmpOr(c.OperationTimeout, server.DefaultOperationTimeout), cmpOr(c.WriteTimeout, server.DefaultWriteTimeout)
	if op >= wt {
		add("ERPGRAPH_OPERATION_TIMEOUT=%v must be shorter than ERPGRAPH_WRITE_TIMEOUT=%v (the answer must still be written)", op, wt)
	}
	if c.MaxBodyBytes < 0 || c.OperationTimeout < 0 || c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 {
		add("body limit and timeouts must not be negative")
	}
	switch c.AuditVariables {
	case "", server.AuditVariablesNone, server.AuditVariablesNames:
	default:
		add("ERPGRAPH_AUDIT_VARIABLES=%q is not none or names", c.AuditVariables)
	}
	if c.TrustedDocumentsOnly && c.TrustedDocuments == "" {
		add("ERPGRAPH_TRUSTED_DOCUMENTS_ONLY is on but ERPGRAPH_TRUSTED_DOCUMENTS names no manifest")
	} else if c.TrustedDocuments != "" {
		if _, err := graph.LoadTrustedDocuments(c.TrustedDocuments); err != nil {
			add("ERPGRAPH_TRUSTED_DOCUMENTS: %v", err)
		}
	}
	if c.CacheMaxAge < 0 {
		add("ERPGRAPH_CACHE_MAX_AGE must not be negative")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		add("ERPGRAPH_TLS_CERT_FILE and ERPGRAPH_TLS_KEY_FILE go together")
	} else if c.TLSCertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			add("ERPGRAPH_TLS_CERT_FILE/ERPGRAPH_TLS_KEY_FILE: %v", err)
		}
	}
	return errs
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// LogValue keeps the secret out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr), slog.Bool("dev", c.Dev()),
		slog.String("instance_url", c.InstanceURL), slog.String("identity_url", c.IdentityURL), slog.String("odata_url", c.ODataURL),
		slog.String("client_id", c.ClientID), slog.Bool("client_secret_set", c.ClientSecret != ""),
		slog.String("scopes", strings.Join(c.Scopes, " ")), slog.String("trusted_client_ids", strings.Join(c.TrustedClientIDs, ",")),
		slog.String("audience", c.Audience), slog.Bool("allow_internal_users", c.AllowInternalUsers),
		slog.Bool("playground", c.Playground), slog.Bool("introspection", c.Introspection),
		slog.Float64("rate_limit", c.RateLimit.UserRate), slog.Float64("anon_rate_limit", c.RateLimit.AnonRate),
		slog.Int("max_concurrent", c.RateLimit.MaxConcurrent), slog.String("cors_origins", strings.Join(c.CORS.Origins, ",")),
		slog.String("audit_log", c.AuditLog), slog.String("audit_variables", c.AuditVariables),
		slog.Bool("tls", c.TLSCertFile != ""), slog.Duration("operation_timeout", c.OperationTimeout),
		slog.Any("query_limits", c.QueryLimits), slog.Int("apq_cache_size", c.APQCacheSize),
		slog.String("trusted_documents", c.TrustedDocuments), slog.Bool("trusted_documents_only", c.TrustedDocumentsOnly),
	)
}

// list splits a comma- or space-separated value.
func list(s string) []string {
	if f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }); len(f) > 0 {
		return f
	}
	return nil // unset, not "an empty list": defaults apply
}

func nonEmpty(vals ...string) []string {
	var out []string
	for _, v := range vals {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseSwitch reads on/off switches: on/off, true/false, yes/no, 1/0.
func parseSwitch(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		return true, true
	case "off", "false", "no", "0":
		return false, true
	}
	return false, false
}
