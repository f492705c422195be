package erpclient

import "sync/atomic"

// Stats counts the client's traffic since New, for tests, metrics and the
// benchmark.
type Stats struct {
	Calls            int64 // Domain API calls made by callers (each List page, Count, write...)
	UpstreamRequests int64 // HTTP requests sent to the Domain API (a $batch is one)
	Batches          int64 // $batch requests carrying coalesced reads
	BatchParts       int64 // parts inside those $batch requests
	Coalesced        int64 // calls answered by another call's identical GET
	Retries          int64 // read retries after busy or unavailable answers
	Status401        int64 // 401 answers (token refused)
	Status429        int64 // 429 answers (rate limit)
	Status503        int64 // 503 answers (no license / unavailable)
	TransportErrors  int64 // requests that failed below HTTP
	TokenRequests    int64 // token exchanges with the identity server
	QueueFull        int64 // calls refused because the queue was full or waited past MaxWait
	CircuitRefused   int64 // calls refused at once by the open circuit breaker (no upstream request)
	BreakerOpened    int64 // times the circuit breaker opened
	Queued           int64 // calls waiting now
	InFlight         int64 // upstream requests in flight now
}

type counters struct {
	calls, upstream, batches, batchParts, coalesced, retries        atomic.Int64
	status401, status429, status503, transportErrors, tokenRequests atomic.Int64
	queueFull, circuitRefused, breakerOpened                        atomic.Int64
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	q, f := c.sched.load()
	return Stats{
		Calls: c.stats.calls.Load(), UpstreamRequests: c.stats.upstream.Load(),
		Batches: c.stats.batches.Load(), BatchParts: c.stats.batchParts.Load(),
		Coalesced: c.stats.coalesced.Load(), Retries: c.stats.retries.Load(),
		Status401: c.stats.status401.Load(), Status429: c.stats.status429.Load(), Status503: c.stats.status503.Load(),
		TransportErrors: c.stats.transportErrors.Load(), TokenRequests: c.stats.tokenRequests.Load(),
		QueueFull: c.stats.queueFull.Load(), Queued: int64(q), InFlight: int64(f),
		CircuitRefused: c.stats.circuitRefused.Load(), BreakerOpened: c.stats.breakerOpened.Load(),
	}
}
