package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/redisstore"
	"github.com/erpgraph/erpgraph/session"
	"github.com/erpgraph/erpgraph/session/sessiontest"
)

func newClient(t testing.TB, url string) *redisstore.Client {
	t.Helper()
	c, err := redisstore.New(redisstore.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The Redis store keeps the same contract as the memory store, on a real
// redis-server.
func TestSessions_Contract(t *testing.T) {
	srv := redistest.Start(t)
	n := 0
	sessiontest.StoreContract(t, func(now func() time.Time) session.Store {
		n++ // a fresh key space per store
		c, err := redisstore.New(redisstore.Config{URL: srv.URL(), Prefix: "t" + strings.Repeat("x", n) + ":"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c.SessionsWithClock(now)
	})
}

// Two replicas share sessions and the refresh lock; a lock whose holder
// died expires after its ttl; with Redis down the store reports an error
// (the manager answers UPSTREAM_UNAVAILABLE) and recovers when it is back.
func TestSessions_SharedLockExpiryAndOutage(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newClient(t, srv.URL()).Sessions(), newClient(t, srv.URL()).Sessions()
	ctx := context.Background()
	s := &session.Session{Key: "k1", ExpiresAt: time.Now().Add(time.Hour)}
	if err := a.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k1"); err != nil {
		t.Errorf("the other replica does not see the session: %v", err)
	}
	if _, err := a.Lock(ctx, "k1", 50*time.Millisecond); err != nil { // never released: its holder "died"
		t.Fatal(err)
	}
	unlock, err := b.Lock(ctx, "k1", time.Minute) // waits until the dead holder's lock expires
	if err != nil {
		t.Fatalf("lock after the holder died: %v", err)
	}
	unlock()

	srv.Stop()
	if _, err := a.Get(ctx, "k1"); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get with Redis down: %v, want a store error", err)
	}
	if err := newClient(t, srv.URL()).Ping(ctx); err == nil {
		t.Error("Ping with Redis down succeeded")
	}
	srv.Restart() // empty again
	if err := a.Create(ctx, s); err != nil {
		t.Errorf("Create after Redis came back: %v", err)
	}
}

// Errors about a URL never repeat its password.
func TestParseURL_Redacts(t *testing.T) {
	_, err := redisstore.New(redisstore.Config{URL: "redis://user:s3cret-pass@host:notaport/0"})
	if err == nil || strings.Contains(err.Error(), "s3cret-pass") {
		t.Errorf("error %v", err)
	}
	if got := redisstore.Redacted("redis://:s3cret-pass@redis:6379/0"); strings.Contains(got, "s3cret-pass") {
		t.Errorf("Redacted = %q", got)
	}
}
