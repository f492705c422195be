package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/server"
)

const newOrdersCount = `query { salesOrders(first: 1, filter: {state: [NEW]}) { totalCount } }`

// totalCount asks r for the owner's NEW orders; it fails the test on an error.
func totalCount(t *testing.T, r *app.App, token string) int {
	t.Helper()
	got := send(t, nil, newPost(t, r, token, "application/json", jsonBody(newOrdersCount, nil)))
	if got.status != http.StatusOK || len(got.body.Errors) > 0 {
		t.Fatalf("count: %d %+v", got.status, got.body.Errors)
	}
	n, _ := got.body.Data["salesOrders"].(map[string]any)["totalCount"].(float64)
	return int(n)
}

// eventually asks r until the count is want; the documents' TTL is longer
// than the test, so only an invalidation can change what r answers.
func eventually(t *testing.T, r *app.App, token string, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := totalCount(t, r, token); n != want; n = totalCount(t, r, token) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the other replica still answers %d, want %d", what, n, want)
		}
		<-tick.C
	}
}

// Two replicas on one Redis share the read cache: an answer one read is
// served by the other without asking ERP.net, and a write through one
// invalidates what the other cached. With Redis down reads keep working;
// an invalidation made meanwhile reaches the other replica once Redis is
// back.
func TestApp_RedisSharesReadCache(t *testing.T) {
	redis := redistest.Start(t)
	// the other replica is asked until it has heard of an invalidation: no rate limit in the way
	a, b := twoReplicas(t, redis.URL(), &server.RateLimitConfig{UserRate: 1000, UserBurst: 1000}, func(c *app.Config) {
		c.Writes.Enabled, c.Writes.PerMinute, c.Scopes = true, -1, []string{"read", "update"}
		c.ReadCache.SyncInterval = -1
		// nothing expires during the test: only invalidations change answers
		c.ReadCache.Documents = erpclient.CachePolicy{TTL: time.Hour, StaleWhileRevalidate: -1, StaleIfError: -1}
	})
	sim := a.Sim()
	owner := login(t, a, fixture.OwnerLogin)
	n0 := totalCount(t, a, owner)

	sim.ResetRequests()
	if n := totalCount(t, b, owner); n != n0 {
		t.Fatalf("b counts %d, a %d", n, n0)
	}
	noDomainRequests(t, a, "b's first read of what a read (served from Redis)")
	if n := totalCount(t, b, owner); n != n0 {
		t.Fatalf("b again: %d", n)
	}
	noDomainRequests(t, a, "b's second read (its own memory)")

	if p := mustPlace(t, a, owner, ""); p.code != "" {
		t.Fatalf("write through a: %+v", p)
	}
	eventually(t, b, owner, n0+1, "after a write through a")

	redis.Stop()
	if n := totalCount(t, b, owner); n != n0+1 {
		t.Errorf("b with Redis down: %d, want %d", n, n0+1)
	}
	if p := mustPlace(t, a, owner, ""); p.code != "" {
		t.Fatalf("write through a with Redis down: %+v", p)
	}
	if n := totalCount(t, a, owner); n != n0+2 {
		t.Errorf("a after its own write with Redis down: %d, want %d", n, n0+2)
	}
	redis.Restart()
	eventually(t, b, owner, n0+2, "after Redis came back")
}
