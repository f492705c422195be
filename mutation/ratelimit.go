package mutation

import (
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
