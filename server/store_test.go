package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/internal/storetest"
	"github.com/erpgraph/erpgraph/server"
)

func TestMemoryRateStore(t *testing.T) {
	storetest.RateStore(t, func(*testing.T) server.RateStore { return server.NewMemoryRateStore(100) })
}

func TestMemoryFirstUseStore(t *testing.T) {
	storetest.FirstUseStore(t, func(*testing.T) server.FirstUseStore { return server.NewMemoryFirstUseStore(100) })
}

type downRates struct{}

func (downRates) Take(context.Context, string, float64, int) (time.Duration, error) {
	return 0, errors.New("store down")
}

// A rate store that fails (a shared store out of reach) lets requests through rather than refusing everyone.
func TestServer_RateStoreDown(t *testing.T) {
	e := newBareEnv(t, func(c *server.Config) {
		c.RateLimit = server.RateLimitConfig{AnonRate: 0.001, AnonBurst: 1, Store: downRates{}}
	})
	for i := range 3 {
		if res := e.post(t, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("request %d: HTTP %d", i+1, res.StatusCode)
		}
	}
}
