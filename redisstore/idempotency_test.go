package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/mutation"
	"github.com/erpgraph/erpgraph/mutation/mutationtest"
	"github.com/erpgraph/erpgraph/redisstore"
)

// The Redis store keeps the same contract as the memory store, on a real
// redis-server.
func TestIdempotencyKeys_Contract(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int32
	mutationtest.KeyStoreContract(t, func(now func() time.Time, ttl time.Duration) mutation.KeyStore {
		c, err := redisstore.New(redisstore.Config{URL: srv.URL(), Prefix: fmt.Sprintf("t%d:", n.Add(1))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c.IdempotencyKeysWithClock(ttl, now)
	})
}

// Two replicas (two clients, two stores) share the keys: a claim by one is
// seen by the other, whose waiter is woken by the owner's Complete through
// pub/sub and sees the outcome; a release on one lets the other claim.
func TestIdempotencyKeys_AcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := newClient(t, srv.URL()).IdempotencyKeys(time.Hour)
	b := newClient(t, srv.URL()).IdempotencyKeys(time.Hour)
	ctx := context.Background()
	if _, claimed, err := a.Claim(ctx, "k", "in"); err != nil || !claimed {
		t.Fatalf("claim on a: %v %v", claimed, err)
	}
	if rec, claimed, err := b.Claim(ctx, "k", "in"); err != nil || claimed || rec.Input != "in" || rec.Done {
		t.Fatalf("claim on b: %+v %v %v, want a's claim in progress", rec, claimed, err)
	}
	got := make(chan mutation.Record, 1)
	go func() {
		rec, ok, err := b.Wait(ctx, "k")
		if err != nil || !ok {
			t.Errorf("b's wait: ok=%v err=%v", ok, err)
		}
		got <- rec
	}()
	if err := a.Complete(ctx, "k", mutation.Outcome{OrderID: "o-1", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if rec := <-got; !rec.Done || rec.Outcome.OrderID != "o-1" {
		t.Errorf("b's waiter got %+v", rec)
	}
	if _, claimed, _ := a.Claim(ctx, "r", "in"); !claimed {
		t.Fatal("claim r on a")
	}
	if err := b.Release(ctx, "r"); err != nil { // b does not hold r: nothing happens
		t.Fatal(err)
	}
	if _, claimed, _ := b.Claim(ctx, "r", "in"); claimed {
		t.Error("b released a's claim")
	}
	if err := a.Release(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, claimed, _ := b.Claim(ctx, "r", "in"); !claimed {
		t.Error("a key released by a was not claimable on b")
	}
}

// With Redis down every method fails (the Service refuses the write), a
// waiter ends with an error rather than waiting for ever, and the store
// works again once Redis is back, without a restart.
func TestIdempotencyKeys_Outage(t *testing.T) {
	srv := redistest.Start(t)
	k := newClient(t, srv.URL()).IdempotencyKeys(time.Hour)
	ctx := context.Background()
	if _, claimed, err := k.Claim(ctx, "k", "in"); err != nil || !claimed {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	waited := make(chan error, 1)
	go func() {
		_, _, err := k.Wait(ctx, "k")
		waited <- err
	}()
	srv.Stop()
	if err := <-waited; err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait when Redis stopped: %v, want a store error", err)
	}
	if _, _, err := k.Claim(ctx, "k2", "in"); err == nil {
		t.Error("Claim with Redis down succeeded")
	}
	if err := k.Complete(ctx, "k", mutation.Outcome{OrderID: "o"}); err == nil {
		t.Error("Complete with Redis down succeeded")
	}
	if err := k.Release(ctx, "k"); err == nil {
		t.Error("Release with Redis down succeeded")
	}
	srv.Restart() // empty again
	if _, claimed, err := k.Claim(ctx, "k", "in"); err != nil || !claimed {
		t.Errorf("claim after Redis came back: %v %v", claimed, err)
	}
}
