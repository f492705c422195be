package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/errcode"
)

// TestOverload_BusyAnswersAtOnce: when the ERP.net session cannot answer within an operation's deadline, the
// operation is answered at once with typed UPSTREAM_BUSY errors carrying extensions.retryAfter, and a response
// none of whose fields got data also carries Retry-After. The session here allows 6 requests a minute (one token
// every 10 s) and operations have 3 s, so after the first request no read can make it: every read after it must
// be refused, never left to fail at the deadline (that would be UPSTREAM_UNAVAILABLE or REQUEST_CANCELLED).
func TestOverload_BusyAnswersAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := erpsim.Start(ctx, erpsim.Options{Limits: erpsim.Unlimited()})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	a, err := app.New(ctx, app.Config{
		Addr: "127.0.0.1:0", InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
		Logger: slog.New(slog.DiscardHandler), OperationTimeout: 3 * time.Second,
		Scheduler: erpclient.SchedulerConfig{RequestsPerMinute: 6},
		// the one request a minute this budget allows is for the operations: no background sync takes it
		ReadCache: app.ReadCacheConfig{SyncInterval: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	tk, err := sim.Login(ctx, fixture.PlaygroundClientID, fixture.OwnerLogin, fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		t.Fatal(err)
	}
	post := func() (resp response, retryAfter string) {
		body, _ := json.Marshal(map[string]any{"query": `{ salesOrders(first: 5) { nodes { documentNo customer { number } } } }`})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.URL()+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tk.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if err := json.Unmarshal(raw, &resp); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d %s", res.StatusCode, raw)
		}
		return resp, res.Header.Get("Retry-After")
	}
	refusedWhole := 0
	for range 3 {
		resp, retryAfter := post()
		for _, e := range resp.Errors {
			if code := e.Extensions["code"]; code != errcode.UpstreamBusy {
				t.Fatalf("error %q with code %v, want only %s: %+v", e.Message, code, errcode.UpstreamBusy, resp)
			}
			if s, ok := e.Extensions["retryAfter"].(float64); !ok || s < 1 {
				t.Errorf("error without extensions.retryAfter in whole seconds: %+v", e)
			}
		}
		var data struct{ SalesOrders *json.RawMessage }
		_ = json.Unmarshal(resp.Data, &data)
		switch {
		case len(resp.Errors) > 0 && data.SalesOrders == nil:
			refusedWhole++
			if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
				t.Errorf("a wholly refused response has Retry-After %q, want whole seconds", retryAfter)
			}
		case retryAfter != "":
			t.Errorf("Retry-After %q on a response with data: %+v", retryAfter, resp)
		}
	}
	if refusedWhole < 2 {
		t.Errorf("%d of 3 responses refused as a whole, want all but (at most) the one that got the token", refusedWhole)
	}
}
