package app

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/server"
)

// ReadCacheConfig configures erpgraph's shared read cache and the background
// sync of reference data (see the README's "Freshness" section). Zero fields
// take the defaults; a negative duration turns its window off.
type ReadCacheConfig struct {
	// Off sends every read to ERP.net (and stops the sync). ERPGRAPH_CACHE.
	Off bool
	// MaxBytes bounds the cache's memory. ERPGRAPH_CACHE_SIZE; default 64MB.
	MaxBytes int64
	// Documents is the freshness of documents, their lines, customers,
	// parties and stock. ERPGRAPH_CACHE_TTL (5s),
	// ERPGRAPH_CACHE_STALE_WHILE_REVALIDATE (30s),
	// ERPGRAPH_CACHE_STALE_IF_ERROR (5m).
	Documents erpclient.CachePolicy
	// ReferenceTTL is how long reference answers (products, groups, units,
	// currencies, stores) are served before they are read again; the sync
	// drops them sooner when it sees a change. ERPGRAPH_CACHE_REFERENCE_TTL; default 10m.
	ReferenceTTL time.Duration
	// SyncInterval is the pause between the sync's pulls of reference data;
	// negative stops the sync. ERPGRAPH_SYNC_INTERVAL; default 30s.
	SyncInterval time.Duration
	// SyncBudget is the share of the session's requests per minute the sync
	// may use. ERPGRAPH_SYNC_BUDGET; default 0.1.
	SyncBudget float64
	// SyncReconcile is how often the incremental sync lists the reference
	// sets' keys to drop rows deleted in ERP.net. ERPGRAPH_SYNC_RECONCILE; default 10m.
	SyncReconcile time.Duration
}

// DefaultCacheBytes is the default memory bound of the read cache.
const DefaultCacheBytes = 64 << 20

// cacheRows are the registry's rows of the read cache and the sync.
func cacheRows() []setting {
	d := erpclient.DefaultDocumentPolicy
	window := func(p func(*Config) *time.Duration, def time.Duration) field {
		return field{
			parse: func(c *Config, v string) error {
				if b, ok := parseSwitch(v); ok && !b {
					*p(c) = -1
					return nil
				}
				t, err := time.ParseDuration(v)
				switch {
				case err != nil || t < 0:
					return errors.New(`not a duration (like 5s) or "off"`)
				case t == 0:
					t = -1 // 0s: the window is off
				}
				*p(c) = t
				return nil
			},
			show: func(c Config) any {
				if v := *p(&c); v < 0 {
					return "off"
				}
				return cmp.Or(*p(&c), def).String()
			},
		}
	}
	return []setting{
		{env: "ERPGRAPH_CACHE", flag: "cache", def: "on", boolean: true, help: "shared read cache of ERP.net answers, and the sync of reference data (off: every read goes to ERP.net)",
			field: field{parse: func(c *Config, v string) error {
				on, ok := parseSwitch(v)
				if !ok {
					return errors.New("not on/off")
				}
				c.ReadCache.Off = !on
				return nil
			}, show: func(c Config) any { return !c.ReadCache.Off }}},
		{env: "ERPGRAPH_CACHE_SIZE", flag: "cache-size", def: "64MB", help: "memory bound of the read cache (bytes, or with KB/MB/GB)",
			field: field{parse: func(c *Config, v string) (err error) { c.ReadCache.MaxBytes, err = parseBytes(v); return err },
				show: func(c Config) any { return cmp.Or(c.ReadCache.MaxBytes, DefaultCacheBytes) }},
			check: notNegative(func(c Config) bool { return c.ReadCache.MaxBytes < 0 })},
		{env: "ERPGRAPH_CACHE_TTL", flag: "cache-ttl", def: d.TTL.String(), help: `how long answers about documents, customers and stock are served as fresh ("off": not cached)`,
			field: window(func(c *Config) *time.Duration { return &c.ReadCache.Documents.TTL }, d.TTL)},
		{env: "ERPGRAPH_CACHE_STALE_WHILE_REVALIDATE", flag: "cache-stale-while-revalidate", def: d.StaleWhileRevalidate.String(), help: `after the TTL: served at once while one background read refreshes them ("off")`,
			field: window(func(c *Config) *time.Duration { return &c.ReadCache.Documents.StaleWhileRevalidate }, d.StaleWhileRevalidate)},
		{env: "ERPGRAPH_CACHE_STALE_IF_ERROR", flag: "cache-stale-if-error", def: d.StaleIfError.String(), help: `after the TTL: served when ERP.net fails or the session is overloaded ("off")`,
			field: window(func(c *Config) *time.Duration { return &c.ReadCache.Documents.StaleIfError }, d.StaleIfError)},
		{env: "ERPGRAPH_CACHE_REFERENCE_TTL", flag: "cache-reference-ttl", def: erpclient.DefaultReferencePolicy.TTL.String(), help: "longest reference data (products, groups, units, currencies, stores) is served; the sync drops it sooner on a change",
			field: duration(func(c *Config) *time.Duration { return &c.ReadCache.ReferenceTTL }, erpclient.DefaultReferencePolicy.TTL)},
		{env: "ERPGRAPH_SYNC_INTERVAL", flag: "sync-interval", def: erpclient.DefaultSyncInterval.String(), help: `pause between background pulls of reference data ("off" stops the sync)`,
			field: window(func(c *Config) *time.Duration { return &c.ReadCache.SyncInterval }, erpclient.DefaultSyncInterval)},
		{env: "ERPGRAPH_SYNC_RECONCILE", flag: "sync-reconcile", def: erpclient.DefaultSyncReconcile.String(), help: "how often the incremental sync lists the reference sets' keys (Id only) to drop rows deleted in ERP.net",
			field: duration(func(c *Config) *time.Duration { return &c.ReadCache.SyncReconcile }, erpclient.DefaultSyncReconcile)},
		{env: "ERPGRAPH_SYNC_BUDGET", flag: "sync-budget", def: strconv.FormatFloat(erpclient.DefaultSyncBudgetShare, 'f', -1, 64), help: "share of the session's requests per minute the sync may use (0 < share <= 1)",
			field: field{parse: func(c *Config, v string) error {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f <= 0 || f > 1 {
					return errors.New("not a share between 0 and 1 (like 0.1)")
				}
				c.ReadCache.SyncBudget = f
				return nil
			}, show: func(c Config) any { return cmp.Or(c.ReadCache.SyncBudget, erpclient.DefaultSyncBudgetShare) }},
			check: func(c Config, _ *loaded) error {
				if b := c.ReadCache.SyncBudget; b < 0 || b > 1 {
					return errors.New("must be a share between 0 and 1")
				}
				return nil
			}},
	}
}

// parseBytes reads 1048576, 512KB, 64MB or 1GB (powers of 1024).
func parseBytes(s string) (int64, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, suf := range []struct {
		s string
		m int64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(u, suf.s) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, suf.s)), suf.m
			break
		}
	}
	n, err := strconv.ParseInt(u, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("not a size")
	}
	return n * mult, nil
}

// cacheConfig is erpclient's read cache as configured.
func (rc ReadCacheConfig) cacheConfig() erpclient.CacheConfig {
	if rc.Off {
		return erpclient.CacheConfig{}
	}
	// zero takes the default, negative is off
	or := func(v, def time.Duration) time.Duration { return max(cmp.Or(v, def), 0) }
	d := erpclient.DefaultDocumentPolicy
	docs := erpclient.CachePolicy{TTL: or(rc.Documents.TTL, d.TTL),
		StaleWhileRevalidate: or(rc.Documents.StaleWhileRevalidate, d.StaleWhileRevalidate),
		StaleIfError:         or(rc.Documents.StaleIfError, d.StaleIfError)}
	ref := erpclient.DefaultReferencePolicy
	ref.TTL = or(rc.ReferenceTTL, ref.TTL)
	return erpclient.CacheConfig{Store: erpclient.NewMemoryCache(cmp.Or(rc.MaxBytes, DefaultCacheBytes)), Documents: docs, Reference: ref}
}

// syncConfig is the reference sync as configured; ok is false when it is off.
func (rc ReadCacheConfig) syncConfig() (cfg erpclient.SyncConfig, ok bool) {
	if rc.Off || rc.SyncInterval < 0 {
		return cfg, false
	}
	return erpclient.SyncConfig{Interval: rc.SyncInterval, BudgetShare: rc.SyncBudget, ReconcileInterval: rc.SyncReconcile}, true
}

// syncComponent is the reference sync's part of the readiness report: its
// mode (incremental on AggregateLastUpdateTimeUtc, or ttl on instances
// before v26.2) and whether the first full pull finished. Until it has,
// reference data is read from ERP.net as needed: degraded, not down.
func syncComponent(s *erpclient.Sync) server.Component {
	if s == nil {
		return server.Component{Status: server.StatusOK, Detail: "off: reference data is read from ERP.net as needed (through the read cache)"}
	}
	st := s.Status()
	mode := "mode " + string(st.Mode)
	switch st.Mode {
	case erpclient.SyncIncremental:
		mode += " (AggregateLastUpdateTimeUtc)"
	case erpclient.SyncTTL:
		mode += " (the instance predates ERP.net v26.2: full pulls at every interval)"
	case "":
		mode = "mode not known yet"
	}
	switch {
	case !st.Ready && st.LastError != "":
		return server.Component{Status: server.StatusDegraded, Detail: "first sync of reference data not finished, last round failed; " + mode}
	case !st.Ready:
		return server.Component{Status: server.StatusDegraded, Detail: "first sync of reference data running; " + mode}
	case st.LastError != "":
		return server.Component{Status: server.StatusDegraded, Detail: "first sync finished, the last round failed (serving the copy); " + mode}
	}
	return server.Component{Status: server.StatusOK, Detail: "first sync finished; " + mode}
}
