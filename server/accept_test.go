package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/server"
)

// The answers the edge gives itself (401, 429, 413, CSRF) use the media type the client's Accept header asks for,
// as the GraphQL transport does, and always carry extensions.code: a client that accepts only
// application/graphql-response+json (Apollo Client 4) can read why it was refused.
func TestServer_EdgeAnswersHonourAccept(t *testing.T) {
	e := newBareEnv(t, func(c *server.Config) {
		c.MaxBodyBytes = 64
		c.RateLimit = server.RateLimitConfig{AnonRate: 0.001, AnonBurst: 1}
	})
	// One anonymous request uses the client IP's only token: the rate-limit case below is refused.
	e.post(t, nil)
	small := `{"query":"{ __typename }"}`
	tests := []struct {
		name        string
		contentType string
		header      http.Header
		body        string
		status      int
		code        string
	}{
		{"invalid token", "application/json", http.Header{"Authorization": {"Bearer forged"}}, small, http.StatusUnauthorized, "UNAUTHENTICATED"},
		{"rate limit", "application/json", nil, small, http.StatusTooManyRequests, "RATE_LIMITED"},
		{"body too large", "application/json", nil, `{"query":"` + strings.Repeat("x", 100) + `"}`, http.StatusRequestEntityTooLarge, "BAD_REQUEST"},
		{"CSRF", "text/plain", nil, small, http.StatusBadRequest, "CSRF_PREVENTED"},
	}
	accepts := []struct{ accept, want string }{
		{"application/graphql-response+json", "application/graphql-response+json"},
		{"application/graphql-response+json, application/json;q=0.9", "application/graphql-response+json"}, // Apollo Client 4
		{"application/json", "application/json"},
		{"", "application/json"},
		{"text/html", "application/json"}, // neither: the status is the answer, not a 406
	}
	for _, tt := range tests {
		for _, a := range accepts {
			t.Run(tt.name+"/"+a.accept, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodPost, e.http.URL+"/graphql", strings.NewReader(tt.body))
				if err != nil {
					t.Fatal(err)
				}
				for k, vs := range tt.header {
					req.Header[k] = vs
				}
				req.Header.Set("Content-Type", tt.contentType)
				if a.accept != "" {
					req.Header.Set("Accept", a.accept)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var body struct {
					Errors []struct {
						Message    string
						Extensions struct{ Code, RequestID string }
					}
				}
				if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
					t.Fatalf("body: %v", err)
				}
				if got := res.Header.Get("Content-Type"); got != a.want+"; charset=utf-8" {
					t.Errorf("Content-Type = %q, want %s", got, a.want)
				}
				if res.StatusCode != tt.status || len(body.Errors) != 1 || body.Errors[0].Extensions.Code != tt.code ||
					body.Errors[0].Extensions.RequestID != res.Header.Get("X-Request-ID") {
					t.Errorf("HTTP %d %+v, want %d with code %s and the request id", res.StatusCode, body.Errors, tt.status, tt.code)
				}
			})
		}
	}
}
