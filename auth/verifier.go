package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Config configures a Verifier.
type Config struct {
	// Issuer is the exact iss of accepted tokens: the instance identity
	// server, e.g. https://demo.my.erp.net/id. Required.
	Issuer string
	// JWKSURL is the key set; empty means OpenID Connect discovery on Issuer.
	JWKSURL string
	// ClientIDs are the trusted applications (client_id claim) whose user
	// tokens are accepted. Required: the identity server issues tokens to
	// every app of the instance, and a token for another app must not work here.
	ClientIDs []string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Leeway tolerates clock skew on exp, nbf and iat; default 30s, at most 60s.
	Leeway time.Duration
	// HTTPClient fetches discovery and keys; default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives key refresh problems; default: discard.
	Logger *slog.Logger
	// RefreshInterval is the least time between background key set refreshes;
	// a longer Cache-Control max-age from the identity server wins. Default 5m.
	RefreshInterval time.Duration
	// UnknownKeyInterval is the least time between refreshes triggered by a
	// token with an unknown kid, so forged kids cannot hammer the identity
	// server. Default 30s.
	UnknownKeyInterval time.Duration
	// Now is the clock for token validity; default time.Now.
	Now func() time.Time
}

const (
	defaultLeeway             = 30 * time.Second
	maxLeeway                 = 60 * time.Second
	defaultRefreshInterval    = 5 * time.Minute
	defaultUnknownKeyInterval = 30 * time.Second
	refreshTimeout            = 10 * time.Second
	// maxTokenBytes refuses absurd inputs before any parsing; ERP.net access
	// tokens are about 1.5 KiB.
	maxTokenBytes = 16 << 10
)

// allowedAlgs are the only signature algorithms accepted. Never none or HS*:
// a symmetric alg would let anyone holding the public key forge tokens.
var allowedAlgs = map[jwa.SignatureAlgorithm]jwa.KeyType{
	jwa.RS256: jwa.RSA,
	jwa.PS256: jwa.RSA,
	jwa.ES256: jwa.EC,
}

// Verifier verifies user access tokens against the identity server's keys.
// It is safe for concurrent use; build one per process with the application's
// context, which also bounds the background key refresh.
type Verifier struct {
	issuer     string
	provider   Provider
	jwksURL    string
	clients    map[string]bool
	audience   string
	leeway     time.Duration
	unknownGap time.Duration
	now        func() time.Time
	httpClient *http.Client
	log        *slog.Logger
	keys       *jwk.Cache

	refreshMu   sync.Mutex // serializes unknown-kid refreshes
	lastRefresh time.Time  // of the last unknown-kid refresh

	verified verifiedTokens
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	} else if !strings.HasPrefix(c.Issuer, "https://") && !strings.HasPrefix(c.Issuer, "http://") {
		errs = append(errs, fmt.Errorf("issuer %q is not an http(s) URL", c.Issuer))
	}
	if len(c.ClientIDs) == 0 {
		errs = append(errs, errors.New("at least one trusted client id is required"))
	}
	for _, id := range c.ClientIDs {
		if strings.TrimSpace(id) == "" {
			errs = append(errs, errors.New("trusted client ids must not be empty"))
			break
		}
	}
	if c.Leeway < 0 || c.Leeway > maxLeeway {
		errs = append(errs, fmt.Errorf("leeway %v is outside 0..%v", c.Leeway, maxLeeway))
	}
	if c.RefreshInterval < 0 || c.UnknownKeyInterval < 0 {
		errs = append(errs, errors.New("refresh intervals must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("auth: config: %w", err)
	}
	return nil
}

// NewVerifier discovers the identity server (unless JWKSURL is set), fetches
// its key set once, and keeps it fresh in the background until ctx is done.
// Once started, it keeps verifying with the cached keys while the identity
// server is down.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{
		issuer:     cfg.Issuer,
		jwksURL:    cfg.JWKSURL,
		clients:    make(map[string]bool, len(cfg.ClientIDs)),
		audience:   cfg.Audience,
		leeway:     cfg.Leeway,
		unknownGap: cfg.UnknownKeyInterval,
		now:        cfg.Now,
		httpClient: cfg.HTTPClient,
		log:        cfg.Logger,
	}
	for _, id := range cfg.ClientIDs {
		v.clients[strings.TrimSpace(id)] = true
	}
	v.leeway = cmp.Or(v.leeway, defaultLeeway)
	v.unknownGap = cmp.Or(v.unknownGap, defaultUnknownKeyInterval)
	if v.now == nil {
		v.now = time.Now
	}
	if v.httpClient == nil {
		v.httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	refresh := cfg.RefreshInterval
	refresh = cmp.Or(refresh, defaultRefreshInterval)

	if v.jwksURL == "" {
		p, err := Discover(ctx, v.httpClient, v.issuer)
		if err != nil {
			return nil, err
		}
		v.provider, v.jwksURL = p, p.JWKSURL
	} else {
		v.provider = Provider{Issuer: v.issuer, JWKSURL: v.jwksURL}
	}

	v.keys = jwk.NewCache(ctx, jwk.WithErrSink(errSink{v.log}))
	if err := v.keys.Register(v.jwksURL, jwk.WithHTTPClient(v.httpClient), jwk.WithMinRefreshInterval(refresh)); err != nil {
		return nil, fmt.Errorf("auth: register key set: %w", err)
	}
	set, err := v.keys.Refresh(ctx, v.jwksURL)
	if err != nil {
		return nil, fmt.Errorf("auth: fetch key set: %w", err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("auth: key set at %s is empty", v.jwksURL)
	}
	return v, nil
}

// errSink logs background key refresh failures; verification goes on with
// the keys fetched last.
type errSink struct{ log *slog.Logger }

func (s errSink) Error(err error) {
	s.log.Warn("auth: background key set refresh failed; using cached keys", "err", err)
}

// Provider returns the identity server's discovered endpoints (only Issuer
// and JWKSURL when Config.JWKSURL was given).
func (v *Verifier) Provider() Provider { return v.provider }

// Ping checks that the identity server answers its discovery document (or
// key set). Readiness probes use it; verification does not depend on it.
func (v *Verifier) Ping(ctx context.Context) error {
	url := v.jwksURL
	if v.provider.AuthorizationEndpoint != "" || v.provider.TokenEndpoint != "" {
		url = DiscoveryURL(v.issuer)
	}
	if _, err := get(ctx, v.httpClient, url, maxDiscoveryBytes); err != nil {
		return fmt.Errorf("auth: identity server: %w", err)
	}
	return nil
}

// Verify checks raw, a compact JWS access token, and returns its user. Every
// refusal is an *Error that matches ErrUnauthenticated. A token it accepted
// is remembered for a short while (verifiedFor), never past its exp.
func (v *Verifier) Verify(ctx context.Context, raw string) (*User, error) {
	if len(raw) > maxTokenBytes {
		return v.verify(ctx, raw)
	}
	key := sha256.Sum256([]byte(raw))
	now := v.now()
	if u, ok := v.verified.get(key, now); ok {
		return u, nil
	}
	u, err := v.verify(ctx, raw)
	if err == nil {
		until := now.Add(verifiedFor)
		if u.ExpiresAt.Before(until) {
			until = u.ExpiresAt
		}
		v.verified.put(key, u, until, now)
	}
	return u, err
}

// verify is Verify without the memory of accepted tokens.
func (v *Verifier) verify(ctx context.Context, raw string) (*User, error) {
	// RFC 9068: access tokens are typed at+jwt; id_tokens ("JWT") must not
	// pass as access tokens.
	tok, err := v.verifySigned(ctx, raw, "at+jwt", "application/at+jwt")
	if err != nil {
		return nil, err
	}
	opts := []jwt.ValidateOption{jwt.WithRequiredClaim(jwt.ExpirationKey)}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	if err := v.validate(tok, opts...); err != nil {
		return nil, err
	}
	return v.user(tok)
}

// verifiedFor is how long Verify remembers a token it accepted: a user's next requests with the same token skip
// the signature check and the claims parse, the largest fixed cost of a request. An entry answers the very same
// token bytes only, and only until verifiedFor after its check or the token's exp, whichever comes first: past exp
// the token is checked again in full (the leeway, the refusal), and a key the identity server withdraws stops
// verifying within verifiedFor of the key set refresh that drops it.
const verifiedFor = 30 * time.Second

// maxVerified bounds the remembered tokens (each about 300 bytes).
const maxVerified = 10000

// verifiedTokens are the tokens Verify accepted, by the SHA-256 of their bytes, in an LRU (hashicorp/golang-lru,
// as the edge's rate buckets): a flood of new tokens pushes out the least recently used, never everyone's.
type verifiedTokens struct {
	once  sync.Once
	cache *lru.Cache[[sha256.Size]byte, verifiedToken]
}

type verifiedToken struct {
	user  User
	until time.Time
}

func (t *verifiedTokens) entries() *lru.Cache[[sha256.Size]byte, verifiedToken] {
	t.once.Do(func() {
		c, err := lru.New[[sha256.Size]byte, verifiedToken](maxVerified)
		if err != nil {
			panic(err) // only for a non-positive size
		}
		t.cache = c
	})
	return t.cache
}

// get returns a copy of the user of the remembered token key, while it may be served at now.
func (t *verifiedTokens) get(key [sha256.Size]byte, now time.Time) (*User, bool) {
	e, ok := t.entries().Get(key)
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	u := e.user
	u.Scopes = slices.Clone(u.Scopes)
	return &u, true
}

// put remembers the token key of u until until.
func (t *verifiedTokens) put(key [sha256.Size]byte, u *User, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	c := *u
	c.Scopes = slices.Clone(u.Scopes)
	t.entries().Add(key, verifiedToken{user: c, until: until})
}

// verifySigned checks everything about raw that does not depend on what kind
// of token it is: size, compact JWS with one signature, an allowed alg, a typ
// header among typs, the exact issuer, and the signature by a key of the
// identity server. The claims are parsed but not validated.
func (v *Verifier) verifySigned(ctx context.Context, raw string, typs ...string) (jwt.Token, error) {
	if raw == "" || len(raw) > maxTokenBytes {
		return nil, refuse(ReasonMalformed, fmt.Errorf("token length %d", len(raw)))
	}
	msg, err := jws.Parse([]byte(raw), jws.WithCompact())
	if err != nil {
		return nil, refuse(ReasonMalformed, err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return nil, refuse(ReasonMalformed, fmt.Errorf("%d signatures", len(sigs)))
	}
	hdr := sigs[0].ProtectedHeaders()
	alg := hdr.Algorithm()
	if _, ok := allowedAlgs[alg]; !ok {
		return nil, refuse(ReasonAlgorithm, fmt.Errorf("alg %q", alg))
	}
	if typ := strings.ToLower(hdr.Type()); !slices.Contains(typs, typ) {
		return nil, refuse(ReasonType, fmt.Errorf("typ %q", hdr.Type()))
	}
	// Refuse foreign issuers before looking up keys: their unknown kids
	// must not trigger key refreshes. The claims are checked again after
	// the signature.
	var peek struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(msg.Payload(), &peek); err != nil {
		return nil, refuse(ReasonMalformed, fmt.Errorf("payload: %w", err))
	}
	if peek.Issuer != v.issuer {
		return nil, refuse(ReasonIssuer, fmt.Errorf("iss %q", peek.Issuer))
	}

	key, err := v.key(ctx, hdr.KeyID())
	if err != nil {
		return nil, err
	}
	if err := keyFits(key, alg); err != nil {
		return nil, refuse(ReasonAlgorithm, err)
	}
	tok, err := jwt.Parse([]byte(raw), jwt.WithKey(alg, key), jwt.WithValidate(false))
	if err != nil {
		return nil, refuse(ReasonSignature, err)
	}
	return tok, nil
}

// validate checks the time claims (with the leeway) and the issuer, plus opts.
func (v *Verifier) validate(tok jwt.Token, opts ...jwt.ValidateOption) error {
	opts = append([]jwt.ValidateOption{
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithAcceptableSkew(v.leeway),
		jwt.WithIssuer(v.issuer),
	}, opts...)
	if err := jwt.Validate(tok, opts...); err != nil {
		return refuse(validationReason(err), err)
	}
	return nil
}

func validationReason(err error) Reason {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotYetValid()), errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return ReasonIssuer
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return ReasonAudience
	default:
		return ReasonMalformed
	}
}

// key finds the verification key for kid. An unknown kid triggers one key
// set refresh (a key rollover at the identity server), at most once per
// UnknownKeyInterval; after that the token is refused.
func (v *Verifier) key(ctx context.Context, kid string) (jwk.Key, error) {
	if kid == "" {
		return nil, refuse(ReasonUnknownKey, errors.New("token has no kid"))
	}
	if k, ok := v.cachedKey(ctx, kid); ok {
		return k, nil
	}
	v.refreshMu.Lock()
	defer v.refreshMu.Unlock()
	// Another request may have refreshed while this one waited.
	if k, ok := v.cachedKey(ctx, kid); ok {
		return k, nil
	}
	now := v.now()
	if !v.lastRefresh.IsZero() && now.Sub(v.lastRefresh) < v.unknownGap {
		return nil, refuse(ReasonUnknownKey, fmt.Errorf("kid %q not in key set (refreshed %v ago)", kid, now.Sub(v.lastRefresh).Round(time.Millisecond)))
	}
	v.lastRefresh = now
	// The refresh outlives a caller that gives up: it was charged to the
	// interval, so it should complete for the requests that follow.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	set, err := v.keys.Refresh(rctx, v.jwksURL)
	if err != nil {
		v.log.WarnContext(ctx, "auth: key set refresh for an unknown kid failed; using cached keys", "err", err)
		return nil, refuse(ReasonUnknownKey, fmt.Errorf("kid %q not in cached key set; refresh failed: %w", kid, err))
	}
	if k, ok := set.LookupKeyID(kid); ok {
		return k, nil
	}
	return nil, refuse(ReasonUnknownKey, fmt.Errorf("kid %q not in refreshed key set", kid))
}

func (v *Verifier) cachedKey(ctx context.Context, kid string) (jwk.Key, bool) {
	set, err := v.keys.Get(ctx, v.jwksURL)
	if err != nil {
		return nil, false
	}
	return set.LookupKeyID(kid)
}

// keyFits checks that key may verify alg: the right key type (and curve),
// the key's own alg when it names one, and use "sig" when it names one.
func keyFits(key jwk.Key, alg jwa.SignatureAlgorithm) error {
	if kt := allowedAlgs[alg]; key.KeyType() != kt {
		return fmt.Errorf("alg %s with a %s key", alg, key.KeyType())
	}
	if ka := key.Algorithm(); ka != nil && ka.String() != "" && ka.String() != alg.String() {
		return fmt.Errorf("alg %s with a key for %s", alg, ka)
	}
	if use := key.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return fmt.Errorf("key use %q", use)
	}
	if ec, ok := key.(jwk.ECDSAPublicKey); ok && ec.Crv() != jwa.P256 {
		return fmt.Errorf("alg %s with curve %s", alg, ec.Crv())
	}
	return nil
}

// user maps the verified claims to a User (docs/erpnet.md § User tokens).
func (v *Verifier) user(tok jwt.Token) (*User, error) {
	c := tok.PrivateClaims()
	u := &User{
		Subject:       tok.Subject(),
		ID:            str(c["id"]),
		SessionID:     str(c["sid"]),
		Name:          str(c["name"]),
		Email:         str(c["email"]),
		EmailVerified: boolish(c["email_verified"]),
		Locale:        str(c["locale"]),
		UserType:      str(c["user_type"]),
		IsAdmin:       boolish(c["is_admin"]),
		ClientID:      str(c["client_id"]),
		Scopes:        scopes(c["scope"]),
		ExpiresAt:     tok.Expiration(),
		TokenID:       tok.JwtID(),
	}
	if !v.clients[u.ClientID] {
		return nil, refuse(ReasonClient, fmt.Errorf("client_id %q", u.ClientID))
	}
	// Service (client credentials) tokens have no sub: they name an
	// application, not a person, and must not pass as a user.
	if u.Subject == "" || u.ID == "" {
		return nil, refuse(ReasonNotUserToken, errors.New("no sub or id claim"))
	}
	return u, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// boolish reads ERP.net's string booleans ("true"/"false"), and real ones.
func boolish(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(b, "true")
	}
	return false
}

// scopes reads the scope claim: a JSON array in ERP.net tokens, a
// space-delimited string in RFC 9068 ones.
func scopes(v any) []string {
	switch s := v.(type) {
	case string:
		return strings.Fields(s)
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			if str, ok := e.(string); ok && str != "" {
				out = append(out, str)
			}
		}
		return out
	case []string:
		return s
	}
	return nil
}
