package erpclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// The scheduler is the only way to the Domain API. ERP.net gives a service
// session one request in flight and 600 per minute (docs/erpnet.md § Session limits); callers
// queue here instead of there. Whenever a slot is free and the rate allows,
// the dispatcher takes the waiting calls: identical GETs become one part,
// distinct GETs (up to MaxBatchParts) become one multipart $batch (a single
// waiting GET goes out plain), and a write goes alone. A 429/503 with
// Retry-After pauses dispatch for everyone.

type callState int

const (
	queued callState = iota
	running
	left
)

// call is one caller waiting for one request.
type call struct {
	req      *request
	queuedAt time.Time // for Stats.QueueWait
	deadline time.Time // MaxWait after it was queued
	ctxEnd   time.Time // the caller's own deadline; zero when none
	ctx      context.Context
	caller   string        // WithCaller's key; "" = the shared anonymous caller
	cont     bool          // a later call of an operation already admitted (WithOperation): it goes out first
	op       *operation    // WithOperation's; nil: the call is on its own
	priority bool          // a write, or a call made WithPriority: served ahead of other reads (see takeLocked)
	estimate time.Duration // the queue wait admission estimated for it (0: not estimated)
	counter  *atomic.Int64 // CountUpstream's counter; nil = nobody counts
	// background calls (WithBackground) go only when no interactive call
	// waits, or once they have waited backgroundAging
	background bool
	done       chan struct{}
	res        *response
	err        error
	state      callState // guarded by scheduler.mu
	unit       *unit     // set when running
	dispatched time.Time // when it went out (guarded by scheduler.mu); for its span
	shared     bool      // it joined an identical GET in flight
}

// part is one upstream operation shared by the calls with the same key.
type part struct {
	req   *request
	calls []*call
	unit  *unit
}

// unit is one upstream HTTP request: a plain request or a $batch.
type unit struct {
	parts     []*part
	waiters   int // calls still interested; at 0 the request is cancelled
	ctx       context.Context
	cancel    context.CancelFunc
	attempt   time.Duration // the attempt timeout of ctx
	probe     bool          // the half-open breaker's test request
	slow      bool          // ran past SlowAfter and gave its slot up (guarded by scheduler.mu)
	slowTimer *time.Timer   // calls release after SlowAfter
	done      bool          // answered (guarded by scheduler.mu)
	sent      atomic.Int32  // HTTP requests made for it (a 401 repeat is a second one)
	started   time.Time     // when it was dispatched
}

// sentKey carries unit.sent in the unit's context to exchange.
type sentKey struct{}

type scheduler struct {
	// kept counts the reads whose answer request.keep stored and that identical reads can no longer join;
	// changed only under mu. A read that missed the cache before it changed looks again (errLookAgain).
	kept atomic.Uint64

	cfg     SchedulerConfig
	c       *Client
	limiter *rate.Limiter
	ctx     context.Context
	wake    chan struct{}

	mu          sync.Mutex
	queue       []*call
	ring        []string // callers with waiting calls, in round-robin order (see takeLocked)
	inflight    int      // requests holding a slot
	slow        int      // requests in flight that gave their slot up (at most maxSlow)
	pausedUntil time.Time
	lastFirst   bool             // the last request taken was led by a priority call (see takeLocked)
	active      map[string]*part // GETs in flight by key: identical calls join them
	closed      bool
	breaker     breaker
	took        time.Duration // moving average of how long an upstream request takes (see estimateLocked)
	gap         time.Duration // moving average of the time between dispatches while calls kept waiting
	lastSent    time.Time     // the last dispatch
	backlog     bool          // calls were left waiting at the last dispatch
	perDispatch float64       // moving average of the calls a dispatch takes when it cannot take them all
	// what admission learns about operations (WithOperation): later calls per first call, decayed sums
	// (contRatioLocked); the operations whose first call went out and that have not ended, and the later calls
	// they made so far (pendingLocked)
	contCalls, firstCalls float64
	opsOut, contsOut      int
	slip                  float64 // moving average of real over estimated queue wait (learnLocked); 0: none yet
}

// learnLocked corrects admission by what happened: how much longer (or shorter) than estimated the calls of one
// dispatch really waited. What the estimate cannot see goes in here: calls that arrived later and went first,
// operations' later calls beyond the usual number, a session that slowed down. Estimates under minLearn are left
// out: at that scale the error is the noise of one dispatch, not the queue.
func (s *scheduler) learnLocked(calls []*call, now time.Time) {
	var sum float64
	n := 0
	for _, cl := range calls {
		if cl.estimate < minLearn {
			continue
		}
		sum += float64(now.Sub(cl.queuedAt)) / float64(cl.estimate)
		n++
	}
	if n == 0 {
		return
	}
	r := min(max(sum/float64(n), minSlip), maxSlip)
	if s.slip == 0 {
		s.slip = r
	} else {
		s.slip += (r - s.slip) / 8
	}
}

// Bounds of what learnLocked may conclude.
const (
	minLearn = 250 * time.Millisecond
	minSlip  = 0.5 // an estimate that was too long by half still stands for half
	maxSlip  = 2   // a slower session than estimated by more than 2× is a CPU-starved process: refusing on it sheds what would have made it
)

// timeDispatchLocked measures the dispatch rate the session really sustains while calls wait: between two
// dispatches with a backlog, everything counts (the request, the rate limit, building the $batch, a busy CPU);
// and how many calls a dispatch takes when calls are left waiting after it (a full $batch, plus the calls that
// shared its parts).
func (s *scheduler) timeDispatchLocked(now time.Time, taken int) {
	if s.backlog {
		d := now.Sub(s.lastSent)
		if s.gap == 0 {
			s.gap = d
		} else {
			s.gap += (d - s.gap) / 8
		}
	}
	s.lastSent, s.backlog = now, len(s.queue) > 0
	if s.backlog && taken > 0 {
		if s.perDispatch == 0 {
			s.perDispatch = float64(taken)
		} else {
			s.perDispatch += (float64(taken) - s.perDispatch) / 8
		}
	}
}

// countLocked records what kind of calls an operation submits, for contRatioLocked.
func (s *scheduler) countLocked(n int, cont bool) {
	const decay = 0.995 // the last few hundred submissions count
	s.contCalls *= decay
	s.firstCalls *= decay
	if cont {
		s.contCalls += float64(n)
	} else {
		s.firstCalls += float64(n)
	}
}

// contRatioLocked is how many later calls an operation has made per first call lately: a first call admitted
// now will be followed by about that many, and they go out ahead of the first calls queued behind it. Operations
// answered from the read cache make fewer; the ratio follows.
func (s *scheduler) contRatioLocked() float64 {
	if s.firstCalls < 1 {
		return 0
	}
	return min(s.contCalls/s.firstCalls, maxContRatio)
}

// maxContRatio bounds contRatioLocked (a GraphQL operation's levels).
const maxContRatio = 10

// outLocked counts op among the operations under way once its first call is dispatched, until its context ends
// (the GraphQL request is answered).
func (s *scheduler) outLocked(op *operation, ctx context.Context) {
	if op.out {
		return
	}
	op.out = true
	s.opsOut++
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !op.ended {
			op.ended = true
			s.opsOut--
			s.contsOut -= op.conts
		}
	})
}

// pendingLocked estimates the later calls that the operations under way will still make: as many per
// operation as operations have made lately (contRatioLocked), less those they already made. They go out ahead
// of every first call queued now, whether the operation is waiting for an answer or working on one.
func (s *scheduler) pendingLocked() int {
	return max(0, int(math.Ceil(float64(s.opsOut)*s.contRatioLocked()))-s.contsOut)
}

// backgroundAging is how long a background call yields to interactive ones
// before it takes its turn among them.
const backgroundAging = time.Second

// defaultPause applies to a 429/503 without Retry-After.
const defaultPause = time.Second

func newScheduler(ctx context.Context, cfg SchedulerConfig, c *Client, now func() time.Time) *scheduler {
	rpm := cfg.RequestsPerMinute
	// burst of one second's worth: in any minute at most rpm + rpm/60 requests,
	// which the default 540 keeps below ERP.net's 600
	burst := max(1, rpm/60)
	s := &scheduler{
		cfg:     cfg,
		c:       c,
		limiter: rate.NewLimiter(rate.Limit(float64(rpm)/60), burst),
		ctx:     ctx,
		wake:    make(chan struct{}, 1),
		active:  make(map[string]*part),
		breaker: breaker{threshold: cfg.BreakerThreshold, cooldown: cfg.BreakerCooldown, now: now, state: BreakerClosed},
	}
	go s.loop()
	return s
}

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) load() (queued, inflight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), s.inflight + s.slow
}

// submit queues requests together (one lock section, so the dispatcher
// takes them in the same round: ByIDs chunks share a $batch) and waits for
// all their answers, the caller's ctx, or MaxWait.
func (s *scheduler) submit(ctx context.Context, reqs ...*request) ([]*response, []error) {
	res, errs := make([]*response, len(reqs)), make([]error, len(reqs))
	fail := func(err error) ([]*response, []error) {
		traceRefused(ctx, err)
		for i := range errs {
			errs[i] = err
		}
		return res, errs
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	calls := make([]*call, len(reqs))
	queuedAt := time.Now()
	deadline := queuedAt.Add(s.cfg.MaxWait)
	ctxEnd, _ := ctx.Deadline()
	who, counter, priority := callerOf(ctx), counterOf(ctx), priorityOf(ctx)
	op := operationOf(ctx)
	cont := op != nil && op.admitted.Load()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fail(ErrClosed)
	}
	refused, t := s.breaker.admitLocked()
	if refused != nil {
		s.mu.Unlock()
		s.c.stats.circuitRefused.Add(int64(len(reqs)))
		return fail(refused)
	}
	if t != nil {
		defer s.c.logTransition(t)
	}
	if wait := time.Until(s.pausedUntil); wait > 0 {
		// ERP.net asked the session to wait; a caller that cannot wait that
		// long learns it now rather than at its deadline
		if dl, ok := ctx.Deadline(); ok && dl.Before(s.pausedUntil) {
			s.mu.Unlock()
			s.c.stats.queueFull.Add(1)
			return fail(busy(wait, "ERP.net asked to pause for %s", wait.Round(time.Millisecond)))
		}
	}
	if n := len(s.queue); n+len(reqs) > s.cfg.MaxQueue {
		s.mu.Unlock()
		s.c.stats.queueFull.Add(1)
		return fail(busy(s.drainTimeLocked(n), "%d calls are already waiting", n))
	}
	if who != "" && s.cfg.MaxQueuePerCaller > 0 {
		if n := s.waitingLocked(who); n+len(reqs) > s.cfg.MaxQueuePerCaller {
			s.mu.Unlock()
			s.c.stats.queueFull.Add(1)
			return fail(busy(s.drainTimeLocked(n), "this caller already has %d calls waiting", n))
		}
	}
	var estimate time.Duration
	background := isBackground(ctx)
	if s.needsQueueLocked(reqs) && !priority && !anyWrite(reqs) {
		// Admission: a call that would wait longer than its deadline (or MaxWait) allows is refused now, with
		// when to come back, instead of failing at its deadline after holding a place in the queue.
		// A call without a deadline is only bounded by MaxWait, after the fact: an estimate must not refuse
		// what might have made it.
		dispatch, done, later := s.estimateLocked(who, cont, background)
		estimate = dispatch
		left := time.Until(ctxEnd)
		if op != nil && !cont {
			// an operation's first call leaves its later calls twice the time they are estimated to need,
			// and at least a quarter of the operation's time
			left -= max(2*later, left/4)
		}
		if !ctxEnd.IsZero() && (dispatch > s.cfg.MaxWait || done > left) {
			s.mu.Unlock()
			s.c.stats.queueFull.Add(1)
			s.c.stats.admissionRefused.Add(int64(len(reqs)))
			// come back when the queue will have drained enough for the call to fit
			return fail(busy(max(dispatch-s.cfg.MaxWait, done-left), "the ERP.net session needs about %s to answer, the call can wait %s",
				done.Round(time.Millisecond), max(min(left, s.cfg.MaxWait), 0).Round(time.Millisecond)))
		}
	}
	if op != nil && !priority && !background {
		s.countLocked(len(reqs), cont)
		if cont && op.out && !op.ended {
			op.conts += len(reqs)
			s.contsOut += len(reqs)
		}
	}
	joined := 0
	for i, req := range reqs {
		cl := &call{req: req, done: make(chan struct{}), queuedAt: queuedAt, deadline: deadline, ctxEnd: ctxEnd, ctx: ctx, caller: who, counter: counter, cont: cont,
			op: op, priority: priority || req.key() == "", estimate: estimate, background: background}
		calls[i] = cl
		if p := s.active[req.key()]; p != nil && req.key() != "" {
			// the same GET is in flight: share its answer
			p.calls = append(p.calls, cl)
			cl.state, cl.unit, cl.dispatched, cl.shared = running, p.unit, queuedAt, true
			p.unit.waiters++
			joined++
			continue
		}
		if req.missedAt != 0 && s.kept.Load() != req.missedAt-1 {
			// an identical read may have stored its answer after this one missed the cache and left before
			// it came here: the caller looks at the cache again rather than sending the read twice
			cl.state, cl.err = left, errLookAgain
			close(cl.done)
			continue
		}
		s.queue = append(s.queue, cl)
	}
	s.mu.Unlock()
	if op != nil {
		op.admitted.Store(true)
	}
	s.c.stats.coalesced.Add(int64(joined))
	s.signal()
	for i, cl := range calls {
		res[i], errs[i] = s.wait(ctx, cl)
		traceWaited(ctx, cl, errs[i])
		if errors.Is(errs[i], ctx.Err()) && ctx.Err() != nil {
			for _, rest := range calls[i+1:] {
				s.leave(rest)
			}
			for j := i + 1; j < len(calls); j++ {
				errs[j] = ctx.Err()
			}
			break
		}
	}
	return res, errs
}

func (s *scheduler) wait(ctx context.Context, cl *call) (*response, error) {
	timer := time.NewTimer(time.Until(cl.deadline))
	defer timer.Stop()
	timeout := timer.C
	for {
		select {
		case <-cl.done:
			return cl.res, cl.err
		case <-ctx.Done():
			s.leave(cl)
			return nil, ctx.Err()
		case <-timeout:
			s.mu.Lock()
			if cl.state == queued {
				s.removeLocked(cl)
				cl.state = left
				s.mu.Unlock()
				s.c.stats.queueFull.Add(1)
				return nil, busy(time.Second, "waited %s for the ERP.net session", s.cfg.MaxWait)
			}
			s.mu.Unlock()
			timeout = nil // dispatched: the answer is on its way
		}
	}
}

// leave withdraws a caller whose ctx ended: out of the queue if still
// waiting; otherwise it stops counting for its request, which is cancelled
// when nobody is left to read the answer.
func (s *scheduler) leave(cl *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cl.state {
	case left:
		return
	case queued:
		s.removeLocked(cl)
	case running:
		u := cl.unit
		u.waiters--
		if u.waiters == 0 {
			for _, p := range u.parts {
				if s.active[p.req.key()] == p {
					delete(s.active, p.req.key())
				}
			}
			u.cancel()
		}
	}
	cl.state = left
}

// needsQueueLocked reports whether any of reqs would queue rather than join
// an identical GET already in flight (which costs the session nothing).
// anyWrite reports whether reqs hold a write (writes are never refused by the admission estimate: they have
// priority, so the queue of reads does not delay them).
func anyWrite(reqs []*request) bool {
	for _, r := range reqs {
		if r.key() == "" {
			return true
		}
	}
	return false
}

func (s *scheduler) needsQueueLocked(reqs []*request) bool {
	for _, req := range reqs {
		if k := req.key(); k == "" || s.active[k] == nil {
			return true
		}
	}
	return false
}

// perRequestLocked is how long the session takes per upstream request: the
// rate limit's interval, the measured request time shared by the slots, or
// the measured time between dispatches under backlog, whichever is longest.
func (s *scheduler) perRequestLocked() time.Duration {
	interval := time.Duration(float64(time.Second) / float64(s.limiter.Limit()))
	return max(interval, s.took/time.Duration(max(1, s.cfg.MaxInFlight)), s.gap)
}

// estimateLocked estimates, for a new call of caller who, how long it would wait in the queue before it is
// dispatched and when its answer would arrive. It counts the calls that would go out before it, in the order
// takeLocked serves them: priority calls and operations' later calls (continuations) first, then first calls
// taking turns across callers (so of each other caller at most as many as who already has waiting, plus one:
// a caller with a long backlog delays a newcomer by one place, not by its backlog), and background calls last
// until they have aged. A first call also waits for the later calls that the operations ahead of it (queued
// or in flight) will still make, which go out first: contRatioLocked of them each. The calls ahead go out
// perDispatch (a full $batch and the calls sharing its parts) per request; the first request waits for the
// rate limit's next token, a free slot, a pause; each next one for the time a request takes the session
// (perRequestLocked). What the real waits of earlier calls said about such estimates corrects it (learnLocked).
// later is how long the operation's later calls would take after it is answered (laterLocked).
//
// A continuation (cont) waits only behind priority calls and other continuations.
func (s *scheduler) estimateLocked(who string, cont, background bool) (dispatch, done, later time.Duration) {
	now := time.Now()
	ahead, firstsAhead := 0, 0
	firsts := make(map[string]int)
	firstsInOp := make(map[string]int)
	for _, cl := range s.queue {
		switch {
		case cl.background && !background && now.Sub(cl.queuedAt) < backgroundAging:
			// yields to this call
		case cl.priority || cl.cont:
			ahead++
		case cont:
			// a continuation goes out before every first call
		default:
			firsts[cl.caller]++
			if cl.op != nil {
				firstsInOp[cl.caller]++
			}
		}
	}
	per := s.perRequestLocked()
	later = s.laterLocked(ahead+s.pendingLocked(), per) // ahead holds the later calls queued so far
	mine := firsts[who]
	for c, n := range firsts {
		k := n
		if c != who {
			k = min(n, mine+1)
		}
		ahead += k
		firstsAhead += min(k, firstsInOp[c])
	}
	if !cont {
		ahead += int(math.Ceil(float64(firstsAhead)*s.contRatioLocked())) + s.pendingLocked()
	}
	wait := time.Duration(0)
	if tokens := s.limiter.Tokens(); tokens < 1 {
		wait = time.Duration((1 - tokens) / float64(s.limiter.Limit()) * float64(time.Second))
	}
	if s.inflight >= s.cfg.MaxInFlight {
		wait = max(wait, per)
	}
	if p := time.Until(s.pausedUntil); p > 0 {
		wait = max(wait, p)
	}
	dispatch = s.queueTimeLocked(wait, ahead, per)
	return dispatch, dispatch + s.took, later
}

// laterLocked is how long an operation's later calls take once its first is answered, with conts later calls
// queued or to come ahead of them (they go out first, so they wait behind those only), and their answers: as
// many as operations make lately (contRatioLocked).
func (s *scheduler) laterLocked(conts int, per time.Duration) time.Duration {
	return time.Duration(s.contRatioLocked() * float64(s.queueTimeLocked(per, conts, per)+s.took))
}

// queueTimeLocked is how long a call waits to be dispatched when the next request goes out after first and
// ahead calls go before it, perDispatch to a request of per each, as corrected by learnLocked.
func (s *scheduler) queueTimeLocked(first time.Duration, ahead int, per time.Duration) time.Duration {
	perDispatch := float64(s.cfg.MaxBatchParts)
	if s.perDispatch >= 1 {
		perDispatch = s.perDispatch
	}
	d := first + time.Duration(math.Floor(float64(ahead)/perDispatch))*per
	if s.slip > 0 && d >= minLearn {
		d = time.Duration(float64(d) * s.slip)
	}
	return d
}

// drainTimeLocked estimates how long n waiting calls take to go out.
func (s *scheduler) drainTimeLocked(n int) time.Duration {
	return time.Duration(n/max(1, s.cfg.MaxBatchParts)+1) * s.perRequestLocked()
}

// waitingLocked counts the queued calls of one caller.
func (s *scheduler) waitingLocked(who string) int {
	n := 0
	for _, cl := range s.queue {
		if cl.caller == who {
			n++
		}
	}
	return n
}

func (s *scheduler) removeLocked(cl *call) {
	for i, q := range s.queue {
		if q == cl {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return
		}
	}
}

func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	q := s.drainLocked()
	s.mu.Unlock()
	answer(q, ErrClosed)
	s.signal()
}

// drainLocked takes every queued call out of the queue; the caller answers
// them (answer) once the lock is released.
func (s *scheduler) drainLocked() []*call {
	q := s.queue
	s.queue = nil
	for _, cl := range q {
		cl.state = left
	}
	return q
}

func answer(calls []*call, err error) {
	for _, cl := range calls {
		cl.err = err
		close(cl.done)
	}
}

// loop dispatches until the client closes.
func (s *scheduler) loop() {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		ready := len(s.queue) > 0 && s.inflight < s.cfg.MaxInFlight && s.breaker.dispatchableLocked()
		var pause time.Duration
		if ready {
			if pause = time.Until(s.pausedUntil); pause > 0 {
				ready = false
			}
		}
		s.mu.Unlock()
		if !ready {
			var tc <-chan time.Time
			var t *time.Timer
			if pause > 0 {
				t = time.NewTimer(pause)
				tc = t.C
			}
			select {
			case <-s.wake:
			case <-tc:
			case <-s.ctx.Done():
				s.close()
				return
			}
			if t != nil {
				t.Stop()
			}
			continue
		}
		// calls keep arriving while we wait for the rate: they join this dispatch
		if err := s.limiter.Wait(s.ctx); err != nil {
			s.close()
			return
		}
		s.mu.Lock()
		var u *unit
		var shed []*call
		if len(s.queue) > 0 && time.Now().After(s.pausedUntil) && !s.closed && s.breaker.dispatchableLocked() {
			u = s.takeLocked()
			s.breaker.dispatchLocked(u)
			s.inflight++
			s.timeDispatchLocked(time.Now(), u.waiters)
			shed = s.shedLocked(time.Now())
		}
		s.mu.Unlock()
		for _, cl := range shed {
			close(cl.done)
		}
		if u != nil {
			if s.cfg.SlowAfter > 0 {
				u.slowTimer = time.AfterFunc(s.cfg.SlowAfter, func() { s.release(u) })
			}
			go s.run(u)
		}
	}
}

// shedLocked takes out of the queue, right after a dispatch, the calls that the queue as it now goes can no
// longer answer in time, and gives them a BusyError to answer: within MaxWait and their deadline, and for an
// operation's first call early enough that the operation's later calls (which go out first) still fit.
// Admission estimated them with what it knew then; when the session turns out slower than that (a busier CPU,
// larger answers, more later calls than usual), they learn it now, at the next dispatch, rather than failing at
// the end of MaxWait or of their deadline. It only refuses what would fail anyway: a call that would be late
// for the half of the deadline admission gave it, but in time for the deadline, stays. Each call's wait is
// estimated as admission does: the calls ahead of it in the order takeLocked serves them, with the later calls
// their operations will still make, perDispatch to a request.
func (s *scheduler) shedLocked(now time.Time) []*call {
	if len(s.queue) == 0 {
		return nil
	}
	order, _ := s.orderLocked()
	var prio []*call
	for _, cl := range order {
		if cl.priority {
			prio = append(prio, cl)
		}
	}
	order = append(prio, slices.DeleteFunc(order, func(c *call) bool { return c.priority })...)
	per := s.perRequestLocked()
	ratio := s.contRatioLocked()
	interactive := slices.ContainsFunc(order, func(cl *call) bool { return !cl.background })
	var shed []*call
	ahead, firstsAhead := 0, 0
	pending := s.pendingLocked()
	// how long an operation's later call takes once its first is answered: it queues behind the later calls
	// waiting now and to come (they go out first), then waits for its answer
	conts := pending
	for _, cl := range order {
		if cl.cont || cl.priority {
			conts++
		}
	}
	later := s.laterLocked(conts, per)
	for _, cl := range order {
		if cl.background && interactive && now.Sub(cl.queuedAt) < backgroundAging {
			continue // yields to the others; bounded by MaxWait alone
		}
		first := cl.op != nil && !cl.cont && !cl.priority && !cl.background
		pos := ahead
		if !cl.cont && !cl.priority {
			pos += int(math.Ceil(float64(firstsAhead)*ratio)) + pending
		}
		if !cl.ctxEnd.IsZero() && cl.req.key() != "" {
			wait := s.queueTimeLocked(per, pos, per) // the slot is busy: one request first
			budget := cl.ctxEnd
			if first {
				budget = budget.Add(-later)
			}
			if mw := cl.queuedAt.Add(s.cfg.MaxWait); mw.Before(budget) {
				budget = mw
			}
			if done := now.Add(wait + s.took); done.After(budget) {
				s.removeLocked(cl)
				cl.state = left
				cl.err = busy(done.Sub(budget), "the ERP.net session turned out slower than estimated: about %s more to answer, the call can wait %s",
					(wait + s.took).Round(time.Millisecond), max(budget.Sub(now), 0).Round(time.Millisecond))
				shed = append(shed, cl)
				continue
			}
		}
		if first {
			firstsAhead++
		}
		ahead++
	}
	if len(shed) > 0 {
		s.c.stats.queueFull.Add(int64(len(shed)))
		s.c.stats.admissionRefused.Add(int64(len(shed)))
	}
	return shed
}

// takeLocked builds the next upstream request from the queue. Callers take
// turns: the next request starts with the oldest call of the caller whose
// turn it is (a write goes alone), and a $batch is filled round-robin across
// callers (each caller's calls in queue order), so a caller with many
// waiting reads delays another caller's read by at most one request.
func (s *scheduler) takeLocked() *unit {
	u := &unit{}
	order := s.fairOrderLocked()
	// background work (the reference sync) goes when no interactive call
	// waits, or once it has waited backgroundAging: under constant load it
	// still progresses, within the budget share its owner keeps
	now := time.Now()
	urgent := func(cl *call) bool { return !cl.background || now.Sub(cl.queuedAt) >= backgroundAging }
	if slices.ContainsFunc(order, func(cl *call) bool { return !cl.background }) {
		order = slices.DeleteFunc(order, func(cl *call) bool { return !urgent(cl) })
	}
	head := order[0]
	// A write is not starved behind a queue of reads: unless the last request was led by one, the oldest waiting
	// priority call (a write, or a read a mutation needs) goes next; a priority read leads its $batch, the other
	// priority reads follow, then the rest in their fair order. Priority calls thus lead at most every other
	// request; reads keep the rest.
	if !s.lastFirst {
		var first []*call // the priority calls, oldest first; the rest keep their fair order
		for _, cl := range s.queue {
			if cl.priority {
				first = append(first, cl)
			}
		}
		if len(first) > 0 {
			head = first[0]
			order = append(first, slices.DeleteFunc(order, func(c *call) bool { return c.priority })...)
		}
	}
	s.lastFirst = head.priority
	if head.req.key() == "" { // a write goes alone
		s.removeLocked(head)
		u.parts = []*part{{req: head.req, calls: []*call{head}, unit: u}}
		head.state, head.unit, head.dispatched = running, u, now
		s.c.stats.queueWait.observe(time.Since(head.queuedAt))
		s.learnLocked([]*call{head}, now)
		u.waiters = 1
		s.startLocked(u)
		return u
	}
	byKey := make(map[string]*part)
	var taken []*call
	for _, cl := range order {
		k := cl.req.key()
		if k == "" {
			continue // writes wait for their caller's turn
		}
		p := byKey[k]
		if p == nil {
			if len(u.parts) >= s.cfg.MaxBatchParts {
				continue
			}
			p = &part{req: cl.req, unit: u}
			byKey[k] = p
			u.parts = append(u.parts, p)
		} else {
			s.c.stats.coalesced.Add(1)
		}
		p.calls = append(p.calls, cl)
		cl.state, cl.unit, cl.dispatched = running, u, now
		u.waiters++
		s.c.stats.queueWait.observe(time.Since(cl.queuedAt))
		taken = append(taken, cl)
		if cl.op != nil && !cl.cont {
			s.outLocked(cl.op, cl.ctx)
		}
	}
	s.learnLocked(taken, now)
	rest := s.queue[:0]
	for _, cl := range s.queue {
		if cl.state == queued {
			rest = append(rest, cl)
		}
	}
	clear(s.queue[len(rest):])
	s.queue = rest
	for k, p := range byKey {
		s.active[k] = p
	}
	s.startLocked(u)
	return u
}

// fairOrderLocked lists the queue round-robin across callers: the first call
// of each caller in turn order, then the second of each, and so on. It also
// advances the turn: the caller served first now goes last, and callers new
// to the queue join at the end.
func (s *scheduler) fairOrderLocked() []*call {
	order, ring := s.orderLocked()
	if len(ring) > 0 {
		s.ring = append(ring[1:], ring[0])
	}
	return order
}

// orderLocked is fairOrderLocked without advancing the turn; ring is the turn order it used.
func (s *scheduler) orderLocked() (order []*call, ring []string) {
	byCaller := make(map[string][]*call)
	var arrived []string
	for _, cl := range s.queue {
		if _, ok := byCaller[cl.caller]; !ok {
			arrived = append(arrived, cl.caller)
		}
		byCaller[cl.caller] = append(byCaller[cl.caller], cl)
	}
	ring = make([]string, 0, len(byCaller))
	inRing := make(map[string]bool, len(byCaller))
	for _, who := range s.ring {
		if _, waiting := byCaller[who]; waiting && !inRing[who] {
			ring = append(ring, who)
			inRing[who] = true
		}
	}
	for _, who := range arrived {
		if !inRing[who] {
			ring = append(ring, who)
		}
	}
	// Continuations (later calls of operations already under way) first, so what was started finishes
	// within its deadline; then everything else. Each pass takes turns across callers.
	order = make([]*call, 0, len(s.queue))
	for _, first := range []bool{true, false} {
		for round, taken := 0, true; taken; round++ {
			taken = false
			for _, who := range ring {
				calls := byCaller[who]
				if round >= len(calls) {
					continue
				}
				taken = true
				if cl := calls[round]; cl.cont == first {
					order = append(order, cl)
				}
			}
		}
	}
	return order, ring
}

// startLocked gives u its context with the attempt timeout: at most
// AttemptTimeout, and for reads at most half of the remaining deadline of
// its most pressed caller, so a retry still fits. A caller too pressed for
// a retry (and any write, which is not retried) is bounded by its own
// deadline alone: it then gets its context's error, not a timeout of ours.
func (s *scheduler) startLocked(u *unit) {
	attempt := s.cfg.AttemptTimeout
	now := time.Now()
	u.started = now
	for _, p := range u.parts {
		if !p.req.read {
			continue
		}
		for _, cl := range p.calls {
			if half := cl.ctxEnd.Sub(now) / 2; !cl.ctxEnd.IsZero() && half >= minAttempt {
				attempt = min(attempt, half)
			}
		}
	}
	u.attempt = attempt
	u.ctx, u.cancel = context.WithTimeout(context.WithValue(s.ctx, sentKey{}, &u.sent), attempt)
	s.traceUnitLocked(u)
}

// maxSlow bounds the requests that gave their slot up: ERP.net queues five
// requests per session beyond the one it runs; a few hung ones must not
// make it refuse the rest with 429.
const maxSlow = 2

// release frees the slot of a request still running after SlowAfter, so the
// next request goes out instead of waiting behind one that may hang until
// its attempt timeout (ERP.net queues it if it is really still busy).
func (s *scheduler) release(u *unit) {
	s.mu.Lock()
	freed := !u.done && !u.slow && !u.probe && s.slow < maxSlow
	if freed {
		u.slow = true
		s.inflight--
		s.slow++
	}
	s.mu.Unlock()
	if freed {
		s.signal()
	}
}

// minAttempt is the shortest attempt worth halving a read's deadline for.
const minAttempt = 250 * time.Millisecond

// run performs one upstream request and hands the answers out. ERP.net's
// session slot is free as soon as the answer is read, so the next request
// goes out while this one's $batch is split and its parts decoded; each part
// is decoded once for all the calls that share it.
func (s *scheduler) run(u *unit) {
	defer u.cancel()
	if u.slowTimer != nil {
		defer u.slowTimer.Stop()
	}
	reqs := make([]*request, len(u.parts))
	for i, p := range u.parts {
		reqs[i] = p.req
	}
	var outer *response
	var err error
	if len(reqs) == 1 {
		outer, err = s.c.exchange(u.ctx, reqs[0].method, s.c.target(reqs[0]), reqs[0].contentType, reqs[0].body)
	} else {
		outer, err = s.c.batch(u.ctx, reqs)
	}
	s.mu.Lock()
	if u.slow {
		s.slow--
	} else {
		s.inflight--
	}
	u.done = true
	if err == nil {
		// what admission estimates with: a moving average over the last few requests
		if d := time.Since(u.started); s.took == 0 {
			s.took = d
		} else {
			s.took += (d - s.took) / 8
		}
	}
	s.mu.Unlock()
	s.signal()
	s.observe(outer)

	var parts []*response
	if err == nil && len(reqs) > 1 && outer.ok() {
		if parts, err = splitBatch(outer, len(reqs)); err != nil {
			err = fmt.Errorf("%w: %w: %w", ErrUnavailable, errProtocol, err)
		}
	}
	if err != nil && errors.Is(u.ctx.Err(), context.DeadlineExceeded) && !errors.As(err, new(*tokenFailure)) {
		err = fmt.Errorf("%w: ERP.net did not answer within %s", ErrUnavailable, u.attempt.Round(time.Millisecond))
	}
	traceUnitDone(u, outer, parts, err)
	results, errs := make([]*response, len(reqs)), make([]error, len(reqs))
	var kept uint64 // answers request.keep stored
	for i, r := range reqs {
		switch {
		case err != nil:
			errs[i] = err
			continue
		case parts == nil: // a plain request, or a $batch refused as a whole: every part gets that answer
			results[i] = outer
		default:
			results[i] = parts[i]
			s.observe(parts[i])
		}
		if r.decode != nil && results[i].ok() {
			if results[i].val, errs[i] = r.decode(results[i].body); errs[i] != nil {
				results[i] = nil
			}
		}
		if r.keep != nil && errs[i] == nil && results[i].ok() {
			r.keep(results[i]) // while the part is still active: see request.keep
			kept++
		}
	}

	s.mu.Lock()
	s.kept.Add(kept)
	deliver := make([][]*call, len(u.parts))
	for i, p := range u.parts {
		if s.active[p.req.key()] == p {
			delete(s.active, p.req.key())
		}
		deliver[i] = p.calls
		p.calls = nil // no one joins after this point
	}
	t := s.breaker.recordLocked(u, classify(u, outer, parts, err))
	var refused []*call
	if t != nil && t.to == BreakerOpen {
		refused = s.drainLocked() // fail fast now rather than after their own wait
	}
	s.mu.Unlock()
	s.signal()
	s.c.logTransition(t)
	if t != nil && t.to == BreakerOpen {
		s.c.stats.breakerOpened.Add(1)
		s.c.stats.circuitRefused.Add(int64(len(refused)))
	}
	if len(refused) > 0 {
		answer(refused, fmt.Errorf("%w after %d consecutive failures (last: %s)", ErrCircuitOpen, t.failures, t.class))
	}
	s.reportUpstream(u, deliver) // before the answers, so a caller's count is complete when it resumes
	for i, calls := range deliver {
		for _, cl := range calls {
			cl.res, cl.err = results[i], errs[i]
			close(cl.done)
		}
	}
}

// reportUpstream adds u's HTTP requests to the counter of each operation
// (CountUpstream) whose work it carried, once per counter.
func (s *scheduler) reportUpstream(u *unit, deliver [][]*call) {
	n := int64(u.sent.Load())
	if n == 0 {
		return
	}
	var told []*atomic.Int64 // a handful: the callers of one $batch
	for _, calls := range deliver {
		for _, cl := range calls {
			if cl.counter != nil && !slices.Contains(told, cl.counter) {
				told = append(told, cl.counter)
				cl.counter.Add(n)
			}
		}
	}
}

// observe pauses dispatch after a 429 or 503: ERP.net asks everyone on this
// session to wait, not one call.
func (s *scheduler) observe(res *response) {
	if res == nil || (res.status != http.StatusTooManyRequests && res.status != http.StatusServiceUnavailable) {
		return
	}
	d := parseRetryAfter(res.header.Get("Retry-After"), time.Now())
	d = cmp.Or(d, defaultPause)
	until := time.Now().Add(d)
	s.mu.Lock()
	longer := until.After(s.pausedUntil)
	if longer {
		s.pausedUntil = until
	}
	s.mu.Unlock()
	if longer {
		s.c.log.LogAttrs(s.ctx, slog.LevelWarn, "ERP.net asked the session to wait; dispatch paused",
			slog.Int("status", res.status), slog.Duration("pause", d))
	}
}

// --- the caller side: errors and retries ---

// maxRetries bounds retries of one read (plus the first attempt).
const maxRetries = 3

// send runs one request through the scheduler (see sendAll).
func (c *Client) send(ctx context.Context, req *request) (*response, error) {
	res, errs := c.sendAll(ctx, req)
	return res[0], errs[0]
}

// sendLive runs requests through the scheduler together, converts non-2xx
// answers to *Error, and retries idempotent reads on busy/unavailable
// answers with jittered exponential backoff, never past the caller's deadline.
func (c *Client) sendLive(ctx context.Context, reqs ...*request) ([]*response, []error) {
	c.stats.calls.Add(int64(len(reqs)))
	out, errs := make([]*response, len(reqs)), make([]error, len(reqs))
	pending := make([]int, len(reqs))
	for i := range pending {
		pending[i] = i
	}
	for attempt := 0; ; attempt++ {
		batch := make([]*request, len(pending))
		for j, i := range pending {
			batch[j] = reqs[i]
		}
		res, serrs := c.sched.submit(ctx, batch...)
		var retry []int
		var delay time.Duration
		for j, i := range pending {
			err := serrs[j]
			if err == nil && res[j].ok() {
				out[i], errs[i] = res[j], nil
				continue
			}
			if errors.Is(err, errLookAgain) {
				errs[i] = err // for sendAll, which looks at the cache again
				continue
			}
			if err == nil {
				err = statusError(reqs[i].op, res[j].status, res[j].header, res[j].body)
			} else {
				err = opError(reqs[i].op, err)
			}
			errs[i] = err
			if ctx.Err() == nil && reqs[i].read && attempt < maxRetries && retryable(err) {
				retry = append(retry, i)
				delay = max(delay, backoff(attempt, retryAfter(err)))
			}
		}
		if len(retry) == 0 {
			return out, errs
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return out, errs
		}
		c.stats.retries.Add(int64(len(retry)))
		c.log.LogAttrs(ctx, slog.LevelDebug, "retrying ERP.net reads", slog.String("op", reqs[retry[0]].op),
			slog.Int("calls", len(retry)), slog.Int("attempt", attempt+2), slog.Duration("after", delay),
			slog.String("error", errs[retry[0]].Error()))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return out, errs
		}
		pending = retry
	}
}

// errLookAgain: the read missed the cache before an identical read stored its answer there (see scheduler.kept).
var errLookAgain = errors.New("erpclient: an identical read answered meanwhile")

// opError prefixes a non-HTTP failure with the operation; transport failures
// become ErrUnavailable.
func opError(op string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("erpclient: %s: %w", op, err)
	case errors.Is(err, ErrBusy), errors.Is(err, ErrClosed), errors.Is(err, ErrUnauthorized),
		errors.Is(err, ErrUnavailable), errors.Is(err, ErrForbidden):
		return fmt.Errorf("erpclient: %s: %w", op, err)
	}
	return unavailable(op, err)
}

// retryable: upstream busy (429/503), outages, and ERP.net failures that
// may pass (a 500 whose exception is not about the request itself, e.g. a
// database timeout); not the client's own queue limits (retrying those would
// only lengthen the queue), not an open breaker, not failures of the request
// (bad query, missing object, business rules).
func retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Is(ErrBusy) || e.Is(ErrUnavailable) || e.transient()
	}
	return errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrCircuitOpen)
}

func retryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// backoff: 100 ms doubling per attempt, ±50 % jitter, at least Retry-After.
func backoff(attempt int, floor time.Duration) time.Duration {
	base := 100 * time.Millisecond << attempt
	d := base/2 + rand.N(base)
	return max(d, floor)
}
