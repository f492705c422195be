package playground_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/erpgraph/erpgraph/server/playground"
)

func testConfig() playground.Config {
	return playground.Config{
		Enabled:               true,
		ClientID:              "com.erpgraph/playground",
		AuthorizationEndpoint: "https://demo.my.erp.net/id/connect/authorize",
		TokenEndpoint:         "https://demo.my.erp.net/id/connect/token",
		EndSessionEndpoint:    "https://demo.my.erp.net/id/connect/endsession",
		SignInHint:            "anna.petrova / demo",
	}
}

func mustServer(t *testing.T, cfg playground.Config) *httptest.Server {
	t.Helper()
	h, err := playground.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", h)
	mux.Handle("GET "+playground.AssetsPath, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	// A Transport of its own, so that Accept-Encoding is what the test sets.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

var (
	attrRe   = regexp.MustCompile(`(?i)\s(?:src|href)="([^"]*)"`)
	scriptRe = regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	configRe = regexp.MustCompile(`(?s)<script id="erpgraph-config" type="application/json">(.*?)</script>`)
)

func TestPlayground_Page(t *testing.T) {
	srv := mustServer(t, testConfig())
	res, body := get(t, srv.URL+"/", http.Header{})
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "connect-src 'self' https://demo.my.erp.net"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-eval") || strings.Contains(strings.SplitN(strings.SplitN(csp, "script-src", 2)[1], ";", 2)[0], "unsafe-inline") {
		t.Errorf("CSP allows inline or eval'd scripts: %q", csp)
	}
	for h, want := range map[string]string{
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
	} {
		if got := res.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	// Every script is a local file or the JSON data block: nothing inline runs.
	for _, m := range scriptRe.FindAllStringSubmatch(string(body), -1) {
		attrs, content := m[1], strings.TrimSpace(m[2])
		if !strings.Contains(attrs, "src=") && !strings.Contains(attrs, `type="application/json"`) {
			t.Errorf("inline script <script%s>%.40s", attrs, content)
		}
	}

	// Every referenced file is local and served.
	refs := attrRe.FindAllStringSubmatch(string(body), -1)
	if len(refs) < 6 {
		t.Fatalf("page references %d files, want the GraphiQL, React and playground files", len(refs))
	}
	for _, m := range refs {
		ref := html.UnescapeString(m[1])
		// Root-relative names (same origin) keep working when the page moves to /playground/ beside a frontend.
		if strings.Contains(ref, "//") || !strings.HasPrefix(ref, "/") || strings.Contains(ref, ":") {
			t.Errorf("page references %q: want a root-relative path on this origin", ref)
			continue
		}
		res, body := get(t, srv.URL+ref, http.Header{})
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s = %d (%d bytes)", ref, res.StatusCode, len(body))
		}
		wantType := map[bool]string{true: "text/javascript", false: "text/css"}[strings.HasSuffix(ref, ".js")]
		if strings.HasSuffix(ref, ".svg") { // the icon
			wantType = "image/svg+xml"
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, wantType) {
			t.Errorf("%s Content-Type = %q, want %s", ref, ct, wantType)
		}
	}

	m := configRe.FindSubmatch(body)
	if m == nil {
		t.Fatal("no configuration block in the page")
	}
	var cfg struct {
		ClientID, AuthorizationEndpoint, TokenEndpoint, Scopes, GraphQLPath, SignInHint string
		Examples                                                                        []playground.Example
	}
	if err := json.Unmarshal(m[1], &cfg); err != nil {
		t.Fatalf("configuration block: %v\n%s", err, m[1])
	}
	if cfg.ClientID != "com.erpgraph/playground" || cfg.TokenEndpoint != testConfig().TokenEndpoint ||
		cfg.Scopes != "openid profile" || cfg.GraphQLPath != "graphql" || cfg.SignInHint != "anna.petrova / demo" || len(cfg.Examples) == 0 {
		t.Errorf("configuration = %+v", cfg)
	}
}

// The hint is the operator's text, and the page must not let it break out of
// the data block.
func TestPlayground_ConfigEscaping(t *testing.T) {
	cfg := testConfig()
	cfg.SignInHint = `</script><script>alert(1)</script>`
	srv := mustServer(t, cfg)
	_, body := get(t, srv.URL+"/", http.Header{})
	if bytes.Contains(body, []byte("<script>alert(1)")) {
		t.Errorf("hint escaped the data block:\n%s", body)
	}
}

func TestPlayground_Assets(t *testing.T) {
	srv := mustServer(t, testConfig())
	// react-dom rather than graphiql: compressing 3.5 MB under the race detector is slow.
	plain, body := get(t, srv.URL+playground.AssetsPath+"react-dom.production.min.js", http.Header{})
	if plain.StatusCode != 200 || plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("plain GET: %d, encoding %q", plain.StatusCode, plain.Header.Get("Content-Encoding"))
	}
	zipped, zbody := get(t, srv.URL+playground.AssetsPath+"react-dom.production.min.js", http.Header{"Accept-Encoding": {"gzip, br"}})
	if zipped.Header.Get("Content-Encoding") != "gzip" || len(zbody) >= len(body)/2 {
		t.Fatalf("gzip GET: encoding %q, %d of %d bytes", zipped.Header.Get("Content-Encoding"), len(zbody), len(body))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zbody))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, body) {
		t.Errorf("gzip body does not decode to the file (%v)", err)
	}
	for _, name := range []string{"LICENSE.graphiql", "LICENSE.react", "LICENSE.react-dom"} {
		if res, _ := get(t, srv.URL+playground.AssetsPath+name, http.Header{}); res.StatusCode != 200 {
			t.Errorf("%s: %d", name, res.StatusCode)
		}
	}
	for _, bad := range []string{"nope.js", "../playground.go", "%2e%2e/playground.go", "sub/../VERSIONS.x"} {
		if res, body := get(t, srv.URL+playground.AssetsPath+bad, http.Header{}); res.StatusCode == http.StatusOK {
			t.Errorf("GET %s = %d, want a refusal (%.60s)", bad, res.StatusCode, body)
		}
	}
}

// The access token must live in memory only.
func TestPlayground_TokenStaysInMemory(t *testing.T) {
	js, err := os.ReadFile("assets/playground.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, forbidden := range []string{"localStorage", "document.cookie", "indexedDB"} {
		if bytes.Contains(js, []byte(forbidden)) {
			t.Errorf("playground.js uses %s", forbidden)
		}
	}
	for _, need := range []string{"code_challenge_method: 'S256'", "sessionStorage.removeItem(PENDING)", "history.replaceState"} {
		if !bytes.Contains(js, []byte(need)) {
			t.Errorf("playground.js lacks %q", need)
		}
	}
}

// Every example must validate against the schema the server serves.
func TestExamples_ValidateAgainstSchema(t *testing.T) {
	src, err := os.ReadFile("../../schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: string(src)})
	if err != nil {
		t.Fatalf("schema: %v", err)
	}
	examples, err := playground.Examples()
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) < 4 {
		t.Fatalf("%d examples, want the preloaded set", len(examples))
	}
	for _, ex := range examples {
		t.Run(ex.Name, func(t *testing.T) {
			if _, errs := gqlparser.LoadQuery(schema, ex.Query); len(errs) > 0 {
				t.Errorf("example does not validate: %v", errs)
			}
		})
	}
}

func TestNew_Errors(t *testing.T) {
	_, err := playground.New(playground.Config{Enabled: true, AuthorizationEndpoint: "relative/path", TokenEndpoint: "ftp://x"})
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	for _, want := range []string{"client id", "token endpoint", "authorization endpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}
