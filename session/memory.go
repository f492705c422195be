package session

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultMaxSessions bounds a MemoryStore; the least recently used session
// goes first beyond it.
const DefaultMaxSessions = 100_000

// MemoryStore keeps sessions in this process: for a single replica (and
// tests). Sessions are lost on restart. It is a bounded LRU (HashiCorp's
// golang-lru), so a flood of sign-ins cannot grow memory without limit.
type MemoryStore struct {
	now   func() time.Time
	cache *lru.Cache[string, *Session]
	mu    sync.Mutex               // serializes the writes (Create, Update, Delete, DeleteMatching)
	lmu   sync.Mutex               // guards locks
	locks map[string]chan struct{} // held refresh locks; closed on release
}

// NewMemoryStore returns a store of at most maxSessions (0: the default);
// now is the clock for expiry (nil: time.Now).
func NewMemoryStore(maxSessions int, now func() time.Time) *MemoryStore {
	if maxSessions <= 0 {
		maxSessions = DefaultMaxSessions
	}
	if now == nil {
		now = time.Now
	}
	c, err := lru.New[string, *Session](maxSessions)
	if err != nil {
		panic(err) // only for a size ≤ 0, excluded above
	}
	return &MemoryStore{now: now, cache: c, locks: map[string]chan struct{}{}}
}

func clone(s *Session) *Session {
	c := *s
	c.User.Scopes = append([]string(nil), s.User.Scopes...)
	c.RefreshToken = append([]byte(nil), s.RefreshToken...)
	c.IDToken = append([]byte(nil), s.IDToken...)
	return &c
}

// Create implements Store.
func (m *MemoryStore) Create(_ context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cache.Peek(s.Key); ok {
		return ErrExists
	}
	m.cache.Add(s.Key, clone(s))
	return nil
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, key string) (*Session, error) {
	s, ok := m.cache.Get(key)
	if !ok {
		return nil, ErrNotFound
	}
	if !m.now().Before(s.ExpiresAt) {
		m.cache.Remove(key)
		return nil, ErrNotFound
	}
	return clone(s), nil
}

// Update implements Store.
func (m *MemoryStore) Update(_ context.Context, s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cache.Peek(s.Key); !ok {
		return ErrNotFound
	}
	m.cache.Add(s.Key, clone(s))
	return nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, key string) error {
	m.mu.Lock() // with Update's check-and-set: an ended session never comes back
	defer m.mu.Unlock()
	m.cache.Remove(key)
	return nil
}

// DeleteMatching implements Store. It scans every session: back-channel
// logouts are rare next to requests (Redis keeps sub and sid indexes).
func (m *MemoryStore) DeleteMatching(_ context.Context, sub, sid string) ([]*Session, error) {
	if sub == "" && sid == "" {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Session
	for _, key := range m.cache.Keys() {
		s, ok := m.cache.Peek(key)
		if !ok || (sub != "" && s.User.Subject != sub) || (sid != "" && s.SID != sid) {
			continue
		}
		m.cache.Remove(key)
		out = append(out, s)
	}
	return out, nil
}

// Lock implements Store. In one process a holder cannot die without the
// store, so ttl is not needed here.
func (m *MemoryStore) Lock(ctx context.Context, key string, _ time.Duration) (func(), error) {
	for {
		m.lmu.Lock()
		held, busy := m.locks[key]
		if !busy {
			mine := make(chan struct{})
			m.locks[key] = mine
			m.lmu.Unlock()
			var once sync.Once
			return func() {
				once.Do(func() {
					m.lmu.Lock()
					delete(m.locks, key)
					m.lmu.Unlock()
					close(mine)
				})
			}, nil
		}
		m.lmu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
