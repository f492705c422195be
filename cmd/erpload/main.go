// Command erpload measures erpgraph under concurrent users: it starts erpsim in-process with ERP.net's default
// session limits, runs erpgraph (the real program, app.New) against it, signs users in, and has N concurrent
// clients run the portal dashboard query for a fixed time. It prints operations per second, latency percentiles,
// upstream requests and reads per operation, how often erpsim answered 429, the CPU time erpgraph spent per 1000
// operations, erpgraph's memory, and how many users completed an operation.
//
// With -distinct every client signs in as a different user (erpsim's generated portal users, each with a
// customer of their own), so no client's read answers another's: that is the honest multi-user figure. Without
// it the clients share the two demo users with orders, as earlier figures did. A distinct client behaves like one
// person at a fast portal: it runs at most the per-user rate erpgraph allows (server.DefaultUserRate operations a
// second), and when refused (UPSTREAM_BUSY, or RATE_LIMITED with its 429) it waits as Retry-After tells it.
//
// erpgraph runs in a child process (this program started again) unless -inprocess is given, so its CPU time and
// RSS are its own: erpsim and the load clients stay in the parent. The child reports getrusage(RUSAGE_SELF) at
// the start and the end of the measured window; -cpuprofile profiles that window in the child.
//
// Usage:
//
//	go run ./cmd/erpload -distinct -latency 20ms -part-latency 5ms -users 200 -duration 20s
//
// All traffic stays on 127.0.0.1; the run ends by itself after -duration.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/loadclient"
	"github.com/erpgraph/erpgraph/server"
)

// maxDuration bounds a run, so a typo cannot load the machine for hours.
const maxDuration = 10 * time.Minute

func main() {
	if os.Getenv(childEnv) != "" {
		if err := runChild(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "erpload child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "erpload:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	users       int
	duration    time.Duration
	latency     time.Duration
	partLatency time.Duration
	scale       int
	distinct    bool
	inprocess   bool
	cpuprofile  string
	cache       string // "on" or "off": erpgraph's read cache (ERPGRAPH_CACHE)
	cacheMB     int    // the read cache's bound in MiB (ERPGRAPH_CACHE_SIZE); 0: erpgraph's default
	logins      []string
	generate    int // portal users erpsim generates
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("erpload", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.users, "users", 20, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "how long to run (at most 10m)")
	fs.DurationVar(&o.latency, "latency", 0, "erpsim latency added to every Domain API request (a remote ERP.net is 20-100ms away)")
	fs.DurationVar(&o.partLatency, "part-latency", 0, "erpsim latency added per $batch part (real ERP.net runs each part as its own request)")
	fs.IntVar(&o.scale, "scale", 1, "erpsim demo data multiplier")
	fs.BoolVar(&o.distinct, "distinct", false, "each client signs in as a different user (erpsim's generated portal users, each with a customer of their own); "+
		"without it the clients share anna.petrova and boris.georgiev")
	fs.BoolVar(&o.inprocess, "inprocess", false, "run erpgraph in this process instead of a child process (CPU time then includes erpsim and the clients)")
	fs.StringVar(&o.cache, "cache", "on", "erpgraph's read cache and reference sync: on (its defaults) or off (every read goes to ERP.net, cold)")
	fs.IntVar(&o.cacheMB, "cache-mb", 0, "bound of erpgraph's read cache in MiB (ERPGRAPH_CACHE_SIZE); 0: its default, 64")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of erpgraph during the measured window to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.users < 1 || o.users > 2000 {
		errs = append(errs, fmt.Errorf("-users %d: want 1..2000", o.users))
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration %v: want up to %v", o.duration, maxDuration))
	}
	if o.latency < 0 || o.latency > 5*time.Second || o.partLatency < 0 || o.partLatency > time.Second {
		errs = append(errs, fmt.Errorf("-latency %v, -part-latency %v: want 0..5s and 0..1s", o.latency, o.partLatency))
	}
	if o.cache != "on" && o.cache != "off" {
		errs = append(errs, fmt.Errorf("-cache %q: want on or off", o.cache))
	}
	if o.cacheMB < 0 || o.cacheMB > 1<<14 {
		errs = append(errs, fmt.Errorf("-cache-mb %d: want 0..16384", o.cacheMB))
	}
	if o.scale < 1 || o.scale > 100 {
		errs = append(errs, fmt.Errorf("-scale %d: want 1..100", o.scale))
	}
	if o.distinct {
		o.logins, o.generate = loadclient.DistinctLogins(o.users)
	} else {
		// the demo users with sales orders; the others' dashboards are empty and would only measure the edge
		o.logins = []string{fixture.OwnerLogin, fixture.MultiLogin}
	}
	return o, errors.Join(errs...)
}

// erpgraphConfig is how erpload runs erpgraph, in this process or in the child.
type erpgraphConfig struct {
	InstanceURL string
	Distinct    bool
	CPUProfile  string
	CacheOff    bool
	CacheBytes  int64
}

func (c erpgraphConfig) appConfig(logger *slog.Logger) app.Config {
	cfg := app.Config{
		Addr: "127.0.0.1:0", InstanceURL: c.InstanceURL, ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Logger: logger, ReadCache: app.ReadCacheConfig{Off: c.CacheOff, MaxBytes: c.CacheBytes},
	}
	if !c.Distinct {
		// The clients share two demo users, so one "user" has dozens of operations in flight: the edge's per-user
		// rate limit, concurrency cap and share of the ERP.net queue (meant for real users, whose operations the edge
		// caps at 6) would only measure their own refill rates.
		cfg.RateLimit = server.RateLimitConfig{UserRate: -1, AnonRate: -1, MaxConcurrent: -1}
		cfg.Scheduler = erpclient.SchedulerConfig{MaxQueuePerCaller: -1}
	}
	return cfg
}

// target is erpgraph as the load generator sees it: its URL, its usage, its profile.
type target interface {
	URL() string
	Usage() (loadclient.Usage, bool)
	RSS() int64
	StartProfile() error
	StopProfile() error
	Close() error
}

func run(args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	sim, err := erpsim.Start(ctx, erpsim.Options{Scale: o.scale, Users: o.generate}) // zero Limits: ERP.net's defaults
	if err != nil {
		return err
	}
	defer sim.Close()
	sim.SetLatency(o.latency, o.partLatency)
	gc := erpgraphConfig{InstanceURL: sim.URL(), Distinct: o.distinct, CPUProfile: o.cpuprofile, CacheOff: o.cache == "off",
		CacheBytes: int64(o.cacheMB) << 20}
	var tg target
	if o.inprocess {
		tg, err = startInProcess(ctx, gc)
	} else {
		tg, err = startChild(ctx, gc)
	}
	if err != nil {
		return err
	}
	defer tg.Close()
	url := tg.URL() + "/graphql"

	users, err := loadclient.SignInAll(ctx, sim, o.logins)
	if err != nil {
		return err
	}
	client := loadclient.NewHTTPClient(o.users)

	// Warm-up: the service session open, reference data cached. In -distinct mode only the first user warms up:
	// every other user's first operation (scope resolution included) is part of the measurement, as a real
	// user's is.
	warm := users
	if o.distinct {
		warm = users[:1]
	}
	for _, u := range warm {
		if r, err := loadclient.Post(ctx, client, url, u, loadclient.DashboardQuery, nil); err != nil || len(r.Errors) > 0 {
			return fmt.Errorf("warm-up as %s: %v %v", u.Login, err, r)
		}
	}
	sim.ResetRequests()

	who := "clients share anna.petrova and boris.georgiev (two demo users)"
	if o.distinct {
		who = fmt.Sprintf("each client a different user (portal.user*, %d generated)", o.generate)
	}
	fmt.Fprintf(out, "erpload: %d clients, %v, erpsim latency %v + %v per $batch part, scale %d, ERP.net default session limits\n",
		o.users, o.duration, o.latency, o.partLatency, o.scale)
	fmt.Fprintf(out, "erpload: %s\n", who)
	if o.distinct {
		fmt.Fprintf(out, "erpload: erpgraph at its defaults (per-user rate limit, concurrency cap and ERP.net queue share on); each client at most %d ops/s, the per-user rate\n",
			server.DefaultUserRate)
	} else {
		fmt.Fprintln(out, "erpload: erpgraph's per-user rate limit, concurrency cap and ERP.net queue share are off (measuring erpgraph + ERP.net, not the edge)")
	}
	if o.cache == "on" {
		fmt.Fprintf(out, "erpload: erpgraph's read cache on, bound %d MiB\n", cmp.Or(int64(o.cacheMB)<<20, app.DefaultCacheBytes)>>20)
	} else {
		fmt.Fprintln(out, "erpload: erpgraph's read cache off")
	}
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	if o.cpuprofile != "" {
		if err := tg.StartProfile(); err != nil {
			return err
		}
	}
	before, _ := tg.Usage()
	var (
		mu       sync.Mutex
		res      = results{failures: map[string]int{}, refusedAt: map[string]int{}, perUser: make([]int, o.users)}
		wg       sync.WaitGroup
		memPeak  int64
		memStop  = make(chan struct{})
		memDone  = make(chan struct{})
		interval = 250 * time.Millisecond
	)
	go func() { // erpgraph's RSS, sampled through the run
		defer close(memDone)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			memPeak = max(memPeak, tg.RSS())
			select {
			case <-t.C:
			case <-memStop:
				return
			}
		}
	}()
	start := time.Now()
	for i := range o.users {
		u := users[i%len(users)]
		// A distinct client is one person: it stays within the per-user rate erpgraph allows everyone
		// (server.DefaultUserRate); a client whose dashboards all come from the cache would otherwise run dozens a
		// second and measure the rate limit instead of erpgraph.
		pace := rate.NewLimiter(rate.Inf, 1)
		if o.distinct {
			pace = rate.NewLimiter(rate.Limit(server.DefaultUserRate), 1)
		}
		wg.Go(func() {
			// Operations started before the deadline run to the end (and the elapsed time includes them), so
			// every result is a whole operation and a short run still completes one per client.
			for runCtx.Err() == nil {
				if pace.Wait(runCtx) != nil {
					break
				}
				t0 := time.Now()
				r, err := loadclient.Post(ctx, client, url, u, loadclient.DashboardQuery, nil)
				d := time.Since(t0)
				mu.Lock()
				res.record(i, d, r, err)
				mu.Unlock()
				if r != nil && (r.Code() == codeBusy || r.Status == http.StatusTooManyRequests) {
					// a refused client waits as it was told to, like a real one (at most 5 s here): UPSTREAM_BUSY,
					// or RATE_LIMITED (429 with Retry-After)
					loadclient.Pause(runCtx, min(cmp.Or(r.RetryAfterTime(), time.Second), 5*time.Second))
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	after, cpuOK := tg.Usage()
	close(memStop)
	<-memDone
	if o.cpuprofile != "" {
		if err := tg.StopProfile(); err != nil {
			return err
		}
	}
	res.upstream = sim.Stats()
	res.cpuOK, res.cpu, res.rss, res.rssPeak, res.rssMax = cpuOK, after.CPU-before.CPU, tg.RSS(), memPeak, after.PeakRSS
	res.inprocess = o.inprocess
	report(out, &res)
	if o.cpuprofile != "" {
		fmt.Fprintf(out, "cpu profile:       %s (go tool pprof -top %s)\n", o.cpuprofile, o.cpuprofile)
	}
	return nil
}

// codeBusy is the code of an operation refused because the ERP.net session's queue is longer than it can wait.
const codeBusy = "UPSTREAM_BUSY"

// results is what a run measured.
type results struct {
	latencies []time.Duration // of successful operations
	later     []time.Duration // of those, the ones after their client's first success (its scope and documents read)
	refusals  []time.Duration // of UPSTREAM_BUSY answers
	refusedRA int             // refusals that said when to retry
	refusedAt map[string]int  // refusals by the path of their first error (the root field: the whole operation)
	failures  map[string]int  // by code ("HTTP n", "transport")
	perUser   []int           // successful operations per client
	elapsed   time.Duration
	upstream  erpsim.Stats

	inprocess            bool
	cpuOK                bool
	cpu                  time.Duration
	rss, rssPeak, rssMax int64
}

func (r *results) record(client int, d time.Duration, resp *loadclient.Response, err error) {
	switch {
	case err != nil:
		code := "transport"
		if resp != nil {
			code = fmt.Sprintf("HTTP %d", resp.Status)
		}
		r.failures[code]++
	case len(resp.Errors) > 0:
		code := cmp.Or(resp.Code(), "(no code)")
		r.failures[code]++
		if code == codeBusy {
			r.refusals = append(r.refusals, d)
			r.refusedAt[pathOf(resp.Errors[0].Path)]++
			if resp.HasRetryAfter() {
				r.refusedRA++
			}
		}
	case resp.Status != 200:
		r.failures[fmt.Sprintf("HTTP %d", resp.Status)]++
	default:
		r.latencies = append(r.latencies, d)
		if r.perUser[client] > 0 {
			r.later = append(r.later, d)
		}
		r.perUser[client]++
	}
}

// pathOf renders an error path without list indexes: salesOrders.nodes.invoices.
func pathOf(p []any) string {
	var parts []string
	for _, e := range p {
		if s, ok := e.(string); ok {
			parts = append(parts, s)
		}
	}
	return cmp.Or(strings.Join(parts, "."), "(request)")
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func report(out io.Writer, r *results) {
	lat := r.latencies
	slices.Sort(lat)
	ok := len(lat)
	failed := 0
	for _, n := range r.failures {
		failed += n
	}
	total := ok + failed
	st := r.upstream
	perOp := func(n int) float64 {
		if total == 0 {
			return 0
		}
		return float64(n) / float64(total)
	}
	fmt.Fprintf(out, "operations:        %d ok, %d failed in %.1fs\n", ok, failed, r.elapsed.Seconds())
	fmt.Fprintf(out, "throughput:        %.1f ops/s\n", float64(ok)/r.elapsed.Seconds())
	fmt.Fprintf(out, "latency:           p50 %v  p90 %v  p99 %v  max %v\n",
		ms(percentile(lat, 0.50)), ms(percentile(lat, 0.90)), ms(percentile(lat, 0.99)), ms(percentile(lat, 1)))
	if later := r.later; len(later) > 0 {
		// a client's first dashboard reads its access scope and documents from ERP.net (with -distinct nobody
		// else's answers serve it); the later ones show what a user gets once there
		slices.Sort(later)
		fmt.Fprintf(out, "latency after 1st: p50 %v  p90 %v  p99 %v  max %v (%d ops after each client's first completed one)\n",
			ms(percentile(later, 0.50)), ms(percentile(later, 0.90)), ms(percentile(later, 0.99)), ms(percentile(later, 1)), len(later))
	}
	fmt.Fprintf(out, "upstream:          %.2f HTTP requests/op (%d), %.2f $batch parts/op (%d)\n",
		perOp(st.DomainRequests), st.DomainRequests, perOp(st.BatchParts), st.BatchParts)
	fmt.Fprintf(out, "reads:             %.2f per op (%d: $batch parts + plain GETs, what ERP.net executes)\n", perOp(st.Reads), st.Reads)
	fmt.Fprintf(out, "erpsim answers:    %d × 429, %d × 503, %d × 401; %d token requests\n",
		st.Status429, st.Status503, st.Status401, st.TokenRequests)
	switch {
	case !r.cpuOK:
		fmt.Fprintln(out, "cpu:               not available on this system")
	case r.inprocess:
		fmt.Fprintf(out, "cpu:               %.2f s per 1000 ops, whole process: erpgraph + erpsim + load clients (-inprocess; %.1fs in %.1fs)\n",
			perThousand(r.cpu, total), r.cpu.Seconds(), r.elapsed.Seconds())
	default:
		fmt.Fprintf(out, "erpgraph cpu:      %.2f s per 1000 ops (its own process, getrusage user+system; %.1fs in %.1fs)\n",
			perThousand(r.cpu, total), r.cpu.Seconds(), r.elapsed.Seconds())
	}
	who := "erpgraph"
	if r.inprocess {
		who = "process"
	}
	fmt.Fprintf(out, "memory:            %s RSS %s at the end, %s sampled peak, %s peak since start\n",
		who, loadclient.FormatBytes(r.rss), loadclient.FormatBytes(r.rssPeak), loadclient.FormatBytes(r.rssMax))
	done, least, most := 0, -1, 0
	for _, n := range r.perUser {
		if n > 0 {
			done++
		}
		if least < 0 || n < least {
			least = n
		}
		most = max(most, n)
	}
	fmt.Fprintf(out, "clients:           %d of %d completed at least one op (ops per client: min %d, max %d)\n",
		done, len(r.perUser), least, most)
	if len(r.refusals) > 0 {
		slices.Sort(r.refusals)
		fmt.Fprintf(out, "refusals:          %d × %s answered in p50 %v  p99 %v  max %v; %d with Retry-After\n",
			len(r.refusals), codeBusy, ms(percentile(r.refusals, 0.5)), ms(percentile(r.refusals, 0.99)),
			ms(percentile(r.refusals, 1)), r.refusedRA)
		paths := make([]string, 0, len(r.refusedAt))
		for p := range r.refusedAt {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			fmt.Fprintf(out, "                   %d refused at %s\n", r.refusedAt[p], p)
		}
	}
	if failed > 0 {
		codes := make([]string, 0, len(r.failures))
		for c := range r.failures {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			fmt.Fprintf(out, "failures:          %d × %s\n", r.failures[c], c)
		}
	}
}

func perThousand(d time.Duration, ops int) float64 {
	if ops == 0 {
		return 0
	}
	return d.Seconds() * 1000 / float64(ops)
}
