package erpclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"
)

// Page is one page of a collection.
type Page[T any] struct {
	Items []T
	Count *int    // @odata.count when Query.Count was set
	Next  *Cursor // nil on the last page
}

// List reads one page of q.Set.
func List[T any](ctx context.Context, c *Client, q Query) (Page[T], error) {
	op := "list " + q.Set
	v, err := q.Build()
	if err != nil {
		return Page[T]{}, fmt.Errorf("erpclient: %s: %w", op, err)
	}
	res, err := c.send(ctx, pageRequest[T](c, q.Set, encodeQuery(v), op))
	if err != nil {
		return Page[T]{}, err
	}
	return ownPage[T](res), nil
}

// pageRequest is the GET of one page of set, decoded once into a Page[T]
// for every caller that shares it.
func pageRequest[T any](c *Client, set, query, op string) *request {
	return &request{method: http.MethodGet, path: set, query: query, op: op, read: true,
		kind: reflect.TypeFor[T]().String(),
		decode: func(body []byte) (any, error) {
			p, err := decodePage[T](c, set, body)
			return p, err
		}}
}

// ownPage gives a caller its own copy of a decoded page that other callers
// of the same GET may hold too: the items slice and the pointers are the
// caller's; the entities' maps and references are shared and read-only.
func ownPage[T any](res *response) Page[T] {
	p := res.val.(Page[T])
	p.Items = slices.Clone(p.Items)
	if p.Count != nil {
		n := *p.Count
		p.Count = &n
	}
	if p.Next != nil {
		cur := *p.Next
		p.Next = &cur
	}
	return p
}

// maxAllPages bounds All: a runaway paging loop must end.
const maxAllPages = 1000

// All reads every page of q (from q.Cursor, if set). Without q.Top ERP.net
// answers everything at once; with it, pages of q.Top are followed to the end.
func All[T any](ctx context.Context, c *Client, q Query) ([]T, error) {
	var out []T
	for pages := 0; ; pages++ {
		if pages == maxAllPages {
			return nil, fmt.Errorf("erpclient: list %s: %w: more than %d pages", q.Set, ErrInvalidQuery, maxAllPages)
		}
		p, err := List[T](ctx, c, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.Next == nil {
			return out, nil
		}
		if q.Cursor != nil && *q.Cursor == *p.Next {
			return nil, unavailable("list "+q.Set, fmt.Errorf("paging does not advance"))
		}
		q.Cursor, q.Count = p.Next, false
	}
}

// Get reads the entity with id, within q's filter and scope (a scoped Get of
// someone else's entity is ErrNotFound, like a missing one).
func Get[T any](ctx context.Context, c *Client, q Query, id string) (T, error) {
	var zero T
	g, err := canonicalGUID(id)
	if err != nil {
		return zero, fmt.Errorf("erpclient: get %s: %w", q.Set, err)
	}
	q.Filter = andNonNil(q.Filter, Eq("Id", GUID(g)))
	q.Top, q.Cursor, q.Count = 0, nil, false
	p, err := List[T](ctx, c, q)
	if err != nil {
		return zero, err
	}
	if len(p.Items) == 0 {
		return zero, fmt.Errorf("erpclient: get %s(%s): %w", q.Set, g, ErrNotFound)
	}
	return p.Items[0], nil
}

// maxQueryBytes keeps URLs well under common proxy and server limits (IIS
// defaults to 2048 for the query string).
const maxQueryBytes = 1800

// ByIDs reads the entities with the given ids within q's filter and scope,
// in any order; missing ids are simply absent. Long id lists are split into
// `Id in (...)` chunks that keep the URL short; the chunks are queued
// together, so the scheduler sends them in one $batch (up to MaxBatchParts).
func ByIDs[T any](ctx context.Context, c *Client, q Query, ids []string) ([]T, error) {
	uniq := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		g, err := canonicalGUID(id)
		if err != nil {
			return nil, fmt.Errorf("erpclient: list %s by ids: %w", q.Set, err)
		}
		if !seen[g] {
			seen[g] = true
			uniq = append(uniq, g)
		}
	}
	if len(uniq) == 0 {
		return nil, nil
	}
	sort.Strings(uniq) // same ids, same URLs: identical requests coalesce
	q.Top, q.Cursor, q.Count = 0, nil, false
	base, err := q.Build()
	if err != nil {
		return nil, fmt.Errorf("erpclient: list %s by ids: %w", q.Set, err)
	}
	// each id costs 36 characters plus a comma; " and Id in ()" with escaping ~30
	room := maxQueryBytes - len(encodeQuery(base)) - 40
	per := min(max(room/37, 1), maxInValues)
	var chunks [][]string
	for len(uniq) > 0 {
		n := min(per, len(uniq))
		chunks = append(chunks, uniq[:n])
		uniq = uniq[n:]
	}
	// all chunks are queued at once, so the scheduler sends them in one $batch
	op := "list " + q.Set + " by ids"
	reqs := make([]*request, len(chunks))
	queries := make([]Query, len(chunks))
	for i, chunk := range chunks {
		vs := make([]Value, len(chunk))
		for j, id := range chunk {
			vs[j] = GUID(id)
		}
		queries[i] = q
		queries[i].Filter = andNonNil(q.Filter, In("Id", vs...))
		v, err := queries[i].Build()
		if err != nil {
			return nil, fmt.Errorf("erpclient: %s: %w", op, err)
		}
		reqs[i] = pageRequest[T](c, q.Set, encodeQuery(v), op)
	}
	res, errs := c.sendAll(ctx, reqs...)
	var out []T
	for i := range reqs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		p := ownPage[T](res[i])
		out = append(out, p.Items...)
		if p.Next != nil { // ERP.net pages only with $top; follow a server that pages anyway
			cq := queries[i]
			cq.Cursor = p.Next
			rest, err := All[T](ctx, c, cq)
			if err != nil {
				return nil, err
			}
			out = append(out, rest...)
		}
	}
	return out, nil
}

// Count returns the number of entities matching q's filter and scope
// (GET Set/$count?$filter=…).
func Count(ctx context.Context, c *Client, q Query) (int, error) {
	op := "count " + q.Set
	cq := Query{Set: q.Set, Filter: q.Filter, Scope: q.Scope, Unscoped: q.Unscoped}
	v, err := cq.Build()
	if err != nil {
		return 0, fmt.Errorf("erpclient: %s: %w", op, err)
	}
	res, err := c.send(ctx, &request{method: http.MethodGet, path: q.Set + "/$count", query: encodeQuery(v), op: op, read: true,
		kind: "count", decode: func(body []byte) (any, error) {
			s := strings.TrimSpace(strings.TrimPrefix(string(body), "\ufeff"))
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("%w: count is not a number", ErrUnavailable)
			}
			return n, nil
		}})
	if err != nil {
		return 0, err
	}
	return res.val.(int), nil
}

func andNonNil(a, b Filter) Filter {
	if a == nil {
		return b
	}
	return And(a, b)
}

// --- decoding ---

type collection[T any] struct {
	Value    *[]T   `json:"value"`
	Count    *int   `json:"@odata.count"`
	NextLink string `json:"@odata.nextLink"`
}

// decodePage decodes a collection answer; its errors are ErrUnavailable
// (an answer that is not OData), without the operation, which the caller adds.
// Pages are decoded with goccy/go-json, a drop-in for encoding/json (same
// tags, unmarshalers and embedding rules) that decodes them 3-4 times faster:
// decoding was the largest part of erpgraph's CPU per operation.
func decodePage[T any](c *Client, set string, body []byte) (Page[T], error) {
	var env collection[T]
	if err := gojson.Unmarshal(body, &env); err != nil {
		return Page[T]{}, fmt.Errorf("%w: decode answer: %w", ErrUnavailable, err)
	}
	if env.Value == nil {
		return Page[T]{}, fmt.Errorf("%w: answer has no value array", ErrUnavailable)
	}
	items := *env.Value
	for i := range items {
		afterDecode(&items[i])
	}
	p := Page[T]{Items: items, Count: env.Count}
	if env.NextLink != "" {
		cur, err := c.parseNextLink(set, env.NextLink)
		if err != nil {
			return Page[T]{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		p.Next = cur
	}
	return p, nil
}

// decodeEntity decodes one entity body (create answers).
func decodeEntity[T any](op string, body []byte) (T, error) {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return v, unavailable(op, fmt.Errorf("decode answer: %w", err))
	}
	afterDecode(&v)
	return v, nil
}

// afterDecoder is implemented by entities with expanded children.
type afterDecoder interface{ afterDecode() }

// afterDecode fills IDs from @odata.id where Id was not selected.
func afterDecode(v any) {
	if e, ok := v.(hasEntity); ok {
		e.entity().fillID()
	}
	if a, ok := v.(afterDecoder); ok {
		a.afterDecode()
	}
}

func (o *SalesOrder) afterDecode() {
	for i := range o.Lines {
		o.Lines[i].fillID()
	}
}

func (o *Invoice) afterDecode() {
	for i := range o.Lines {
		o.Lines[i].fillID()
	}
}

func (o *Shipment) afterDecode() {
	for i := range o.Lines {
		o.Lines[i].fillID()
	}
}

// parseNextLink turns @odata.nextLink into a Cursor. The link is never
// followed as is: it must point at the configured service root and the same
// set, and only $skip/$skiptoken are taken from it (validated); the next
// request is rebuilt from the caller's own query.
func (c *Client) parseNextLink(set, link string) (*Cursor, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("nextLink is not a URL")
	}
	u = c.root.ResolveReference(u)
	if !strings.EqualFold(u.Scheme, c.root.Scheme) || !strings.EqualFold(u.Host, c.root.Host) {
		return nil, fmt.Errorf("nextLink points to another host")
	}
	if u.Path != c.root.Path+set {
		return nil, fmt.Errorf("nextLink points to another resource")
	}
	v := u.Query()
	var cur Cursor
	if s := v.Get("$skip"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("nextLink $skip is not a number")
		}
		cur.Skip = n
	}
	cur.SkipToken = v.Get("$skiptoken")
	if err := cur.validate(); err != nil {
		return nil, fmt.Errorf("nextLink: %w", err)
	}
	return &cur, nil
}

// Encode renders the cursor as an opaque, URL-safe string (for GraphQL cursors).
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(c.Skip) + "|" + c.SkipToken))
}

// DecodeCursor parses a string from Cursor.Encode; anything else is ErrInvalidQuery.
func DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(s) > 400 {
		return nil, invalid("malformed cursor")
	}
	skip, token, ok := strings.Cut(string(b), "|")
	if !ok {
		return nil, invalid("malformed cursor")
	}
	n, err := strconv.Atoi(skip)
	if err != nil {
		return nil, invalid("malformed cursor")
	}
	c := &Cursor{Skip: n, SkipToken: token}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// encodeQuery writes OData query options. Keys are fixed names ($filter…)
// and are written as is; values are percent-encoded except the characters
// OData syntax uses and URLs allow (quotes, parentheses, commas, slashes...).
// ";" is encoded: Go servers (and some proxies) treat a raw one as a separator.
func encodeQuery(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escapeQueryPart(k))
			b.WriteByte('=')
			b.WriteString(escapeQueryPart(val))
		}
	}
	return b.String()
}

func escapeQueryPart(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			strings.IndexByte("-._~'()*,/:$@!", ch) >= 0:
			b.WriteByte(ch)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[ch>>4])
			b.WriteByte(hex[ch&15])
		}
	}
	return b.String()
}
