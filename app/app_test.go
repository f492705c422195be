package app_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server/playground"
)

var quiet = slog.New(slog.DiscardHandler)

// run builds and serves an App, stopping it when the test ends (and checking
// that the shutdown was clean).
func run(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	a, err := app.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

type gqlResponse struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func graphql(t *testing.T, a *app.App, token, query string) (int, gqlResponse) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"query": query})
	req, _ := http.NewRequest(http.MethodPost, a.URL()+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatalf("decode response (status %d): %v", res.StatusCode, err)
	}
	return res.StatusCode, out
}

func status(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// Dev mode: `erpgraph serve` with no configuration runs on an in-process
// erpsim, answers GraphQL, serves the playground and is ready.
func TestApp_DevMode(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := run(t, cfg)
	if a.Sim() == nil {
		t.Fatal("dev mode without an in-process erpsim")
	}
	code, res := graphql(t, a, "", "{ __typename }")
	if code != http.StatusOK || res.Data["__typename"] != "Query" || len(res.Errors) != 0 {
		t.Errorf("{ __typename } = %d %+v", code, res)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/": 200} {
		if got := status(t, a.URL()+path); got != want {
			t.Errorf("GET %s = %d, want %d", path, got, want)
		}
	}
	banner := a.Banner()
	for _, want := range []string{a.URL() + "/", "erpsim", a.Sim().URL(), `password "demo"`, fixture.OwnerLogin, fixture.NoAccessLogin, "ERPGRAPH_ALLOW_INTERNAL_USERS"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, fixture.BFFSecret) {
		t.Error("banner shows the client secret")
	}
}

var (
	formActionRe = regexp.MustCompile(`<form method="post" action="([^"]+)"`)
	hiddenRe     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// The playground's sign-in, step by step as playground.js and the browser
// run it: authorize with PKCE and this server's URL as redirect URI, the
// identity server's login form, the code exchange from the playground's
// origin (CORS), then GraphQL with the access token.
func TestApp_DevPlaygroundSignIn(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := run(t, cfg)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B
	challenge := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	redirectURI := a.URL() + "/"
	authz := a.Sim().IdentityURL() + "/connect/authorize?" + url.Values{
		"response_type": {"code"}, "client_id": {fixture.PlaygroundClientID}, "redirect_uri": {redirectURI},
		"scope": {"openid profile"}, "state": {"st4te"}, "nonce": {"n0nce"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}.Encode()
	res, err := noRedirect.Get(authz)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	action := formActionRe.FindSubmatch(page)
	if res.StatusCode != http.StatusOK || action == nil {
		t.Fatalf("authorize: %d, no login form:\n%s", res.StatusCode, page)
	}
	form := url.Values{"login": {fixture.OwnerLogin}, "password": {fixture.DemoPassword}}
	for _, m := range hiddenRe.FindAllSubmatch(page, -1) {
		form.Add(html.UnescapeString(string(m[1])), html.UnescapeString(string(m[2])))
	}
	res, err = noRedirect.PostForm(html.UnescapeString(string(action[1])), form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusFound || !strings.HasPrefix(back.String(), redirectURI+"?") {
		t.Fatalf("login: %d, redirect %q, want back to %s", res.StatusCode, res.Header.Get("Location"), redirectURI)
	}
	if back.Query().Get("state") != "st4te" || back.Query().Get("code") == "" {
		t.Fatalf("redirect query %v", back.Query())
	}

	tokReq, _ := http.NewRequest(http.MethodPost, a.Sim().IdentityURL()+"/connect/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {redirectURI},
		"client_id": {fixture.PlaygroundClientID}, "code_verifier": {verifier},
	}.Encode()))
	tokReq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tokReq.Header.Set("Origin", a.URL())
	res, err = http.DefaultClient.Do(tokReq)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("token exchange: %d", res.StatusCode)
	}
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != a.URL() {
		t.Errorf("token endpoint CORS origin = %q, want %q (the browser would drop the answer)", got, a.URL())
	}

	// People open the playground as localhost too: that origin is registered as well.
	alt := strings.Replace(a.URL(), "127.0.0.1", "localhost", 1)
	res, err = noRedirect.Get(strings.Replace(authz, url.QueryEscape(redirectURI), url.QueryEscape(alt+"/"), 1))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("authorize with redirect URI %s/: %d, want the login page", alt, res.StatusCode)
	}

	code, out := graphql(t, a, tok.AccessToken, "{ me { login } }")
	me, _ := out.Data["me"].(map[string]any)
	if code != http.StatusOK || me == nil || me["login"] != fixture.OwnerLogin {
		t.Errorf("{ me { login } } = %d %+v", code, out)
	}
}

// Pointed at an instance (erpsim started separately), the app discovers it,
// accepts tokens of its trusted applications and refuses others, and its
// readiness follows the Domain API.
func TestApp_Instance(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim, err := erpsim.Start(ctx, erpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	a := run(t, app.Config{InstanceURL: sim.URL(), ClientID: fixture.BFFClientID, ClientSecret: fixture.BFFSecret})
	if a.Sim() != nil {
		t.Error("an in-process erpsim with an instance configured")
	}
	if got := status(t, a.URL()+"/"); got != http.StatusNotFound {
		t.Errorf("playground served although off: %d", got)
	}

	own, err := sim.Login(ctx, fixture.PlaygroundClientID, fixture.MultiLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	code, out := graphql(t, a, own.AccessToken, "{ me { login } }")
	if me, _ := out.Data["me"].(map[string]any); code != 200 || me == nil || me["login"] != fixture.MultiLogin {
		t.Errorf("trusted app's token: %d %+v", code, out)
	}
	foreign, err := sim.Login(ctx, fixture.OtherClientID, fixture.MultiLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	code, out = graphql(t, a, foreign.AccessToken, "{ me { login } }")
	if code != http.StatusUnauthorized || len(out.Errors) != 1 || out.Errors[0].Extensions["code"] != "UNAUTHENTICATED" {
		t.Errorf("other app's token: %d %+v", code, out)
	}

	if got := status(t, a.URL()+"/readyz"); got != http.StatusOK {
		t.Errorf("/readyz = %d", got)
	}
	sim.SetFaults(erpsim.Fault{Path: "/api/domain/odata/", Rate: 1, Status: http.StatusServiceUnavailable})
	// the probe just before proved the Domain API worked (erpclient.PingFresh); the user read that meets the
	// outage is what the next probe goes by
	graphql(t, a, own.AccessToken, "{ salesOrders(first: 1) { totalCount } }")
	if got := status(t, a.URL()+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the Domain API down = %d, want 503", got)
	}
	sim.SetFaults()
}

func TestNew_InvalidConfig(t *testing.T) {
	_, err := app.New(context.Background(), app.Config{Addr: "nope", InstanceURL: "https://demo.my.erp.net"})
	if err == nil {
		t.Fatal("New accepted an invalid configuration")
	}
	for _, want := range []string{"ERPGRAPH_ADDR", "client id", "secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

// The playground's preloaded examples run without errors for a user who may
// see everything of a customer.
func TestApp_PlaygroundExamplesRun(t *testing.T) {
	cfg, err := app.ConfigFromEnv(envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := run(t, cfg)
	tok, err := a.Sim().Login(context.Background(), fixture.PlaygroundClientID, fixture.OwnerLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	examples, err := playground.Examples()
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range examples {
		t.Run(ex.Name, func(t *testing.T) {
			if strings.HasPrefix(strings.TrimSpace(stripComments(ex.Query)), "mutation") {
				// The write examples need ids in their variables and ERPGRAPH_WRITES on: e2e/writes_test.go runs
				// the same mutations; playground_test validates the document against the schema.
				return
			}
			code, out := graphql(t, a, tok.AccessToken, ex.Query)
			if code != http.StatusOK || len(out.Errors) > 0 || len(out.Data) == 0 {
				t.Errorf("status %d, errors %+v", code, out.Errors)
			}
		})
	}
}

// Serve's context ending starts the shutdown; the parts that in-flight
// requests need (here the in-process erpsim) keep working until Close.
func TestApp_LivesUntilClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, app.Config{Addr: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	if got := status(t, a.URL()+"/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz = %d", got)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	discovery := a.Sim().URL() + "/sys/auto-discovery"
	if got := status(t, discovery); got != http.StatusOK {
		t.Errorf("erpsim after the context ended, before Close: %d", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if res, err := http.Get(discovery); err == nil {
		res.Body.Close()
		t.Errorf("erpsim still answers after Close: %d", res.StatusCode)
	}
}

func TestNew_CancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a, err := app.New(ctx, app.Config{Addr: "127.0.0.1:0", Logger: quiet}); err == nil {
		a.Close()
		t.Fatal("New succeeded with a cancelled context")
	}
}

// The playground names its icon and serves it, and /favicon.ico answers with
// the same icon: no 404 on every load.
func TestApp_PlaygroundFavicon(t *testing.T) {
	a := run(t, devConfig(t))
	res, err := http.Get(a.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	const link = `<link rel="icon" type="image/svg+xml" href="/playground/assets/favicon.svg">`
	if !strings.Contains(string(page), link) {
		t.Errorf("the playground page does not name its icon (%s)", link)
	}
	for _, path := range []string{"/playground/assets/favicon.svg", "/favicon.ico"} {
		res, err := http.Get(a.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(string(body), "<svg") {
			t.Errorf("GET %s: %d %s %.40q", path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
}

// stripComments drops the # comment lines of a GraphQL document.
func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}
