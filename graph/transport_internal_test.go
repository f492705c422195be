package graph

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestMarshalBody checks that the answer written in parts is byte for byte what json.Marshal writes.
func TestMarshalBody(t *testing.T) {
	yes := true
	errs := gqlerror.List{{Message: "no <b>such</b> order", Path: ast.Path{ast.PathName("node")},
		Extensions: map[string]any{"code": "NOT_FOUND"}}}
	ext := map[string]any{"dataAge": map[string]any{"maxAgeSeconds": 3}}
	tests := []struct {
		name string
		body any
	}{
		{"data", &graphql.Response{Data: json.RawMessage(`{"me":{"login":"anna"}}`)}},
		{"errors and extensions", &graphql.Response{Data: json.RawMessage(`{"node":null}`), Errors: errs, Extensions: ext}},
		{"data to escape", &graphql.Response{Data: json.RawMessage(`{"name":"Tom & Jerry <b>"}`)}},
		{"line separator", &graphql.Response{Data: json.RawMessage("{\"name\":\"a\u2028b\u2029\"}")}},
		{"no data", &graphql.Response{Errors: errs}},
		{"incremental", &graphql.Response{Data: json.RawMessage(`{"a":1}`), HasNext: &yes, Label: "l"}},
		{"request error", requestError{Errors: errs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := marshalBody(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(tt.body)
			if got := bytes.Join(parts, nil); !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}
