package odata

import (
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// param is one query parameter with its raw (still encoded) form, kept so
// @odata.nextLink can repeat the caller's options verbatim.
type param struct {
	key, val, raw string
}

// parseParams splits a raw query string. url.ParseQuery cannot be used:
// OData's nested options contain ';', which it rejects.
func parseParams(rawQuery string) ([]param, error) {
	var out []param
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, badQuery("Malformed query parameter name '%s'.", k)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, badQuery("Malformed value of query parameter '%s'.", key)
		}
		out = append(out, param{key: key, val: val, raw: part})
	}
	return out, nil
}

// query is a parsed request (or nested $expand) against one entity set.
type query struct {
	set       *entitySet
	filter    node
	sel       selection
	expand    []expandItem
	orderBy   []orderKey
	top, skip int // top < 0: no $top
	skipToken *uuid.UUID
	count     bool
	skipNulls bool
}

// selection is $select: the default properties and/or explicit names.
type selection struct {
	def   bool
	names []string
}

type expandItem struct {
	prop *prop
	q    *query
}

type orderKey struct {
	p    path
	desc bool
}

// parseQuery reads the system query options of a top-level request.
func (s *Store) parseQuery(set *entitySet, params []param) (*query, error) {
	opts := map[string]string{}
	q := &query{set: set, top: -1, sel: selection{def: true}}
	for _, p := range params {
		if p.key == "options" {
			for _, o := range strings.Split(p.val, ",") {
				if strings.TrimSpace(o) == "skipnulls" {
					q.skipNulls = true
				}
			}
			continue
		}
		if !strings.HasPrefix(p.key, "$") {
			continue // culture, tr and other non-system parameters do not shape the result
		}
		if _, dup := opts[p.key]; dup {
			return nil, badQuery("The query option '%s' is given more than once.", p.key)
		}
		opts[p.key] = p.val
	}
	if err := s.applyOptions(q, opts, false); err != nil {
		return nil, err
	}
	return q, nil
}

// applyOptions applies $filter, $select, ... to q; nested options (inside
// $expand) exclude $count and $skiptoken.
func (s *Store) applyOptions(q *query, opts map[string]string, nested bool) error {
	for k, v := range opts {
		var err error
		switch k {
		case "$filter":
			q.filter, err = s.parseFilter(q.set, v)
		case "$select":
			q.sel, err = parseSelect(q.set, v)
		case "$expand":
			q.expand, err = s.parseExpand(q.set, v)
		case "$orderby":
			q.orderBy, err = s.parseOrderBy(q.set, v)
		case "$top":
			q.top, err = parseCount(k, v)
		case "$skip":
			q.skip, err = parseCount(k, v)
		case "$count":
			if nested {
				return notSupported("$count is not supported inside $expand.")
			}
			switch strings.ToLower(v) {
			case "true":
				q.count = true
			case "false":
			default:
				return badQuery("$count must be true or false, not '%s'.", v)
			}
		case "$skiptoken":
			if nested {
				return badQuery("$skiptoken is not allowed inside $expand.")
			}
			id, perr := uuid.Parse(v)
			if perr != nil || len(v) != 36 {
				return badQuery("Invalid $skiptoken '%s'.", v)
			}
			q.skipToken = &id
		case "$format":
			if !strings.HasPrefix(strings.ToLower(v), "json") && !strings.HasPrefix(strings.ToLower(v), "application/json") {
				return notSupported("Only JSON responses are supported.")
			}
		case "$search", "$apply":
			return notSupported("The query option '%s' is not supported by erpsim.", k)
		default:
			return badQuery("Unknown query option '%s'.", k)
		}
		if err != nil {
			return err
		}
	}
	if q.skipToken != nil && len(q.orderBy) > 0 {
		return badQuery("$skiptoken cannot be combined with $orderby; page with $skip.")
	}
	return nil
}

func parseCount(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badQuery("%s must be a non-negative integer, not '%s'.", name, v)
	}
	return n, nil
}

// hasProp reports whether name is a property of set or of a set derived from it.
func (es *entitySet) hasProp(name string) *prop {
	if p := es.byName[name]; p != nil {
		return p
	}
	for _, d := range es.derived {
		if p := d.byName[name]; p != nil {
			return p
		}
	}
	return nil
}

func parseSelect(set *entitySet, v string) (selection, error) {
	sel := selection{}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			return sel, badQuery("Empty item in $select.")
		case name == "*" || strings.EqualFold(name, "default"):
			sel.def = true
		case set.hasProp(name) == nil:
			return sel, badQuery("The property '%s' in $select is not defined on '%s'.", name, set.name)
		case !slices.Contains(sel.names, name):
			sel.names = append(sel.names, name) // a repeated name would repeat the JSON key
		}
	}
	return sel, nil
}

// splitTop splits s at sep outside parentheses and quotes.
func splitTop(s string, sep byte) ([]string, error) {
	var out []string
	depth, start, quoted := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, badQuery("Unbalanced parentheses in '%s'.", s)
			}
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if depth != 0 || quoted {
		return nil, badQuery("Unbalanced parentheses or quotes in '%s'.", s)
	}
	return append(out, s[start:]), nil
}

func (s *Store) parseExpand(set *entitySet, v string) ([]expandItem, error) {
	items, err := splitTop(v, ',')
	if err != nil {
		return nil, err
	}
	var out []expandItem
	for _, item := range items {
		item = strings.TrimSpace(item)
		name, inner := item, ""
		if i := strings.IndexByte(item, '('); i >= 0 {
			if !strings.HasSuffix(item, ")") {
				return nil, badQuery("Malformed $expand item '%s'.", item)
			}
			name, inner = strings.TrimSpace(item[:i]), item[i+1:len(item)-1]
		}
		if strings.Contains(name, "/") {
			return nil, notSupported("The $expand path '%s' is not supported by erpsim; nest $expand instead.", name)
		}
		p := set.hasProp(name)
		if p == nil || p.kind != kRef && p.kind != kLines {
			return nil, badQuery("'%s' is not a navigation property of '%s' and cannot be expanded.", name, set.name)
		}
		target := s.sets[p.target]
		if target == nil {
			return nil, badQuery("'%s' cannot be expanded.", name)
		}
		sub := &query{set: target, top: -1, sel: selection{def: true}}
		if strings.TrimSpace(inner) != "" {
			parts, err := splitTop(inner, ';')
			if err != nil {
				return nil, err
			}
			opts := map[string]string{}
			for _, part := range parts {
				k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
				if !ok {
					return nil, badQuery("Malformed option '%s' in $expand of '%s'.", part, name)
				}
				opts[k] = val
			}
			if err := s.applyOptions(sub, opts, true); err != nil {
				return nil, err
			}
		}
		out = append(out, expandItem{prop: p, q: sub})
	}
	return out, nil
}

func (s *Store) parseOrderBy(set *entitySet, v string) ([]orderKey, error) {
	var out []orderKey
	for _, item := range strings.Split(v, ",") {
		fields := strings.Fields(item)
		if len(fields) == 0 || len(fields) > 2 {
			return nil, badQuery("Malformed $orderby item '%s'.", item)
		}
		p, err := s.resolvePath(set, fields[0])
		if err != nil {
			return nil, err
		}
		if k := p.last().kind; k == kLines || k == kAmount || k == kQuantity {
			return nil, notSupported("Cannot order by '%s'.", fields[0])
		}
		key := orderKey{p: p}
		if len(fields) == 2 {
			switch strings.ToLower(fields[1]) {
			case "asc":
			case "desc":
				key.desc = true
			default:
				return nil, badQuery("Order direction must be asc or desc, not '%s'.", fields[1])
			}
		}
		out = append(out, key)
	}
	return out, nil
}

// candidates narrows the rows to scan with an index when a top-level
// conjunct is an eq/in on an indexed reference or on Id. Rows stay in Id order.
func candidates(set *entitySet, n node) []*entity {
	best := set.rows
	var walk func(n node) bool // false: no row can match
	walk = func(n node) bool {
		switch c := n.(type) {
		case andNode:
			return walk(c.a) && walk(c.b)
		case cmpNode:
			if p := indexable(c.p); p != nil && c.op == opEq && !c.orNull && !c.lit.v.isNull() {
				if list, ok := lookup(set, p, []literal{c.lit}); ok && len(list) < len(best) {
					best = list
				}
			}
		case inNode:
			if p := indexable(c.p); p != nil {
				if list, ok := lookup(set, p, c.lits); ok && len(list) < len(best) {
					best = list
				}
			}
		}
		return true
	}
	walk(n)
	return best
}

// indexable returns the property an index could answer for: Id, a
// reference, or a reference's Id (SalesOrder/Id eq <guid>, as clients write it).
func indexable(pth path) *prop {
	switch {
	case len(pth) == 1:
		return pth[0]
	case len(pth) == 2 && pth[0].index != nil && pth[1].kind == kGUID:
		return pth[0]
	}
	return nil
}

// lookup returns the rows whose p equals one of lits, when p is indexed.
func lookup(set *entitySet, p *prop, lits []literal) ([]*entity, bool) {
	var idx map[uuid.UUID][]*entity
	switch {
	case p.kind == kGUID:
	case p.index != nil:
		idx = p.index
	default:
		return nil, false
	}
	if idx != nil && len(lits) == 1 && !lits[0].v.isNull() {
		return idx[lits[0].id], true // shared, read-only: callers only iterate
	}
	var out []*entity
	for _, l := range lits {
		if l.v.isNull() {
			return nil, false
		}
		if idx == nil {
			if e := set.find(l.id); e != nil {
				out = append(out, e)
			}
			continue
		}
		out = append(out, idx[l.id]...)
	}
	if len(lits) > 1 {
		sortByID(out)
		out = dedupe(out)
	}
	return out, true
}

func dedupe(rows []*entity) []*entity {
	out := rows[:0]
	for i, e := range rows {
		if i == 0 || rows[i-1] != e {
			out = append(out, e)
		}
	}
	return out
}

// page is the result of executing a query.
type page struct {
	rows  []*entity
	total int  // with $count=true
	more  bool // rows beyond $top exist
}

// execute runs q over rows (nil: the whole set, narrowed by indexes).
// Without $orderby rows come in Id order and $skiptoken is the last Id seen.
func (q *query) execute(rows []*entity) page {
	if rows == nil {
		rows = candidates(q.set, q.filter)
	}
	var pg page
	match := func(e *entity) bool { return q.filter == nil || q.filter.match(e) }
	if q.count {
		for _, e := range rows {
			if match(e) {
				pg.total++
			}
		}
	}
	if len(q.orderBy) == 0 {
		if q.skipToken != nil {
			tok := *q.skipToken
			rows = rows[sort.Search(len(rows), func(i int) bool { return idLess(tok, rows[i].id) }):]
		}
		skip := q.skip
		for _, e := range rows {
			if !match(e) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if q.top >= 0 && len(pg.rows) == q.top {
				pg.more = true
				break
			}
			pg.rows = append(pg.rows, e)
		}
		return pg
	}
	var all []*entity
	for _, e := range rows {
		if match(e) {
			all = append(all, e)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return q.less(all[i], all[j]) })
	if q.skip >= len(all) {
		return pg
	}
	all = all[q.skip:]
	if q.top >= 0 && len(all) > q.top {
		all, pg.more = all[:q.top], true
	}
	pg.rows = all
	return pg
}

// less orders by the $orderby keys, then by Id so pages are stable.
func (q *query) less(a, b *entity) bool {
	for _, k := range q.orderBy {
		c := orderCompare(k.p.last().kind, k.p.eval(a), k.p.eval(b))
		if c != 0 {
			return c < 0 != k.desc
		}
	}
	return idLess(a.id, b.id)
}

// orderCompare orders two values of one kind; nulls sort first.
func orderCompare(k kind, a, b value) int {
	switch an, bn := a.isNull(), b.isNull(); {
	case an && bn:
		return 0
	case an:
		return -1
	case bn:
		return 1
	}
	switch k {
	case kString:
		return strings.Compare(a.s, b.s)
	case kML:
		return strings.Compare(mlText(a.s)[0], mlText(b.s)[0])
	case kRef, kGUID:
		return strings.Compare(string(a.ref.id[:]), string(b.ref.id[:]))
	}
	return cmpFloat(a.n, b.n)
}
