package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwt"
)

// IDToken is what a server-side sign-in reads of a verified id_token.
type IDToken struct {
	Subject   string    // sub: the user's login
	SessionID string    // sid: the identity-server session (back-channel logout names it)
	ExpiresAt time.Time // exp
	AuthTime  time.Time // auth_time, zero when absent
}

// VerifyIDToken checks an id_token from the token endpoint (OpenID Connect
// Core §3.1.3.7): signature by the identity server's keys, an allowed alg,
// the exact issuer, aud naming clientID (and azp, with several audiences),
// exp and iat within the leeway, and the nonce of the authorization request.
// An access token (typ at+jwt) is refused: it must not pass as an id_token.
func (v *Verifier) VerifyIDToken(ctx context.Context, raw, clientID, nonce string) (*IDToken, error) {
	if clientID == "" || nonce == "" {
		return nil, refuse(ReasonMalformed, errors.New("id_token check needs a client id and a nonce"))
	}
	tok, err := v.verifySigned(ctx, raw, "jwt", "")
	if err != nil {
		return nil, err
	}
	if err := v.validate(tok, jwt.WithAudience(clientID), jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey)); err != nil {
		return nil, err
	}
	if aud := tok.Audience(); len(aud) > 1 && str(tok.PrivateClaims()["azp"]) != clientID {
		return nil, refuse(ReasonAudience, fmt.Errorf("aud %v without azp %q", aud, clientID))
	}
	got := str(tok.PrivateClaims()["nonce"])
	if subtle.ConstantTimeCompare([]byte(got), []byte(nonce)) != 1 {
		return nil, refuse(ReasonNonce, errors.New("nonce does not match the authorization request"))
	}
	if tok.Subject() == "" {
		return nil, refuse(ReasonNotUserToken, errors.New("id_token has no sub"))
	}
	out := &IDToken{Subject: tok.Subject(), SessionID: str(tok.PrivateClaims()["sid"]), ExpiresAt: tok.Expiration()}
	if at, ok := tok.PrivateClaims()["auth_time"].(float64); ok {
		out.AuthTime = time.Unix(int64(at), 0)
	}
	return out, nil
}

// backChannelEvent marks a logout_token (Back-Channel Logout 1.0 §2.4).
const backChannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken is a verified back-channel logout_token: it names the user
// (Subject), the identity-server session (SessionID), or both.
type LogoutToken struct {
	Subject   string
	SessionID string
	ID        string // jti
}

// VerifyLogoutToken checks a logout_token as OpenID Connect Back-Channel
// Logout 1.0 §2.6 says, with the same signature, alg, issuer and clock rules
// as every other token of the instance: typ logout+jwt (or the older JWT),
// aud naming clientID, iat and exp, a jti, the back-channel logout event,
// sub or sid, and no nonce (so an id_token cannot pass as one).
func (v *Verifier) VerifyLogoutToken(ctx context.Context, raw, clientID string) (*LogoutToken, error) {
	tok, err := v.verifySigned(ctx, raw, "logout+jwt", "application/logout+jwt", "jwt")
	if err != nil {
		return nil, err
	}
	if err := v.validate(tok, jwt.WithAudience(clientID), jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithRequiredClaim(jwt.ExpirationKey), jwt.WithRequiredClaim(jwt.JwtIDKey)); err != nil {
		return nil, err
	}
	c := tok.PrivateClaims()
	events, _ := c["events"].(map[string]any)
	if _, ok := events[backChannelEvent].(map[string]any); !ok {
		return nil, refuse(ReasonType, errors.New("logout_token without the back-channel logout event"))
	}
	if _, ok := c["nonce"]; ok {
		return nil, refuse(ReasonType, errors.New("logout_token with a nonce"))
	}
	lt := &LogoutToken{Subject: tok.Subject(), SessionID: str(c["sid"]), ID: tok.JwtID()}
	if lt.Subject == "" && lt.SessionID == "" {
		return nil, refuse(ReasonMalformed, errors.New("logout_token names neither sub nor sid"))
	}
	if aud := tok.Audience(); !slices.Contains(aud, clientID) {
		return nil, refuse(ReasonAudience, fmt.Errorf("aud %v", aud))
	}
	return lt, nil
}
