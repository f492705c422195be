package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

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

// FirstUseStore remembers the user tokens already seen (by a hash of their
// id) until they expire, so that the first use of each is audited once. The
// in-memory store (NewMemoryFirstUseStore) is per replica; a shared one
// (Redis SET NX with the token's expiry) audits each token once across
// replicas. It must be safe for concurrent use.
type FirstUseStore interface {
	// FirstUse records key as seen until expires and reports whether it was
	// not seen before.
	FirstUse(ctx context.Context, key string, expires time.Time) (bool, error)
}

// MemoryFirstUseStore is the in-memory FirstUseStore: an LRU of at most
// maxKeys keys (hashicorp/golang-lru/v2); the least recently seen goes first.
// An entry may outlive its token: an expired token is refused before it is
// looked up, so that changes nothing.
type MemoryFirstUseStore struct {
	seen *lru.Cache[string, struct{}]
}

// NewMemoryFirstUseStore returns a store of at most maxKeys tokens.
func NewMemoryFirstUseStore(maxKeys int) *MemoryFirstUseStore {
	c, err := lru.New[string, struct{}](max(maxKeys, 1))
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &MemoryFirstUseStore{seen: c}
}

// FirstUse implements FirstUseStore; it never fails.
func (m *MemoryFirstUseStore) FirstUse(_ context.Context, key string, _ time.Time) (bool, error) {
	seen, _ := m.seen.ContainsOrAdd(key, struct{}{})
	return !seen, nil
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
	first, err := s.seen.FirstUse(ctx, key, u.ExpiresAt)
	if err != nil {
		// Better a repeated first-use record than none.
		s.cfg.Metrics.StoreFailed("firstuse")
		s.log.WarnContext(ctx, "server: first-use store failed; auditing the use", "request_id", rec.RequestID, "err", err)
	} else if !first {
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
