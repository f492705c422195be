package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// testIssuer is a minimal OpenID provider: discovery and a JWKS over HTTP,
// and token signing with keys of any allowed algorithm. It lets the tests
// cover algorithms and key shapes that erpsim (RS256 only) never produces.
type testIssuer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	public   jwk.Set
	jwksHits atomic.Int32
	down     atomic.Bool // answer 503 to everything
}

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	ti := &testIssuer{public: jwk.NewSet()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /id/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := ti.Issuer()
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": iss, "jwks_uri": iss + "/.well-known/openid-configuration/jwks",
			"authorization_endpoint": iss + "/connect/authorize", "token_endpoint": iss + "/connect/token",
		})
	})
	mux.HandleFunc("GET /id/.well-known/openid-configuration/jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksHits.Add(1)
		ti.mu.Lock()
		defer ti.mu.Unlock()
		_ = json.NewEncoder(w).Encode(ti.public)
	})
	ti.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ti.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(ti.srv.Close)
	return ti
}

func (ti *testIssuer) Issuer() string { return ti.srv.URL + "/id" }

// newKey creates a signing key for alg; publish adds its public half to the JWKS.
func (ti *testIssuer) newKey(t testing.TB, alg jwa.SignatureAlgorithm, kid string, publish bool) jwk.Key {
	t.Helper()
	var raw any
	var err error
	switch alg {
	case jwa.ES256:
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, priv, jwk.KeyIDKey, kid)
	mustSet(t, priv, jwk.AlgorithmKey, alg)
	if publish {
		ti.publish(t, priv)
	}
	return priv
}

func (ti *testIssuer) publish(t testing.TB, priv jwk.Key) {
	t.Helper()
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	ti.mu.Lock()
	defer ti.mu.Unlock()
	if err := ti.public.AddKey(pub); err != nil {
		t.Fatal(err)
	}
}

func mustSet(t testing.TB, k jwk.Key, name string, v any) {
	t.Helper()
	if err := k.Set(name, v); err != nil {
		t.Fatal(err)
	}
}

// userClaims are ERP.net-shaped user access token claims (docs/erpnet.md § User tokens).
func (ti *testIssuer) userClaims(clientID string, now time.Time) map[string]any {
	return map[string]any{
		"iss": ti.Issuer(), "aud": []string{ti.Issuer() + "/resources", "DomainAPI"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": "J1", "scope": []string{"openid", "profile", "read"}, "client_id": clientID,
		"sub": "anna.petrova", "id": "0f3c7f5e-1111-4222-8333-944455556666", "sid": "S1",
		"name": "Anna Petrova", "email": "anna@example.com", "email_verified": "true", "locale": "bg",
		"user_type": "ExternalCommunityUser", "is_admin": "false", "db": "EMU_DB",
		"auth_time": now.Unix(), "idp": "local", "amr": []string{"pwd"},
	}
}

// sign makes a compact JWS of claims with key, alg and header typ.
func sign(t testing.TB, key jwk.Key, alg jwa.SignatureAlgorithm, typ string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.TypeKey, typ); err != nil {
		t.Fatal(err)
	}
	if kid := key.KeyID(); kid != "" {
		if err := hdr.Set(jws.KeyIDKey, kid); err != nil {
			t.Fatal(err)
		}
	}
	out, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(fmt.Errorf("sign %s: %w", alg, err))
	}
	return string(out)
}
