package odata

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// handler serves the Domain API of one Store.
type handler struct {
	s    *Store
	opts Options
}

// NewHandler returns the Domain API handler for s. Paths are relative to the
// service root: "/Crm_Sales_SalesOrders", "/Crm_Sales_SalesOrders(<guid>)",
// "/Crm_Sales_SalesOrders/$count", "/Crm_Sales_SalesOrders(<guid>)/ChangeState",
// "/$batch", "/$metadata", "/GetVersion", "/GetRenamedEntityTypes".
// The caller's Principal comes from the request context (NewContext).
func NewHandler(s *Store, opts Options) http.Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &handler{s: s, opts: opts}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		// A bug must cost one request an envelope, not the emulator its process.
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			writeErr(w, fmt.Errorf("odata: panic: %v", p))
		}
	}()
	w.Header().Set("OData-Version", odataVersion)
	if err := h.serve(w, r); err != nil {
		writeErr(w, err)
	}
}

// root is the absolute service root; without Options.ServiceRoot it is
// derived from the request so links stay absolute.
func (h *handler) root(r *http.Request) string {
	if h.opts.ServiceRoot != "" {
		return h.opts.ServiceRoot
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/api/domain/odata/"
}

// resource is a parsed request path.
type resource struct {
	set    *entitySet
	key    *uuid.UUID
	action string // "", "$count", "ChangeState", "MakeVoid"
}

func (h *handler) resolve(p string) (resource, error) {
	seg, rest, _ := strings.Cut(p, "/")
	name, keyText, hasKey := seg, "", false
	if i := strings.IndexByte(seg, '('); i >= 0 {
		if !strings.HasSuffix(seg, ")") {
			return resource{}, notFound("Resource not found for the segment '%s'.", seg)
		}
		name, keyText, hasKey = seg[:i], strings.Trim(seg[i+1:len(seg)-1], "'"), true
	}
	set := h.s.sets[name]
	if set == nil {
		if to, ok := renamedSets[name]; ok {
			return resource{}, notFound("The entity type '%s' was renamed to '%s'.", name, to)
		}
		return resource{}, notFound("The entity set '%s' is not found.", name)
	}
	res := resource{set: set, action: rest}
	if hasKey {
		id, err := uuid.Parse(keyText)
		if err != nil || len(keyText) != 36 {
			return resource{}, notFound("'%s' is not a valid key of '%s'.", keyText, name)
		}
		res.key = &id
	}
	switch {
	case rest == "", res.key == nil && rest == "$count", res.key != nil && (rest == "ChangeState" || rest == "MakeVoid"):
		return res, nil
	}
	return resource{}, notFound("Resource not found for the segment '%s'.", rest)
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) error {
	p := strings.TrimPrefix(r.URL.Path, "/")
	switch p {
	case "":
		return h.get(r, func() error { return h.serviceDocument(w, r) })
	case "$metadata":
		return h.get(r, func() error { return h.metadata(w) })
	case "$batch":
		if r.Method != http.MethodPost {
			return methodNotAllowed(r.Method, p)
		}
		return h.batch(w, r)
	case "GetVersion":
		return h.get(r, func() error { writeJSON(w, http.StatusOK, []byte(`{"version":"`+Version+`"}`)); return nil })
	case "GetRenamedEntityTypes":
		return h.get(r, func() error { return h.renamed(w, r) })
	}
	res, err := h.resolve(p)
	if err != nil {
		return err
	}
	switch {
	case r.Method == http.MethodGet && res.action == "$count":
		return h.count(w, r, res.set)
	case r.Method == http.MethodGet && res.key == nil:
		return h.list(w, r, res.set)
	case r.Method == http.MethodGet && res.action == "":
		return h.one(w, r, res.set, *res.key)
	case r.Method == http.MethodPost || r.Method == http.MethodPatch || r.Method == http.MethodDelete || r.Method == http.MethodPut:
		return h.writeOne(w, r)
	}
	return methodNotAllowed(r.Method, p)
}

func methodNotAllowed(method, p string) error {
	return errorf(http.StatusMethodNotAllowed, codeMethod, typeMethod, "The method %s is not allowed on '%s'.", method, p)
}

func (h *handler) get(r *http.Request, f func() error) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(r.Method, strings.TrimPrefix(r.URL.Path, "/"))
	}
	return f()
}

// Version is what GetVersion reports: the ERP.net version erpsim emulates.
const Version = "26.2.0.0"

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("OData-Version", odataVersion)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// read parses the query options of r and runs f under the read lock, so a
// response is built from one consistent state.
func (h *handler) read(r *http.Request, set *entitySet, f func(q *query, params []param) error) error {
	params, err := parseParams(r.URL.RawQuery)
	if err != nil {
		return err
	}
	h.s.mu.RLock()
	defer h.s.mu.RUnlock()
	q, err := h.s.parseQuery(set, params)
	if err != nil {
		return err
	}
	return f(q, params)
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, set *entitySet) error {
	return h.read(r, set, func(q *query, params []param) error {
		pg := q.execute(nil)
		root := h.root(r)
		enc := encoder{b: make([]byte, 0, 512+len(pg.rows)*512), skipNulls: q.skipNulls}
		enc.b = append(enc.b, `{"@odata.context":`...)
		enc.b = appendString(enc.b, root+"$metadata#"+set.name)
		if q.count {
			enc.b = append(enc.b, `,"@odata.count":`...)
			enc.b = strconv.AppendInt(enc.b, int64(pg.total), 10)
		}
		if pg.more && q.top > 0 { // $top=0 asks only for the count; there is no position to continue from
			enc.b = append(enc.b, `,"@odata.nextLink":`...)
			enc.b = appendString(enc.b, nextLink(root, set, q, params, pg))
		}
		enc.b = append(enc.b, `,"value":[`...)
		for i, e := range pg.rows {
			if i > 0 {
				enc.b = append(enc.b, ',')
			}
			enc.entity(e, set, q, false)
		}
		enc.b = append(enc.b, "]}"...)
		writeJSON(w, http.StatusOK, enc.b)
		return nil
	})
}

// nextLink repeats the caller's options and continues after this page:
// keyset ($skiptoken = last Id) for tables in Id order, $skip for views and
// $orderby, as ERP.net documents.
func nextLink(root string, set *entitySet, q *query, params []param, pg page) string {
	var b strings.Builder
	b.WriteString(root)
	b.WriteString(set.name)
	b.WriteByte('?')
	for _, p := range params {
		if p.key == "$skiptoken" || p.key == "$skip" {
			continue
		}
		b.WriteString(p.raw)
		b.WriteByte('&')
	}
	if len(q.orderBy) == 0 && !set.view {
		b.WriteString("$skiptoken=")
		b.WriteString(pg.rows[len(pg.rows)-1].id.String()) // the token marks the position; $skip was consumed
		return b.String()
	}
	b.WriteString("$skip=")
	b.WriteString(strconv.Itoa(q.skip + len(pg.rows)))
	if q.skipToken != nil {
		b.WriteString("&$skiptoken=")
		b.WriteString(q.skipToken.String())
	}
	return b.String()
}

func (h *handler) count(w http.ResponseWriter, r *http.Request, set *entitySet) error {
	return h.read(r, set, func(q *query, _ []param) error {
		q.count, q.top, q.skip = true, 0, 0
		n := q.execute(nil).total
		w.Header().Set("Content-Type", "text/plain;charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strconv.Itoa(n)))
		return nil
	})
}

func (h *handler) one(w http.ResponseWriter, r *http.Request, set *entitySet, id uuid.UUID) error {
	return h.read(r, set, func(q *query, _ []param) error {
		e := set.find(id)
		if e == nil {
			return notFound("No %s with key %s exists.", set.name, id)
		}
		writeJSON(w, http.StatusOK, h.entityBody(r, set, e, q))
		return nil
	})
}

// entityBody is a single entity with its @odata.context.
func (h *handler) entityBody(r *http.Request, set *entitySet, e *entity, q *query) []byte {
	enc := encoder{b: make([]byte, 0, 1024), skipNulls: q.skipNulls}
	enc.b = append(enc.b, `{"@odata.context":`...)
	enc.b = appendString(enc.b, h.root(r)+"$metadata#"+set.name+"/$entity")
	enc.entity(e, set, q, true)
	return enc.b
}

// pairs answers a small collection of two-property objects, sorted by key:
// the service document and GetRenamedEntityTypes.
func pairs(w http.ResponseWriter, context string, m map[string]string, keyName, valName, extra string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte(`{"@odata.context":`)
	b = appendString(b, context)
	b = append(b, `,"value":[`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"`+keyName+`":`...)
		b = appendString(b, k)
		b = append(b, extra...)
		b = append(b, `,"`+valName+`":`...)
		b = appendString(b, m[k])
		b = append(b, '}')
	}
	writeJSON(w, http.StatusOK, append(b, "]}"...))
	return nil
}

func (h *handler) serviceDocument(w http.ResponseWriter, r *http.Request) error {
	sets := make(map[string]string, len(h.s.sets))
	for name := range h.s.sets {
		sets[name] = name
	}
	return pairs(w, h.root(r)+"$metadata", sets, "name", "url", `,"kind":"EntitySet"`)
}

func (h *handler) renamed(w http.ResponseWriter, r *http.Request) error {
	return pairs(w, h.root(r)+"$metadata#Collection(Erp.RenamedEntityType)", renamedSets, "OldName", "NewName", "")
}
