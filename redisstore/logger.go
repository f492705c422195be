package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// slogLogger routes go-redis's own log lines (pool dial failures, pub/sub
// reconnects), which it prints as plain text to stderr by default, into the
// program's structured log. A Redis outage makes go-redis repeat the same
// line for every failed dial, so each kind of line (its format) is written
// at most once per interval, with the number of repeats it stood for.
type slogLogger struct {
	log      *slog.Logger
	interval time.Duration

	mu   sync.Mutex
	last map[string]*logSeen // format → when it was last written
}

type logSeen struct {
	at         time.Time
	suppressed int
}

// maxLogKinds bounds the formats remembered (go-redis has a few dozen).
const maxLogKinds = 256

// Printf implements go-redis's internal.Logging.
func (s *slogLogger) Printf(ctx context.Context, format string, v ...any) {
	now := time.Now()
	s.mu.Lock()
	seen := s.last[format]
	if seen != nil && now.Sub(seen.at) < s.interval {
		seen.suppressed++
		s.mu.Unlock()
		return
	}
	repeats := 0
	if seen != nil {
		repeats = seen.suppressed
	} else if len(s.last) >= maxLogKinds {
		clear(s.last)
	}
	s.last[format] = &logSeen{at: now}
	s.mu.Unlock()
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	attrs := []slog.Attr{slog.String("detail", msg)}
	if repeats > 0 {
		attrs = append(attrs, slog.Int("repeated", repeats))
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "redis: client", attrs...)
}

// SetLogger sends go-redis's log lines to l as structured records (msg
// "redis: client", the line in "detail"), each kind at most once per 10 s.
// go-redis has one logger per process, so the last call wins.
func SetLogger(l *slog.Logger) {
	if l == nil {
		return
	}
	redis.SetLogger(&slogLogger{log: l, interval: 10 * time.Second, last: map[string]*logSeen{}})
}
