package erpsim

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
)

// session is one ERP.net API session: it holds a license slot while alive and
// carries the per-session limiter (requests in flight, queue, rate window).
type session struct {
	key      string
	service  bool
	opened   time.Time
	lastSeen time.Time
	inFlight int
	waiters  []chan struct{} // queued requests, FIFO; a closed channel hands over a slot
	window   []time.Time     // admissions in the last minute, oldest first
}

func (ss *session) expired(now time.Time, l Limits) bool {
	if ss.inFlight > 0 || len(ss.waiters) > 0 {
		return false
	}
	return now.Sub(ss.lastSeen) >= l.SessionIdle || (ss.service && now.Sub(ss.opened) >= l.SessionAbsolute)
}

type sessionTable struct {
	mu    sync.Mutex
	byKey map[string]*session
}

func (t *sessionTable) init() { t.byKey = map[string]*session{} }

// Admission refusals.
var (
	errNoLicense   = errors.New("erpsim: no free license")
	errSessionBusy = errors.New("erpsim: session queue full")
)

// rateLimitedError is a refusal by the per-minute window.
type rateLimitedError struct{ retryAfter int }

func (e *rateLimitedError) Error() string { return "erpsim: session request rate exceeded" }

// admit opens or finds the session for key and takes a request slot. It
// returns either immediately with a slot (wait == nil), or with a channel that
// is closed when a queued request gets its slot.
func (t *sessionTable) admit(key string, service bool, l Limits, now time.Time) (*session, chan struct{}, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ss := t.byKey[key]
	if ss != nil && ss.expired(now, l) {
		delete(t.byKey, key)
		ss = nil
	}
	if ss == nil {
		if l.Licenses >= 0 && len(t.byKey) >= l.Licenses {
			t.sweep(now, l)
			if len(t.byKey) >= l.Licenses {
				return nil, nil, errNoLicense
			}
		}
		ss = &session{key: key, service: service, opened: now, lastSeen: now}
		t.byKey[key] = ss
	}
	ss.lastSeen = now
	if l.RequestsPerMinute >= 0 {
		cut := now.Add(-time.Minute)
		drop := 0
		for drop < len(ss.window) && !ss.window[drop].After(cut) {
			drop++
		}
		ss.window = ss.window[drop:]
		if len(ss.window) >= l.RequestsPerMinute {
			wait := ss.window[0].Add(time.Minute).Sub(now)
			return nil, nil, &rateLimitedError{retryAfter: max(1, int(math.Ceil(wait.Seconds())))}
		}
	}
	var wait chan struct{}
	switch {
	case l.ConcurrentRequests < 0 || ss.inFlight < l.ConcurrentRequests:
		ss.inFlight++
	case l.QueueSize < 0 || len(ss.waiters) < l.QueueSize:
		wait = make(chan struct{})
		ss.waiters = append(ss.waiters, wait)
	default:
		return nil, nil, errSessionBusy
	}
	if l.RequestsPerMinute >= 0 {
		ss.window = append(ss.window, now)
	}
	return ss, wait, nil
}

// sweep removes expired sessions, freeing their licenses. Called with t.mu held.
func (t *sessionTable) sweep(now time.Time, l Limits) {
	for k, ss := range t.byKey {
		if ss.expired(now, l) {
			delete(t.byKey, k)
		}
	}
}

// await blocks a queued request until it gets its slot. It returns false (and
// leaves the queue) when ctx ends or done closes first.
func (t *sessionTable) await(ctx context.Context, done <-chan struct{}, ss *session, wait chan struct{}, now func() time.Time) bool {
	select {
	case <-wait:
		return true
	case <-ctx.Done():
	case <-done:
	}
	t.mu.Lock()
	for i, w := range ss.waiters {
		if w == wait {
			ss.waiters = append(ss.waiters[:i], ss.waiters[i+1:]...)
			t.mu.Unlock()
			return false
		}
	}
	t.mu.Unlock()
	// The slot was handed over while we gave up: pass it on.
	t.release(ss, now())
	return false
}

// release frees a request slot, handing it to the oldest queued request.
func (t *sessionTable) release(ss *session, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ss.lastSeen = now
	if len(ss.waiters) > 0 {
		next := ss.waiters[0]
		ss.waiters = ss.waiters[1:]
		close(next)
		return
	}
	ss.inFlight--
}

// end closes the sessions with the given keys (sign-out).
func (t *sessionTable) end(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.byKey, k)
	}
}

// count returns the number of live sessions.
func (t *sessionTable) count(now time.Time, l Limits) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now, l)
	return len(t.byKey)
}
