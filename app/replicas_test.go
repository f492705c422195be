package app_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/internal/redistest"
	"github.com/erpgraph/erpgraph/server"
)

func readyReport(t *testing.T, a *app.App) (int, server.Readiness) {
	t.Helper()
	res, err := http.Get(a.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep server.Readiness
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, rep
}

// twoReplicas runs two erpgraph processes on one erpsim and one Redis: a
// dev-mode one with its in-process erpsim, and one in production mode on it.
// mods change both configurations.
func twoReplicas(t *testing.T, redisURL string, rl *server.RateLimitConfig, mods ...func(*app.Config)) (*app.App, *app.App) {
	t.Helper()
	var k [32]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	cfg := devConfig(t)
	cfg.RedisURL, cfg.Session.Keys = redisURL, key
	if rl != nil {
		cfg.RateLimit = *rl
	}
	for _, m := range mods {
		m(&cfg)
	}
	a := run(t, cfg)
	env := map[string]string{
		"ERP_INSTANCE_URL": a.Sim().URL(), "ERP_CLIENT_ID": fixture.BFFClientID, "ERP_CLIENT_SECRET": fixture.BFFSecret,
		"ERPGRAPH_SESSIONS": "on", "ERPGRAPH_SESSION_KEYS": key, "ERPGRAPH_REDIS_URL": redisURL,
		"ERPGRAPH_PUBLIC_URL": a.URL(), "ERPGRAPH_TRUSTED_CLIENT_IDS": fixture.BFFClientID + "," + fixture.PlaygroundClientID,
	}
	cfgB, err := app.ConfigFromEnv(envOf(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rl != nil {
		cfgB.RateLimit = *rl
	}
	for _, m := range mods {
		m(&cfgB)
	}
	return a, run(t, cfgB)
}

// A user's rate limit holds across replicas (GCRA in Redis), and an
// automatic persisted query registered through one replica is found through
// the other. With Redis down each replica limits with its own buckets.
func TestApp_RedisSharesRateLimitsAndAPQ(t *testing.T) {
	redis := redistest.Start(t)
	a, b := twoReplicas(t, redis.URL(), &server.RateLimitConfig{UserRate: 0.01, UserBurst: 2})
	anna, boris := login(t, a, fixture.OwnerLogin), login(t, a, fixture.MultiLogin)
	for i, r := range []*app.App{a, b} {
		if got := send(t, nil, newPost(t, r, anna, "application/json", jsonBody(meQuery, nil))); got.status != http.StatusOK {
			t.Fatalf("request %d (replica %d) within the burst: %d %+v", i+1, i+1, got.status, got.body.Errors)
		}
	}
	for _, r := range []*app.App{a, b} {
		if got := send(t, nil, newPost(t, r, anna, "application/json", jsonBody(meQuery, nil))); got.status != http.StatusTooManyRequests || got.code() != "RATE_LIMITED" {
			t.Errorf("over the burst shared by both replicas: %d %q", got.status, got.code())
		}
	}

	// APQ: register through a, find through b.
	const q = `query Me { me { login } }`
	sum := sha256.Sum256([]byte(q))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	withHash := func(query string) string {
		body := map[string]any{"extensions": ext}
		if query != "" {
			body["query"] = query
		}
		raw, _ := json.Marshal(body)
		return string(raw)
	}
	if got := send(t, nil, newPost(t, a, boris, "application/json", withHash(q))); got.status != http.StatusOK || meLogin(got) != fixture.MultiLogin {
		t.Fatalf("registering the APQ on a: %d %+v", got.status, got.body.Errors)
	}
	if got := send(t, nil, newPost(t, b, boris, "application/json", withHash(""))); got.status != http.StatusOK || meLogin(got) != fixture.MultiLogin {
		t.Errorf("the APQ by hash on b: %d %+v", got.status, got.body.Errors)
	}

	redis.Stop()
	// Local buckets now: boris's own on b is fresh, its burst holds locally.
	for i := range 2 {
		if got := send(t, nil, newPost(t, b, boris, "application/json", jsonBody(meQuery, nil))); got.status != http.StatusOK {
			t.Errorf("request %d with Redis down: %d %+v", i+1, got.status, got.body.Errors)
		}
	}
	if got := send(t, nil, newPost(t, b, boris, "application/json", jsonBody(meQuery, nil))); got.status != http.StatusTooManyRequests {
		t.Errorf("over the local burst with Redis down: %d, want 429", got.status)
	}
}

// Two replicas with one Redis share login sessions: a cookie issued by one
// is served by the other. Readiness reports Redis; with Redis down a replica
// stays ready (degraded) and alive, cookie requests get
// UPSTREAM_UNAVAILABLE while bearer tokens keep working, and it recovers
// without a restart.
func TestApp_RedisSharesSessions(t *testing.T) {
	redis := redistest.Start(t)
	a, b := twoReplicas(t, redis.URL(), nil)

	browser := signedIn(t, a, fixture.OwnerLogin)
	onB := &cookieBrowser{t: t, a: b, c: browser.c} // the same cookie jar: cookies are per host, not per port
	if got := onB.graphql(meQuery, xcsrf); got.status != http.StatusOK || meLogin(got) != fixture.OwnerLogin {
		t.Fatalf("the other replica with the cookie: %d %v %+v", got.status, got.body.Data, got.body.Errors)
	}
	for _, r := range []*app.App{a, b} {
		if code, rep := readyReport(t, r); code != http.StatusOK || rep.Status != server.StatusOK || rep.Components["redis"].Status != server.StatusOK {
			t.Errorf("readiness with Redis up: %d %+v", code, rep)
		}
	}

	redis.Stop()
	code, rep := readyReport(t, b)
	if code != http.StatusOK || rep.Status != server.StatusDegraded || rep.Components["redis"].Status != server.StatusDown {
		t.Errorf("readiness with Redis down: %d %+v, want 200 degraded with redis down", code, rep)
	}
	if got := status(t, b.URL()+"/healthz"); got != http.StatusOK {
		t.Errorf("liveness with Redis down: %d", got)
	}
	if got := onB.graphql(meQuery, xcsrf); got.status != http.StatusServiceUnavailable || got.code() != "UPSTREAM_UNAVAILABLE" {
		t.Errorf("cookie with Redis down: %d %q, want 503 UPSTREAM_UNAVAILABLE", got.status, got.code())
	}
	boris := login(t, a, fixture.MultiLogin)
	if got := send(t, nil, newPost(t, b, boris, "application/json", jsonBody(meQuery, nil))); got.status != http.StatusOK || meLogin(got) != fixture.MultiLogin {
		t.Errorf("bearer token with Redis down: %d %+v", got.status, got.body.Errors)
	}

	redis.Restart()
	if code, rep := readyReport(t, b); code != http.StatusOK || rep.Components["redis"].Status != server.StatusOK {
		t.Errorf("readiness after Redis came back: %d %+v", code, rep)
	}
	again := signedIn(t, a, fixture.OwnerLogin)
	if got := (&cookieBrowser{t: t, a: b, c: again.c}).graphql(meQuery, xcsrf); got.status != http.StatusOK || meLogin(got) != fixture.OwnerLogin {
		t.Errorf("a session after Redis came back, on the other replica: %d %+v", got.status, got.body.Errors)
	}
}

// Sessions in Redis need keys every replica has, also in dev mode.
func TestConfigFromEnv_RedisNeedsSessionKeys(t *testing.T) {
	_, err := app.ConfigFromEnv(envOf(map[string]string{"ERPGRAPH_REDIS_URL": "redis://127.0.0.1:1/0"}), nil)
	if err == nil {
		t.Fatal("dev mode with Redis and no session keys accepted")
	}
	if _, err := app.ConfigFromEnv(envOf(map[string]string{"ERPGRAPH_REDIS_URL": "redis://127.0.0.1:1/0", "ERPGRAPH_SESSIONS": "off", "ERPGRAPH_PORTAL": "off"}), nil); err != nil {
		t.Errorf("Redis without sessions: %v", err)
	}
	if _, err := app.ConfigFromEnv(envOf(map[string]string{"ERPGRAPH_REDIS_URL": "http://x", "ERPGRAPH_SESSIONS": "off", "ERPGRAPH_PORTAL": "off"}), nil); err == nil {
		t.Error("a non-Redis URL accepted")
	}
}
