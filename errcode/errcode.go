// Package errcode is the one registry of the extensions.code values erpgraph answers with: for each code the HTTP
// status where one applies, a one-line meaning, and whether a client may retry the same request (what an offline
// queue needs to know). server, graph, the audit log and cmd/erpsoak use its names; the README's error table is
// generated from All.
//
// Adding a code is one line in the var block below.
package errcode

import "net/http"

// Entry describes one extensions.code.
type Entry struct {
	Code string
	// Status is the HTTP status of an answer that carries the code alone (a refusal by the edge or the HTTP
	// transport). 0: the code comes inside a GraphQL response, as a field error next to the other fields' data
	// (HTTP 200), or, when Request is set, as a request error without data (200 with application/json, 400 with
	// application/graphql-response+json).
	Status int
	// Request marks a request error: the operation did not run at all.
	Request bool
	// Retry says the same request may succeed if sent again unchanged (after Retry-After when the answer has
	// one). A false Retry means the request, the token or the client must change first.
	Retry bool
	// Meaning is one line for the documentation.
	Meaning string
}

// The codes, in the order the README lists them.
var (
	Unauthenticated     = add(Entry{Code: "UNAUTHENTICATED", Status: http.StatusUnauthorized, Meaning: "missing, malformed, expired, foreign-issuer or foreign-client token (401 with `WWW-Authenticate` for an invalid token; a request without a token gets it per field in a 200)"})
	Forbidden           = add(Entry{Code: "FORBIDDEN", Meaning: "the user may not see or do this (internal users, service tokens)"})
	BadUserInput        = add(Entry{Code: "BAD_USER_INPUT", Meaning: "invalid arguments, unsupported filter, bad cursor or id"})
	NotFound            = add(Entry{Code: "NOT_FOUND", Meaning: "no such object, or one the user may not see (indistinguishable)"})
	Conflict            = add(Entry{Code: "CONFLICT", Meaning: "the data was changed by someone else or can no longer be changed"})
	RateLimited         = add(Entry{Code: "RATE_LIMITED", Status: http.StatusTooManyRequests, Retry: true, Meaning: "the user (or anonymous client IP) exceeded their rate or concurrency limit; retry after `Retry-After`"})
	UpstreamBusy        = add(Entry{Code: "UPSTREAM_BUSY", Retry: true, Meaning: "the ERP.net session's queue is longer than the operation's deadline can wait for, so erpgraph answered at once instead of failing later; retry after `extensions.retryAfter` seconds (also the `Retry-After` header when no field got data)"})
	UpstreamUnavailable = add(Entry{Code: "UPSTREAM_UNAVAILABLE", Retry: true, Meaning: "ERP.net or its identity server failed, timed out, or stayed busy (429/503)"})
	Internal            = add(Entry{Code: "INTERNAL_SERVER_ERROR", Meaning: "anything else, including recovered panics (500 when the edge itself failed)"})
	Cancelled           = add(Entry{Code: "REQUEST_CANCELLED", Retry: true, Meaning: "the client went away (or the server shut down) before the field resolved"})
	ShuttingDown        = add(Entry{Code: "SHUTTING_DOWN", Status: http.StatusServiceUnavailable, Retry: true, Meaning: "the process is draining; another instance (or this one, restarted) answers the retry"})

	// gqlgen's own codes (github.com/99designs/gqlgen/graphql/errcode).
	ParseFailed      = add(Entry{Code: "GRAPHQL_PARSE_FAILED", Request: true, Meaning: "the document does not parse"})
	ValidationFailed = add(Entry{Code: "GRAPHQL_VALIDATION_FAILED", Request: true, Meaning: "the document does not validate against the schema, or its variables do not"})

	// Query limits: refused before execution, so before any ERP.net call.
	TooManyTokens         = add(Entry{Code: "TOO_MANY_TOKENS", Request: true, Meaning: "the document has more lexical tokens than `ERPGRAPH_MAX_TOKENS`"})
	QueryTooDeep          = add(Entry{Code: "QUERY_TOO_DEEP", Request: true, Meaning: "the operation nests deeper than `ERPGRAPH_MAX_DEPTH`"})
	TooManyAliases        = add(Entry{Code: "TOO_MANY_ALIASES", Request: true, Meaning: "the operation uses more aliases than `ERPGRAPH_MAX_ALIASES`"})
	TooManyRootFields     = add(Entry{Code: "TOO_MANY_ROOT_FIELDS", Request: true, Meaning: "the operation selects more root fields than `ERPGRAPH_MAX_ROOT_FIELDS`"})
	TooManyDirectives     = add(Entry{Code: "TOO_MANY_DIRECTIVES", Request: true, Meaning: "the operation uses more directives than `ERPGRAPH_MAX_DIRECTIVES`"})
	QueryTooComplex       = add(Entry{Code: "QUERY_TOO_COMPLEX", Request: true, Meaning: "the operation's estimated cost exceeds `ERPGRAPH_MAX_COST`"})
	IntrospectionDisabled = add(Entry{Code: "INTROSPECTION_DISABLED", Request: true, Meaning: "introspection outside dev mode (unless `ERPGRAPH_INTROSPECTION=on`)"})

	// Persisted queries and trusted documents.
	PersistedQueryNotFound     = add(Entry{Code: "PERSISTED_QUERY_NOT_FOUND", Request: true, Meaning: "the hash is not known: send the document along with it (Apollo clients do so by themselves)"})
	PersistedQueryHashMismatch = add(Entry{Code: "PERSISTED_QUERY_HASH_MISMATCH", Request: true, Meaning: "the sha256Hash does not match the document sent with it"})
	OperationNotAllowed        = add(Entry{Code: "OPERATION_NOT_ALLOWED", Request: true, Meaning: "the document is not one of the trusted documents (`ERPGRAPH_TRUSTED_DOCUMENTS_ONLY=on`)"})

	// The HTTP edge and the GraphQL-over-HTTP transport.
	BadRequest           = add(Entry{Code: "BAD_REQUEST", Status: http.StatusBadRequest, Meaning: "unreadable request: not a JSON object, wrong parameter types, no query; 413 for a body over `ERPGRAPH_MAX_BODY_BYTES`"})
	BatchingNotSupported = add(Entry{Code: "BATCHING_NOT_SUPPORTED", Status: http.StatusBadRequest, Meaning: "a JSON array body (batched operations): send one operation per request"})
	MethodNotAllowed     = add(Entry{Code: "METHOD_NOT_ALLOWED", Status: http.StatusMethodNotAllowed, Meaning: "a method other than GET and POST, or a mutation sent with GET"})
	UnsupportedMediaType = add(Entry{Code: "UNSUPPORTED_MEDIA_TYPE", Status: http.StatusUnsupportedMediaType, Meaning: "a POST body that is not `application/json`"})
	NotAcceptable        = add(Entry{Code: "NOT_ACCEPTABLE", Status: http.StatusNotAcceptable, Meaning: "`Accept` allows neither `application/graphql-response+json` nor `application/json`"})
	CSRFPrevented        = add(Entry{Code: "CSRF_PREVENTED", Status: http.StatusBadRequest, Meaning: "a browser could have sent the request without a CORS preflight: send `Content-Type: application/json` or a CSRF header"})
	CORSRefused          = add(Entry{Code: "CORS_REFUSED", Status: http.StatusForbidden, Meaning: "a preflight from an origin outside `ERPGRAPH_CORS_ORIGINS`"})

	// Mutations (package mutation). WRITES_DISABLED is a field error with a null payload; the others come in the
	// payload's userErrors (besides NOT_FOUND, FORBIDDEN, BAD_USER_INPUT, RATE_LIMITED and UPSTREAM_UNAVAILABLE).
	WritesDisabled         = add(Entry{Code: "WRITES_DISABLED", Meaning: "the server runs read-only (`ERPGRAPH_WRITES` off): no mutation runs, ERP.net is not called"})
	StaleObject            = add(Entry{Code: "STALE_OBJECT", Meaning: "`expectedVersion` is not the order's current version: the payload carries `currentVersion` and the order as it is now; merge and send again"})
	DocumentReadOnly       = add(Entry{Code: "DOCUMENT_READ_ONLY", Meaning: "the order is submitted, released or void and cannot be changed this way"})
	RejectedByERP          = add(Entry{Code: "REJECTED_BY_ERP", Meaning: "ERP.net's validation or business rules refused the change (an inactive product, a state change it does not allow); nothing was written"})
	IdempotencyKeyReused   = add(Entry{Code: "IDEMPOTENCY_KEY_REUSED", Meaning: "the idempotency key was used before with a different input: use a new key for a new request"})
	IdempotencyInProgress  = add(Entry{Code: "IDEMPOTENCY_IN_PROGRESS", Retry: true, Meaning: "the first request with this idempotency key is still running: retry with the same key"})
	IdempotencyUnavailable = add(Entry{Code: "IDEMPOTENCY_UNAVAILABLE", Retry: true, Meaning: "the shared idempotency-key store (Redis) did not answer, so the key could not be checked: the mutation did not run and nothing was written (a field error with a null payload); retry with the same key after `extensions.retryAfter` seconds (also the `Retry-After` header when no field got data)"})

	// Server-side sessions (the session cookie, /auth/*).
	CSRFHeaderMissing = add(Entry{Code: "CSRF_HEADER_MISSING", Status: http.StatusUnauthorized, Meaning: "a request with the session cookie (to `/graphql` or `/auth/user`, `/auth/logout`) lacks the CSRF header: send `X-CSRF: 1`"})
	LoginFailed       = add(Entry{Code: "LOGIN_FAILED", Status: http.StatusBadRequest, Meaning: "the sign-in round trip at `/auth/callback` failed (state, nonce, code, tokens, or the identity server refused): start again at `/auth/login`"})
)

var (
	entries []Entry
	byCode  = map[string]int{}
)

// add registers e and returns its code; a code registered twice is a programming error.
func add(e Entry) string {
	if _, dup := byCode[e.Code]; dup || e.Code == "" || e.Meaning == "" {
		panic("errcode: code " + e.Code + " registered twice or without a meaning")
	}
	byCode[e.Code] = len(entries)
	entries = append(entries, e)
	return e.Code
}

// All returns every registered code in documentation order.
func All() []Entry { return append([]Entry(nil), entries...) }

// Lookup returns the entry of code.
func Lookup(code string) (Entry, bool) {
	i, ok := byCode[code]
	if !ok {
		return Entry{}, false
	}
	return entries[i], true
}

// Known reports whether code is registered: anything else in an answer is an untyped error.
func Known(code string) bool {
	_, ok := byCode[code]
	return ok
}

// Retryable reports whether a request answered with code may be sent again unchanged.
func Retryable(code string) bool {
	e, _ := Lookup(code)
	return e.Retry
}
