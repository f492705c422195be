package auth

import (
	"errors"
	"fmt"
)

// ErrUnauthenticated is matched (errors.Is) by every error Verify returns for
// a token that must be refused.
var ErrUnauthenticated = errors.New("auth: unauthenticated")

// Reason says why a token was refused. It is meant for logs and metrics; the
// client gets only the short Description.
type Reason string

// Reasons a token is refused.
const (
	ReasonMalformed       Reason = "malformed"        // not a compact JWS, bad base64 or JSON, too large
	ReasonAlgorithm       Reason = "algorithm"        // alg not allowed (none, HS*, ...) or not the key's alg
	ReasonType            Reason = "type"             // typ header is not at+jwt (for example an id_token)
	ReasonUnknownKey      Reason = "unknown_key"      // no JWKS key with the token's kid, even after a refresh
	ReasonSignature       Reason = "signature"        // signature does not verify
	ReasonExpired         Reason = "expired"          // exp in the past (beyond the leeway)
	ReasonNotYetValid     Reason = "not_yet_valid"    // nbf or iat in the future (beyond the leeway)
	ReasonIssuer          Reason = "issuer"           // iss is not exactly the configured issuer
	ReasonAudience        Reason = "audience"         // aud does not contain the configured audience
	ReasonClient          Reason = "client"           // client_id is not a trusted application
	ReasonNotUserToken    Reason = "not_user_token"   // no sub/id: a service (client credentials) token
	ReasonKeysUnavailable Reason = "keys_unavailable" // no signing keys could be obtained at all
	ReasonNonce           Reason = "nonce"            // id_token nonce is not the authorization request's
)

var descriptions = map[Reason]string{
	ReasonMalformed:       "the access token is malformed",
	ReasonAlgorithm:       "the access token uses a signing algorithm that is not accepted",
	ReasonType:            "the token is not an access token",
	ReasonUnknownKey:      "the access token was signed by an unknown key",
	ReasonSignature:       "the access token signature is invalid",
	ReasonExpired:         "the access token has expired",
	ReasonNotYetValid:     "the access token is not valid yet",
	ReasonIssuer:          "the access token was issued by another identity server",
	ReasonAudience:        "the access token is not meant for this API",
	ReasonClient:          "the access token was issued to an application this API does not trust",
	ReasonNotUserToken:    "the access token does not identify a user",
	ReasonKeysUnavailable: "the access token cannot be verified right now",
	ReasonNonce:           "the sign-in response does not belong to this sign-in",
}

// Error is a refused token: the reason, and the underlying cause for logs.
// It matches ErrUnauthenticated with errors.Is.
type Error struct {
	Reason Reason
	Err    error // cause, for logs; may be nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("auth: token refused (%s)", e.Reason)
	}
	return fmt.Sprintf("auth: token refused (%s): %v", e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes every *Error match ErrUnauthenticated.
func (e *Error) Is(target error) bool { return target == ErrUnauthenticated }

// Description is a short, client-safe sentence for the reason: it never holds
// token contents or upstream details.
func (e *Error) Description() string {
	if d, ok := descriptions[e.Reason]; ok {
		return d
	}
	return "the access token is invalid"
}

// ReasonOf returns the reason of a refusal, or "" when err is not an *Error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func refuse(r Reason, err error) error { return &Error{Reason: r, Err: err} }
