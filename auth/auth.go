// Package auth verifies the access tokens that the ERP.net instance identity
// server issues to users, and carries the verified user through a request's
// context. It knows nothing of GraphQL or HTTP serving.
package auth

import (
	"context"
	"time"
)

// User is the verified identity of an access token's holder, taken from the
// token's claims (docs/erpnet.md § User tokens).
type User struct {
	Subject       string    // sub: the user's login (Sec_Users.Login), not a GUID
	ID            string    // id: the user's GUID (Systems_Security_Users.Id), stable
	SessionID     string    // sid: the identity server session
	Name          string    // name
	Email         string    // email
	EmailVerified bool      // email_verified ("true"/"false" in ERP.net tokens)
	Locale        string    // locale, e.g. "bg"
	UserType      string    // user_type: InternalUser, ExternalCommunityUser or SystemUserNoLogin
	IsAdmin       bool      // is_admin ("true"/"false" in ERP.net tokens)
	ClientID      string    // client_id: the trusted application the token was issued to
	Scopes        []string  // scope
	ExpiresAt     time.Time // exp
	TokenID       string    // jti
}

// User types of the user_type claim.
const (
	InternalUser          = "InternalUser"
	ExternalCommunityUser = "ExternalCommunityUser"
	SystemUserNoLogin     = "SystemUserNoLogin"
)

// IsExternal reports whether the user is an external (community) user, the
// kind that portals serve through the service session.
func (u *User) IsExternal() bool { return u.UserType == ExternalCommunityUser }

// HasScope reports whether the token granted scope s.
func (u *User) HasScope(s string) bool {
	for _, have := range u.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

type ctxKey struct{}

// NewContext returns a copy of ctx that carries the verified user u.
func NewContext(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, ctxKey{}, u)
}

// FromContext returns the verified user carried by ctx, if any.
func FromContext(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(ctxKey{}).(*User)
	return u, ok && u != nil
}
