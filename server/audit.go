package server

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
)

// Audit variable modes: what the audit log says about an operation's variables.
const (
	AuditVariablesNone  = "none"  // nothing
	AuditVariablesNames = "names" // their names, never their values
)

// deny answers a request the edge refuses, and notes why in the record.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, status int, code, reason, msg string) {
	s.cfg.Metrics.Refused(reason)
	if rec := RecordOf(r.Context()); rec != nil {
		rec.Outcome, rec.Denied = code, reason
	}
	writeError(w, r, status, code, msg)
}

// prepare runs right before the GraphQL handler: it reads the (bounded) body
// so that a streamed oversized body gets the same GraphQL-shaped 413 as a
// declared one, opens the record's operation (RecordExtension fills it in),
// sets the per-operation deadline that ERP.net calls inherit, and marks
// authenticated answers uncacheable.
func (s *Server) prepare(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
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
		if rec := RecordOf(r.Context()); rec != nil {
			rec.GraphQL = &Operation{}
		}
		if _, ok := auth.FromContext(r.Context()); ok {
			w.Header().Set("Cache-Control", "no-store")
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.OperationTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// auditOperation writes one audit record per /graphql request from its
// record: who, which operation (name and query hash, never variable values),
// the outcome and, for refusals, why.
func (s *Server) auditOperation(ctx context.Context, rec *Record, d time.Duration) {
	outcome := rec.outcome()
	denied := rec.Denied
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
		slog.String("request_id", rec.RequestID),
		slog.String("client_ip", rec.ClientIP.String()),
		slog.String("method", rec.Method),
	}
	if rec.UserID != "" || rec.Subject != "" {
		attrs = append(attrs, slog.String("user_id", rec.UserID), slog.String("subject", rec.Subject), slog.String("auth", rec.Via))
	}
	if op := rec.GraphQL; op != nil {
		attrs = append(attrs, slog.String("operation_name", op.Name), slog.String("operation_type", op.Type),
			slog.String("query_sha256", op.Hash))
		if s.cfg.AuditVariables == AuditVariablesNames && len(op.Variables) > 0 {
			attrs = append(attrs, slog.Any("variables", op.Variables))
		}
		if s.cfg.CountsUpstream {
			attrs = append(attrs, slog.Int64("upstream_requests", rec.Upstream.Load()))
		}
	}
	attrs = append(attrs, slog.String("outcome", outcome), slog.Int("status", rec.Status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000))
	msg := "graphql operation"
	if denied != "" {
		msg = "graphql request denied"
		attrs = append(attrs, slog.String("reason", denied))
		if rec.AuthReason != "" {
			attrs = append(attrs, slog.String("auth_reason", string(rec.AuthReason)))
		}
	}
	s.audit.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
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
func (s *Server) auditFirstUse(ctx context.Context, rec *Record, raw string, u *auth.User) {
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
	s.audit.LogAttrs(ctx, slog.LevelInfo, "user token first use",
		slog.String("request_id", rec.RequestID),
		slog.String("subject", u.Subject), slog.String("user_id", u.ID), slog.String("user_type", u.UserType),
		slog.String("client_id", u.ClientID), slog.String("token_id_sha256", key),
		slog.String("session_id_sha256", hashID(u.SessionID)), slog.Time("expires_at", u.ExpiresAt),
		slog.String("client_ip", rec.ClientIP.String()),
	)
}
