package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/erpgraph/erpgraph/auth"
	"github.com/erpgraph/erpgraph/errcode"
	"github.com/erpgraph/erpgraph/internal/mediatype"
)

// Media types of GraphQL over HTTP.
const (
	mediaGraphQLResponse = mediatype.GraphQLResponse
	mediaJSON            = mediatype.JSON
)

// httpTransport serves GraphQL over HTTP as the GraphQL-over-HTTP specification (draft) describes it, for both
// response media types:
//   - GET (queries only: a mutation answers 405 with Allow: POST) and POST with an application/json body; other
//     methods 405, other request media types 415;
//   - the response media type by the Accept header (none, */* or application/* → application/json); 406 when
//     the client accepts neither;
//   - a body that is not a JSON object, or parameters of the wrong type, answer 400; a JSON array (batching)
//     answers 400 BATCHING_NOT_SUPPORTED: one HTTP request is one operation, so every per-request limit (rate,
//     concurrency, deadline, audit) holds per operation;
//   - request errors (parse, validation, limits, persisted queries) have no data entry; their status is 200
//     with application/json and 400 with application/graphql-response+json. Field errors are 200 with both.
//
// gqlgen's own transports differ on several of these (422 for validation errors, data: null on request
// errors, no 406/415), so the executor is driven directly.
type httpTransport struct {
	exec        *executor.Executor
	cacheMaxAge time.Duration
	maxTokens   int // bounds the parse of GET documents checked for mutations; 0 = none
}

// requestError is a response without a data entry.
type requestError struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

func (t *httpTransport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	media, ok := mediatype.Negotiate(r.Header.Values("Accept"))
	if !ok {
		t.fail(w, r, http.StatusNotAcceptable, mediaJSON, errcode.NotAcceptable,
			"the Accept header allows neither application/graphql-response+json nor application/json")
		return
	}
	var (
		params *graphql.RawParams
		msg    string
		code   = errcode.BadRequest
		status = http.StatusBadRequest
	)
	switch r.Method {
	case http.MethodGet:
		params, msg = fromURL(r.URL.RawQuery)
	case http.MethodPost:
		if ct := r.Header.Get("Content-Type"); !isJSONContent(ct) {
			status, code = http.StatusUnsupportedMediaType, errcode.UnsupportedMediaType
			msg = "POST requests must have Content-Type: application/json"
			break
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			msg = "the request body could not be read"
			break
		}
		params, code, msg = fromBody(body)
	default:
		w.Header().Set("Allow", "GET, POST")
		status, code, msg = http.StatusMethodNotAllowed, errcode.MethodNotAllowed, "use GET or POST"
	}
	if params == nil {
		t.fail(w, r, status, media, code, msg)
		return
	}
	if params.Query == "" && persistedID(params.Extensions) == "" {
		t.fail(w, r, http.StatusBadRequest, media, errcode.BadRequest, "the request has no query")
		return
	}
	if r.Method == http.MethodGet && t.mutation(params) {
		t.refuseGET(w, r, media)
		return
	}
	params.Headers = r.Header
	t.execute(w, r, media, params)
}

func (t *httpTransport) execute(w http.ResponseWriter, r *http.Request, media string, params *graphql.RawParams) {
	ctx := graphql.StartOperationTrace(r.Context())
	defer func() {
		if p := recover(); p != nil {
			err := t.exec.PresentRecoveredError(ctx, p)
			gqlErr, _ := err.(*gqlerror.Error)
			// Through the response interceptors, so the request record sees the failure too.
			resp := t.exec.DispatchError(ctx, gqlerror.List{gqlErr})
			t.write(w, http.StatusInternalServerError, media, requestError{Errors: resp.Errors, Extensions: resp.Extensions})
		}
	}()
	oc, errs := t.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		for _, e := range errs {
			codeUncoded(e)
		}
		resp := t.exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs)
		status := http.StatusOK
		if media == mediaGraphQLResponse {
			status = http.StatusBadRequest
		}
		t.write(w, status, media, requestError{Errors: resp.Errors, Extensions: resp.Extensions})
		return
	}
	if r.Method == http.MethodGet && oc.Operation.Operation != ast.Query {
		t.refuseGET(w, r, media)
		return
	}
	handler, ctx := t.exec.DispatchOperation(ctx, oc)
	resp := handler(ctx)
	if s, ok := refusedAsBusy(resp); ok {
		w.Header().Set("Retry-After", strconv.Itoa(s))
	}
	cc := ""
	if r.Method == http.MethodGet && len(resp.Errors) == 0 {
		cc = t.cacheControl(w, r)
	}
	t.writeCached(w, http.StatusOK, media, resp, cc)
}

// refusedAsBusy reports whether the whole response was refused for a while: every error is UPSTREAM_BUSY (the
// ERP.net session was too busy) or IDEMPOTENCY_UNAVAILABLE (the key store did not answer) and no root field got
// data. seconds is the longest retryAfter of the errors, for the
// Retry-After header.
func refusedAsBusy(resp *graphql.Response) (seconds int, ok bool) {
	if len(resp.Errors) == 0 {
		return 0, false
	}
	for _, e := range resp.Errors {
		if c := e.Extensions["code"]; c != errcode.UpstreamBusy && c != errcode.IdempotencyUnavailable {
			return 0, false
		}
		s, _ := e.Extensions["retryAfter"].(int)
		seconds = max(seconds, s)
	}
	var roots map[string]json.RawMessage
	if len(resp.Data) > 0 && string(resp.Data) != "null" {
		if json.Unmarshal(resp.Data, &roots) != nil {
			return 0, false
		}
		for _, v := range roots {
			if string(v) != "null" {
				return 0, false
			}
		}
	}
	return max(seconds, 1), true
}

// mutation reports whether a GET request's document selects a mutation (or subscription), which must not run
// over GET even when it would not validate: it is parsed on its own, bounded by the token limit. Documents that
// arrive by hash are checked after they are resolved (execute).
func (t *httpTransport) mutation(p *graphql.RawParams) bool {
	if !strings.Contains(p.Query, "mutation") && !strings.Contains(p.Query, "subscription") {
		return false // no such operation keyword: nothing to parse twice
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, t.maxTokens)
	if err != nil {
		return false // the executor reports the parse error
	}
	op := doc.Operations.ForName(p.OperationName)
	if op == nil && p.OperationName == "" && len(doc.Operations) > 0 {
		op = doc.Operations[0]
	}
	return op != nil && op.Operation != ast.Query
}

// refuseGET answers 405 to a mutation sent with GET: the specification forbids running it.
func (t *httpTransport) refuseGET(w http.ResponseWriter, r *http.Request, media string) {
	w.Header().Set("Allow", "POST")
	t.fail(w, r, http.StatusMethodNotAllowed, media, errcode.MethodNotAllowed, "only queries may be sent with GET; send mutations with POST")
}

// cacheControl makes a successful GET query's answer cacheable: privately (the browser, never a shared cache)
// when it was computed for a user, publicly otherwise. Everything else is no-store.
func (t *httpTransport) cacheControl(w http.ResponseWriter, r *http.Request) string {
	w.Header().Add("Vary", "Accept, Accept-Language, Authorization")
	scope := "public"
	if _, ok := auth.FromContext(r.Context()); ok {
		scope = "private"
	}
	if t.cacheMaxAge > 0 {
		return scope + ", max-age=" + strconv.Itoa(int(t.cacheMaxAge.Seconds()))
	}
	return scope + ", no-cache"
}

// codeUncoded gives every request error a code: gqlgen's automatic persisted queries report a hash mismatch and
// bad extension data without one.
func codeUncoded(e *gqlerror.Error) {
	if _, ok := e.Extensions["code"]; ok {
		return
	}
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	if strings.Contains(e.Message, "hash does not match") {
		e.Extensions["code"] = errcode.PersistedQueryHashMismatch
		e.Message = "the persisted query's sha256Hash does not match its document"
		return
	}
	e.Extensions["code"] = errcode.BadRequest
}

// fail answers a request error the transport found itself.
func (t *httpTransport) fail(w http.ResponseWriter, r *http.Request, status int, media, code, msg string) {
	e := &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}}
	resp := t.exec.DispatchError(r.Context(), gqlerror.List{e})
	t.write(w, status, media, requestError{Errors: resp.Errors, Extensions: resp.Extensions})
}

func (t *httpTransport) write(w http.ResponseWriter, status int, media string, body any) {
	t.writeCached(w, status, media, body, "")
}

// writeCached answers body with Cache-Control cc, or no-store.
func (t *httpTransport) writeCached(w http.ResponseWriter, status int, media string, body any, cc string) {
	parts, err := marshalBody(body)
	if err != nil {
		status = http.StatusInternalServerError
		parts = [][]byte{[]byte(`{"errors":[{"message":"internal error","extensions":{"code":"` + errcode.Internal + `"}}]}`)}
	}
	if cc == "" {
		cc = "no-store"
	}
	w.Header().Set("Cache-Control", cc)
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	w.WriteHeader(status)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return
		}
	}
}

// marshalBody is json.Marshal(body) in parts, written one after the other: a response's data (gqlgen's compact
// JSON, most of the answer) is written as it is instead of being copied, compacted and HTML-escaped again, when it
// has nothing to escape.
func marshalBody(body any) ([][]byte, error) {
	resp, ok := body.(*graphql.Response)
	if !ok || len(resp.Data) == 0 || resp.Label != "" || resp.Path != nil || resp.HasNext != nil || !htmlSafe(resp.Data) {
		b, err := json.Marshal(body)
		return [][]byte{b}, err
	}
	head := []byte(`{"data":`)
	if len(resp.Errors) > 0 {
		errs, err := json.Marshal(resp.Errors)
		if err != nil {
			return nil, err
		}
		head = append(append(append([]byte(`{"errors":`), errs...), ','), `"data":`...)
	}
	tail := []byte{'}'}
	if len(resp.Extensions) > 0 {
		ext, err := json.Marshal(resp.Extensions)
		if err != nil {
			return nil, err
		}
		tail = append(append([]byte(`,"extensions":`), ext...), '}')
	}
	return [][]byte{head, resp.Data, tail}, nil
}

// htmlSafe reports whether JSON text has none of the characters json.Marshal escapes in strings: <, > and &, and
// U+2028 and U+2029 (whose UTF-8 encodings start with 0xE2).
func htmlSafe(b []byte) bool {
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return false
		}
	}
	return true
}

// isJSONContent accepts application/json in UTF-8 (the charset may be omitted).
func isJSONContent(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != mediaJSON {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// fromBody reads the POST body: one JSON object with query, operationName, variables, extensions and
// documentId.
func fromBody(body []byte) (*graphql.RawParams, string, string) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errcode.BadRequest, "the request body is empty"
	}
	if trimmed[0] == '[' {
		return nil, errcode.BatchingNotSupported, "batched operations (a JSON array) are not supported: send one operation per request"
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, errcode.BadRequest, "the request body is not a JSON object"
	}
	p := &graphql.RawParams{}
	var msg string
	if msg = decodeString(fields["query"], "query", &p.Query); msg == "" {
		if msg = decodeString(fields["operationName"], "operationName", &p.OperationName); msg == "" {
			if msg = decodeMap(fields["variables"], "variables", &p.Variables); msg == "" {
				msg = decodeMap(fields["extensions"], "extensions", &p.Extensions)
			}
		}
	}
	var documentID string
	if msg == "" {
		msg = decodeString(fields["documentId"], "documentId", &documentID)
	}
	if msg == "" {
		msg = withDocumentID(p, documentID)
	}
	if msg != "" {
		return nil, errcode.BadRequest, msg
	}
	return p, "", ""
}

// withDocumentID accepts the persisted-document parameter of the GraphQL-over-HTTP draft (documentId, optionally
// "sha256:<hex>") as Apollo's persisted-query hash, so one code path serves both.
func withDocumentID(p *graphql.RawParams, id string) string {
	if id == "" {
		return ""
	}
	if persistedID(p.Extensions) != "" {
		return "send documentId or extensions.persistedQuery, not both"
	}
	if p.Extensions == nil {
		p.Extensions = map[string]any{}
	}
	p.Extensions["persistedQuery"] = map[string]any{"version": json.Number("1"), "sha256Hash": strings.TrimPrefix(id, "sha256:")}
	return ""
}

// fromURL reads GET parameters; variables and extensions are JSON-encoded.
func fromURL(rawQuery string) (*graphql.RawParams, string) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, "the URL query string is malformed"
	}
	p := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	for _, f := range []struct {
		name string
		dst  *map[string]any
	}{{"variables", &p.Variables}, {"extensions", &p.Extensions}} {
		if v := q.Get(f.name); v != "" {
			if msg := decodeMap(json.RawMessage(v), f.name, f.dst); msg != "" {
				return nil, msg
			}
		}
	}
	if msg := withDocumentID(p, q.Get("documentId")); msg != "" {
		return nil, msg
	}
	return p, ""
}

func decodeString(raw json.RawMessage, name string, dst *string) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if json.Unmarshal(raw, dst) != nil {
		return fmt.Sprintf("%s must be a string", name)
	}
	return ""
}

func decodeMap(raw json.RawMessage, name string, dst *map[string]any) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // gqlgen coerces json.Number to Int and Float exactly
	if err := dec.Decode(dst); err != nil || *dst == nil {
		return fmt.Sprintf("%s must be a JSON object", name)
	}
	return ""
}
