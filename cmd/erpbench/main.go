// Command erpbench measures what one erpclient (one ERP.net service session)
// can serve: it starts erpsim in-process with ERP.net's default session
// limits and an upstream latency, drives the client with K concurrent
// callers for D, and prints calls served per second, upstream HTTP requests
// per second, batch parts per request, 429s and call latency percentiles.
//
//	go run ./cmd/erpbench -callers 200 -duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

type config struct {
	callers     int
	duration    time.Duration
	latency     time.Duration
	partLatency time.Duration
	rpm         int
	maxParts    int
	hot         float64
	hotRows     int
	scale       int
	cpuProfile  string
	fault5xx    float64       // share of Domain API requests answered 502
	faultHang   float64       // share of Domain API requests that hang
	slowAfter   time.Duration // SchedulerConfig.SlowAfter
	callTimeout time.Duration // each call's deadline, like erpgraph's operation deadline
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "erpbench:", err)
		os.Exit(1)
	}
}

func parse(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("erpbench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.IntVar(&c.callers, "callers", 200, "concurrent callers (K)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to drive the client (D)")
	fs.DurationVar(&c.latency, "latency", 20*time.Millisecond, "erpsim latency per upstream request")
	fs.DurationVar(&c.partLatency, "part-latency", 0, "erpsim latency per $batch part")
	fs.IntVar(&c.rpm, "rpm", erpclient.DefaultRequestsPerMinute, "client requests per minute (ERP.net allows 600)")
	fs.IntVar(&c.maxParts, "max-parts", erpclient.DefaultMaxBatchParts, "GETs per $batch")
	fs.Float64Var(&c.hot, "hot", 0.2, "share of calls that read one of a few popular queries (0..1)")
	fs.IntVar(&c.hotRows, "hot-rows", 10, "rows per page of the popular queries (large pages show the cost of decoding shared answers)")
	fs.IntVar(&c.scale, "scale", 1, "erpsim demo data multiplier")
	fs.Float64Var(&c.fault5xx, "fault-5xx", 0, "share of Domain API requests erpsim answers 502 (0..1)")
	fs.Float64Var(&c.faultHang, "fault-hang", 0, "share of Domain API requests erpsim holds for a minute (0..1)")
	fs.DurationVar(&c.callTimeout, "call-timeout", 15*time.Second, "each call's deadline (erpgraph's default operation deadline)")
	fs.DurationVar(&c.slowAfter, "slow-after", erpclient.DefaultSlowAfter, "client: a request running this long gives its slot up (negative: never)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured run (client and in-process erpsim) to this file")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if c.callers < 1 {
		errs = append(errs, errors.New("-callers must be at least 1"))
	}
	if c.callTimeout <= 0 {
		errs = append(errs, errors.New("-call-timeout must be positive"))
	}
	if c.duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if c.fault5xx < 0 || c.fault5xx > 1 || c.faultHang < 0 || c.faultHang > 1 {
		errs = append(errs, errors.New("fault rates must be between 0 and 1"))
	}
	if c.hot < 0 || c.hot > 1 {
		errs = append(errs, errors.New("-hot must be between 0 and 1"))
	}
	if c.hotRows < 1 || c.hotRows > 1000 {
		errs = append(errs, errors.New("-hot-rows must be between 1 and 1000"))
	}
	if c.latency < 0 || c.partLatency < 0 {
		errs = append(errs, errors.New("latencies must not be negative"))
	}
	return c, errors.Join(errs...)
}

func run(args []string, out io.Writer) error {
	cfg, err := parse(args, out)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	sim, err := erpsim.Start(ctx, erpsim.Options{Scale: cfg.scale}) // ERP.net's default limits
	if err != nil {
		return fmt.Errorf("start erpsim: %w", err)
	}
	defer sim.Close()
	sim.SetLatency(cfg.latency, cfg.partLatency)
	var faults []erpsim.Fault
	if cfg.faultHang > 0 {
		faults = append(faults, erpsim.Fault{Path: "/api/domain/odata/", Rate: cfg.faultHang, Delay: time.Minute, Drop: true})
	}
	if cfg.fault5xx > 0 {
		faults = append(faults, erpsim.Fault{Path: "/api/domain/odata/", Rate: cfg.fault5xx, Status: http.StatusBadGateway})
	}

	client, err := erpclient.New(ctx, erpclient.Config{
		InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Scheduler: erpclient.SchedulerConfig{RequestsPerMinute: cfg.rpm, MaxBatchParts: cfg.maxParts, MaxWait: cfg.duration + time.Minute,
			SlowAfter: cfg.slowAfter},
	})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Ping(ctx); err != nil {
		return err
	}
	w := newWorkload(client)
	sim.SetFaults(faults...) // after Ping: the measured run only
	sim.ResetRequests()
	before := client.Stats()

	fmt.Fprintf(out, "erpbench: %d callers for %s against erpsim (default limits: 1 in flight, queue 5, 600/min; latency %s/request, %s/part); client %d req/min, %d parts/$batch\n",
		cfg.callers, cfg.duration, cfg.latency, cfg.partLatency, cfg.rpm, cfg.maxParts)
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	runCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	start := time.Now()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  = map[string]int{}
		examples  = map[string]string{} // the first error of each kind
		wg        sync.WaitGroup
	)
	for i := range cfg.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			var mine []time.Duration
			for runCtx.Err() == nil {
				t0 := time.Now()
				callCtx, cancelCall := context.WithTimeout(runCtx, cfg.callTimeout)
				err := w.call(callCtx, rng, cfg.hot, cfg.hotRows)
				cancelCall()
				if runCtx.Err() != nil {
					break // the run ended mid-call: not a result
				}
				mu.Lock()
				if err != nil {
					failures[errorKind(err)]++
					if _, seen := examples[errorKind(err)]; !seen {
						examples[errorKind(err)] = err.Error()
					}
				}
				mu.Unlock()
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after, simStats := client.Stats(), sim.Stats()
	report(out, cfg, elapsed, latencies, failures, before, after, simStats)
	if calls := len(latencies); calls > 0 {
		cpu := cpuTime() - cpu0
		fmt.Fprintf(out, "CPU (process, erpsim included)  %s  (%s per call)\n", cpu.Round(time.Millisecond), (cpu / time.Duration(calls)).Round(time.Microsecond))
	}
	for kind, msg := range examples {
		fmt.Fprintf(out, "first %s error: %s\n", kind, msg)
	}
	return nil
}

// workload is a mix of the reads a GraphQL BFF makes: catalogue pages
// (distinct), a customer's recent orders (scoped, distinct per customer and
// page) and a few popular queries many users ask at once.
type workload struct {
	client    *erpclient.Client
	customers []string
}

func newWorkload(c *erpclient.Client) *workload {
	w := &workload{client: c}
	for n := 1; n <= 10; n++ {
		w.customers = append(w.customers, fixture.CustomerID(n))
	}
	return w
}

type customerScope string

func (s customerScope) ScopeFilter(set string) (erpclient.Filter, error) {
	if set != erpclient.SetSalesOrders {
		return nil, fmt.Errorf("no access to %s", set)
	}
	return erpclient.Eq("Customer", erpclient.RefTo(erpclient.SetCustomers, string(s))), nil
}

func (w *workload) call(ctx context.Context, rng *rand.Rand, hot float64, hotRows int) error {
	switch r := rng.Float64(); {
	case r < hot:
		_, err := erpclient.List[erpclient.Product](ctx, w.client, erpclient.Query{Set: erpclient.SetProducts, Top: hotRows,
			Cursor: &erpclient.Cursor{Skip: 10 * (1 + rng.IntN(3))}, OrderBy: []erpclient.OrderBy{{Prop: "PartNumber"}},
			Select: []string{"PartNumber", "Name"}})
		return err
	case r < hot+(1-hot)/2:
		_, err := erpclient.List[erpclient.Product](ctx, w.client, erpclient.Query{Set: erpclient.SetProducts, Top: 5,
			Cursor: &erpclient.Cursor{Skip: 1 + rng.IntN(1000)}, OrderBy: []erpclient.OrderBy{{Prop: "PartNumber"}},
			Select: []string{"PartNumber", "Name", "StandardPricePerLot"}})
		return err
	default:
		cust := customerScope(w.customers[rng.IntN(len(w.customers))])
		_, err := erpclient.List[erpclient.SalesOrder](ctx, w.client, erpclient.Query{Set: erpclient.SetSalesOrders, Scope: cust, Top: 10,
			Cursor: &erpclient.Cursor{Skip: 1 + rng.IntN(50)}, OrderBy: []erpclient.OrderBy{{Prop: "DocumentDate", Desc: true}},
			Select: []string{"DocumentNo", "DocumentDate", "State"}})
		return err
	}
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func errorKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{{erpclient.ErrBusy, "busy"}, {erpclient.ErrUnavailable, "unavailable"}, {erpclient.ErrUnauthorized, "unauthorized"},
		{erpclient.ErrNotFound, "not found"}, {erpclient.ErrInvalidQuery, "invalid query"}} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "other"
}

func report(out io.Writer, cfg config, elapsed time.Duration, lat []time.Duration, failures map[string]int, before, after erpclient.Stats, sim erpsim.Stats) {
	secs := elapsed.Seconds()
	calls := len(lat)
	upstream := after.UpstreamRequests - before.UpstreamRequests
	batches := after.Batches - before.Batches
	parts := after.BatchParts - before.BatchParts
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))].Round(time.Millisecond)
	}
	failed := 0
	for _, n := range failures {
		failed += n
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "calls served\t%d\t(%.1f/s, %d failed %v)\n", calls-failed, float64(calls-failed)/secs, failed, failures)
	fmt.Fprintf(tw, "upstream HTTP requests\t%d\t(%.1f/s; erpsim counted %d)\n", upstream, float64(upstream)/secs, sim.DomainRequests)
	perReq := 0.0
	if upstream > 0 {
		perReq = float64(parts+(upstream-batches)) / float64(upstream)
	}
	fmt.Fprintf(tw, "batch parts per request\t%.1f\t(%d $batch with %d parts; %d calls shared an identical GET)\n", perReq, batches, parts, after.Coalesced-before.Coalesced)
	fmt.Fprintf(tw, "429s\t%d\t(erpsim; client saw %d; 503s %d)\n", sim.Status429, after.Status429-before.Status429, sim.Status503)
	fmt.Fprintf(tw, "call latency\tp50 %s\tp99 %s\n", pct(0.50), pct(0.99))
	fmt.Fprintf(tw, "retries\t%d\t\n", after.Retries-before.Retries)
	fmt.Fprintf(tw, "circuit breaker\topened %d\trefused %d calls\n", after.BreakerOpened-before.BreakerOpened, after.CircuitRefused-before.CircuitRefused)
	tw.Flush()
}
