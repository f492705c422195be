package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgraph/erpgraph/mutation"
)

// IdempotencyKeys is mutation.KeyStore in Redis: one idempotency key sent to
// two replicas runs its mutation once. A key is a hash (input fingerprint,
// claim time, done flag, outcome, owner token) written by Lua scripts, so
// claiming is one atomic step: the first caller owns the key, every other
// gets the first input and, once done, the stored outcome.
//
// A claim in progress lives for Lease (its owner may die mid-write; a
// replay after the lease claims again and, through the order's reference
// field, finds what the first attempt wrote); a done record lives for the
// TTL after its claim, like the memory store's. Complete and Release publish
// the key on one channel; waiters listen through one shared subscription
// per store and re-read the key every poll interval as well, so a lost
// message (a pub/sub reconnect) delays a waiter, never strands it.
//
// When Redis cannot answer, every method returns an error: the Service then
// refuses the write (IDEMPOTENCY_UNAVAILABLE) instead of running it unchecked.
type IdempotencyKeys struct {
	c     *Client
	ttl   time.Duration
	lease time.Duration
	poll  time.Duration
	now   func() time.Time // the clock done records expire by (Redis also expires them by its own)

	mu      sync.Mutex
	owned   map[string]string                     // key → this store's owner token, while it holds the claim
	waiters map[string]map[chan struct{}]struct{} // key → woken on its message
	sub     *redis.PubSub
}

var _ mutation.KeyStore = (*IdempotencyKeys)(nil)

// DefaultLease is how long a claim in progress holds its key: far longer
// than a mutation takes (its upstream calls time out within seconds), short
// enough that a key whose owner died is free again soon.
const DefaultLease = 2 * time.Minute

// IdempotencyKeys is the idempotency-key store on this client, keeping done
// records for ttl.
func (c *Client) IdempotencyKeys(ttl time.Duration) *IdempotencyKeys {
	return c.IdempotencyKeysWithClock(ttl, time.Now)
}

// IdempotencyKeysWithClock is IdempotencyKeys with now as the clock done
// records expire by (as mutation.NewMemoryKeyStoreWithClock's), for tests.
func (c *Client) IdempotencyKeysWithClock(ttl time.Duration, now func() time.Time) *IdempotencyKeys {
	k := &IdempotencyKeys{c: c, ttl: ttl, lease: DefaultLease, poll: 200 * time.Millisecond, now: now,
		owned: map[string]string{}, waiters: map[string]map[chan struct{}]struct{}{}}
	c.onClose(k.close)
	return k
}

func (k *IdempotencyKeys) key(key string) string { return k.c.key("idem", key) }
func (k *IdempotencyKeys) channel() string       { return k.c.key("idem-done") }

func idemFail(op string, err error) error {
	return fmt.Errorf("redisstore: idempotency keys: %s: %w", op, err)
}

// claimScript: an absent key, or a done one older than the TTL (ARGV[3]) by
// the caller's clock (ARGV[2]), becomes this caller's claim for the lease
// (ARGV[4]); otherwise the existing record is returned.
var claimScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'input', 'created', 'done', 'outcome')
if r[1] and (r[3] ~= '1' or tonumber(ARGV[2]) - tonumber(r[2]) <= tonumber(ARGV[3])) then
  return {0, r[1], r[2], r[3], r[4] or ''}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'input', ARGV[1], 'created', ARGV[2], 'done', '0', 'owner', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1}
`)

// completeScript stores the outcome if the caller (ARGV[1]) still holds the
// claim, keeps the record until the TTL after its claim, and wakes the
// waiters. 0: already done; -1: gone (the lease ended); -2: claimed by another.
var completeScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'owner', 'done', 'created')
if not r[1] then return -1 end
if r[2] == '1' then return 0 end
if r[1] ~= ARGV[1] then return -2 end
redis.call('HSET', KEYS[1], 'done', '1', 'outcome', ARGV[2])
local left = tonumber(r[3]) + tonumber(ARGV[4]) - tonumber(ARGV[3])
if left < 1 then left = 1 end
redis.call('PEXPIRE', KEYS[1], left)
redis.call('PUBLISH', KEYS[2], KEYS[1])
return 1
`)

// releaseScript forgets a claim in progress held by the caller and wakes the
// waiters; a done key, or one claimed by another, stays.
var releaseScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'owner', 'done')
if r[1] == ARGV[1] and r[2] ~= '1' then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[2], KEYS[1])
  return 1
end
return 0
`)

// Claim implements mutation.KeyStore.
func (k *IdempotencyKeys) Claim(ctx context.Context, key, input string) (mutation.Record, bool, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	now := k.now()
	res, err := claimScript.Run(ctx, k.c.rdb, []string{k.key(key)},
		input, now.UnixMilli(), k.ttl.Milliseconds(), k.lease.Milliseconds(), token).Slice()
	if err != nil {
		return mutation.Record{}, false, idemFail("claim", err)
	}
	if len(res) == 1 {
		k.mu.Lock()
		k.owned[key] = token
		k.mu.Unlock()
		return mutation.Record{Input: input, Created: time.UnixMilli(now.UnixMilli())}, true, nil
	}
	if len(res) != 5 {
		return mutation.Record{}, false, idemFail("claim", fmt.Errorf("unexpected answer %v", res))
	}
	s := func(i int) string { v, _ := res[i].(string); return v }
	rec, err := decodeRecord(s(1), s(2), s(3), s(4))
	if err != nil {
		return mutation.Record{}, false, idemFail("claim", err)
	}
	return rec, false, nil
}

func decodeRecord(input, created, done, outcome string) (mutation.Record, error) {
	ms, err := strconv.ParseInt(created, 10, 64)
	if err != nil {
		return mutation.Record{}, fmt.Errorf("record: created %q", created)
	}
	rec := mutation.Record{Input: input, Created: time.UnixMilli(ms), Done: done == "1"}
	if rec.Done {
		var out mutation.Outcome
		if err := json.Unmarshal([]byte(outcome), &out); err != nil {
			return mutation.Record{}, fmt.Errorf("record: outcome: %w", err)
		}
		rec.Outcome = &out
	}
	return rec, nil
}

// token takes this store's owner token for key ("" when it holds no claim).
func (k *IdempotencyKeys) token(key string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.owned[key]
	delete(k.owned, key)
	return t
}

// Complete implements mutation.KeyStore.
func (k *IdempotencyKeys) Complete(ctx context.Context, key string, out mutation.Outcome) error {
	raw, err := json.Marshal(out)
	if err != nil {
		return idemFail("complete", err)
	}
	// The Service completes or releases once: the token is forgotten either
	// way, and a claim Redis did not hear the end of ends with its lease.
	n, err := completeScript.Run(ctx, k.c.rdb, []string{k.key(key), k.channel()},
		k.token(key), raw, k.now().UnixMilli(), k.ttl.Milliseconds()).Int()
	if err != nil {
		return idemFail("complete", err)
	}
	switch n {
	case -1:
		return idemFail("complete", errors.New("the key's lease ended while its mutation ran"))
	case -2:
		return idemFail("complete", errors.New("the key's lease ended and another request claimed it"))
	}
	return nil
}

// Release implements mutation.KeyStore.
func (k *IdempotencyKeys) Release(ctx context.Context, key string) error {
	if err := releaseScript.Run(ctx, k.c.rdb, []string{k.key(key), k.channel()}, k.token(key)).Err(); err != nil {
		return idemFail("release", err)
	}
	return nil
}

// Wait implements mutation.KeyStore.
func (k *IdempotencyKeys) Wait(ctx context.Context, key string) (mutation.Record, bool, error) {
	woken := k.watch(key)
	defer k.unwatch(key, woken)
	tick := time.NewTicker(k.poll)
	defer tick.Stop()
	for {
		rec, ok, err := k.read(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return mutation.Record{}, false, ctx.Err()
			}
			return mutation.Record{}, false, err
		}
		if !ok || rec.Done {
			return rec, ok, nil
		}
		select {
		case <-woken:
		case <-tick.C:
		case <-ctx.Done():
			return mutation.Record{}, false, ctx.Err()
		}
	}
}

// read is key's live record (ok false when absent or expired).
func (k *IdempotencyKeys) read(ctx context.Context, key string) (mutation.Record, bool, error) {
	v, err := k.c.rdb.HMGet(ctx, k.key(key), "input", "created", "done", "outcome").Result()
	if err != nil {
		return mutation.Record{}, false, idemFail("wait", err)
	}
	s := func(i int) string { x, _ := v[i].(string); return x }
	if v[0] == nil {
		return mutation.Record{}, false, nil
	}
	rec, err := decodeRecord(s(0), s(1), s(2), s(3))
	if err != nil {
		return mutation.Record{}, false, idemFail("wait", err)
	}
	if rec.Done && k.now().Sub(rec.Created) > k.ttl {
		return mutation.Record{}, false, nil
	}
	return rec, true, nil
}

// watch registers a waiter for key's message, subscribing the store on
// first use.
func (k *IdempotencyKeys) watch(key string) chan struct{} {
	ch := make(chan struct{}, 1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sub == nil {
		// go-redis resubscribes by itself after a lost connection; until it
		// has, the waiters' poll carries them.
		k.sub = k.c.rdb.Subscribe(context.Background(), k.channel())
		msgs := k.sub.Channel()
		go func() {
			for m := range msgs {
				k.wake(m.Payload)
			}
		}()
	}
	if k.waiters[key] == nil {
		k.waiters[key] = map[chan struct{}]struct{}{}
	}
	k.waiters[key][ch] = struct{}{}
	return ch
}

func (k *IdempotencyKeys) unwatch(key string, ch chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.waiters[key], ch)
	if len(k.waiters[key]) == 0 {
		delete(k.waiters, key)
	}
}

// wake is the subscription's message for a Redis key: its waiters re-read it.
func (k *IdempotencyKeys) wake(redisKey string) {
	prefix := k.key("")
	if len(redisKey) < len(prefix) || redisKey[:len(prefix)] != prefix {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for ch := range k.waiters[redisKey[len(prefix):]] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (k *IdempotencyKeys) close() { closeSub(&k.mu, &k.sub) }
