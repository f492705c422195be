package erpclient

import (
	"math/rand/v2"
	"time"
)

// SharedCacheStore is a CacheStore that several processes share (package
// redisstore's two-level store: this process's memory in front of Redis).
// Entries carry their set's generation, so the processes must agree on the
// generations: an invalidation here gives each set a new random generation,
// which the store publishes to the others; what the others publish, the
// store hands back through the function given to WatchGenerations. A lost
// message costs at most what one process's own cache costs (entries served
// until their TTL), never an answer older than its policy allows.
type SharedCacheStore interface {
	CacheStore
	// PublishGenerations tells the other processes the sets' new generations.
	PublishGenerations(gens map[string]uint64)
	// WatchGenerations registers apply, called with the generations other
	// processes published, and with all current ones whenever the store
	// (re)connects.
	WatchGenerations(apply func(gens map[string]uint64))
}

// newGen is a new generation: random, so that generations set by different
// processes never collide and one published by another process can be
// taken as is.
func newGen() uint64 { return rand.Uint64() | 1 } // never 0, the generation of a set nobody invalidated

// applyGens takes generations published by another process.
func (rc *readCache) applyGens(gens map[string]uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for s, g := range gens {
		rc.gens[s] = g
	}
}

// publish hands the sets' new generations to a shared store.
func (rc *readCache) publish(gens map[string]uint64) {
	if s, ok := rc.store.(SharedCacheStore); ok && len(gens) > 0 {
		s.PublishGenerations(gens)
	}
}

// MaxAge is the age past which an entry of set is never served: how long a
// shared store needs to keep it (0: the set is not cached).
func (cfg CacheConfig) MaxAge(set string) time.Duration {
	switch {
	case documentSets[set]:
		return cfg.Documents.bound()
	case isReference(set):
		return cfg.Reference.bound()
	}
	return 0
}
