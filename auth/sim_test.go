package auth_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

func mustSim(t *testing.T) *erpsim.Sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatalf("erpsim.Start: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

func mustLogin(t *testing.T, sim *erpsim.Sim, clientID, login string) *erpsim.Tokens {
	t.Helper()
	tok, err := sim.Login(context.Background(), clientID, login, fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		t.Fatalf("Login(%s, %s): %v", clientID, login, err)
	}
	return tok
}

// simVerifier trusts erpgraph's own applications, as erpgraph's default configuration does.
func simVerifier(t *testing.T, sim *erpsim.Sim) *auth.Verifier {
	t.Helper()
	return mustVerifier(t, auth.Config{Issuer: sim.IdentityURL(), ClientIDs: []string{fixture.BFFClientID, fixture.PlaygroundClientID}})
}

// jwksFetches counts the key set requests erpsim served.
func jwksFetches(sim *erpsim.Sim) int {
	n := 0
	for _, r := range sim.Requests() {
		if strings.HasSuffix(r.Path, "/jwks") {
			n++
		}
	}
	return n
}

// simPublicKeyPEM returns the PEM of the erpsim key that signed token, what
// anybody can build from the public JWKS.
func simPublicKeyPEM(t *testing.T, sim *erpsim.Sim, token string) []byte {
	t.Helper()
	set, err := jwk.Fetch(context.Background(), sim.IdentityURL()+"/.well-known/openid-configuration/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	mustDecodeSegment(t, token, 0, &hdr)
	key, ok := set.LookupKeyID(hdr.Kid)
	if !ok {
		t.Fatalf("kid %s not in erpsim's JWKS", hdr.Kid)
	}
	return pemPublic(t, key)
}

func mustDecodeSegment(t *testing.T, token string, i int, v any) {
	t.Helper()
	seg, err := b64dec(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(seg, v); err != nil {
		t.Fatal(err)
	}
}

// TestVerifier_Erpsim verifies real tokens of erpsim's identity server and
// forgeries built from them.
func TestVerifier_Erpsim(t *testing.T) {
	sim := mustSim(t)
	other := mustSim(t) // another instance: another issuer and other keys
	now := time.Now()

	valid := mustLogin(t, sim, fixture.PlaygroundClientID, fixture.OwnerLogin)
	bff := mustLogin(t, sim, fixture.BFFClientID, fixture.MultiLogin)
	otherApp := mustLogin(t, sim, fixture.OtherClientID, fixture.OwnerLogin)
	foreign := mustLogin(t, other, fixture.PlaygroundClientID, fixture.OwnerLogin)
	service, err := sim.ServiceToken(context.Background(), fixture.BFFClientID)
	if err != nil {
		t.Fatal(err)
	}
	sim.SetClock(func() time.Time { return now.Add(-2 * time.Hour) })
	expired := mustLogin(t, sim, fixture.PlaygroundClientID, fixture.OwnerLogin)
	sim.SetClock(func() time.Time { return now.Add(10 * time.Minute) })
	early := mustLogin(t, sim, fixture.PlaygroundClientID, fixture.OwnerLogin)
	sim.SetClock(time.Now)

	parts := strings.Split(valid.AccessToken, ".")
	var claims map[string]any
	mustDecodeSegment(t, valid.AccessToken, 1, &claims)
	claims["sub"], claims["is_admin"] = fixture.AdminLogin, "true"
	tampered, _ := json.Marshal(claims)

	var hdr map[string]any
	mustDecodeSegment(t, valid.AccessToken, 0, &hdr)
	noneHdr, _ := json.Marshal(map[string]any{"alg": "none", "typ": "at+jwt", "kid": hdr["kid"]})

	hmacKey, err := jwk.FromRaw(simPublicKeyPEM(t, sim, valid.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, hmacKey, jwk.KeyIDKey, hdr["kid"])
	var validClaims map[string]any
	mustDecodeSegment(t, valid.AccessToken, 1, &validClaims)
	hs256 := sign(t, hmacKey, jwa.HS256, "at+jwt", validClaims)

	tests := []struct {
		name  string
		token string
		want  auth.Reason // "" = accepted
		login string
	}{
		{"valid playground token", valid.AccessToken, "", fixture.OwnerLogin},
		{"valid token of erpgraph's own app", bff.AccessToken, "", fixture.MultiLogin},
		{"expired", expired.AccessToken, auth.ReasonExpired, ""},
		{"not yet valid", early.AccessToken, auth.ReasonNotYetValid, ""},
		{"wrong issuer", foreign.AccessToken, auth.ReasonIssuer, ""},
		{"another trusted app's token", otherApp.AccessToken, auth.ReasonClient, ""},
		{"id_token as access token", valid.IDToken, auth.ReasonType, ""},
		{"service token", service.AccessToken, auth.ReasonNotUserToken, ""},
		{"alg none", b64(string(noneHdr)) + "." + parts[1] + ".", auth.ReasonAlgorithm, ""},
		{"HS256 signed with the public key", hs256, auth.ReasonAlgorithm, ""},
		{"tampered payload", parts[0] + "." + b64(string(tampered)) + "." + parts[2], auth.ReasonSignature, ""},
	}
	v := simVerifier(t, sim)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := checkVerify(t, v, tt.token, tt.want)
			if u == nil {
				return
			}
			want, _ := fixture.UserByLogin(tt.login)
			if u.Subject != want.Login || u.ID != want.ID() || u.UserType != want.UserType || u.Name == "" || !u.HasScope("read") {
				t.Errorf("user = %+v, want login %s id %s", u, want.Login, want.ID())
			}
		})
	}
}

// TestVerifier_ErpsimKeyRotation: a key rotated at the identity server is
// picked up without a restart, old tokens keep verifying, and a forged kid
// costs one key set fetch and is refused.
func TestVerifier_ErpsimKeyRotation(t *testing.T) {
	sim := mustSim(t)
	v := simVerifier(t, sim)
	ctx := context.Background()
	before := mustLogin(t, sim, fixture.PlaygroundClientID, fixture.BasicLogin)
	if _, err := v.Verify(ctx, before.AccessToken); err != nil {
		t.Fatal(err)
	}
	fetches := jwksFetches(sim)

	sim.RotateKey()
	after := mustLogin(t, sim, fixture.PlaygroundClientID, fixture.BasicLogin)
	if u, err := v.Verify(ctx, after.AccessToken); err != nil || u.Subject != fixture.BasicLogin {
		t.Fatalf("token signed by the rotated key: %v, %v", u, err)
	}
	if _, err := v.Verify(ctx, before.AccessToken); err != nil {
		t.Errorf("token of the previous key after rotation: %v", err)
	}
	if got := jwksFetches(sim) - fetches; got != 1 {
		t.Errorf("key set fetches for the rotation = %d, want 1", got)
	}

	// A forged kid right after: refused without another fetch (the last
	// refresh is younger than UnknownKeyInterval).
	var claims map[string]any
	mustDecodeSegment(t, after.AccessToken, 1, &claims)
	forgedKey := newTestIssuer(t).newKey(t, jwa.RS256, "00000000000000000000000000000000", false)
	if _, err := v.Verify(ctx, sign(t, forgedKey, jwa.RS256, "at+jwt", claims)); auth.ReasonOf(err) != auth.ReasonUnknownKey {
		t.Errorf("forged kid: err = %v, want reason %q", err, auth.ReasonUnknownKey)
	}
	if got := jwksFetches(sim) - fetches; got != 1 {
		t.Errorf("key set fetches after a forged kid = %d, want still 1", got)
	}
}

// TestVerifier_ErpsimDown: with the identity server gone, tokens of cached
// keys keep verifying and Ping reports the outage.
func TestVerifier_ErpsimDown(t *testing.T) {
	sim := mustSim(t)
	v := simVerifier(t, sim)
	tok := mustLogin(t, sim, fixture.PlaygroundClientID, fixture.OwnerLogin)
	sim.SetFaults(erpsim.Fault{Path: "/id/", Rate: 1, Status: 503})
	ctx := context.Background()
	if err := v.Ping(ctx); err == nil {
		t.Error("Ping succeeded while the identity server answers 503")
	}
	if _, err := v.Verify(ctx, tok.AccessToken); err != nil {
		t.Errorf("Verify with cached keys while the identity server is down: %v", err)
	}
	sim.SetFaults()
	if err := v.Ping(ctx); err != nil {
		t.Errorf("Ping after recovery: %v", err)
	}
}
