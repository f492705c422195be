package app

import (
	"cmp"
	"errors"
	"fmt"
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

// The settings registry: one row per environment variable. A row is the only
// place that names the variable, its flag, its default, its documentation
// (the README table, -h), how a value is parsed into Config, how the value in
// force is checked, and how it is shown in the "app: ready" log.
//
// To add a setting:
//  1. add its field to Config (config.go), with a comment saying what it means;
//  2. add one row below, in the order it should appear in the README, built
//     from the field kinds at the end of this file (text, words, onOff,
//     duration, count, rate) or with its own parse/show;
//  3. give the row a check if a Config built in code (not from the
//     environment) can hold a bad value, and a fill if its default is not
//     the field's zero value or the component's own default;
//  4. run `go test -run TestREADME -update .` to regenerate the README table.
//
// Rules that tie several settings together live in rules (validate.go).

// setting is one row of the registry.
type setting struct {
	env, flag string
	def       string // the default as documented; "" = none
	help      string
	boolean   bool // on/off switch: the flag may stand alone (-playground)
	raw       bool // the value is not trimmed (a secret's spaces may matter)
	devOnly   bool // applies only in dev mode (no ERP.net instance configured)
	secret    bool // the ready log says only whether it is set
	field
	// modeDefault sets the default that depends on dev mode, before parsing.
	modeDefault func(c *Config, dev bool)
	// fill applies the default to a zero field (WithDefaults).
	fill func(c *Config)
	// check validates the value in force (after fill), also for a Config
	// built in code. Files it reads are kept in l, so each is read once.
	check func(c Config, l *loaded) error
}

// field is how a setting reads into Config and shows in the ready log.
type field struct {
	// parse stores a set, non-empty value. Its error need not name the
	// setting: the registry says which variable and flag it came from.
	parse func(c *Config, v string) error
	// show is the value in force (defaults applied), for the ready log; nil
	// leaves the setting out of it.
	show func(c Config) any
}

var registry = []setting{
	{env: "ERPGRAPH_ADDR", flag: "addr", def: DefaultAddr, help: "listen address (host:port)",
		field: text(func(c *Config) *string { return &c.Addr }),
		fill:  func(c *Config) { c.Addr = cmp.Or(c.Addr, DefaultAddr) },
		check: func(c Config, _ *loaded) error { return hostPort(c.Addr) }},
	{env: "ERP_INSTANCE_URL", flag: "instance-url", help: "ERP.net instance URL, e.g. https://demo.my.erp.net (auto-discovery); none of the three URLs = dev mode on erpsim",
		field: text(func(c *Config) *string { return &c.InstanceURL })},
	{env: "ERP_IDENTITY_URL", flag: "identity-url", help: "identity server (issuer) URL, instead of ERP_INSTANCE_URL, with ERP_ODATA_URL",
		field: text(func(c *Config) *string { return &c.IdentityURL })},
	{env: "ERP_ODATA_URL", flag: "odata-url", help: "Domain API service root, instead of ERP_INSTANCE_URL, with ERP_IDENTITY_URL",
		field: text(func(c *Config) *string { return &c.ODataURL })},
	{env: "ERP_CLIENT_ID", flag: "client-id", def: fixture.BFFClientID + " in dev mode", help: "erpgraph's confidential Trusted Application id",
		field: text(func(c *Config) *string { return &c.ClientID }),
		fill: func(c *Config) { // dev mode without credentials: erpsim's erpgraph application
			if c.Dev() && c.ClientID == "" && c.ClientSecret == "" {
				c.ClientID, c.ClientSecret = fixture.BFFClientID, fixture.BFFSecret
			}
		}},
	{env: "ERP_CLIENT_SECRET", help: "its secret (or use ERP_CLIENT_SECRET_FILE)", raw: true, secret: true,
		field: field{parse: func(c *Config, v string) error { c.ClientSecret = v; return nil },
			show: func(c Config) any { return c.ClientSecret != "" }}},
	{env: "ERP_CLIENT_SECRET_FILE", flag: "client-secret-file", help: "file holding the secret",
		field: field{parse: func(c *Config, file string) error {
			if c.ClientSecret != "" {
				return errors.New("ERP_CLIENT_SECRET and ERP_CLIENT_SECRET_FILE are both set; use one")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c.ClientSecret = strings.TrimRight(string(b), "\r\n")
			return nil
		}}},
	{env: "ERP_SCOPES", flag: "scopes", def: "read (read update with ERPGRAPH_WRITES on)", help: "scopes of the service token",
		field: words(func(c *Config) *[]string { return &c.Scopes }),
		fill: func(c *Config) {
			if len(c.Scopes) == 0 {
				c.Scopes = c.defaultScopes()
			}
		}},
	{env: "ERP_MAX_IN_FLIGHT", flag: "erp-max-in-flight", def: strconv.Itoa(erpclient.DefaultMaxInFlight), help: "ERP.net requests in flight (the site's SessionConcurrentRequests)",
		field: count(func(c *Config) *int { return &c.Scheduler.MaxInFlight }, erpclient.DefaultMaxInFlight, false)},
	{env: "ERP_REQUESTS_PER_MINUTE", flag: "erp-requests-per-minute", def: strconv.Itoa(erpclient.DefaultRequestsPerMinute), help: "ERP.net requests per minute, below the site's SessionRpm (600 by default)",
		field: count(func(c *Config) *int { return &c.Scheduler.RequestsPerMinute }, erpclient.DefaultRequestsPerMinute, false)},
	{env: "ERP_BATCH_PARTS", flag: "erp-batch-parts", def: strconv.Itoa(erpclient.DefaultMaxBatchParts), help: "waiting reads packed into one $batch (1 = no batching)",
		field: count(func(c *Config) *int { return &c.Scheduler.MaxBatchParts }, erpclient.DefaultMaxBatchParts, false)},
	{env: "ERP_MAX_QUEUE_PER_USER", flag: "erp-max-queue-per-user", def: strconv.Itoa(erpclient.DefaultMaxQueuePerCaller), help: `ERP.net reads one user may have waiting (fair share of the session; excess gets UPSTREAM_BUSY at once; "off")`,
		field: count(func(c *Config) *int { return &c.Scheduler.MaxQueuePerCaller }, erpclient.DefaultMaxQueuePerCaller, true)},
	{env: "ERP_BREAKER_THRESHOLD", flag: "erp-breaker-threshold", def: strconv.Itoa(erpclient.DefaultBreakerThreshold), help: `consecutive ERP.net failures that open the circuit breaker ("off" to disable)`,
		field: count(func(c *Config) *int { return &c.Scheduler.BreakerThreshold }, erpclient.DefaultBreakerThreshold, true)},
	{env: "ERP_BREAKER_COOLDOWN", flag: "erp-breaker-cooldown", def: erpclient.DefaultBreakerCooldown.String(), help: "how long the breaker stays open before one probe request",
		field: duration(func(c *Config) *time.Duration { return &c.Scheduler.BreakerCooldown }, erpclient.DefaultBreakerCooldown)},
	{env: "ERPGRAPH_TRUSTED_CLIENT_IDS", flag: "trusted-client-ids", def: "ERP_CLIENT_ID and the playground client id", help: "comma-separated applications whose user tokens are accepted",
		field: words(func(c *Config) *[]string { return &c.TrustedClientIDs }),
		fill: func(c *Config) {
			if len(c.TrustedClientIDs) == 0 {
				c.TrustedClientIDs = nonEmpty(c.ClientID, cmp.Or(c.PlaygroundClientID, DefaultPlaygroundClientID))
			}
		},
		check: func(c Config, _ *loaded) error {
			if len(c.TrustedClientIDs) == 0 {
				return errors.New("no trusted application; user tokens could never be accepted")
			}
			return nil
		}},
	{env: "ERPGRAPH_AUDIENCE", flag: "audience", help: "required aud value of user tokens (none by default)",
		field: text(func(c *Config) *string { return &c.Audience })},
	{env: "ERPGRAPH_ALLOW_INTERNAL_USERS", flag: "allow-internal-users", def: "off", boolean: true, help: "let internal ERP.net users in (ERP.net licensing: each needs their own session)",
		field: onOff(func(c *Config) *bool { return &c.AllowInternalUsers })},
	{env: "ERPGRAPH_PLAYGROUND", flag: "playground", def: "on in dev mode, else off", boolean: true, help: "serve the GraphiQL playground at /",
		field:       onOff(func(c *Config) *bool { return &c.Playground }),
		modeDefault: func(c *Config, dev bool) { c.Playground = dev }},
	{env: "ERPGRAPH_PLAYGROUND_CLIENT_ID", flag: "playground-client-id", def: DefaultPlaygroundClientID, help: "public Trusted Application (PKCE) the playground signs in with",
		field: text(func(c *Config) *string { return &c.PlaygroundClientID }),
		fill:  func(c *Config) { c.PlaygroundClientID = cmp.Or(c.PlaygroundClientID, DefaultPlaygroundClientID) }},
	{env: "ERPGRAPH_INTROSPECTION", flag: "introspection", def: "on in dev mode, else off", boolean: true, help: "allow GraphQL introspection",
		field:       onOff(func(c *Config) *bool { return &c.Introspection }),
		modeDefault: func(c *Config, dev bool) { c.Introspection = dev }},
	{env: "ERPGRAPH_LOG_LEVEL", flag: "log-level", def: "info", help: "debug, info, warn or error",
		field: field{parse: func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("not debug, info, warn or error")
			}
			return nil
		}, show: func(c Config) any { return c.LogLevel.String() }}},
	{env: "GOGC", flag: "gogc", def: strconv.Itoa(DefaultGCPercent), help: `the Go garbage collector's target in percent (Go's own variable; erpgraph's default is twice Go's, for half the collector's CPU; "off" disables it; cap memory with GOMEMLIMIT)`,
		field: count(func(c *Config) *int { return &c.GCPercent }, DefaultGCPercent, true),
		fill:  func(c *Config) { c.GCPercent = cmp.Or(c.GCPercent, DefaultGCPercent) }},
	{env: "ERPGRAPH_SHUTDOWN_GRACE", flag: "shutdown-grace", def: DefaultShutdownGrace.String(), help: "time in-flight requests get on shutdown",
		field: duration(func(c *Config) *time.Duration { return &c.ShutdownGrace }, DefaultShutdownGrace),
		fill:  func(c *Config) { c.ShutdownGrace = cmp.Or(c.ShutdownGrace, DefaultShutdownGrace) },
		check: func(c Config, _ *loaded) error { return within(c.ShutdownGrace, 1, 10*time.Minute, "(0, 10m]") }},
	{env: "ERPGRAPH_SHUTDOWN_DELAY", flag: "shutdown-delay", def: "0s", help: "time the server keeps serving after SIGTERM with /readyz already 503, before it drains",
		field: duration(func(c *Config) *time.Duration { return &c.ShutdownDelay }, 0),
		check: func(c Config, _ *loaded) error { return within(c.ShutdownDelay, 0, 5*time.Minute, "[0, 5m]") }},
	{env: "ERPGRAPH_METRICS_ADDR", flag: "metrics-addr", help: "address (host:port) of a separate listener serving Prometheus metrics at /metrics (off when unset)",
		field: text(func(c *Config) *string { return &c.MetricsAddr }),
		check: func(c Config, _ *loaded) error {
			if c.MetricsAddr == "" {
				return nil
			}
			if err := hostPort(c.MetricsAddr); err != nil {
				return err
			}
			if _, port, _ := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr == c.Addr && port != "0" {
				return errors.New("must differ from ERPGRAPH_ADDR: metrics get a listener of their own")
			}
			return nil
		}},
	{env: "ERPSIM_ADDR", flag: "sim-addr", def: DefaultSimAddr + " if free, else any free port", help: "dev mode: where the in-process erpsim listens (`erpgraph token` signs in there)", devOnly: true,
		field: field{parse: func(c *Config, v string) error {
			if err := hostPort(v); err != nil {
				return err
			}
			c.SimAddr = v
			return nil
		}, show: func(c Config) any { return c.SimAddr }}},
	{env: "ERPSIM_SCALE", flag: "sim-scale", def: "1", help: "dev mode: erpsim demo data multiplier (1 = 1,000 sales orders)", devOnly: true,
		field: field{parse: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errors.New("not a whole number")
			}
			c.SimScale = n
			return nil
		}, show: func(c Config) any { return c.SimScale }},
		fill: func(c *Config) { c.SimScale = cmp.Or(c.SimScale, 1) },
		check: func(c Config, _ *loaded) error {
			if c.Dev() && (c.SimScale < 1 || c.SimScale > 1000) {
				return fmt.Errorf("%d is outside 1..1000", c.SimScale)
			}
			return nil
		}},
	{env: "ERPSIM_USERS", flag: "sim-users", def: "0", help: "dev mode: extra erpsim portal users portal.user001, ... (password demo), each with a customer and 24×scale orders of their own", devOnly: true,
		field: field{parse: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errors.New("not a whole number")
			}
			c.SimUsers = n
			return nil
		}, show: func(c Config) any { return c.SimUsers }},
		check: func(c Config, _ *loaded) error {
			if c.Dev() && (c.SimUsers < 0 || c.SimUsers > fixture.MaxGeneratedUsers) {
				return fmt.Errorf("%d is outside 0..%d", c.SimUsers, fixture.MaxGeneratedUsers)
			}
			return nil
		}},
	{env: "ERPGRAPH_MAX_BODY_BYTES", flag: "max-body-bytes", def: strconv.Itoa(server.DefaultMaxBodyBytes), help: "request body limit in bytes (413 beyond)",
		field: field{parse: func(c *Config, v string) error {
			n, err := positiveWhole(v, false)
			c.MaxBodyBytes = int64(n)
			return err
		}, show: func(c Config) any { return cmp.Or(c.MaxBodyBytes, int64(server.DefaultMaxBodyBytes)) }},
		check: notNegative(func(c Config) bool { return c.MaxBodyBytes < 0 })},
	{env: "ERPGRAPH_OPERATION_TIMEOUT", flag: "operation-timeout", def: server.DefaultOperationTimeout.String(), help: "deadline of one GraphQL request, inherited by its ERP.net calls",
		field: duration(func(c *Config) *time.Duration { return &c.OperationTimeout }, server.DefaultOperationTimeout),
		check: notNegative(func(c Config) bool { return c.OperationTimeout < 0 })},
	{env: "ERPGRAPH_READ_HEADER_TIMEOUT", flag: "read-header-timeout", def: server.DefaultReadHeaderTimeout.String(), help: "time a client has to send the request headers (slow clients are cut off)",
		field: duration(func(c *Config) *time.Duration { return &c.ReadHeaderTimeout }, server.DefaultReadHeaderTimeout),
		check: notNegative(func(c Config) bool { return c.ReadHeaderTimeout < 0 })},
	{env: "ERPGRAPH_READ_TIMEOUT", flag: "read-timeout", def: server.DefaultReadTimeout.String(), help: "time a client has to send the whole request",
		field: duration(func(c *Config) *time.Duration { return &c.ReadTimeout }, server.DefaultReadTimeout),
		check: notNegative(func(c Config) bool { return c.ReadTimeout < 0 })},
	{env: "ERPGRAPH_WRITE_TIMEOUT", flag: "write-timeout", def: server.DefaultWriteTimeout.String(), help: "time from the end of the request headers to the end of the response",
		field: duration(func(c *Config) *time.Duration { return &c.WriteTimeout }, server.DefaultWriteTimeout),
		check: notNegative(func(c Config) bool { return c.WriteTimeout < 0 })},
	{env: "ERPGRAPH_IDLE_TIMEOUT", flag: "idle-timeout", def: server.DefaultIdleTimeout.String(), help: "keep-alive time of an idle connection",
		field: duration(func(c *Config) *time.Duration { return &c.IdleTimeout }, server.DefaultIdleTimeout),
		check: notNegative(func(c Config) bool { return c.IdleTimeout < 0 })},
	{env: "ERPGRAPH_RATE_LIMIT", flag: "rate-limit", def: strconv.Itoa(server.DefaultUserRate), help: `requests per second per signed-in user (token bucket; "off" to disable); excess gets 429 RATE_LIMITED`,
		field: rate(func(c *Config) *float64 { return &c.RateLimit.UserRate }, server.DefaultUserRate)},
	{env: "ERPGRAPH_RATE_BURST", flag: "rate-burst", def: strconv.Itoa(server.DefaultUserBurst), help: "bucket size per signed-in user",
		field: count(func(c *Config) *int { return &c.RateLimit.UserBurst }, server.DefaultUserBurst, false)},
	{env: "ERPGRAPH_ANON_RATE_LIMIT", flag: "anon-rate-limit", def: strconv.Itoa(server.DefaultAnonRate), help: `requests per second per client IP without a token ("off" to disable)`,
		field: rate(func(c *Config) *float64 { return &c.RateLimit.AnonRate }, server.DefaultAnonRate)},
	{env: "ERPGRAPH_ANON_RATE_BURST", flag: "anon-rate-burst", def: strconv.Itoa(server.DefaultAnonBurst), help: "bucket size per client IP without a token",
		field: count(func(c *Config) *int { return &c.RateLimit.AnonBurst }, server.DefaultAnonBurst, false)},
	{env: "ERPGRAPH_MAX_CONCURRENT", flag: "max-concurrent", def: strconv.Itoa(server.DefaultMaxConcurrent), help: `operations in flight per user (or IP) ("off" to disable)`,
		field: count(func(c *Config) *int { return &c.RateLimit.MaxConcurrent }, server.DefaultMaxConcurrent, true)},
	{env: "ERPGRAPH_CONCURRENCY_WAIT", flag: "concurrency-wait", def: server.DefaultConcurrencyWait.String(), help: "how long an operation over ERPGRAPH_MAX_CONCURRENT waits for a slot before 429",
		field: duration(func(c *Config) *time.Duration { return &c.RateLimit.ConcurrencyWait }, server.DefaultConcurrencyWait)},
	{env: "ERPGRAPH_TRUSTED_PROXIES", flag: "trusted-proxies", help: "comma-separated CIDRs/IPs of reverse proxies whose X-Forwarded-For names the client (none by default)",
		field: field{parse: func(c *Config, v string) error {
			var errs []error
			for _, s := range list(v) {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					ip, ierr := netip.ParseAddr(s)
					if ierr != nil {
						errs = append(errs, fmt.Errorf("%q is not a CIDR (10.0.0.0/8) or an IP", s))
						continue
					}
					p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
				}
				c.RateLimit.TrustedProxies = append(c.RateLimit.TrustedProxies, p.Masked())
			}
			return errors.Join(errs...)
		}, show: func(c Config) any {
			out := make([]string, len(c.RateLimit.TrustedProxies))
			for i, p := range c.RateLimit.TrustedProxies {
				out[i] = p.String()
			}
			return strings.Join(out, ",")
		}}},
	{env: "ERPGRAPH_CORS_ORIGINS", flag: "cors-origins", help: "comma-separated origins (https://app.example.com) allowed to call /graphql from browsers (none by default; no wildcard)",
		field: words(func(c *Config) *[]string { return &c.CORS.Origins }),
		check: func(c Config, _ *loaded) error {
			var errs []error
			for _, o := range c.CORS.Origins {
				switch {
				case strings.Contains(o, "*"):
					errs = append(errs, fmt.Errorf("%q: list each origin; wildcards are not allowed", o))
				case !server.ValidOrigin(o):
					errs = append(errs, fmt.Errorf("%q is not an origin like https://app.example.com (no path, no trailing slash)", o))
				}
			}
			return errors.Join(errs...)
		}},
	{env: "ERPGRAPH_CORS_MAX_AGE", flag: "cors-max-age", def: server.DefaultCORSMaxAge.String(), help: "how long browsers cache a CORS preflight answer",
		field: duration(func(c *Config) *time.Duration { return &c.CORS.MaxAge }, server.DefaultCORSMaxAge)},
	{env: "ERPGRAPH_CSRF_HEADERS", flag: "csrf-headers", def: strings.Join(server.DefaultCSRFHeaders, ","), help: "a GET or form/text POST needs one of these headers (else 400 CSRF_PREVENTED)",
		field: field{parse: func(c *Config, v string) error { c.CSRFHeaders = list(v); return nil },
			show: func(c Config) any {
				if c.CSRFHeaders == nil {
					return strings.Join(server.DefaultCSRFHeaders, ",")
				}
				return strings.Join(c.CSRFHeaders, ",")
			}}},
	{env: "ERPGRAPH_AUDIT_LOG", flag: "audit-log", def: "stderr", help: `audit records (JSON): "stderr", "stdout", "off" or a file path (appended)`,
		field: field{parse: func(c *Config, v string) error { c.AuditLog = v; return nil },
			show: func(c Config) any { return cmp.Or(c.AuditLog, "stderr") }}},
	{env: "ERPGRAPH_AUDIT_VARIABLES", flag: "audit-variables", def: server.AuditVariablesNone, help: `what audit records say of GraphQL variables: "none" or "names" (never values)`,
		field: field{parse: func(c *Config, v string) error { c.AuditVariables = strings.ToLower(v); return nil },
			show: func(c Config) any { return cmp.Or(c.AuditVariables, server.AuditVariablesNone) }},
		check: func(c Config, _ *loaded) error {
			switch c.AuditVariables {
			case "", server.AuditVariablesNone, server.AuditVariablesNames:
				return nil
			}
			return fmt.Errorf("%q is not none or names", c.AuditVariables)
		}},
	{env: "ERPGRAPH_TLS_CERT_FILE", flag: "tls-cert-file", help: "PEM certificate (chain); with ERPGRAPH_TLS_KEY_FILE erpgraph serves HTTPS (TLS 1.2+)",
		field: text(func(c *Config) *string { return &c.TLSCertFile })},
	{env: "ERPGRAPH_TLS_KEY_FILE", flag: "tls-key-file", help: "PEM private key of that certificate",
		field: text(func(c *Config) *string { return &c.TLSKeyFile })},
	{env: "ERPGRAPH_MAX_TOKENS", flag: "max-tokens", def: strconv.Itoa(graph.DefaultMaxTokens), help: `lexical tokens per GraphQL document ("off" to disable); beyond: TOO_MANY_TOKENS`,
		field: count(func(c *Config) *int { return &c.QueryLimits.MaxTokens }, graph.DefaultMaxTokens, true)},
	{env: "ERPGRAPH_MAX_DEPTH", flag: "max-depth", def: strconv.Itoa(graph.DefaultMaxDepth), help: `nesting of selection sets ("off"); beyond: QUERY_TOO_DEEP`,
		field: count(func(c *Config) *int { return &c.QueryLimits.MaxDepth }, graph.DefaultMaxDepth, true)},
	{env: "ERPGRAPH_MAX_ALIASES", flag: "max-aliases", def: strconv.Itoa(graph.DefaultMaxAliases), help: `aliased fields per operation ("off"); beyond: TOO_MANY_ALIASES`,
		field: count(func(c *Config) *int { return &c.QueryLimits.MaxAliases }, graph.DefaultMaxAliases, true)},
	{env: "ERPGRAPH_MAX_ROOT_FIELDS", flag: "max-root-fields", def: strconv.Itoa(graph.DefaultMaxRootFields), help: `top-level fields per operation ("off"); beyond: TOO_MANY_ROOT_FIELDS`,
		field: count(func(c *Config) *int { return &c.QueryLimits.MaxRootFields }, graph.DefaultMaxRootFields, true)},
	{env: "ERPGRAPH_MAX_DIRECTIVES", flag: "max-directives", def: strconv.Itoa(graph.DefaultMaxDirectives), help: `directive uses per operation ("off"); beyond: TOO_MANY_DIRECTIVES`,
		field: count(func(c *Config) *int { return &c.QueryLimits.MaxDirectives }, graph.DefaultMaxDirectives, true)},
	{env: "ERPGRAPH_MAX_COST", flag: "max-cost", def: strconv.Itoa(graph.DefaultMaxCost), help: `estimated ERP.net cost per operation: 50 per upstream read plus 1 per row ("off"); beyond: QUERY_TOO_COMPLEX`,
		field: count(func(c *Config) *int { return &c.QueryLimits.MaxCost }, graph.DefaultMaxCost, true)},
	{env: "ERPGRAPH_APQ_CACHE_SIZE", flag: "apq-cache-size", def: strconv.Itoa(graph.DefaultAPQCacheSize), help: `automatic persisted queries remembered ("off" disables them)`,
		field: count(func(c *Config) *int { return &c.APQCacheSize }, graph.DefaultAPQCacheSize, true)},
	{env: "ERPGRAPH_TRUSTED_DOCUMENTS", flag: "trusted-documents", help: "manifest of trusted operations (Apollo persisted-query manifest or {\"<id>\": \"<document>\"})",
		field: text(func(c *Config) *string { return &c.TrustedDocuments }),
		check: func(c Config, l *loaded) (err error) {
			if c.TrustedDocuments != "" {
				l.trusted, err = graph.LoadTrustedDocuments(c.TrustedDocuments)
			}
			return err
		}},
	{env: "ERPGRAPH_TRUSTED_DOCUMENTS_ONLY", flag: "trusted-documents-only", def: "off", boolean: true, help: "run only the trusted documents; anything else gets OPERATION_NOT_ALLOWED",
		field: onOff(func(c *Config) *bool { return &c.TrustedDocumentsOnly })},
	{env: "ERPGRAPH_CACHE_MAX_AGE", flag: "cache-max-age", def: "0s (no-cache)", help: "max-age of successful GET query answers (private for signed-in users)",
		field: field{parse: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return errors.New("not a duration (like 60s)")
			}
			c.CacheMaxAge = d
			return nil
		}, show: func(c Config) any { return c.CacheMaxAge.String() }},
		check: notNegative(func(c Config) bool { return c.CacheMaxAge < 0 })},
}

func init() { registry = append(append(registry, cacheRows()...), tracingRows()...) } // app/cache.go, app/tracing.go

// Setting describes one environment variable (and its flag), for -h and the
// README's table.
type Setting struct {
	Env, Flag, Default, Help string
	Bool                     bool // on/off value; the flag may be given without one
}

// Settings lists every environment variable ConfigFromEnv reads, in the
// registry's order.
func Settings() []Setting {
	out := make([]Setting, len(registry))
	for i, s := range registry {
		out[i] = Setting{Env: s.env, Flag: s.flag, Default: s.def, Help: s.help, Bool: s.boolean}
	}
	return out
}

// named is the setting called env, for errors that tie several together.
func named(env string) string {
	for _, s := range registry {
		if s.env == env {
			return s.name()
		}
	}
	panic("app: no setting " + env)
}

// name is how errors call the setting: its variable and its flag.
func (s setting) name() string {
	if s.flag == "" {
		return s.env
	}
	return s.env + " (-" + s.flag + ")"
}

// The field kinds. Each takes a pointer to the Config field it fills and,
// where the ready log should show a default in force, that default.

func text(p func(*Config) *string) field {
	return field{
		parse: func(c *Config, v string) error { *p(c) = v; return nil },
		show:  func(c Config) any { return *p(&c) },
	}
}

// words reads a comma- or space-separated list.
func words(p func(*Config) *[]string) field {
	return field{
		parse: func(c *Config, v string) error { *p(c) = list(v); return nil },
		show:  func(c Config) any { return strings.Join(*p(&c), ",") },
	}
}

func onOff(p func(*Config) *bool) field {
	return field{
		parse: func(c *Config, v string) error {
			b, ok := parseSwitch(v)
			if !ok {
				return errors.New("not on/off")
			}
			*p(c) = b
			return nil
		},
		show: func(c Config) any { return *p(&c) },
	}
}

// duration reads a positive duration; zero in Config means def.
func duration(p func(*Config) *time.Duration, def time.Duration) field {
	return field{
		parse: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("not a positive duration (like 15s)")
			}
			*p(c) = d
			return nil
		},
		show: func(c Config) any { return cmp.Or(*p(&c), def).String() },
	}
}

// count reads a positive whole number or, if offOK, "off" (stored as -1);
// zero in Config means def.
func count(p func(*Config) *int, def int, offOK bool) field {
	return field{
		parse: func(c *Config, v string) error {
			n, err := positiveWhole(v, offOK)
			*p(c) = n
			return err
		},
		show: func(c Config) any { return inForce(float64(*p(&c)), float64(def)) },
	}
}

// rate reads a positive number or "off" (stored as -1); zero means def.
func rate(p func(*Config) *float64, def float64) field {
	return field{
		parse: func(c *Config, v string) error {
			f, err := positiveNumber(v, true)
			*p(c) = f
			return err
		},
		show: func(c Config) any { return inForce(*p(&c), def) },
	}
}

// inForce is a limit as it applies: zero takes the default, negative is off.
func inForce(v, def float64) any {
	switch {
	case v < 0:
		return "off"
	case v == 0:
		return def
	}
	return v
}

func positiveNumber(v string, offOK bool) (float64, error) {
	if b, ok := parseSwitch(v); ok && !b && offOK {
		return -1, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f > 1e9 {
		if offOK {
			return 0, errors.New(`not a positive number or "off"`)
		}
		return 0, errors.New("not a positive number")
	}
	return f, nil
}

func positiveWhole(v string, offOK bool) (int, error) {
	f, err := positiveNumber(v, offOK)
	if err != nil {
		return 0, err
	}
	if f != float64(int(f)) {
		return 0, errors.New("not a whole number")
	}
	return int(f), nil
}

func hostPort(v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return fmt.Errorf("%q is not host:port", v)
	}
	return nil
}

func within(d, lo, hi time.Duration, span string) error {
	if d < lo || d > hi {
		return fmt.Errorf("%v is outside %s", d, span)
	}
	return nil
}

func notNegative(neg func(Config) bool) func(Config, *loaded) error {
	return func(c Config, _ *loaded) error {
		if neg(c) {
			return errors.New("must not be negative")
		}
		return nil
	}
}
