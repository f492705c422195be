// Package session is erpgraph's server-side sign-in for browser apps on the
// same origin (the "monolithic" deployment of the ERP.net hybrid-app docs):
// erpgraph runs the Authorization Code flow with PKCE as the confidential
// Trusted Application, keeps the tokens on the server, and gives the browser
// only an HttpOnly cookie holding a random session id.
//
// Sessions live in a Store (memory here; Redis for several replicas). The
// refresh token and id_token are sealed with a rotating key ring before they
// reach the store, the store key is a hash of the cookie's id (a store dump
// holds no usable cookie), and a refresh takes the store's lock, so any
// replica can serve any request and a session is refreshed once.
package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
)

// Session is one signed-in browser, as the store keeps it.
type Session struct {
	Key  string    // store key: hex SHA-256 of the cookie's session id
	User auth.User // claims of the latest verified access token
	SID  string    // the identity server's session id (id_token sid), for back-channel logout
	// RefreshToken and IDToken are sealed (Keys.Seal) with the key as
	// associated data: a sealed token copied to another session does not open.
	RefreshToken []byte
	IDToken      []byte
	CreatedAt    time.Time
	LastSeen     time.Time // sliding idle timeout counts from here
	ExpiresAt    time.Time // absolute end, never later than the refresh token's
}

// AccessExpiresAt is when the user's access token expires; it is refreshed
// shortly before.
func (s *Session) AccessExpiresAt() time.Time { return s.User.ExpiresAt }

// ends is when the session ends if nothing happens: the idle timeout or the
// absolute end, whichever comes first.
func (s *Session) ends(idle time.Duration) time.Time {
	if t := s.LastSeen.Add(idle); t.Before(s.ExpiresAt) {
		return t
	}
	return s.ExpiresAt
}

// Store keeps sessions. Implementations must be safe for concurrent use and,
// to serve several replicas, shared by them (Redis): any replica may create,
// read, refresh or end any session.
type Store interface {
	// Create stores a new session; ErrExists if the key is taken.
	Create(ctx context.Context, s *Session) error
	// Get returns a copy of the session; ErrNotFound when it does not exist
	// or its ExpiresAt has passed.
	Get(ctx context.Context, key string) (*Session, error)
	// Update replaces a session that still exists; ErrNotFound when it was
	// ended meanwhile (an update never brings an ended session back).
	Update(ctx context.Context, s *Session) error
	// Delete ends a session; deleting a missing one is no error.
	Delete(ctx context.Context, key string) error
	// DeleteMatching ends the sessions of the user sub and/or of the
	// identity-server session sid (empty matches any; not both empty) and
	// returns them (back-channel logout).
	DeleteMatching(ctx context.Context, sub, sid string) ([]*Session, error)
	// Lock takes the key's refresh lock, waiting while another holder has it
	// (until ctx ends). The lock expires after ttl even if its holder dies
	// (Redis: SET NX PX); the returned func releases it.
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
}

// Store errors.
var (
	ErrNotFound = errors.New("session: not found")
	ErrExists   = errors.New("session: key exists")
)

// keyOf is the store key of a cookie's session id.
func keyOf(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Error is a refusal of a session request: an HTTP status, a stable
// extensions.code, and a reason for logs and the audit log.
type Error struct {
	Status int
	Code   string // extensions.code
	Reason string // for logs: csrf, no_session, expired, refresh_invalid, ...
	Msg    string // client-safe
	Err    error  // cause, for logs
}

func (e *Error) Error() string {
	if e.Err != nil {
		return "session: " + e.Reason + ": " + e.Err.Error()
	}
	return "session: " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes refusals that mean "sign in again" match auth.ErrUnauthenticated.
func (e *Error) Is(target error) bool {
	return target == auth.ErrUnauthenticated && e.Code == CodeUnauthenticated
}

// Codes of the session refusals (extensions.code), from the errcode registry.
var (
	// CodeUnauthenticated: no session, an unknown, expired or ended one, or
	// a refresh the identity server refused; the frontend signs in again.
	CodeUnauthenticated = errcode.Unauthenticated
	// CodeCSRFHeaderMissing: a cookie-authenticated request without the
	// CSRF header (X-CSRF: 1).
	CodeCSRFHeaderMissing = errcode.CSRFHeaderMissing
	// CodeUpstreamUnavailable: the access token expired and the identity
	// server could not refresh it right now; the session stays.
	CodeUpstreamUnavailable = errcode.UpstreamUnavailable
	// CodeLoginFailed: the sign-in round trip failed (state, nonce, code,
	// tokens); the user starts again at the login endpoint.
	CodeLoginFailed = errcode.LoginFailed
	// CodeBadRequest: a malformed request to a login endpoint (returnTo
	// not a local path).
	CodeBadRequest = errcode.BadRequest
)
