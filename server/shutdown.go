package server

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/erpgraph/erpgraph/errcode"
)

// shutdownRetryAfter is the Retry-After of a SHUTTING_DOWN answer: another
// instance (or this one, restarted) is expected to answer at once.
const shutdownRetryAfter = 1

// gate counts the requests in flight and, once draining, refuses new ones, so
// shutdown can wait for exactly the requests that started before it.
type gate struct {
	mu       sync.Mutex
	inflight int
	draining bool
	idle     chan struct{} // closed when draining and inflight reaches 0
}

// enter admits a request unless the gate drains; admitted requests call leave.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.draining {
		return false
	}
	g.inflight++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inflight--
	if g.draining && g.inflight == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// drain refuses new requests from now on; the channel closes once the
// requests in flight have finished.
func (g *gate) drain() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.draining = true
	ch := make(chan struct{})
	if g.inflight == 0 {
		close(ch)
	} else {
		g.idle = ch
	}
	return ch
}

// admit is the outermost gate of every route but the probes: while the server
// drains, a new request gets a GraphQL-shaped 503 SHUTTING_DOWN with
// Retry-After and Connection: close (so a keep-alive client reconnects,
// through the load balancer, to another instance) instead of a reset
// connection. Probes keep answering so the orchestrator sees the state.
func (s *Server) admit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		if !s.gate.enter() {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", strconv.Itoa(shutdownRetryAfter))
			s.deny(w, r, http.StatusServiceUnavailable, errcode.ShuttingDown, "shutdown", "the server is shutting down; retry the request")
			return
		}
		defer s.gate.leave()
		next.ServeHTTP(w, r)
	})
}
