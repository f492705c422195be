package server

import (
	"context"
	"net/http"
)

// Readiness states, of the instance and of each component.
const (
	StatusOK          = "ok"          // everything works
	StatusDegraded    = "degraded"    // serving, with a component down or impaired
	StatusUnavailable = "unavailable" // cannot serve: taken out of the load balancer
	StatusDown        = "down"        // a component that does not work
)

// Readiness is what the readiness probe reports. Status decides the HTTP
// answer: StatusOK and StatusDegraded are 200 (the instance can serve, so it
// stays in the load balancer, as Kubernetes readiness intends), anything else
// is 503.
type Readiness struct {
	Status     string               `json:"status"`
	Error      string               `json:"error,omitempty"`
	Components map[string]Component `json:"components,omitempty"`
}

// Component is the state of one upstream in a Readiness report. Detail is
// shown to whoever can reach /readyz: plain words, no URLs or upstream bodies
// (the cause belongs in the log).
type Component struct {
	Status string `json:"status"` // StatusOK, StatusDegraded or StatusDown
	Detail string `json:"detail,omitempty"`
}

// healthz answers 200 while the process serves HTTP: a liveness probe that
// does not depend on any upstream.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Readiness{Status: StatusOK})
}

// readyz answers the readiness report: 200 while the instance can serve
// (fully or degraded), 503 when it cannot, and 503 from the moment shutdown
// begins so load balancers stop sending traffic.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		writeJSON(w, http.StatusServiceUnavailable, Readiness{Status: StatusUnavailable, Error: "shutting down"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	rep := s.readiness(ctx)
	code := http.StatusOK
	switch rep.Status {
	case StatusOK:
	case StatusDegraded:
		s.log.Info("server: ready, degraded", "request_id", RequestID(r.Context()), "components", rep.Components)
	default:
		code = http.StatusServiceUnavailable
		s.log.Warn("server: not ready", "request_id", RequestID(r.Context()), "components", rep.Components, "error", rep.Error)
	}
	writeJSON(w, code, rep)
}

// readiness asks Config.Readiness; without one the server is always ready.
func (s *Server) readiness(ctx context.Context) Readiness {
	if s.cfg.Readiness != nil {
		return s.cfg.Readiness(ctx)
	}
	return Readiness{Status: StatusOK}
}
