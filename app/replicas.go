package app

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/mutation"
	"github.com/erpgraph/erpgraph/redisstore"
	"github.com/erpgraph/erpgraph/server"
	"github.com/erpgraph/erpgraph/session"
)

// The settings for running several replicas, appended to the registry.
var replicaRows = []setting{
	{env: "ERPGRAPH_REDIS_URL", help: "Redis shared by the replicas (redis://[:password@]host:port/db, rediss:// for TLS, unix:///path): per-user rate limits (GCRA), automatic persisted queries, login sessions and their refresh lock, mutation idempotency keys, the shared read cache and its invalidations, first use of tokens; unset = in this process's memory",
		raw: true, secret: true,
		field: text(func(c *Config) *string { return &c.RedisURL }),
		check: func(c Config, _ *loaded) error {
			if c.RedisURL == "" {
				return nil
			}
			_, err := redisstore.ParseURL(c.RedisURL)
			return err
		}},
}

func init() { registry = append(registry, replicaRows...) }

// replicaRules: sessions shared through Redis must be sealed with keys every
// replica has, also in dev mode.
func replicaRules(c Config, _ *loaded) []error {
	if c.RedisURL != "" && c.Session.Enabled && c.Session.Keys == "" {
		return []error{fmt.Errorf("%s is set and %s is on: %s (or _FILE) is required, so every replica opens the sessions the others sealed",
			named("ERPGRAPH_REDIS_URL"), named("ERPGRAPH_SESSIONS"), named("ERPGRAPH_SESSION_KEYS"))}
	}
	return nil
}

func init() { rules = append(rules, replicaRules) }

// openRedis connects to the shared Redis, if one is configured. It does not
// wait for Redis: the replica starts and reports Redis in its readiness.
func (a *App) openRedis() error {
	if a.cfg.RedisURL == "" {
		return nil
	}
	var err error
	if a.redis, err = redisstore.New(redisstore.Config{URL: a.cfg.RedisURL, Logger: a.log.With("component", "redis")}); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	return nil
}

// sessionStore is where login sessions live: Redis when configured, else
// this process's memory.
func (a *App) sessionStore() session.Store {
	if a.redis != nil {
		return a.redis.Sessions()
	}
	return session.NewMemoryStore(0, nil)
}

// redisComponent is Redis's part of the readiness report. A Redis outage
// leaves the replica ready but degraded: GraphQL with bearer tokens keeps
// working, and every replica shares the same Redis, so taking them out of
// the load balancer would turn a partial outage into a full one.
func (a *App) redisComponent(ctx context.Context) (server.Component, bool) {
	if a.redis == nil {
		return server.Component{}, false
	}
	if err := a.redis.Ping(ctx); err != nil {
		a.log.Warn("app: Redis not answering", "err", err)
		return server.Component{Status: server.StatusDown,
			Detail: "Redis unreachable: sign-in sessions answer UPSTREAM_UNAVAILABLE until it is back"}, true
	}
	return server.Component{Status: server.StatusOK}, true
}

// rateLimit is the edge's rate limit, with its buckets in Redis (GCRA, one
// budget per user across replicas) when configured; when Redis fails each
// replica falls back to its own buckets.
func (a *App) rateLimit() server.RateLimitConfig {
	rl := a.cfg.RateLimit
	if rl.Store == nil {
		if s := a.sharedRates(); s != nil {
			rl.Store = s
		}
	}
	return rl
}

// sharedRates keeps token buckets in Redis (GCRA, one budget per key across replicas), falling back to this
// replica's own buckets when Redis fails; nil without Redis. The edge's request limit and the mutations' write
// limit use it, each with its own keys.
func (a *App) sharedRates() *redisstore.FallbackRates {
	if a.redis == nil {
		return nil
	}
	return &redisstore.FallbackRates{
		Shared: a.redis.RateLimits(), Local: server.NewMemoryRateStore(cmp.Or(a.cfg.RateLimit.MaxClients, server.DefaultMaxClients)),
		OnFailure: func() { a.metrics.StoreFailed("ratelimit") },
	}
}

// writeRates keeps the mutations' per-user write budgets in Redis when configured (nil: the Service's buckets in
// this process).
func (a *App) writeRates() mutation.RateStore {
	if s := a.sharedRates(); s != nil {
		return s
	}
	return nil
}

// firstUses remembers audited user tokens in Redis when configured (nil:
// the server's in-memory store).
func (a *App) firstUses() server.FirstUseStore {
	if a.redis == nil {
		return nil
	}
	return a.redis.FirstUses()
}

// persistedQueries keeps automatic persisted queries in Redis when
// configured (nil: graph's in-memory store); the trusted-documents manifest
// stays a file every replica loads before it is ready.
func (a *App) persistedQueries() graph.PersistedQueryStore {
	if a.redis == nil {
		return nil
	}
	return a.redis.PersistedQueries()
}

// grantCache keeps the users' access grants in Redis when configured, so one
// replica's read of Crm_Sales_CustomerExternalAccess serves the others for
// the cache's lifetime (nil: the resolver's in-memory cache).
func (a *App) grantCache() access.GrantCache {
	if a.redis == nil {
		return nil
	}
	return a.redis.Grants(access.DefaultCacheTTL)
}

// idempotencyKeys keeps mutation idempotency keys in Redis when configured,
// so one key sent to two replicas writes once (nil: the Service's in-memory
// store). When Redis cannot answer, writes with a key are refused
// (IDEMPOTENCY_UNAVAILABLE) rather than run unchecked.
func (a *App) idempotencyKeys() mutation.KeyStore {
	if a.redis == nil {
		return nil
	}
	return a.redis.IdempotencyKeys(cmp.Or(a.cfg.Writes.IdempotencyTTL, 24*time.Hour))
}

// sharedCache puts Redis behind the read cache's memory store when
// configured: one replica's upstream answers serve the others, and an
// invalidation on one (a write, a sync that saw a change) reaches all. A
// failing Redis never fails a read: the memory store and ERP.net answer.
func (a *App) sharedCache(cc erpclient.CacheConfig) erpclient.CacheConfig {
	if a.redis == nil || cc.Store == nil {
		return cc
	}
	cc.Store = a.redis.Cache(redisstore.CacheConfig{L1: cc.Store, MaxAge: cc.MaxAge,
		OnFailure: func() { a.metrics.StoreFailed("cache") }})
	return cc
}
