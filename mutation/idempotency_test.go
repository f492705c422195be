package mutation

import (
	"context"
	"testing"
	"time"
)

func TestMemoryKeyStore(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := NewMemoryKeyStore(10, time.Hour)
	m.now = func() time.Time { return now }

	if _, claimed, _ := m.Claim(ctx, "k", "in-1"); !claimed {
		t.Fatal("a new key was not claimed")
	}
	rec, claimed, _ := m.Claim(ctx, "k", "in-2")
	if claimed || rec.Done || rec.Input != "in-1" {
		t.Fatalf("second claim: %+v claimed=%v", rec, claimed)
	}
	// A waiter is woken by Complete and sees the outcome.
	got := make(chan Record, 1)
	go func() {
		r, ok, err := m.Wait(ctx, "k")
		if err != nil || !ok {
			t.Errorf("wait: ok=%v err=%v", ok, err)
		}
		got <- r
	}()
	if err := m.Complete(ctx, "k", Outcome{OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if r := <-got; !r.Done || r.Outcome.OrderID != "o-1" {
		t.Fatalf("woken waiter got %+v", r)
	}
	// Done records live for the TTL after they were claimed, then the key is new again.
	now = now.Add(59 * time.Minute)
	if rec, claimed, _ := m.Claim(ctx, "k", "in-1"); claimed || !rec.Done {
		t.Fatalf("before expiry: %+v claimed=%v", rec, claimed)
	}
	now = now.Add(2 * time.Minute)
	if _, claimed, _ := m.Claim(ctx, "k", "in-3"); !claimed {
		t.Fatal("an expired key was not claimable")
	}
	// Release forgets an in-progress key and wakes its waiters with nothing to replay.
	woken := make(chan bool, 1)
	go func() {
		_, ok, _ := m.Wait(ctx, "k")
		woken <- ok
	}()
	if err := m.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if <-woken {
		t.Fatal("a released key's waiter saw an outcome")
	}
	if _, claimed, _ := m.Claim(ctx, "k", "in-4"); !claimed {
		t.Fatal("a released key was not claimable")
	}
}

func TestKeyFingerprints(t *testing.T) {
	ref := referenceFor("user-1", "key-1")
	if len(ref) != 20 || ref[:2] != "eg" || ref == referenceFor("user-2", "key-1") || ref != referenceFor("user-1", "key-1") {
		t.Errorf("reference %q: want 20 characters, per user and key, stable", ref)
	}
	if fp := keyFingerprint("user-1", "key-1"); len(fp) != 16 || keyFingerprint("u", "") != "" {
		t.Errorf("fingerprint %q", fp)
	}
}
