package erpclient_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
)

func productRead(c *erpclient.Client) func(ctx context.Context, name string) error {
	return func(ctx context.Context, name string) error {
		_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts,
			Filter: erpclient.Eq("PartNumber", erpclient.String(name)), Select: []string{"PartNumber"}})
		return err
	}
}

// TestScheduler_AdmissionRefusesWhatCannotMakeIt: at 6 requests a minute the next request may go out 10 s after
// the last; a read whose deadline is sooner is refused at once with a BusyError saying when to come back, and
// costs the session nothing, while a read that can wait is queued.
func TestScheduler_AdmissionRefusesWhatCannotMakeIt(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	c := simClient(t, s, func(cfg *erpclient.Config) { cfg.Scheduler.RequestsPerMinute = 6 })
	read := productRead(c)
	ctx := context.Background()
	if err := read(ctx, "first"); err != nil { // takes the one token there is
		t.Fatal(err)
	}
	sent := s.Stats().DomainRequests

	short, cancel := context.WithTimeout(erpclient.WithCaller(ctx, "user-a"), 3*time.Second)
	defer cancel()
	err := read(short, "second")
	var be *erpclient.BusyError
	if !errors.As(err, &be) || !errors.Is(err, erpclient.ErrBusy) {
		t.Fatalf("read with a 3s deadline: %v, want a BusyError", err)
	}
	if be.RetryAfter < 5*time.Second || be.RetryAfter > 11*time.Second || be.RetryAfter%time.Second != 0 {
		t.Errorf("RetryAfter %v, want the ~10s until the next token, in whole seconds", be.RetryAfter)
	}
	if st := c.Stats(); st.AdmissionRefused != 1 || st.Retries != 0 || s.Stats().DomainRequests != sent {
		t.Errorf("stats %+v, %d Domain API requests after the refusal (want %d)", st, s.Stats().DomainRequests, sent)
	}

	long, cancelLong := context.WithCancel(erpclient.WithCaller(ctx, "user-b"))
	wait := runConcurrently(1, func(int) error { return read(long, "third") })
	waitFor(t, "the patient read queued", func() bool { return c.Stats().Queued == 1 })
	cancelLong()
	if err := wait()[0]; !errors.Is(err, context.Canceled) {
		t.Errorf("patient read: %v, want it queued until cancelled", err)
	}
}

// TestScheduler_AdmissionKeepsFairShare: a caller with a backlog does not lock others out. While the one slot is
// held and caller A has 8 reads waiting (one request each, one a second), a newcomer's read with a 6 s deadline is
// admitted (under round-robin it waits behind one of A's), and so is every further newcomer's, while one more
// read of A's with the same deadline is refused (it would wait behind A's 8 and the newcomers).
func TestScheduler_AdmissionKeepsFairShare(t *testing.T) {
	_, c, release, _ := recordedSim(t, func(cfg *erpclient.Config) {
		cfg.Scheduler.RequestsPerMinute = 60
		cfg.Scheduler.MaxBatchParts = 1
	})
	read := productRead(c)
	ctx := context.Background()
	first := runConcurrently(1, func(int) error { return c.Ping(ctx) })
	waitFor(t, "the first request held", func() bool { return c.Stats().InFlight == 1 })
	ctxA, cancelA := context.WithCancel(erpclient.WithCaller(ctx, "user-a"))
	defer cancelA()
	const backlog = 8 // within MaxWait (10s) at one request a second
	waitA := runConcurrently(backlog, func(i int) error { return read(ctxA, fmt.Sprintf("A-%d", i)) })
	waitFor(t, "A's reads queued", func() bool { return c.Stats().Queued == backlog })

	deadline := func(who string) (context.Context, context.CancelFunc) {
		return context.WithTimeout(erpclient.WithCaller(ctx, who), 6*time.Second)
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	var waits []func() []error
	for i := range 3 {
		ctxN, cancel := deadline(fmt.Sprint("newcomer-", i))
		cancels = append(cancels, cancel)
		waits = append(waits, runConcurrently(1, func(int) error { return read(ctxN, fmt.Sprint("N-", i)) }))
		waitFor(t, "the newcomer admitted", func() bool { return c.Stats().Queued == int64(backlog+1+i) })
	}
	ctxA2, cancelA2 := deadline("user-a")
	defer cancelA2()
	if err := read(ctxA2, "A-more"); !errors.As(err, new(*erpclient.BusyError)) {
		t.Errorf("A's read beyond its backlog: %v, want a BusyError", err)
	}
	if st := c.Stats(); st.AdmissionRefused != 1 || st.Queued != backlog+3 {
		t.Errorf("stats %+v", st)
	}
	// nobody needs to wait for the slow session now
	cancelA()
	for _, cancel := range cancels {
		cancel()
	}
	for _, w := range append(waits, waitA) {
		for _, err := range w() {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("queued read: %v, want it waiting until cancelled", err)
			}
		}
	}
	release()
	noErrors(t, first())
}

// TestScheduler_OperationsFinishWhatTheyStarted: a later call of an operation already under way (WithOperation)
// goes out ahead of other operations' first calls, which queued before it.
func TestScheduler_OperationsFinishWhatTheyStarted(t *testing.T) {
	_, c, release, log := recordedSim(t, func(cfg *erpclient.Config) { cfg.Scheduler.MaxBatchParts = 2 })
	read := productRead(c)
	ctx := context.Background()
	op := func(who string) context.Context { return erpclient.WithOperation(erpclient.WithCaller(ctx, who)) }
	ctxA := op("user-a")
	first := runConcurrently(1, func(int) error { return read(ctxA, "A-1") }) // A's operation under way, held
	waitFor(t, "A's first read held", func() bool { return c.Stats().InFlight == 1 })
	others := runConcurrently(3, func(i int) error { return read(op(fmt.Sprint("user-", i)), fmt.Sprint("N-", i)) })
	waitFor(t, "three new operations queued", func() bool { return c.Stats().Queued == 3 })
	second := runConcurrently(1, func(int) error { return read(ctxA, "A-2") })
	waitFor(t, "A's second read queued", func() bool { return c.Stats().Queued == 4 })
	release()
	noErrors(t, first(), others(), second())
	reqs := log()
	if len(reqs) != 3 || !strings.Contains(reqs[1], "A-2") {
		t.Errorf("A's second read is not in the first request after the held one:\n%q", reqs)
	}
}

// TestScheduler_ShedsWhatTheQueueCanNoLongerAnswer: admission estimated a fast session, then the one request in
// flight held the slot past the time the queued operations' first calls were given (half of their deadline).
// At the next dispatch the scheduler sends one of them and refuses the others at once with a BusyError, without
// a request, instead of sending them late or leaving them to their deadline.
func TestScheduler_ShedsWhatTheQueueCanNoLongerAnswer(t *testing.T) {
	_, c, release, log := recordedSim(t, func(cfg *erpclient.Config) { cfg.Scheduler.MaxBatchParts = 1 })
	read := productRead(c)
	ctx := context.Background()
	first := runConcurrently(1, func(int) error { return c.Ping(ctx) })
	waitFor(t, "the first request held", func() bool { return c.Stats().InFlight == 1 })

	const n, deadline = 4, 4 * time.Second
	queued := time.Now()
	var cancels []context.CancelFunc
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
	}()
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		var cancel context.CancelFunc
		ctxs[i], cancel = context.WithTimeout(erpclient.WithOperation(erpclient.WithCaller(ctx, fmt.Sprint("user-", i))), deadline)
		cancels = append(cancels, cancel)
	}
	reads := runConcurrently(n, func(i int) error { return read(ctxs[i], fmt.Sprint("R-", i)) })
	waitFor(t, "the reads admitted", func() bool { return c.Stats().Queued == n })
	if st := c.Stats(); st.AdmissionRefused != 0 {
		t.Fatalf("refused at admission: %+v", st)
	}
	// the session is slower than estimated: the slot stays busy past the half of the deadline each first call had
	waitFor(t, "the first calls' time used up", func() bool { return time.Since(queued) > deadline/2 })
	release()
	noErrors(t, first())
	ok, busy := 0, 0
	for _, err := range reads() {
		switch {
		case err == nil:
			ok++
		case errors.As(err, new(*erpclient.BusyError)):
			busy++
		default:
			t.Errorf("read: %v, want an answer or a BusyError", err)
		}
	}
	if ok != 1 || busy != n-1 || len(log()) != 2 || c.Stats().AdmissionRefused != n-1 {
		t.Errorf("%d answered, %d refused, %d Domain API requests, stats %+v; want 1, %d, 2 (the held one and the one sent)",
			ok, busy, len(log()), c.Stats(), n-1)
	}
}
