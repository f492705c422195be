// Package redisstore keeps erpgraph's shared state in Redis
// (github.com/redis/go-redis/v9), so that several replicas behind a load
// balancer act as one: login sessions with their refresh lock, and the other
// stores as they move behind interfaces. What licensing keeps per replica
// (the service token, the ERP.net session and its scheduler) never comes
// here.
//
// Every key starts with a prefix ("erpgraph:" by default), so one Redis can
// serve several deployments. Nothing secret is stored in the clear: session
// keys are hashes of the cookie's id and their tokens are sealed by package
// session before they arrive.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every key erpgraph writes.
const DefaultPrefix = "erpgraph:"

// Client is a connection pool to one Redis, shared by the stores.
type Client struct {
	rdb     *redis.Client
	prefix  string
	timeout time.Duration // of each command

	mu      sync.Mutex
	closers []func() // the stores' subscriptions, ended before the pool
}

// onClose runs f when the client closes.
func (c *Client) onClose(f func()) {
	c.mu.Lock()
	c.closers = append(c.closers, f)
	c.mu.Unlock()
}

// ParseURL checks a Redis URL: redis://[user:password@]host:port[/db],
// rediss:// for TLS, or unix:///path/to/socket. The error never repeats the
// password.
func ParseURL(raw string) (*redis.Options, error) {
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s is not a Redis URL (redis://host:port/db, rediss://, unix://): %v", Redacted(raw), redactErr(err, raw))
	}
	return opts, nil
}

// Redacted is a Redis URL without its password, for logs and errors.
func Redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return scrub(raw, raw)
}

// redactErr is err's message without the URL's user info.
func redactErr(err error, raw string) string { return scrub(err.Error(), raw) }

// scrub removes raw's user info (between "://" and the last "@" before the
// path) from msg, also when raw does not parse as a URL.
func scrub(msg, raw string) string {
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at > 0 {
		msg = strings.ReplaceAll(msg, rest[:at], "xxxxx")
	}
	return msg
}

// Config configures a Client.
type Config struct {
	URL    string // see ParseURL
	Prefix string // default DefaultPrefix
	// Timeout bounds each command (dial, read, write): a stalled Redis must
	// not stall requests; each store then follows its documented fallback.
	// Default 500ms.
	Timeout time.Duration
	// Logger receives go-redis's own log lines (SetLogger); nil leaves them
	// as they are.
	Logger *slog.Logger
}

// New builds a Client. It does not wait for Redis: a replica starts (and
// serves what needs no Redis) while Redis is down, and reports it in its
// readiness.
func New(cfg Config) (*Client, error) {
	opts, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
	opts.MaxRetries = 1
	// One dial per attempt: go-redis's default of five, 100ms apart, made every
	// command wait about 0.8s before failing while Redis is down (each
	// request's rate limit, each cookie), instead of the stores' fallbacks
	// answering at once.
	opts.DialerRetries = 1
	opts.ContextTimeoutEnabled = true
	SetLogger(cfg.Logger)
	prefix := cfg.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Client{rdb: redis.NewClient(opts), prefix: prefix, timeout: timeout}, nil
}

// Ping checks that Redis answers, for readiness.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close closes the pool.
func (c *Client) Close() error {
	c.mu.Lock()
	closers := c.closers
	c.closers = nil
	c.mu.Unlock()
	for _, f := range closers {
		f()
	}
	if err := c.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}

// Redis is the underlying go-redis client (for stores built on other
// go-redis libraries, and tests).
func (c *Client) Redis() *redis.Client { return c.rdb }

// key is a key under the client's prefix.
func (c *Client) key(parts ...string) string {
	return c.prefix + strings.Join(parts, ":")
}

// closeSub ends the subscription *sub (guarded by mu), if there is one.
func closeSub(mu *sync.Mutex, sub **redis.PubSub) {
	mu.Lock()
	s := *sub
	*sub = nil
	mu.Unlock()
	if s != nil {
		_ = s.Close()
	}
}
