// Command erpwrites measures the write side under read load: erpsim in-process at ERP.net's default session
// limits (one request in flight, 600 per minute), erpgraph (app.New, writes on, its own edge limits off) against
// it, -readers portal users (each a distinct generated user) running the dashboard query flat out, and -writers
// other users placing orders with idempotency keys. It runs the readers alone for -duration, then readers and
// writers together for -duration, and prints for each phase the read rate and p50/p99, and for the second the
// writes per second through the one ERP.net session, their p50/p99, and the upstream requests and writes erpsim
// executed.
//
// Usage:
//
//	go run ./cmd/erpwrites -readers 100 -writers 10 -duration 20s
//
// All traffic stays on 127.0.0.1.
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
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph/model"
	"github.com/erpgraph/erpgraph/internal/loadclient"
	"github.com/erpgraph/erpgraph/server"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "erpwrites:", err)
		}
		os.Exit(1)
	}
}

const createMutation = `mutation Place($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) { salesOrder { id version } userErrors { code } }
}`

type options struct {
	readers, writers int
	duration         time.Duration
	latency          time.Duration
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("erpwrites", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.readers, "readers", 100, "concurrent reading users (dashboard query, flat out)")
	fs.IntVar(&o.writers, "writers", 10, "concurrent writing users (createSalesOrder with an idempotency key, flat out)")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "length of each phase (at most 5m)")
	fs.DurationVar(&o.latency, "latency", 0, "erpsim latency added to every Domain API request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.readers < 1 || o.readers > 1000 || o.writers < 1 || o.writers > 200 || o.duration <= 0 || o.duration > 5*time.Minute || o.latency < 0 {
		return errors.New("want 1..1000 readers, 1..200 writers, a duration up to 5m and a latency not negative")
	}
	// Distinct generated users whose role allows orders: the first readers read, the rest write.
	var logins []string
	var customers []string
	k := 0
	for len(logins) < o.readers+o.writers {
		k++
		if fixture.GeneratedSeesOrders(k) {
			logins = append(logins, fixture.GeneratedLogin(k))
			customers = append(customers, model.EncodeID("Customer", fixture.CustomerID(fixture.GeneratedN(k))))
		}
	}
	sim, err := erpsim.Start(ctx, erpsim.Options{Users: k}) // zero Limits: ERP.net's defaults
	if err != nil {
		return err
	}
	defer sim.Close()
	sim.SetLatency(o.latency, 0)
	a, err := app.New(ctx, app.Config{
		Addr: "127.0.0.1:0", InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Logger: slog.New(slog.DiscardHandler), AuditLog: "off",
		RateLimit: server.RateLimitConfig{UserRate: -1, AnonRate: -1, MaxConcurrent: -1},
		Writes:    app.WritesConfig{Enabled: true, PerMinute: -1},
	})
	if err != nil {
		return err
	}
	defer a.Close()
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx) }()
	defer func() { stopServe(); <-served }()
	users, err := loadclient.SignInAll(ctx, sim, logins)
	if err != nil {
		return err
	}
	client := loadclient.NewHTTPClient(len(users))
	defer client.CloseIdleConnections()
	gql := a.URL() + "/graphql"
	for _, u := range users[:o.readers] { // warm: scopes and reference data cached
		_, _ = loadclient.Post(ctx, client, gql, u, loadclient.DashboardQuery, nil)
	}
	fmt.Fprintf(out, "erpwrites: %d readers, %d writers, %v per phase, erpsim latency %v, ERP.net default session limits (1 in flight, 600/min); machine shared with other processes\n",
		o.readers, o.writers, o.duration, o.latency)

	phase := func(name string, writers int) {
		var mu sync.Mutex
		var reads, writes []time.Duration
		var readErrs, writeErrs atomic.Int64
		writeCodes := map[string]int{}
		sim.ResetRequests()
		pctx, cancel := context.WithTimeout(ctx, o.duration)
		defer cancel()
		start := time.Now()
		var wg sync.WaitGroup
		for _, u := range users[:o.readers] {
			wg.Go(func() {
				for pctx.Err() == nil {
					t0 := time.Now()
					r, err := loadclient.Post(pctx, client, gql, u, loadclient.DashboardQuery, nil)
					if pctx.Err() != nil {
						return
					}
					if err != nil || r.Code() != "" {
						readErrs.Add(1)
						continue
					}
					mu.Lock()
					reads = append(reads, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		for i := range writers {
			u, cust := users[o.readers+i], customers[o.readers+i]
			wg.Go(func() {
				for n := 0; pctx.Err() == nil; n++ {
					input := map[string]any{"customerId": cust, "idempotencyKey": fmt.Sprintf("bench-%s-%d", u.Login, n),
						"lines": []any{map[string]any{"productId": model.EncodeID("Product", fixture.ID("General_Products_Products", 1+n%30)), "quantity": "2"}}}
					t0 := time.Now()
					r, err := loadclient.Post(pctx, client, gql, u, createMutation, map[string]any{"input": input})
					if pctx.Err() != nil {
						return
					}
					if err != nil || r.Code() != "" || !created(r) {
						writeErrs.Add(1)
						mu.Lock()
						writeCodes[failure(r, err)]++
						mu.Unlock()
						continue
					}
					mu.Lock()
					writes = append(writes, time.Since(t0))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		st := sim.Stats()
		slices.Sort(reads)
		slices.Sort(writes)
		codes := ""
		if len(writeCodes) > 0 {
			codes = fmt.Sprintf(" | write failures %v", writeCodes)
		}
		fmt.Fprintf(out, "%-22s reads %7.1f/s p50 %-8v p99 %-8v (%d failed) | writes %6.2f/s p50 %-8v p99 %-8v (%d failed) | upstream %d req (%.1f/s), %d writes, %d 429",
			name+":", float64(len(reads))/el, pct(reads, 0.5), pct(reads, 0.99), readErrs.Load(),
			float64(len(writes))/el, pct(writes, 0.5), pct(writes, 0.99), writeErrs.Load(),
			st.DomainRequests, float64(st.DomainRequests)/el, st.Writes, st.Status429)
		fmt.Fprint(out, codes)
		fmt.Fprintln(out)
	}
	phase("readers only", 0)
	phase("readers + writers", o.writers)
	return nil
}

// failure names why a write failed: the transport, the top-level code, or the first userError's code.
func failure(r *loadclient.Response, err error) string {
	switch {
	case err != nil:
		return "TRANSPORT"
	case r.Code() != "":
		return r.Code()
	}
	var data struct {
		CreateSalesOrder *struct{ UserErrors []struct{ Code string } }
	}
	if json.Unmarshal(r.Data, &data) == nil && data.CreateSalesOrder != nil && len(data.CreateSalesOrder.UserErrors) > 0 {
		return data.CreateSalesOrder.UserErrors[0].Code
	}
	return "NO_ORDER"
}

// created reports whether a createSalesOrder answer carries the new order (no userErrors).
func created(r *loadclient.Response) bool {
	return len(r.Data) > 0 && !bytes.Contains(r.Data, []byte(`"userErrors":[{`)) && bytes.Contains(r.Data, []byte(`"salesOrder":{`))
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)].Round(time.Millisecond)
}
