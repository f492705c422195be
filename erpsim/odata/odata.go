// Package odata is the Domain API of erpsim: an in-memory store of demo data
// and an OData v4 engine that answers like ERP.net's Domain API
// (/api/domain/odata/): ERP.net's $filter subset, $select default rules,
// $expand, paging with keyset skip tokens, $batch with atomic changesets,
// writes guarded by ObjectVersion and document state, and $metadata.
//
// erpsim mounts NewHandler behind its own middleware (tokens, sessions,
// limits) and passes the caller in the request context with NewContext.
package odata

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Principal is the authenticated caller of a Domain API request, as the
// erpsim middleware established it from the bearer token.
type Principal struct {
	ClientID string   // client_id claim
	Login    string   // sub or client_system_user
	Scopes   []string // granted scopes; writes need "update"
}

// can reports whether the principal was granted scope.
func (p Principal) can(scope string) bool {
	for _, s := range p.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

type principalKey struct{}

// NewContext returns a copy of ctx that carries p for the handler.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the caller stored by NewContext.
func principalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Options configures NewHandler.
type Options struct {
	// ServiceRoot is the absolute service root URL ending with "/", e.g.
	// http://127.0.0.1:41234/api/domain/odata/. @odata.context and
	// @odata.nextLink are built from it, as ERP.net returns absolute URLs.
	ServiceRoot string
	// PartLatency, when set, is slept before each $batch part (a load-test knob).
	PartLatency func() time.Duration
	// Part, when set, wraps the handling of each $batch part outside
	// changesets (paths relative to the service root, as for NewHandler):
	// erpsim injects faults aimed at one entity set there, since ERP.net
	// runs each part as a request of its own.
	Part func(http.Handler) http.Handler
	// Now is the clock for CreationTime of written rows; default time.Now.
	Now func() time.Time
}

// Content types and headers of every Domain API answer.
const (
	jsonContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
	odataVersion    = "4.0"
)

// errorEnvelope is ERP.net's error body.
type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Message       string `json:"message"`
	Code          int    `json:"code"`
	Type          string `json:"type"`
	Info          string `json:"info"`
	MessageFormat any    `json:"messageFormat"`
	Parameters    any    `json:"parameters"`
}

// WriteError answers status with ERP.net's error envelope
// {"error":{"message","code","type","info",...}} and the Domain API headers.
func WriteError(w http.ResponseWriter, status, code int, typ, message string) {
	body, _ := json.Marshal(errorEnvelope{Error: errorBody{Message: message, Code: code, Type: typ, Info: typ + ": " + message}})
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("OData-Version", odataVersion)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
