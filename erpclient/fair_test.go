package erpclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
)

// recordedSim starts erpsim behind a proxy that logs every Domain API
// request with its body (so the parts of a $batch can be told apart) and
// holds the first one until released.
func recordedSim(t *testing.T, mod func(*erpclient.Config)) (s *erpsim.Sim, c *erpclient.Client, release func(), log func() []string) {
	t.Helper()
	gate := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/domain/odata/") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			mu.Lock()
			seen = append(seen, r.Method+" "+r.URL.String()+"\n"+string(body))
			first := len(seen) == 1
			mu.Unlock()
			if first {
				<-gate
			}
		}
		s.Handler().ServeHTTP(w, r)
	}))
	s = startSim(t, erpsim.Options{PublicURL: "http://" + proxy.Listener.Addr().String(), Limits: erpsim.Unlimited()})
	proxy.Start()
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(proxy.Close)
	t.Cleanup(release)
	log = func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
	return s, simClient(t, s, mod), release, log
}

// TestScheduler_FairShareAcrossCallers: while the session's one slot is
// busy, caller A queues 30 reads and caller B one; B's read goes out in the
// very next request, A's calls beyond its cap are refused, B's are not.
func TestScheduler_FairShareAcrossCallers(t *testing.T) {
	const parts, capA = 4, 30
	_, c, release, log := recordedSim(t, func(cfg *erpclient.Config) {
		cfg.Scheduler.MaxBatchParts = parts
		cfg.Scheduler.MaxQueuePerCaller = capA
	})
	ctx := context.Background()
	first := runConcurrently(1, func(int) error { return c.Ping(ctx) })
	waitFor(t, "the first request held", func() bool { return c.Stats().InFlight == 1 })

	read := func(ctx context.Context, name string) error {
		_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts,
			Filter: erpclient.Eq("PartNumber", erpclient.String(name)), Select: []string{"PartNumber"}})
		return err
	}
	ctxA, ctxB := erpclient.WithCaller(ctx, "user-a"), erpclient.WithCaller(ctx, "user-b")
	waitA := runConcurrently(capA, func(i int) error { return read(ctxA, fmt.Sprintf("A-%d", i)) })
	waitFor(t, "A's reads queued", func() bool { return c.Stats().Queued == capA })
	waitB := runConcurrently(1, func(int) error { return read(ctxB, "B-only") })
	waitFor(t, "B's read queued", func() bool { return c.Stats().Queued == capA+1 })

	// A is at its cap: refused at once, without touching B's share
	if err := read(ctxA, "A-extra"); !errors.Is(err, erpclient.ErrBusy) {
		t.Errorf("A beyond its cap: %v, want ErrBusy", err)
	}
	if c.Stats().Queued != capA+1 {
		t.Errorf("queued after the refusal: %d", c.Stats().Queued)
	}

	release()
	noErrors(t, first(), waitA(), waitB())
	reqs := log()
	wantBatches := (capA + 1 + parts - 1) / parts
	if len(reqs) != 1+wantBatches {
		t.Fatalf("%d Domain API requests, want the held one and %d $batch", len(reqs), wantBatches)
	}
	if !strings.Contains(reqs[1], "B-only") {
		t.Errorf("B's read is not in the first request after the held one:\n%s", reqs[1])
	}
	if got := strings.Count(reqs[1], "A-"); got != parts-1 {
		t.Errorf("first $batch carries %d of A's reads, want %d", got, parts-1)
	}
}

// TestClient_CountUpstream: every upstream request is added once to the
// counter of each caller whose work it carried: one $batch to each of its
// callers (once for a caller with two parts in it), a shared GET to each
// waiter, and a retry again.
func TestClient_CountUpstream(t *testing.T) {
	var mu sync.Mutex
	counters := map[string]*atomic.Int64{}
	s, c, release, log := recordedSim(t, nil)
	ctx := context.Background()
	first := runConcurrently(1, func(int) error { return c.Ping(ctx) })
	waitFor(t, "the first request held", func() bool { return c.Stats().InFlight == 1 })
	as := func(name string) context.Context {
		mu.Lock()
		defer mu.Unlock()
		if counters[name] == nil {
			counters[name] = new(atomic.Int64)
		}
		return erpclient.CountUpstream(erpclient.WithCaller(ctx, name), counters[name])
	}
	read := func(ctx context.Context, part string) error {
		_, err := erpclient.List[erpclient.Product](ctx, c, erpclient.Query{Set: erpclient.SetProducts,
			Filter: erpclient.Eq("PartNumber", erpclient.String(part)), Select: []string{"PartNumber"}})
		return err
	}
	a := as("a")
	wait := runConcurrently(4, func(i int) error {
		switch i {
		case 0, 1:
			return read(a, fmt.Sprint("a", i)) // two parts of one caller
		case 2:
			return read(as("b"), "shared")
		default:
			return read(as("c"), "shared") // the same GET as b's
		}
	})
	waitFor(t, "all reads queued", func() bool { return c.Stats().Queued == 4 })
	release()
	noErrors(t, first(), wait())
	if reqs := log(); len(reqs) != 2 {
		t.Fatalf("%d Domain API requests, want the held one and one $batch", len(reqs))
	}
	// a gateway error, then the retry: two requests for d
	s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Status: http.StatusBadGateway, Count: 1})
	if err := read(as("d"), "d"); err != nil {
		t.Fatal(err)
	}
	told := map[string]int64{}
	for name, n := range counters {
		told[name] = n.Load()
	}
	got := fmt.Sprint(told)
	if got != "map[a:1 b:1 c:1 d:2]" {
		t.Errorf("reported %s, want 1 for each caller of the $batch and 2 for the retried read", got)
	}
}
