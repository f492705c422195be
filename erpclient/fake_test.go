package erpclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpclient"
)

// fakeERP is a tiny stand-in for an ERP.net instance used by the unit tests
// of the client's own machinery (scheduler, token handling, decoding,
// errors) before and besides erpsim: discovery, a token endpoint, and an
// OData root whose answers each test chooses. It counts everything.
type fakeERP struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	tokens   int            // token exchanges
	requests []string       // OData HTTP requests: "GET /odata/Set?query" or "POST /odata/$batch [n parts]"
	parts    [][]string     // per $batch: the part request lines
	gate     chan struct{}  // when set, the next OData request blocks until it is closed
	aborted  int            // held requests whose client went away
	refuse   map[string]int // token → remaining 401 answers for it
	answer   func(method, path, rawQuery string, body []byte) (status int, header http.Header, out string)
}

func newFake(t *testing.T) *fakeERP {
	t.Helper()
	f := &fakeERP{t: t, refuse: map[string]int{}}
	f.answer = f.defaultAnswer
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sys/auto-discovery", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"Host": r.Host, "DbName": "FAKE", "WebSites": []map[string]any{
			{"Type": "UserProfile", "Status": "Working", "Url": f.srv.URL + "/profile"},
			{"Type": "ID", "Status": "Working", "Url": f.srv.URL + "/id", "System": true},
			{"Type": "DomainAPI", "Status": "Working", "Url": f.srv.URL + "/api", "AdditionalProperties": map[string]string{"ODataServiceRoot": f.srv.URL + "/odata/"}},
		}})
	})
	mux.HandleFunc("GET /id/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": f.srv.URL + "/id", "token_endpoint": f.srv.URL + "/id/connect/token"})
	})
	mux.HandleFunc("POST /id/connect/token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("grant_type") != "client_credentials" || r.FormValue("client_id") != "com.test/app" || r.FormValue("client_secret") != "s3cret" {
			writeJSON(w, 400, map[string]string{"error": "invalid_client"})
			return
		}
		f.mu.Lock()
		f.tokens++
		n := f.tokens
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": fmt.Sprintf("token-%d", n), "expires_in": 3600, "token_type": "Bearer", "scope": r.FormValue("scope")})
	})
	mux.HandleFunc("/odata/", f.serveOData)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// defaultAnswer: a one-row collection naming the request, so each caller can
// check it got the answer to its own query.
func (f *fakeERP) defaultAnswer(method, path, rawQuery string, _ []byte) (int, http.Header, string) {
	if method != http.MethodGet {
		return 201, nil, `{"@odata.id":"Crm_Sales_SalesOrders(5d1c0c1e-8a4b-4c2e-9d55-0b6f3f1a2b01)","DocumentNo":"1"}`
	}
	q, _ := url.ParseQuery(rawQuery)
	b, _ := json.Marshal(map[string]any{"value": []map[string]any{{
		"@odata.id": "General_Products_Products(edf2bd2a-7e4d-e111-a06c-00155d00050a)", "PartNumber": q.Get("$filter"),
	}}})
	return 200, nil, string(b)
}

func (f *fakeERP) serveOData(w http.ResponseWriter, r *http.Request) {
	auth := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	refused := f.refuse[auth] > 0 || !strings.HasPrefix(auth, "token-")
	if f.refuse[auth] > 0 {
		f.refuse[auth]--
	}
	line := r.Method + " " + r.URL.Path + "?" + r.URL.RawQuery
	var parts []string
	if r.URL.Path == "/odata/$batch" {
		parts = batchLines(f.t, r.Header.Get("Content-Type"), body)
		line = fmt.Sprintf("POST /odata/$batch [%d parts]", len(parts))
		f.parts = append(f.parts, parts)
	}
	f.requests = append(f.requests, line)
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			f.mu.Lock()
			f.aborted++
			f.mu.Unlock()
			return
		}
	}
	if refused {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(401)
		return
	}
	if r.URL.Path != "/odata/$batch" {
		status, h, out := f.answer(r.Method, strings.TrimPrefix(r.URL.Path, "/odata/"), r.URL.RawQuery, body)
		for k, v := range h {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, out)
		return
	}
	// $batch of GETs: answer each part with the same function
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		method, target, _ := strings.Cut(strings.TrimSuffix(p, " HTTP/1.1"), " ")
		u, err := url.Parse(target)
		if err != nil {
			f.t.Errorf("batch part target %q: %v", target, err)
			continue
		}
		status, _, out := f.answer(method, strings.TrimPrefix(u.Path, "/odata/"), u.RawQuery, nil)
		pw, _ := mw.CreatePart(map[string][]string{"Content-Type": {"application/http"}, "Content-Transfer-Encoding": {"binary"}})
		fmt.Fprintf(pw, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n\r\n%s", status, http.StatusText(status), out)
	}
	mw.Close()
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+mw.Boundary())
	w.WriteHeader(200)
	w.Write(buf.Bytes())
}

// batchLines reads the request lines of a multipart $batch request.
func batchLines(t *testing.T, contentType string, body []byte) []string {
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Errorf("batch content type %q: %v", contentType, err)
		return nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []string
	for {
		p, err := mr.NextPart()
		if err != nil {
			return out
		}
		req, err := http.ReadRequest(bufio.NewReader(p))
		if err != nil {
			t.Errorf("batch part: %v", err)
			return out
		}
		out = append(out, req.Method+" "+req.RequestURI+" HTTP/1.1")
	}
}

func (f *fakeERP) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func (f *fakeERP) tokenCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tokens
}

// hold makes the next OData request wait until the returned func is called.
func (f *fakeERP) hold() (release func()) {
	g := make(chan struct{})
	f.mu.Lock()
	f.gate = g
	f.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(g) }) }
	f.t.Cleanup(release)
	return release
}

func (f *fakeERP) config() erpclient.Config {
	return erpclient.Config{InstanceURL: f.srv.URL, ClientID: "com.test/app", ClientSecret: "s3cret"}
}

func (f *fakeERP) client(t *testing.T, mod func(*erpclient.Config)) *erpclient.Client {
	t.Helper()
	return newClient(t, f.config(), mod)
}

// newClient builds a client from cfg as adjusted by mod, closed with the test.
func newClient(t *testing.T, cfg erpclient.Config, mod func(*erpclient.Config)) *erpclient.Client {
	t.Helper()
	// tests hold requests in flight to make callers queue behind them: a
	// slow request must keep its slot however long the test takes
	cfg.Scheduler.SlowAfter = -1
	if mod != nil {
		mod(&cfg)
	}
	c, err := erpclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// noErrors fails the test for every non-nil error of the calls.
func noErrors(t *testing.T, errs ...[]error) {
	t.Helper()
	for _, es := range errs {
		for _, err := range es {
			if err != nil {
				t.Error(err)
			}
		}
	}
}

// waitFor polls cond until it holds or the test's patience ends.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
