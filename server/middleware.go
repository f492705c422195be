package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/metrics"
	"github.com/erpgraph/erpgraph/session"
)

// RequestIDHeader carries the request ID in both directions: a sane inbound
// value is kept, else the server makes one up; the answer always carries it.
// Handlers behind the server read it from RequestID(ctx), never the header.
const RequestIDHeader = "X-Request-ID"

// saneRequestID accepts a caller's ID only if it cannot break logs or
// headers: 1..128 characters of letters, digits and -_.:
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// record starts the request's Record: its ID (worked out here and nowhere
// else), the client, and the start time.
func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set(RequestIDHeader, id)
		rec := &Record{RequestID: id, Start: time.Now(), Method: r.Method, Path: r.URL.Path, Remote: r.RemoteAddr,
			ClientIP: s.clientIP(r)}
		traceStart(r.Context(), rec)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)))
	})
}

// recorder notes the status and size of a response in the record, and
// whether anything was written (a recovered panic can still answer 500).
type recorder struct {
	http.ResponseWriter
	rec *Record
}

func (rw *recorder) WriteHeader(code int) {
	if rw.rec.Status == 0 {
		rw.rec.Status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.rec.Status == 0 {
		rw.rec.Status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	rw.rec.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Flush supports streaming responses (incremental delivery, SSE).
func (rw *recorder) Flush() {
	if rw.rec.Status == 0 {
		rw.rec.Status = http.StatusOK
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(rw.ResponseWriter).Hijack()
}

// recoverAndLog turns a panic into a logged INTERNAL_SERVER_ERROR and, from
// the record, writes one access log line per request and the audit record of
// /graphql requests. The line holds no query string (GET /graphql carries
// variables there) and no headers (tokens).
func (s *Server) recoverAndLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := RecordOf(r.Context())
		rw := &recorder{ResponseWriter: w, rec: rec}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "server: panic", "request_id", rec.RequestID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.Status == 0 {
					rec.Outcome = errcode.Internal
					writeError(rw, r, http.StatusInternalServerError, errcode.Internal, "internal server error")
				}
			}
			d := time.Since(rec.Start)
			// Preflights are audited only when refused.
			if s.audit != nil && rec.Path == "/graphql" && (rec.Method != http.MethodOptions || rec.Denied != "") {
				s.auditOperation(r.Context(), rec, d)
			}
			if op := rec.GraphQL; op != nil {
				s.observeOperation(rec, op, d)
			}
			s.accessLog(r.Context(), rec, d)
			traceEnd(r.Context(), rec)
		}()
		next.ServeHTTP(rw, r)
	})
}

// observeOperation hands a finished GraphQL operation to the metrics.
func (s *Server) observeOperation(rec *Record, op *Operation, d time.Duration) {
	if s.cfg.Metrics == nil {
		return
	}
	codes := make([]string, len(op.Errors))
	for i, e := range op.Errors {
		codes[i] = e.Code
	}
	s.cfg.Metrics.ObserveOperation(metrics.Operation{Name: op.Name, Type: op.Type, Outcome: rec.outcome(), Codes: codes,
		Upstream: int(rec.Upstream.Load()), Duration: d, Valid: op.Valid})
}

// accessLog writes the access log line of a request from its record.
func (s *Server) accessLog(ctx context.Context, rec *Record, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("request_id", rec.RequestID),
		slog.String("method", rec.Method),
		slog.String("path", rec.Path),
		slog.Int("status", rec.Status),
		slog.Int64("bytes", rec.Bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("remote", rec.Remote),
	}
	if rec.Subject != "" {
		attrs = append(attrs, slog.String("user", rec.Subject))
	}
	if rec.AuthReason != "" {
		attrs = append(attrs, slog.String("auth_refused", string(rec.AuthReason)))
	}
	level := slog.LevelInfo
	if (rec.Path == "/healthz" || rec.Path == "/readyz") && rec.Status == http.StatusOK {
		level = slog.LevelDebug // probes every few seconds would drown the log
	}
	s.log.LogAttrs(ctx, level, "http request", attrs...)
}

// limitBody refuses bodies over MaxBodyBytes: declared ones up front with 413,
// streamed ones when the handler reads past the limit.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			s.deny(w, r, http.StatusRequestEntityTooLarge, errcode.BadRequest, "body",
				fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate verifies a Bearer token. No Authorization header passes
// through without a user (the GraphQL layer answers UNAUTHENTICATED per
// field); a header that does not hold a valid token is refused with 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("Authorization")
		if len(values) == 0 {
			if s.cfg.Sessions != nil && s.cfg.Sessions.HasCookie(r) {
				s.authenticateSession(w, r, next)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		rec := RecordOf(r.Context())
		scheme, token, ok := strings.Cut(values[0], " ")
		if len(values) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			rec.AuthReason = auth.ReasonMalformed
			s.unauthorized(w, r, `the Authorization header must be "Bearer <access token>"`)
			return
		}
		u, err := s.cfg.Verifier.Verify(r.Context(), strings.TrimSpace(token))
		if err != nil {
			var ae *auth.Error
			msg := "the access token is invalid"
			if errors.As(err, &ae) {
				msg = ae.Description()
				rec.AuthReason = ae.Reason
			} else {
				rec.AuthReason = "error"
			}
			// The access log line carries the reason; the cause is for debugging.
			s.log.DebugContext(r.Context(), "server: token refused", "request_id", rec.RequestID, "err", err)
			s.unauthorized(w, r, msg)
			return
		}
		rec.signedIn(u, "bearer")
		s.auditFirstUse(r.Context(), rec, strings.TrimSpace(token), u)
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), u)))
	})
}

// authenticateSession authenticates a request by its session cookie. A
// request without the CSRF header, or whose session is unknown, expired or
// ended, is refused with 401; the session's own log and audit records say
// more (refreshes, sign-outs).
func (s *Server) authenticateSession(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := RecordOf(r.Context())
	u, err := s.cfg.Sessions.Authenticate(w, r)
	if err != nil {
		var se *session.Error
		if !errors.As(err, &se) {
			se = &session.Error{Status: http.StatusServiceUnavailable, Code: errcode.UpstreamUnavailable, Reason: "error", Msg: "sessions are unavailable right now"}
		}
		rec.AuthReason = auth.Reason("session_" + se.Reason)
		s.log.DebugContext(r.Context(), "server: session refused", "request_id", rec.RequestID, "err", err)
		denied := "auth"
		if se.Code == errcode.CSRFHeaderMissing {
			denied = "csrf"
		}
		if se.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Cookie realm="erpgraph"`)
		}
		s.deny(w, r, se.Status, se.Code, denied, se.Msg)
		return
	}
	if u == nil {
		next.ServeHTTP(w, r)
		return
	}
	rec.signedIn(u, "session")
	next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), u)))
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	s.deny(w, r, http.StatusUnauthorized, errcode.Unauthenticated, "auth", msg)
}
