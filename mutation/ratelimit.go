package mutation

import (
	"context"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// userLimits is the per-user write rate limit: a token bucket per user (x/time/rate), kept in a bounded LRU
// (hashicorp/golang-lru) so that memory stays bounded however many users write; an evicted user's bucket starts
// full again, which only matters beyond 100,000 recent writers. Writes have their own budget, apart from the edge's request limit: a user's
// reads cannot use it up, and a burst of writes cannot crowd out everyone else's share of the ERP.net session.
type userLimits struct {
	mu      sync.Mutex
	perMin  int
	burst   int
	buckets *lru.Cache[string, *rate.Limiter]
}

func newUserLimits(perMinute, burst int) *userLimits {
	if perMinute < 0 {
		return nil
	}
	c, err := lru.New[string, *rate.Limiter](100_000)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &userLimits{perMin: perMinute, burst: burst, buckets: c}
}

// allow takes one write from user's budget; when there is none it says how long to wait.
func (l *userLimits) allow(user string) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	lim, ok := l.buckets.Get(user)
	if !ok {
		lim = rate.NewLimiter(rate.Limit(float64(l.perMin)/60), l.burst)
		l.buckets.Add(user, lim)
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return d, false
	}
	return 0, true
}

// RateStore keeps token buckets by key, like the edge's rate limit (server.RateStore, which any of its stores
// also implements): Take takes one token from key's bucket, which refills at rate per second up to burst, or
// says how long until one is there.
type RateStore interface {
	Take(ctx context.Context, key string, rate float64, burst int) (wait time.Duration, err error)
}

// allow takes one write from user's budget, in Config.Rates when set.
func (s *Service) allow(ctx context.Context, user string) (time.Duration, bool) {
	if s.cfg.Rates == nil || s.cfg.RatePerMinute < 0 {
		return s.limits.allow(user)
	}
	wait, err := s.cfg.Rates.Take(ctx, "write:"+user, float64(s.cfg.RatePerMinute)/60, s.cfg.RateBurst)
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "mutation: write rate store failed; the write goes on", "err", err)
		return 0, true
	}
	return wait, wait <= 0
}
