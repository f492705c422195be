package redisstore_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/mutation"
)

// What one idempotent write costs in Redis: a claim and its completion
// (two Lua calls), for distinct keys.
func BenchmarkIdempotencyKeys_ClaimComplete(b *testing.B) {
	srv := redistest.Start(b)
	k := newClient(b, srv.URL()).IdempotencyKeys(time.Hour)
	ctx := context.Background()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := "bench-" + strconv.FormatInt(n.Add(1), 10)
			if _, claimed, err := k.Claim(ctx, key, "in"); err != nil || !claimed {
				b.Fatalf("claim: %v %v", claimed, err)
			}
			if err := k.Complete(ctx, key, mutation.Outcome{OrderID: "o"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// What a lookup another replica stored costs: one GET of a 4 KiB body (the
// replica's memory is emptied each time, so every lookup goes to Redis).
func BenchmarkCache_GetFromRedis(b *testing.B) {
	srv := redistest.Start(b)
	var failures atomic.Int32
	a, _, _ := sharedCache(b, srv.URL(), &failures)
	body := make([]byte, 4096)
	a.Set("k", erpclient.CacheEntry{Set: orders, Body: body, Stored: time.Now()})
	c, _, _ := sharedCache(b, srv.URL(), &failures)
	b.ResetTimer()
	for range b.N {
		if _, ok := c.Get("k"); !ok {
			b.Fatal("miss")
		}
		c.Delete("k") // memory only: the next lookup goes to Redis again
	}
	if failures.Load() > 0 {
		b.Fatalf("%d Redis failures", failures.Load())
	}
}
