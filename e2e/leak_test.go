package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

// The whole program leaves no goroutine behind: erpsim and erpgraph start, serve successful, failing, refused and
// abandoned requests (upstream 5xx, dropped connections, malformed answers, a client that gives up while ERP.net
// hangs), shut down and close. goleak compares the goroutines with those running before (TestMain's shared stack).
func TestLeaks_WholeProgram(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := startStack(t)
	stopped := false
	defer func() {
		if !stopped {
			s.stop()
		}
	}()
	anna, boris := s.login(t, fixture.OwnerLogin), s.login(t, fixture.MultiLogin)
	const dashboard = `{ me { login } salesOrders(first: 5) { totalCount nodes { id documentNo customer { number party { name } }
	  lines { product { partNumber name } } invoices { documentNo } } } products(first: 3) { nodes { partNumber group { name } } } }`

	var wg sync.WaitGroup
	for i := range 8 { // concurrent users, healthy upstream
		tok := []string{anna, boris}[i%2]
		wg.Go(func() {
			if r := s.mustPost(t, tok, dashboard, nil); len(r.Errors) > 0 {
				t.Errorf("healthy dashboard: %+v", r.Errors)
			}
		})
	}
	wg.Wait()
	if r := s.mustPost(t, "not-a-token", `{ me { login } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Errorf("bad token: %+v", r.Errors)
	}

	for _, f := range []erpsim.Fault{
		{Path: "/api/domain/odata/", Rate: 0.5, Status: http.StatusInternalServerError},
		{Path: "/api/domain/odata/", Rate: 0.5, Drop: true},
		{Path: "/api/domain/odata/", Rate: 0.5, Malformed: true},
		{Path: "/api/domain/odata/", Rate: 0.5, Status: http.StatusTooManyRequests, RetryAfter: 1},
	} {
		s.sim.SetFaults(f)
		for range 3 {
			_ = s.mustPost(t, anna, `{ products(first: 3, filter: {nameContains: "tea"}) { nodes { partNumber } } }`, nil)
		}
	}
	// Wait until erpgraph reads from ERP.net again: right after the faults, a 429's Retry-After pause or an open
	// breaker refuses the next read at once (UPSTREAM_BUSY/UNAVAILABLE), which would end the request below before
	// it ever hangs. Each probe filters differently, so no cached answer stands in for a read.
	s.sim.SetFaults()
	probe := 0
	eventually(t, "erpgraph reading from ERP.net again", func() bool {
		probe++
		r := s.mustPost(t, boris, fmt.Sprintf(`{ products(first: 1, filter: {nameContains: "probe%d"}) { nodes { partNumber } } }`, probe), nil)
		return len(r.Errors) == 0
	})
	// A client that gives up while ERP.net hangs: its request, the upstream call and the batch must all end.
	s.sim.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if _, err := s.post(ctx, boris, `{ invoices(first: 2) { nodes { documentNo } } }`, nil); err == nil ||
		!strings.Contains(err.Error(), "deadline") {
		t.Errorf("hung upstream: request ended with %v, want the client's deadline", err)
	}
	cancel()
	s.sim.SetFaults()

	stopped = true
	s.stop()
}
