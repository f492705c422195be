package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
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

// benchUsers is how many distinct portal users the dashboard benchmark signs in as (each the Owner, or another
// role that sees orders, of a customer of their own).
const benchUsers = 50

// driverEnv makes the test binary the benchmark's driver (see TestMain): erpsim and the clients, in a process of
// their own, so that the benchmark's process is erpgraph alone.
const driverEnv = "ERPGRAPH_BENCH_DRIVER"

func TestMain(m *testing.M) {
	if os.Getenv(driverEnv) == "1" {
		if err := runDriver(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench driver:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkApp_Dashboard runs the dashboard through the real program (app.New, its HTTP server, erpclient)
// against erpsim with every upstream limit off and no latency, one operation at a time, each for the next of
// benchUsers distinct users (round robin). erpsim and the clients run in a child process (this test binary again,
// see runDriver), so cpu-ms/op is the CPU time (user and system) of erpgraph's process alone per operation, and
// -cpuprofile profiles erpgraph alone. cache=off reads and decodes every upstream answer; cache=on is erpgraph's
// default read cache. gc-cpu-ms/op is the garbage collector's share of cpu-ms/op; reads/op counts the upstream
// reads ($batch parts one by one):
//
//	go test -run '^$' -bench Dashboard -benchtime 300x -cpuprofile cpu.out ./app
//	go tool pprof -top app.test cpu.out
func BenchmarkApp_Dashboard(b *testing.B) {
	for _, cache := range []string{"off", "on"} {
		b.Run("cache="+cache, func(b *testing.B) { benchDashboardCache(b, cache == "off", app.TracingConfig{}) })
	}
}

// BenchmarkApp_DashboardTraces is the dashboard (read cache off) with tracing off and on: on, every operation's
// spans (about ten) go through the SDK's batch processor and the OTLP/HTTP exporter to a receiver in this process
// that reads and drops them, so cpu-ms/op includes exporting (and a little receiving); off is what every
// deployment without OTEL_EXPORTER_OTLP_ENDPOINT pays:
//
//	go test -run '^$' -bench DashboardTraces -benchtime 300x ./app
func BenchmarkApp_DashboardTraces(b *testing.B) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer receiver.Close()
	// the read cache off: every operation makes its ERP.net requests, so every span of the tree is made
	b.Run("traces=off", func(b *testing.B) { benchDashboardCache(b, true, app.TracingConfig{}) })
	b.Run("traces=on", func(b *testing.B) {
		benchDashboardCache(b, true, app.TracingConfig{TracesEndpoint: receiver.URL + "/v1/traces"})
	})
}

func benchDashboardCache(b *testing.B, cacheOff bool, tracing app.TracingConfig) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := startDriver(b)
	defer d.close(b)
	a, err := app.New(ctx, app.Config{
		Addr: "127.0.0.1:0", InstanceURL: d.simURL, ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Logger:    quiet,
		ReadCache: app.ReadCacheConfig{Off: cacheOff},
		Tracing:   tracing,
		Scheduler: erpclient.SchedulerConfig{MaxInFlight: 64, RequestsPerMinute: 1 << 30, MaxQueuePerCaller: -1},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	// Every user's access scope is resolved (and cached) before measuring; then the upstream count starts at 0.
	d.ask(b, "app "+a.URL())
	cpu0, gc0 := cpuTime(), gcTime()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		d.ask(b, "op")
		n++
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(n), "cpu-ms/op")
	b.ReportMetric(float64((gcTime()-gc0).Microseconds())/1000/float64(n), "gc-cpu-ms/op")
	reads, err := strconv.Atoi(d.ask(b, "reads"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(reads)/float64(n), "reads/op")
}

// driver is the child process running erpsim and the clients; the benchmark talks to it in lines.
type driver struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr strings.Builder
	simURL string
}

func startDriver(b *testing.B) *driver {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	d := &driver{cmd: exec.Command(self, "-test.run=^$")}
	d.cmd.Env = append(os.Environ(), driverEnv+"=1")
	d.cmd.Stderr = &d.stderr
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	d.lines = bufio.NewScanner(out)
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	d.simURL = d.read(b)
	return d
}

func (d *driver) read(b *testing.B) string {
	b.Helper()
	if !d.lines.Scan() {
		b.Fatalf("bench driver ended: %v %s", d.lines.Err(), d.stderr.String())
	}
	line := d.lines.Text()
	if msg, bad := strings.CutPrefix(line, "error "); bad {
		b.Fatal(msg)
	}
	return strings.TrimPrefix(line, "ok ")
}

func (d *driver) ask(b *testing.B, cmd string) string {
	b.Helper()
	if _, err := fmt.Fprintln(d.stdin, cmd); err != nil {
		b.Fatal(err)
	}
	return d.read(b)
}

func (d *driver) close(b *testing.B) {
	_ = d.stdin.Close()
	if err := d.cmd.Wait(); err != nil {
		b.Errorf("bench driver: %v %s", err, d.stderr.String())
	}
}

// runDriver is the driver: it starts erpsim with benchUsers generated users and answers "ok SIM-URL"; then, line
// by line: "app URL" signs every user in and runs one dashboard each against erpgraph at URL, then forgets the
// upstream requests so far; "op" runs one dashboard as the next user; "reads" answers the upstream reads since
// "app". Every answer is one line, "ok ..." or "error TEXT". It ends when its input does.
func runDriver(in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logins []string
	generate := 0
	for k := 1; len(logins) < benchUsers; k++ {
		if fixture.GeneratedSeesOrders(k) {
			logins = append(logins, fixture.GeneratedLogin(k))
		}
		generate = k
	}
	sim, err := erpsim.Start(ctx, erpsim.Options{Limits: erpsim.Unlimited(), Users: generate, Logger: quiet})
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintln(out, "ok", sim.URL())

	var (
		url    string
		tokens []string
		next   int
	)
	body, _ := json.Marshal(map[string]any{"query": benchDashboard})
	client := &http.Client{Timeout: 30 * time.Second}
	dashboard := func(token string) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || strings.Contains(string(raw), `"errors"`) || !strings.Contains(string(raw), `"lines":[{`) {
			return fmt.Errorf("status %d: %.300s", res.StatusCode, raw)
		}
		return nil
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		answer, err := "", error(nil)
		switch cmd := sc.Text(); {
		case strings.HasPrefix(cmd, "app "):
			url = strings.TrimPrefix(cmd, "app ")
			tokens = tokens[:0]
			for _, login := range logins {
				tk, lerr := sim.Login(ctx, fixture.PlaygroundClientID, login, fixture.DemoPassword, "openid", "profile", "read")
				if err = lerr; err != nil {
					break
				}
				tokens = append(tokens, tk.AccessToken)
				if err = dashboard(tk.AccessToken); err != nil {
					break
				}
			}
			sim.ResetRequests()
		case cmd == "op":
			if len(tokens) == 0 {
				err = errors.New("op before app")
				break
			}
			err = dashboard(tokens[next%len(tokens)])
			next++
		case cmd == "reads":
			reads := 0
			for _, r := range sim.Requests() {
				if strings.HasPrefix(r.Path, "/api/domain/odata/") {
					reads += max(r.BatchParts, 1)
				}
			}
			answer = strconv.Itoa(reads)
		default:
			err = fmt.Errorf("unknown command %q", cmd)
		}
		if err != nil {
			fmt.Fprintln(out, "error", strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Fprintln(out, "ok", answer)
	}
	return sc.Err()
}

// gcTime is the CPU time the garbage collector has used (runtime/metrics' estimate), a share of cpuTime.
func gcTime() time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64 {
		return 0
	}
	return time.Duration(s[0].Value.Float64() * float64(time.Second))
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
