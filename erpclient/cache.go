package erpclient

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
)

// The read cache keeps ERP.net's answers to reads made with the service
// identity, keyed by the full upstream request (set, $filter with the
// caller's mandatory access filters, $select, $expand, paging, and the
// decoded type): an entry can only ever answer the very request that
// produced it, so it stays inside the scope that read it. Callers apply
// their per-user rules (post-checks, price hiding, days back) to whatever
// List, Get, ByIDs or Count return, cached or not.
//
// Freshness is per entity set (RFC 5861 semantics): an answer younger than
// the set's TTL is served as is; up to StaleWhileRevalidate past it, it is
// served at once while one background request refreshes it; up to
// StaleIfError past it, it is served only when ERP.net fails or the session
// is too busy to answer in time; beyond that it is never served. Reference
// sets get long TTLs because the background Sync drops their entries when
// it sees a change. Identical misses share one upstream request through the
// scheduler. Writes through this client, and callers (Invalidate), drop the
// entries of the sets they change.

// CacheStore holds cache entries by key. Implementations are safe for
// concurrent use. NewMemoryCache is the in-process one: it keeps Val and
// drops Body. A shared store such as Redis keeps Body (and the other
// fields) and returns Val empty: the client then decodes Body on each hit.
type CacheStore interface {
	Get(key string) (CacheEntry, bool)
	Set(key string, e CacheEntry)
	Delete(key string)
}

// CacheEntry is one upstream answer.
type CacheEntry struct {
	Set    string    // the entity set read, for invalidation
	Body   []byte    // the answer's body as ERP.net sent it
	Stored time.Time // when ERP.net answered
	Gen    uint64    // the set's generation when the read started (see Client.Invalidate)
	// Val is the decoded answer, shared read-only by every caller it serves;
	// nil in stores that keep bytes only (the client decodes Body again).
	// A store may drop Body when it keeps Val.
	Val any
}

// CachePolicy is the freshness of one class of entity sets.
type CachePolicy struct {
	TTL                  time.Duration // served as fresh
	StaleWhileRevalidate time.Duration // after TTL: served while one background refresh runs
	StaleIfError         time.Duration // after TTL: served when ERP.net fails or the session is overloaded
}

// bound is the age past which an entry is never served.
func (p CachePolicy) bound() time.Duration {
	return p.TTL + max(p.StaleWhileRevalidate, p.StaleIfError)
}

// CacheConfig configures the read cache (Config.Cache).
type CacheConfig struct {
	Store     CacheStore  // nil: no cache, every read goes to ERP.net
	Documents CachePolicy // documents and their lines, customers, parties, stock
	Reference CachePolicy // ReferenceSets: kept fresh by Sync, so a long TTL
}

// Default cache policies.
var (
	DefaultDocumentPolicy  = CachePolicy{TTL: 5 * time.Second, StaleWhileRevalidate: 30 * time.Second, StaleIfError: 5 * time.Minute}
	DefaultReferencePolicy = CachePolicy{TTL: 10 * time.Minute, StaleWhileRevalidate: time.Minute, StaleIfError: time.Hour}
)

// ReferenceSets are the reference data sets: the same for every user, small,
// rarely changed, kept fresh by Sync.
var ReferenceSets = []string{SetProducts, SetProductGroups, SetMeasurementUnits, SetCurrencies, SetStores}

// documentSets are cached with the document policy. Sets not listed
// (external access, users, ...) are never cached: the access resolver keeps
// its own cache of who may see what.
var documentSets = map[string]bool{
	SetSalesOrders: true, SetSalesOrderLines: true, SetInvoices: true, SetInvoiceLines: true,
	SetShipments: true, SetShipmentLines: true, SetCustomers: true, SetParties: true, SetPersons: true,
	SetCompanies: true, SetCurrentBalances: true,
}

// sameAggregate lists the sets whose answers one change can affect together:
// a document and its lines (answers of either may nest the other), parties
// and their derived sets.
var sameAggregate = map[string][]string{
	SetSalesOrders: {SetSalesOrderLines}, SetSalesOrderLines: {SetSalesOrders},
	SetInvoices: {SetInvoiceLines}, SetInvoiceLines: {SetInvoices},
	SetShipments: {SetShipmentLines}, SetShipmentLines: {SetShipments},
	SetParties: {SetPersons, SetCompanies}, SetPersons: {SetParties}, SetCompanies: {SetParties},
}

// readCache is the client's cache state.
type readCache struct {
	store     CacheStore
	documents CachePolicy
	reference CachePolicy
	now       func() time.Time

	mu         sync.Mutex
	gens       map[string]uint64
	refreshing map[string]bool // keys with a background refresh running
}

func newReadCache(cfg CacheConfig, now func() time.Time) *readCache {
	if cfg.Store == nil {
		return nil
	}
	rc := &readCache{store: cfg.Store, documents: cfg.Documents, reference: cfg.Reference, now: now,
		gens: map[string]uint64{}, refreshing: map[string]bool{}}
	if shared, ok := cfg.Store.(SharedCacheStore); ok {
		shared.WatchGenerations(rc.applyGens)
	}
	return rc
}

// setOf is the entity set a request path reads ("Set", "Set/$count", "Set(id)").
func setOf(path string) string {
	if i := strings.IndexAny(path, "/("); i >= 0 {
		return path[:i]
	}
	return path
}

func (rc *readCache) policy(set string) (CachePolicy, bool) {
	switch {
	case documentSets[set]:
		return rc.documents, rc.documents.bound() > 0
	case isReference(set):
		return rc.reference, rc.reference.bound() > 0
	}
	return CachePolicy{}, false
}

func isReference(set string) bool {
	for _, s := range ReferenceSets {
		if s == set {
			return true
		}
	}
	return false
}

func (rc *readCache) gen(set string) uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.gens[set]
}

// invalidate gives sets (and the sets sharing their aggregates) new
// generations: entries stored before are never served again, and answers of
// reads that started before are not stored as current. A shared store
// passes the new generations to the other processes.
func (rc *readCache) invalidate(sets ...string) {
	changed := map[string]uint64{}
	rc.mu.Lock()
	for _, s := range sets {
		for _, o := range append([]string{s}, sameAggregate[s]...) {
			changed[o] = newGen()
			rc.gens[o] = changed[o]
		}
	}
	rc.mu.Unlock()
	rc.publish(changed)
}

// Invalidate drops every cached answer from the given entity sets and from
// the sets that share their aggregates (an order and its lines; parties,
// persons and companies). Call it after a change made outside this client's
// writes; writes through Create, Patch, ChangeState and Changesets
// invalidate the sets they touch themselves. It invalidates whole sets, not
// ids: a new or changed document also changes the lists it now falls in.
func (c *Client) Invalidate(sets ...string) {
	if c.cache != nil {
		c.cache.invalidate(sets...)
	}
}

// InvalidateAll drops every cached answer.
func (c *Client) InvalidateAll() {
	if c.cache == nil {
		return
	}
	sets := append([]string(nil), ReferenceSets...)
	for s := range documentSets {
		sets = append(sets, s)
	}
	c.cache.invalidate(sets...)
}

// Freshness collects how fresh the upstream answers behind one operation
// were, for the response's dataAge and the per-operation record. Put one in
// the operation's context with WithFreshness.
type Freshness struct {
	mu     sync.Mutex
	oldest time.Duration
	stale  bool
	hits   int // answered from the cache (fresh or stale)
	misses int // cacheable reads that went to ERP.net
	served int // stale answers served
}

// FreshnessReport is a snapshot of a Freshness.
type FreshnessReport struct {
	Age    time.Duration // age of the oldest answer used; 0 when every read was live
	Stale  bool          // a stale answer was served (past its TTL)
	Hits   int           // reads answered from the cache
	Misses int           // cacheable reads that went to ERP.net
	Served int           // of the hits, stale answers
}

type freshnessKey struct{}

type liveKey struct{}

// WithoutCache returns a context whose reads go to ERP.net whatever the cache
// holds (their answers still refresh it): for what a write checks before it
// writes and returns after, which must be ERP.net's current state.
func WithoutCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, liveKey{}, true)
}

func isLive(ctx context.Context) bool {
	b, _ := ctx.Value(liveKey{}).(bool)
	return b
}

// WithFreshness returns a context whose reads report to f.
func WithFreshness(ctx context.Context) (context.Context, *Freshness) {
	f := &Freshness{}
	return context.WithValue(ctx, freshnessKey{}, f), f
}

// Report returns what f collected so far.
func (f *Freshness) Report() FreshnessReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FreshnessReport{Age: f.oldest, Stale: f.stale, Hits: f.hits, Misses: f.misses, Served: f.served}
}

func (c *Client) note(ctx context.Context, age time.Duration, hit, stale bool) {
	switch {
	case c.cache == nil:
	case !hit:
		c.stats.cacheMisses.Add(1)
	case stale:
		c.stats.cacheStale.Add(1)
	default:
		c.stats.cacheHits.Add(1)
	}
	f, ok := ctx.Value(freshnessKey{}).(*Freshness)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.oldest = max(f.oldest, age)
	if hit {
		f.hits++
	} else {
		f.misses++
	}
	if stale {
		f.stale = true
		f.served++
	}
}

// cacheable reports whether r's answer may be cached, and under which policy.
func (c *Client) cacheable(r *request) (CachePolicy, bool) {
	if c.cache == nil || !r.read || r.decode == nil || r.noCache {
		return CachePolicy{}, false
	}
	return c.cache.policy(setOf(r.path))
}

// lookup returns key's entry when it is still of its set's current generation.
func (rc *readCache) lookup(key, set string) (CacheEntry, bool) {
	e, ok := rc.store.Get(key)
	if !ok {
		return CacheEntry{}, false
	}
	if e.Gen != rc.gen(set) {
		rc.store.Delete(key)
		return CacheEntry{}, false
	}
	return e, true
}

// cachedResponse turns key's entry into the response a live read would
// give. An entry without its decoded value (a shared store's, read from
// Redis) is decoded once and stored back with it, so the process's own
// store answers the next hits without decoding again.
func (c *Client) cachedResponse(r *request, key string, e CacheEntry) (*response, error) {
	if e.Val != nil {
		return &response{status: 200, body: e.Body, val: e.Val}, nil
	}
	v, err := r.decode(e.Body)
	if err != nil {
		return nil, err
	}
	res := &response{status: 200, body: e.Body, val: v}
	e.Val = v
	c.cache.store.Set(key, e)
	return res, nil
}

// staleAllowed reports whether err is a failure stale-if-error covers:
// ERP.net failing or refusing for load, the session too busy, or the
// operation's deadline running out; not a refused request (bad query,
// missing object, no permission) nor a cancelled one.
func staleAllowed(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Is(ErrBusy) || e.Is(ErrUnavailable) || e.transient()
	}
	return errors.Is(err, ErrBusy) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCircuitOpen) ||
		errors.Is(err, context.DeadlineExceeded)
}

// sendAll answers what the cache can and sends the rest (see sendLive).
func (c *Client) sendAll(ctx context.Context, reqs ...*request) ([]*response, []error) {
	if c.cache == nil {
		res, errs := c.sendLive(ctx, reqs...)
		for i, r := range reqs {
			if r.read && r.decode != nil && errs[i] == nil {
				c.note(ctx, 0, false, false) // live: what dataAge reports with the cache off
			}
		}
		return res, errs
	}
	out, errs := make([]*response, len(reqs)), make([]error, len(reqs))
	kept := c.sched.kept.Load() // before the lookups: see scheduler.kept
	now := c.cache.now()
	var live []int
	var liveReqs []*request
	gens := map[int]uint64{}
	stale := map[int]CacheEntry{} // within stale-if-error: served if the live read fails
	for i, r := range reqs {
		pol, ok := c.cacheable(r)
		if !ok {
			live, liveReqs = append(live, i), append(liveReqs, r)
			continue
		}
		set, key := setOf(r.path), r.key()
		gen := c.cache.gen(set)
		gens[i] = gen
		r.keep = func(res *response) { c.store(r, res, gen) }
		if isLive(ctx) {
			live, liveReqs = append(live, i), append(liveReqs, r)
			continue
		}
		if e, found := c.cache.lookup(key, set); found {
			age := max(now.Sub(e.Stored), 0)
			switch {
			case age < pol.TTL:
				if res, err := c.cachedResponse(r, key, e); err == nil {
					out[i] = res
					c.note(ctx, age, true, false)
					continue
				}
			case age < pol.TTL+pol.StaleWhileRevalidate:
				if res, err := c.cachedResponse(r, key, e); err == nil {
					out[i] = res
					c.note(ctx, age, true, true)
					c.revalidate(r)
					continue
				}
			case age < pol.TTL+pol.StaleIfError:
				stale[i] = e
			default:
				c.cache.store.Delete(key)
			}
		}
		r.missedAt = kept + 1
		live, liveReqs = append(live, i), append(liveReqs, r)
	}
	if len(live) == 0 {
		return out, errs
	}
	res, lerrs := c.sendLive(ctx, liveReqs...)
	var again []int // missed the cache while an identical read stored its answer: look again
	for j, i := range live {
		if errors.Is(lerrs[j], errLookAgain) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		areqs := make([]*request, len(again))
		for k, i := range again {
			areqs[k] = reqs[i]
		}
		ares, aerrs := c.sendAll(ctx, areqs...)
		for k, i := range again {
			out[i], errs[i] = ares[k], aerrs[k]
		}
	}
	for j, i := range live {
		r := reqs[i]
		if errors.Is(lerrs[j], errLookAgain) {
			continue // answered above
		}
		if _, ok := c.cacheable(r); !ok {
			out[i], errs[i] = res[j], lerrs[j]
			continue
		}
		if lerrs[j] == nil { // stored by r.keep as it arrived
			out[i] = res[j]
			c.note(ctx, 0, false, false)
			continue
		}
		if e, ok := stale[i]; ok && staleAllowed(lerrs[j]) {
			// its age now, after the failed attempt: never past the stale-if-error bound
			pol, _ := c.cacheable(r)
			if age := max(c.cache.now().Sub(e.Stored), 0); age < pol.TTL+pol.StaleIfError {
				if cr, err := c.cachedResponse(r, r.key(), e); err == nil {
					out[i] = cr
					c.note(ctx, age, true, true)
					continue
				}
			}
		}
		errs[i] = lerrs[j]
	}
	return out, errs
}

// store keeps a live answer, unless its set was invalidated since the read
// started (the answer may predate the change).
func (c *Client) store(r *request, res *response, gen uint64) {
	set := setOf(r.path)
	if c.cache.gen(set) != gen {
		return
	}
	c.cache.store.Set(r.key(), CacheEntry{Set: set, Body: res.body, Stored: c.cache.now(), Gen: gen, Val: res.val})
}

// refreshTimeout bounds a background refresh.
const refreshTimeout = 30 * time.Second

// refreshCaller is the scheduler's caller key of background refreshes. They
// are background calls (a stale answer is being served meanwhile): they yield
// to users' reads until they have waited a while, then take their turn like one
// more user.
const refreshCaller = "erpgraph:cache-refresh"

// maxRefreshes bounds the background refreshes running at once. They all
// wait their turn as one caller of the session, so more would only wait
// longer; past the bound a stale answer is still served and its key is
// refreshed by a later read (or read live once its stale window ends).
const maxRefreshes = 16

// revalidate refreshes r's entry in the background (r.keep stores the
// answer), once per key at a time and at most maxRefreshes at once.
func (c *Client) revalidate(r *request) {
	key := r.key()
	c.cache.mu.Lock()
	if c.cache.refreshing[key] {
		c.cache.mu.Unlock()
		return
	}
	if len(c.cache.refreshing) >= maxRefreshes {
		c.cache.mu.Unlock()
		c.stats.cacheRefreshesSkipped.Add(1)
		return
	}
	c.cache.refreshing[key] = true
	c.cache.mu.Unlock()
	c.stats.cacheRefreshes.Add(1)
	go func() {
		defer func() {
			c.cache.mu.Lock()
			delete(c.cache.refreshing, key)
			c.cache.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(WithBackground(WithCaller(c.sched.ctx, refreshCaller)), refreshTimeout)
		defer cancel()
		c.sendLive(ctx, r)
	}()
}

// NewMemoryCache returns an in-process CacheStore bounded to maxBytes of
// what its entries really hold. It keeps an answer decoded (Val) and drops
// its Body, so a hit costs no decoding; each entry is weighed when stored
// by walking its decoded value (structs, slices, maps, strings, in the
// runtime's allocation sizes), plus the decoder's copy of the body that the
// value's strings point into, the key, and the entry's bookkeeping. It is
// built on otter: its byte weigher bounds memory, not entry count, and its
// W-TinyLFU eviction keeps entries that are used often over ones read once
// (a plain LRU would let one user's long paging scan flush everyone's
// dashboard).
func NewMemoryCache(maxBytes int64) *MemoryCache {
	maxBytes = max(maxBytes, 1)
	return &MemoryCache{bound: maxBytes, c: otter.Must(&otter.Options[string, memoryEntry]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, e memoryEntry) uint32 { return e.weight },
	})}
}

// MemoryCache is the in-process CacheStore (see NewMemoryCache).
type MemoryCache struct {
	bound int64
	c     *otter.Cache[string, memoryEntry]
}

type memoryEntry struct {
	e      CacheEntry
	weight uint32
}

// entryOverhead is what one entry costs besides its key and answer: otter's
// node, its hash-table slot and the policy's bookkeeping, and the
// CacheEntry itself (measured with MemoryCache's heap test).
const entryOverhead = 256

// weigh returns what keeping e under key costs, and e as the store keeps it.
func weigh(key string, e CacheEntry) (CacheEntry, int64) {
	n := allocSize(int64(len(key))) + entryOverhead
	if e.Val != nil {
		// the decoder copies the body once and the decoded strings point into that copy
		n += heapSize(e.Val) + allocSize(int64(len(e.Body))+1)
		e.Body = nil
	} else {
		n += allocSize(int64(cap(e.Body)))
	}
	return e, n
}

// Get returns key's entry.
func (m *MemoryCache) Get(key string) (CacheEntry, bool) {
	me, ok := m.c.GetIfPresent(key)
	return me.e, ok
}

// Set stores e under key (an entry larger than the whole bound is not kept).
func (m *MemoryCache) Set(key string, e CacheEntry) {
	e, n := weigh(key, e)
	if n > m.bound {
		m.c.Invalidate(key)
		return
	}
	m.c.Set(key, memoryEntry{e: e, weight: uint32(min(n, math.MaxUint32))})
}

// Delete drops key's entry.
func (m *MemoryCache) Delete(key string) { m.c.Invalidate(key) }

// MemoryCacheStats is what a MemoryCache holds.
type MemoryCacheStats struct {
	Entries int   // entries held
	Bytes   int64 // their accounted size: what they keep alive on the heap
	Bound   int64 // the configured bound (NewMemoryCache's maxBytes)
}

// Stats reports what m holds; Bytes stays within Bound.
func (m *MemoryCache) Stats() MemoryCacheStats {
	m.c.CleanUp() // apply pending evictions, so the figures are current
	return MemoryCacheStats{Entries: m.c.EstimatedSize(), Bytes: int64(m.c.WeightedSize()), Bound: m.bound}
}

// FreshnessFrom returns the Freshness that WithFreshness put in ctx.
func FreshnessFrom(ctx context.Context) (*Freshness, bool) {
	f, ok := ctx.Value(freshnessKey{}).(*Freshness)
	return f, ok
}
