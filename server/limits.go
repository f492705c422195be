package server

import (
	"cmp"
	"container/list"
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
	// MaxClients bounds the remembered clients (buckets and slots); the least
	// recently seen is forgotten first. Default 100,000.
	MaxClients int
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
}

// client is what the limiter remembers of one user or IP.
type client struct {
	key      string
	bucket   *rate.Limiter // nil: no rate limit for this kind of client
	slots    chan struct{} // nil: no concurrency cap
	lastSeen time.Time
	inFlight int // guarded by limiter.mu; a client in flight is never idle
}

// limiter holds the clients in a bounded LRU: idle clients (full bucket, no
// operation in flight) are dropped from the cold end, since a fresh bucket is
// the same as theirs; over MaxClients the least recently seen goes even if
// busy (only under a flood of distinct clients).
type limiter struct {
	cfg   RateLimitConfig
	now   func() time.Time
	mu    sync.Mutex
	byKey map[string]*list.Element
	lru   *list.List // front = most recently seen
}

func newLimiter(cfg RateLimitConfig) *limiter {
	return &limiter{cfg: cfg, now: time.Now, byKey: map[string]*list.Element{}, lru: list.New()}
}

// idleAfter is when a bucket has refilled completely: forgetting it then
// changes nothing.
func (l *limiter) idleAfter() time.Duration {
	d := time.Minute
	for _, b := range []struct {
		r float64
		n int
	}{{l.cfg.UserRate, l.cfg.UserBurst}, {l.cfg.AnonRate, l.cfg.AnonBurst}} {
		if b.r > 0 {
			d = max(d, time.Duration(float64(b.n)/b.r*float64(time.Second)))
		}
	}
	return d
}

// acquire takes a token from the client's bucket. It returns the client (to
// release later) or how long to wait before retrying.
func (l *limiter) acquire(key string, user bool) (*client, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var c *client
	if el, ok := l.byKey[key]; ok {
		l.lru.MoveToFront(el)
		c = el.Value.(*client)
	} else {
		c = &client{key: key, lastSeen: now}
		r, n := l.cfg.AnonRate, l.cfg.AnonBurst
		if user {
			r, n = l.cfg.UserRate, l.cfg.UserBurst
		}
		if r > 0 {
			c.bucket = rate.NewLimiter(rate.Limit(r), n)
		}
		if l.cfg.MaxConcurrent > 0 {
			c.slots = make(chan struct{}, l.cfg.MaxConcurrent)
		}
		l.byKey[key] = l.lru.PushFront(c)
		l.evict(now)
	}
	c.lastSeen = now
	if c.bucket != nil {
		res := c.bucket.ReserveN(now, 1)
		if d := res.DelayFrom(now); !res.OK() || d > 0 {
			res.CancelAt(now) // a refused request must not use up the future
			if !res.OK() {
				d = time.Second
			}
			return nil, d
		}
	}
	c.inFlight++
	return c, 0
}

func (l *limiter) evict(now time.Time) {
	idle := l.idleAfter()
	for el := l.lru.Back(); el != nil; el = l.lru.Back() {
		c := el.Value.(*client)
		if l.lru.Len() <= l.cfg.MaxClients && (c.inFlight > 0 || now.Sub(c.lastSeen) < idle) {
			return
		}
		l.lru.Remove(el)
		delete(l.byKey, c.key)
	}
}

func (l *limiter) done(c *client) {
	l.mu.Lock()
	c.inFlight--
	c.lastSeen = l.now()
	l.mu.Unlock()
}

// slot waits up to ConcurrencyWait for one of the client's operation slots.
func (l *limiter) slot(ctx context.Context, c *client) (release func(), ok bool) {
	if c.slots == nil {
		return func() {}, true
	}
	release = func() { <-c.slots }
	select {
	case c.slots <- struct{}{}:
		return release, true
	default:
	}
	t := time.NewTimer(l.cfg.ConcurrencyWait)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
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
		c, wait := s.limits.acquire(key, user)
		if c == nil {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			s.deny(w, r, http.StatusTooManyRequests, errcode.RateLimited, "rate",
				fmt.Sprintf("too many requests; retry after %d s", max(secs, 1)))
			return
		}
		defer s.limits.done(c)
		release, ok := s.limits.slot(r.Context(), c)
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
