package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Provider is the part of the identity server's OpenID Connect discovery
// document erpgraph uses.
type Provider struct {
	Issuer                string `json:"issuer"`
	JWKSURL               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	EndSessionEndpoint    string `json:"end_session_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"` // RFC 7009; empty when the server has none
}

// maxDiscoveryBytes bounds the discovery document; real ones are a few KiB.
const maxDiscoveryBytes = 1 << 20

// DiscoveryURL is the OpenID Connect discovery URL of issuer.
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// Discover fetches issuer's discovery document and checks that it names
// exactly issuer, as OpenID Connect Discovery §4.3 requires.
func Discover(ctx context.Context, client *http.Client, issuer string) (Provider, error) {
	var p Provider
	body, err := get(ctx, client, DiscoveryURL(issuer), maxDiscoveryBytes)
	if err != nil {
		return p, fmt.Errorf("auth: discovery: %w", err)
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return p, fmt.Errorf("auth: discovery: decode document: %w", err)
	}
	if p.Issuer != issuer {
		return p, fmt.Errorf("auth: discovery: document names issuer %q, want %q", p.Issuer, issuer)
	}
	if p.JWKSURL == "" {
		return p, fmt.Errorf("auth: discovery: document has no jwks_uri")
	}
	return p, nil
}

// get fetches url and returns at most limit bytes of a 200 response body.
func get(ctx context.Context, client *http.Client, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		// The body may be an HTML error page; it is not worth logging.
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, limit))
		return nil, fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", url, limit)
	}
	return body, nil
}
