package erpsim_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
)

const ordersPath = "Crm_Sales_SalesOrders?$top=2&$select=DocumentNo"

func TestDomainAPI_ServiceTokenReads(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok := mustServiceToken(t, s)
	r := get(t, s.ODataURL()+ordersPath, tok)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if v, _ := decodeJSON(t, r.body)["value"].([]any); len(v) != 2 {
		t.Errorf("value has %d rows, want 2: %s", len(v), r.body)
	}
	if r.header.Get("OData-Version") != "4.0" {
		t.Errorf("OData-Version %q", r.header.Get("OData-Version"))
	}
	reqs := s.Requests()
	last := reqs[len(reqs)-1]
	if last.Path != "/api/domain/odata/Crm_Sales_SalesOrders" || last.Status != http.StatusOK ||
		last.ClientID != fixture.BFFClientID || last.Login != fixture.ServiceUserLogin || !strings.HasPrefix(last.Session, "jti:") {
		t.Errorf("log entry %+v", last)
	}
	if st := s.Stats(); st.DomainRequests != 1 || st.TokenRequests != 1 {
		t.Errorf("stats %+v, want 1 domain request and 1 token request", st)
	}
}

func TestDomainAPI_Unauthorized(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	other := startSim(t, erpsim.Options{})
	good := mustServiceToken(t, s)
	foreign := mustServiceToken(t, other) // signed by another instance's key
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	tests := []struct {
		name, token string
		challenge   string
	}{
		{"missing", "", "Bearer"},
		{"garbage", "not-a-jwt", `Bearer error="invalid_token"`},
		{"forged signature", forged, `Bearer error="invalid_token"`},
		{"other instance key", foreign, `Bearer error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, s.ODataURL()+ordersPath, tt.token)
			if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != tt.challenge || len(r.body) != 0 {
				t.Errorf("got %d %q body %q, want 401 %q and no body", r.status, r.header.Get("WWW-Authenticate"), r.body, tt.challenge)
			}
		})
	}
	if got := s.Stats().Status401; got != len(tests) {
		t.Errorf("Status401 = %d, want %d", got, len(tests))
	}
}

func TestDomainAPI_ExpiredToken(t *testing.T) {
	now := time.Now()
	s := startSim(t, erpsim.Options{Clock: func() time.Time { return now }, TokenLifetime: 10 * time.Minute})
	tok := mustServiceToken(t, s)
	if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
		t.Fatalf("fresh token: %d", r.status)
	}
	s.SetClock(func() time.Time { return now.Add(10 * time.Minute) })
	if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusUnauthorized {
		t.Errorf("expired token: %d, want 401", r.status)
	}
}

func TestDomainAPI_RevokeTokens(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	old := mustServiceToken(t, s)
	s.RevokeTokens()
	if r := get(t, s.ODataURL()+ordersPath, old); r.status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", r.status)
	}
	if r := get(t, s.ODataURL()+ordersPath, mustServiceToken(t, s)); r.status != http.StatusOK {
		t.Errorf("token issued after revocation: %d, want 200", r.status)
	}
}

func TestDomainAPI_UserTokens(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tests := []struct {
		name, client, login string
		scopes              []string
		want                int
	}{
		{"external user refused", fixture.BFFClientID, fixture.OwnerLogin, []string{"openid", "read"}, http.StatusForbidden},
		{"internal user with read", fixture.BFFClientID, fixture.InternalLogin, []string{"openid", "read"}, http.StatusOK},
		{"internal user without read", fixture.BFFClientID, fixture.InternalLogin, []string{"openid", "profile"}, http.StatusForbidden},
		{"admin via public client", fixture.PlaygroundClientID, fixture.AdminLogin, []string{"openid", "read"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := mustLogin(t, s, tt.client, tt.login, tt.scopes...)
			r := get(t, s.ODataURL()+ordersPath, tok.AccessToken)
			if r.status != tt.want {
				t.Fatalf("status %d, want %d: %s", r.status, tt.want, r.body)
			}
			if tt.want == http.StatusForbidden {
				if e, _ := decodeJSON(t, r.body)["error"].(map[string]any); e["message"] == nil || e["type"] == nil {
					t.Errorf("403 without the ERP.net envelope: %s", r.body)
				}
			}
		})
	}
}

func TestDomainAPI_ServiceTokenWithoutRead(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	tok := mustServiceToken(t, s, "update")
	if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusForbidden {
		t.Errorf("token without read: %d, want 403", r.status)
	}
}

// holdRequests fires n concurrent requests with the same token while every
// request is held in flight by a long latency. Once want429 of them were
// refused, the latency is lifted and the rest complete. It returns the
// status counts; nothing depends on timing.
func holdRequests(t *testing.T, s *erpsim.Sim, token string, n, want429 int) map[int]int {
	t.Helper()
	s.SetLatency(time.Hour, 0)
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { statuses <- get(t, s.ODataURL()+ordersPath, token).status })
	}
	counts := map[int]int{}
	got := 0
	for got < n {
		st := <-statuses
		counts[st]++
		got++
		if counts[http.StatusTooManyRequests]+counts[http.StatusServiceUnavailable] == want429 {
			s.SetLatency(0, 0) // the refusals are in: release the held requests
		}
	}
	wg.Wait()
	return counts
}

func TestDomainAPI_SessionConcurrencyLimit(t *testing.T) {
	s := startSim(t, erpsim.Options{}) // defaults: 1 in flight, 5 queued
	tok := mustServiceToken(t, s)
	counts := holdRequests(t, s, tok, 7, 1)
	if counts[http.StatusOK] != 6 || counts[http.StatusTooManyRequests] != 1 {
		t.Errorf("7 concurrent requests: %v, want 6×200 and 1×429", counts)
	}
	if st := s.Stats(); st.Status429 != 1 || st.DomainRequests != 7 {
		t.Errorf("stats %+v", st)
	}
	var busy erpsim.Request
	for _, r := range s.Requests() {
		if r.Status == http.StatusTooManyRequests {
			busy = r
		}
	}
	if busy.Session == "" {
		t.Errorf("429 not logged with its session: %+v", busy)
	}
}

func TestDomainAPI_RequestsPerMinute(t *testing.T) {
	now := time.Now()
	clock := &fakeClock{t: now}
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Limits{RequestsPerMinute: 3}})
	tok := mustServiceToken(t, s)
	for i := range 3 {
		if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, r.status)
		}
		clock.Advance(10 * time.Second)
	}
	r := get(t, s.ODataURL()+ordersPath, tok)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "30" {
		t.Fatalf("4th request in a minute: %d Retry-After %q, want 429 and 30", r.status, r.header.Get("Retry-After"))
	}
	clock.Advance(30 * time.Second) // the first request leaves the window
	if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
		t.Errorf("after the window moved: %d", r.status)
	}
}

func TestDomainAPI_LicenseCountAndSessionExpiry(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	s := startSim(t, erpsim.Options{Clock: clock.Now, Limits: erpsim.Limits{Licenses: 2}})
	a, b, c := mustServiceToken(t, s), mustServiceToken(t, s), mustServiceToken(t, s)
	for _, tok := range []string{a, b, a, b} {
		if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
			t.Fatalf("within license count: %d", r.status)
		}
	}
	r := get(t, s.ODataURL()+ordersPath, c)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "60" {
		t.Fatalf("third session: %d Retry-After %q, want 503 and 60", r.status, r.header.Get("Retry-After"))
	}
	e, _ := decodeJSON(t, r.body)["error"].(map[string]any)
	if e["code"] != float64(8) || e["type"] != "Aloe.SystemFrameworks.E1LicenseException" {
		t.Errorf("503 envelope %s", r.body)
	}
	// a stays busy, b goes idle for 20 minutes: its license frees up.
	clock.Advance(15 * time.Minute)
	if r := get(t, s.ODataURL()+ordersPath, a); r.status != http.StatusOK {
		t.Fatalf("a after 15 min: %d", r.status)
	}
	clock.Advance(6 * time.Minute)
	if r := get(t, s.ODataURL()+ordersPath, c); r.status != http.StatusOK {
		t.Fatalf("c after b's session expired: %d", r.status)
	}
	if r := get(t, s.ODataURL()+ordersPath, b); r.status != http.StatusServiceUnavailable {
		t.Errorf("b re-opening a session with no free license: %d, want 503", r.status)
	}
	if st := s.Stats(); st.Status503 != 2 {
		t.Errorf("Status503 = %d, want 2", st.Status503)
	}
}

func TestDomainAPI_ServiceSessionAbsoluteLimit(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	s := startSim(t, erpsim.Options{Clock: clock.Now, TokenLifetime: 3 * time.Hour,
		Limits: erpsim.Limits{Licenses: 1, SessionAbsolute: 30 * time.Minute}})
	a, b := mustServiceToken(t, s), mustServiceToken(t, s)
	for range 4 { // a stays active: never idle, but its session ends at 30 minutes
		if r := get(t, s.ODataURL()+ordersPath, a); r.status != http.StatusOK {
			t.Fatalf("a: %d", r.status)
		}
		if r := get(t, s.ODataURL()+ordersPath, b); r.status != http.StatusServiceUnavailable {
			t.Fatalf("b while a holds the license: %d", r.status)
		}
		clock.Advance(8 * time.Minute)
	}
	if r := get(t, s.ODataURL()+ordersPath, b); r.status != http.StatusOK {
		t.Errorf("b after a's absolute limit: %d, want 200", r.status)
	}
}

func TestDomainAPI_UserSessionIsSID(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Limits{Licenses: 1}})
	tok := mustLogin(t, s, fixture.BFFClientID, fixture.InternalLogin, "openid", "read", "offline_access")
	if r := get(t, s.ODataURL()+ordersPath, tok.AccessToken); r.status != http.StatusOK {
		t.Fatalf("first call: %d", r.status)
	}
	refreshed := refresh(t, s, fixture.BFFClientID, fixture.BFFSecret, tok.RefreshToken)
	// Same sid: the refreshed token reuses the session instead of needing a second license.
	if r := get(t, s.ODataURL()+ordersPath, refreshed.AccessToken); r.status != http.StatusOK {
		t.Errorf("refreshed token: %d, want 200 in the same session", r.status)
	}
	var sessions []string
	for _, r := range s.Requests() {
		if r.Session != "" {
			sessions = append(sessions, r.Session)
		}
	}
	if len(sessions) != 2 || sessions[0] != sessions[1] || !strings.HasPrefix(sessions[0], "sid:") {
		t.Errorf("sessions %v, want one sid session twice", sessions)
	}
}

func TestDomainAPI_Faults(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(t, s)
	t.Run("status with count", func(t *testing.T) {
		s.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Status: http.StatusInternalServerError, Count: 2})
		defer s.SetFaults()
		var got []int
		for range 3 {
			got = append(got, get(t, s.ODataURL()+ordersPath, tok).status)
		}
		if got[0] != 500 || got[1] != 500 || got[2] != 200 {
			t.Errorf("statuses %v, want 500 500 200", got)
		}
	})
	t.Run("429 with retry-after", func(t *testing.T) {
		s.SetFaults(erpsim.Fault{Path: "/api/", Status: http.StatusTooManyRequests, RetryAfter: 7})
		defer s.SetFaults()
		r := get(t, s.ODataURL()+ordersPath, tok)
		if r.status != 429 || r.header.Get("Retry-After") != "7" {
			t.Errorf("got %d Retry-After %q", r.status, r.header.Get("Retry-After"))
		}
	})
	t.Run("method filter", func(t *testing.T) {
		s.SetFaults(erpsim.Fault{Path: "/api/", Method: http.MethodPost, Status: http.StatusServiceUnavailable})
		defer s.SetFaults()
		if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
			t.Errorf("GET hit a POST-only fault: %d", r.status)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		s.SetFaults(erpsim.Fault{Path: "/api/", Malformed: true})
		defer s.SetFaults()
		r := get(t, s.ODataURL()+ordersPath, tok)
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
		var v any
		if err := jsonUnmarshal(r.body, &v); err == nil {
			t.Errorf("malformed body decoded: %s", r.body)
		}
	})
	t.Run("drop", func(t *testing.T) {
		s.SetFaults(erpsim.Fault{Path: "/api/", Drop: true})
		defer s.SetFaults()
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, s.ODataURL()+ordersPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := noRedirect.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("dropped connection answered %d", resp.StatusCode)
		}
	})
	t.Run("other paths untouched", func(t *testing.T) {
		s.SetFaults(erpsim.Fault{Path: "/id/connect/token", Status: http.StatusServiceUnavailable})
		defer s.SetFaults()
		if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
			t.Errorf("domain call hit a token-endpoint fault: %d", r.status)
		}
		if _, err := s.ServiceToken(context.Background(), fixture.BFFClientID); err == nil {
			t.Error("token request succeeded despite the fault")
		}
	})
}

func TestRequestLog_CountsAndReset(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(t, s)
	s.ResetRequests()
	for range 3 {
		get(t, s.ODataURL()+ordersPath, tok)
	}
	get(t, s.URL()+"/sys/auto-discovery", "")
	if n := len(s.Requests()); n != 4 {
		t.Errorf("log has %d entries, want 4", n)
	}
	if st := s.Stats(); st.DomainRequests != 3 || st.TokenRequests != 0 {
		t.Errorf("stats %+v", st)
	}
	s.ResetRequests()
	if n := len(s.Requests()); n != 0 || s.Stats() != (erpsim.Stats{}) {
		t.Errorf("after reset: %d entries, %+v", n, s.Stats())
	}
}

// fakeClock is a settable clock for the sim.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// batchBody builds a multipart $batch of GET parts.
func batchBody(paths ...string) (contentType, body string) {
	var b strings.Builder
	for _, p := range paths {
		b.WriteString("--batch_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n")
		b.WriteString("GET " + p + " HTTP/1.1\r\nAccept: application/json\r\n\r\n\r\n")
	}
	b.WriteString("--batch_x--\r\n")
	return "multipart/mixed; boundary=batch_x", b.String()
}

func TestDomainAPI_BatchCountsAsOneRequest(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Limits{RequestsPerMinute: 2}})
	tok := mustServiceToken(t, s)
	ct, body := batchBody(ordersPath, "Crm_Sales_Customers?$top=1", "General_Products_Products?$top=1")
	post := func() int {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.ODataURL()+"$batch", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(); got != http.StatusOK {
		t.Fatalf("batch: %d", got)
	}
	if got := post(); got != http.StatusOK {
		t.Fatalf("second batch within rpm 2: %d", got)
	}
	if got := post(); got != http.StatusTooManyRequests {
		t.Errorf("third batch within a minute at rpm 2: %d, want 429", got)
	}
	if st := s.Stats(); st.DomainRequests != 3 || st.BatchParts != 6 {
		t.Errorf("stats %+v, want 3 domain requests and 6 batch parts (the refused batch costs none)", st)
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-2]; last.BatchParts != 3 || last.Path != "/api/domain/odata/$batch" {
		t.Errorf("log entry %+v", last)
	}
}

func TestDomainAPI_DelayFaultPassesThrough(t *testing.T) {
	s := startSim(t, erpsim.Options{Limits: erpsim.Unlimited()})
	tok := mustServiceToken(t, s)
	s.SetFaults(erpsim.Fault{Path: "/api/", Delay: time.Millisecond, Count: 1})
	for i := range 2 {
		if r := get(t, s.ODataURL()+ordersPath, tok); r.status != http.StatusOK {
			t.Errorf("request %d behind a delay-only fault: %d", i, r.status)
		}
	}
}

func TestFaults_Rate(t *testing.T) {
	s := startSim(t, erpsim.Options{})
	s.SetFaults(erpsim.Fault{Path: "/tools/", Rate: 0.5, Status: http.StatusBadGateway})
	counts := map[int]int{}
	for range 100 {
		counts[get(t, s.URL()+"/tools/ver", "").status]++
	}
	// Both outcomes are all but certain (a miss has probability 2^-99).
	if counts[http.StatusOK] == 0 || counts[http.StatusBadGateway] == 0 || counts[200]+counts[502] != 100 {
		t.Errorf("outcomes at rate 0.5: %v", counts)
	}
}
