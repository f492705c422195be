package erpclient

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// This file builds ERP.net's OData dialect (docs/erpnet.md § Query dialect): eq, ge, le, and,
// in, contains, startswith, endswith. Everything the dialect cannot express
// (or, ne, gt, lt, not, empty in-lists, unknown syntax in names) is refused
// when the query is built, with ErrInvalidQuery. Caller text only ever reaches
// a URL through quote (string literals) or a validated grammar (names, GUIDs,
// numbers, dates), and url.Values encodes the result.

// Filter is a boolean $filter expression built from the constructors below.
// The zero set of constructors is closed: callers cannot write raw text.
type Filter interface {
	writeFilter(b *strings.Builder) error
}

// Value is a typed literal on the right-hand side of a comparison.
type Value interface {
	literal() (string, error)
}

// isPath reports whether p is a property name: 1 to 8 identifiers (isIdent: ASCII letters, digits and _, not
// starting with a digit, at most 128 long) separated by "/" for paths through references (SalesOrder/Id). ERP.net
// names are ASCII (Module_Area_Entities, CustomProperty_x). Every property of every query is checked, so this is
// a loop, not a regular expression.
func isPath(p string) bool {
	for n := 1; n <= 8; n++ {
		seg, rest, more := strings.Cut(p, "/")
		if !isIdent(seg) {
			return false
		}
		if !more {
			return true
		}
		p = rest
	}
	return false
}

// decimalRE: the exact decimal text ERP.net accepts in filters and bodies.
var decimalRE = regexp.MustCompile(`^-?[0-9]{1,28}(\.[0-9]{1,28})?$`)

func checkProp(p string) error {
	if !isPath(p) {
		return invalid("property name %q is not an identifier path", truncate(p, 60))
	}
	return nil
}

func checkSet(s string) error {
	if !isIdent(s) {
		return invalid("entity set name %q is not an identifier", truncate(s, 60))
	}
	return nil
}

// quote is THE literal-escaping function: every caller-supplied string that
// reaches a URL goes through it. OData string literals are single-quoted with
// embedded quotes doubled. Invalid UTF-8 and control characters are refused
// rather than passed to a parser whose handling of them is undocumented.
func quote(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalid("string literal is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", invalid("string literal contains a control character")
		}
	}
	if len(s) > 1000 {
		return "", invalid("string literal longer than 1000 bytes")
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// --- values ---

type stringValue string

func (v stringValue) literal() (string, error) { return quote(string(v)) }

// String is a string literal ('text', quotes doubled).
func String(s string) Value { return stringValue(s) }

type intValue int64

func (v intValue) literal() (string, error) { return strconv.FormatInt(int64(v), 10), nil }

// Int is an integer literal.
func Int(i int64) Value { return intValue(i) }

// literal makes Decimal a Value: Decimal("12.50") is an exact decimal
// literal, e.g. for Amount/Quantity filters on <Prop>Value. Exponents and NaN
// are refused.
func (d Decimal) literal() (string, error) {
	if !decimalRE.MatchString(string(d)) {
		return "", invalid("decimal literal %q is not a plain decimal number", truncate(string(d), 40))
	}
	return string(d), nil
}

type boolValue bool

func (v boolValue) literal() (string, error) { return strconv.FormatBool(bool(v)), nil }

// Bool is true or false.
func Bool(b bool) Value { return boolValue(b) }

type dateValue time.Time

func (v dateValue) literal() (string, error) {
	t := time.Time(v)
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return "", invalid("date literal out of range")
	}
	return t.Format("2006-01-02"), nil
}

// Date is a date literal (2020-05-08, the calendar date of t in t's
// location). ERP.net truncates date-time filters to the date anyway
// (docs/erpnet.md § Query dialect). For a date-time literal use DateTime(t).
func Date(t time.Time) Value { return dateValue(t) }

// literal makes DateTime a Value: DateTime(t) is a date-time literal in UTC
// (2020-05-08T10:00:00Z). ERP.net compares it by date only.
func (d DateTime) literal() (string, error) {
	t := time.Time(d).UTC()
	if t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return "", invalid("date-time literal out of range")
	}
	return t.Format("2006-01-02T15:04:05Z"), nil
}

type guidValue string

func (v guidValue) literal() (string, error) { return canonicalGUID(string(v)) }

// GUID is an unquoted GUID literal (for Id and Ref/Id comparisons).
func GUID(id string) Value { return guidValue(id) }

type refValue struct{ set, id string }

func (v refValue) literal() (string, error) {
	if err := checkSet(v.set); err != nil {
		return "", err
	}
	id, err := canonicalGUID(v.id)
	if err != nil {
		return "", err
	}
	return quote(v.set + "(" + id + ")")
}

// RefTo is a reference literal, 'Set(guid)', the form ERP.net compares
// reference properties with (Customer eq 'Crm_Sales_Customers(…)').
func RefTo(set, id string) Value { return refValue{set, id} }

type enumValue string

func (v enumValue) literal() (string, error) {
	if !isIdent(string(v)) {
		return "", invalid("enum value %q is not an identifier", truncate(string(v), 40))
	}
	return "'" + string(v) + "'", nil
}

// Enum is an enum literal by name ('Released'); ERP.net serializes and
// compares enums by name.
func Enum(name string) Value { return enumValue(name) }

// canonicalGUID validates a GUID and returns its lower-case hyphenated form.
func canonicalGUID(s string) (string, error) {
	if len(s) != 36 {
		return "", invalid("%q is not a GUID", truncate(s, 40))
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", invalid("%q is not a GUID", truncate(s, 40))
	}
	return u.String(), nil
}

// --- filters ---

type andFilter []Filter

func (f andFilter) writeFilter(b *strings.Builder) error {
	n := 0
	for _, p := range f {
		if p == nil {
			continue
		}
		if n > 0 {
			b.WriteString(" and ")
		}
		// parenthesise nested conjunctions' operands: harmless, and it keeps
		// the structure explicit for any parser
		if _, nested := p.(andFilter); nested {
			b.WriteByte('(')
			if err := p.writeFilter(b); err != nil {
				return err
			}
			b.WriteByte(')')
		} else if err := p.writeFilter(b); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return invalid("and() of no filters")
	}
	return nil
}

// And is the conjunction of the non-nil filters. And of only nil filters is
// refused when built.
func And(fs ...Filter) Filter {
	return andFilter(fs)
}

type cmpFilter struct {
	prop, op string
	v        Value
}

func (f cmpFilter) writeFilter(b *strings.Builder) error {
	if err := checkProp(f.prop); err != nil {
		return err
	}
	if f.v == nil {
		return invalid("%s %s: nil value", f.prop, f.op)
	}
	lit, err := f.v.literal()
	if err != nil {
		return err
	}
	b.WriteString(f.prop)
	b.WriteByte(' ')
	b.WriteString(f.op)
	b.WriteByte(' ')
	b.WriteString(lit)
	return nil
}

// Eq is prop eq value.
func Eq(prop string, v Value) Filter { return cmpFilter{prop, "eq", v} }

// Ge is prop ge value.
func Ge(prop string, v Value) Filter { return cmpFilter{prop, "ge", v} }

// Le is prop le value.
func Le(prop string, v Value) Filter { return cmpFilter{prop, "le", v} }

type inFilter struct {
	prop string
	vs   []Value
}

// maxInValues bounds one in-list; ByIDs chunks long lists itself.
const maxInValues = 1000

func (f inFilter) writeFilter(b *strings.Builder) error {
	if err := checkProp(f.prop); err != nil {
		return err
	}
	// An empty list is an error, not a never-true filter: ERP.net rejects
	// "in ()" and a silently empty result would hide a caller's bug (for
	// example an access scope without customers, which callers must answer
	// without asking ERP.net at all).
	if len(f.vs) == 0 {
		return invalid("%s in (): empty list", f.prop)
	}
	if len(f.vs) > maxInValues {
		return invalid("%s in (...): more than %d values", f.prop, maxInValues)
	}
	b.WriteString(f.prop)
	b.WriteString(" in (")
	for i, v := range f.vs {
		if v == nil {
			return invalid("%s in (...): nil value", f.prop)
		}
		lit, err := v.literal()
		if err != nil {
			return err
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(lit)
	}
	b.WriteByte(')')
	return nil
}

// In is prop in (v1,v2,...). An empty list is refused when built (see ErrInvalidQuery).
func In(prop string, vs ...Value) Filter { return inFilter{prop, vs} }

type funcFilter struct{ fn, prop, s string }

func (f funcFilter) writeFilter(b *strings.Builder) error {
	if err := checkProp(f.prop); err != nil {
		return err
	}
	lit, err := quote(f.s)
	if err != nil {
		return err
	}
	b.WriteString(f.fn)
	b.WriteByte('(')
	b.WriteString(f.prop)
	b.WriteByte(',')
	b.WriteString(lit)
	b.WriteByte(')')
	return nil
}

// Contains is contains(prop,'s'); the only filter multi-language properties support.
func Contains(prop, s string) Filter { return funcFilter{"contains", prop, s} }

// StartsWith is startswith(prop,'s').
func StartsWith(prop, s string) Filter { return funcFilter{"startswith", prop, s} }

// EndsWith is endswith(prop,'s').
func EndsWith(prop, s string) Filter { return funcFilter{"endswith", prop, s} }

// FilterString renders a filter as $filter text, or ErrInvalidQuery.
func FilterString(f Filter) (string, error) {
	if f == nil {
		return "", invalid("nil filter")
	}
	var b strings.Builder
	if err := f.writeFilter(&b); err != nil {
		return "", err
	}
	return b.String(), nil
}

// --- query ---

// OrderBy is one $orderby item.
type OrderBy struct {
	Prop string
	Desc bool
}

// Expand is one $expand item with its nested options.
type Expand struct {
	Prop   string
	Select []string
	Expand []Expand
	Filter Filter
	Top    int
}

// ScopeFilter gives the mandatory access filter of a user for an entity set.
// access.Scope implements it. A scope that cannot see the set at all must
// return an error (the query is then not sent).
type ScopeFilter interface {
	ScopeFilter(set string) (Filter, error)
}

// Query is a read of one entity set.
type Query struct {
	Set     string
	Filter  Filter
	Select  []string // empty: ERP.net's default selection (no Id); List adds Id whenever Select is given
	Expand  []Expand
	OrderBy []OrderBy
	Top     int     // page size; 0 = everything (ERP.net sends no nextLink then)
	Cursor  *Cursor // continue after a previous page
	Count   bool    // ask for @odata.count
	// Scope is REQUIRED for customer-owned sets (see ScopeRequired) unless
	// Unscoped is true; its filter is ANDed with Filter.
	Scope ScopeFilter
	// Unscoped is the explicit opt-out for service-level reads (access
	// resolution, reference data).
	Unscoped bool
}

// maxTop bounds $top; ERP.net recommends pages of at most 1000 for sync.
const maxTop = 10000

// customerOwned are the sets whose rows belong to a customer: a query on them
// must carry the user's scope (or say Unscoped) so no code path can forget it.
var customerOwned = map[string]bool{
	SetSalesOrders: true, SetSalesOrderLines: true,
	SetInvoices: true, SetInvoiceLines: true,
	SetShipments: true, SetShipmentLines: true,
	SetCustomers: true, SetCustomerExternalAccess: true,
	SetServiceAgreements: true,
}

// ScopeRequired reports whether queries on set must carry a Scope or Unscoped=true.
func ScopeRequired(set string) bool { return customerOwned[set] }

// filter returns the effective filter: the caller's AND the scope's.
func (q Query) filter() (Filter, error) {
	var scoped Filter
	switch {
	case q.Scope != nil:
		f, err := q.Scope.ScopeFilter(q.Set)
		if err != nil {
			return nil, err
		}
		if f == nil && customerOwned[q.Set] {
			return nil, fmt.Errorf("%w: scope gave no filter for %s", ErrScopeRequired, q.Set)
		}
		scoped = f
	case customerOwned[q.Set] && !q.Unscoped:
		return nil, fmt.Errorf("%w: %s is customer-owned; set Query.Scope or Query.Unscoped", ErrScopeRequired, q.Set)
	}
	switch {
	case q.Filter == nil:
		return scoped, nil
	case scoped == nil:
		return q.Filter, nil
	}
	return And(q.Filter, scoped), nil
}

// Build validates the query and returns its OData query options. The scope
// is applied here, so Build is the single place that enforces it.
func (q Query) Build() (url.Values, error) {
	if err := checkSet(q.Set); err != nil {
		return nil, err
	}
	v := url.Values{}
	f, err := q.filter()
	if err != nil {
		return nil, err
	}
	if f != nil {
		s, err := FilterString(f)
		if err != nil {
			return nil, err
		}
		v.Set("$filter", s)
	}
	if len(q.Select) > 0 {
		s, err := selectList(q.Select, true)
		if err != nil {
			return nil, err
		}
		v.Set("$select", s)
	}
	if len(q.Expand) > 0 {
		s, err := expandList(q.Expand, 0)
		if err != nil {
			return nil, err
		}
		v.Set("$expand", s)
	}
	if len(q.OrderBy) > 0 {
		parts := make([]string, 0, len(q.OrderBy))
		for _, o := range q.OrderBy {
			if err := checkProp(o.Prop); err != nil {
				return nil, err
			}
			if o.Desc {
				parts = append(parts, o.Prop+" desc")
			} else {
				parts = append(parts, o.Prop)
			}
		}
		v.Set("$orderby", strings.Join(parts, ","))
	}
	if q.Top < 0 || q.Top > maxTop {
		return nil, invalid("top %d outside 0..%d", q.Top, maxTop)
	}
	if q.Top > 0 {
		v.Set("$top", strconv.Itoa(q.Top))
	}
	if q.Cursor != nil {
		if err := q.Cursor.validate(); err != nil {
			return nil, err
		}
		if q.Cursor.SkipToken != "" {
			v.Set("$skiptoken", q.Cursor.SkipToken)
		}
		if q.Cursor.Skip > 0 {
			v.Set("$skip", strconv.Itoa(q.Cursor.Skip))
		}
	}
	if q.Count {
		v.Set("$count", "true")
	}
	return v, nil
}

// selectList renders a $select list; withID adds Id, which ERP.net omits
// unless asked and which typed decoding relies on.
func selectList(props []string, withID bool) (string, error) {
	seen := make(map[string]bool, len(props)+1)
	out := make([]string, 0, len(props)+1)
	if withID {
		seen["Id"] = true
		out = append(out, "Id")
	}
	for _, p := range props {
		if err := checkProp(p); err != nil {
			return "", err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return strings.Join(out, ","), nil
}

// maxExpandDepth bounds nesting; ERP.net documents nested $expand but deep
// trees are expensive for the single service session.
const maxExpandDepth = 4

func expandList(es []Expand, depth int) (string, error) {
	if depth >= maxExpandDepth {
		return "", invalid("$expand nested deeper than %d", maxExpandDepth)
	}
	parts := make([]string, 0, len(es))
	for _, e := range es {
		if err := checkProp(e.Prop); err != nil {
			return "", err
		}
		var opts []string
		if len(e.Select) > 0 {
			s, err := selectList(e.Select, true)
			if err != nil {
				return "", err
			}
			opts = append(opts, "$select="+s)
		}
		if len(e.Expand) > 0 {
			s, err := expandList(e.Expand, depth+1)
			if err != nil {
				return "", err
			}
			opts = append(opts, "$expand="+s)
		}
		if e.Filter != nil {
			s, err := FilterString(e.Filter)
			if err != nil {
				return "", err
			}
			opts = append(opts, "$filter="+s)
		}
		if e.Top < 0 || e.Top > maxTop {
			return "", invalid("expand %s: top %d outside 0..%d", e.Prop, e.Top, maxTop)
		}
		if e.Top > 0 {
			opts = append(opts, "$top="+strconv.Itoa(e.Top))
		}
		if len(opts) == 0 {
			parts = append(parts, e.Prop)
		} else {
			parts = append(parts, e.Prop+"("+strings.Join(opts, ";")+")")
		}
	}
	return strings.Join(parts, ","), nil
}

// --- cursors ---

// Cursor continues a paged read. It is parsed from @odata.nextLink (never the
// raw URL is followed) and can be carried through a GraphQL cursor with
// Encode and DecodeCursor.
type Cursor struct {
	Skip      int    // $skip (views, or queries with $orderby)
	SkipToken string // $skiptoken (keyset paging: the last Id)
}

// skipTokenRE: ERP.net's skiptoken is the last Id; other servers use short
// opaque tokens. Only URL-safe characters are accepted so the token cannot
// smuggle other query options.
var skipTokenRE = regexp.MustCompile(`^[A-Za-z0-9._~:,\-]{1,200}$`)

func (c Cursor) validate() error {
	if c.Skip < 0 || c.Skip > math.MaxInt32 {
		return invalid("cursor skip %d out of range", c.Skip)
	}
	if c.SkipToken != "" && !skipTokenRE.MatchString(c.SkipToken) {
		return invalid("cursor skiptoken has unexpected characters")
	}
	if c.Skip == 0 && c.SkipToken == "" {
		return invalid("empty cursor")
	}
	return nil
}
