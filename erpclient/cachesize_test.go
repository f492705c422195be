package erpclient_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// dashboardOrder is a sales order read the way the dashboard reads it: lines with their products, the customer
// with its party, nested in one answer.
type dashboardOrder struct {
	erpclient.SalesOrder
	Customer *struct {
		erpclient.Customer
		Party *erpclient.Party `json:"Party,omitempty"`
	} `json:"Customer,omitempty"`
	Lines []struct {
		erpclient.SalesOrderLine
		Product *erpclient.Product `json:"Product,omitempty"`
	} `json:"Lines,omitempty"`
}

// dashboardPage reads 10 orders nested the way the dashboard reads them.
var dashboardPage = erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true, Top: 10,
	Expand: []erpclient.Expand{{Prop: "Lines", Expand: []erpclient.Expand{{Prop: "Product"}}},
		{Prop: "Customer", Expand: []erpclient.Expand{{Prop: "Party"}}}}}

// benchSim is erpsim for a benchmark, closed when it ends.
func benchSim(b *testing.B) *erpsim.Sim {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := erpsim.Start(ctx, erpsim.Options{Limits: erpsim.Unlimited()})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(); cancel() })
	return s
}

// fillCache reads pages pages of nested orders (each page a distinct request, so a distinct entry).
func fillCache(t *testing.T, c *erpclient.Client, pages int) {
	t.Helper()
	ctx := context.Background()
	for i := range pages {
		_, err := erpclient.List[dashboardOrder](ctx, c, erpclient.Query{Set: erpclient.SetSalesOrders, Unscoped: true, Top: 10,
			Cursor: &erpclient.Cursor{Skip: 1 + 7*i},
			Expand: []erpclient.Expand{{Prop: "Lines", Expand: []erpclient.Expand{{Prop: "Product"}}},
				{Prop: "Customer", Expand: []erpclient.Expand{{Prop: "Party"}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// The memory cache's byte bound is honest: what it accounts for its entries is what they keep alive on the heap
// (measured by the runtime, not by the cache's own arithmetic), and eviction keeps that under the bound.
func TestMemoryCache_AccountsWhatItHolds(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	const pages = 120
	measure := func(bound int64) (erpclient.MemoryCacheStats, int64) {
		t.Helper()
		store := erpclient.NewMemoryCache(bound)
		c := simClient(t, s, func(cfg *erpclient.Config) {
			cfg.Cache = erpclient.CacheConfig{Store: store, Documents: erpclient.DefaultDocumentPolicy}
			cfg.Scheduler.RequestsPerMinute = 1 << 20 // erpsim is unlimited: do not pace the fill
		})
		fillCache(t, c, 1) // the session, its token and connections: not the cache's
		s.ResetRequests()
		before := liveHeap()
		fillCache(t, c, pages)
		s.ResetRequests() // erpsim's request log lives in this process too
		held := liveHeap() - before
		runtime.KeepAlive(c)
		return store.Stats(), held
	}

	st, held := measure(1 << 30) // room for everything
	t.Logf("unbounded: %d entries, accounted %d KiB, heap %d KiB (%.2f)", st.Entries, st.Bytes>>10, held>>10, float64(st.Bytes)/float64(held))
	if st.Entries < pages {
		t.Fatalf("%d entries, want %d", st.Entries, pages+1)
	}
	// the accounting may err on the safe side a little, never under
	if st.Bytes < held*9/10 || st.Bytes > held*3/2 {
		t.Errorf("the cache accounts %d bytes for what keeps %d bytes alive", st.Bytes, held)
	}

	bound := st.Bytes / 4
	st, held = measure(bound)
	t.Logf("bound %d KiB: %d entries, accounted %d KiB, heap %d KiB", bound>>10, st.Entries, st.Bytes>>10, held>>10)
	if st.Bytes > bound || st.Entries >= pages {
		t.Errorf("bounded to %d bytes the cache holds %d entries, %d bytes", bound, st.Entries, st.Bytes)
	}
	if held > bound*11/10 {
		t.Errorf("bounded to %d bytes the cache keeps %d bytes alive", bound, held)
	}
}

// bytesOnly is a store that keeps answers as bytes only (as a shared store such as Redis does): every hit decodes
// the body again.
type bytesOnly struct{ *erpclient.MemoryCache }

func (s bytesOnly) Set(key string, e erpclient.CacheEntry) {
	e.Val = nil
	s.MemoryCache.Set(key, e)
}

// BenchmarkCache_Hit weighs the two ways to keep an answer: decoded (the memory store: no work per hit, the
// decoded form's bytes) or as its body (decode on every hit, the body's bytes). It reports the CPU and allocations
// of one cached read of a nested dashboard page, and the bytes the entry costs the store.
func BenchmarkCache_Hit(b *testing.B) {
	ctx := context.Background()
	s := benchSim(b)
	for _, tc := range []struct {
		name  string
		store func(*erpclient.MemoryCache) erpclient.CacheStore
	}{
		{"decoded", func(m *erpclient.MemoryCache) erpclient.CacheStore { return m }},
		{"bytes", func(m *erpclient.MemoryCache) erpclient.CacheStore { return bytesOnly{m} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			mc := erpclient.NewMemoryCache(1 << 30)
			c, err := erpclient.New(ctx, erpclient.Config{InstanceURL: s.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
				Cache: erpclient.CacheConfig{Store: tc.store(mc), Documents: erpclient.CachePolicy{TTL: time.Hour}}})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			q := dashboardPage
			if _, err := erpclient.List[dashboardOrder](ctx, c, q); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := erpclient.List[dashboardOrder](ctx, c, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(mc.Stats().Bytes), "store-bytes/entry")
			if st := c.Stats(); st.CacheMisses != 1 {
				b.Fatalf("%d misses, want 1", st.CacheMisses)
			}
		})
	}
}

// BenchmarkMemoryCache_Set is what storing one nested dashboard page costs a miss: weighing its decoded value
// and the store's bookkeeping (compare BenchmarkCache_Hit/bytes, which decodes the same page).
func BenchmarkMemoryCache_Set(b *testing.B) {
	ctx := context.Background()
	s := benchSim(b)
	c, err := erpclient.New(ctx, erpclient.Config{InstanceURL: s.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	page, err := erpclient.List[dashboardOrder](ctx, c, dashboardPage)
	if err != nil {
		b.Fatal(err)
	}
	mc := erpclient.NewMemoryCache(1 << 30)
	body := make([]byte, 90<<10)
	b.ReportAllocs()
	for b.Loop() {
		mc.Set("key", erpclient.CacheEntry{Set: erpclient.SetSalesOrders, Body: body, Stored: time.Now(), Val: page})
	}
	b.ReportMetric(float64(mc.Stats().Bytes), "store-bytes/entry")
}

// twoLevel is shaped like a shared store (redisstore): a process's memory store in front of a store of bodies
// that other processes fill; an entry found only there is copied to the front without its decoded value.
type twoLevel struct {
	l1 *erpclient.MemoryCache
	l2 bytesOnly
}

func (s twoLevel) Get(key string) (erpclient.CacheEntry, bool) {
	if e, ok := s.l1.Get(key); ok {
		return e, true
	}
	e, ok := s.l2.Get(key)
	if ok {
		s.l1.Set(key, e)
	}
	return e, ok
}
func (s twoLevel) Set(key string, e erpclient.CacheEntry) { s.l1.Set(key, e); s.l2.Set(key, e) }
func (s twoLevel) Delete(key string)                      { s.l1.Delete(key) }

// An answer another process stored as bytes is decoded once here: the first hit stores it back decoded, so the
// front store holds the decoded value (and weighs it) and later hits do not decode again.
func TestCache_SharedEntryIsDecodedOnce(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	l2 := bytesOnly{erpclient.NewMemoryCache(1 << 30)}
	client := func(l1 *erpclient.MemoryCache) *erpclient.Client {
		return simClient(t, s, func(cfg *erpclient.Config) {
			cfg.Cache = erpclient.CacheConfig{Store: twoLevel{l1, l2}, Documents: erpclient.CachePolicy{TTL: time.Hour}}
		})
	}
	ctx := context.Background()
	if _, err := erpclient.List[dashboardOrder](ctx, client(erpclient.NewMemoryCache(1<<30)), dashboardPage); err != nil {
		t.Fatal(err)
	}
	bodies := l2.Stats().Bytes
	front := erpclient.NewMemoryCache(1 << 30)
	other := client(front) // another replica: its front store is empty
	base := len(domainRequests(s))
	for range 3 {
		if _, err := erpclient.List[dashboardOrder](ctx, other, dashboardPage); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(domainRequests(s)) - base; got != 0 {
		t.Errorf("%d upstream requests for an answer the shared store holds", got)
	}
	if st := front.Stats(); st.Entries != 1 || st.Bytes <= bodies {
		t.Errorf("front store %+v: want the entry decoded (weighing more than its %d-byte body)", st, bodies)
	}
}
