package server_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/erpgraph/erpgraph/access"
	"github.com/erpgraph/erpgraph/erpclient"
	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph"
	"github.com/erpgraph/erpgraph/graph/model"
	"github.com/erpgraph/erpgraph/server"
)

// The request record of a GraphQL request behind the real GraphQL handler:
// RecordExtension fills in the operation and its errors from what the
// executor decoded and answered, the handler's ERP.net requests are counted
// into it (erpclient.CountUpstream), and the request ID reaches graph from it.
func TestServer_Record(t *testing.T) {
	var (
		mu   sync.Mutex
		last *server.Record
		gql  http.Handler
	)
	e := newEnv(t, func(c *server.Config) {
		c.GraphQL = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := server.RecordOf(r.Context())
			ctx := erpclient.CountUpstream(erpclient.WithCaller(r.Context(), rec.UserKey), &rec.Upstream)
			gql.ServeHTTP(w, r.WithContext(ctx))
			mu.Lock()
			last = rec
			mu.Unlock()
		})
	})
	erp, err := erpclient.New(t.Context(), erpclient.Config{InstanceURL: e.sim.URL(), ClientID: fixture.BFFClientID,
		ClientSecret: fixture.BFFSecret, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(erp.Close)
	gql = graph.NewHandler(graph.Config{ERP: erp, Access: access.NewResolver(erp, access.Config{}),
		RequestID: server.RequestID, Extensions: []graphql.HandlerExtension{server.RecordExtension{}}})
	anna := e.token(t, fixture.OwnerLogin)
	foreign := model.EncodeID("Customer", fixture.CustomerID(2)) // boris's customer: NOT_FOUND for anna

	tests := []struct {
		name, query, opName string
		vars                map[string]any
		want                server.Operation
		outcome             string
	}{
		{"data", `query Mine($n: Int) { me { login } customers(first: $n) { totalCount } }`, "", map[string]any{"n": 1},
			server.Operation{Name: "Mine", Type: "query", Variables: []string{"n"}, Valid: true}, "OK"},
		{"field error", `query A { x: node(id: "` + foreign + `") { id } } query B { me { login } }`, "A", nil,
			server.Operation{Name: "A", Type: "query", Valid: true, Errors: []server.OperationError{{Code: "NOT_FOUND", Path: "x"}}},
			"NOT_FOUND"},
		{"parse error", `query Broken {`, "", nil,
			server.Operation{Name: "Broken", Type: "query", Errors: []server.OperationError{{Code: "GRAPHQL_PARSE_FAILED"}}},
			"GRAPHQL_PARSE_FAILED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"query": tt.query, "variables": tt.vars}
			if tt.opName != "" {
				body["operationName"] = tt.opName
			}
			h := http.Header{"Authorization": {"Bearer " + anna}, "Content-Type": {"application/json"}}
			before := e.sim.Stats().DomainRequests
			res := e.postJSON(t, h, body)
			sent := e.sim.Stats().DomainRequests - before
			mu.Lock()
			rec := last
			mu.Unlock()
			if rec == nil || rec.GraphQL == nil {
				t.Fatal("no record of the operation")
			}
			if rec.RequestID != res.Header.Get("X-Request-ID") || rec.Status != res.StatusCode || rec.UserKey == "" {
				t.Errorf("record: id %q status %d user %q; answer: id %q status %d",
					rec.RequestID, rec.Status, rec.UserKey, res.Header.Get("X-Request-ID"), res.StatusCode)
			}
			got := *rec.GraphQL
			sum := sha256.Sum256([]byte(tt.query))
			if got.Hash != hex.EncodeToString(sum[:]) {
				t.Errorf("hash %s, want the document's sha256", got.Hash)
			}
			got.Hash = ""
			if g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", tt.want); g != w {
				t.Errorf("operation\n got %s\nwant %s", g, w)
			}
			if rec.Outcome != tt.outcome {
				t.Errorf("outcome %q, want %q", rec.Outcome, tt.outcome)
			}
			if n := rec.Upstream.Load(); n != int64(sent) {
				t.Errorf("upstream requests %d, erpsim saw %d", n, sent)
			}
		})
	}
}

// postJSON posts body as JSON to /graphql with header.
func (e *env) postJSON(t *testing.T, header http.Header, body any) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, e.http.URL+"/graphql", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}
