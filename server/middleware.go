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
	"github.com/erpgraph/erpgraph/session"
)

// RequestIDHeader carries the request ID in both directions. The server
// overwrites the inbound header with the ID it settled on, so handlers behind
// it (the GraphQL error presenter) can read it from the request as well as
// from RequestID(ctx).
const RequestIDHeader = "X-Request-ID"

// requestScope is the per-request state the middleware share: one struct in
// ctx, filled in by inner layers and read by the access log.
type requestScope struct {
	id     string
	user   string // sub of the verified user, for the access log
	userID string // the user's ERP.net id, for the audit log
	reason auth.Reason
	via    string     // how the user was authenticated: "bearer" or "session"
	op     *operation // set on /graphql when the audit log is on
}

type scopeKey struct{}

// RequestID returns the ID of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if sc, ok := ctx.Value(scopeKey{}).(*requestScope); ok {
		return sc.id
	}
	return ""
}

func scopeOf(ctx context.Context) *requestScope {
	if sc, ok := ctx.Value(scopeKey{}).(*requestScope); ok {
		return sc
	}
	return &requestScope{}
}

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

func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		r.Header.Set(RequestIDHeader, id)
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), scopeKey{}, &requestScope{id: id})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// recorder remembers the status and size of a response for the access log
// and whether anything was written (a recovered panic can still answer 500).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	sniff  []byte // the start of the body, for the audit log's outcome; nil = not kept
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(b)
	if rw.sniff != nil && len(rw.sniff) < sniffLimit {
		rw.sniff = append(rw.sniff, b[:min(n, sniffLimit-len(rw.sniff))]...)
	}
	rw.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Flush supports streaming responses (incremental delivery, SSE).
func (rw *recorder) Flush() {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(rw.ResponseWriter).Hijack()
}

// recoverAndLog turns a panic into a logged INTERNAL_SERVER_ERROR and writes
// one access log line per request. The line holds no query string (GET
// /graphql carries variables there) and no headers (tokens).
func (s *Server) recoverAndLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &recorder{ResponseWriter: w}
		sc := scopeOf(r.Context())
		if s.audit != nil && r.URL.Path == "/graphql" {
			sc.op = &operation{}
			rw.sniff = make([]byte, 0, 512)
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(p)
				}
				s.log.Error("server: panic", "request_id", sc.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rw.status == 0 {
					writeError(rw, r, http.StatusInternalServerError, errcode.Internal, "internal server error")
				}
			}
			attrs := []slog.Attr{
				slog.String("request_id", sc.id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rw.status),
				slog.Int64("bytes", rw.bytes),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("remote", r.RemoteAddr),
			}
			if sc.user != "" {
				attrs = append(attrs, slog.String("user", sc.user))
			}
			if sc.reason != "" {
				attrs = append(attrs, slog.String("auth_refused", string(sc.reason)))
			}
			// Preflights are audited only when refused.
			if sc.op != nil && (r.Method != http.MethodOptions || sc.op.denied != "") {
				s.auditOperation(r, rw, sc, time.Since(start))
			}
			level := slog.LevelInfo
			if (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") && rw.status == http.StatusOK {
				level = slog.LevelDebug // probes every few seconds would drown the log
			}
			s.log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		next.ServeHTTP(rw, r)
	})
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
		sc := scopeOf(r.Context())
		if len(values) == 0 {
			if s.cfg.Sessions != nil && s.cfg.Sessions.HasCookie(r) {
				s.authenticateSession(w, r, next)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		scheme, token, ok := strings.Cut(values[0], " ")
		if len(values) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			sc.reason = auth.ReasonMalformed
			s.unauthorized(w, r, `the Authorization header must be "Bearer <access token>"`)
			return
		}
		u, err := s.cfg.Verifier.Verify(r.Context(), strings.TrimSpace(token))
		if err != nil {
			var ae *auth.Error
			msg := "the access token is invalid"
			if errors.As(err, &ae) {
				msg = ae.Description()
				sc.reason = ae.Reason
			} else {
				sc.reason = "error"
			}
			// The access log line carries the reason; the cause is for debugging.
			s.log.Debug("server: token refused", "request_id", sc.id, "err", err)
			s.unauthorized(w, r, msg)
			return
		}
		sc.user, sc.userID, sc.via = u.Subject, u.ID, "bearer"
		s.auditFirstUse(r, strings.TrimSpace(token), u)
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), u)))
	})
}

// authenticateSession authenticates a request by its session cookie. A
// request without the CSRF header, or whose session is unknown, expired or
// ended, is refused with 401; the session's own log and audit records say
// more (refreshes, sign-outs).
func (s *Server) authenticateSession(w http.ResponseWriter, r *http.Request, next http.Handler) {
	sc := scopeOf(r.Context())
	u, err := s.cfg.Sessions.Authenticate(w, r)
	if err != nil {
		var se *session.Error
		if !errors.As(err, &se) {
			se = &session.Error{Status: http.StatusServiceUnavailable, Code: errcode.UpstreamUnavailable, Reason: "error", Msg: "sessions are unavailable right now"}
		}
		sc.reason = auth.Reason("session_" + se.Reason)
		s.log.Debug("server: session refused", "request_id", sc.id, "err", err)
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
	sc.user, sc.userID, sc.via = u.Subject, u.ID, "session"
	next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), u)))
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	s.deny(w, r, http.StatusUnauthorized, errcode.Unauthenticated, "auth", msg)
}
