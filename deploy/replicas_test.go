package deploy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/loadclient"
	"github.com/erpgraph/erpgraph/internal/testbin"
)

const meQuery = `query Me { me { login } }`

// TestThreeReplicas is the three-replica setup of issue 13 and what it must show: state shared through Redis
// (rate limits, APQ, sign-in sessions, idempotency keys), one ERP.net session per replica, a rolling restart
// without a failed request, and a Redis outage the replicas ride through and recover from.
func TestThreeReplicas(t *testing.T) {
	start := time.Now()
	c := startCluster(t)
	t.Logf("setup: %v", time.Since(start).Round(time.Millisecond))
	users, err := loadclient.SignInAll(context.Background(), c.sim, c.logins)
	if err != nil {
		t.Fatal(err)
	}
	// users[0] and users[1] are for the rate-limit checks; the others make the steady load.
	limited, limitedInFault, loadUsers := users[0], users[1], users[2:]

	t.Run("rate limit across replicas", func(t *testing.T) { rateLimitShared(t, c, limited) })
	t.Run("APQ across replicas", func(t *testing.T) { apqShared(t, c, users[2]) })
	t.Run("session cookie across replicas", func(t *testing.T) { sessionShared(t, c) })
	owner, err := loadclient.SignIn(context.Background(), c.sim, fixture.OwnerLogin)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("idempotency key across replicas", func(t *testing.T) { idempotencyShared(t, c, owner) })
	t.Run("read cache invalidated on every replica", func(t *testing.T) { cacheInvalidatedEverywhere(t, c, owner) })
	t.Run("metrics pass promtool", func(t *testing.T) {
		for _, r := range c.replicas {
			res, err := http.Get(r.MetricsURL)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !bytes.Contains(raw, []byte("erpgraph_http_requests_total")) {
				t.Fatalf("GET %s: %d\n%s", r.MetricsURL, res.StatusCode, raw)
			}
			testbin.PromtoolCheckMetrics(t, raw)
		}
	})
	t.Run("one ERP.net session per replica, no 503", func(t *testing.T) {
		if n := c.serviceSessions(); n != len(c.replicas) {
			t.Errorf("erpsim saw %d service sessions of erpgraph, want one per replica (%d)", n, len(c.replicas))
		}
		if st := c.sim.Stats(); st.Status503 != 0 || st.Status429 != 0 {
			t.Errorf("erpsim answered 503 %d times and 429 %d times", st.Status503, st.Status429)
		}
		byStatus, byReplica := c.seen.counts()
		if byStatus[http.StatusServiceUnavailable] != 0 {
			t.Errorf("HAProxy answered 503 %d times: %v", byStatus[http.StatusServiceUnavailable], byStatus)
		}
		for _, n := range replicaNames {
			if byReplica[n] == 0 {
				t.Errorf("replica %s served nothing: %v", n, byReplica)
			}
		}
	})
	t.Run("Redis fault", func(t *testing.T) { redisFault(t, c, limitedInFault, owner, loadUsers) })
	t.Run("rolling restart", func(t *testing.T) {
		l := startLoad(c, loadUsers)
		for _, n := range replicaNames {
			c.restart(t, n)
		}
		ok, failures := l.stop()
		if len(failures) > 0 {
			t.Errorf("%d of %d requests failed during the rolling restart, first: %v", len(failures), ok+len(failures), failures[:min(5, len(failures))])
		}
		_, byReplica := c.seen.counts()
		t.Logf("rolling restart: %d requests, by replica %v", ok, byReplica)
		// Each new process opened a session of its own; the old ones keep their licence slots until ERP.net
		// closes them (20 minutes idle), which is why deploy/kubernetes bounds the replicas by half the licences.
		if n := c.serviceSessions(); n != 2*len(c.replicas) {
			t.Errorf("after restarting every replica erpsim has %d service sessions, want %d", n, 2*len(c.replicas))
		}
		// The drain alone kept every request: HAProxy never met a refused connection or a cut response, so it
		// never had to retry or redispatch one.
		be := c.lb.stat("BACKEND")
		for _, k := range []string{"econ", "eresp", "wretr", "wredis"} {
			if be[k] != "0" && be[k] != "" {
				t.Errorf("HAProxy's backend %s = %s, want 0", k, be[k])
			}
		}
	})
	t.Logf("total: %v", time.Since(start).Round(time.Millisecond))
}

// pinned is a request header that makes HAProxy send the request to replica name.
func pinned(name string) http.Header { return http.Header{"X-Test-Replica": {name}} }

// rateLimitShared: one user's requests spread over the three replicas share one budget. Each replica sees only
// rateBurst of them, so per-replica buckets would let all of them through.
func rateLimitShared(t *testing.T, c *cluster, u *loadclient.User) {
	ok, refusedBy := 0, map[string]int{}
	start := time.Now()
	for i := range 3 * rateBurst {
		name := replicaNames[i%len(replicaNames)]
		r, err := loadclient.PostHeader(context.Background(), c.http, c.url+"/graphql", u, meQuery, nil, pinned(name))
		switch {
		case err != nil:
			t.Fatal(err)
		case r.Header.Get("X-Replica") != name:
			t.Fatalf("request %d went to %q, pinned to %s", i, r.Header.Get("X-Replica"), name)
		case r.Status == http.StatusOK && len(r.Errors) == 0:
			ok++
		case r.Status == http.StatusTooManyRequests && r.Code() == "RATE_LIMITED":
			refusedBy[name]++
		default:
			t.Fatalf("request %d: %d %+v", i, r.Status, r.Errors)
		}
	}
	// The budget: the burst, plus what refilled while the requests ran.
	budget := rateBurst + int(math.Ceil(rateLimit*time.Since(start).Seconds()))
	if ok < rateBurst || ok > budget {
		t.Errorf("%d of %d requests passed, want %d..%d (the burst plus the refill)", ok, 3*rateBurst, rateBurst, budget)
	}
	for _, n := range replicaNames {
		if refusedBy[n] == 0 {
			t.Errorf("replica %s refused none of the user's requests: %v", n, refusedBy)
		}
	}
}

// apqShared: an automatic persisted query registered through one replica is found by its hash through the others.
func apqShared(t *testing.T, c *cluster, u *loadclient.User) {
	const q = `query MeAPQ { me { login } }`
	sum := sha256.Sum256([]byte(q))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	post := func(name string, body map[string]any) (int, map[string]any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		tok, err := u.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, c.url+"/graphql", bytes.NewReader(raw))
		req.Header = pinned(name)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		return do(t, c.http, req, name)
	}
	if st, got := post("r2", map[string]any{"extensions": ext}); st != http.StatusOK || code(got) != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("an unknown hash: %d %v", st, got)
	}
	if st, got := post("r1", map[string]any{"query": q, "extensions": ext}); st != http.StatusOK || meLogin(got) != u.Login {
		t.Fatalf("registering through r1: %d %v", st, got)
	}
	for _, n := range replicaNames[1:] {
		if st, got := post(n, map[string]any{"extensions": ext}); st != http.StatusOK || meLogin(got) != u.Login {
			t.Errorf("the hash alone through %s: %d %v", n, st, got)
		}
	}
}

// sessionShared: server-side sign-in started on one replica, its callback on another, and the session cookie
// then served by every replica.
func sessionShared(t *testing.T, c *cluster) {
	b := signIn(t, c, fixture.OwnerLogin, "r1", "r2")
	for _, n := range replicaNames {
		if st, got := b.graphql(meQuery, n); st != http.StatusOK || meLogin(got) != fixture.OwnerLogin {
			t.Errorf("the cookie on %s: %d %v", n, st, got)
		}
	}
}

// browser is a cookie-holding client signed in through erpgraph's /auth/* endpoints.
type browser struct {
	t *testing.T
	c *cluster
	h *http.Client
}

// signIn runs the server-side sign-in (Authorization Code + PKCE at erpsim) as login: /auth/login through
// replica from, the callback through replica callback.
func signIn(t *testing.T, c *cluster, login, from, callback string) *browser {
	t.Helper()
	b, back := authorize(t, c, login, from)
	res := b.get(back, callback)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("the callback through %s: %d %q", callback, res.StatusCode, res.Header.Get("Location"))
	}
	return b
}

// authorize starts the server-side sign-in through replica from and signs login in at erpsim; it returns the
// browser and the callback URL erpsim sends it back to.
func authorize(t *testing.T, c *cluster, login, from string) (*browser, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, c: c, h: &http.Client{Jar: jar, Timeout: time.Minute, Transport: c.http.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	res := b.get(c.url+"/auth/login?returnTo=/", from)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("/auth/login through %s: %d", from, res.StatusCode)
	}
	authz, _ := url.Parse(res.Header.Get("Location"))
	form := authz.Query()
	form.Set("login", login)
	form.Set("password", fixture.DemoPassword)
	req, _ := http.NewRequest(http.MethodPost, c.sim.IdentityURL()+"/account/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := b.h.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), c.url+"/auth/callback") {
		t.Fatalf("erpsim sign-in: %d %q\n%s", res.StatusCode, res.Header.Get("Location"), page)
	}
	return b, res.Header.Get("Location")
}

// get sends a GET through replica name; the answer's body is in its Body, read and replaced.
func (b *browser) get(target, replica string) *http.Response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header = pinned(replica)
	res, err := b.h.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	if got := res.Header.Get("X-Replica"); got != replica {
		b.t.Fatalf("GET %s went to %q, pinned to %s", target, got, replica)
	}
	return res
}

// graphql posts query with the session cookie (and the CSRF header) through replica name.
func (b *browser) graphql(query, name string) (int, map[string]any) {
	b.t.Helper()
	raw, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, b.c.url+"/graphql", bytes.NewReader(raw))
	req.Header = pinned(name)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF", "1")
	return do(b.t, b.h, req, name)
}

// do sends req, checks that replica name answered, and decodes the GraphQL answer.
func do(t *testing.T, h *http.Client, req *http.Request, name string) (int, map[string]any) {
	t.Helper()
	res, err := h.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got := res.Header.Get("X-Replica"); got != name {
		t.Fatalf("the request went to %q, pinned to %s", got, name)
	}
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("HTTP %d: %v", res.StatusCode, err)
	}
	return res.StatusCode, body
}

func meLogin(body map[string]any) any {
	data, _ := body["data"].(map[string]any)
	me, _ := data["me"].(map[string]any)
	return me["login"]
}

func code(body map[string]any) string {
	errs, _ := body["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	e, _ := errs[0].(map[string]any)
	ext, _ := e["extensions"].(map[string]any)
	s, _ := ext["code"].(string)
	return s
}

// load is steady traffic through HAProxy: a few clients, each with users of its own, each user under the rate
// limit, reading the portal's dashboard.
type load struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	ok       int
	failures []string
}

// loadClients is how many clients send the load; each has len(users)/loadClients users of its own.
const loadClients = 4

func startLoad(c *cluster, users []*loadclient.User) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	per := len(users) / loadClients
	// Each client sends every tick, to its users in turn: each user gets under rateLimit requests a second.
	tick := time.Duration(float64(time.Second) / (0.8 * rateLimit * float64(per)))
	for k := range loadClients {
		mine := users[k*per : (k+1)*per]
		l.wg.Go(func() {
			t := time.NewTicker(tick)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				u := mine[i%len(mine)]
				r, err := loadclient.Post(context.WithoutCancel(ctx), c.http, c.url+"/graphql", u, loadclient.DashboardQuery, nil)
				l.record(u.Login, r, err)
			}
		})
	}
	return l
}

func (l *load) record(login string, r *loadclient.Response, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		l.failures = append(l.failures, fmt.Sprintf("%s: %v", login, err))
	case r.Status != http.StatusOK || len(r.Errors) > 0:
		l.failures = append(l.failures, fmt.Sprintf("%s: %d via %s %s %+v", login, r.Status, r.Header.Get("X-Replica"), r.Code(), r.Errors))
	default:
		l.ok++
	}
}

// stop ends the load and returns how many requests succeeded and what failed.
func (l *load) stop() (ok int, failures []string) {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.failures
}
