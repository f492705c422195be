// Command erpsoak is erpgraph's load and soak harness. It starts erpsim in-process at ERP.net's default session
// limits, runs erpgraph (the real program, app.New, with its own per-user rate limits off so the upstream is what
// is measured) against it, and has N simulated portal users — the demo external users, each signed in at erpsim and
// refreshing its token before expiry — run a mix of operations (dashboard, filtered and paged order lists, node
// lookups, product searches, invoices, shipments) for a set duration while erpsim injects a fault profile into the
// Domain API.
//
// Every -every and at the end it prints ops/s, latency percentiles, errors counted by extensions.code, upstream
// requests, 429s and 503s (erpsim's own count), RSS and goroutines. It checks on every response that only data or
// typed GraphQL errors reach clients (every error has a documented extensions.code), that no user ever receives a
// document of a customer they may not act for (against the Domain API read directly with another application's
// service token), that nothing answered INTERNAL_SERVER_ERROR (recovered panics), and, for runs of a minute or more,
// that memory and goroutines stay flat (last third of the samples against the first). It exits 1 if an invariant
// fails.
//
// Usage (the acceptance soak):
//
//	go run ./cmd/erpsoak -users 20 -duration 10m -fault-5xx 0.10 -fault-timeout 0.01
//
// All traffic stays on 127.0.0.1; the run ends by itself after -duration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/internal/loadclient"
	"github.com/erpgraph/erpgraph/server"
)

// maxDuration bounds a run, so a typo cannot load the machine for a day.
const maxDuration = 2 * time.Hour

// flatAfter is the shortest run whose memory and goroutine samples are judged:
// shorter runs are dominated by warm-up.
const flatAfter = time.Minute

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "erpsoak:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	users         int
	duration      time.Duration
	every         time.Duration
	sample        time.Duration
	think         time.Duration
	latency       time.Duration
	scale         int
	tokenLifetime time.Duration
	seed          uint64
	verbose       bool
	writes        bool
	faults        faultProfile
}

type faultProfile struct {
	rate5xx, rateTimeout, rate429, rate503, rateMalformed, rateDrop, rateSlow float64
	timeoutDelay, slowDelay                                                   time.Duration
	status5xx                                                                 int
}

// erpsimFaults turns the profile into erpsim faults on the Domain API. Each
// fault draws on its own, so the rates are per upstream request.
func (p faultProfile) erpsimFaults() []erpsim.Fault {
	const domain = "/api/domain/odata/"
	var fs []erpsim.Fault
	add := func(rate float64, f erpsim.Fault) {
		if rate > 0 {
			f.Path, f.Rate = domain, rate
			fs = append(fs, f)
		}
	}
	// A timeout is an answer that never comes: held past erpgraph's deadlines, then dropped.
	add(p.rateTimeout, erpsim.Fault{Delay: p.timeoutDelay, Drop: true})
	add(p.rate5xx, erpsim.Fault{Status: p.status5xx})
	add(p.rate429, erpsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1})
	add(p.rate503, erpsim.Fault{Status: http.StatusServiceUnavailable, RetryAfter: 5})
	add(p.rateMalformed, erpsim.Fault{Malformed: true})
	add(p.rateDrop, erpsim.Fault{Drop: true})
	add(p.rateSlow, erpsim.Fault{Delay: p.slowDelay})
	return fs
}

func (p faultProfile) String() string {
	var parts []string
	for _, f := range []struct {
		name string
		rate float64
	}{{strconv.Itoa(p.status5xx), p.rate5xx}, {"timeout", p.rateTimeout}, {"429", p.rate429}, {"503", p.rate503},
		{"malformed", p.rateMalformed}, {"drop", p.rateDrop}, {"slow", p.rateSlow}} {
		if f.rate > 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f%%", f.name, f.rate*100))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("erpsoak", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.users, "users", 20, "simulated users, signed in round-robin as the demo external users")
	fs.DurationVar(&o.duration, "duration", time.Minute, "how long to run (at most 2h)")
	fs.DurationVar(&o.every, "every", 10*time.Second, "print a progress line this often")
	fs.DurationVar(&o.sample, "sample", 2*time.Second, "sample RSS and goroutines this often")
	fs.DurationVar(&o.think, "think", 200*time.Millisecond, "mean pause of a user between operations (uniform 0..2×think)")
	fs.DurationVar(&o.latency, "latency", 0, "erpsim latency added to every Domain API request")
	fs.IntVar(&o.scale, "scale", 1, "erpsim demo data multiplier")
	fs.DurationVar(&o.tokenLifetime, "token-lifetime", time.Hour, "erpsim access-token lifetime (users refresh at 80%)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the users' operation choices")
	fs.BoolVar(&o.verbose, "v", false, "erpgraph's warnings and errors to stderr")
	fs.BoolVar(&o.writes, "writes", true, "the mix places orders too (createSalesOrder with idempotency keys, retried while the outcome is unknown); checks no duplicate order per key and no lost acknowledged write")
	fs.Float64Var(&o.faults.rate5xx, "fault-5xx", 0, "share of Domain API requests answered -status-5xx")
	fs.IntVar(&o.faults.status5xx, "status-5xx", http.StatusInternalServerError, "the status of -fault-5xx answers (500: ERP.net's own failure, with its error envelope; 502/504: a gateway's)")
	fs.Float64Var(&o.faults.rateTimeout, "fault-timeout", 0, "share of Domain API requests never answered (held -timeout-delay, then dropped)")
	fs.Float64Var(&o.faults.rate429, "fault-429", 0, "share of Domain API requests answered 429 (Retry-After 1)")
	fs.Float64Var(&o.faults.rate503, "fault-503", 0, "share of Domain API requests answered 503 license exhaustion (Retry-After 5)")
	fs.Float64Var(&o.faults.rateMalformed, "fault-malformed", 0, "share of Domain API requests answered 200 with broken JSON")
	fs.Float64Var(&o.faults.rateDrop, "fault-drop", 0, "share of Domain API requests whose connection is closed without an answer")
	fs.Float64Var(&o.faults.rateSlow, "fault-slow", 0, "share of Domain API requests delayed by -slow-delay")
	fs.DurationVar(&o.faults.timeoutDelay, "timeout-delay", 20*time.Second, "how long a timed-out request is held (beyond erpgraph's 15s operation deadline)")
	fs.DurationVar(&o.faults.slowDelay, "slow-delay", 2*time.Second, "delay of a slow request")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if o.users < 1 || o.users > 1000 {
		errs = append(errs, fmt.Errorf("-users %d: want 1..1000", o.users))
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration %v: want up to %v", o.duration, maxDuration))
	}
	if o.every <= 0 || o.sample <= 0 || o.think < 0 {
		errs = append(errs, errors.New("-every and -sample must be positive, -think not negative"))
	}
	if o.latency < 0 || o.latency > 5*time.Second || o.faults.timeoutDelay < 0 || o.faults.slowDelay < 0 {
		errs = append(errs, errors.New("-latency (at most 5s), -timeout-delay and -slow-delay must not be negative"))
	}
	if o.faults.status5xx < 500 || o.faults.status5xx > 599 {
		errs = append(errs, fmt.Errorf("-status-5xx %d: want 500..599", o.faults.status5xx))
	}
	if o.scale < 1 || o.scale > 100 {
		errs = append(errs, fmt.Errorf("-scale %d: want 1..100", o.scale))
	}
	if o.tokenLifetime < time.Minute {
		errs = append(errs, fmt.Errorf("-token-lifetime %v: want at least 1m", o.tokenLifetime))
	}
	for name, r := range map[string]float64{"5xx": o.faults.rate5xx, "timeout": o.faults.rateTimeout, "429": o.faults.rate429,
		"503": o.faults.rate503, "malformed": o.faults.rateMalformed, "drop": o.faults.rateDrop, "slow": o.faults.rateSlow} {
		// erpsim reads a rate of 1 (or 0) as "every request": 1 is allowed, it means an outage.
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("-fault-%s %v: want 0..1", name, r))
		}
	}
	return o, errors.Join(errs...)
}

// logins are the demo external users the first simulated users sign in as:
// owners, multi-customer, basic and no-access users, so every access shape is
// exercised. Every further simulated user is one of erpsim's generated portal
// users (portal.user001, ...), each a different person with a customer of
// their own, so users do not answer each other's reads.
var logins = []string{fixture.OwnerLogin, fixture.MultiLogin, fixture.BasicLogin, fixture.NoAccessLogin}

// loginOf is simulated user i's login, and generated is how many portal users
// erpsim must generate for n simulated users.
func loginOf(i int) string {
	if i < len(logins) {
		return logins[i]
	}
	return fixture.GeneratedLogin(i - len(logins) + 1)
}

func generated(n int) int { return max(0, n-len(logins)) }

// result is what a run measured; run prints it and judges the invariants.
type result struct {
	ops, okOps, partialOps, failedOps int
	elapsed                           time.Duration
	latencies                         []time.Duration
	codes                             map[string]int
	perLogin                          map[string]*[3]int // ok, partial, failed
	untyped, wrongUser                []string           // first few examples
	untypedN, wrongUserN              int
	samples                           []sample
	upstream                          erpsim.Stats
	panics                            int            // recovered panics in erpgraph's log
	writeOrders                       int            // keyed orders ERP.net holds after the run, beyond those before
	writeKeys, writeReplays           int            // keys acknowledged; answers that were replays
	writeUnknown                      int            // keys given up with the outcome unknown
	writeFailures                     []string       // ledger invariants that failed
	internalCauses                    map[string]int // what erpgraph logged behind INTERNAL_SERVER_ERROR answers
}

type sample struct {
	at         time.Duration
	rss        int64 // bytes; 0 where /proc is not available
	goroutines int
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	res, err := soak(ctx, o, out)
	if err != nil {
		return err
	}
	return judge(o, res, out)
}

// soak sets everything up, runs the users for o.duration and measures.
func soak(ctx context.Context, o options, out io.Writer) (*result, error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	sim, err := erpsim.Start(ctx, erpsim.Options{Scale: o.scale, Users: generated(o.users), TokenLifetime: o.tokenLifetime}) // zero Limits: ERP.net's defaults
	if err != nil {
		return nil, err
	}
	defer sim.Close()
	sim.SetLatency(o.latency, 0)
	watch := newLogWatch()
	var verbose slog.Handler
	if o.verbose {
		verbose = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})
	}
	logger := slog.New(watch.handler(verbose))
	a, err := app.New(ctx, app.Config{
		Addr: "127.0.0.1:0", InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Logger: logger, AuditLog: "off",
		// The users all come from 127.0.0.1 and run flat out: erpgraph's own edge limits would measure themselves.
		RateLimit: server.RateLimitConfig{UserRate: -1, AnonRate: -1, MaxConcurrent: -1},
		Writes:    app.WritesConfig{Enabled: o.writes, PerMinute: -1},
	})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	serveCtx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx) }()
	defer func() { stopServe(); <-served }()

	svc, err := sim.ServiceToken(ctx, fixture.OtherClientID)
	if err != nil {
		return nil, fmt.Errorf("oracle service token: %w", err)
	}
	oracle, err := loadOwners(ctx, sim.ODataURL(), svc.AccessToken, generated(o.users))
	if err != nil {
		return nil, err
	}

	client := loadclient.NewHTTPClient(o.users)
	defer client.CloseIdleConnections()
	names := make([]string, o.users)
	for i := range names {
		names[i] = loginOf(i)
	}
	signedIn, err := loadclient.SignInAll(ctx, sim, names)
	if err != nil {
		return nil, err
	}
	var led *ledger
	keyedBefore := 0
	if o.writes {
		led = newLedger()
		if keyedBefore, err = countKeyed(ctx, sim.ODataURL(), svc.AccessToken); err != nil {
			return nil, err
		}
	}
	users := make([]*user, o.users)
	for i, si := range signedIn {
		users[i] = &user{User: si, url: a.URL() + "/graphql", http: client, rnd: rand.New(rand.NewPCG(o.seed, uint64(i))),
			led: led, owners: oracle}
	}
	// Warm-up, healthy: scopes and reference data cached, the service session open.
	for _, u := range users[:min(len(users), len(logins))] {
		u.run(ctx, "dashboard", func(*gqlResponse, int, error) {})
	}
	sim.SetFaults(o.faults.erpsimFaults()...)
	sim.ResetRequests()

	fmt.Fprintf(out, "erpsoak: %d users, %v, faults: %s; erpsim latency %v, scale %d, ERP.net default session limits\n",
		o.users, o.duration, o.faults, o.latency, o.scale)
	var (
		mu  sync.Mutex
		res = &result{codes: map[string]int{}, perLogin: map[string]*[3]int{}}
	)
	record := func(login string, d time.Duration, resp *gqlResponse, status int, err error) {
		v := oracle.judge(login, resp, status, err)
		mu.Lock()
		defer mu.Unlock()
		res.ops++
		pl := res.perLogin[login]
		if pl == nil {
			pl = new([3]int)
			res.perLogin[login] = pl
		}
		switch {
		case len(v.codes) == 0:
			res.okOps++
			pl[0]++
			res.latencies = append(res.latencies, d)
		case v.dataServed:
			res.partialOps++
			pl[1]++
			res.latencies = append(res.latencies, d)
		default:
			res.failedOps++
			pl[2]++
		}
		for _, c := range v.codes {
			res.codes[c]++
		}
		res.untypedN += len(v.untyped)
		res.wrongUserN += len(v.wrongUser)
		res.untyped = appendFew(res.untyped, v.untyped...)
		res.wrongUser = appendFew(res.wrongUser, v.wrongUser...)
	}

	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for runCtx.Err() == nil {
				t0 := time.Now()
				u.run(runCtx, u.pick(), func(resp *gqlResponse, status int, err error) {
					if runCtx.Err() != nil && err != nil {
						return // cut off by the end of the run: not a result
					}
					record(u.Login, time.Since(t0), resp, status, err)
					t0 = time.Now()
				})
				if o.think > 0 {
					loadclient.Pause(runCtx, time.Duration(u.rnd.Int64N(2*int64(o.think))))
				}
			}
		})
	}

	every, sampleTick := time.NewTicker(o.every), time.NewTicker(o.sample)
	defer every.Stop()
	defer sampleTick.Stop()
	takeSample := func() {
		s := sample{at: time.Since(start), rss: loadclient.RSS(), goroutines: runtime.NumGoroutine()}
		mu.Lock()
		res.samples = append(res.samples, s)
		mu.Unlock()
	}
	takeSample()
	var lastOps, lastLat int
	lastAt := start
	for runCtx.Err() == nil {
		select {
		case <-sampleTick.C:
			takeSample()
		case now := <-every.C:
			mu.Lock()
			progress(out, now.Sub(start), now.Sub(lastAt), res, lastOps, lastLat, sim.Stats())
			lastOps, lastLat, lastAt = res.ops, len(res.latencies), now
			mu.Unlock()
		case <-runCtx.Done():
		}
	}
	wg.Wait()
	takeSample()
	res.elapsed = time.Since(start)
	res.upstream = sim.Stats()
	res.panics, res.internalCauses = watch.counts()
	sim.SetFaults()
	if led != nil {
		if res.writeOrders, res.writeFailures, err = led.verify(ctx, sim.ODataURL(), svc.AccessToken, keyedBefore, oracle); err != nil {
			return nil, err
		}
		res.writeKeys, res.writeReplays, res.writeUnknown = led.counts()
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	return res, nil
}

func appendFew(list []string, more ...string) []string {
	for _, m := range more {
		if len(list) < 5 {
			list = append(list, m)
		}
	}
	return list
}

// progress prints one line: the interval's rate and latencies, cumulative
// error codes, upstream counts, RSS and goroutines.
func progress(out io.Writer, at, interval time.Duration, r *result, lastOps, lastLat int, st erpsim.Stats) {
	lat := slices.Clone(r.latencies[lastLat:])
	slices.Sort(lat)
	s := sample{rss: loadclient.RSS(), goroutines: runtime.NumGoroutine()}
	fmt.Fprintf(out, "[%4.0fs] %6.1f ops/s  p50 %-7v p95 %-7v p99 %-7v | ops %d (ok %d, partial %d, failed %d) | upstream %d req, %d 429, %d 503 | RSS %.0f MiB, %d goroutines | %s\n",
		at.Seconds(), float64(r.ops-lastOps)/interval.Seconds(),
		pct(lat, 0.50), pct(lat, 0.95), pct(lat, 0.99), r.ops, r.okOps, r.partialOps, r.failedOps,
		st.DomainRequests, st.Status429, st.Status503, float64(s.rss)/(1<<20), s.goroutines, codeList(r.codes))
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)].Round(time.Millisecond)
}

func codeList(codes map[string]int) string {
	if len(codes) == 0 {
		return "no errors"
	}
	names := make([]string, 0, len(codes))
	for c := range codes {
		names = append(names, c)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, c := range names {
		name := c
		if name == "" {
			name = "(no code)"
		}
		parts[i] = fmt.Sprintf("%s %d", name, codes[c])
	}
	return strings.Join(parts, ", ")
}

// judge prints the summary and checks the invariants.
func judge(o options, r *result, out io.Writer) error {
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	fmt.Fprintf(out, "\nsummary after %.1fs\n", r.elapsed.Seconds())
	fmt.Fprintf(out, "operations:   %d requests: %d ok, %d partial (data and errors), %d failed; %.1f req/s\n",
		r.ops, r.okOps, r.partialOps, r.failedOps, float64(r.ops)/r.elapsed.Seconds())
	fmt.Fprintf(out, "latency:      p50 %v  p95 %v  p99 %v  max %v (requests that served data)\n",
		pct(lat, 0.50), pct(lat, 0.95), pct(lat, 0.99), pct(lat, 1))
	fmt.Fprintf(out, "errors:       %s\n", codeList(r.codes))
	var portal [3]int
	portalUsers := 0
	for l, pl := range r.perLogin {
		if !slices.Contains(logins, l) {
			portalUsers++
			for i := range portal {
				portal[i] += pl[i]
			}
		}
	}
	for _, l := range logins {
		if pl := r.perLogin[l]; pl != nil {
			fmt.Fprintf(out, "  %-16s %6d ok, %5d partial, %5d failed\n", l+":", pl[0], pl[1], pl[2])
		}
	}
	if portalUsers > 0 {
		fmt.Fprintf(out, "  %-16s %6d ok, %5d partial, %5d failed (%d generated portal users, each their own customer)\n",
			"portal.user*:", portal[0], portal[1], portal[2], portalUsers)
	}
	st := r.upstream
	fmt.Fprintf(out, "upstream:     %d Domain API requests (%.2f per request), %d $batch parts; erpsim answered %d × 429, %d × 503, %d × 401; %d token requests\n",
		st.DomainRequests, float64(st.DomainRequests)/float64(max(r.ops, 1)), st.BatchParts, st.Status429, st.Status503, st.Status401, st.TokenRequests)
	first, last := thirds(r.samples)
	fmt.Fprintf(out, "memory:       RSS %s → %s MiB (median of first and last third of %d samples)\n",
		mib(medianRSS(first)), mib(medianRSS(last)), len(r.samples))
	fmt.Fprintf(out, "goroutines:   %d → %d\n", medianG(first), medianG(last))
	fmt.Fprintf(out, "panics:       %d recovered in erpgraph's log\n", r.panics)
	if o.writes {
		fmt.Fprintf(out, "writes:       %d keys acknowledged (%d answers to a repeated key), %d given up with the outcome unknown; ERP.net holds %d new keyed orders\n",
			r.writeKeys, r.writeReplays, r.writeUnknown, r.writeOrders)
	}

	var failed []string
	if r.untypedN > 0 {
		failed = append(failed, fmt.Sprintf("%d untyped errors or non-GraphQL answers, e.g. %q", r.untypedN, r.untyped))
	}
	if r.wrongUserN > 0 {
		failed = append(failed, fmt.Sprintf("%d documents of another user's customers, e.g. %q", r.wrongUserN, r.wrongUser))
	}
	if r.panics > 0 {
		failed = append(failed, fmt.Sprintf("%d recovered panics in erpgraph's log", r.panics))
	}
	failed = append(failed, r.writeFailures...)
	if n := r.codes[errcode.Internal]; n > 0 {
		failed = append(failed, fmt.Sprintf("%d INTERNAL_SERVER_ERROR errors (%d of them recovered panics); erpgraph logged as causes:%s",
			n, r.panics, causeList(r.internalCauses)))
	}
	if r.okOps+r.partialOps == 0 {
		failed = append(failed, "no request served any data")
	}
	if r.elapsed >= flatAfter {
		if f, l := medianRSS(first), medianRSS(last); f > 0 && l > f*3/2+32<<20 {
			failed = append(failed, fmt.Sprintf("RSS grew from %s to %s MiB", mib(f), mib(l)))
		}
		if f, l := medianG(first), medianG(last); l > f*3/2+2*o.users+20 {
			failed = append(failed, fmt.Sprintf("goroutines grew from %d to %d", f, l))
		}
	} else {
		fmt.Fprintf(out, "flatness:     not judged (runs shorter than %v are mostly warm-up)\n", flatAfter)
	}
	if len(failed) > 0 {
		fmt.Fprintln(out, "\nINVARIANTS FAILED:")
		for _, f := range failed {
			fmt.Fprintln(out, "  -", f)
		}
		return errInvariants
	}
	fmt.Fprintln(out, "\ninvariants:   ok (only data or typed errors, no wrong-user data, no INTERNAL_SERVER_ERROR, memory and goroutines flat)")
	return nil
}

// causeList renders the most frequent causes first, one per line.
func causeList(causes map[string]int) string {
	keys := make([]string, 0, len(causes))
	for k := range causes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return causes[keys[i]] > causes[keys[j]] })
	var b strings.Builder
	for i, k := range keys {
		if i == 5 {
			break
		}
		fmt.Fprintf(&b, "\n      %d × %s", causes[k], k)
	}
	return b.String()
}

func thirds(s []sample) (first, last []sample) {
	n := len(s) / 3
	if n == 0 {
		return s, s
	}
	return s[:n], s[len(s)-n:]
}

func medianRSS(s []sample) int64 { return median(s, func(x sample) int64 { return x.rss }) }

func medianG(s []sample) int { return median(s, func(x sample) int { return x.goroutines }) }

func median[T int | int64](s []sample, field func(sample) T) T {
	if len(s) == 0 {
		return 0
	}
	v := make([]T, len(s))
	for i, x := range s {
		v[i] = field(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func mib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }
