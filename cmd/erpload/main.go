// Command erpload measures erpgraph under concurrent users: it starts erpsim in-process with ERP.net's default
// session limits, runs erpgraph (the real program, app.New) against it, signs the demo users in, and has N
// concurrent clients run the portal dashboard query for a fixed time. It prints operations per second, latency
// percentiles, upstream requests per operation and how often erpsim answered 429.
//
// Usage:
//
//	go run ./cmd/erpload -users 20 -duration 15s
//
// All traffic stays on 127.0.0.1; the run ends by itself after -duration.
package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"sync"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// dashboardQuery is the portal start page: 20 orders with customer and party, lines with products, and invoices.
const dashboardQuery = `query Dashboard {
  salesOrders(first: 20) {
    totalCount
    nodes {
      id documentNo documentDate state
      customer { id number party { name } }
      lines { lineNo quantity { value unit } unitPrice { amount currency } product { id partNumber name } }
      invoices { id documentNo documentDate }
    }
  }
}`

// maxDuration bounds a run, so a typo cannot load the machine for hours.
const maxDuration = 10 * time.Minute

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "erpload:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	users    int
	duration time.Duration
	latency  time.Duration
	scale    int
	logins   []string
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("erpload", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.users, "users", 20, "concurrent clients, signed in alternately as anna.petrova and boris.georgiev (the demo users with orders)")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "how long to run (at most 10m)")
	fs.DurationVar(&o.latency, "latency", 0, "erpsim latency added to every Domain API request (a remote ERP.net is 20-100ms away)")
	fs.IntVar(&o.scale, "scale", 1, "erpsim demo data multiplier")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if o.users < 1 || o.users > 1000 {
		errs = append(errs, fmt.Errorf("-users %d: want 1..1000", o.users))
	}
	if o.duration <= 0 || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration %v: want up to %v", o.duration, maxDuration))
	}
	if o.latency < 0 || o.latency > 5*time.Second {
		errs = append(errs, fmt.Errorf("-latency %v: want 0..5s", o.latency))
	}
	if o.scale < 1 || o.scale > 100 {
		errs = append(errs, fmt.Errorf("-scale %d: want 1..100", o.scale))
	}
	// the demo users with sales orders; the others' dashboards are empty and would only measure the edge
	o.logins = []string{fixture.OwnerLogin, fixture.MultiLogin}
	return o, errors.Join(errs...)
}

func run(args []string, out io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	sim, err := erpsim.Start(ctx, erpsim.Options{Scale: o.scale}) // zero Limits: ERP.net's defaults
	if err != nil {
		return err
	}
	defer sim.Close()
	sim.SetLatency(o.latency, 0)
	// The edge's per-user rate limit and concurrency cap are off: this command measures what erpgraph and
	// ERP.net sustain, and a few simulated users would otherwise only measure the limits' refill rate.
	a, err := app.New(ctx, app.Config{
		Addr: "127.0.0.1:0", InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Logger:    slog.New(slog.DiscardHandler),
		RateLimit: server.RateLimitConfig{UserRate: -1, AnonRate: -1, MaxConcurrent: -1},
		// erpload's clients share two demo users, so one "user" has dozens of operations in flight; the per-user
		// share of the ERP.net queue (meant for real users, whose operations the edge caps at 6) is off too.
		Scheduler: erpclient.SchedulerConfig{MaxQueuePerCaller: -1},
	})
	if err != nil {
		return err
	}
	defer a.Close()
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go a.Serve(serveCtx)
	url := a.URL() + "/graphql"

	tokens := map[string]string{}
	for _, login := range o.logins {
		tk, err := sim.Login(ctx, fixture.PlaygroundClientID, login, fixture.DemoPassword, "openid", "profile", "read")
		if err != nil {
			return fmt.Errorf("sign in %s: %w", login, err)
		}
		tokens[login] = tk.AccessToken
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.users}}

	// one warm-up operation per user: scopes cached, reference data cached, service session open
	for _, login := range o.logins {
		if _, err := dashboard(ctx, client, url, tokens[login]); err != nil {
			return fmt.Errorf("warm-up as %s: %w", login, err)
		}
	}
	sim.ResetRequests()

	fmt.Fprintf(out, "erpload: %d users, %v, erpsim latency %v, scale %d, ERP.net default session limits\n",
		o.users, o.duration, o.latency, o.scale)
	fmt.Fprintln(out, "erpload: erpgraph's per-user rate limit, concurrency cap and ERP.net queue share are off (measuring erpgraph + ERP.net, not the edge)")
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  = map[string]int{}
		wg        sync.WaitGroup
	)
	start := time.Now()
	for i := range o.users {
		token := tokens[o.logins[i%len(o.logins)]]
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Operations started before the deadline run to the end (and the elapsed time includes them), so
			// every result is a whole operation and a short run still completes one per user.
			for runCtx.Err() == nil {
				t0 := time.Now()
				code, err := dashboard(ctx, client, url, token)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					failures[code]++
				} else {
					latencies = append(latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := sim.Stats()
	report(out, latencies, failures, elapsed, st)
	return nil
}

// dashboard runs the dashboard query once; code is the first error code (or "HTTP n", "transport").
func dashboard(ctx context.Context, c *http.Client, url, token string) (code string, err error) {
	body, _ := json.Marshal(map[string]string{"query": dashboardQuery})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "request", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return "transport", err
	}
	defer resp.Body.Close()
	var r struct {
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Sprintf("HTTP %d", resp.StatusCode), err
	}
	if len(r.Errors) > 0 {
		code, _ := r.Errors[0].Extensions["code"].(string)
		return code, fmt.Errorf("%s: %s", code, r.Errors[0].Message)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP %d", resp.StatusCode), fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return "", nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

func report(out io.Writer, lat []time.Duration, failures map[string]int, elapsed time.Duration, st erpsim.Stats) {
	slices.Sort(lat)
	ok := len(lat)
	failed := 0
	for _, n := range failures {
		failed += n
	}
	total := ok + failed
	perOp := func(n int) float64 {
		if total == 0 {
			return 0
		}
		return float64(n) / float64(total)
	}
	fmt.Fprintf(out, "operations:        %d ok, %d failed in %.1fs\n", ok, failed, elapsed.Seconds())
	fmt.Fprintf(out, "throughput:        %.1f ops/s\n", float64(ok)/elapsed.Seconds())
	fmt.Fprintf(out, "latency:           p50 %v  p90 %v  p99 %v  max %v\n",
		percentile(lat, 0.50).Round(time.Millisecond), percentile(lat, 0.90).Round(time.Millisecond),
		percentile(lat, 0.99).Round(time.Millisecond), percentile(lat, 1).Round(time.Millisecond))
	fmt.Fprintf(out, "upstream:          %.2f HTTP requests/op (%d), %.2f $batch parts/op (%d)\n",
		perOp(st.DomainRequests), st.DomainRequests, perOp(st.BatchParts), st.BatchParts)
	fmt.Fprintf(out, "erpsim answers:    %d × 429, %d × 503, %d × 401; %d token requests\n",
		st.Status429, st.Status503, st.Status401, st.TokenRequests)
	if failed > 0 {
		codes := make([]string, 0, len(failures))
		for c := range failures {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			fmt.Fprintf(out, "failures:          %d × %s\n", failures[c], c)
		}
	}
}
