package access_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// The memory cache keeps at most its size of users (least recently used goes
// first) and forgets an entry once its lifetime has passed.
func TestMemoryGrantCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	c := access.NewMemoryGrantCache(2, time.Minute, func() time.Time { return now })
	g := []access.Grant{{CustomerID: "c1", Role: access.RoleOwner}}
	for _, u := range []string{"u1", "u2"} {
		if err := c.Set(ctx, u, g); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := c.Get(ctx, "u1"); err != nil || !ok || len(got) != 1 || got[0].CustomerID != "c1" {
		t.Fatalf("u1: %v %v %v", got, ok, err)
	}
	_ = c.Set(ctx, "u3", nil) // a user without access is cached too; u2 was used least recently
	if _, ok, _ := c.Get(ctx, "u2"); ok {
		t.Error("u2 survived beyond the cache's size")
	}
	if got, ok, _ := c.Get(ctx, "u3"); !ok || got != nil {
		t.Errorf("u3 (no grants): %v %v", got, ok)
	}
	now = now.Add(time.Minute)
	if _, ok, _ := c.Get(ctx, "u1"); ok {
		t.Error("u1 outlived its lifetime")
	}
}

// failingCache is a shared cache that is down (as Redis can be).
type failingCache struct{ gets, sets int }

func (f *failingCache) Get(context.Context, string) ([]access.Grant, bool, error) {
	f.gets++
	return nil, false, errors.New("cache down")
}
func (f *failingCache) Set(context.Context, string, []access.Grant) error {
	f.sets++
	return errors.New("cache down")
}

// A failing cache costs ERP.net reads, never a refusal: every request reads
// the user's access afresh and gets the right scope.
func TestResolver_CacheDown(t *testing.T) {
	sim, erp := start(t)
	fc := &failingCache{}
	r := access.NewResolver(erp, access.Config{Cache: fc})
	ctx := context.Background()
	sim.ResetRequests()
	for range 3 {
		s, err := r.Scope(ctx, user(fixture.MultiLogin))
		if err != nil || len(s.Grants()) != 2 {
			t.Fatalf("scope with the cache down: %v, %v", s, err)
		}
	}
	if n := accessReads(sim); n != 3 || fc.gets != 3 || fc.sets != 3 {
		t.Errorf("%d access lookups, %d cache reads, %d writes; want 3 each", n, fc.gets, fc.sets)
	}
}
