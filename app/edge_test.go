package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/app"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/server"
)

// customersQuery reads from ERP.net (access resolution and the customer list).
const customersQuery = `query Customers { customers(first: 2) { nodes { id } } }`

type answer struct {
	status int
	header http.Header
	body   gqlResponse
}

// send sends one request to /graphql and decodes the GraphQL-shaped answer.
func send(t *testing.T, client *http.Client, req *http.Request) answer {
	t.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: status %d, body not JSON: %q", req.Method, req.URL.Path, res.StatusCode, raw)
	}
	return answer{status: res.StatusCode, header: res.Header, body: out}
}

func newPost(t *testing.T, a *app.App, token, contentType, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.URL()+"/graphql", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func jsonBody(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

func (a answer) code() string {
	if len(a.body.Errors) == 0 {
		return ""
	}
	c, _ := a.body.Errors[0].Extensions["code"].(string)
	return c
}

func login(t *testing.T, a *app.App, user string) string {
	t.Helper()
	tok, err := a.Sim().Login(context.Background(), fixture.PlaygroundClientID, user, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// noDomainRequests asserts that ERP.net's Domain API saw nothing since the
// last ResetRequests.
func noDomainRequests(t *testing.T, a *app.App, what string) {
	t.Helper()
	if n := a.Sim().Stats().DomainRequests; n != 0 {
		t.Errorf("%s: erpsim saw %d Domain API requests, want 0", what, n)
	}
}

func devConfig(t *testing.T) app.Config {
	t.Helper()
	cfg, err := app.ConfigFromEnv(envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	// these tests count the Domain API requests of single operations: no background sync alongside
	// (the e2e tests run it)
	cfg.ReadCache.SyncInterval = -1
	return cfg
}

// A user over their token bucket gets 429 RATE_LIMITED with Retry-After, and
// ERP.net is not asked; another user and another IP have their own buckets.
func TestApp_RateLimit(t *testing.T) {
	cfg := devConfig(t)
	cfg.RateLimit = server.RateLimitConfig{UserRate: 0.01, UserBurst: 2, AnonRate: 0.01, AnonBurst: 1}
	a := run(t, cfg)
	anna, boris := login(t, a, fixture.OwnerLogin), login(t, a, fixture.MultiLogin)
	for i := range 2 {
		if got := send(t, nil, newPost(t, a, anna, "application/json", jsonBody(customersQuery, nil))); got.status != http.StatusOK || got.code() != "" {
			t.Fatalf("request %d within the burst: status %d, errors %+v", i+1, got.status, got.body.Errors)
		}
	}
	a.Sim().ResetRequests()
	got := send(t, nil, newPost(t, a, anna, "application/json", jsonBody(customersQuery, nil)))
	if got.status != http.StatusTooManyRequests || got.code() != "RATE_LIMITED" {
		t.Fatalf("over the burst: status %d, errors %+v", got.status, got.body.Errors)
	}
	if secs, err := strconv.Atoi(got.header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("Retry-After = %q, want whole seconds >= 1", got.header.Get("Retry-After"))
	}
	if rid := got.body.Errors[0].Extensions["requestId"]; rid == "" || rid != got.header.Get("X-Request-ID") {
		t.Errorf("requestId %v, X-Request-ID %q", rid, got.header.Get("X-Request-ID"))
	}
	if got.body.Data != nil {
		t.Errorf("a refused request has data: %v", got.body.Data)
	}
	noDomainRequests(t, a, "rate-limited request")

	if got := send(t, nil, newPost(t, a, boris, "application/json", jsonBody(customersQuery, nil))); got.status != http.StatusOK {
		t.Errorf("another user: status %d, errors %+v", got.status, got.body.Errors)
	}

	// Anonymous requests are counted per client IP (here: one bucket of 1).
	anon := func() answer {
		return send(t, nil, newPost(t, a, "", "application/json", jsonBody("{ __typename }", nil)))
	}
	if got := anon(); got.status != http.StatusOK {
		t.Errorf("first anonymous request: %d %+v", got.status, got.body.Errors)
	}
	if got := anon(); got.status != http.StatusTooManyRequests || got.code() != "RATE_LIMITED" {
		t.Errorf("second anonymous request: %d %+v", got.status, got.body.Errors)
	}
}

// The CSRF and GET rules, through the real GraphQL handler: requests a
// browser could send cross-site without a preflight are refused before
// anything runs, and GET never runs a mutation.
func TestApp_CSRFPrevention(t *testing.T) {
	a := run(t, devConfig(t))
	anna := login(t, a, fixture.OwnerLogin)
	get := func(query string, header ...string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, a.URL()+"/graphql?"+url.Values{"query": {query}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+anna)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		return req
	}
	form := url.Values{"query": {customersQuery}}.Encode()
	refused := []struct {
		name string
		req  *http.Request
	}{
		{"form-encoded POST", newPost(t, a, anna, "application/x-www-form-urlencoded", form)},
		{"text/plain POST", newPost(t, a, anna, "text/plain; charset=utf-8", jsonBody(customersQuery, nil))},
		{"multipart POST", newPost(t, a, anna, "multipart/form-data; boundary=x", "--x--")},
		{"POST without Content-Type", newPost(t, a, anna, "", jsonBody(customersQuery, nil))},
		{"GET without a CSRF header", get(customersQuery)},
		{"GET with an empty CSRF header", get(customersQuery, "Apollo-Require-Preflight", "")},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			a.Sim().ResetRequests()
			got := send(t, nil, tt.req)
			if got.status != http.StatusBadRequest || got.code() != "CSRF_PREVENTED" || got.body.Data != nil {
				t.Errorf("status %d, errors %+v, data %v", got.status, got.body.Errors, got.body.Data)
			}
			noDomainRequests(t, a, tt.name)
		})
	}

	t.Run("GET mutation", func(t *testing.T) {
		a.Sim().ResetRequests()
		got := send(t, nil, get(`mutation { __typename }`, "Apollo-Require-Preflight", "true"))
		if got.status == http.StatusOK && len(got.body.Errors) == 0 || got.body.Data != nil {
			t.Errorf("a mutation over GET ran: status %d, data %v", got.status, got.body.Data)
		}
		noDomainRequests(t, a, "GET mutation")
	})
	accepted := []struct {
		name string
		req  *http.Request
	}{
		{"JSON POST", newPost(t, a, anna, "application/json", jsonBody(customersQuery, nil))},
		{"text/plain POST with a CSRF header", func() *http.Request {
			r := newPost(t, a, anna, "text/plain", jsonBody(customersQuery, nil))
			r.Header.Set("X-Apollo-Operation-Name", "Customers")
			return r
		}()},
		{"GET with Apollo-Require-Preflight", get(customersQuery, "Apollo-Require-Preflight", "true")},
		{"GET with X-Apollo-Operation-Name", get(customersQuery, "X-Apollo-Operation-Name", "Customers")},
		{"GET with a non-simple Content-Type", get(customersQuery, "Content-Type", "application/json")},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			got := send(t, nil, tt.req)
			if got.code() == "CSRF_PREVENTED" {
				t.Errorf("refused: %+v", got.body.Errors)
			}
			if tt.req.Method == http.MethodGet || tt.req.Header.Get("Content-Type") == "application/json" {
				if got.status != http.StatusOK || len(got.body.Errors) > 0 || got.body.Data["customers"] == nil {
					t.Errorf("status %d, errors %+v", got.status, got.body.Errors)
				}
			}
		})
	}
}

// An oversized body is refused with a GraphQL-shaped 413, declared or streamed.
func TestApp_BodyLimit(t *testing.T) {
	cfg := devConfig(t)
	cfg.MaxBodyBytes = 4096
	a := run(t, cfg)
	anna := login(t, a, fixture.OwnerLogin)
	big := jsonBody(customersQuery+strings.Repeat(" ", 5000), nil)
	a.Sim().ResetRequests()
	for _, streamed := range []bool{false, true} {
		req := newPost(t, a, anna, "application/json", big)
		if streamed {
			req.Body, req.ContentLength = io.NopCloser(io.MultiReader(strings.NewReader(big))), -1
		}
		got := send(t, nil, req)
		if got.status != http.StatusRequestEntityTooLarge || got.code() != "BAD_REQUEST" || !strings.Contains(got.body.Errors[0].Message, "4096") {
			t.Errorf("streamed %v: status %d, errors %+v", streamed, got.status, got.body.Errors)
		}
	}
	noDomainRequests(t, a, "oversized bodies")
}

// syncBuffer is a concurrency-safe log destination.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("audit line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func find(recs []map[string]any, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// The audit stream records the service-token exchange, the first use of each
// user token, every operation (name, query hash, outcome, status) and every
// refusal with its reason; it never holds a token, a secret or a variable value.
func TestApp_AuditLog(t *testing.T) {
	audit := &syncBuffer{}
	cfg := devConfig(t)
	cfg.AuditLogger = slog.New(slog.NewJSONHandler(audit, nil))
	cfg.AuditVariables = server.AuditVariablesNames
	a := run(t, cfg)
	tok, err := a.Sim().Login(context.Background(), fixture.PlaygroundClientID, fixture.OwnerLogin, fixture.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	const secretValue = "Secret-Variable-Value-42"
	query := `query Named($needle: String) { customers(first: 1, filter: {number: {contains: $needle}}) { totalCount } }`
	vars := map[string]any{"needle": secretValue}
	var ok answer
	for range 2 {
		ok = send(t, nil, newPost(t, a, tok.AccessToken, "application/json", jsonBody(query, vars)))
	}
	if ok.status != http.StatusOK {
		t.Fatalf("query: %d %+v", ok.status, ok.body.Errors)
	}
	csrf := send(t, nil, newPost(t, a, tok.AccessToken, "text/plain", jsonBody(query, vars)))
	bad := send(t, nil, newPost(t, a, "forged.token.value", "application/json", jsonBody(query, vars)))
	anon := send(t, nil, newPost(t, a, "", "application/json", jsonBody(customersQuery, nil)))
	broken := send(t, nil, newPost(t, a, tok.AccessToken, "application/json", jsonBody("query Broken {", nil)))
	internal := send(t, nil, newPost(t, a, login(t, a, fixture.InternalLogin), "application/json", jsonBody(customersQuery, nil)))

	recs := audit.records(t)
	if got := find(recs, func(r map[string]any) bool { return r["msg"] == "erp token exchange" }); len(got) == 0 {
		t.Errorf("no service-token exchange record in\n%s", audit)
	}
	first := find(recs, func(r map[string]any) bool {
		return r["msg"] == "user token first use" && r["subject"] == fixture.OwnerLogin
	})
	if len(first) != 1 {
		t.Fatalf("first-use records = %d, want 1 for two requests with one token:\n%s", len(first), audit)
	}
	for k, want := range map[string]any{"subject": fixture.OwnerLogin, "user_type": fixture.ExternalCommunityUser, "client_id": fixture.PlaygroundClientID} {
		if !strings.EqualFold(str(first[0][k]), str(want)) {
			t.Errorf("first use %s = %v, want %v", k, first[0][k], want)
		}
	}
	if str(first[0]["token_id_sha256"]) == "" || str(first[0]["user_id"]) == "" {
		t.Errorf("first use lacks token id hash or user id: %v", first[0])
	}
	sum := sha256.Sum256([]byte(query))
	ops := find(recs, func(r map[string]any) bool {
		return r["request_id"] == ok.header.Get("X-Request-ID") && r["msg"] == "graphql operation"
	})
	if len(ops) != 1 {
		t.Fatalf("operation records for %s = %d:\n%s", ok.header.Get("X-Request-ID"), len(ops), audit)
	}
	op := ops[0]
	want := map[string]any{"operation_name": "Named", "operation_type": "query", "query_sha256": hex.EncodeToString(sum[:]),
		"outcome": "OK", "status": float64(200), "subject": fixture.OwnerLogin, "method": "POST"}
	for k, v := range want {
		if op[k] != v {
			t.Errorf("operation %s = %v, want %v", k, op[k], v)
		}
	}
	if vs, _ := op["variables"].([]any); len(vs) != 1 || vs[0] != "needle" {
		t.Errorf("operation variables = %v, want the names only", op["variables"])
	}
	if _, ok := op["duration_ms"].(float64); !ok || str(op["user_id"]) == "" {
		t.Errorf("operation lacks duration or user id: %v", op)
	}
	for _, tt := range []struct {
		res            answer
		reason, outcom string
	}{
		{csrf, "csrf", "CSRF_PREVENTED"},
		{bad, "auth", "UNAUTHENTICATED"},
		{anon, "auth", "UNAUTHENTICATED"}, // refused by the GraphQL layer, outcome read from its answer
		{internal, "access", "FORBIDDEN"}, // internal users are refused by access unless allowed
	} {
		d := find(recs, func(r map[string]any) bool {
			return r["request_id"] == tt.res.header.Get("X-Request-ID") && r["msg"] != "user token first use"
		})
		if len(d) != 1 || d[0]["msg"] != "graphql request denied" || d[0]["reason"] != tt.reason || d[0]["outcome"] != tt.outcom {
			t.Errorf("denial record for %s = %v", tt.reason, d)
		}
	}
	if d := find(recs, func(r map[string]any) bool { return r["request_id"] == broken.header.Get("X-Request-ID") }); len(d) != 1 ||
		d[0]["outcome"] != "GRAPHQL_PARSE_FAILED" || d[0]["operation_name"] != "Broken" || d[0]["msg"] != "graphql operation" {
		t.Errorf("record of a parse error = %v", d)
	}
	logs := audit.String()
	for _, secret := range []string{tok.AccessToken, strings.Split(tok.AccessToken, ".")[2], tok.RefreshToken, tok.IDToken,
		fixture.BFFSecret, secretValue, "forged.token.value"} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("audit log holds %q", secret)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }

// With a certificate configured erpgraph speaks only HTTPS, TLS 1.2 or later.
func TestApp_TLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cfg := devConfig(t)
	cfg.TLSCertFile, cfg.TLSKeyFile = certFile, keyFile
	a := run(t, cfg)
	if !strings.HasPrefix(a.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL = %s, want https", a.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	got := send(t, client, newPost(t, a, login(t, a, fixture.OwnerLogin), "application/json", jsonBody(customersQuery, nil)))
	if got.status != http.StatusOK || len(got.body.Errors) > 0 {
		t.Errorf("HTTPS query: %d %+v", got.status, got.body.Errors)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if res, err := old.Get(a.URL() + "/healthz"); err == nil {
		res.Body.Close()
		t.Error("a TLS 1.1 client was served")
	}
	res, err := http.Get(strings.Replace(a.URL(), "https://", "http://", 1) + "/healthz")
	if err == nil {
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served")
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns a
// pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "erpgraph test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestConfigFromEnv_Edge(t *testing.T) {
	env := map[string]string{
		"ERPGRAPH_MAX_BODY_BYTES":      "65536",
		"ERPGRAPH_OPERATION_TIMEOUT":   "5s",
		"ERPGRAPH_READ_HEADER_TIMEOUT": "2s",
		"ERPGRAPH_WRITE_TIMEOUT":       "20s",
		"ERPGRAPH_RATE_LIMIT":          "2.5",
		"ERPGRAPH_RATE_BURST":          "5",
		"ERPGRAPH_ANON_RATE_LIMIT":     "off",
		"ERPGRAPH_MAX_CONCURRENT":      "3",
		"ERPGRAPH_CONCURRENCY_WAIT":    "50ms",
		"ERPGRAPH_TRUSTED_PROXIES":     "10.0.0.0/8, 192.168.1.7, ::1",
		"ERPGRAPH_CORS_ORIGINS":        "https://portal.example.com,http://localhost:3000",
		"ERPGRAPH_CORS_MAX_AGE":        "1h",
		"ERPGRAPH_CSRF_HEADERS":        "X-Portal-CSRF",
		"ERPGRAPH_AUDIT_LOG":           "off",
		"ERPGRAPH_AUDIT_VARIABLES":     "names",
	}
	cfg, err := app.ConfigFromEnv(envOf(env), []string{"-max-concurrent", "off"})
	if err != nil {
		t.Fatal(err)
	}
	rl := cfg.RateLimit
	if cfg.MaxBodyBytes != 65536 || cfg.OperationTimeout != 5*time.Second || cfg.ReadHeaderTimeout != 2*time.Second || cfg.WriteTimeout != 20*time.Second {
		t.Errorf("limits: %d %v %v %v", cfg.MaxBodyBytes, cfg.OperationTimeout, cfg.ReadHeaderTimeout, cfg.WriteTimeout)
	}
	if rl.UserRate != 2.5 || rl.UserBurst != 5 || rl.AnonRate != -1 || rl.MaxConcurrent != -1 || rl.ConcurrencyWait != 50*time.Millisecond {
		t.Errorf("rate limits: %+v", rl)
	}
	wantProxies := []string{"10.0.0.0/8", "192.168.1.7/32", "::1/128"}
	if len(rl.TrustedProxies) != len(wantProxies) {
		t.Fatalf("trusted proxies %v", rl.TrustedProxies)
	}
	for i, p := range rl.TrustedProxies {
		if p.String() != wantProxies[i] {
			t.Errorf("trusted proxy %d = %s, want %s", i, p, wantProxies[i])
		}
	}
	if len(cfg.CORS.Origins) != 2 || cfg.CORS.MaxAge != time.Hour || len(cfg.CSRFHeaders) != 1 || cfg.AuditLog != "off" || cfg.AuditVariables != "names" {
		t.Errorf("cors %+v, csrf %v, audit %q %q", cfg.CORS, cfg.CSRFHeaders, cfg.AuditLog, cfg.AuditVariables)
	}
}

func TestConfigFromEnv_EdgeErrors(t *testing.T) {
	env := map[string]string{
		"ERP_INSTANCE_URL":           "http://erp.example.com", // plain http to a non-loopback host
		"ERP_CLIENT_ID":              "com.example/bff",
		"ERP_CLIENT_SECRET":          "x",
		"ERPGRAPH_CORS_ORIGINS":      "*, https://a.example.com/",
		"ERPGRAPH_OPERATION_TIMEOUT": "2m",
		"ERPGRAPH_READ_TIMEOUT":      "soon",
		"ERPGRAPH_RATE_LIMIT":        "-3",
		"ERPGRAPH_MAX_BODY_BYTES":    "off",
		"ERPGRAPH_TRUSTED_PROXIES":   "proxy.local",
		"ERPGRAPH_AUDIT_VARIABLES":   "values",
		"ERPGRAPH_TLS_CERT_FILE":     "/nonexistent/cert.pem",
	}
	_, err := app.ConfigFromEnv(envOf(env), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"https", "wildcards", "trailing slash", "ERPGRAPH_OPERATION_TIMEOUT", "ERPGRAPH_READ_TIMEOUT",
		"ERPGRAPH_RATE_LIMIT", "ERPGRAPH_MAX_BODY_BYTES", "ERPGRAPH_TRUSTED_PROXIES", "ERPGRAPH_AUDIT_VARIABLES", "ERPGRAPH_TLS_KEY_FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	// Plain http is fine on loopback (erpsim, a local tunnel).
	env = map[string]string{"ERP_INSTANCE_URL": "http://127.0.0.1:5000", "ERP_CLIENT_ID": "com.example/bff", "ERP_CLIENT_SECRET": "x"}
	if _, err := app.ConfigFromEnv(envOf(env), nil); err != nil {
		t.Errorf("loopback http: %v", err)
	}
}

// ERPGRAPH_AUDIT_LOG=<path> appends JSON records to that file, apart from the
// operational log.
func TestApp_AuditLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(`{"msg":"earlier"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := devConfig(t)
	cfg.AuditLog = path
	a := run(t, cfg)
	got := send(t, nil, newPost(t, a, login(t, a, fixture.OwnerLogin), "application/json", jsonBody(customersQuery, nil)))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != `{"msg":"earlier"}` {
		t.Errorf("the file was not appended to: %q", lines[0])
	}
	var op map[string]any
	for _, l := range lines[1:] {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		if m["log"] != "audit" {
			t.Errorf("record without log=audit: %v", m)
		}
		if m["request_id"] == got.header.Get("X-Request-ID") {
			op = m
		}
	}
	if op == nil || op["operation_name"] != "Customers" || op["outcome"] != "OK" {
		t.Errorf("operation record = %v in\n%s", op, b)
	}
}
