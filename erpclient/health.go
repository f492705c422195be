package erpclient

import "time"

// Health is the client's view of ERP.net for readiness checks and metrics.
// It costs no upstream request.
type Health struct {
	Breaker             BreakerState
	ConsecutiveFailures int       // upstream failures since the last success
	LastFailure         string    // class of the last failure: transport, timeout, status, protocol; "" if none
	LastFailureAt       time.Time // by the client's Clock
	ProbeAt             time.Time // open: when the next call may probe ERP.net
	Token               TokenState
	TokenExpiry         time.Time // of the token in hand (zero when none)
	TokenError          string    // the last failed token exchange, "" after a success; never holds secrets
}

// Degraded reports whether calls fail or may soon fail: the breaker is not
// closed, or the service token cannot be renewed.
func (h Health) Degraded() bool {
	return h.Breaker != BreakerClosed || h.Token == TokenStale || h.Token == TokenExpired
}

// Health returns the circuit breaker's and the service token's state.
func (c *Client) Health() Health {
	var h Health
	s := c.sched
	s.mu.Lock()
	b := &s.breaker
	h.Breaker, h.ConsecutiveFailures, h.LastFailure, h.LastFailureAt = b.state, b.failures, b.lastClass, b.lastAt
	if b.state == BreakerOpen {
		h.ProbeAt = b.openUntil
	}
	s.mu.Unlock()
	h.Token, h.TokenExpiry, h.TokenError = c.tokens.health()
	return h
}
