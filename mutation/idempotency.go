package mutation

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// KeyStore remembers idempotency keys (per user, hashed) with the fingerprint of the input they were first used
// with and, once the mutation finished, its outcome. The memory store serves one replica; several replicas need a
// shared implementation (package redisstore). Every implementation passes the contract in mutation/mutationtest.
//
// A store that cannot answer returns an error; the Service then refuses the write (ErrKeysUnavailable) rather than
// run it without the key check and risk a duplicate.
type KeyStore interface {
	// Claim records key as in progress for input unless it is already known; it returns the existing record and
	// false when it is, the new record and true when this caller now owns the key.
	Claim(ctx context.Context, key, input string) (Record, bool, error)
	// Complete stores the outcome of the mutation that owns key; waiters are woken.
	Complete(ctx context.Context, key string, out Outcome) error
	// Release forgets key (the mutation wrote nothing, or its outcome is unknown and a replay must look again);
	// waiters are woken and may claim it.
	Release(ctx context.Context, key string) error
	// Wait blocks until key is no longer in progress or ctx ends, and returns its record (ok false when the key
	// was released or expired).
	Wait(ctx context.Context, key string) (rec Record, ok bool, err error)
}

// Record is what a KeyStore keeps for one key.
type Record struct {
	Input   string   // fingerprint of the action and its input
	Done    bool     // the outcome is known and stored
	Outcome *Outcome // set when Done
	Created time.Time
}

// MemoryKeyStore is a KeyStore in process memory: a size-bounded LRU (hashicorp/golang-lru) whose entries expire
// TTL after they were claimed. Expiry is checked on access, so the store runs no goroutine of its own; the LRU bound
// keeps a flood of keys from growing memory.
type MemoryKeyStore struct {
	mu      sync.Mutex
	ttl     time.Duration
	now     func() time.Time
	entries *lru.Cache[string, *memEntry]
}

type memEntry struct {
	rec  Record
	done chan struct{} // closed when the entry completes or is released
}

// NewMemoryKeyStore keeps at most size keys for ttl each.
func NewMemoryKeyStore(size int, ttl time.Duration) *MemoryKeyStore {
	return NewMemoryKeyStoreWithClock(size, ttl, time.Now)
}

// NewMemoryKeyStoreWithClock is NewMemoryKeyStore with now as the clock records expire by, for tests.
func NewMemoryKeyStoreWithClock(size int, ttl time.Duration, now func() time.Time) *MemoryKeyStore {
	c, err := lru.New[string, *memEntry](max(size, 1))
	if err != nil {
		panic(err) // only for a non-positive size, which max rules out
	}
	return &MemoryKeyStore{ttl: ttl, now: now, entries: c}
}

// peekLocked returns key's live entry, dropping an expired one. An entry still in progress does not expire: its
// waiters must be woken by its owner.
func (m *MemoryKeyStore) peekLocked(key string) (*memEntry, bool) {
	e, ok := m.entries.Peek(key)
	if !ok {
		return nil, false
	}
	if e.rec.Done && m.now().Sub(e.rec.Created) > m.ttl {
		m.entries.Remove(key)
		return nil, false
	}
	return e, true
}

// Claim implements KeyStore.
func (m *MemoryKeyStore) Claim(_ context.Context, key, input string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.peekLocked(key); ok {
		m.entries.Get(key) // mark as recently used
		return e.rec, false, nil
	}
	e := &memEntry{rec: Record{Input: input, Created: m.now()}, done: make(chan struct{})}
	m.entries.Add(key, e)
	return e.rec, true, nil
}

// Complete implements KeyStore.
func (m *MemoryKeyStore) Complete(_ context.Context, key string, out Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.peekLocked(key)
	if !ok {
		return errors.New("mutation: complete: idempotency key evicted while in progress")
	}
	if e.rec.Done {
		return nil
	}
	done := &memEntry{rec: Record{Input: e.rec.Input, Done: true, Outcome: &out, Created: e.rec.Created}, done: e.done}
	m.entries.Add(key, done)
	close(e.done)
	return nil
}

// Release implements KeyStore.
func (m *MemoryKeyStore) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.peekLocked(key); ok && !e.rec.Done {
		m.entries.Remove(key)
		close(e.done)
	}
	return nil
}

// Wait implements KeyStore.
func (m *MemoryKeyStore) Wait(ctx context.Context, key string) (Record, bool, error) {
	m.mu.Lock()
	e, ok := m.peekLocked(key)
	m.mu.Unlock()
	if !ok {
		return Record{}, false, nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return Record{}, false, ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.peekLocked(key)
	if !ok || !cur.rec.Done {
		return Record{}, false, nil
	}
	return cur.rec, true, nil
}

// storeKey is the KeyStore key of a client's idempotency key: per user, hashed so the store never holds the key
// itself.
func storeKey(userID, key string) string {
	h := sha256.Sum256([]byte("erpgraph-idem\x00" + userID + "\x00" + key))
	return hex.EncodeToString(h[:])
}

// KeyFingerprint is the short fingerprint of a client's idempotency key that the audit log shows.
func keyFingerprint(userID, key string) string {
	if key == "" {
		return ""
	}
	return storeKey(userID, key)[:16]
}

// referenceFor is the value erpgraph writes into the order's key field (ReferenceDocumentNo, 20 characters) so
// that a replay finds an order whose answer was lost: "eg" and 18 base32 characters (90 bits) of the hashed
// user and key.
func referenceFor(userID, key string) string {
	h := sha256.Sum256([]byte("erpgraph-ref\x00" + userID + "\x00" + key))
	return "eg" + base32.StdEncoding.EncodeToString(h[:])[:18]
}
