package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/erpgraph/erpgraph/auth"
)

// BenchmarkVerifier_Verify measures one access token verification (cached
// key), the cost every authenticated request pays.
func BenchmarkVerifier_Verify(b *testing.B) {
	for _, alg := range []jwa.SignatureAlgorithm{jwa.RS256, jwa.ES256} {
		b.Run(alg.String(), func(b *testing.B) {
			ti := newTestIssuer(b)
			key := ti.newKey(b, alg, "K-"+alg.String(), true)
			v, err := auth.NewVerifier(context.Background(), auth.Config{Issuer: ti.Issuer(), ClientIDs: []string{trustedClient}})
			if err != nil {
				b.Fatal(err)
			}
			tok := sign(b, key, alg, "at+jwt", ti.userClaims(trustedClient, time.Now()))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(context.Background(), tok); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
