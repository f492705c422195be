package server

import (
	"cmp"
	"context"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpclient"
)

// Record is everything the server learns about one request, in one place:
// the edge fills in who and what it refused, the GraphQL extension
// (RecordExtension) the operation and its outcome, the GraphQL handler the
// upstream requests made for it (through Upstream), and the response writer
// the status and size. The access log and the audit log are written from it
// when the request ends; metrics and traces read the same fields.
//
// The fields are written by the request's own goroutine (Upstream by any,
// atomically) and are complete once the handler returned.
type Record struct {
	RequestID string
	Start     time.Time
	Method    string
	Path      string
	Remote    string     // the peer address as the connection reports it
	ClientIP  netip.Addr // the client, X-Forwarded-For believed only from trusted proxies

	// Set when a Bearer token was verified.
	Subject string // the token's sub
	UserID  string // the user's ERP.net id
	// UserKey is who the request counts as for per-user limits and for the
	// ERP.net session's fair share: the user's id (or subject); "" without a
	// user. It is worked out here only.
	UserKey string
	// Via is how the user was authenticated: "bearer" or "session".
	Via string
	// AuthReason says why a token or session was refused ("" when it was not).
	AuthReason auth.Reason

	// Denied is why the edge (or access control) refused the request: auth,
	// access, csrf, cors, rate, concurrency, body, shutdown; "" when it did not.
	Denied string
	// Outcome is the first extensions.code of the answer, "OK" without
	// errors, "ERROR" for an error without a code.
	Outcome string

	// GraphQL is set on /graphql once the request passed the edge.
	GraphQL *Operation
	// Upstream counts the ERP.net HTTP requests made for this request (a
	// $batch or a shared GET once for each request whose work it carried, a
	// retry again).
	Upstream atomic.Int64
	// Cache is how fresh the ERP.net answers behind the request were (read
	// cache hits, misses, stale answers, the oldest answer's age), for logs
	// and metrics; nil until the GraphQL handler's wiring sets it.
	Cache *erpclient.Freshness

	Status int   // HTTP status of the answer
	Bytes  int64 // body bytes written
}

// Operation is what a GraphQL request ran, as RecordExtension saw it.
type Operation struct {
	Name      string           // operationName, else the operation's own name (at most 128 bytes)
	Type      string           // query, mutation or subscription; "" when the document did not parse
	Hash      string           // sha256 (hex) of the document, or the persisted-query hash it was sent by
	Variables []string         // variable names, sorted; never values
	Errors    []OperationError // the answer's errors, the first 100
	// Valid says the document parsed and validated, so Name is an operation's
	// name rather than whatever the client sent.
	Valid bool

	document string // the document as sent, until the answer names the operation
}

// OperationError is one error of the answer: its code and where, never its message.
type OperationError struct {
	Code string
	Path string
}

// signedIn notes the verified user; the per-user key is worked out here only.
func (rec *Record) signedIn(u *auth.User, via string) {
	rec.Subject, rec.UserID, rec.UserKey, rec.Via = u.Subject, u.ID, cmp.Or(u.ID, u.Subject), via
}

type recordKey struct{}

// RecordOf returns the record of the request ctx belongs to, or nil outside
// a request served by Server.
func RecordOf(ctx context.Context) *Record {
	rec, _ := ctx.Value(recordKey{}).(*Record)
	return rec
}

// RequestID returns the ID of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if rec := RecordOf(ctx); rec != nil {
		return rec.RequestID
	}
	return ""
}

// Outcomes of a request without an error code.
const (
	outcomeOK    = "OK"
	outcomeError = "ERROR"
)

// outcome is the record's outcome, or what the status says when nothing
// told the record (a GraphQL handler without RecordExtension).
func (rec *Record) outcome() string {
	switch {
	case rec.Outcome != "":
		return rec.Outcome
	case rec.Status < 400:
		return outcomeOK
	}
	return "HTTP_" + strconv.Itoa(rec.Status)
}
