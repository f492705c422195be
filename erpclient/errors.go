package erpclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors. Every error the client returns wraps at most one of them,
// so callers translate with errors.Is in exactly one place (the GraphQL error
// presenter).
var (
	// ErrNotFound: the entity does not exist (HTTP 404, or an empty Get).
	ErrNotFound = errors.New("erpclient: not found")
	// ErrConflict: a stale ObjectVersion, or a document that is no longer editable.
	ErrConflict = errors.New("erpclient: conflict")
	// ErrBusy: ERP.net refused for load (429, 503 without a license) or the
	// client's own queue is full or waited too long. *Error carries Retry-After.
	ErrBusy = errors.New("erpclient: busy")
	// ErrUnauthorized: the service token was refused (401), or the identity
	// server refused the client credentials.
	ErrUnauthorized = errors.New("erpclient: unauthorized")
	// ErrForbidden: the token is valid but lacks the permission (403).
	ErrForbidden = errors.New("erpclient: forbidden")
	// ErrUnavailable: ERP.net or its identity server failed, timed out, could
	// not be reached, or answered something that is not the protocol.
	ErrUnavailable = errors.New("erpclient: unavailable")
	// ErrInvalidQuery: the query cannot be expressed in ERP.net's OData
	// dialect (bad property name, empty in-list, malformed GUID, bad cursor...).
	// It is detected before anything is sent.
	ErrInvalidQuery = errors.New("erpclient: invalid query")
	// ErrScopeRequired: a query on a customer-owned entity set carried neither
	// an access scope nor Unscoped=true. It is a programming error, refused
	// before anything is sent.
	ErrScopeRequired = errors.New("erpclient: access scope required")
	// ErrStale: a write carried an ObjectVersion that is no longer current
	// (someone changed the aggregate since it was read). It matches ErrConflict too.
	ErrStale = errors.New("erpclient: stale object version")
	// ErrReadOnly: a write addressed a document that can no longer be edited
	// (released or later, or void). It matches ErrConflict too.
	ErrReadOnly = errors.New("erpclient: document is read-only")
	// ErrRejected: ERP.net refused a write because of its content: validation
	// (unknown or inactive product, bad quantity, customer mismatch), a
	// business rule, or a state transition the document does not allow. The
	// Error's Message says why in ERP.net's words (not for end users as is).
	ErrRejected = errors.New("erpclient: rejected by ERP.net")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("erpclient: client closed")
)

// BusyError is erpclient's own refusal of a call, before anything is sent:
// the session's queue is longer than the call's deadline (or MaxWait) can wait
// for, the caller's share of the queue is full, the whole queue is full, or
// ERP.net asked the session to pause for longer than the caller can wait. It
// answers at once, so the caller can serve something else (allowed stale
// data) or tell its client when to come back. errors.Is(err, ErrBusy) holds.
type BusyError struct {
	// RetryAfter is when the same call would likely be admitted: the
	// estimated time until the queue ahead of it has gone out, at least 1s.
	RetryAfter time.Duration
	// Reason says why, for logs.
	Reason string
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("erpclient: busy: %s (retry after %s)", e.Reason, e.RetryAfter)
}

// Is makes errors.Is(err, ErrBusy) hold.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// busy builds a BusyError; retryAfter is rounded up to whole seconds (what
// the Retry-After header can say), at least one.
func busy(retryAfter time.Duration, format string, args ...any) *BusyError {
	secs := max(1, (retryAfter+time.Second-1)/time.Second)
	return &BusyError{RetryAfter: secs * time.Second, Reason: fmt.Sprintf(format, args...)}
}

// maxMessage bounds the ERP.net message kept in an Error; upstream messages
// can carry long diagnostic text that has no place in logs or errors.
const maxMessage = 300

// Error is an error answered by the ERP.net Domain API, decoded from its
// envelope {"error":{"message","code","type",...}}. It never holds the request's
// Authorization header or a URL. errors.Is maps it to the sentinels by status.
type Error struct {
	Op         string        // what the client was doing, e.g. "list Crm_Sales_SalesOrders"
	Status     int           // HTTP status
	Code       int           // ERP.net error code (0 when absent)
	Type       string        // ERP.net exception type, e.g. Aloe.SystemFrameworks.E1LicenseException
	Message    string        // ERP.net message, truncated
	RetryAfter time.Duration // from Retry-After on 429/503; 0 when absent
	conflict   bool          // the envelope describes a version mismatch or a read-only document
	noEnvelope bool          // the body was not ERP.net's envelope (proxy, crash page)
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("erpclient: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "ERP.net answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is maps the status to the sentinel errors. A 500 with ERP.net's envelope is
// an operation failure (validation, business rule), not an outage, so it maps
// to ErrConflict when it is about versions or read-only documents and to no
// sentinel otherwise.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict || e.Status == http.StatusPreconditionFailed || e.conflict
	case ErrStale:
		return e.conflict && !e.readOnly()
	case ErrReadOnly:
		return e.conflict && e.readOnly()
	case ErrRejected:
		return e.Status == http.StatusInternalServerError && !e.conflict && !e.noEnvelope && !e.transient() &&
			containsAny(e.Type, rejections)
	case ErrBusy:
		return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrUnavailable:
		switch {
		case e.Status < 400: // a redirect or other non-answer: not the protocol
			return true
		case e.Status == http.StatusBadGateway, e.Status == http.StatusGatewayTimeout:
			return true
		case e.Status >= 500 && e.Status != http.StatusServiceUnavailable:
			// A 500 about the request itself (validation, business rules) is
			// not an outage; one that survived its retries (database timeout,
			// deadlock) is.
			return e.noEnvelope || e.transient()
		}
	}
	return false
}

// requestFailures are the exception types (culture-independent, unlike the
// messages) of 500 answers that fail because of the request itself: asking
// again gives the same answer.
var requestFailures = []string{
	"ODataException", "NotSupportedException", "ValidationException", "ObjectNotFoundException",
	"UnauthorizedAccessException", "ArgumentException", "FormatException", "BusinessRule", "ReadOnly",
	"InvalidQuery", "LicenseException", "StateTransition",
}

// rejections are the exception types of writes refused for their content.
var rejections = []string{"ValidationException", "BusinessRule", "ArgumentException", "FormatException", "StateTransition", "ObjectNotFoundException"}

// readOnly tells a conflict about a non-editable document from a version mismatch.
func (e *Error) readOnly() bool {
	s := strings.ToLower(e.Type + " " + e.Message)
	if strings.Contains(s, "objectversion") || strings.Contains(s, "object version") || strings.Contains(s, "concurrency") ||
		strings.Contains(s, "optimistic") {
		return false
	}
	return true
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// transient reports a 500 that may pass: ERP.net's envelope with an
// exception that is not about the request (a database timeout, a deadlock,
// an injected fault). Only reads are retried on it.
func (e *Error) transient() bool {
	if e.Status != http.StatusInternalServerError || e.conflict || e.noEnvelope {
		return false
	}
	for _, t := range requestFailures {
		if strings.Contains(e.Type, t) {
			return false
		}
	}
	return true
}

// envelope is ERP.net's error body.
type envelope struct {
	Error *struct {
		Message string `json:"message"`
		Code    int    `json:"code"`
		Type    string `json:"type"`
	} `json:"error"`
}

// conflictMarkers are the words ERP.net uses (in English, the default culture)
// for optimistic-locking failures and edits of released documents; the
// exception type names are matched too, which do not depend on the culture.
var conflictMarkers = []string{
	"objectversion", "object version", "concurrency", "optimisticlock", "optimistic lock",
	"read-only", "readonly", "not editable", "cannot be modified", "released document",
}

func looksLikeConflict(typ, msg string) bool {
	s := strings.ToLower(typ + " " + msg)
	for _, m := range conflictMarkers {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// statusError builds the Error for a non-2xx answer from its status, headers and body.
func statusError(op string, status int, header http.Header, body []byte) *Error {
	e := &Error{Op: op, Status: status, RetryAfter: parseRetryAfter(header.Get("Retry-After"), time.Now())}
	var env envelope
	if err := json.Unmarshal(body, &env); err == nil && env.Error != nil {
		e.Code, e.Type = env.Error.Code, truncate(env.Error.Type, 120)
		e.Message = truncate(oneLine(env.Error.Message), maxMessage)
		e.conflict = looksLikeConflict(env.Error.Type, env.Error.Message)
	} else {
		e.noEnvelope = true
	}
	return e
}

// parseRetryAfter reads delta-seconds or an HTTP date; bounded to 10 minutes so
// a broken header cannot stall the scheduler for hours.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := parseSmallInt(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		d = 0
	}
	if d > 10*time.Minute {
		d = 10 * time.Minute
	}
	return d
}

func parseSmallInt(s string) (int, error) {
	if s == "" || len(s) > 6 {
		return 0, errors.New("not a small integer")
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errors.New("not a small integer")
		}
		n = n*10 + int(r-'0')
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// cut on a rune boundary
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// unavailable wraps a transport or protocol failure. The cause is kept for
// logs but *url.Error is unwrapped first: its text holds the request URL.
func unavailable(op string, err error) error {
	return fmt.Errorf("erpclient: %s: %w: %w", op, ErrUnavailable, stripURL(err))
}

// invalid reports a query that cannot be built.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidQuery, fmt.Sprintf(format, args...))
}
