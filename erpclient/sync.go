package erpclient

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Sync keeps a copy of the reference sets (products, groups, units,
// currencies, stores) fresh in the background, by ERP.net's incremental
// pull (v26.2+, docs.erp.net domain-api/data-sync/incremental-pull): a full
// initial pull with paging, then at every interval the rows whose
// AggregateLastUpdateTimeUtc is at or after the watermark minus an overlap.
// The watermark moves only after a page has been processed. On older
// instances, which lack the property, every interval pulls the sets in
// full instead (mode "ttl"). When a set changes, Sync drops the read
// cache's entries of that set, so the long reference TTL never hides a
// change longer than one interval.
//
// A deleted row has no AggregateLastUpdateTimeUtc to be pulled by, and
// ERP.net documents no deletion feed for the Domain API's incremental pull.
// So in incremental mode Sync also reconciles every ReconcileInterval: it
// lists each set's keys only ($select=Id, paged like any pull) and drops
// the rows ERP.net no longer has.
//
// Its requests are background calls (they yield to every interactive read)
// and take at most SyncConfig.BudgetShare of the session's requests per
// minute.
type Sync struct {
	c   *Client
	cfg SyncConfig
	lim *rate.Limiter
	log *slog.Logger

	sets []syncer

	mu        sync.Mutex
	mode      SyncMode
	ready     bool // every set pulled in full once
	lastErr   error
	lastRound time.Time
	requests  int64
	deleted   int64     // rows dropped because ERP.net no longer has them
	reconcile time.Time // when the last reconcile of every set finished (incremental mode)
	done      chan struct{}
}

// SyncMode says how Sync keeps reference data fresh.
type SyncMode string

const (
	// SyncIncremental pulls the rows changed since the watermark (ERP.net v26.2+).
	SyncIncremental SyncMode = "incremental"
	// SyncTTL pulls every set in full at every interval (instances without AggregateLastUpdateTimeUtc).
	SyncTTL SyncMode = "ttl"
)

// SyncConfig configures a Sync.
type SyncConfig struct {
	Interval    time.Duration // between pulls; default 30s
	Overlap     time.Duration // subtracted from the watermark; default 2m (clock skew, commits in flight)
	PageSize    int           // rows per page; default 500 (ERP.net recommends at most 1000)
	BudgetShare float64       // share of the session's requests per minute, 0 < share <= 1; default 0.1
	// ReconcileInterval is how often, in incremental mode, the sync lists
	// every set's keys to drop rows deleted in ERP.net; default 10m.
	ReconcileInterval time.Duration
	Logger            *slog.Logger
}

// Defaults of SyncConfig.
const (
	DefaultSyncInterval    = 30 * time.Second
	DefaultSyncOverlap     = 2 * time.Minute
	DefaultSyncPageSize    = 500
	DefaultSyncBudgetShare = 0.1
	DefaultSyncReconcile   = 10 * time.Minute
)

// reconcilePageSize is the page of a key-only reconcile: ERP.net's
// recommended largest page for sync; an Id-only row is small.
const reconcilePageSize = 1000

// SyncStatus is the sync's state, for readiness.
type SyncStatus struct {
	Mode      SyncMode  // "" until the first pull tells which mode the instance allows
	Ready     bool      // the first full pull of every set finished
	LastRound time.Time // when the last complete round ended
	LastError string    // the last round's failure, if any
	Requests  int64     // upstream requests made
	Deleted   int64     // rows dropped because ERP.net no longer has them
	// LastReconcile is when the last key-only pull of every set ended
	// (incremental mode; full pulls drop deleted rows themselves).
	LastReconcile time.Time
}

// aggregateStamp is ERP.net's incremental-sync property (v26.2+).
const aggregateStamp = "AggregateLastUpdateTimeUtc"

// syncer is one synchronized set.
type syncer interface {
	name() string
	pull(ctx context.Context, s *Sync, full bool) (changed bool, err error)
	reconcile(ctx context.Context, s *Sync) error
	lookup(id string) (any, bool)
}

// SyncSet describes a set to keep: its entity set, the properties its rows
// are read with (besides Id), and its rows' type T.
type SyncSet struct{ s syncer }

// SyncOf declares set to be synchronized as rows of T read with props.
// Lookups answer *T.
func SyncOf[T any](set string, props []string, id func(*T) string) SyncSet {
	return SyncSet{&syncedSet[T]{set: set, props: props, id: id, rows: map[string]*T{}}}
}

// NewSync prepares the sync of sets; Run runs it.
func NewSync(c *Client, cfg SyncConfig, sets ...SyncSet) *Sync {
	cfg.Interval = cmp.Or(cfg.Interval, DefaultSyncInterval)
	cfg.Overlap = cmp.Or(cfg.Overlap, DefaultSyncOverlap)
	cfg.PageSize = cmp.Or(cfg.PageSize, DefaultSyncPageSize)
	cfg.ReconcileInterval = cmp.Or(cfg.ReconcileInterval, DefaultSyncReconcile)
	if cfg.BudgetShare <= 0 || cfg.BudgetShare > 1 {
		cfg.BudgetShare = DefaultSyncBudgetShare
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log
	}
	perSecond := float64(c.sched.cfg.RequestsPerMinute) * cfg.BudgetShare / 60
	s := &Sync{c: c, cfg: cfg, lim: rate.NewLimiter(rate.Limit(perSecond), 1), log: cfg.Logger, done: make(chan struct{})}
	for _, set := range sets {
		s.sets = append(s.sets, set.s)
	}
	return s
}

// Run pulls until ctx ends: the sets in turn, then a pause of Interval.
func (s *Sync) Run(ctx context.Context) {
	defer close(s.done)
	ctx = WithCaller(WithBackground(ctx), "erpgraph:reference-sync")
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.round(ctx)
		t.Reset(s.cfg.Interval)
	}
}

// Done is closed when Run has returned.
func (s *Sync) Done() <-chan struct{} { return s.done }

// round pulls every set once; a set that fails is tried again next round.
func (s *Sync) round(ctx context.Context) {
	s.mu.Lock()
	full := !s.ready || s.mode == SyncTTL
	// a full pull drops deleted rows itself; an incremental one needs the keys now and then
	reconcile := !full && time.Since(s.reconcile) >= s.cfg.ReconcileInterval
	s.mu.Unlock()
	var errs []error
	for _, set := range s.sets {
		_, err := set.pull(ctx, s, full)
		if err == nil && reconcile {
			err = set.reconcile(ctx, s)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			errs = append(errs, fmt.Errorf("%s: %w", set.name(), err))
		}
	}
	err := errors.Join(errs...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastErr = err
	if err == nil {
		s.ready = true
		s.lastRound = time.Now()
		if full || reconcile {
			s.reconcile = s.lastRound
		}
	} else {
		s.log.LogAttrs(ctx, slog.LevelWarn, "reference sync round failed; trying again next interval", slog.String("error", err.Error()))
	}
}

// Status reports the sync's state.
func (s *Sync) Status() SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SyncStatus{Mode: s.mode, Ready: s.ready, LastRound: s.lastRound, Requests: s.requests, Deleted: s.deleted}
	if s.mode == SyncIncremental {
		st.LastReconcile = s.reconcile
	}
	if s.lastErr != nil {
		st.LastError = s.lastErr.Error()
	}
	return st
}

// Lookup returns the synchronized row of set with id (a *T of its SyncOf).
// ok is false while the set is not synchronized (before the first full
// pull, or a set Sync does not keep): the caller reads ERP.net instead.
func (s *Sync) Lookup(set, id string) (row any, found, ok bool) {
	if s == nil {
		return nil, false, false
	}
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if !ready {
		return nil, false, false
	}
	for _, ss := range s.sets {
		if ss.name() == set {
			row, found = ss.lookup(id)
			return row, found, true
		}
	}
	return nil, false, false
}

// page reads one page within the budget, as a background call that the
// read cache never answers.
func (s *Sync) page(ctx context.Context, q Query, into func(body []byte) (any, error)) (any, error) {
	if err := s.lim.Wait(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	v, err := q.Build()
	if err != nil {
		return nil, err
	}
	res, err := s.c.send(ctx, &request{method: "GET", path: q.Set, query: encodeQuery(v), op: "sync " + q.Set,
		read: true, noCache: true, kind: "sync", decode: into})
	if err != nil {
		return nil, err
	}
	return res.val, nil
}

// setMode records the mode the instance allows (once, at the first pull).
func (s *Sync) setMode(m SyncMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode != m {
		s.mode = m
		s.log.Info("reference sync mode", "mode", string(m))
	}
}

func (s *Sync) currentMode() SyncMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// syncedSet is the copy of one set.
type syncedSet[T any] struct {
	set   string
	props []string
	id    func(*T) string

	mu        sync.RWMutex
	rows      map[string]*T
	watermark time.Time // highest AggregateLastUpdateTimeUtc processed
}

func (ss *syncedSet[T]) name() string { return ss.set }

func (ss *syncedSet[T]) lookup(id string) (any, bool) {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	r, ok := ss.rows[id]
	return r, ok
}

// stamped is a row with its AggregateLastUpdateTimeUtc.
type stamped[T any] struct {
	row   T
	stamp time.Time
}

func (r *stamped[T]) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &r.row); err != nil {
		return err
	}
	afterDecode(&r.row)
	var s struct {
		Stamp DateTime `json:"AggregateLastUpdateTimeUtc"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	r.stamp = s.Stamp.Time()
	return nil
}

// pull reads the set (in full, or what changed since the watermark) page by
// page and upserts the rows; a full pull also drops rows ERP.net no longer has.
func (ss *syncedSet[T]) pull(ctx context.Context, s *Sync, full bool) (changed bool, err error) {
	mode := s.currentMode()
	q := Query{Set: ss.set, Select: ss.props, Top: s.cfg.PageSize, Unscoped: true}
	if mode != SyncTTL {
		q.Select = append(append([]string(nil), ss.props...), aggregateStamp)
	}
	ss.mu.RLock()
	wm := ss.watermark
	ss.mu.RUnlock()
	if !full && !wm.IsZero() {
		q.Filter = Ge(aggregateStamp, DateTime(wm.Add(-s.cfg.Overlap)))
	}
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages == maxAllPages {
			return changed, fmt.Errorf("more than %d pages", maxAllPages)
		}
		v, err := s.page(ctx, q, func(body []byte) (any, error) { return decodePage[stamped[T]](s.c, ss.set, body) })
		if err != nil && mode == "" && pages == 0 && refusedProperty(err) {
			// an instance older than v26.2: no AggregateLastUpdateTimeUtc
			s.setMode(SyncTTL)
			return ss.pull(ctx, s, true)
		}
		if err != nil {
			return changed, err
		}
		if mode == "" {
			mode = SyncIncremental
			s.setMode(mode)
		}
		p := v.(Page[stamped[T]])
		ss.mu.Lock()
		for i := range p.Items {
			r := &p.Items[i]
			id := ss.id(&r.row)
			seen[id] = true
			if old, ok := ss.rows[id]; !ok || !reflect.DeepEqual(*old, r.row) {
				row := r.row
				ss.rows[id] = &row
				changed = true
			}
			if r.stamp.After(ss.watermark) {
				ss.watermark = r.stamp // kept only now that the page is processed
			}
		}
		if changed {
			// before the new rows can be looked up: nobody sees them while the cache still serves the old
			s.c.Invalidate(ss.set)
		}
		ss.mu.Unlock()
		if p.Next == nil {
			break
		}
		if q.Cursor != nil && *q.Cursor == *p.Next {
			return changed, fmt.Errorf("paging does not advance")
		}
		q.Cursor = p.Next
	}
	if full && ss.dropUnseen(s, seen) {
		changed = true
	}
	return changed, nil
}

// dropUnseen drops the rows a complete listing did not see (ERP.net deleted
// them) and the read cache's answers of the set; it reports whether any went.
func (ss *syncedSet[T]) dropUnseen(s *Sync, seen map[string]bool) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var gone int64
	for id := range ss.rows {
		if !seen[id] {
			delete(ss.rows, id)
			gone++
		}
	}
	if gone == 0 {
		return false
	}
	s.c.Invalidate(ss.set)
	s.mu.Lock()
	s.deleted += gone
	s.mu.Unlock()
	return true
}

// reconcile lists the set's keys ($select=Id, paged) and drops the rows
// ERP.net no longer has. Only this goroutine changes the rows, so a row
// missing from a complete listing was deleted; a listing that fails part
// way drops nothing.
func (ss *syncedSet[T]) reconcile(ctx context.Context, s *Sync) error {
	q := Query{Set: ss.set, Select: []string{"Id"}, Top: reconcilePageSize, Unscoped: true}
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages == maxAllPages {
			return fmt.Errorf("reconcile: more than %d pages", maxAllPages)
		}
		v, err := s.page(ctx, q, func(body []byte) (any, error) { return decodePage[Entity](s.c, ss.set, body) })
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		p := v.(Page[Entity])
		for _, k := range p.Items {
			seen[k.ID] = true
		}
		if p.Next == nil {
			break
		}
		if q.Cursor != nil && *q.Cursor == *p.Next {
			return fmt.Errorf("reconcile: paging does not advance")
		}
		q.Cursor = p.Next
	}
	ss.dropUnseen(s, seen)
	return nil
}

// refusedProperty reports an answer that refuses the request itself (an
// unknown property), as opposed to an outage or a busy session.
func refusedProperty(err error) bool {
	var e *Error
	return errors.As(err, &e) && !staleAllowed(err) && e.Status >= 400 && e.Status != 401 && e.Status != 403
}
