// Package metrics declares every Prometheus metric erpgraph exports, in one
// place, and serves them. The other packages know nothing of Prometheus:
// they report through the few methods here (an HTTP middleware, a refusal, a
// finished operation, a cache lookup...) or are read by collectors (the
// ERP.net client's Stats and Health), so telemetry stays at the seams.
//
// No label ever holds a user id, a token or other request data: labels are
// routes, methods, status codes, error codes and operation names, and the
// values a client chooses (operation names) are bounded (see Config).
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values that stand for many.
const (
	// OtherOperation replaces operation names past the cap or outside the
	// known set, and names that are not GraphQL names.
	OtherOperation = "__other__"
	// AnonymousOperation is an operation without a name.
	AnonymousOperation = "__anonymous__"
	// OtherCode replaces error codes past the cap (codes come from erpgraph,
	// so this only guards against a bug).
	OtherCode = "OTHER"
	// OtherRoute is any path that is not one of erpgraph's routes.
	OtherRoute = "other"
)

// DefaultMaxOperationNames caps the distinct operation names per process.
const DefaultMaxOperationNames = 200

// maxCodes caps the distinct error codes; erpgraph has a few dozen.
const maxCodes = 100

// Config configures a Registry.
type Config struct {
	// KnownOperations, when not empty, are the only operation names labelled
	// as themselves (e.g. the trusted documents' names); others are
	// OtherOperation.
	KnownOperations []string
	// MaxOperationNames caps the distinct names otherwise: the first names
	// of operations that passed validation are kept, later ones are
	// OtherOperation. Default DefaultMaxOperationNames.
	MaxOperationNames int
}

// Registry holds erpgraph's metrics. A nil *Registry is valid and records
// nothing, so callers need no "metrics on?" checks.
type Registry struct {
	reg   *prometheus.Registry
	names *bounded
	codes *bounded

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	httpInFlight prometheus.Gauge
	refusals     *prometheus.CounterVec

	operations *prometheus.CounterVec
	opDuration *prometheus.HistogramVec
	opUpstream *prometheus.HistogramVec
	errors     *prometheus.CounterVec

	cache          *prometheus.CounterVec
	sessions       *prometheus.CounterVec
	replays        prometheus.Counter
	storeFallbacks *prometheus.CounterVec
}

// New builds a Registry with the Go runtime and process collectors.
func New(cfg Config) *Registry {
	if cfg.MaxOperationNames <= 0 {
		cfg.MaxOperationNames = DefaultMaxOperationNames
	}
	r := &Registry{
		reg:   prometheus.NewRegistry(),
		names: newBounded(cfg.MaxOperationNames, cfg.KnownOperations, OtherOperation),
		codes: newBounded(maxCodes, nil, OtherCode),
		httpRequests: newCounterVec(prometheus.CounterOpts{
			Name: "erpgraph_http_requests_total",
			Help: "HTTP requests answered, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		httpDuration: newHistogramVec(prometheus.HistogramOpts{
			Name:    "erpgraph_http_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its answer, by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30},
		}, []string{"route"}),
		httpInFlight: newGauge(prometheus.GaugeOpts{
			Name: "erpgraph_http_requests_in_flight",
			Help: "HTTP requests being served now.",
		}),
		refusals: newCounterVec(prometheus.CounterOpts{
			Name: "erpgraph_http_refusals_total",
			Help: "Requests the HTTP edge refused before GraphQL, by reason (rate and concurrency are the per-user/IP rate limits; auth, csrf, cors, body, shutdown).",
		}, []string{"reason"}),
		operations: newCounterVec(prometheus.CounterOpts{
			Name: "erpgraph_graphql_operations_total",
			Help: "GraphQL operations, by operation name (bounded), type and outcome code (OK or the first error's extensions.code).",
		}, []string{"operation", "type", "outcome"}),
		opDuration: newHistogramVec(prometheus.HistogramOpts{
			Name:    "erpgraph_graphql_operation_duration_seconds",
			Help:    "Duration of GraphQL operations, by type.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"type"}),
		opUpstream: newHistogramVec(prometheus.HistogramOpts{
			Name:    "erpgraph_graphql_operation_upstream_requests",
			Help:    "ERP.net HTTP requests made on behalf of one GraphQL operation, by type.",
			Buckets: []float64{0, 1, 2, 3, 5, 8, 13, 21},
		}, []string{"type"}),
		errors: newCounterVec(prometheus.CounterOpts{
			Name: "erpgraph_graphql_errors_total",
			Help: "Errors in GraphQL answers (each error of an answer), by extensions.code.",
		}, []string{"code"}),
		cache: newCounterVec(prometheus.CounterOpts{
			Name: "erpgraph_cache_lookups_total",
			Help: "Lookups in erpgraph's caches, by cache and result (hit, miss, stale).",
		}, []string{"cache", "result"}),
		sessions: newCounterVec(prometheus.CounterOpts{
			Name: "erpgraph_login_sessions_total",
			Help: "Login session events (created, refreshed, ended, expired, refresh_failed).",
		}, []string{"event"}),
		replays: newCounter(prometheus.CounterOpts{
			Name: "erpgraph_idempotent_replays_total",
			Help: "Mutations answered from the idempotency-key store instead of running again.",
		}),
		storeFallbacks: newCounterVec(prometheus.CounterOpts{
			Name: "erpgraph_store_failures_total",
			Help: "Calls to a shared store (Redis) that failed, by store; each use then follows its documented fallback.",
		}, []string{"store"}),
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.httpRequests, r.httpDuration, r.httpInFlight, r.refusals,
		r.operations, r.opDuration, r.opUpstream, r.errors,
		r.cache, r.sessions, r.replays, r.storeFallbacks,
	)
	return r
}

// Handler serves the metrics in the Prometheus text format (or OpenMetrics
// when the scraper asks for it).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Register adds a collector (e.g. a store's own gauges). Collectors of
// erpgraph's packages are built in this package so that every metric name
// is declared here.
func (r *Registry) Register(c prometheus.Collector) error {
	if r == nil {
		return nil
	}
	return r.reg.Register(c)
}

// Route is the route label of a path: one of erpgraph's routes or OtherRoute.
func Route(path string) string {
	switch path {
	case "/graphql", "/healthz", "/readyz", "/":
		return path
	}
	if len(path) > len("/playground/") && path[:len("/playground/")] == "/playground/" {
		return "/playground/assets"
	}
	return OtherRoute
}

// Middleware counts and times the requests next serves. Wrap the whole
// server with it (outermost), so refusals are counted too.
func (r *Registry) Middleware(next http.Handler) http.Handler {
	if r == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		r.httpInFlight.Inc()
		defer r.httpInFlight.Dec()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			route := Route(req.URL.Path)
			code := sw.status
			if code == 0 {
				code = http.StatusOK // nothing written: net/http answers 200
			}
			r.httpRequests.WithLabelValues(route, method(req.Method), strconv.Itoa(code)).Inc()
			r.httpDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, req)
	})
}

// method bounds the method label to the methods erpgraph answers.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodOptions, http.MethodHead:
		return m
	}
	return "other"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, hijack, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streamed answers streaming.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Refused counts a request the edge refused, by reason (rate, concurrency,
// auth, csrf, cors, body, shutdown...).
func (r *Registry) Refused(reason string) {
	if r == nil {
		return
	}
	r.refusals.WithLabelValues(boundedReason(reason)).Inc()
}

func boundedReason(reason string) string {
	switch reason {
	case "rate", "concurrency", "auth", "csrf", "cors", "body", "shutdown", "method":
		return reason
	}
	return "other"
}

// Operation is what the metrics learn of one finished GraphQL operation.
type Operation struct {
	Name     string   // operationName; "" for an anonymous operation
	Type     string   // query, mutation, subscription; "" when it never parsed
	Outcome  string   // "OK" or the first error's extensions.code
	Codes    []string // extensions.code of every error in the answer
	Upstream int      // ERP.net HTTP requests made for it
	Duration time.Duration
	// Valid says the operation parsed and validated, so its name may take
	// one of the bounded name slots.
	Valid bool
}

// ObserveOperation records one GraphQL operation.
func (r *Registry) ObserveOperation(op Operation) {
	if r == nil {
		return
	}
	typ := op.Type
	switch typ {
	case "query", "mutation", "subscription":
	default:
		typ = "unknown"
	}
	name := AnonymousOperation
	if op.Name != "" {
		name = r.names.label(op.Name, op.Valid && validName(op.Name))
	}
	outcome := "OK"
	if op.Outcome != "" {
		outcome = r.codes.label(op.Outcome, validCode(op.Outcome))
	}
	r.operations.WithLabelValues(name, typ, outcome).Inc()
	r.opDuration.WithLabelValues(typ).Observe(op.Duration.Seconds())
	r.opUpstream.WithLabelValues(typ).Observe(float64(op.Upstream))
	for _, c := range op.Codes {
		r.errors.WithLabelValues(r.codes.label(c, validCode(c))).Inc()
	}
}

// Cache results.
const (
	CacheHit   = "hit"
	CacheMiss  = "miss"
	CacheStale = "stale" // an old answer served (stale-while-revalidate / stale-if-error)
)

// CacheLookup counts one lookup in the named cache (apq, read, access...).
func (r *Registry) CacheLookup(cache, result string) {
	if r == nil {
		return
	}
	switch result {
	case CacheHit, CacheMiss, CacheStale:
	default:
		return
	}
	r.cache.WithLabelValues(component(cache), result).Inc()
}

// Session counts a login-session event (created, refreshed, ended,
// expired, refresh_failed).
func (r *Registry) Session(event string) {
	if r == nil {
		return
	}
	switch event {
	case "created", "refreshed", "ended", "expired", "refresh_failed":
		r.sessions.WithLabelValues(event).Inc()
	}
}

// IdempotentReplay counts a mutation answered from its idempotency key.
func (r *Registry) IdempotentReplay() {
	if r == nil {
		return
	}
	r.replays.Inc()
}

// StoreFailed counts a failed call to a shared store (e.g. "ratelimit",
// "apq", "idempotency", "sessions", "cache").
func (r *Registry) StoreFailed(store string) {
	if r == nil {
		return
	}
	r.storeFallbacks.WithLabelValues(component(store)).Inc()
}

// declared lists the names of erpgraph's own metric families, for Names.
var (
	declaredMu sync.Mutex
	declared   = map[string]bool{}
)

func declare(name string) string {
	declaredMu.Lock()
	defer declaredMu.Unlock()
	declared[name] = true
	return name
}

// Names lists erpgraph's own metric families (not the Go runtime's), e.g.
// to check that a dashboard asks only for metrics that exist.
func Names() []string {
	New(Config{}) // declares every family
	declaredMu.Lock()
	defer declaredMu.Unlock()
	out := make([]string, 0, len(declared))
	for n := range declared {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func newCounterVec(o prometheus.CounterOpts, labels []string) *prometheus.CounterVec {
	declare(o.Name)
	return prometheus.NewCounterVec(o, labels)
}

func newHistogramVec(o prometheus.HistogramOpts, labels []string) *prometheus.HistogramVec {
	declare(o.Name)
	return prometheus.NewHistogramVec(o, labels)
}

func newGauge(o prometheus.GaugeOpts) prometheus.Gauge {
	declare(o.Name)
	return prometheus.NewGauge(o)
}

func newCounter(o prometheus.CounterOpts) prometheus.Counter {
	declare(o.Name)
	return prometheus.NewCounter(o)
}

// component is a name erpgraph's own code chose (a cache, a store): kept
// when it is a plain name, "other" otherwise.
func component(s string) string {
	if validName(s) {
		return s
	}
	return "other"
}

// bounded maps client- or code-chosen strings to at most max label values.
type bounded struct {
	mu    sync.Mutex
	known map[string]bool
	fixed bool // only the initial names
	max   int
	other string
}

func newBounded(max int, fixed []string, other string) *bounded {
	b := &bounded{known: make(map[string]bool), max: max, other: other, fixed: len(fixed) > 0}
	for _, n := range fixed {
		b.known[n] = true
	}
	return b
}

// label is v if v is already a value, or may become one (admit, under the
// cap, not a fixed set); otherwise the catch-all.
func (b *bounded) label(v string, admit bool) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.known[v] {
		return v
	}
	if !admit || b.fixed || len(b.known) >= b.max {
		return b.other
	}
	b.known[v] = true
	return v
}

// validName is a GraphQL name of at most 64 characters.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// validCode is an extensions.code: SCREAMING_SNAKE_CASE, at most 64 characters.
func validCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
