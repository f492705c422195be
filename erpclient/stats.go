package erpclient

import (
	"sync/atomic"
	"time"
)

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
	AdmissionRefused int64 // of those, calls refused because the queue ahead would outlast their deadline: at admission, or at a later dispatch when the session turned out slower
	CircuitRefused   int64 // calls refused at once by the open circuit breaker (no upstream request)
	BreakerOpened    int64 // times the circuit breaker opened
	CacheHits        int64 // reads answered from the read cache within their TTL
	CacheStale       int64 // reads answered with stale entries (while revalidating, or because ERP.net failed)
	CacheMisses      int64 // cacheable reads sent to ERP.net
	CacheRefreshes   int64 // background refreshes of stale entries
	// CacheRefreshesSkipped counts stale answers served without starting a
	// refresh because the most refreshes were already running (maxRefreshes).
	CacheRefreshesSkipped int64
	Queued                int64 // calls waiting now
	InFlight              int64 // upstream requests in flight now
	// QueueWait is how long the calls that were dispatched waited in the
	// queue (a call that joined an identical GET in flight did not queue;
	// one refused after MaxWait counts in QueueFull instead).
	QueueWait WaitHistogram
}

// QueueWaitBounds are the upper bounds of WaitHistogram's buckets; the last
// bucket (Counts[len(QueueWaitBounds)]) holds longer waits.
var QueueWaitBounds = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
	5 * time.Second, 10 * time.Second,
}

// WaitHistogram is a distribution of waits: Counts[i] waits were at most
// QueueWaitBounds[i] and more than the bound before it (not cumulative).
type WaitHistogram struct {
	Counts [len(QueueWaitBounds) + 1]int64
	Count  int64
	Sum    time.Duration
}

type waitHistogram struct {
	counts [len(QueueWaitBounds) + 1]atomic.Int64
	sum    atomic.Int64
}

func (h *waitHistogram) observe(d time.Duration) {
	i := 0
	for i < len(QueueWaitBounds) && d > QueueWaitBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// snapshot reads the buckets; Count is their total, so the two always agree.
func (h *waitHistogram) snapshot() WaitHistogram {
	var w WaitHistogram
	for i := range h.counts {
		w.Counts[i] = h.counts[i].Load()
		w.Count += w.Counts[i]
	}
	w.Sum = time.Duration(h.sum.Load())
	return w
}

type counters struct {
	calls, upstream, batches, batchParts, coalesced, retries        atomic.Int64
	status401, status429, status503, transportErrors, tokenRequests atomic.Int64
	queueFull, circuitRefused, breakerOpened, admissionRefused      atomic.Int64
	queueWait                                                       waitHistogram
	cacheHits, cacheStale, cacheMisses, cacheRefreshes              atomic.Int64
	cacheRefreshesSkipped                                           atomic.Int64
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
		QueueFull: c.stats.queueFull.Load(), AdmissionRefused: c.stats.admissionRefused.Load(), Queued: int64(q), InFlight: int64(f),
		CircuitRefused: c.stats.circuitRefused.Load(), BreakerOpened: c.stats.breakerOpened.Load(),
		QueueWait: c.stats.queueWait.snapshot(),
		CacheHits: c.stats.cacheHits.Load(), CacheStale: c.stats.cacheStale.Load(),
		CacheMisses: c.stats.cacheMisses.Load(), CacheRefreshes: c.stats.cacheRefreshes.Load(),
		CacheRefreshesSkipped: c.stats.cacheRefreshesSkipped.Load(),
	}
}
