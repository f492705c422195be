package app_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/server"
)

func readiness(t *testing.T, url string) (int, server.Readiness) {
	t.Helper()
	res, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep server.Readiness
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return res.StatusCode, rep
}

// Readiness follows the upstreams without a restart: an identity-server
// outage leaves the instance ready but degraded (signed-in users keep being
// served with the cached keys and the service token), a Domain API outage
// makes it not ready, and both recover by themselves.
func TestApp_Readiness(t *testing.T) {
	a := run(t, devConfig(t))
	sim := a.Sim()
	tok := login(t, a, "anna.petrova")
	if code, rep := readiness(t, a.URL()); code != http.StatusOK || rep.Status != server.StatusOK ||
		rep.Components["identity"].Status != server.StatusOK || rep.Components["erp"].Status != server.StatusOK {
		t.Fatalf("healthy: %d %+v", code, rep)
	}

	sim.SetFaults(erpsim.Fault{Path: "/id/", Status: http.StatusServiceUnavailable})
	code, rep := readiness(t, a.URL())
	if code != http.StatusOK || rep.Status != server.StatusDegraded || rep.Components["identity"].Status != server.StatusDown ||
		rep.Components["identity"].Detail == "" || rep.Components["erp"].Status != server.StatusOK {
		t.Errorf("identity server down: %d %+v, want 200 degraded", code, rep)
	}
	if code, out := graphql(t, a, tok, "{ me { login } salesOrders(first: 1) { totalCount } }"); code != http.StatusOK || len(out.Errors) > 0 {
		t.Errorf("signed-in user during the identity outage: %d %+v", code, out)
	}

	sim.SetFaults(erpsim.Fault{Path: "/id/", Status: http.StatusServiceUnavailable}, erpsim.Fault{Path: "/api/domain/odata/", Drop: true})
	// Readiness takes the last upstream outcome as its evidence while it is
	// recent (erpclient.PingFresh): the user read that meets the outage is
	// what the next probe goes by, and it probes again itself.
	graphql(t, a, tok, "{ salesOrders(first: 2) { nodes { documentNo } } }")
	code, rep = readiness(t, a.URL())
	if code != http.StatusServiceUnavailable || rep.Status != server.StatusUnavailable || rep.Components["erp"].Status != server.StatusDown {
		t.Errorf("identity server and Domain API down: %d %+v, want 503", code, rep)
	}

	sim.SetFaults()
	// The client's circuit breaker may have opened; it probes on its own
	// schedule, so poll (bounded) until the instance is ready again.
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		code, rep = readiness(t, a.URL())
		if code == http.StatusOK && rep.Status == server.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready a minute after the upstreams recovered: %d %+v", code, rep)
		}
		<-tick.C // a probe's pace: an open breaker fails fast
	}
}

// A probe right after users' reads costs the ERP.net session nothing: those
// answers already prove the Domain API works, and probes come every few
// seconds from each load balancer and kubelet, out of the same 600 requests a
// minute the users need.
func TestApp_ReadinessSpendsNoSessionBudgetWhileServing(t *testing.T) {
	a := run(t, devConfig(t))
	sim := a.Sim()
	tok := login(t, a, "anna.petrova")
	if code, out := graphql(t, a, tok, "{ salesOrders(first: 1) { totalCount } }"); code != http.StatusOK || len(out.Errors) > 0 {
		t.Fatalf("read: %d %+v", code, out)
	}
	before := sim.Stats().DomainRequests
	for range 5 {
		if code, rep := readiness(t, a.URL()); code != http.StatusOK || rep.Components["erp"].Status != server.StatusOK {
			t.Fatalf("ready after a read: %d %+v", code, rep)
		}
	}
	if n := sim.Stats().DomainRequests - before; n != 0 {
		t.Errorf("5 probes after a user read made %d Domain API requests, want 0", n)
	}
}

func TestConfigFromEnv_ShutdownDelay(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envOf(map[string]string{"ERPGRAPH_SHUTDOWN_DELAY": "5s"}), nil)
	if err != nil || cfg.ShutdownDelay != 5*time.Second {
		t.Errorf("ERPGRAPH_SHUTDOWN_DELAY=5s: %v, %v", cfg.ShutdownDelay, err)
	}
	cfg, err = app.ConfigFromEnv(envOf(nil), []string{"-shutdown-delay", "2s"})
	if err != nil || cfg.ShutdownDelay != 2*time.Second {
		t.Errorf("-shutdown-delay 2s: %v, %v", cfg.ShutdownDelay, err)
	}
	for _, bad := range []string{"-1s", "soon", "1h"} {
		if _, err := app.ConfigFromEnv(envOf(map[string]string{"ERPGRAPH_SHUTDOWN_DELAY": bad}), nil); err == nil {
			t.Errorf("ERPGRAPH_SHUTDOWN_DELAY=%s accepted", bad)
		}
	}
}
