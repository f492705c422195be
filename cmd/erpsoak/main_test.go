package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/erpgraph/erpgraph/erpsim/fixture"
	"github.com/erpgraph/erpgraph/graph/model"
)

// A short run under faults erpgraph must turn into typed errors: the whole
// harness (erpsim, erpgraph, sign-ins, the oracle, the users, the report) runs
// and every invariant holds.
func TestSoak_Short(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-users", "6", "-duration", "3s", "-every", "1s", "-sample", "250ms",
		"-think", "20ms", "-fault-5xx", "0.05", "-status-5xx", "502", "-fault-429", "0.05", "-fault-503", "0.02", "-fault-drop", "0.02", "-fault-slow", "0.05",
		"-slow-delay", "50ms"}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"ops/s", "summary after", "latency:", "upstream:", "memory:", "goroutines:", "invariants:   ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestParse_Errors(t *testing.T) {
	_, err := parse([]string{"-users", "0", "-duration", "3h", "-fault-5xx", "1.5", "-scale", "0"})
	for _, want := range []string{"-users", "-duration", "-fault-5xx", "-scale"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse error %v does not mention %s", err, want)
		}
	}
}

// The checks catch what they are for: untyped errors, another user's
// documents, and INTERNAL_SERVER_ERROR fail the run.
func TestJudge_Violations(t *testing.T) {
	order := func(n int) string { return fixture.ID("Crm_Sales_SalesOrders", n) }
	o := &owners{
		docCustomer: map[string]string{order(1): fixture.CustomerID(1), order(2): fixture.CustomerID(2)},
		docParty:    map[string]string{},
		customers:   map[string]map[string]bool{fixture.OwnerLogin: {fixture.CustomerID(1): true}},
		parties:     map[string]map[string]bool{},
	}
	data := func(n int) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"salesOrders": map[string]any{"nodes": []any{
			map[string]any{"id": model.EncodeID("SalesOrder", order(n)), "customer": map[string]any{"id": model.EncodeID("Customer", fixture.CustomerID(1))}}}}})
		return b
	}
	tests := []struct {
		name                    string
		resp                    *gqlResponse
		untyped, wrong, dataOut bool
	}{
		{"own order", &gqlResponse{Data: data(1)}, false, false, true},
		{"another customer's order", &gqlResponse{Data: data(2)}, false, true, true},
		{"error without code", &gqlResponse{Errors: []gqlError{{Message: "boom"}}}, true, false, false},
		{"undocumented code", &gqlResponse{Errors: []gqlError{{Message: "x", Extensions: map[string]any{"code": "OOPS"}}}}, true, false, false},
		{"typed error", &gqlResponse{Errors: []gqlError{{Message: "x", Extensions: map[string]any{"code": "UPSTREAM_UNAVAILABLE"}}}}, false, false, false},
		{"neither data nor errors", &gqlResponse{Data: json.RawMessage("null")}, true, false, false},
		{"not GraphQL", nil, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := o.judge(fixture.OwnerLogin, tt.resp, 200, nil)
			if (len(v.untyped) > 0) != tt.untyped || (len(v.wrongUser) > 0) != tt.wrong || v.dataServed != tt.dataOut {
				t.Errorf("verdict %+v", v)
			}
		})
	}

	base := func() *result {
		return &result{ops: 10, okOps: 10, elapsed: 2 * time.Second, codes: map[string]int{}}
	}
	if err := judge(options{users: 1}, base(), &bytes.Buffer{}); err != nil {
		t.Errorf("clean run judged failed: %v", err)
	}
	for name, edit := range map[string]func(*result){
		"internal": func(r *result) { r.codes["INTERNAL_SERVER_ERROR"] = 1 },
		"panic":    func(r *result) { r.panics = 1 },
		"untyped":  func(r *result) { r.untypedN = 1 },
		"wrong":    func(r *result) { r.wrongUserN = 1 },
		"no data":  func(r *result) { r.okOps, r.failedOps = 0, 10 },
		"goroutines grow": func(r *result) {
			r.elapsed = 2 * flatAfter
			for i := range 30 {
				r.samples = append(r.samples, sample{rss: 50 << 20, goroutines: 100 + i*100})
			}
		},
	} {
		r := base()
		edit(r)
		if err := judge(options{users: 1}, r, &bytes.Buffer{}); !errors.Is(err, errInvariants) {
			t.Errorf("%s: judge = %v, want errInvariants", name, err)
		}
	}
}
