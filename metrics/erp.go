package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgraph/erpgraph/erpclient"
)

// ERPSource is what the ERP.net collector reads; *erpclient.Client
// implements it. Reading costs no upstream request.
type ERPSource interface {
	Stats() erpclient.Stats
	Health() erpclient.Health
}

// ERPLimits are the session budget the scheduler keeps (ERP.net allows a
// service session 1 request in flight and 600 a minute by default).
type ERPLimits struct {
	MaxInFlight       int
	RequestsPerMinute int
}

// WatchERP exports the ERP.net client's counters and state, read at each
// scrape: the session budget in use (requests, in flight, queue), the
// answers that spend it badly (429, 503, 401), $batch packing, the breaker
// and the service token. One client per process: call it once.
func (r *Registry) WatchERP(src ERPSource, limits ERPLimits) error {
	if r == nil {
		return nil
	}
	return r.reg.Register(&erpCollector{src: src, limits: limits})
}

type erpCollector struct {
	src    ERPSource
	limits ERPLimits
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(declare(name), help, labels, nil)
}

var (
	erpCalls      = desc("erpgraph_erp_calls_total", "Domain API calls made by erpgraph (each list page, count, write).")
	erpUpstream   = desc("erpgraph_erp_upstream_requests_total", "HTTP requests sent to the ERP.net Domain API (a $batch is one); this is what the session's per-minute budget counts.")
	erpBatches    = desc("erpgraph_erp_batches_total", "$batch requests carrying coalesced reads.")
	erpBatchParts = desc("erpgraph_erp_batch_parts_total", "Parts inside those $batch requests.")
	erpCoalesced  = desc("erpgraph_erp_coalesced_calls_total", "Calls answered by another call's identical GET (no request of their own).")
	erpRetries    = desc("erpgraph_erp_retries_total", "Read retries after busy or unavailable answers.")
	erpStatus     = desc("erpgraph_erp_error_responses_total", "ERP.net answers that refuse the session: 401 (token refused), 429 (session rate or concurrency limit), 503 (no licence or unavailable).", "status")
	erpTransport  = desc("erpgraph_erp_transport_errors_total", "Domain API requests that failed below HTTP.")
	erpTokens     = desc("erpgraph_erp_token_requests_total", "Service-token exchanges with the identity server (client credentials).")
	erpBusy       = desc("erpgraph_erp_busy_refusals_total", "Calls refused without an upstream request: the session's queue was full, a user's share of it was used up, or the call waited past its limit (UPSTREAM_UNAVAILABLE).")
	erpCircuit    = desc("erpgraph_erp_circuit_refusals_total", "Calls refused at once by the open circuit breaker.")
	erpOpenings   = desc("erpgraph_erp_breaker_openings_total", "Times the circuit breaker opened.")
	erpQueued     = desc("erpgraph_erp_queued_calls", "Calls waiting for the ERP.net session now (the scheduler's queue depth).")
	erpInFlight   = desc("erpgraph_erp_in_flight_requests", "Domain API requests in flight now.")
	erpWait       = desc("erpgraph_erp_queue_wait_seconds", "How long dispatched calls waited in the scheduler's queue for the ERP.net session.")
	erpBreaker    = desc("erpgraph_erp_breaker_state", "The circuit breaker's state: 1 for the current one.", "state")
	erpToken      = desc("erpgraph_erp_service_token_state", "The service token's state: 1 for the current one (none, valid, stale, expired).", "state")
	erpTokenExp   = desc("erpgraph_erp_service_token_expiry_timestamp_seconds", "When the service token in hand expires (Unix time); 0 with none.")
	erpLimitRPM   = desc("erpgraph_erp_session_requests_per_minute_limit", "Requests per minute the scheduler allows the ERP.net session (ERP_REQUESTS_PER_MINUTE; ERP.net's default SessionRpm is 600).")
	erpLimitFly   = desc("erpgraph_erp_session_in_flight_limit", "Requests in flight the scheduler allows the ERP.net session (ERP_MAX_IN_FLIGHT; ERP.net's default is 1).")
)

var (
	breakerStates = []erpclient.BreakerState{erpclient.BreakerClosed, erpclient.BreakerOpen, erpclient.BreakerHalfOpen}
	tokenStates   = []erpclient.TokenState{erpclient.TokenNone, erpclient.TokenValid, erpclient.TokenStale, erpclient.TokenExpired}
)

func (c *erpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{erpCalls, erpUpstream, erpBatches, erpBatchParts, erpCoalesced, erpRetries,
		erpStatus, erpTransport, erpTokens, erpBusy, erpCircuit, erpOpenings, erpQueued, erpInFlight, erpWait,
		erpBreaker, erpToken, erpTokenExp, erpLimitRPM, erpLimitFly} {
		ch <- d
	}
}

func (c *erpCollector) Collect(ch chan<- prometheus.Metric) {
	s, h := c.src.Stats(), c.src.Health()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(erpCalls, s.Calls)
	counter(erpUpstream, s.UpstreamRequests)
	counter(erpBatches, s.Batches)
	counter(erpBatchParts, s.BatchParts)
	counter(erpCoalesced, s.Coalesced)
	counter(erpRetries, s.Retries)
	counter(erpStatus, s.Status401, "401")
	counter(erpStatus, s.Status429, "429")
	counter(erpStatus, s.Status503, "503")
	counter(erpTransport, s.TransportErrors)
	counter(erpTokens, s.TokenRequests)
	counter(erpBusy, s.QueueFull)
	counter(erpCircuit, s.CircuitRefused)
	counter(erpOpenings, s.BreakerOpened)
	gauge(erpQueued, float64(s.Queued))
	gauge(erpInFlight, float64(s.InFlight))

	buckets := make(map[float64]uint64, len(erpclient.QueueWaitBounds))
	var cum uint64
	for i, b := range erpclient.QueueWaitBounds {
		cum += uint64(s.QueueWait.Counts[i])
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(erpWait, uint64(s.QueueWait.Count), s.QueueWait.Sum.Seconds(), buckets)

	for _, st := range breakerStates {
		gauge(erpBreaker, boolValue(h.Breaker == st), string(st))
	}
	for _, st := range tokenStates {
		gauge(erpToken, boolValue(h.Token == st), string(st))
	}
	exp := 0.0
	if !h.TokenExpiry.IsZero() {
		exp = float64(h.TokenExpiry.Unix())
	}
	gauge(erpTokenExp, exp)
	gauge(erpLimitRPM, float64(c.limits.RequestsPerMinute))
	gauge(erpLimitFly, float64(c.limits.MaxInFlight))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
