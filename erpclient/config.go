package erpclient

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Client. Either InstanceURL (auto-discovery) or both
// IdentityURL and ODataURL are required.
type Config struct {
	InstanceURL  string       // auto-discovery at {InstanceURL}/sys/auto-discovery finds the identity server and OData root
	IdentityURL  string       // explicit alternative: the issuer; the token endpoint comes from its OIDC discovery
	ODataURL     string       // explicit alternative: the Domain API service root (…/api/domain/odata/)
	ClientID     string       // the Trusted Application's ApplicationUri
	ClientSecret string       // plain secret (sent to the token endpoint only)
	Scopes       []string     // default ["read"]; "read update" only when writes are enabled
	HTTPClient   *http.Client // with timeouts; default: one built here with sane timeouts
	Scheduler    SchedulerConfig
	Logger       *slog.Logger // operational log; default discard
	Audit        *slog.Logger // token exchanges and ERP writes, never secrets; default Logger
	// AllowInsecure permits http:// URLs on hosts other than loopback. Plain
	// HTTP would expose the client secret and the service token; leave it off
	// outside closed test networks.
	AllowInsecure bool
	// Clock is the client's notion of now for token expiry, token-refresh
	// back-off and the circuit breaker's cool-down; default time.Now. Tests
	// advance it instead of waiting.
	Clock func() time.Time
	// Cache is the shared read cache; without a Store every read goes to ERP.net.
	Cache CacheConfig
}

// SchedulerConfig bounds the traffic to the Domain API (docs/erpnet.md § Session limits: one
// request in flight and 600 per minute per session by default).
type SchedulerConfig struct {
	MaxInFlight       int           // concurrent upstream requests; default 1 (ERP.net's SessionConcurrentRequests)
	RequestsPerMinute int           // default 540: headroom below ERP.net's 600
	MaxBatchParts     int           // GETs packed into one $batch; default 20; 1 disables batching
	MaxQueue          int           // waiting calls beyond which new calls fail with ErrBusy; default 1000
	MaxWait           time.Duration // longest a call waits in the queue before ErrBusy; default 10s
	// MaxQueuePerCaller is how many calls one caller (WithCaller) may have
	// waiting; beyond it that caller's new calls fail with ErrBusy at once,
	// so one user cannot fill the queue for everyone; default 100; negative
	// disables. Calls without a caller are bounded by MaxQueue alone.
	MaxQueuePerCaller int
	// AttemptTimeout bounds one upstream request, so a hung ERP.net cannot
	// eat a caller's whole deadline; default 30s. A read's attempt is also
	// cut to half of its most pressed caller's remaining deadline, leaving
	// room for a retry.
	AttemptTimeout time.Duration
	// SlowAfter is how long a request may run before it stops holding its
	// slot, so the next request is not stuck behind a hung one until the
	// attempt timeout (ERP.net queues a few requests per session beyond the
	// one it runs; at most two requests are let past this way); default 2s;
	// negative disables.
	SlowAfter time.Duration
	// BreakerThreshold is the number of consecutive upstream failures that
	// opens the circuit breaker; default 5; negative disables the breaker.
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open before one probe
	// request may test ERP.net again; default 10s.
	BreakerCooldown time.Duration
}

// Defaults of SchedulerConfig.
const (
	DefaultMaxInFlight       = 1
	DefaultRequestsPerMinute = 540
	DefaultMaxBatchParts     = 20
	DefaultMaxQueue          = 1000
	DefaultMaxWait           = 10 * time.Second
	DefaultMaxQueuePerCaller = 100
	DefaultAttemptTimeout    = 30 * time.Second
	DefaultSlowAfter         = 2 * time.Second
	DefaultBreakerThreshold  = 5
	DefaultBreakerCooldown   = 10 * time.Second
)

func (s SchedulerConfig) withDefaults() SchedulerConfig {
	s.MaxInFlight = cmp.Or(s.MaxInFlight, DefaultMaxInFlight)
	s.RequestsPerMinute = cmp.Or(s.RequestsPerMinute, DefaultRequestsPerMinute)
	s.MaxBatchParts = cmp.Or(s.MaxBatchParts, DefaultMaxBatchParts)
	s.MaxQueue = cmp.Or(s.MaxQueue, DefaultMaxQueue)
	s.MaxWait = cmp.Or(s.MaxWait, DefaultMaxWait)
	s.MaxQueuePerCaller = cmp.Or(s.MaxQueuePerCaller, DefaultMaxQueuePerCaller)
	s.AttemptTimeout = cmp.Or(s.AttemptTimeout, DefaultAttemptTimeout)
	s.SlowAfter = cmp.Or(s.SlowAfter, DefaultSlowAfter)
	s.BreakerThreshold = cmp.Or(s.BreakerThreshold, DefaultBreakerThreshold)
	s.BreakerCooldown = cmp.Or(s.BreakerCooldown, DefaultBreakerCooldown)
	return s
}

// A FieldError is a problem with one field of Config (Field is the field's
// name, e.g. "ClientID"). Its message is the plain problem; a caller that
// reads the configuration from its own settings maps Field to their names.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate reports every problem of the configuration at once, in plain
// words; each problem with one field is a *FieldError.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}

	switch {
	case c.InstanceURL != "":
		if err := checkURL(c.InstanceURL, c.AllowInsecure); err != nil {
			add("InstanceURL", "instance URL: %w", err)
		}
		if c.IdentityURL != "" || c.ODataURL != "" {
			add("InstanceURL", "give either the instance URL (auto-discovery) or the identity and OData URLs, not both")
		}
	case c.IdentityURL == "" && c.ODataURL == "":
		add("InstanceURL", "the ERP.net instance URL is missing (or give both the identity URL and the OData URL)")
	default:
		if c.IdentityURL == "" {
			add("IdentityURL", "the identity URL is missing (it is needed with an explicit OData URL)")
		} else if err := checkURL(c.IdentityURL, c.AllowInsecure); err != nil {
			add("IdentityURL", "identity URL: %w", err)
		}
		if c.ODataURL == "" {
			add("ODataURL", "the OData URL is missing (it is needed with an explicit identity URL)")
		} else if err := checkURL(c.ODataURL, c.AllowInsecure); err != nil {
			add("ODataURL", "OData URL: %w", err)
		}
	}
	if strings.TrimSpace(c.ClientID) == "" {
		add("ClientID", "the client id (the Trusted Application's ApplicationUri) is missing")
	}
	if c.ClientSecret == "" {
		add("ClientSecret", "the client secret is missing")
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"") {
			add("Scopes", "scope %q is not a single scope name", s)
		}
	}
	s := c.Scheduler
	if s.MaxInFlight < 0 {
		add("Scheduler", "scheduler: max in flight must not be negative")
	}
	if s.RequestsPerMinute < 0 {
		add("Scheduler", "scheduler: requests per minute must not be negative")
	}
	if s.MaxBatchParts < 0 || s.MaxBatchParts > 100 {
		add("Scheduler", "scheduler: max batch parts must be between 1 and 100")
	}
	if s.MaxQueue < 0 {
		add("Scheduler", "scheduler: max queue must not be negative")
	}
	if s.MaxWait < 0 {
		add("Scheduler", "scheduler: max wait must not be negative")
	}
	if s.AttemptTimeout < 0 {
		add("Scheduler", "scheduler: attempt timeout must not be negative")
	}
	if s.BreakerCooldown < 0 {
		add("Scheduler", "scheduler: breaker cool-down must not be negative")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("erpclient: invalid configuration: %w", errors.Join(errs...))
}

// checkURL accepts absolute http(s) URLs without credentials; http only on
// loopback hosts (erpsim, local tests) unless allowInsecure.
func checkURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.User != nil {
		return errors.New("the URL must not contain credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("the URL must not have a query or fragment")
	}
	if u.Scheme == "http" && !allowInsecure && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%q uses plain http on a non-loopback host; use https", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// defaultHTTPClient is built once per Client: bounded dials, TLS handshakes
// and whole requests, and a connection pool sized for the scheduler.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	t.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: t, Timeout: 90 * time.Second}
}
