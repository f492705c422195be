package odata_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/odata"
)

// testNow is the clock of every test store: demo dates count back from its date.
var testNow = time.Date(2026, 11, 29, 10, 30, 0, 0, time.UTC)

var (
	sharedOnce  sync.Once
	sharedStore *odata.Store
)

// readStore is one store shared by read-only tests (building it costs more
// under -race than the tests that read it).
func readStore() *odata.Store {
	sharedOnce.Do(func() { sharedStore = odata.NewStore(1, testNow) })
	return sharedStore
}

// server serves s behind a middleware that plays erpsim's role: it puts the
// caller's Principal into the context.
type server struct {
	*httptest.Server
	root string
}

func newServer(t testing.TB, s *odata.Store, scopes ...string) *server {
	t.Helper()
	return newServerAt(t, s, func() time.Time { return testNow }, scopes...)
}

// newServerAt is newServer with the clock now (write times).
func newServerAt(t testing.TB, s *odata.Store, now func() time.Time, scopes ...string) *server {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"read", "update"}
	}
	srv := &server{}
	mux := http.NewServeMux()
	var h http.Handler
	mux.Handle("/api/domain/odata/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := odata.NewContext(r.Context(), odata.Principal{ClientID: "com.erpgraph/bff", Login: "erpgraph-svc", Scopes: scopes})
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	srv.Server = httptest.NewServer(mux)
	srv.root = srv.URL + "/api/domain/odata/"
	h = http.StripPrefix("/api/domain/odata", odata.NewHandler(s, odata.Options{ServiceRoot: srv.root, Now: now}))
	t.Cleanup(srv.Close)
	return srv
}

// response is a decoded Domain API answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	obj    map[string]any
}

func (r response) rows(t testing.TB) []map[string]any {
	t.Helper()
	v, ok := r.obj["value"].([]any)
	if !ok {
		t.Fatalf("no value array in %s", r.raw)
	}
	out := make([]map[string]any, len(v))
	for i, x := range v {
		out[i] = x.(map[string]any)
	}
	return out
}

// errorCode returns the envelope's code and type.
func (r response) errorCode(t testing.TB) (int, string) {
	t.Helper()
	e, ok := r.obj["error"].(map[string]any)
	if !ok {
		t.Fatalf("status %d without error envelope: %s", r.status, r.raw)
	}
	code, _ := e["code"].(json.Number).Int64()
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("error envelope without message: %s", r.raw)
	}
	return int(code), e["type"].(string)
}

func (s *server) do(t testing.TB, method, target string, body any) response {
	t.Helper()
	r, err := s.try(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines, which must not call t.Fatal.
func (s *server) try(method, target string, body any) (response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(b)
	}
	if !strings.HasPrefix(target, "http") {
		target = s.root + target
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		return response{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	out := response{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&out.obj); err != nil {
			return out, fmt.Errorf("%s %s: invalid JSON: %v\n%s", method, target, err, raw)
		}
	}
	return out, nil
}

func (s *server) get(t testing.TB, set string, kv ...string) response {
	t.Helper()
	return s.do(t, http.MethodGet, set+query(kv...), nil)
}

// mustGet fails unless the GET answers 200.
func (s *server) mustGet(t testing.TB, set string, kv ...string) response {
	t.Helper()
	r := s.get(t, set, kv...)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s%s: status %d: %s", set, query(kv...), r.status, r.raw)
	}
	return r
}

// query encodes option pairs the way clients do (url.Values, so '+' for spaces).
func query(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

func (s *server) count(t testing.TB, set, filter string) int {
	t.Helper()
	var r response
	if filter == "" {
		r = s.do(t, http.MethodGet, set+"/$count", nil)
	} else {
		r = s.do(t, http.MethodGet, set+"/$count"+query("$filter", filter), nil)
	}
	if r.status != http.StatusOK {
		t.Fatalf("count %s %q: %d %s", set, filter, r.status, r.raw)
	}
	var n int
	if err := json.Unmarshal(r.raw, &n); err != nil {
		t.Fatalf("count body %q: %v", r.raw, err)
	}
	return n
}

func refID(t testing.TB, v any) string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("not a reference: %v", v)
	}
	id, _ := m["@odata.id"].(string)
	if id == "" {
		t.Fatalf("reference without @odata.id: %v", v)
	}
	return id
}

func num(t testing.TB, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("not a number: %v", v)
	}
	f, err := n.Float64()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustTime(t testing.TB, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatalf("not a date-time: %v", v)
	}
	return tm
}
