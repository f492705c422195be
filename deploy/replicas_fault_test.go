package deploy_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/loadclient"
	"github.com/erpgraph/erpgraph/internal/testbin"
)

// redisFault stops Redis under steady load and starts it again, empty. Meanwhile the documented behaviour holds:
// every replica stays ready (degraded, so HAProxy keeps all three), bearer-token reads keep working, rate limits
// fall back to each replica's own buckets, a session cookie gets a typed UPSTREAM_UNAVAILABLE, a write with an
// idempotency key is refused with a typed error; afterwards the replicas use Redis again without a restart.
func redisFault(t *testing.T, c *cluster, limited, owner *loadclient.User, loadUsers []*loadclient.User) {
	l := startLoad(c, loadUsers)
	defer func() {
		ok, failures := l.stop()
		if len(failures) > 0 {
			t.Errorf("%d of %d reads failed around the Redis outage, first: %v", len(failures), ok+len(failures), failures[:min(5, len(failures))])
		}
	}()
	before := signIn(t, c, fixture.MultiLogin, "r2", "r3")

	c.redis.Stop()
	for i, r := range c.replicas {
		if code, rep := waitRedis(t, r, "down"); code != http.StatusOK || rep.Status != "degraded" {
			t.Errorf("%s's readiness with Redis down: %d %+v, want 200 degraded", replicaNames[i], code, rep)
		}
	}
	for _, n := range replicaNames {
		if st := c.lb.state(n); st != "UP" {
			t.Errorf("HAProxy has %s %s with Redis down, want UP (degraded replicas keep serving)", n, st)
		}
	}
	for _, n := range replicaNames {
		if st, got := before.graphql(meQuery, n); st != http.StatusServiceUnavailable || code(got) != "UPSTREAM_UNAVAILABLE" {
			t.Errorf("a session cookie on %s with Redis down: %d %v, want 503 UPSTREAM_UNAVAILABLE", n, st, got)
		}
	}
	// A sign-in gets as far as the callback, which cannot store the session: a typed 503, no half session.
	b, back := authorize(t, c, fixture.OwnerLogin, "r1")
	if res := b.get(back, "r3"); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(readAll(res.Body), "UPSTREAM_UNAVAILABLE") {
		t.Errorf("a sign-in's callback with Redis down: %d, want 503 UPSTREAM_UNAVAILABLE", res.StatusCode)
	}
	writesRefusedWithoutRedis(t, c, owner)
	// Local buckets: the user's requests pinned to r1 meet r1's own limit; r2's bucket for them is still full.
	ok, start := 0, time.Now()
	for range 3 * rateBurst {
		r, err := loadclient.PostHeader(context.Background(), c.http, c.url+"/graphql", limited, meQuery, nil, pinned("r1"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == http.StatusTooManyRequests && r.Code() == "RATE_LIMITED" {
			break
		}
		if r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("with Redis down, on r1: %d %+v", r.Status, r.Errors)
		}
		ok++
	}
	if budget := rateBurst + int(math.Ceil(rateLimit*time.Since(start).Seconds())); ok < rateBurst || ok > budget {
		t.Errorf("with Redis down, r1 let %d requests of one user through, want its own burst and refill, %d..%d", ok, rateBurst, budget)
	}
	if r, err := loadclient.PostHeader(context.Background(), c.http, c.url+"/graphql", limited, meQuery, nil, pinned("r2")); err != nil || r.Status != http.StatusOK {
		t.Errorf("with Redis down, the user on r2 (a bucket of its own): %v %+v", err, r)
	}

	c.redis.Restart()
	for i, r := range c.replicas {
		if code, rep := waitRedis(t, r, "ok"); code != http.StatusOK || rep.Status != "ok" {
			t.Errorf("%s's readiness after Redis came back: %d %+v", replicaNames[i], code, rep)
		}
	}
	// Redis came back empty: the old session is gone, a new one works across replicas again.
	after := signIn(t, c, fixture.MultiLogin, "r3", "r1")
	for _, n := range replicaNames {
		if st, got := after.graphql(meQuery, n); st != http.StatusOK || meLogin(got) != fixture.MultiLogin {
			t.Errorf("a session after Redis came back, on %s: %d %v", n, st, got)
		}
	}
}

func readAll(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}

type readiness struct {
	Status     string
	Components map[string]struct{ Status, Detail string }
}

// waitRedis asks replica r's /readyz (directly, not through HAProxy) until its redis component is want, and
// returns that answer.
func waitRedis(t *testing.T, r *testbin.Erpgraph, want string) (int, readiness) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := http.Get(r.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var rep readiness
		err = json.NewDecoder(res.Body).Decode(&rep)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Components["redis"].Status == want {
			return res.StatusCode, rep
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness's redis still %+v after a minute, want %s", rep.Components["redis"], want)
		}
		time.Sleep(20 * time.Millisecond) // polling: /readyz has no way to wait for a change
	}
}
