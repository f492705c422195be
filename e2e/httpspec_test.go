package e2e

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestGraphQLOverHTTP checks /graphql against every MUST and SHOULD of the GraphQL-over-HTTP specification
// (https://graphql.github.io/graphql-over-http/draft/) that applies to a server without subscriptions. Each case
// is named after the requirement, with the id the graphql-http audit suite gives it, so that a failure says which
// sentence of the specification broke. Requests carry Apollo-Require-Preflight so that they reach the GraphQL
// layer past the edge's CSRF prevention (tested in server/ and app/).
func TestGraphQLOverHTTP(t *testing.T) {
	e := startEdge(t, nil)
	const (
		gqlResp = "application/graphql-response+json"
		appJSON = "application/json"
		ok      = `{"query":"{ __typename }"}`
	)
	type want struct {
		status int
		media  string // response media type ("" = not checked)
		data   int    // 1: a data entry, -1: no data entry, 0: not checked
		code   string // errors[0].extensions.code ("" = not checked)
		allow  string // the Allow header
	}
	tests := []struct {
		name        string
		method      string
		accept      string // "-" = no Accept header
		contentType string // "-" = no Content-Type
		body        string // POST body
		query       url.Values
		want        want
	}{
		// Media types and content negotiation.
		{name: "22EB SHOULD accept application/graphql-response+json and match the content-type", accept: gqlResp, body: ok,
			want: want{status: 200, media: gqlResp, data: 1}},
		{name: "4655 MUST accept application/json and match the content-type", accept: appJSON, body: ok,
			want: want{status: 200, media: appJSON, data: 1}},
		{name: "47DE SHOULD accept */* and use application/json for the content-type", accept: "*/*", body: ok,
			want: want{status: 200, media: appJSON, data: 1}},
		{name: "80D8 SHOULD assume application/json content-type when accept is missing", accept: "-", body: ok,
			want: want{status: 200, media: appJSON, data: 1}},
		{name: "SHOULD prefer application/graphql-response+json by quality", accept: appJSON + ";q=0.9, " + gqlResp, body: ok,
			want: want{status: 200, media: gqlResp, data: 1}},
		{name: "SHOULD answer 406 when the Accept header allows no supported media type", accept: "text/html", body: ok,
			want: want{status: 406, media: appJSON, data: -1, code: "NOT_ACCEPTABLE"}},
		{name: "82A3 MUST use utf-8 encoding when responding", accept: appJSON + "; charset=utf-8", body: ok,
			want: want{status: 200, media: appJSON, data: 1}},
		{name: "BF61 MUST accept utf-8 encoded request", contentType: appJSON + "; charset=utf-8", body: `{"query":"{ __typename } # ünïcödé"}`,
			want: want{status: 200, data: 1}},
		{name: "78D5 MUST assume utf-8 in request if encoding is unspecified", contentType: appJSON, body: `{"query":"{ __typename } # ünïcödé"}`,
			want: want{status: 200, data: 1}},
		{name: "SHOULD answer 415 for a request media type other than application/json", contentType: "text/plain", body: ok,
			want: want{status: 415, data: -1, code: "UNSUPPORTED_MEDIA_TYPE"}},
		{name: "SHOULD answer 415 for a charset other than utf-8", contentType: appJSON + "; charset=utf-16", body: ok,
			want: want{status: 415, data: -1, code: "UNSUPPORTED_MEDIA_TYPE"}},
		{name: "9ABE SHOULD respond with 4xx status code if content-type is not supplied on POST requests", contentType: "-", body: ok,
			want: want{status: 415, data: -1}},

		// Methods.
		{name: "2C94 MUST accept POST requests", body: ok, want: want{status: 200, data: 1}},
		{name: "03D4 MUST accept application/json POST requests", contentType: appJSON, body: ok, want: want{status: 200, data: 1}},
		{name: "5A70 MAY accept application/x-www-form-urlencoded formatted GET requests", method: "GET",
			query: url.Values{"query": {"{ __typename }"}}, want: want{status: 200, data: 1}},
		{name: "GET MUST NOT be used for mutations: 405 with Allow: POST", method: "GET",
			query: url.Values{"query": {"mutation { x }"}}, want: want{status: 405, data: -1, allow: "POST", code: "METHOD_NOT_ALLOWED"}},
		{name: "GET MUST NOT be used for mutations: the selected operation counts", method: "GET",
			query: url.Values{"query": {"query Q { __typename } mutation M { x }"}, "operationName": {"M"}}, want: want{status: 405, data: -1, allow: "POST"}},
		{name: "SHOULD answer 405 with Allow for methods other than GET and POST", method: "PUT", body: ok,
			want: want{status: 405, allow: "GET, POST"}},

		// The request body and its parameters.
		{name: "7267 MUST require a request body on POST", body: "", want: want{status: 400, data: -1, code: "BAD_REQUEST"}},
		{name: "BCF8 MAY use 400 status code on JSON parsing failure", body: "{ not json", want: want{status: 400, data: -1, code: "BAD_REQUEST"}},
		{name: "8764 SHOULD use 4xx status codes on JSON parsing failure with application/graphql-response+json", accept: gqlResp, body: "{ not json",
			want: want{status: 400, media: gqlResp, data: -1}},
		{name: "SHOULD refuse a body that is not a JSON object", body: `"{ __typename }"`, want: want{status: 400, data: -1, code: "BAD_REQUEST"}},
		{name: "batching (a JSON array) is refused", body: `[` + ok + `,` + ok + `]`, want: want{status: 400, data: -1, code: "BATCHING_NOT_SUPPORTED"}},
		{name: "6610 SHOULD use 400 status code on missing {query} parameter when accepting application/graphql-response+json", accept: gqlResp, body: `{}`,
			want: want{status: 400, data: -1}},
		{name: "423L MAY use 400 status code on missing {query} parameter (application/json)", body: `{"variables":{}}`, want: want{status: 400, data: -1}},
		{name: "4F50 SHOULD use 400 status code on object {query} parameter", accept: gqlResp, body: `{"query":{"obj":1}}`, want: want{status: 400, data: -1}},
		{name: "4F51 SHOULD use 400 status code on number {query} parameter", accept: gqlResp, body: `{"query":0}`, want: want{status: 400, data: -1}},
		{name: "4F52 SHOULD use 400 status code on boolean {query} parameter", accept: gqlResp, body: `{"query":false}`, want: want{status: 400, data: -1}},
		{name: "4F53 SHOULD use 400 status code on array {query} parameter", accept: gqlResp, body: `{"query":["{ __typename }"]}`, want: want{status: 400, data: -1}},
		{name: "34A2 SHOULD allow string {query} parameter when accepting application/graphql-response+json", accept: gqlResp, body: ok, want: want{status: 200, data: 1}},
		{name: "13EE MUST allow string {query} parameter when accepting application/json", accept: appJSON, body: ok, want: want{status: 200, data: 1}},
		{name: "E3E0 SHOULD use 400 status code on object {operationName} parameter", accept: gqlResp, body: `{"query":"{ __typename }","operationName":{}}`, want: want{status: 400, data: -1}},
		{name: "E3E1 SHOULD use 400 status code on number {operationName} parameter", accept: gqlResp, body: `{"query":"{ __typename }","operationName":1}`, want: want{status: 400, data: -1}},
		{name: "E3E2 SHOULD use 400 status code on boolean {operationName} parameter", accept: gqlResp, body: `{"query":"{ __typename }","operationName":true}`, want: want{status: 400, data: -1}},
		{name: "E3E3 SHOULD use 400 status code on array {operationName} parameter", accept: gqlResp, body: `{"query":"{ __typename }","operationName":[]}`, want: want{status: 400, data: -1}},
		{name: "8161 SHOULD allow string {operationName} parameter when accepting application/graphql-response+json", accept: gqlResp,
			body: `{"query":"query A { __typename } query B { __typename }","operationName":"B"}`, want: want{status: 200, data: 1}},
		{name: "B8B3 MUST allow string {operationName} parameter when accepting application/json", accept: appJSON,
			body: `{"query":"query A { __typename } query B { __typename }","operationName":"B"}`, want: want{status: 200, data: 1}},
		{name: "94B0/0220 MUST allow null {variables} parameter", body: `{"query":"{ __typename }","variables":null}`, want: want{status: 200, data: 1}},
		{name: "94B1/0221 MUST allow null {operationName} parameter", body: `{"query":"{ __typename }","operationName":null}`, want: want{status: 200, data: 1}},
		{name: "94B2/0222 MUST allow null {extensions} parameter", body: `{"query":"{ __typename }","extensions":null}`, want: want{status: 200, data: 1}},
		{name: "2EA1/28B9 MUST allow map {variables} parameter", body: `{"query":"query ($s: Boolean!) { __typename @skip(if: $s) }","variables":{"s":false}}`, want: want{status: 200, data: 1}},
		{name: "28B9 MUST allow map {variables} parameter over GET (URL-encoded JSON)", method: "GET",
			query: url.Values{"query": {"query ($s: Boolean!) { __typename @skip(if: $s) }"}, "variables": {`{"s":false}`}}, want: want{status: 200, data: 1}},
		{name: "428F/1B7A MUST allow map {extensions} parameter", body: `{"query":"{ __typename }","extensions":{"some":"value"}}`, want: want{status: 200, data: 1}},
		{name: "58B1 SHOULD use 400 status code on string {variables} parameter", accept: gqlResp, body: `{"query":"{ __typename }","variables":"text"}`, want: want{status: 400, data: -1}},
		{name: "58B2 SHOULD use 400 status code on number {variables} parameter", accept: gqlResp, body: `{"query":"{ __typename }","variables":0}`, want: want{status: 400, data: -1}},
		{name: "58B3 SHOULD use 400 status code on boolean {variables} parameter", accept: gqlResp, body: `{"query":"{ __typename }","variables":false}`, want: want{status: 400, data: -1}},
		{name: "58B4 SHOULD use 400 status code on array {variables} parameter", accept: gqlResp, body: `{"query":"{ __typename }","variables":[]}`, want: want{status: 400, data: -1}},
		{name: "FB90 SHOULD use 400 status code on string {extensions} parameter", accept: gqlResp, body: `{"query":"{ __typename }","extensions":"text"}`, want: want{status: 400, data: -1}},
		{name: "FB91 SHOULD use 400 status code on number {extensions} parameter", accept: gqlResp, body: `{"query":"{ __typename }","extensions":0}`, want: want{status: 400, data: -1}},
		{name: "FB92 SHOULD use 400 status code on boolean {extensions} parameter", accept: gqlResp, body: `{"query":"{ __typename }","extensions":false}`, want: want{status: 400, data: -1}},
		{name: "FB93 SHOULD use 400 status code on array {extensions} parameter", accept: gqlResp, body: `{"query":"{ __typename }","extensions":[]}`, want: want{status: 400, data: -1}},
		{name: "SHOULD use 400 on malformed JSON in the GET variables parameter", method: "GET",
			query: url.Values{"query": {"{ __typename }"}, "variables": {"{not json"}}, want: want{status: 400, data: -1}},

		// Status codes and the data entry by media type.
		{name: "572B SHOULD use 200 status code on document parsing failure when accepting application/json", accept: appJSON, body: `{"query":"{"}`,
			want: want{status: 200, media: appJSON, data: -1, code: "GRAPHQL_PARSE_FAILED"}},
		{name: "FDE2 SHOULD use 200 status code on document validation failure when accepting application/json", accept: appJSON, body: `{"query":"{ notAField }"}`,
			want: want{status: 200, media: appJSON, data: -1, code: "GRAPHQL_VALIDATION_FAILED"}},
		{name: "7B9B SHOULD use 200 status code on variable coercion failure when accepting application/json", accept: appJSON,
			body: `{"query":"query ($n: Int!) { salesOrders(first: $n) { totalCount } }","variables":{"n":"x"}}`, want: want{status: 200, data: -1}},
		{name: "865D/556A SHOULD use 400 status code on document parsing failure when accepting application/graphql-response+json", accept: gqlResp, body: `{"query":"{"}`,
			want: want{status: 400, media: gqlResp, code: "GRAPHQL_PARSE_FAILED"}},
		{name: "D586 SHOULD not contain the data entry on document parse failure when accepting application/graphql-response+json", accept: gqlResp, body: `{"query":"{"}`,
			want: want{status: 400, data: -1}},
		{name: "51FE/74FF SHOULD use 400 status code on document validation failure when accepting application/graphql-response+json", accept: gqlResp, body: `{"query":"{ notAField }"}`,
			want: want{status: 400, media: gqlResp, code: "GRAPHQL_VALIDATION_FAILED"}},
		{name: "5E5B SHOULD not contain the data entry on document validation failure when accepting application/graphql-response+json", accept: gqlResp, body: `{"query":"{ notAField }"}`,
			want: want{status: 400, data: -1}},
		{name: "86EE/9FE0 SHOULD use 400 status code on variable coercion failure when accepting application/graphql-response+json", accept: gqlResp,
			body: `{"query":"query ($n: Int!) { salesOrders(first: $n) { totalCount } }","variables":{"n":"x"}}`, want: want{status: 400, data: -1}},
		{name: "SHOULD use 400 when the operation named by operationName is missing (application/graphql-response+json)", accept: gqlResp,
			body: `{"query":"query A { __typename }","operationName":"B"}`, want: want{status: 400, data: -1}},
		{name: "SHOULD use 2xx when data is present, even null with field errors (application/graphql-response+json)", accept: gqlResp,
			body: `{"query":"{ me { login } }"}`, want: want{status: 200, media: gqlResp, data: 1, code: "UNAUTHENTICATED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			target := e.url
			if tt.query != nil {
				target += "?" + tt.query.Encode()
			}
			var body *strings.Reader
			if method != http.MethodGet {
				body = strings.NewReader(tt.body)
			} else {
				body = strings.NewReader("")
			}
			req, err := http.NewRequest(method, target, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Apollo-Require-Preflight", "true")
			switch tt.accept {
			case "-":
			case "":
				req.Header.Set("Accept", appJSON)
			default:
				req.Header.Set("Accept", tt.accept)
			}
			switch {
			case tt.contentType == "-" || method == http.MethodGet:
			case tt.contentType == "":
				req.Header.Set("Content-Type", appJSON)
			default:
				req.Header.Set("Content-Type", tt.contentType)
			}
			r := e.do(t, req, true)
			if r.status != tt.want.status {
				t.Errorf("status %d, want %d (%v)", r.status, tt.want.status, r)
			}
			if r.status < 500 && r.status != http.StatusMethodNotAllowed || tt.want.media != "" {
				mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
				switch {
				case err != nil:
					t.Errorf("Content-Type %q: %v", r.header.Get("Content-Type"), err)
				case tt.want.media != "" && mt != tt.want.media:
					t.Errorf("media type %q, want %q", mt, tt.want.media)
				case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
					t.Errorf("charset %q, want utf-8", params["charset"])
				}
				if r.body == nil {
					t.Errorf("the body is not a JSON object: %v", r)
				}
			}
			if _, has := r.body["data"]; tt.want.data == 1 && !has || tt.want.data == -1 && has {
				t.Errorf("data entry present = %v, want %v (%v)", has, tt.want.data == 1, r)
			}
			if tt.want.code != "" && r.code() != tt.want.code {
				t.Errorf("code %q, want %q (%v)", r.code(), tt.want.code, r)
			}
			if tt.want.allow != "" && r.header.Get("Allow") != tt.want.allow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), tt.want.allow)
			}
		})
	}
}
