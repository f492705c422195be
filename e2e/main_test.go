// Package e2e tests erpgraph from the outside: erpsim on loopback, the real program (app.New) serving GraphQL over
// HTTP, and user tokens from erpsim's identity server. An independent oracle (the Domain API read directly with a
// service token) says what each demo user must see.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/graph/model"
)

var (
	sim     *erpsim.Sim
	gqlURL  string     // where query sends operations: one of stacks
	stacks  []instance // the program with the read cache on, and off
	tokens  sync.Map   // login → access token
	service string     // service token for the oracle
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	// ERP.net's default session limits, except the 600 requests per minute, which would only slow the
	// hundreds of small queries these tests send (cmd/erpload measures behaviour under the real limits).
	limits := erpsim.Limits{RequestsPerMinute: -1}
	if sim, err = erpsim.Start(ctx, erpsim.Options{Limits: limits}); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: erpsim:", err)
		return 1
	}
	defer sim.Close()
	// Two instances of the program on the same ERP.net: the read cache on (at its defaults; one sync round at
	// start, then none while the tests run, so they can count requests) and off. The isolation tests run on both.
	for _, c := range []struct {
		name  string
		cache app.ReadCacheConfig
	}{{"on", app.ReadCacheConfig{SyncInterval: time.Hour}}, {"off", app.ReadCacheConfig{Off: true}}} {
		a, err := app.New(ctx, app.Config{
			Addr: "127.0.0.1:0", InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret,
			TrustedClientIDs: []string{fixture.PlaygroundClientID, fixture.BFFClientID},
			Logger:           slog.New(slog.DiscardHandler), ReadCache: c.cache,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: app:", err)
			return 1
		}
		defer a.Close()
		go a.Serve(ctx)
		if err := waitSynced(a.URL()); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: app:", err)
			return 1
		}
		stacks = append(stacks, instance{c.name, a.URL() + "/graphql"})
	}
	gqlURL = stacks[0].url
	tk, err := sim.ServiceToken(ctx, fixture.OtherClientID)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: service token:", err)
		return 1
	}
	service = tk.AccessToken
	return m.Run()
}

// instance is one running instance of the program.
type instance struct{ cache, url string }

// forEachCache runs f against the program with the read cache on and with it off (tests do not run in parallel,
// so switching gqlURL is safe).
func forEachCache(t *testing.T, f func(t *testing.T)) {
	for _, s := range stacks {
		t.Run("cache "+s.cache, func(t *testing.T) {
			defer func(old string) { gqlURL = old }(gqlURL)
			gqlURL = s.url
			f(t)
		})
	}
}

// withCache runs f against the program with the read cache on or off.
func withCache(t *testing.T, on bool, f func()) {
	t.Helper()
	defer func(old string) { gqlURL = old }(gqlURL)
	gqlURL = stacks[0].url
	if !on {
		gqlURL = stacks[1].url
	}
	f()
}

// waitSynced waits until the program at base says its first sync of reference data finished (or that it has none).
func waitSynced(base string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			var rep struct {
				Components map[string]struct{ Status, Detail string } `json:"components"`
			}
			_ = json.NewDecoder(res.Body).Decode(&rep)
			res.Body.Close()
			if rep.Components["sync"].Status == "ok" {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the first sync of reference data did not finish")
}

// token signs login in at erpsim (once per login).
func token(t testing.TB, login string) string {
	t.Helper()
	if tk, ok := tokens.Load(login); ok {
		return tk.(string)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tk, err := sim.Login(ctx, fixture.PlaygroundClientID, login, fixture.DemoPassword, "openid", "profile", "read")
	if err != nil {
		t.Fatalf("login %s: %v", login, err)
	}
	tokens.Store(login, tk.AccessToken)
	return tk.AccessToken
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

func (r response) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// query posts an operation as login and decodes data into out (when given and present).
func query(t testing.TB, login, q string, vars map[string]any, out any) response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, gqlURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if login != "" {
		req.Header.Set("Authorization", "Bearer "+token(t, login))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("HTTP %d, body %q: %v", resp.StatusCode, raw, err)
	}
	for _, e := range r.Errors {
		// Every error a client can get has a code of the registry (and so a row in the README's table).
		if c, _ := e.Extensions["code"].(string); !errcode.Known(c) {
			t.Errorf("error %q has code %q, which package errcode does not list", e.Message, c)
		}
	}
	if out != nil && len(r.Data) > 0 && string(r.Data) != "null" {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("decode %s: %v", r.Data, err)
		}
	}
	return r
}

// mustQuery is query that fails on any error.
func mustQuery(t testing.TB, login, q string, vars map[string]any, out any) {
	t.Helper()
	if r := query(t, login, q, vars, out); len(r.Errors) > 0 {
		t.Fatalf("%s: errors %+v", login, r.Errors)
	}
}

// oracle reads the GUIDs of set matching filter straight from the Domain API with a service token: the ground
// truth the GraphQL answers are compared with. It shares no code with erpgraph's query building.
func oracle(t testing.TB, set, filter string) map[string]bool {
	t.Helper()
	q := url.Values{"$select": {"Id"}}
	if filter != "" {
		q.Set("$filter", filter)
	}
	req, _ := http.NewRequest(http.MethodGet, sim.ODataURL()+set+"?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+service)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Value []struct {
			ID string `json:"Id"`
		} `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("oracle %s %s: HTTP %d %v", set, filter, resp.StatusCode, err)
	}
	out := map[string]bool{}
	for _, v := range body.Value {
		out[v.ID] = true
	}
	return out
}

// oracleRef reads the reference prop of set(id) straight from the Domain API, as "Set(guid)".
func oracleRef(t testing.TB, set, id, prop string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, sim.ODataURL()+set+"("+id+")?$select="+prop, nil)
	req.Header.Set("Authorization", "Bearer "+service)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]json.RawMessage
	var ref struct {
		ID string `json:"@odata.id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	if err == nil {
		err = json.Unmarshal(body[prop], &ref)
	}
	if err != nil || ref.ID == "" {
		t.Fatalf("oracle %s(%s)/%s: HTTP %d %v", set, id, prop, resp.StatusCode, err)
	}
	return ref.ID
}

// guid decodes a global ID (the e2e tests know the format only to compare with the oracle).
func guid(t testing.TB, id string) string {
	t.Helper()
	_, g, err := model.DecodeID(id)
	if err != nil {
		t.Fatalf("bad ID %q from the API: %v", id, err)
	}
	return g
}

// cutoff is the first visible document date for a days-back window, as the oracle filters it.
func cutoff(days int) string {
	now := time.Now().UTC()
	return time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -days).Format("2006-01-02")
}

func encodeID(typ, g string) string { return model.EncodeID(typ, g) }
