package session_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// BenchmarkAuthenticate is the cost a cookie request adds before GraphQL:
// CSRF header, cookie, store lookup (memory), expiry checks; no refresh due.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b, envOpts{})
	br := e.browser()
	br.mustLogin(fixture.OwnerLogin)
	c := br.cookie(e.m.CookieName())
	if c == nil {
		b.Fatal("no session cookie")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
			r.Header.Set("X-CSRF", "1")
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			if u, err := e.m.Authenticate(httptest.NewRecorder(), r); err != nil || u == nil {
				b.Fatal(err)
			}
		}
	})
}
