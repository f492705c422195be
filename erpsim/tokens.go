package erpsim

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// idTokenLifetime is the id_token lifetime seen in ERP.net samples.
const idTokenLifetime = 300 * time.Second

// Scopes the identity server knows besides the trusted applications' API scopes.
const (
	scopeOpenID        = "openid"
	scopeProfile       = "profile"
	scopeEmail         = "email"
	scopeOfflineAccess = "offline_access"
	scopeRead          = "read"
	scopeUpdate        = "update"
	scopeDomainAPI     = "DomainApi" // legacy scope the official .NET client still requests
)

// protocolScopes need not be listed on a trusted application and are never
// issued in client-credentials tokens.
var protocolScopes = []string{scopeOpenID, scopeProfile, scopeEmail, scopeOfflineAccess}

// serviceAudiences is the aud list of client-credentials tokens (resources URL appended).
var serviceAudiences = []string{"DomainAPI", "TableAPI", "OLAP", "AppServer"}

// randomHex returns n random bytes as upper-case hex, the shape of IdentityServer's ids.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ crashes instead).
		panic(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// randomToken returns an opaque URL-safe handle (codes, refresh tokens).
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// halfHash is the OIDC at_hash/c_hash/s_hash of v for RS256: base64url of the
// left half of SHA-256.
func halfHash(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// userGrant is what a user sign-in granted to an application; codes and
// refresh tokens carry it, and access/id tokens are minted from it.
type userGrant struct {
	ClientID string
	User     fixture.User
	Scopes   []string
	SID      string
	AuthTime time.Time
}

// issued is the result of minting an access token.
type issued struct {
	token string
	jti   string
}

// mintUserAccess signs a user access token.
func (s *Sim) mintUserAccess(g userGrant, now time.Time) (issued, error) {
	iss := s.IdentityURL()
	aud := []string{iss + "/resources"}
	if slices.Contains(g.Scopes, scopeRead) || slices.Contains(g.Scopes, scopeUpdate) {
		aud = append([]string{"DomainAPI"}, aud...)
	}
	jti := randomHex(16)
	claims := map[string]any{
		"iss": iss, "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(s.tokenLifetime()).Unix(),
		"aud": audClaim(aud), "scope": g.Scopes, "amr": []string{"pwd"},
		"client_id": g.ClientID, "sub": g.User.Login, "auth_time": g.AuthTime.Unix(), "idp": "local",
		"id": g.User.ID(), "name": g.User.Name, "email": g.User.Email,
		"email_verified": boolString(emailVerified(g.User)), "locale": g.User.Locale,
		"user_type": g.User.UserType, "is_admin": boolString(g.User.IsAdmin), "db": fixture.DBName,
		"sid": g.SID, "jti": jti,
	}
	tok, err := s.keys.sign("at+jwt", claims)
	if err != nil {
		return issued{}, err
	}
	s.recordIssued(jti)
	return issued{token: tok, jti: jti}, nil
}

// mintIDToken signs an id_token. accessToken, code and state feed the
// at_hash, c_hash and s_hash claims when present.
func (s *Sim) mintIDToken(g userGrant, nonce, accessToken, code, state string, now time.Time) (string, error) {
	claims := map[string]any{
		"iss": s.IdentityURL(), "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(idTokenLifetime).Unix(),
		"aud": g.ClientID, "amr": []string{"pwd"}, "sub": g.User.Login, "auth_time": g.AuthTime.Unix(),
		"idp": "local", "sid": g.SID,
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if accessToken != "" {
		claims["at_hash"] = halfHash(accessToken)
	}
	if code != "" {
		claims["c_hash"] = halfHash(code)
	}
	if state != "" {
		claims["s_hash"] = halfHash(state)
	}
	if slices.Contains(g.Scopes, scopeProfile) {
		for k, v := range profileClaims(g.User) {
			claims[k] = v
		}
	}
	return s.keys.sign("JWT", claims)
}

// profileClaims are the user claims of the profile scope (id_token and userinfo).
func profileClaims(u fixture.User) map[string]any {
	return map[string]any{
		"id": u.ID(), "name": u.Name, "email": u.Email, "email_verified": boolString(emailVerified(u)),
		"locale": u.Locale, "user_type": u.UserType, "is_admin": boolString(u.IsAdmin), "db": fixture.DBName,
	}
}

// emailVerified: internal accounts are created by administrators, community
// accounts register themselves and start unverified.
func emailVerified(u fixture.User) bool { return u.UserType == fixture.InternalUser }

// mintServiceAccess signs a client-credentials token acting as the app's SystemUser.
func (s *Sim) mintServiceAccess(app fixture.App, sys fixture.User, scopes []string, now time.Time) (issued, error) {
	iss := s.IdentityURL()
	jti := randomHex(16)
	claims := map[string]any{
		"iss": iss, "nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(s.tokenLifetime()).Unix(),
		"aud": append(slices.Clone(serviceAudiences), iss+"/resources"), "scope": scopes,
		"client_id": app.ClientID, "client_system_user": sys.Login, "client_system_user_type": sys.UserType,
		"client_system_user_id": sys.ID(), "client_db": fixture.DBName, "jti": jti,
	}
	tok, err := s.keys.sign("at+jwt", claims)
	if err != nil {
		return issued{}, err
	}
	s.recordIssued(jti)
	return issued{token: tok, jti: jti}, nil
}

// audClaim serializes a one-element audience as a string, as ERP.net does.
func audClaim(aud []string) any {
	if len(aud) == 1 {
		return aud[0]
	}
	return aud
}

// audience decodes aud as either a string or an array of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// accessClaims are the access-token claims the Domain API and userinfo read.
type accessClaims struct {
	Issuer         string   `json:"iss"`
	Audience       audience `json:"aud"`
	Expiry         int64    `json:"exp"`
	NotBefore      int64    `json:"nbf"`
	IssuedAt       int64    `json:"iat"`
	JTI            string   `json:"jti"`
	Scope          []string `json:"scope"`
	ClientID       string   `json:"client_id"`
	Subject        string   `json:"sub"`
	SID            string   `json:"sid"`
	UserType       string   `json:"user_type"`
	UserID         string   `json:"id"`
	SystemUser     string   `json:"client_system_user"`
	SystemUserType string   `json:"client_system_user_type"`
}

// isService reports whether the token came from client credentials.
func (c *accessClaims) isService() bool { return c.Subject == "" && c.SystemUser != "" }

// login is the acting user's login: the user, or the app's SystemUser.
func (c *accessClaims) login() string {
	if c.isService() {
		return c.SystemUser
	}
	return c.Subject
}

// errInvalidToken is wrapped by every access-token verification failure.
var errInvalidToken = errors.New("erpsim: invalid access token")

// verifyAccess checks an access token: signature by one of our keys, typ
// at+jwt, issuer, lifetime against the sim clock, and the revocation mark.
func (s *Sim) verifyAccess(raw string) (*accessClaims, error) {
	typ, payload, err := s.keys.verify(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errInvalidToken, err)
	}
	if typ != "at+jwt" {
		return nil, fmt.Errorf("%w: typ %q is not at+jwt", errInvalidToken, typ)
	}
	var c accessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", errInvalidToken, err)
	}
	if err := s.checkClaims(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// checkClaims validates the time- and state-dependent parts of verified claims;
// it runs on every request, also for tokens found in the verification cache.
func (s *Sim) checkClaims(c *accessClaims) error {
	now := s.now().Unix()
	switch {
	case c.Issuer != s.IdentityURL():
		return fmt.Errorf("%w: issuer %q", errInvalidToken, c.Issuer)
	case c.Expiry == 0 || now >= c.Expiry:
		return fmt.Errorf("%w: expired", errInvalidToken)
	case now < c.NotBefore:
		return fmt.Errorf("%w: not yet valid", errInvalidToken)
	case c.JTI == "" || s.isRevoked(c.JTI):
		return fmt.Errorf("%w: revoked", errInvalidToken)
	}
	return nil
}
