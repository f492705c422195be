package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgraph/erpgraph/erpclient"
)

// Cache is the shared read cache: erpclient.SharedCacheStore with this
// process's memory store (L1, decoded answers) in front of Redis (L2, the
// bodies as ERP.net sent them). A read one replica made answers the others
// from Redis (decoded once, then kept in their L1); an invalidation (a
// write, a sync that saw a change) gives the sets new generations, which a
// Lua script stores in one hash and publishes on one channel, so every
// replica stops serving its own and Redis's older entries of those sets.
//
// Invalidation is by generation, not by deleting keys: an entry of an older
// generation is never served, and Redis expires every entry when its set's
// policy would stop serving it anyway (MaxAge).
//
// A failing Redis never fails a read: lookups fall back to L1 and then to
// ERP.net, stores keep to L1, and Redis is left alone for a second after
// each failure so requests do not queue on its timeouts. Generations that
// could not be published are kept and published when the subscription
// comes back; in between, the other replicas serve their entries until
// their TTL (as one replica alone does).
type Cache struct {
	c        *Client
	l1       erpclient.CacheStore
	maxAge   func(set string) time.Duration
	maxValue int
	onFail   func()
	now      func() time.Time

	downUntil atomic.Int64 // unix nanoseconds: Redis is not asked before

	mu       sync.Mutex
	watchers []func(map[string]uint64)
	pending  map[string]uint64 // generations not published yet (Redis failed)
	sub      *redis.PubSub
}

var _ erpclient.SharedCacheStore = (*Cache)(nil)

// CacheConfig configures a Cache.
type CacheConfig struct {
	L1 erpclient.CacheStore // this process's store (erpclient.NewMemoryCache)
	// MaxAge is how long an entry of a set may be served at most
	// (erpclient.CacheConfig.MaxAge): its lifetime in Redis. 0: not kept.
	MaxAge func(set string) time.Duration
	// MaxValueBytes bounds one answer kept in Redis; default 1 MiB.
	MaxValueBytes int
	// OnFailure is called for each failed Redis call (metrics); may be nil.
	OnFailure func()
}

// backoff is how long Redis is left alone after a failed call.
const backoff = time.Second

// Cache is the shared read cache on this client.
func (c *Client) Cache(cfg CacheConfig) *Cache {
	k := &Cache{c: c, l1: cfg.L1, maxAge: cfg.MaxAge, maxValue: cfg.MaxValueBytes, onFail: cfg.OnFailure,
		now: time.Now, pending: map[string]uint64{}}
	if k.maxValue <= 0 {
		k.maxValue = 1 << 20
	}
	c.onClose(k.close)
	return k
}

func (k *Cache) key(key string) string {
	h := sha256.Sum256([]byte(key)) // upstream URLs are long; the key is what identifies them
	return k.c.key("cache", hex.EncodeToString(h[:]))
}
func (k *Cache) gensKey() string { return k.c.key("cache-gens") }
func (k *Cache) channel() string { return k.c.key("cache-gens") }

// ctx bounds one call: the read cache's interface has no context, and a
// lookup must never wait longer than the client's command timeout.
func (k *Cache) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), k.c.timeout)
}

func (k *Cache) up() bool { return k.now().UnixNano() >= k.downUntil.Load() }

func (k *Cache) failed() {
	k.downUntil.Store(k.now().Add(backoff).UnixNano())
	if k.onFail != nil {
		k.onFail()
	}
}

// An entry in Redis: stored (unix ns), generation, set length, set, body.
func encodeEntry(e erpclient.CacheEntry) []byte {
	b := make([]byte, 18, 18+len(e.Set)+len(e.Body))
	binary.BigEndian.PutUint64(b, uint64(e.Stored.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], e.Gen)
	binary.BigEndian.PutUint16(b[16:], uint16(len(e.Set)))
	return append(append(b, e.Set...), e.Body...)
}

func decodeEntry(b []byte) (erpclient.CacheEntry, bool) {
	if len(b) < 18 {
		return erpclient.CacheEntry{}, false
	}
	n := int(binary.BigEndian.Uint16(b[16:]))
	if len(b) < 18+n {
		return erpclient.CacheEntry{}, false
	}
	return erpclient.CacheEntry{Stored: time.Unix(0, int64(binary.BigEndian.Uint64(b))), Gen: binary.BigEndian.Uint64(b[8:]),
		Set: string(b[18 : 18+n]), Body: b[18+n:]}, true
}

// Get implements erpclient.CacheStore: L1, then Redis (an answer found
// there is kept in L1 too).
func (k *Cache) Get(key string) (erpclient.CacheEntry, bool) {
	if e, ok := k.l1.Get(key); ok {
		return e, true
	}
	if !k.up() {
		return erpclient.CacheEntry{}, false
	}
	ctx, cancel := k.ctx()
	defer cancel()
	b, err := k.c.rdb.Get(ctx, k.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return erpclient.CacheEntry{}, false
	}
	if err != nil {
		k.failed()
		return erpclient.CacheEntry{}, false
	}
	e, ok := decodeEntry(b)
	if !ok || len(e.Body) == 0 {
		return erpclient.CacheEntry{}, false
	}
	k.l1.Set(key, e)
	return e, true
}

// Set implements erpclient.CacheStore: L1, and Redis for the set's
// longest serving age.
func (k *Cache) Set(key string, e erpclient.CacheEntry) {
	k.l1.Set(key, e)
	ttl := time.Duration(0)
	if k.maxAge != nil {
		ttl = k.maxAge(e.Set) - k.now().Sub(e.Stored)
	}
	if ttl <= 0 || len(e.Body) == 0 || len(e.Body) > k.maxValue || !k.up() {
		return
	}
	ctx, cancel := k.ctx()
	defer cancel()
	if err := k.c.rdb.Set(ctx, k.key(key), encodeEntry(e), ttl).Err(); err != nil {
		k.failed()
	}
}

// Delete implements erpclient.CacheStore. It drops the L1 entry only: the
// client deletes an entry it found too old or of an older generation, and
// Redis expires the first by itself, while the second may be current for a
// replica that heard of a newer generation first (an entry of an older
// generation is never served, and the next read of its key overwrites it).
func (k *Cache) Delete(key string) { k.l1.Delete(key) }

// publishScript stores the generations (ARGV[2..], set and generation
// pairs) and publishes them (ARGV[1]) in one step, so every replica hears
// them in the order the hash took them.
var publishScript = redis.NewScript(`
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1
`)

// PublishGenerations implements erpclient.SharedCacheStore.
func (k *Cache) PublishGenerations(gens map[string]uint64) {
	k.mu.Lock()
	maps.Copy(k.pending, gens)
	all := maps.Clone(k.pending)
	k.mu.Unlock()
	if !k.up() {
		return
	}
	if err := k.publish(all); err != nil {
		k.failed()
		return
	}
	k.mu.Lock()
	for s, g := range all {
		if k.pending[s] == g {
			delete(k.pending, s)
		}
	}
	k.mu.Unlock()
}

func (k *Cache) publish(gens map[string]uint64) error {
	if len(gens) == 0 {
		return nil
	}
	args := []any{encodeGens(gens)}
	for s, g := range gens {
		args = append(args, s, strconv.FormatUint(g, 10))
	}
	ctx, cancel := k.ctx()
	defer cancel()
	return publishScript.Run(ctx, k.c.rdb, []string{k.gensKey(), k.channel()}, args...).Err()
}

// encodeGens is a message: "set=gen" pairs joined by ";" (entity set names
// are identifiers).
func encodeGens(gens map[string]uint64) string {
	var sb strings.Builder
	for s, g := range gens {
		if sb.Len() > 0 {
			sb.WriteByte(';')
		}
		sb.WriteString(s + "=" + strconv.FormatUint(g, 10))
	}
	return sb.String()
}

func decodeGens(msg string) map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range strings.Split(msg, ";") {
		s, g, ok := strings.Cut(p, "=")
		if n, err := strconv.ParseUint(g, 10, 64); ok && err == nil && s != "" {
			out[s] = n
		}
	}
	return out
}

// WatchGenerations implements erpclient.SharedCacheStore. The first call
// subscribes; on every (re)subscription the store publishes what it could
// not before and hands on all current generations, so a replica that
// missed messages while Redis was away catches up.
func (k *Cache) WatchGenerations(apply func(map[string]uint64)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.watchers = append(k.watchers, apply)
	if k.sub != nil {
		return
	}
	k.sub = k.c.rdb.Subscribe(context.Background(), k.channel())
	msgs := k.sub.ChannelWithSubscriptions()
	go func() {
		for m := range msgs {
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					k.resync()
				}
			case *redis.Message:
				k.apply(decodeGens(m.Payload))
			}
		}
	}()
}

// resync publishes the pending generations and applies the hash's.
func (k *Cache) resync() {
	k.downUntil.Store(0) // the subscription answers: Redis is back
	k.PublishGenerations(nil)
	ctx, cancel := k.ctx()
	defer cancel()
	all, err := k.c.rdb.HGetAll(ctx, k.gensKey()).Result()
	if err != nil {
		k.failed()
		return
	}
	gens := map[string]uint64{}
	for s, g := range all {
		if n, err := strconv.ParseUint(g, 10, 64); err == nil {
			gens[s] = n
		}
	}
	k.apply(gens)
}

func (k *Cache) apply(gens map[string]uint64) {
	if len(gens) == 0 {
		return
	}
	k.mu.Lock()
	watchers := slices.Clone(k.watchers)
	k.mu.Unlock()
	for _, w := range watchers {
		w(gens)
	}
}

func (k *Cache) close() { closeSub(&k.mu, &k.sub) }
