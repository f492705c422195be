package server

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
)

// Audit variable modes: what the audit log says about an operation's variables.
const (
	AuditVariablesNone  = "none"  // nothing
	AuditVariablesNames = "names" // their names, never their values
)

// operation is what the audit log records of one /graphql request. The edge
// fills in what it can see; inner layers report through AddUpstreamRequests.
type operation struct {
	name, typ, hash string
	variables       []string
	outcome         string // set when the edge answered itself
	denied          string // why the edge refused: auth, csrf, cors, rate, concurrency, body
	reachedGraphQL  bool
	upstream        atomic.Int64
}

// AddUpstreamRequests counts n ERP.net requests made on behalf of the request
// ctx belongs to, for the audit log's upstream_requests. Requests outside a
// /graphql request are ignored. The ERP client (or a hook around it) calls
// this; set Config.CountsUpstream so the audit log reports the count.
func AddUpstreamRequests(ctx context.Context, n int) {
	if sc, ok := ctx.Value(scopeKey{}).(*requestScope); ok && sc.op != nil {
		sc.op.upstream.Add(int64(n))
	}
}

// deny answers a request the edge refuses, and notes why for the audit log.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, status int, code, reason, msg string) {
	s.cfg.Metrics.Refused(reason)
	if op := scopeOf(r.Context()).op; op != nil {
		op.outcome, op.denied = code, reason
	}
	writeError(w, r, status, code, msg)
}

// sniffLimit is how much of a GraphQL response the audit log reads for the
// outcome: gqlgen writes "errors" before "data", so the first error's code is
// near the start.
const sniffLimit = 4 << 10

// outcomeOf is the first error's extensions.code in a GraphQL response
// prefix, "OK" when the response has no errors, "ERROR" for an error without
// a code or a response it cannot read.
func outcomeOf(prefix []byte, status int) string {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	want := func(d json.Delim) bool { t, err := dec.Token(); return err == nil && t == d }
	if !want('{') {
		return fmt.Sprintf("HTTP_%d", status)
	}
	t, err := dec.Token()
	if err != nil {
		return "ERROR"
	}
	if t != "errors" {
		return "OK"
	}
	if !want('[') || !want('{') {
		return "ERROR"
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "ERROR"
		}
		if key != "extensions" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return "ERROR"
			}
			continue
		}
		var ext struct {
			Code string `json:"code"`
		}
		if dec.Decode(&ext) != nil || ext.Code == "" {
			return "ERROR"
		}
		return ext.Code
	}
	return "ERROR"
}

// graphqlRequest is the part of a GraphQL-over-HTTP request the audit log needs.
type graphqlRequest struct {
	Query         string                     `json:"query"`
	OperationName string                     `json:"operationName"`
	Variables     map[string]json.RawMessage `json:"variables"`
	Extensions    struct {
		PersistedQuery struct {
			Sha256Hash string `json:"sha256Hash"`
		} `json:"persistedQuery"`
	} `json:"extensions"`
}

// prepare runs right before the GraphQL handler: it reads the (bounded) body
// once so the audit log knows the operation, sets the per-operation deadline
// that ERP.net calls inherit, and marks authenticated answers uncacheable.
func (s *Server) prepare(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := scopeOf(r.Context()).op
		var body []byte
		if r.Method == http.MethodPost {
			// Read here (bounded by limitBody) so that a streamed oversized
			// body gets the same GraphQL-shaped 413 as a declared one.
			var err error
			if body, err = io.ReadAll(r.Body); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					s.deny(w, r, http.StatusRequestEntityTooLarge, errcode.BadRequest, "body",
						fmt.Sprintf("request body larger than %d bytes", s.cfg.MaxBodyBytes))
					return
				}
				s.deny(w, r, http.StatusBadRequest, errcode.BadRequest, "body", "the request body could not be read")
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if op != nil {
			var req graphqlRequest
			if r.Method == http.MethodPost {
				_ = json.Unmarshal(body, &req) // a malformed body is the GraphQL handler's to answer
			} else {
				q := r.URL.Query()
				req.Query, req.OperationName = q.Get("query"), q.Get("operationName")
				_ = json.Unmarshal([]byte(q.Get("variables")), &req.Variables)
				_ = json.Unmarshal([]byte(q.Get("extensions")), &req.Extensions)
			}
			op.describe(req, s.cfg.AuditVariables)
			op.reachedGraphQL = true
		}
		if _, ok := auth.FromContext(r.Context()); ok {
			w.Header().Set("Cache-Control", "no-store")
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.OperationTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (op *operation) describe(req graphqlRequest, variables string) {
	op.hash = req.Extensions.PersistedQuery.Sha256Hash
	if req.Query != "" {
		sum := sha256.Sum256([]byte(req.Query))
		op.hash = hex.EncodeToString(sum[:])
	}
	op.typ, op.name = firstOperation(req.Query)
	if req.OperationName != "" {
		op.name = req.OperationName
	}
	if len(op.name) > 128 {
		op.name = op.name[:128]
	}
	if variables == AuditVariablesNames && len(req.Variables) > 0 {
		for k := range req.Variables {
			op.variables = append(op.variables, k)
		}
		slices.Sort(op.variables)
	}
}

// firstOperation finds the type and name of the first operation in a
// document by its tokens (cheap, and bounded: names come early), without
// parsing it; the GraphQL handler does that.
func firstOperation(query string) (typ, name string) {
	lx := lexer.New(&ast.Source{Input: query})
	depth, fragment := 0, false
	for i := 0; i < 10_000; i++ {
		tok, err := lx.ReadToken()
		if err != nil || tok.Kind == lexer.EOF {
			return "", ""
		}
		switch tok.Kind {
		case lexer.BraceL:
			if depth == 0 && typ == "" && !fragment {
				return "query", "" // shorthand query: { ... }
			}
			depth++
		case lexer.BraceR:
			if depth--; depth == 0 {
				fragment = false
			}
		case lexer.Name:
			if depth != 0 || fragment {
				continue
			}
			if typ != "" {
				return typ, tok.Value
			}
			switch tok.Value {
			case "query", "mutation", "subscription":
				typ = tok.Value
			case "fragment":
				fragment = true
			}
		default:
			if typ != "" && depth == 0 {
				return typ, "" // anonymous operation with variables: query ($x: ...)
			}
		}
	}
	return typ, ""
}

// auditOperation writes one audit record per /graphql request: who, which
// operation (name and query hash, never variable values), the outcome and,
// for refusals, why.
func (s *Server) auditOperation(r *http.Request, rw *recorder, sc *requestScope, d time.Duration) {
	op := sc.op
	outcome := op.outcome
	if outcome == "" {
		outcome = outcomeOf(rw.sniff, rw.status)
	}
	denied := op.denied
	if denied == "" {
		switch outcome {
		case errcode.Unauthenticated:
			denied = "auth"
		case errcode.Forbidden:
			denied = "access"
		case errcode.RateLimited:
			denied = "limits"
		}
	}
	attrs := []slog.Attr{
		slog.String("request_id", sc.id),
		slog.String("client_ip", s.clientIP(r).String()),
		slog.String("method", r.Method),
	}
	if sc.userID != "" || sc.user != "" {
		attrs = append(attrs, slog.String("user_id", sc.userID), slog.String("subject", sc.user), slog.String("auth", sc.via))
	}
	if op.reachedGraphQL {
		attrs = append(attrs, slog.String("operation_name", op.name), slog.String("operation_type", op.typ),
			slog.String("query_sha256", op.hash))
		if op.variables != nil {
			attrs = append(attrs, slog.Any("variables", op.variables))
		}
		if s.cfg.CountsUpstream {
			attrs = append(attrs, slog.Int64("upstream_requests", op.upstream.Load()))
		}
	}
	attrs = append(attrs, slog.String("outcome", outcome), slog.Int("status", rw.status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000))
	msg := "graphql operation"
	if denied != "" {
		msg = "graphql request denied"
		attrs = append(attrs, slog.String("reason", denied))
		if sc.reason != "" {
			attrs = append(attrs, slog.String("auth_reason", string(sc.reason)))
		}
	}
	s.audit.LogAttrs(r.Context(), slog.LevelInfo, msg, attrs...)
}

// tokenSet remembers the user tokens already seen (by a hash of their id)
// until they expire, so that the first use of each is audited once. It is
// bounded: over its size the oldest entries go first.
type tokenSet struct {
	mu    sync.Mutex
	max   int
	seen  map[string]*list.Element
	order *list.List // of seenToken, oldest first
}

type seenToken struct {
	key     string
	expires time.Time
}

func newTokenSet(maxEntries int) *tokenSet {
	return &tokenSet{max: maxEntries, seen: map[string]*list.Element{}, order: list.New()}
}

// add reports whether key is new.
func (ts *tokenSet) add(key string, expires, now time.Time) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.seen[key]; ok {
		return false
	}
	for el := ts.order.Front(); el != nil; el = ts.order.Front() {
		st := el.Value.(seenToken)
		if ts.order.Len() < ts.max && now.Before(st.expires) {
			break
		}
		ts.order.Remove(el)
		delete(ts.seen, st.key)
	}
	ts.seen[key] = ts.order.PushBack(seenToken{key: key, expires: expires})
	return true
}

// hashID is a short, stable, non-reversible form of a token id for logs.
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// auditFirstUse records the first request made with a user token.
func (s *Server) auditFirstUse(r *http.Request, raw string, u *auth.User) {
	if s.audit == nil {
		return
	}
	id := u.TokenID
	if id == "" {
		id = "raw:" + raw // hashed below; tokens without jti are told apart by their bytes
	}
	key := hashID(id)
	if !s.seen.add(key, u.ExpiresAt, time.Now()) {
		return
	}
	s.audit.LogAttrs(r.Context(), slog.LevelInfo, "user token first use",
		slog.String("request_id", RequestID(r.Context())),
		slog.String("subject", u.Subject), slog.String("user_id", u.ID), slog.String("user_type", u.UserType),
		slog.String("client_id", u.ClientID), slog.String("token_id_sha256", key),
		slog.String("session_id_sha256", hashID(u.SessionID)), slog.Time("expires_at", u.ExpiresAt),
		slog.String("client_ip", s.clientIP(r).String()),
	)
}
