package redisstore_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/redisstore"
)

const orders = "Crm_Sales_SalesOrders"

// sharedCache is one replica's two-level cache on url; its generations
// arrive on the returned channel.
func sharedCache(t testing.TB, url string, failures *atomic.Int32) (*redisstore.Cache, *erpclient.MemoryCache, chan map[string]uint64) {
	t.Helper()
	l1 := erpclient.NewMemoryCache(1 << 20)
	c := newClient(t, url).Cache(redisstore.CacheConfig{L1: l1, MaxValueBytes: 8192,
		MaxAge:    func(set string) time.Duration { return map[string]time.Duration{orders: time.Minute}[set] },
		OnFailure: func() { failures.Add(1) }})
	gens := make(chan map[string]uint64, 16)
	c.WatchGenerations(func(g map[string]uint64) { gens <- g })
	return c, l1, gens
}

// waitGen returns once gens brings set at gen.
func waitGen(t *testing.T, gens chan map[string]uint64, set string, gen uint64) {
	t.Helper()
	for g := range gens {
		if g[set] == gen {
			return
		}
	}
}

// One replica's answer serves another from Redis (and then from its own
// memory); generations published by one reach the others; entries that
// are too big, of sets not cached, or too old stay in memory only; with
// Redis down lookups miss instead of failing and generations wait to be
// published until it is back.
func TestCache_SharedAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	var failures atomic.Int32
	a, _, _ := sharedCache(t, srv.URL(), &failures)
	b, l1b, gensB := sharedCache(t, srv.URL(), &failures)

	stored := time.Now().Add(-time.Second)
	a.Set("k", erpclient.CacheEntry{Set: orders, Body: []byte(`{"value":[]}`), Stored: stored, Gen: 7, Val: "decoded"})
	e, ok := b.Get("k")
	if !ok || string(e.Body) != `{"value":[]}` || e.Gen != 7 || !e.Stored.Equal(stored) || e.Set != orders || e.Val != nil {
		t.Fatalf("b's lookup of a's entry: %+v %v, want the body (Val is decoded by the client)", e, ok)
	}
	if _, ok := l1b.Get("k"); !ok {
		t.Error("an entry found in Redis was not kept in b's memory")
	}
	for _, tc := range []struct {
		name string
		e    erpclient.CacheEntry
	}{
		{"too big", erpclient.CacheEntry{Set: orders, Body: bytes.Repeat([]byte("x"), 8193), Stored: time.Now()}},
		{"not cached", erpclient.CacheEntry{Set: "Other_Set", Body: []byte("{}"), Stored: time.Now()}},
		{"too old", erpclient.CacheEntry{Set: orders, Body: []byte("{}"), Stored: time.Now().Add(-2 * time.Minute)}},
	} {
		a.Set(tc.name, tc.e)
		if _, ok := b.Get(tc.name); ok {
			t.Errorf("%s: an entry reached Redis", tc.name)
		}
	}

	a.PublishGenerations(map[string]uint64{orders: 9})
	waitGen(t, gensB, orders, 9)

	srv.Stop()
	if _, ok := b.Get("unknown"); ok {
		t.Error("a lookup with Redis down found something")
	}
	if _, ok := b.Get("k"); !ok {
		t.Error("b's own memory does not answer with Redis down")
	}
	b.Set("k2", erpclient.CacheEntry{Set: orders, Body: []byte("{}"), Stored: time.Now()})
	a.PublishGenerations(map[string]uint64{orders: 11})
	if failures.Load() == 0 {
		t.Error("no failure counted with Redis down")
	}
	srv.Restart()
	waitGen(t, gensB, orders, 11) // a publishes it once its subscription is back, b hears it (or reads it from the hash)
}
