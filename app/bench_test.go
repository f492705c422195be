package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// benchDashboard is cmd/erpload's dashboard: 20 orders with customer and party, lines with products, invoices.
const benchDashboard = `query Dashboard {
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

// BenchmarkApp_Dashboard runs the dashboard through the real program (app.New, its HTTP server, erpclient) against
// erpsim in the same process with every upstream limit off and no latency, one operation at a time, alternating
// between two users of different customers. It reports the process CPU per operation (erpsim's share included;
// run with -cpuprofile and `go tool pprof -ignore erpsim` to see erpgraph's alone) and the upstream reads per
// operation:
//
//	go test -run '^$' -bench Dashboard -benchtime 300x -cpuprofile cpu.out ./app
func BenchmarkApp_Dashboard(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := erpsim.Start(ctx, erpsim.Options{Limits: erpsim.Unlimited(), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	a, err := app.New(ctx, app.Config{
		Addr: "127.0.0.1:0", InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Logger:    quiet,
		RateLimit: server.RateLimitConfig{UserRate: -1, AnonRate: -1, MaxConcurrent: -1},
		Scheduler: erpclient.SchedulerConfig{MaxInFlight: 64, RequestsPerMinute: 1 << 30, MaxQueuePerCaller: -1},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	var tokens []string
	for _, login := range []string{fixture.OwnerLogin, fixture.MultiLogin} {
		tk, err := sim.Login(ctx, fixture.PlaygroundClientID, login, fixture.DemoPassword, "openid", "profile", "read")
		if err != nil {
			b.Fatal(err)
		}
		tokens = append(tokens, tk.AccessToken)
	}
	body, _ := json.Marshal(map[string]any{"query": benchDashboard})
	client := &http.Client{Timeout: 30 * time.Second}
	dashboard := func(i int) {
		req, _ := http.NewRequest(http.MethodPost, a.URL()+"/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || strings.Contains(string(raw), `"errors"`) || !strings.Contains(string(raw), `"lines":[{`) {
			b.Fatalf("status %d: %.300s", res.StatusCode, raw)
		}
	}
	for i := range len(tokens) { // the users' access scopes are resolved (and cached) before measuring
		dashboard(i)
	}
	sim.ResetRequests()
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		dashboard(i)
		i++
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(i), "cpu-ms/op")
	reads := 0
	for _, r := range sim.Requests() {
		if strings.HasPrefix(r.Path, "/api/domain/odata/") {
			reads += max(r.BatchParts, 1)
		}
	}
	b.ReportMetric(float64(reads)/float64(i), "reads/op")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
