package access

import (
	"context"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// GrantCache keeps each user's customer grants for a short while, so that a
// user's requests do not each read Crm_Sales_CustomerExternalAccess. The
// Resolver owns this interface and needs only these two methods;
// MemoryGrantCache is the in-process implementation. A shared store (Redis,
// when several replicas run) can implement it too: Grant is plain data, and
// the Resolver rebuilds the Scope around it.
//
// The Resolver treats an error as a miss (Get) or ignores it (Set) after
// logging it: a cache that fails costs ERP.net reads, never a refusal.
type GrantCache interface {
	// Get returns the grants cached for the ERP.net user id, ok false when
	// none are (or they expired). Nil grants with ok true is a user without
	// customer access.
	Get(ctx context.Context, userID string) (grants []Grant, ok bool, err error)
	// Set caches the user's grants for the cache's lifetime.
	Set(ctx context.Context, userID string, grants []Grant) error
}

// MemoryGrantCache is an in-process GrantCache: a bounded LRU
// (hashicorp/golang-lru) whose entries expire after a fixed lifetime.
type MemoryGrantCache struct {
	ttl time.Duration
	now func() time.Time
	lru *lru.Cache[string, grantEntry]
}

type grantEntry struct {
	grants  []Grant
	expires time.Time
}

// NewMemoryGrantCache returns a cache of at most size users whose entries
// live for ttl by the clock now (nil: time.Now). An expired entry is a miss
// and is dropped when read; the least recently used goes first when full.
func NewMemoryGrantCache(size int, ttl time.Duration, now func() time.Time) *MemoryGrantCache {
	if now == nil {
		now = time.Now
	}
	c, err := lru.New[string, grantEntry](max(size, 1))
	if err != nil { // only for a size below 1, excluded above
		panic(err)
	}
	return &MemoryGrantCache{ttl: ttl, now: now, lru: c}
}

// Get implements GrantCache.
func (c *MemoryGrantCache) Get(_ context.Context, userID string) ([]Grant, bool, error) {
	e, ok := c.lru.Get(userID)
	if !ok {
		return nil, false, nil
	}
	if !c.now().Before(e.expires) {
		c.lru.Remove(userID)
		return nil, false, nil
	}
	return slices.Clone(e.grants), true, nil
}

// Set implements GrantCache.
func (c *MemoryGrantCache) Set(_ context.Context, userID string, grants []Grant) error {
	c.lru.Add(userID, grantEntry{grants: slices.Clone(grants), expires: c.now().Add(c.ttl)})
	return nil
}
