package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/erpgraph/erpgraph/auth"
)

const (
	trustedClient = "com.erpgraph/playground"
	otherClient   = "com.example/other-portal"
)

func mustVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := auth.NewVerifier(ctx, cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func b64dec(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// pemPublic returns the PEM bytes of key's public half, what an attacker
// holding the JWKS would use as an HMAC secret.
func pemPublic(t testing.TB, key jwk.Key) []byte {
	t.Helper()
	pub, err := key.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	var raw any
	if err := pub.Raw(&raw); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifier_Verify(t *testing.T) {
	ti := newTestIssuer(t)
	rs := ti.newKey(t, jwa.RS256, "RSKEY", true)
	ps := ti.newKey(t, jwa.PS256, "PSKEY", true)
	es := ti.newKey(t, jwa.ES256, "ESKEY", true)
	unpublished := ti.newKey(t, jwa.RS256, "NOTPUBLISHED", false)
	now := time.Now()

	claims := func(edit func(map[string]any)) map[string]any {
		c := ti.userClaims(trustedClient, now)
		if edit != nil {
			edit(c)
		}
		return c
	}
	valid := sign(t, rs, jwa.RS256, "at+jwt", claims(nil))
	parts := strings.Split(valid, ".")
	tamperedPayload, _ := json.Marshal(claims(func(c map[string]any) { c["sub"] = "admin"; c["is_admin"] = "true" }))

	hs := func() string {
		hmacKey, err := jwk.FromRaw(pemPublic(t, rs))
		if err != nil {
			t.Fatal(err)
		}
		mustSet(t, hmacKey, jwk.KeyIDKey, "RSKEY")
		return sign(t, hmacKey, jwa.HS256, "at+jwt", claims(nil))
	}()

	tests := []struct {
		name  string
		token string
		want  auth.Reason // "" = accepted
	}{
		{"valid RS256", valid, ""},
		{"valid PS256", sign(t, ps, jwa.PS256, "at+jwt", claims(nil)), ""},
		{"valid ES256", sign(t, es, jwa.ES256, "at+jwt", claims(nil)), ""},
		{"typ application/at+jwt", sign(t, rs, jwa.RS256, "application/at+jwt", claims(nil)), ""},
		{"expired within leeway", sign(t, rs, jwa.RS256, "at+jwt", claims(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() })), ""},
		{"expired", sign(t, rs, jwa.RS256, "at+jwt", claims(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), auth.ReasonExpired},
		{"no exp", sign(t, rs, jwa.RS256, "at+jwt", claims(func(c map[string]any) { delete(c, "exp") })), auth.ReasonMalformed},
		{"not yet valid", sign(t, rs, jwa.RS256, "at+jwt", claims(func(c map[string]any) {
			c["nbf"] = now.Add(5 * time.Minute).Unix()
			c["iat"] = now.Add(5 * time.Minute).Unix()
		})), auth.ReasonNotYetValid},
		{"wrong issuer", sign(t, rs, jwa.RS256, "at+jwt", claims(func(c map[string]any) { c["iss"] = ti.Issuer() + "/" })), auth.ReasonIssuer},
		{"other application", sign(t, rs, jwa.RS256, "at+jwt", claims(func(c map[string]any) { c["client_id"] = otherClient })), auth.ReasonClient},
		{"id_token", sign(t, rs, jwa.RS256, "JWT", claims(func(c map[string]any) { c["aud"] = trustedClient })), auth.ReasonType},
		{"no typ", sign(t, rs, jwa.RS256, "", claims(nil)), auth.ReasonType},
		{"service token", sign(t, rs, jwa.RS256, "at+jwt", claims(func(c map[string]any) { delete(c, "sub"); delete(c, "id") })), auth.ReasonNotUserToken},
		{"alg none", b64(`{"alg":"none","typ":"at+jwt","kid":"RSKEY"}`) + "." + parts[1] + ".", auth.ReasonAlgorithm},
		{"HS256 with the public key", hs, auth.ReasonAlgorithm},
		{"tampered payload", parts[0] + "." + b64(string(tamperedPayload)) + "." + parts[2], auth.ReasonSignature},
		{"RS256 header on a PS256 key", sign(t, ps, jwa.RS256, "at+jwt", claims(nil)), auth.ReasonAlgorithm},
		{"ES256 header on an RSA key", b64(`{"alg":"ES256","typ":"at+jwt","kid":"RSKEY"}`) + "." + parts[1] + "." + parts[2], auth.ReasonAlgorithm},
		{"unpublished key", sign(t, unpublished, jwa.RS256, "at+jwt", claims(nil)), auth.ReasonUnknownKey},
		{"garbage", "not.a.token", auth.ReasonMalformed},
		{"empty", "", auth.ReasonMalformed},
		{"huge", strings.Repeat("a", 20000), auth.ReasonMalformed},
	}
	v := mustVerifier(t, auth.Config{Issuer: ti.Issuer(), ClientIDs: []string{trustedClient, "com.erpgraph/bff"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := checkVerify(t, v, tt.token, tt.want)
			if u != nil && (u.Subject != "anna.petrova" || u.ClientID != trustedClient || u.UserType != auth.ExternalCommunityUser) {
				t.Errorf("user = %+v", u)
			}
		})
	}
}

// checkVerify verifies token and checks the outcome: accepted when want is
// "" (the user is returned), else refused for reason want (nil is returned).
func checkVerify(t *testing.T, v *auth.Verifier, token string, want auth.Reason) *auth.User {
	t.Helper()
	u, err := v.Verify(context.Background(), token)
	if want == "" {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return u
	}
	if err == nil {
		t.Fatalf("Verify accepted the token, want refusal %q", want)
	}
	if !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("error %v does not match ErrUnauthenticated", err)
	}
	if got := auth.ReasonOf(err); got != want {
		t.Errorf("reason = %q, want %q (%v)", got, want, err)
	}
	return nil
}

func TestVerifier_Claims(t *testing.T) {
	ti := newTestIssuer(t)
	rs := ti.newKey(t, jwa.RS256, "K1", true)
	now := time.Now().Truncate(time.Second)
	c := ti.userClaims(trustedClient, now)
	c["is_admin"], c["email_verified"] = "true", "false"
	v := mustVerifier(t, auth.Config{Issuer: ti.Issuer(), ClientIDs: []string{trustedClient}})
	u, err := v.Verify(context.Background(), sign(t, rs, jwa.RS256, "at+jwt", c))
	if err != nil {
		t.Fatal(err)
	}
	want := auth.User{
		Subject: "anna.petrova", ID: "0f3c7f5e-1111-4222-8333-944455556666", SessionID: "S1",
		Name: "Anna Petrova", Email: "anna@example.com", EmailVerified: false, Locale: "bg",
		UserType: auth.ExternalCommunityUser, IsAdmin: true, ClientID: trustedClient,
		ExpiresAt: now.Add(time.Hour), TokenID: "J1",
	}
	got := *u
	got.Scopes = nil
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, want.ExpiresAt)
	}
	got.ExpiresAt = want.ExpiresAt
	if !reflect.DeepEqual(got, want) {
		t.Errorf("user =\n%+v\nwant\n%+v", got, want)
	}
	if strings.Join(u.Scopes, " ") != "openid profile read" || !u.HasScope("read") || u.HasScope("update") {
		t.Errorf("scopes = %v", u.Scopes)
	}
	if !u.IsExternal() {
		t.Error("IsExternal = false for an ExternalCommunityUser")
	}
}

func TestVerifier_Audience(t *testing.T) {
	ti := newTestIssuer(t)
	rs := ti.newKey(t, jwa.RS256, "K1", true)
	v := mustVerifier(t, auth.Config{Issuer: ti.Issuer(), ClientIDs: []string{trustedClient}, Audience: "erpgraph"})
	c := ti.userClaims(trustedClient, time.Now())
	if _, err := v.Verify(context.Background(), sign(t, rs, jwa.RS256, "at+jwt", c)); auth.ReasonOf(err) != auth.ReasonAudience {
		t.Errorf("token without the audience: err = %v, want reason %q", err, auth.ReasonAudience)
	}
	c["aud"] = []string{ti.Issuer() + "/resources", "erpgraph"}
	if _, err := v.Verify(context.Background(), sign(t, rs, jwa.RS256, "at+jwt", c)); err != nil {
		t.Errorf("token with the audience: %v", err)
	}
}

// An unknown kid refreshes the key set once, then refuses; another unknown
// kid within UnknownKeyInterval is refused without a refresh, and a key that
// appeared at the issuer is picked up by the refresh.
func TestVerifier_UnknownKeyRefresh(t *testing.T) {
	ti := newTestIssuer(t)
	rs := ti.newKey(t, jwa.RS256, "K1", true)
	clock := time.Now()
	v := mustVerifier(t, auth.Config{
		Issuer: ti.Issuer(), ClientIDs: []string{trustedClient},
		UnknownKeyInterval: time.Minute, Now: func() time.Time { return clock },
	})
	ctx := context.Background()
	claims := ti.userClaims(trustedClient, clock)
	if _, err := v.Verify(ctx, sign(t, rs, jwa.RS256, "at+jwt", claims)); err != nil {
		t.Fatal(err)
	}
	hits := ti.jwksHits.Load()

	forged := ti.newKey(t, jwa.RS256, "FORGED1", false)
	if _, err := v.Verify(ctx, sign(t, forged, jwa.RS256, "at+jwt", claims)); auth.ReasonOf(err) != auth.ReasonUnknownKey {
		t.Fatalf("unknown kid: err = %v", err)
	}
	if got := ti.jwksHits.Load() - hits; got != 1 {
		t.Fatalf("JWKS fetches after an unknown kid = %d, want 1", got)
	}
	forged2 := ti.newKey(t, jwa.RS256, "FORGED2", false)
	for range 5 {
		if _, err := v.Verify(ctx, sign(t, forged2, jwa.RS256, "at+jwt", claims)); auth.ReasonOf(err) != auth.ReasonUnknownKey {
			t.Fatalf("second unknown kid: err = %v", err)
		}
	}
	if got := ti.jwksHits.Load() - hits; got != 1 {
		t.Fatalf("JWKS fetches after more unknown kids within the interval = %d, want 1", got)
	}

	// A rollover at the issuer: the new key is fetched once the interval passed.
	rotated := ti.newKey(t, jwa.RS256, "K2", true)
	clock = clock.Add(61 * time.Second)
	claims = ti.userClaims(trustedClient, clock)
	if _, err := v.Verify(ctx, sign(t, rotated, jwa.RS256, "at+jwt", claims)); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if got := ti.jwksHits.Load() - hits; got != 2 {
		t.Fatalf("JWKS fetches = %d, want 2", got)
	}
}

// With the identity server down, tokens of cached keys still verify, and an
// unknown kid is refused (not an error of another kind).
func TestVerifier_IssuerDown(t *testing.T) {
	ti := newTestIssuer(t)
	rs := ti.newKey(t, jwa.RS256, "K1", true)
	v := mustVerifier(t, auth.Config{Issuer: ti.Issuer(), ClientIDs: []string{trustedClient}})
	ctx := context.Background()
	ti.down.Store(true)
	if err := v.Ping(ctx); err == nil {
		t.Error("Ping succeeded with the identity server down")
	}
	claims := ti.userClaims(trustedClient, time.Now())
	if _, err := v.Verify(ctx, sign(t, rs, jwa.RS256, "at+jwt", claims)); err != nil {
		t.Errorf("cached key while the issuer is down: %v", err)
	}
	forged := ti.newKey(t, jwa.RS256, "FORGED", false)
	if _, err := v.Verify(ctx, sign(t, forged, jwa.RS256, "at+jwt", claims)); auth.ReasonOf(err) != auth.ReasonUnknownKey {
		t.Errorf("unknown kid while the issuer is down: err = %v", err)
	}
	ti.down.Store(false)
	if err := v.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestNewVerifier_Errors(t *testing.T) {
	ti := newTestIssuer(t)
	ti.newKey(t, jwa.RS256, "K1", true)
	tests := []struct {
		name string
		cfg  auth.Config
		want []string // substrings of the error
	}{
		{"everything missing", auth.Config{Leeway: 2 * time.Minute}, []string{"issuer is required", "trusted client id", "leeway"}},
		{"not a URL", auth.Config{Issuer: "demo.my.erp.net", ClientIDs: []string{"a"}}, []string{"not an http(s) URL"}},
		{"issuer mismatch", auth.Config{Issuer: ti.Issuer() + "/", ClientIDs: []string{"a"}}, []string{"discovery"}},
		{"unreachable", auth.Config{Issuer: "http://127.0.0.1:1/id", ClientIDs: []string{"a"}}, []string{"discovery"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.NewVerifier(context.Background(), tt.cfg)
			if err == nil {
				t.Fatal("NewVerifier succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := auth.FromContext(ctx); ok {
		t.Error("FromContext found a user in an empty context")
	}
	u := &auth.User{Subject: "anna.petrova"}
	got, ok := auth.FromContext(auth.NewContext(ctx, u))
	if !ok || got != u {
		t.Errorf("FromContext = %v, %v", got, ok)
	}
	if _, ok := auth.FromContext(auth.NewContext(ctx, nil)); ok {
		t.Error("FromContext reported a nil user")
	}
}

// TestVerifier_RemembersAcceptedTokens checks that remembering accepted tokens changes no answer: past its exp a
// remembered token gets the full check (accepted within the leeway, then refused as expired), a refusal is not
// remembered, other bytes are checked on their own, and callers get copies.
func TestVerifier_RemembersAcceptedTokens(t *testing.T) {
	ti := newTestIssuer(t)
	rs := ti.newKey(t, jwa.RS256, "K1", true)
	t0 := time.Now().Truncate(time.Second)
	var clock atomic.Int64
	clock.Store(t0.UnixNano())
	at := func(d time.Duration) { clock.Store(t0.Add(d).UnixNano()) }
	v := mustVerifier(t, auth.Config{Issuer: ti.Issuer(), ClientIDs: []string{trustedClient},
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})

	c := ti.userClaims(trustedClient, t0)
	c["exp"] = t0.Add(40 * time.Second).Unix()
	token := sign(t, rs, jwa.RS256, "at+jwt", c)
	u := checkVerify(t, v, token, "")
	u.Name, u.Scopes[0] = "changed by a caller", "update"
	at(20 * time.Second)
	if u := checkVerify(t, v, token, ""); u.Name != "Anna Petrova" || u.Scopes[0] != "openid" {
		t.Errorf("second answer = %+v, want the token's claims", u)
	}
	parts := strings.Split(token, ".")
	tampered, _ := json.Marshal(ti.userClaims(trustedClient, t0))
	checkVerify(t, v, parts[0]+"."+b64(string(tampered))+"."+parts[2], auth.ReasonSignature)
	at(65 * time.Second) // past exp, within the 30 s leeway
	checkVerify(t, v, token, "")
	at(71 * time.Second)
	checkVerify(t, v, token, auth.ReasonExpired)

	early := ti.userClaims(trustedClient, t0)
	early["nbf"], early["iat"] = t0.Add(5*time.Minute).Unix(), t0.Add(5*time.Minute).Unix()
	notYet := sign(t, rs, jwa.RS256, "at+jwt", early)
	at(0)
	checkVerify(t, v, notYet, auth.ReasonNotYetValid)
	at(5 * time.Minute)
	checkVerify(t, v, notYet, "")
}
