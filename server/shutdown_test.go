package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/server"
)

// serving runs e's server on a loopback listener until the returned cancel
// is called; served delivers Serve's result.
func serving(t *testing.T, e *env) (base string, ln net.Listener, cancel context.CancelFunc, served <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan error, 1)
	go func() { ch <- e.srv.Serve(ctx, ln) }()
	return "http://" + ln.Addr().String(), ln, cancel, ch
}

type answer struct {
	status int
	header http.Header
	close  bool // Connection: close (net/http moves the header here)
	body   string
	err    error
}

// do sends a request on a fresh connection (no keep-alive pool shared
// between steps of a test).
func do(method, url, body string) answer {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, res.Close, string(b), err}
}

// waitNotReady polls /readyz (bounded) until it answers 503: shutdown began.
func waitNotReady(t *testing.T, base string) answer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		a := do(http.MethodGet, base+"/readyz", "")
		if a.err != nil {
			t.Fatalf("/readyz while shutting down: %v", a.err)
		}
		if a.status == http.StatusServiceUnavailable {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after shutdown began", a.status)
		}
	}
}

// Cancelling Serve's context flips /readyz to 503, lets the in-flight request
// finish, answers new requests with a GraphQL-shaped 503 SHUTTING_DOWN
// (Retry-After, Connection: close), then closes the listener and returns nil.
func TestServer_GracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	e := newEnv(t, func(c *server.Config) { c.ShutdownGrace = 30 * time.Second })
	e.handle = func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "slow") {
			close(entered)
			<-release
		}
		_, _ = io.WriteString(w, `{"data":{"slow":true}}`)
	}
	base, _, cancel, served := serving(t, e)
	inflight := make(chan answer, 1)
	go func() { inflight <- do(http.MethodPost, base+"/graphql?slow", `{"query":"{slow}"}`) }()
	<-entered
	cancel()

	ready := waitNotReady(t, base)
	var rep server.Readiness
	if err := json.Unmarshal([]byte(ready.body), &rep); err != nil || rep.Status != server.StatusUnavailable {
		t.Errorf("/readyz while draining: %q (%v)", ready.body, err)
	}
	// Shutdown delay 0: draining at once, so a new request is refused.
	refused := do(http.MethodPost, base+"/graphql", `{"query":"{ __typename }"}`)
	if refused.err != nil || refused.status != http.StatusServiceUnavailable {
		t.Fatalf("new request while draining: %d %v", refused.status, refused.err)
	}
	var body struct {
		Errors []struct {
			Message    string
			Extensions struct{ Code, RequestID string }
		}
	}
	if err := json.Unmarshal([]byte(refused.body), &body); err != nil || len(body.Errors) != 1 ||
		body.Errors[0].Extensions.Code != "SHUTTING_DOWN" || body.Errors[0].Extensions.RequestID == "" {
		t.Errorf("refusal body %q (%v)", refused.body, err)
	}
	if refused.header.Get("Retry-After") == "" || !refused.close {
		t.Errorf("refusal headers: Retry-After %q, Connection: close %v", refused.header.Get("Retry-After"), refused.close)
	}
	if h := do(http.MethodGet, base+"/healthz", ""); h.status != http.StatusOK {
		t.Errorf("/healthz while draining = %d %v, want 200 (the process is alive)", h.status, h.err)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	default:
	}

	close(release)
	if r := <-inflight; r.err != nil || r.status != http.StatusOK || r.body != `{"data":{"slow":true}}` {
		t.Errorf("in-flight request: %d %q %v", r.status, r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://")); err == nil {
		c.Close()
		t.Error("listener still accepting after Serve returned")
	}
}

// With a shutdown delay, /readyz answers 503 while requests are still served
// normally, so a load balancer can take the instance out before it refuses
// anything.
func TestServer_ShutdownDelay(t *testing.T) {
	e := newEnv(t, func(c *server.Config) { c.ShutdownDelay = time.Hour })
	base, ln, cancel, served := serving(t, e)
	if a := do(http.MethodGet, base+"/readyz", ""); a.status != http.StatusOK {
		t.Fatalf("/readyz before shutdown = %d %v", a.status, a.err)
	}
	cancel()
	waitNotReady(t, base)
	if a := do(http.MethodPost, base+"/graphql", `{"query":"{ __typename }"}`); a.err != nil || a.status != http.StatusOK {
		t.Errorf("request during the shutdown delay: %d %v, want 200", a.status, a.err)
	}
	// A listener that fails ends the delay: nothing is left to serve.
	ln.Close()
	if err := <-served; err == nil || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve after its listener closed: %v", err)
	}
}

// In-flight requests that outlast the grace period are cut off, and Serve says so.
func TestServer_ShutdownGraceExceeded(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := newEnv(t, func(c *server.Config) { c.ShutdownGrace = time.Millisecond })
	e.handle = func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}
	base, _, cancel, served := serving(t, e)
	inflight := make(chan answer, 1)
	go func() { inflight <- do(http.MethodPost, base+"/graphql", `{"query":"{slow}"}`) }()
	<-entered
	cancel()
	if err := <-served; err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("Serve = %v, want the grace period exceeded", err)
	}
	if r := <-inflight; r.err == nil {
		t.Errorf("cut-off request got an answer: %d %q", r.status, r.body)
	}
}

// Readiness reports: degraded is still ready (200, the instance serves),
// unavailable is 503, and the components are in the body.
func TestServer_ReadinessReport(t *testing.T) {
	var rep atomic.Pointer[server.Readiness]
	e := newEnv(t, func(c *server.Config) {
		c.Readiness = func(context.Context) server.Readiness { return *rep.Load() }
	})
	tests := []struct {
		name   string
		report server.Readiness
		want   int
	}{
		{"ok", server.Readiness{Status: server.StatusOK, Components: map[string]server.Component{"erp": {Status: server.StatusOK}}}, 200},
		{"degraded", server.Readiness{Status: server.StatusDegraded, Components: map[string]server.Component{
			"identity": {Status: server.StatusDown, Detail: "identity server unreachable"}, "erp": {Status: server.StatusOK}}}, 200},
		{"unavailable", server.Readiness{Status: server.StatusUnavailable, Components: map[string]server.Component{"erp": {Status: server.StatusDown}}}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep.Store(&tt.report)
			a := do(http.MethodGet, e.http.URL+"/readyz", "")
			var got server.Readiness
			if err := json.Unmarshal([]byte(a.body), &got); err != nil || a.status != tt.want || got.Status != tt.report.Status ||
				len(got.Components) != len(tt.report.Components) {
				t.Errorf("/readyz = %d %q (%v), want %d %+v", a.status, a.body, err, tt.want, tt.report)
			}
			for name, c := range tt.report.Components {
				if got.Components[name] != c {
					t.Errorf("component %s = %+v, want %+v", name, got.Components[name], c)
				}
			}
		})
	}
}
