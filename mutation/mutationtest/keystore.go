// Package mutationtest holds the contract tests every mutation.KeyStore passes (the memory store and the Redis
// store run them).
package mutationtest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/internal/testclock"
	"github.com/erpgraph/erpgraph/mutation"
)

// KeyStoreTTL is the retention the contract builds its stores with.
const KeyStoreTTL = time.Hour

// KeyStoreContract checks what every mutation.KeyStore must do: one owner per key however many claim it at once,
// the first input and the stored outcome for everyone else, waiters woken by Complete (with the outcome) and by
// Release (with nothing, so they may claim), done records expiring KeyStoreTTL after their claim by the now
// clock, Complete and Release idempotent. newStore builds an empty store keeping keys for ttl by now.
func KeyStoreContract(t *testing.T, newStore func(now func() time.Time, ttl time.Duration) mutation.KeyStore) {
	t.Helper()
	ctx := context.Background()
	c := &testclock.Offset{}
	st := newStore(c.Now, KeyStoreTTL)
	v := 3
	outcome := mutation.Outcome{OrderID: "o-1", Version: 2, CurrentVersion: &v,
		Errors: []mutation.UserError{{Field: []string{"input", "lines", "0"}, Code: "NOT_FOUND", Message: "not found"}}}

	if _, claimed, err := st.Claim(ctx, "k", "in-1"); err != nil || !claimed {
		t.Fatalf("a new key: claimed=%v err=%v", claimed, err)
	}
	rec, claimed, err := st.Claim(ctx, "k", "in-2")
	if err != nil || claimed || rec.Done || rec.Input != "in-1" {
		t.Fatalf("second claim: %+v claimed=%v err=%v, want the first input, in progress", rec, claimed, err)
	}
	if _, claimed, _ := st.Claim(ctx, "other", "in-1"); !claimed {
		t.Error("another key was not claimable: keys must be independent")
	}
	if _, ok, err := st.Wait(ctx, "unknown"); ok || err != nil {
		t.Errorf("Wait on an unknown key: ok=%v err=%v, want false at once", ok, err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, ok, err := st.Wait(short, "k"); ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait past its deadline on a key in progress: ok=%v err=%v, want the context's error", ok, err)
	}
	cancel()

	// Several waiters are all woken by Complete and see the outcome.
	const waiters = 3
	got := make(chan mutation.Record, waiters)
	for range waiters {
		go func() {
			r, ok, err := st.Wait(ctx, "k")
			if err != nil || !ok {
				t.Errorf("wait: ok=%v err=%v", ok, err)
			}
			got <- r
		}()
	}
	if err := st.Complete(ctx, "k", outcome); err != nil {
		t.Fatal(err)
	}
	for range waiters {
		if r := <-got; !r.Done || r.Outcome == nil || !reflect.DeepEqual(*r.Outcome, outcome) {
			t.Fatalf("woken waiter got %+v", r)
		}
	}
	if err := st.Complete(ctx, "k", mutation.Outcome{OrderID: "o-2"}); err != nil {
		t.Errorf("Complete of a done key: %v, want a no-op", err)
	}
	if err := st.Release(ctx, "k"); err != nil {
		t.Errorf("Release of a done key: %v", err)
	}
	rec, claimed, _ = st.Claim(ctx, "k", "in-1")
	if claimed || !rec.Done || rec.Input != "in-1" || rec.Outcome == nil || !reflect.DeepEqual(*rec.Outcome, outcome) {
		t.Fatalf("claim of a done key: %+v claimed=%v, want the first outcome kept", rec, claimed)
	}
	if r, ok, err := st.Wait(ctx, "k"); !ok || err != nil || !r.Done {
		t.Errorf("Wait on a done key: %+v ok=%v err=%v, want the record at once", r, ok, err)
	}

	// Done records live for the TTL after they were claimed, then the key is new again.
	c.Advance(KeyStoreTTL - time.Minute)
	if rec, claimed, _ := st.Claim(ctx, "k", "in-1"); claimed || !rec.Done {
		t.Fatalf("before expiry: %+v claimed=%v", rec, claimed)
	}
	c.Advance(2 * time.Minute)
	if _, claimed, _ := st.Claim(ctx, "k", "in-3"); !claimed {
		t.Fatal("an expired key was not claimable")
	}

	// Release forgets an in-progress key and wakes its waiters with nothing to replay.
	woken := make(chan bool, waiters)
	for range waiters {
		go func() {
			_, ok, err := st.Wait(ctx, "k")
			if err != nil {
				t.Errorf("wait: %v", err)
			}
			woken <- ok
		}()
	}
	if err := st.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	for range waiters {
		if <-woken {
			t.Fatal("a released key's waiter saw an outcome")
		}
	}
	if err := st.Release(ctx, "k"); err != nil {
		t.Errorf("Release of a released key: %v", err)
	}
	if _, claimed, _ := st.Claim(ctx, "k", "in-4"); !claimed {
		t.Fatal("a released key was not claimable")
	}

	// However many claim one key at the same time, exactly one owns it.
	var owners atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, claimed, err := st.Claim(ctx, "race", "in")
			if err != nil {
				t.Errorf("concurrent claim: %v", err)
			}
			if claimed {
				owners.Add(1)
			}
		})
	}
	wg.Wait()
	if n := owners.Load(); n != 1 {
		t.Errorf("%d concurrent claims of one key owned it, want 1", n)
	}
}
