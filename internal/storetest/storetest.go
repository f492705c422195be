// Package storetest holds the contract tests of erpgraph's shared-state stores, so that every implementation
// (in memory now, Redis when several replicas run) passes the same tests: call each function from the
// implementation's own test with a constructor of fresh, empty stores.
package storetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/server"
)

// RateStore checks a server.RateStore: a bucket serves its burst and then refuses with a wait, without taking
// from the future; keys are independent; concurrent takers never get more than the burst.
func RateStore(t *testing.T, newStore func(t *testing.T) server.RateStore) {
	ctx := context.Background()
	take := func(t *testing.T, s server.RateStore, key string, rate float64, burst int) time.Duration {
		t.Helper()
		wait, err := s.Take(ctx, key, rate, burst)
		if err != nil {
			t.Fatalf("Take(%s): %v", key, err)
		}
		return wait
	}
	t.Run("burst then wait", func(t *testing.T) {
		s := newStore(t)
		const rate, burst = 0.001, 3 // one token per 1000 s: nothing refills during the test
		for i := range burst {
			if wait := take(t, s, "user:a", rate, burst); wait != 0 {
				t.Fatalf("take %d of the burst: wait %v", i+1, wait)
			}
		}
		for range 3 {
			if wait := take(t, s, "user:a", rate, burst); wait <= 0 || wait > 1001*time.Second {
				t.Fatalf("over the burst: wait %v, want (0, 1000 s]", wait)
			}
		}
		if wait := take(t, s, "user:b", rate, burst); wait != 0 {
			t.Errorf("another key waits %v", wait)
		}
	})
	t.Run("concurrent takers", func(t *testing.T) {
		s := newStore(t)
		const burst = 5
		var mu sync.Mutex
		granted := 0
		var wg sync.WaitGroup
		for range 4 * burst {
			wg.Go(func() {
				if take(t, s, "ip:192.0.2.1", 0.001, burst) == 0 {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if granted != burst {
			t.Errorf("%d takes granted, want the burst of %d", granted, burst)
		}
	})
}

// FirstUseStore checks a server.FirstUseStore: a key is new once, however many ask at the same time.
func FirstUseStore(t *testing.T, newStore func(t *testing.T) server.FirstUseStore) {
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	s := newStore(t)
	var mu sync.Mutex
	firsts := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			key := fmt.Sprint("token-", i%4)
			first, err := s.FirstUse(ctx, key, exp)
			if err != nil {
				t.Errorf("FirstUse(%s): %v", key, err)
				return
			}
			if first {
				mu.Lock()
				firsts[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(firsts) != 4 {
		t.Errorf("first uses %v, want each of 4 keys once", firsts)
	}
	for k, n := range firsts {
		if n != 1 {
			t.Errorf("%s was new %d times", k, n)
		}
	}
}

// PersistedQueryStore checks a graph.PersistedQueryStore: what is put is got back by its hash, unknown hashes
// are misses, and a put replaces.
func PersistedQueryStore(t *testing.T, newStore func(t *testing.T) graph.PersistedQueryStore) {
	ctx := context.Background()
	s := newStore(t)
	if _, ok, err := s.Get(ctx, strings.Repeat("0", 64)); ok || err != nil {
		t.Fatalf("an empty store has it (ok %v, err %v)", ok, err)
	}
	for i := range 3 {
		if err := s.Put(ctx, fmt.Sprint("hash-", i), fmt.Sprintf("{ q%d }", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "hash-1", "{ replaced }"); err != nil {
		t.Fatal(err)
	}
	for hash, want := range map[string]string{"hash-0": "{ q0 }", "hash-1": "{ replaced }", "hash-2": "{ q2 }"} {
		if got, ok, err := s.Get(ctx, hash); !ok || err != nil || got != want {
			t.Errorf("Get(%s) = %q, %v, %v; want %q", hash, got, ok, err, want)
		}
	}
}
