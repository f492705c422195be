package mutation_test

import (
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/mutation"
	"github.com/erpgraph/erpgraph/mutation/mutationtest"
)

// The memory store keeps the KeyStore contract the Redis store keeps too.
func TestMemoryKeyStore(t *testing.T) {
	mutationtest.KeyStoreContract(t, func(now func() time.Time, ttl time.Duration) mutation.KeyStore {
		return mutation.NewMemoryKeyStoreWithClock(10, ttl, now)
	})
}
