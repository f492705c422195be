package erpsim

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Request is one entry of the request log.
type Request struct {
	Time       time.Time // arrival, by the sim clock
	Method     string
	Path       string
	RawQuery   string
	Session    string // Domain API session key ("sid:…" or "jti:…"); empty elsewhere
	ClientID   string // client_id of the bearer token (Domain API, userinfo, profile) or of the client (token endpoint)
	Login      string // acting user or SystemUser login
	Status     int    // 0 when the connection was dropped by a fault
	Duration   time.Duration
	BatchParts int // requests inside a $batch (changeset members counted one by one); 0 otherwise
	// ChangesetParts are the BatchParts inside changesets (writes).
	ChangesetParts int
	GrantType      string // token endpoint: the grant_type asked for
	Scope          string // token endpoint: the scope asked for
}

// Stats counts requests since start or the last ResetRequests.
type Stats struct {
	DomainRequests int // requests to the Domain API (a $batch counts as one)
	BatchParts     int // parts of those $batch requests
	Batches        int // $batch requests among DomainRequests
	// Reads is what ERP.net executes as separate reads: every $batch part
	// (real ERP.net runs each part as its own request) plus every plain GET.
	Reads int
	// Writes counts the write requests ERP.net executes: plain POST, PATCH
	// and DELETE requests, and every request inside a $batch changeset.
	Writes        int
	TokenRequests int // requests to /id/connect/token
	// RefreshRequests counts token requests with grant_type=refresh_token
	// (answered or refused), so tests can assert how often a client refreshed.
	RefreshRequests int
	// Revocations counts requests to the revocation endpoint.
	Revocations int
	Status429   int
	Status503   int
	Status401   int
}

// maxLogEntries bounds the request log so long load runs do not grow memory
// without limit; Stats keep counting past it.
const maxLogEntries = 200_000

type requestLog struct {
	mu      sync.Mutex
	entries []Request
	stats   Stats
}

func (l *requestLog) add(r Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= maxLogEntries {
		// Drop the oldest half at once so trimming stays amortized O(1).
		l.entries = append(l.entries[:0], l.entries[len(l.entries)/2:]...)
	}
	l.entries = append(l.entries, r)
	if strings.HasPrefix(r.Path, domainPrefix) {
		l.stats.DomainRequests++
		l.stats.BatchParts += r.BatchParts
		switch {
		case r.BatchParts > 0:
			l.stats.Batches++
			l.stats.Reads += r.BatchParts - r.ChangesetParts
			l.stats.Writes += r.ChangesetParts
		case r.Method == http.MethodGet:
			l.stats.Reads++
		default:
			l.stats.Writes++
		}
	}
	if r.Path == tokenPath {
		l.stats.TokenRequests++
		if r.GrantType == "refresh_token" {
			l.stats.RefreshRequests++
		}
	}
	if r.Path == revocationPath {
		l.stats.Revocations++
	}
	switch r.Status {
	case http.StatusTooManyRequests:
		l.stats.Status429++
	case http.StatusServiceUnavailable:
		l.stats.Status503++
	case http.StatusUnauthorized:
		l.stats.Status401++
	}
}

// Requests returns a copy of the request log (every path: /id, /api, /sys, ...), oldest first.
func (s *Sim) Requests() []Request {
	s.reqlog.mu.Lock()
	defer s.reqlog.mu.Unlock()
	out := make([]Request, len(s.reqlog.entries))
	copy(out, s.reqlog.entries)
	return out
}

// ResetRequests empties the request log and zeroes Stats.
func (s *Sim) ResetRequests() {
	s.reqlog.mu.Lock()
	defer s.reqlog.mu.Unlock()
	s.reqlog.entries = nil
	s.reqlog.stats = Stats{}
}

// Stats returns the counters since start or the last ResetRequests.
func (s *Sim) Stats() Stats {
	s.reqlog.mu.Lock()
	defer s.reqlog.mu.Unlock()
	return s.reqlog.stats
}

// reqMeta is filled by inner handlers (authentication, $batch counting) and
// read by the logging middleware once the request is done.
type reqMeta struct {
	session, clientID, login string
	grantType, scope         string
	batchParts, changeset    int
}

type reqMetaKey struct{}

func metaFrom(ctx context.Context) *reqMeta {
	if m, ok := ctx.Value(reqMetaKey{}).(*reqMeta); ok {
		return m
	}
	return &reqMeta{} // handler used without observe: writes go nowhere
}

// statusWriter records the response status. Unwrap lets
// http.ResponseController reach the connection (Hijack for dropped
// connections, Flush).
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

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe logs every request with its outcome.
func (s *Sim) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		arrived := s.now()
		meta := &reqMeta{}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), reqMetaKey{}, meta))
		defer func() {
			s.reqlog.add(Request{
				Time: arrived, Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
				Session: meta.session, ClientID: meta.clientID, Login: meta.login,
				Status: sw.status, Duration: time.Since(start), BatchParts: meta.batchParts, ChangesetParts: meta.changeset, GrantType: meta.grantType, Scope: meta.scope,
			})
		}()
		next.ServeHTTP(sw, r)
	})
}

// latencyKnob holds the simulated processing time. Changing it wakes the
// requests that are waiting, which then wait only for what is left of the new
// latency: tests hold requests in flight with a long latency and release them
// with SetLatency(0, 0) instead of waiting for a timer.
type latencyKnob struct {
	mu         sync.Mutex
	perRequest time.Duration
	perPart    time.Duration
	changed    chan struct{} // closed and replaced on every change
	held       int           // requests waiting out the latency now
}

func (k *latencyKnob) init() { k.changed = make(chan struct{}) }

// SetLatency sets the simulated processing time of each Domain API request
// (held while the request occupies its session slot) and of each $batch part.
func (s *Sim) SetLatency(perRequest, perBatchPart time.Duration) {
	k := &s.latency
	k.mu.Lock()
	defer k.mu.Unlock()
	k.perRequest, k.perPart = max(perRequest, 0), max(perBatchPart, 0)
	close(k.changed)
	k.changed = make(chan struct{})
}

// part is odata.Options.PartLatency.
func (k *latencyKnob) part() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.perPart
}

// Held is the number of Domain API requests the per-request latency is
// holding right now: tests wait for it to know a request reached ERP.net
// (and occupies its session slot) before they act.
func (s *Sim) Held() int {
	k := &s.latency
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.held
}

func (k *latencyKnob) hold(delta int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.held += delta
}

func (k *latencyKnob) request() (time.Duration, <-chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.perRequest, k.changed
}

// holdLatency waits out the per-request latency, measured from start. It
// returns early when the request is cancelled or the sim closes.
func (s *Sim) holdLatency(ctx context.Context, start time.Time) {
	held := false
	defer func() {
		if held {
			s.latency.hold(-1)
		}
	}()
	for {
		d, changed := s.latency.request()
		left := d - time.Since(start)
		if left <= 0 {
			return
		}
		if !held {
			held = true
			s.latency.hold(1)
		}
		t := time.NewTimer(left)
		select {
		case <-t.C:
			return
		case <-changed:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.done:
			t.Stop()
			return
		}
	}
}

// sleepCtx waits d unless ctx ends or the sim closes first.
func (s *Sim) sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
}
