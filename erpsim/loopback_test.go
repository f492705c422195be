package erpsim_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// The playground signs in against `erpgraph sim` from whatever loopback port
// erpgraph listens on: its registered loopback redirect URIs and origins
// match on any port (RFC 8252 §7.3). Nothing else is loosened: another host,
// path or scheme, and other applications, still need an exact match.
func TestPlaygroundRedirectOnAnyLoopbackPort(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	params := func(client, redirect string) url.Values {
		p := authzParams()
		p.Set("client_id", client)
		p.Set("redirect_uri", redirect)
		p.Set("scope", "openid")
		return p
	}
	for _, redirect := range []string{"http://127.0.0.1:18299/", "http://localhost:18298/"} {
		r := signIn(t, s, params(fixture.PlaygroundClientID, redirect), fixture.OwnerLogin, fixture.DemoPassword)
		if r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("Location"), redirect+"?") {
			t.Errorf("playground at %s: %d Location %q, want a redirect back with a code", redirect, r.status, r.header.Get("Location"))
		}
	}
	for _, tt := range []struct{ client, redirect string }{
		{fixture.PlaygroundClientID, "http://127.0.0.2.example:18299/"},
		{fixture.PlaygroundClientID, "http://127.0.0.1:18299/other"},
		{fixture.PlaygroundClientID, "https://127.0.0.1:18299/"},
		{fixture.PlaygroundClientID, "http://evil.example:8080/"},
		{fixture.BFFClientID, "http://127.0.0.1:18299/auth/callback"},
	} {
		r := do(t, http.MethodGet, s.IdentityURL()+"/connect/authorize?"+params(tt.client, tt.redirect).Encode(), nil, nil)
		if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
			t.Errorf("%s at %s: %d Location %q, want an error page", tt.client, tt.redirect, r.status, r.header.Get("Location"))
		}
	}
	// The browser redeems the code from that origin: CORS allows it.
	r := do(t, http.MethodOptions, s.IdentityURL()+"/connect/token", nil, map[string]string{
		"Origin": "http://127.0.0.1:18299", "Access-Control-Request-Method": "POST"})
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "http://127.0.0.1:18299" {
		t.Errorf("CORS from the playground's origin: Allow-Origin %q", got)
	}
	r = do(t, http.MethodOptions, s.IdentityURL()+"/connect/token", nil, map[string]string{
		"Origin": "http://evil.example:18299", "Access-Control-Request-Method": "POST"})
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("CORS from another origin: Allow-Origin %q", got)
	}
}
