package server

import (
	"context"
	"net/http"
)

type status struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// healthz answers 200 while the process serves HTTP: a liveness probe that
// does not depend on any upstream.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, status{Status: "ok"})
}

// readyz answers 200 when the upstreams are usable and 503 otherwise, or
// while shutting down so load balancers stop sending traffic. The cause goes
// to the log; the answer says only which check failed.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, status{Status: "unavailable", Error: "shutting down"})
		return
	}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			s.log.Warn("server: not ready", "request_id", RequestID(r.Context()), "err", err)
			writeJSON(w, http.StatusServiceUnavailable, status{Status: "unavailable", Error: "upstream not ready"})
			return
		}
	}
	writeJSON(w, http.StatusOK, status{Status: "ok"})
}
