package server

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
)

// RateLimitConfig bounds what one client may ask of the edge, so that one
// chatty user cannot use up the single ERP.net service session that every user
// shares. Signed-in users are counted by their ERP.net user id, anonymous
// requests by client IP. Zero values take the defaults; a negative rate turns
// that bucket off.
type RateLimitConfig struct {
	UserRate  float64 // requests per second per user; default 10
	UserBurst int     // bucket size per user; default 30
	AnonRate  float64 // requests per second per client IP without a token; default 2
	AnonBurst int     // default 10
	// MaxConcurrent caps the operations one client runs at the same time;
	// default 6; negative = no cap.
	MaxConcurrent int
	// ConcurrencyWait is how long an operation over MaxConcurrent may wait
	// for a slot before it is refused; default 100ms.
	ConcurrencyWait time.Duration
	// MaxClients bounds the clients the in-memory stores remember (rate
	// buckets, first uses of tokens); the least recently seen is forgotten
	// first. Default 100,000.
	MaxClients int
	// Store keeps the rate buckets; nil = in memory, per replica
	// (NewMemoryRateStore). A store that fails lets requests through.
	Store RateStore
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed; a request from anywhere else is counted by its peer address.
	TrustedProxies []netip.Prefix
}

func (c *RateLimitConfig) defaults() {
	c.UserRate = cmp.Or(c.UserRate, DefaultUserRate)
	c.UserBurst = cmp.Or(c.UserBurst, DefaultUserBurst)
	c.AnonRate = cmp.Or(c.AnonRate, DefaultAnonRate)
	c.AnonBurst = cmp.Or(c.AnonBurst, DefaultAnonBurst)
	c.MaxConcurrent = cmp.Or(c.MaxConcurrent, DefaultMaxConcurrent)
	c.ConcurrencyWait = cmp.Or(c.ConcurrencyWait, DefaultConcurrencyWait)
	c.MaxClients = cmp.Or(c.MaxClients, DefaultMaxClients)
	if c.Store == nil {
		c.Store = NewMemoryRateStore(c.MaxClients)
	}
}

// RateStore keeps the rate limit's token buckets, one per client key
// ("user:<id>", "ip:<address>"). The in-memory store (NewMemoryRateStore) is
// per replica; a store shared by replicas (Redis, GCRA) makes the limits
// global without touching the server. It must be safe for concurrent use.
type RateStore interface {
	// Take takes one token from key's bucket, which refills at rate per
	// second up to burst. When the bucket is empty it takes nothing and
	// returns how long until a token is there.
	Take(ctx context.Context, key string, rate float64, burst int) (wait time.Duration, err error)
}

// MemoryRateStore is the in-memory RateStore: a token bucket
// (golang.org/x/time/rate) per key in an LRU (hashicorp/golang-lru/v2) of at
// most maxKeys; the least recently used goes first (only under a flood of
// distinct clients). A bucket refills lazily, so one left alone for a while
// is the same as a new one: nothing needs to expire.
type MemoryRateStore struct {
	buckets *lru.Cache[string, *rate.Limiter]
}

// NewMemoryRateStore returns a store of at most maxKeys buckets.
func NewMemoryRateStore(maxKeys int) *MemoryRateStore {
	c, err := lru.New[string, *rate.Limiter](max(maxKeys, 1))
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &MemoryRateStore{buckets: c}
}

// Take implements RateStore; it never fails.
func (m *MemoryRateStore) Take(_ context.Context, key string, r float64, burst int) (time.Duration, error) {
	b, ok := m.buckets.Get(key)
	if !ok {
		b = rate.NewLimiter(rate.Limit(r), burst)
		if prev, found, _ := m.buckets.PeekOrAdd(key, b); found {
			b = prev // another request created it first
		}
	}
	now := time.Now()
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); !res.OK() || d > 0 {
		res.CancelAt(now) // a refused request must not use up the future
		if !res.OK() {
			d = time.Second
		}
		return d, nil
	}
	return 0, nil
}

// slots caps the operations each client runs at the same time, within this
// process (an operation in flight is where it runs). A client's entry lives
// while it has operations in flight or waiting, so the map is bounded by them.
type slots struct {
	max  int           // per client; 0 = no cap
	wait time.Duration // how long an operation may wait for a slot
	mu   sync.Mutex
	by   map[string]*clientSlots
}

type clientSlots struct {
	sem   chan struct{}
	users int // operations holding or waiting for a slot; guarded by slots.mu
}

func newSlots(maxPerClient int, wait time.Duration) *slots {
	return &slots{max: max(maxPerClient, 0), wait: wait, by: map[string]*clientSlots{}}
}

// acquire waits up to the configured wait for one of key's slots.
func (sl *slots) acquire(ctx context.Context, key string) (release func(), ok bool) {
	if sl.max == 0 {
		return func() {}, true
	}
	sl.mu.Lock()
	c := sl.by[key]
	if c == nil {
		c = &clientSlots{sem: make(chan struct{}, sl.max)}
		sl.by[key] = c
	}
	c.users++
	sl.mu.Unlock()
	leave := func() {
		sl.mu.Lock()
		if c.users--; c.users == 0 {
			delete(sl.by, key)
		}
		sl.mu.Unlock()
	}
	release = func() { <-c.sem; leave() }
	select {
	case c.sem <- struct{}{}:
		return release, true
	default:
	}
	t := time.NewTimer(sl.wait)
	defer t.Stop()
	select {
	case c.sem <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	leave()
	return nil, false
}

// bucketOf is the rate and burst of a user's or an anonymous client's
// bucket; a rate of 0 or less means no rate limit.
func (s *Server) bucketOf(user bool) (float64, int) {
	if user {
		return s.cfg.RateLimit.UserRate, s.cfg.RateLimit.UserBurst
	}
	return s.cfg.RateLimit.AnonRate, s.cfg.RateLimit.AnonBurst
}

// limit applies the rate limit and the concurrency cap. It runs after
// authentication, so a user is counted by who they are, not where from.
func (s *Server) limit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := RecordOf(r.Context())
		key, user := "ip:"+rec.ClientIP.String(), false
		if _, ok := auth.FromContext(r.Context()); ok {
			key, user = "user:"+rec.UserKey, true
		}
		if perSecond, burst := s.bucketOf(user); perSecond > 0 {
			wait, err := s.rates.Take(r.Context(), key, perSecond, burst)
			if err != nil {
				// A shared store that fails must not take the service down with it: let the request
				// through, unlimited, and say so.
				s.cfg.Metrics.StoreFailed("ratelimit")
				s.log.WarnContext(r.Context(), "server: rate store failed; request not rate limited", "request_id", rec.RequestID, "err", err)
			} else if wait > 0 {
				secs := int(math.Ceil(wait.Seconds()))
				w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
				s.deny(w, r, http.StatusTooManyRequests, errcode.RateLimited, "rate",
					fmt.Sprintf("too many requests; retry after %d s", max(secs, 1)))
				return
			}
		}
		release, ok := s.slots.acquire(r.Context(), key)
		if !ok {
			w.Header().Set("Retry-After", "1")
			s.deny(w, r, http.StatusTooManyRequests, errcode.RateLimited, "concurrency",
				fmt.Sprintf("too many operations at the same time (at most %d)", s.cfg.RateLimit.MaxConcurrent))
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most X-Forwarded-For entry that is not itself a trusted proxy (the
// left part of the header is whatever the client chose to send).
func (s *Server) clientIP(r *http.Request) netip.Addr {
	peer := addrOf(r.RemoteAddr)
	if !s.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing left of it
		}
		ip = ip.Unmap()
		if !s.trusted(ip) {
			return ip
		}
		peer = ip
	}
	return peer
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.cfg.RateLimit.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func addrOf(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return ip.Unmap()
}
