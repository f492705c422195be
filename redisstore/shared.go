package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/server"
)

// RateLimits is server.RateStore in Redis: GCRA (go-redis/redis_rate, one
// Lua call per request), so a user's budget is the same whichever replica
// answers. Wrap it in Fallback to keep limiting when Redis fails.
type RateLimits struct {
	c       *Client
	limiter *redis_rate.Limiter
}

var _ server.RateStore = (*RateLimits)(nil)

// RateLimits is the rate-limit store on this client.
func (c *Client) RateLimits() *RateLimits {
	return &RateLimits{c: c, limiter: redis_rate.NewLimiter(c.rdb)}
}

// Take implements server.RateStore. GCRA needs only the emission interval
// and the burst: rate r per second is 1 per 1/r seconds.
func (r *RateLimits) Take(ctx context.Context, key string, rate float64, burst int) (time.Duration, error) {
	if rate <= 0 || burst <= 0 {
		return 0, nil
	}
	lim := redis_rate.Limit{Rate: 1, Period: time.Duration(float64(time.Second) / rate), Burst: burst}
	res, err := r.limiter.Allow(ctx, r.c.key("rate", key), lim)
	if err != nil {
		return 0, fmt.Errorf("redisstore: rate limit: %w", err)
	}
	if res.Allowed > 0 {
		return 0, nil
	}
	return max(res.RetryAfter, time.Millisecond), nil
}

// FallbackRates is the documented choice for rate limits when Redis fails:
// each replica limits with its own buckets until Redis answers again, so a
// Redis outage never lets requests through unlimited nor refuses them all.
type FallbackRates struct {
	Shared server.RateStore
	Local  server.RateStore
	// OnFailure is called for each failed shared call (metrics); may be nil.
	OnFailure func()
}

// Take implements server.RateStore.
func (f *FallbackRates) Take(ctx context.Context, key string, rate float64, burst int) (time.Duration, error) {
	wait, err := f.Shared.Take(ctx, key, rate, burst)
	if err == nil {
		return wait, nil
	}
	if f.OnFailure != nil {
		f.OnFailure()
	}
	return f.Local.Take(ctx, key, rate, burst)
}

// PersistedQueries is graph.PersistedQueryStore in Redis: an automatic
// persisted query registered through one replica is found through every
// other. Documents expire a day after their last registration (clients
// register again on PERSISTED_QUERY_NOT_FOUND).
type PersistedQueries struct {
	c   *Client
	ttl time.Duration
}

var _ graph.PersistedQueryStore = (*PersistedQueries)(nil)

// PersistedQueries is the APQ store on this client.
func (c *Client) PersistedQueries() *PersistedQueries {
	return &PersistedQueries{c: c, ttl: 24 * time.Hour}
}

// Get implements graph.PersistedQueryStore.
func (p *PersistedQueries) Get(ctx context.Context, hash string) (string, bool, error) {
	doc, err := p.c.rdb.Get(ctx, p.c.key("apq", hash)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("redisstore: persisted query: %w", err)
	}
	return doc, true, nil
}

// Put implements graph.PersistedQueryStore. graph checks the hash before.
func (p *PersistedQueries) Put(ctx context.Context, hash, document string) error {
	if err := p.c.rdb.Set(ctx, p.c.key("apq", hash), document, p.ttl).Err(); err != nil {
		return fmt.Errorf("redisstore: persisted query: %w", err)
	}
	return nil
}

// FirstUses is server.FirstUseStore in Redis (SET NX until the token
// expires): each user token's first use is audited once across replicas.
type FirstUses struct{ c *Client }

var _ server.FirstUseStore = (*FirstUses)(nil)

// FirstUses is the first-use store on this client.
func (c *Client) FirstUses() *FirstUses { return &FirstUses{c: c} }

// FirstUse implements server.FirstUseStore.
func (f *FirstUses) FirstUse(ctx context.Context, key string, expires time.Time) (bool, error) {
	ttl := time.Until(expires)
	if ttl <= 0 {
		ttl = time.Second
	}
	ok, err := f.c.rdb.SetNX(ctx, f.c.key("token-seen", key), 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: first use: %w", err)
	}
	return ok, nil
}
