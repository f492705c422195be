package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// waitFor polls cond (bounded) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// The real program shuts down gracefully: with a GraphQL request waiting on
// ERP.net, SIGTERM (ctx) flips /readyz to 503, refuses a new request with
// 503 SHUTTING_DOWN, lets the waiting request finish with its data, and then
// Serve returns nil.
func TestApp_GracefulShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := erpsim.Start(ctx, erpsim.Options{Limits: erpsim.Unlimited()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	a, err := app.New(ctx, app.Config{Addr: "127.0.0.1:0", InstanceURL: sim.URL(), ClientID: fixture.BFFClientID,
		ClientSecret: fixture.BFFSecret, Logger: quiet, ShutdownGrace: time.Minute,
		// the request must wait on ERP.net: no answer from the cache, no sync request held instead
		ReadCache: app.ReadCacheConfig{Off: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx) }()
	tk, err := sim.Login(ctx, fixture.PlaygroundClientID, fixture.OwnerLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	const q = "{ salesOrders(first: 2) { totalCount nodes { documentNo } } }"
	if code, out := graphql(t, a, tk.AccessToken, q); code != http.StatusOK || len(out.Errors) > 0 {
		t.Fatalf("warm-up: %d %+v", code, out)
	}

	sim.SetLatency(time.Hour, 0)
	type result struct {
		status int
		out    gqlResponse
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, a.URL()+"/graphql", strings.NewReader(`{"query":"`+q+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer res.Body.Close()
		var out gqlResponse
		err = json.NewDecoder(res.Body).Decode(&out)
		inflight <- result{res.StatusCode, out, err}
	}()
	waitFor(t, "the request to reach ERP.net", func() bool { return sim.Held() > 0 })

	stop()
	waitFor(t, "/readyz to answer 503", func() bool { return status(t, a.URL()+"/readyz") == http.StatusServiceUnavailable })
	code, out := graphql(t, a, tk.AccessToken, q)
	if code != http.StatusServiceUnavailable || len(out.Errors) != 1 || out.Errors[0].Extensions["code"] != "SHUTTING_DOWN" {
		t.Errorf("new request while draining: %d %+v, want 503 SHUTTING_DOWN", code, out)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	default:
	}

	sim.SetLatency(0, 0)
	r := <-inflight
	if r.err != nil || r.status != http.StatusOK || len(r.out.Errors) > 0 || r.out.Data["salesOrders"] == nil {
		t.Errorf("in-flight request: %d %+v %v", r.status, r.out, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
