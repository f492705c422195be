package erpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// The circuit breaker keeps the client from queueing behind an ERP.net that
// is down: after BreakerThreshold consecutive upstream failures (transport
// errors, attempt timeouts, gateway errors and other 5xx that are not
// ERP.net's operation-failure envelope) it opens, and calls fail at once
// with ErrCircuitOpen (an ErrUnavailable) without reaching ERP.net. After
// BreakerCooldown the next call is let through as the only request in flight
// (half-open): its success closes the breaker, its failure opens it again.
// 4xx, 429 and 503 with Retry-After are answers of a working ERP.net (429/503
// pause dispatch instead), and a request abandoned by all its callers says
// nothing about ERP.net.

// BreakerState is the state of the client's circuit breaker.
type BreakerState string

// Breaker states.
const (
	BreakerClosed   BreakerState = "closed"    // requests flow
	BreakerOpen     BreakerState = "open"      // calls fail fast with ErrCircuitOpen
	BreakerHalfOpen BreakerState = "half-open" // one probe request decides
)

// ErrCircuitOpen is the error of calls refused while the circuit breaker is
// open. It wraps ErrUnavailable (UPSTREAM_UNAVAILABLE for clients); reads
// refused this way are not retried.
var ErrCircuitOpen = fmt.Errorf("%w: circuit breaker open", ErrUnavailable)

// failure classes, for Health and logs
const (
	classTransport = "transport" // no HTTP answer: refused, reset, dropped connection
	classTimeout   = "timeout"   // no answer within the attempt timeout
	classStatus    = "status"    // 5xx that is not an operation failure, or a non-answer
	classProtocol  = "protocol"  // an answer that is not OData ($batch framing)
)

// outcome is what one upstream request says about ERP.net.
type outcome struct {
	failed bool   // counts towards opening
	ok     bool   // proves ERP.net works (closes a half-open breaker)
	busy   bool   // ERP.net is up but refuses work for now (429, or 503 with Retry-After)
	class  string // failure class when failed
	detail string // short, safe text for logs (status code, error class)
}

// breaker is guarded by scheduler.mu.
type breaker struct {
	threshold int           // consecutive failures that open; <= 0 disables the breaker
	cooldown  time.Duration // open → half-open
	now       func() time.Time

	state     BreakerState
	failures  int
	openUntil time.Time
	probing   bool // half-open: the probe is in flight
	lastClass string
	lastAt    time.Time
	// of the last upstream answer that proved ERP.net works, and of the last failure or busy answer; also with
	// the breaker off
	lastOK, lastFailed time.Time
}

// transition is a state change to log after the lock is released.
type transition struct {
	from, to BreakerState
	failures int
	class    string
	detail   string
}

func (b *breaker) enabled() bool { return b.threshold > 0 }

func (b *breaker) setLocked(to BreakerState, o outcome) *transition {
	t := &transition{from: b.state, to: to, failures: b.failures, class: o.class, detail: o.detail}
	b.state = to
	return t
}

// admitLocked decides whether a new call may queue: refused while open,
// moves to half-open once the cool-down has passed.
func (b *breaker) admitLocked() (error, *transition) {
	if !b.enabled() || b.state != BreakerOpen {
		return nil, nil
	}
	if now := b.now(); now.Before(b.openUntil) {
		return fmt.Errorf("%w after %d consecutive failures (last: %s); next probe in %s",
			ErrCircuitOpen, b.failures, b.lastClass, b.openUntil.Sub(now).Round(time.Millisecond)), nil
	}
	b.probing = false
	return nil, b.setLocked(BreakerHalfOpen, outcome{class: b.lastClass, detail: "cool-down over"})
}

// dispatchableLocked: while half-open only the probe may be in flight.
func (b *breaker) dispatchableLocked() bool {
	switch {
	case !b.enabled():
		return true
	case b.state == BreakerOpen:
		return false
	case b.state == BreakerHalfOpen:
		return !b.probing
	}
	return true
}

// dispatchLocked marks u as the probe when half-open.
func (b *breaker) dispatchLocked(u *unit) {
	if b.enabled() && b.state == BreakerHalfOpen {
		b.probing, u.probe = true, true
	}
}

// recordLocked takes the outcome of a finished upstream request.
func (b *breaker) recordLocked(u *unit, o outcome) *transition {
	switch {
	case o.ok:
		b.lastOK = b.now()
	case o.failed || o.busy:
		b.lastFailed = b.now() // a probe must ask again: only an answer proves ERP.net serves
	}
	if !b.enabled() {
		return nil
	}
	if u.probe {
		b.probing = false
	}
	switch {
	case o.failed:
		b.failures++
		b.lastClass, b.lastAt = o.class, b.now()
		if b.state == BreakerHalfOpen && u.probe || b.state == BreakerClosed && b.failures >= b.threshold {
			b.openUntil = b.now().Add(b.cooldown)
			return b.setLocked(BreakerOpen, o)
		}
	case o.ok:
		b.failures = 0
		if b.state == BreakerHalfOpen && u.probe {
			return b.setLocked(BreakerClosed, o)
		}
	}
	return nil
}

// classify reads what an upstream exchange says about ERP.net. err is the
// exchange's error; res its answer (the outer answer of a $batch), parts the
// $batch's parts: a $batch whose every part failed like an outage is a
// failure, one good part proves ERP.net works.
func classify(u *unit, res *response, parts []*response, err error) outcome {
	if err == nil && len(parts) > 0 {
		o := classifyAnswer(parts[0])
		for _, p := range parts[1:] {
			if !o.failed {
				break
			}
			o = classifyAnswer(p)
		}
		return o
	}
	switch {
	case err == nil && res != nil:
		return classifyAnswer(res)
	case errors.As(err, new(*tokenFailure)):
		return outcome{} // the identity server's trouble; the token source backs off on its own
	case errors.Is(u.ctx.Err(), context.DeadlineExceeded):
		return outcome{failed: true, class: classTimeout, detail: "attempt timeout"}
	case u.ctx.Err() != nil:
		return outcome{} // every caller left, or the client closes
	case errors.Is(err, errProtocol):
		return outcome{failed: true, class: classProtocol, detail: "malformed $batch answer"}
	}
	return outcome{failed: true, class: classTransport, detail: "no HTTP answer"}
}

// classifyAnswer reads one HTTP answer (a whole response or a $batch part).
func classifyAnswer(res *response) outcome {
	status := res.status
	detail := fmt.Sprintf("status %d", status)
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		if res.header.Get("Retry-After") != "" || status == http.StatusTooManyRequests {
			return outcome{busy: true, detail: detail} // busy, not down: dispatch pauses
		}
		return outcome{failed: true, class: classStatus, detail: detail}
	}
	if !res.ok() {
		// a 500 with ERP.net's envelope is an operation failure (docs/erpnet.md § Errors),
		// even one worth retrying: ERP.net answered, so it is not down
		if e := statusError("", status, res.header, res.body); e.Is(ErrUnavailable) && (status != http.StatusInternalServerError || e.noEnvelope) {
			return outcome{failed: true, class: classStatus, detail: detail}
		}
	}
	return outcome{ok: true, detail: detail}
}

// errProtocol marks answers that break the protocol's framing.
var errProtocol = errors.New("protocol violation")

// logTransition writes a breaker state change to the operational and audit logs.
func (c *Client) logTransition(t *transition) {
	if t == nil {
		return
	}
	level := slog.LevelInfo
	if t.to == BreakerOpen {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("from", string(t.from)), slog.String("to", string(t.to)),
		slog.Int("consecutive_failures", t.failures), slog.String("reason", t.detail)}
	if t.class != "" {
		attrs = append(attrs, slog.String("last_error", t.class))
	}
	c.log.LogAttrs(context.Background(), level, "erp circuit breaker", attrs...)
	if c.audit != c.log {
		c.audit.LogAttrs(context.Background(), level, "erp circuit breaker", attrs...)
	}
}
